"""The tracking tab: sources listed with live statistics, samples plotted."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from gui.app import MainWindow
from stagectl.config import parse_config
from stagectl.harness import StageHarness, free_port, free_port_config
from tests.gui.conftest import make_bridge, stop_bridge


@pytest.fixture
def tracking_stage() -> Iterator[StageHarness]:
    data = free_port_config(stage="gui-trk").model_dump()
    port = free_port(socket.SOCK_DGRAM)
    data["devices"].append({"name": "cam-a", "kind": "tracking", "driver": "freed",
                            "port": port, "host": "127.0.0.1", "rate_hz": 100})
    data["simulators"].append({"name": "cam-a-sim", "kind": "tracking", "protocol": "freed",
                               "target": f"127.0.0.1:{port}", "rate_hz": 100})
    harness = StageHarness(parse_config(data)).start()
    try:
        yield harness
    finally:
        harness.stop()


def test_tracking_tab_shows_stats_and_plots(qtbot, tracking_stage: StageHarness,
                                            tmp_path: Path) -> None:
    bridge = make_bridge(tracking_stage)
    window = MainWindow(tracking_stage.config, bridge)
    qtbot.addWidget(window)
    window.resize(1200, 800)
    window.show()
    bridge.start()
    try:
        panel = window.tracking_panel
        assert panel is not None
        window.led_tabs.setCurrentWidget(panel)
        qtbot.waitUntil(lambda: panel.samples_seen.get("cam-a", 0) > 50, timeout=5000)

        def rate_shown() -> bool:
            item = panel.table.item(0, 3)
            return item is not None and item.text() not in ("", "—") and \
                80 < float(item.text()) < 120
        qtbot.waitUntil(rate_shown, timeout=5000)
        health = panel.table.item(0, 1)
        assert health is not None
        qtbot.waitUntil(lambda: health.data(256) == "online", timeout=3000)  # Qt.UserRole
        qtbot.wait(200)
        x, y = panel.pos_curves[0].getData()
        assert x is not None and len(x) > 10
        assert window.health_panel.health_of("cam-a") == "online"
        window.grab().save(str(tmp_path / "tracking.png"))
        assert (tmp_path / "tracking.png").stat().st_size > 10_000
    finally:
        stop_bridge(bridge)
        window.close()
