"""The window's layout at 1366x768 and 1920x1080: every device row and a usable tracking plot.

No engine is needed: the layout follows the stage config (devices are listed from it), and a
bridge that is never started leaves the window in its not-live look.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator

import pytest
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from gui.app import DEFAULT_SIZE, MainWindow
from gui.bridge import EngineBridge
from gui.health_panel import VISIBLE_ROWS_MAX
from gui.tracking_panel import PLOT_MIN_HEIGHT
from stagectl.config import StageConfig, parse_config
from stagectl.harness import free_port, free_port_config
from tests.gui.conftest import OPERATOR

SIZES = [(1366, 768), (1920, 1080)]
MakeWindow = Callable[[StageConfig, tuple[int, int]], MainWindow]


def stage(leds: int, arms: int, tracking: int) -> StageConfig:
    data = free_port_config(stage="gui-layout", devices=leds, arms=arms).model_dump()
    for i in range(tracking):
        data["devices"].append({"name": f"cam-{chr(ord('a') + i)}", "kind": "tracking",
                                "driver": "freed", "host": "127.0.0.1",
                                "port": free_port(socket.SOCK_DGRAM), "rate_hz": 100})
    return parse_config(data)


@pytest.fixture
def window_for(qtbot: QtBot) -> Iterator[MakeWindow]:
    made: list[tuple[MainWindow, EngineBridge]] = []

    def make(config: StageConfig, size: tuple[int, int]) -> MainWindow:
        bridge = EngineBridge(config, identity=OPERATOR)  # never started: no engine needed
        window = MainWindow(config, bridge)
        qtbot.addWidget(window)
        window.resize(*size)
        window.show()
        qtbot.waitExposed(window)
        QApplication.processEvents()
        made.append((window, bridge))
        return window
    yield make
    for window, _ in made:
        window.close()


def test_default_size_is_1366x768(qtbot: QtBot) -> None:
    window = MainWindow(stage(1, 1, 1), EngineBridge(stage(1, 0, 0), identity=OPERATOR))
    qtbot.addWidget(window)
    assert (window.width(), window.height()) == DEFAULT_SIZE
    hint = window.minimumSizeHint()
    assert hint.width() <= 1366 and hint.height() <= 768, hint


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("devices", [(1, 1, 1), (5, 2, 1)], ids=["3-devices", "8-devices"])
def test_every_device_row_visible_and_plot_tall_enough(
        window_for: MakeWindow, size: tuple[int, int], devices: tuple[int, int, int]) -> None:
    config = stage(*devices)
    window = window_for(config, size)
    assert (window.width(), window.height()) == size
    health = window.health_panel
    assert health.rowCount() == len(config.devices) <= VISIBLE_ROWS_MAX
    assert health.all_rows_visible(), (health.viewport().height(), health.rowCount())
    assert not health.verticalScrollBar().isVisible()
    # the safety bar and its E-STOP are on top and visible whatever tab is shown
    estop = window.safety_bar.estop_button
    assert estop.isVisible() and estop.mapTo(window, estop.rect().topLeft()).y() < 120
    assert window.event_log.isVisible() and window.event_log.height() >= 100

    panel = window.tracking_panel
    assert panel is not None
    window.tabs.setCurrentWidget(panel)
    QApplication.processEvents()
    assert panel.pos_plot.isVisible() and panel.rot_plot.isVisible()
    assert panel.pos_plot.height() >= PLOT_MIN_HEIGHT
    assert panel.rot_plot.height() >= PLOT_MIN_HEIGHT
    assert estop.isVisible()


def test_beyond_eight_devices_the_table_scrolls(window_for: MakeWindow) -> None:
    config = stage(8, 2, 0)
    window = window_for(config, (1366, 768))
    health = window.health_panel
    assert health.rowCount() == 10
    assert not health.all_rows_visible()
    assert health.verticalScrollBar().maximum() > 0
    rows_shown = health.viewport().height() // health.rowHeight(0)
    assert rows_shown >= VISIBLE_ROWS_MAX
