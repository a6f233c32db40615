"""The tracking tab: sources listed with live statistics, samples plotted."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from gui import i18n
from gui.app import MainWindow
from gui.tracking_panel import TrackingPanel
from stagectl.harness import StageHarness, free_port_config
from tests.gui.conftest import make_bridge, stop_bridge, with_tracking


@pytest.fixture
def tracking_stage() -> Iterator[StageHarness]:
    harness = StageHarness(with_tracking(free_port_config(stage="gui-trk"))).start()
    try:
        yield harness
    finally:
        harness.stop()


def test_tracking_tab_shows_stats_and_plots(qtbot: QtBot, tracking_stage: StageHarness,
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
        # the engine's word, whatever it is: a loaded test machine may drop enough
        # loopback packets for a moment to make the source degraded
        heard = ("online", "degraded")
        qtbot.waitUntil(lambda: health.data(256) in heard, timeout=3000)  # Qt.UserRole
        qtbot.wait(200)
        x, y = panel.pos_curves[0].getData()
        assert x is not None and len(x) > 10
        assert window.health_panel.health_of("cam-a") in heard
        window.grab().save(str(tmp_path / "tracking.png"))
        assert (tmp_path / "tracking.png").stat().st_size > 10_000
    finally:
        stop_bridge(bridge)
        window.close()


def test_tracking_panel_goes_stale_without_the_engine(qtbot: QtBot) -> None:
    panel = TrackingPanel()
    qtbot.addWidget(panel)
    panel.add_source("cam-a")
    assert panel.stat("cam-a", "rate_hz") == "—"  # nothing heard yet
    panel.apply_delta("cam-a", {"rate_hz": 100.0, "jitter_ms": 0.4, "loss_pct": 0.0})
    panel.apply_health("cam-a", {"state": "online"})
    assert panel.stat("cam-a", "rate_hz") == "100.0"
    assert panel.stale_label.isHidden()

    panel.set_live(False)
    assert [panel.stat("cam-a", k) for k in ("rate_hz", "jitter_ms", "loss_pct")] == ["—"] * 3
    health = panel.table.item(0, 1)
    assert health is not None and health.data(256) == "unknown" and health.text() == "unknown"
    assert not panel.stale_label.isHidden()
    panel.apply_delta("cam-a", {"rate_hz": 99.0})  # late news from a dead link: not shown
    panel.apply_health("cam-a", {"state": "online"})
    assert panel.stat("cam-a", "rate_hz") == "—" and health.data(256) == "unknown"

    panel.set_live(True)
    assert panel.stale_label.isHidden()
    assert panel.stat("cam-a", "rate_hz") == "—"  # until a fresh value comes
    panel.apply_delta("cam-a", {"rate_hz": 98.0})
    assert panel.stat("cam-a", "rate_hz") == "98.0"
    i18n.set_language("zh")
    zh = TrackingPanel()
    qtbot.addWidget(zh)
    assert zh.stale_label.text().startswith("⚠ 数据过期")
