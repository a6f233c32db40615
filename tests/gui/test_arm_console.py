"""The console's E-STOP, arm panel and cue panel, against a simulated stage with an arm."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from drivers.arm.simulator import ArmSimulator
from gui.app import MainWindow
from stagectl.harness import StageHarness, free_port_config
from tests.gui.conftest import make_bridge, stop_bridge
from tests.gui.test_safety_bar import Asked


@pytest.fixture
def arm_console(qtbot: QtBot) -> Iterator[tuple[MainWindow, ArmSimulator]]:
    harness = StageHarness(free_port_config(stage="gui-arm", arms=1)).start()
    bridge = make_bridge(harness)
    window = MainWindow(harness.config, bridge)
    qtbot.addWidget(window)
    window.show()
    bridge.start()
    try:
        qtbot.waitUntil(lambda: bridge.connected, timeout=3000)
        assert harness.sims is not None
        sim = harness.sims.by_name("arm-a-sim")
        assert isinstance(sim, ArmSimulator)
        yield window, sim
    finally:
        stop_bridge(bridge)
        window.close()
        harness.stop()


def test_estop_button_and_f12_stop_the_arm(qtbot: QtBot, arm_console) -> None:
    window, sim = arm_console
    console = window.arm_console
    panel = console.arm_panels["arm-a"]
    qtbot.waitUntil(lambda: panel.state_label.text() == "IDLE", timeout=3000)
    qtbot.waitUntil(lambda: console.safety_bar.arm_button.isEnabled(), timeout=3000)
    qtbot.mouseClick(console.safety_bar.arm_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: console.safety_bar.status.get("armed") is True, timeout=3000)
    jog = panel.jog_buttons[("j1", 1)]
    qtbot.waitUntil(jog.isEnabled, timeout=3000)  # the engine's controls say: armed
    qtbot.mouseClick(jog, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: sim.state == "MOVING", timeout=3000)
    estop = window.findChild(type(console.safety_bar.estop_button), "estop_button")
    assert estop is console.safety_bar.estop_button and estop.isVisible()
    qtbot.mouseClick(estop, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: sim.state == "ESTOP", timeout=2000)
    assert sim.velocity == [0.0] * 6
    qtbot.waitUntil(lambda: panel.state_label.text() == "ESTOP", timeout=3000)
    qtbot.waitUntil(lambda: console.safety_bar.status.get("estop_latched") is True,
                    timeout=3000)
    # reset from the console (it asks first), then F12 from anywhere in the window
    console.safety_bar.confirm = asked = Asked(True)
    qtbot.waitUntil(lambda: not jog.isEnabled(), timeout=3000)  # latched: no motion
    qtbot.waitUntil(console.safety_bar.reset_button.isEnabled, timeout=3000)
    qtbot.mouseClick(console.safety_bar.reset_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: sim.state == "IDLE", timeout=3000)
    assert len(asked.questions) == 1 and "DISARMED" in asked.questions[0][1]
    qtbot.waitUntil(lambda: console.safety_bar.motion_label.text() == "○ DISARMED",
                    timeout=3000)
    window.activateWindow()
    qtbot.keyClick(window, Qt.Key.Key_F12)
    qtbot.waitUntil(lambda: sim.state == "ESTOP", timeout=2000)
