"""The main window: health table, connection status, both languages, screenshots, entry point."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QLocale, Qt
from PySide6.QtGui import QImage
from pytestqt.qtbot import QtBot
from pythonosc.udp_client import SimpleUDPClient

from gui import i18n
from gui.app import run_console
from gui.health_panel import DeviceHealthPanel
from stagectl.harness import StageHarness, free_port_config
from tests.gui.conftest import Console, open_window, sim_address, stop_bridge


def test_window_shows_stage_devices_and_connection(qtbot, console: Console) -> None:
    window = console.window
    assert "gui-stage" in window.windowTitle()
    health = window.health_panel
    assert health.rowCount() == 1
    assert health.item(0, 0).text() == "led-main"
    assert health.item(0, 1).text() == "LED processor"
    assert health.health_of("led-main") == "online"
    assert health.item(0, 2).background().color().name() == "#c8e6c9"
    assert window.connection_label.property("connected") is True
    assert "Engine connected" in window.connection_label.text()
    assert console.led.isEnabled()
    qtbot.waitUntil(lambda: console.led.panels_label.text() == "240 / 240", timeout=3000)


def test_engine_loss_disables_controls_and_greys_health(qtbot) -> None:
    harness = StageHarness(free_port_config(stage="gui-loss")).start()
    window, bridge = open_window(qtbot, harness)
    try:
        qtbot.waitUntil(lambda: bridge.connected, timeout=3000)
        panel = window.led_panels["led-main"]
        qtbot.waitUntil(panel.brightness_slider.isEnabled, timeout=3000)
        harness.stop()
        qtbot.waitUntil(lambda: not panel.brightness_slider.isEnabled(), timeout=3000)
        assert not panel.live and not window.controls.live
        assert "not connected" in window.connection_label.text()
        assert window.health_panel.health_of("led-main") == "unknown"
        assert any("engine not heard from" in line for line in window.event_log.lines())
    finally:
        stop_bridge(bridge)
        if harness.loop.loop.is_running():
            harness.stop()


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_screenshot_renders(qtbot, harness: StageHarness, tmp_path: Path, lang: str) -> None:
    i18n.set_language(lang)
    window, bridge = open_window(qtbot, harness)
    try:
        qtbot.waitUntil(lambda: bridge.connected, timeout=3000)
        panel = window.led_panels["led-main"]
        qtbot.waitUntil(lambda: panel.reported.get("panels_total") == 240, timeout=3000)
        # show the states an operator must notice: blackout on, a fault, a front-panel edit
        qtbot.mouseClick(panel.blackout_button, Qt.MouseButton.LeftButton)
        panel.brightness_slider.setValue(800)
        qtbot.waitUntil(lambda: panel.reported.get("brightness_nits") == 800.0, timeout=3000)
        front = SimpleUDPClient(*sim_address(harness))
        front.send_message("/sim/fault/panels_offline", 6)
        front.send_message("/led/brightness", 750.0)
        qtbot.waitUntil(lambda: window.health_panel.health_of("led-main") == "degraded",
                        timeout=3000)
        qtbot.waitUntil(lambda: panel.reported.get("brightness_nits") == 750.0, timeout=3000)
        if lang == "zh":
            assert "控制台" in window.windowTitle()
            assert window.health_panel.item(0, 2).text() == "异常"
        path = tmp_path / f"console-{lang}.png"
        assert window.grab().save(str(path))
        image = QImage(str(path))
        assert image.width() >= 800 and image.height() >= 500
    finally:
        stop_bridge(bridge)


def test_health_panel_forgets_what_it_showed_when_not_live(qtbot: QtBot) -> None:
    panel = DeviceHealthPanel()
    qtbot.addWidget(panel)
    panel.add_device("led-main", "led")
    assert panel.health_of("led-main") == "unknown"
    panel.apply_health("led-main", {"state": "degraded", "reason": "hot"})
    assert panel.health_of("led-main") == "degraded" and panel.item(0, 3).text() == "hot"
    panel.set_live(False)
    assert panel.health_of("led-main") == "unknown"
    assert panel.item(0, 2).text() == "unknown" and panel.item(0, 3).text() != "hot"
    panel.apply_health("led-main", {"state": "online"})  # from a dead link: not shown
    assert panel.health_of("led-main") == "unknown"
    panel.set_live(True)
    assert panel.health_of("led-main") == "unknown"  # until fresh health arrives
    panel.apply_health("led-main", {"state": "online"})
    assert panel.health_of("led-main") == "online"


def test_zh_window_renders_identity_events_and_refusals(qtbot: QtBot,
                                                        harness: StageHarness) -> None:
    i18n.set_language("zh")
    window, bridge = open_window(qtbot, harness)
    try:
        qtbot.waitUntil(lambda: window.controls.snapshot != {}, timeout=3000)
        assert window.identity_label.text() == "gui-test · 操作员"
        bridge.command("safety.arm")
        qtbot.waitUntil(lambda: any("引擎：gui-test（操作员）使能了运动" in line
                                    for line in window.event_log.lines()), timeout=3000)
        errors = len([e for e in window.event_log.entries() if e.level == "error"])
        bridge.command("led.set", {"key": "brightness_nits", "value": 99999})
        qtbot.waitUntil(lambda: len([e for e in window.event_log.entries()
                                     if e.level == "error"]) > errors, timeout=3000)
        refusal = [e for e in window.event_log.entries() if e.level == "error"][-1]
        assert refusal.source == "控制台"
        text = refusal.message.replace("LED", "")  # a proper name may stay
        assert text and not any("a" <= ch.lower() <= "z" for ch in text), refusal
    finally:
        stop_bridge(bridge)


def test_every_string_has_both_languages() -> None:
    for key, texts in i18n.STRINGS.items():
        assert set(texts) == set(i18n.LANGUAGES), key
        assert all(texts.values()), key


def test_language_choice() -> None:
    english = QLocale(QLocale.Language.English, QLocale.Country.UnitedKingdom)
    chinese = QLocale(QLocale.Language.Chinese, QLocale.Country.China)
    assert i18n.pick_language({"STAGECTL_LANG": "zh"}, english) == "zh"
    assert i18n.pick_language({"STAGECTL_LANG": "zh_CN"}, english) == "zh"
    assert i18n.pick_language({"STAGECTL_LANG": "en"}, chinese) == "en"
    assert i18n.pick_language({}, chinese) == "zh"
    assert i18n.pick_language({"STAGECTL_LANG": "fr"}, english) == "en"
    with pytest.raises(ValueError, match="language must be one of"):
        i18n.set_language("fr")


def test_run_console_quits_after_duration(qtbot, harness: StageHarness) -> None:
    code = run_console(harness.config, Path("configs/sim-stage.toml"), duration_s=0.8)
    assert code == 0
