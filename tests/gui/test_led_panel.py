"""Operator actions on the LED panel reach the simulated processor, and back.

Every assertion on an action reads the *simulator's* state: the path under test is widget ->
bridge -> engine -> OSC driver -> simulator. Front-panel changes are sent straight to the
simulator over OSC (python-osc, as a third-party client would) and must show in the widgets.
"""

# mypy: disallow-untyped-calls=False
# (pytest-qt's key and mouse helpers are untyped)

from __future__ import annotations

from typing import Any

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot
from pythonosc.udp_client import SimpleUDPClient

from gui import i18n
from gui.app import MainWindow
from gui.controls import Controls
from gui.i18n import tr
from gui.led_panel import LedPanel
from stagectl.client import ClientIdentity
from stagectl.harness import StageHarness, free_port_config
from tests.gui.conftest import Console, make_bridge, sim_address, sim_values, stop_bridge


def front_panel(console: Console) -> SimpleUDPClient:
    host, port = sim_address(console.harness)
    return SimpleUDPClient(host, port)


def test_brightness_slider_drag_sets_the_wall(qtbot: QtBot, console: Console) -> None:
    led = console.led
    intents: list[tuple[str, dict[str, object]]] = []
    led.intent.connect(lambda cmd, args: intents.append((cmd, args)))
    slider = led.brightness_slider
    slider.setSliderDown(True)  # the operator grabs the handle...
    for value in (900, 850, 800):
        slider.setValue(value)
    assert intents == []  # ...nothing is sent mid-drag
    assert led.brightness_spin.value() == 800.0  # but the number follows the handle
    slider.setSliderDown(False)  # ...and lets go: one command
    assert intents == [("led.set", {"device": "led-main", "key": "brightness_nits",
                                    "value": 800.0})]
    qtbot.waitUntil(lambda: sim_values(console.harness)["brightness_nits"] == 800.0,
                    timeout=3000)
    qtbot.waitUntil(lambda: led.reported.get("brightness_nits") == 800.0, timeout=3000)
    assert led.brightness_spin.value() == 800.0
    qtbot.waitUntil(lambda: led.desired_labels["brightness_nits"].text() == "800 nits",
                    timeout=3000)
    qtbot.waitUntil(lambda: led.output_label.text() == "800 nits", timeout=3000)


def test_brightness_spinbox_typed_value_sets_the_wall(qtbot: QtBot, console: Console) -> None:
    spin = console.led.brightness_spin
    spin.lineEdit().selectAll()
    qtbot.keyClicks(spin.lineEdit(), "450")
    qtbot.keyClick(spin.lineEdit(), Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: sim_values(console.harness)["brightness_nits"] == 450.0,
                    timeout=3000)
    qtbot.waitUntil(lambda: console.led.reported.get("brightness_nits") == 450.0, timeout=3000)
    assert console.led.brightness_slider.value() == 450


def test_colour_temperature_slider_sets_the_wall(qtbot: QtBot, console: Console) -> None:
    slider = console.led.temperature_slider
    assert (slider.minimum(), slider.maximum()) == (2000, 11000)
    slider.setSliderDown(True)
    slider.setValue(3200)
    slider.setSliderDown(False)
    qtbot.waitUntil(lambda: sim_values(console.harness)["colour_temperature_k"] == 3200,
                    timeout=3000)
    qtbot.waitUntil(lambda: console.led.reported.get("colour_temperature_k") == 3200,
                    timeout=3000)
    # keyboard on the slider (no drag) sends each step
    slider.setFocus()
    qtbot.keyClick(slider, Qt.Key.Key_PageUp)
    qtbot.waitUntil(lambda: sim_values(console.harness)["colour_temperature_k"] == 3700,
                    timeout=3000)


def test_blackout_and_freeze_toggles(qtbot: QtBot, console: Console) -> None:
    led = console.led
    qtbot.mouseClick(led.blackout_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: sim_values(console.harness)["blackout"] is True, timeout=3000)
    qtbot.waitUntil(lambda: led.output_label.text() == "0 nits", timeout=3000)
    assert led.blackout_button.isChecked()
    assert led.reported_labels["blackout"].text() == "on"

    qtbot.mouseClick(led.freeze_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: sim_values(console.harness)["freeze"] is True, timeout=3000)

    qtbot.mouseClick(led.blackout_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: sim_values(console.harness)["blackout"] is False, timeout=3000)
    qtbot.waitUntil(lambda: led.reported_labels["blackout"].text() == "off", timeout=3000)
    assert sim_values(console.harness)["freeze"] is True


def test_test_pattern_combo(qtbot: QtBot, console: Console) -> None:
    combo = console.led.pattern_combo
    while combo.currentData() != "grid":  # arrow keys on a closed combo, as an operator would
        qtbot.keyClick(combo, Qt.Key.Key_Down)
    qtbot.waitUntil(lambda: sim_values(console.harness)["test_pattern"] == "grid",
                    timeout=3000)
    qtbot.waitUntil(lambda: console.led.reported.get("test_pattern") == "grid", timeout=3000)
    assert combo.currentText() == "grid"  # unrelated reports in between never moved it


def test_preset_recall(qtbot: QtBot, console: Console) -> None:
    led = console.led
    led.preset_spin.setValue(2)
    qtbot.mouseClick(led.recall_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: sim_values(console.harness)["colour_temperature_k"] == 3200,
                    timeout=3000)
    assert sim_values(console.harness)["brightness_nits"] == 600.0
    qtbot.waitUntil(lambda: led.preset_label.text() == "2", timeout=3000)
    qtbot.waitUntil(lambda: led.temperature_slider.value() == 3200, timeout=3000)


def test_front_panel_changes_show_in_the_widgets(qtbot: QtBot, console: Console) -> None:
    led = console.led
    led.brightness_slider.setValue(800)  # console sets desired 800 nits...
    qtbot.waitUntil(lambda: sim_values(console.harness)["brightness_nits"] == 800.0,
                    timeout=3000)

    panel = front_panel(console)  # ...then someone turns the wall down at the processor
    panel.send_message("/led/brightness", 321.0)
    panel.send_message("/led/colour_temperature", 4300)
    panel.send_message("/led/test_pattern", "ramp")
    panel.send_message("/led/freeze", 1)

    qtbot.waitUntil(lambda: led.brightness_slider.value() == 321, timeout=3000)
    qtbot.waitUntil(lambda: led.freeze_button.isChecked(), timeout=3000)
    assert led.brightness_spin.value() == 321.0
    assert led.temperature_slider.value() == 4300
    assert led.temperature_spin.value() == 4300
    assert led.pattern_combo.currentData() == "ramp"
    assert led.reported_labels["brightness_nits"].text() == "321 nits"
    # the wall now differs from what the engine would re-apply: shown, not hidden
    assert led.desired_labels["brightness_nits"].text() == "800 nits"
    assert led.reported_labels["brightness_nits"].property("drift") is True
    assert sim_values(console.harness)["brightness_nits"] == 321.0  # nothing fought back

    qtbot.mouseClick(led.adopt_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: led.desired_labels["brightness_nits"].text() == "321 nits",
                    timeout=3000)
    assert led.reported_labels["brightness_nits"].property("drift") is False


def test_panel_fault_shows_as_degraded_with_alert(qtbot: QtBot, console: Console) -> None:
    front_panel(console).send_message("/sim/fault/panels_offline", 12)
    led, health = console.led, console.window.health_panel
    qtbot.waitUntil(lambda: led.panels_label.text() == "228 / 240", timeout=3000)
    qtbot.waitUntil(lambda: health.health_of("led-main") == "degraded", timeout=3000)
    qtbot.waitUntil(lambda: "panels offline: 12" in led.alerts_label.text(), timeout=3000)
    assert any("12 of 240 panels offline" in line for line in console.window.event_log.lines())


def test_silent_processor_goes_offline_and_preset_is_refused(qtbot: QtBot,
                                                             console: Console) -> None:
    led, window = console.led, console.window
    front_panel(console).send_message("/sim/fault/mute", 1)  # processor stops answering
    qtbot.waitUntil(lambda: window.health_panel.health_of("led-main") == "offline",
                    timeout=4000)
    led.preset_spin.setValue(3)
    with qtbot.waitSignal(console.bridge.command_failed, timeout=3000) as failed:
        qtbot.mouseClick(led.recall_button, Qt.MouseButton.LeftButton)
    assert failed.args[0] == "led.preset"
    # the refusal reaches the log as an error, with the driver's reason
    assert any("[error]" in line and "cannot recall preset 3" in line
               for line in window.event_log.lines())
    front_panel(console).send_message("/sim/fault/mute", 0)
    qtbot.waitUntil(lambda: window.health_panel.health_of("led-main") == "online",
                    timeout=4000)


def test_resync_and_unrelated_reports_do_not_snap_back_a_control(qtbot: QtBot) -> None:
    panel = LedPanel("led-x", 1500)
    qtbot.addWidget(panel)
    snapshot = {"state": {"brightness_nits": 1000.0, "test_pattern": "off"}, "desired": {}}
    panel.apply_snapshot(snapshot)
    intents: list[tuple[str, dict[str, object]]] = []
    panel.intent.connect(lambda cmd, args: intents.append((cmd, args)))
    panel.brightness_slider.setValue(800)  # a click on the track: sent at once
    assert intents == [("led.set", {"device": "led-x", "key": "brightness_nits",
                                    "value": 800.0})]
    panel.apply_snapshot(snapshot)  # a resync answered before the wall took the change
    panel.apply_reported({"temperature_c": 31.5})
    assert panel.brightness_slider.value() == 800
    assert panel.processor_temperature_label.text() == "31.5 °C"
    panel.apply_reported({"brightness_nits": 640.0})  # the wall moved (front panel)
    assert panel.brightness_slider.value() == 640
    assert len(intents) == 1  # rendering never sends


# ---- roles, interlocks and liveness (no engine: hand-built controls data) ----------------

LED_WIDGETS = ("brightness_slider", "brightness_spin", "temperature_slider", "temperature_spin",
               "blackout_button", "freeze_button", "pattern_combo", "preset_spin",
               "recall_button", "adopt_button")
WALL_FAULT = {"code": "device_offline", "params": {"device": "led-x"},
              "message": "led-x is offline"}


def led_controls(role: str, device_ready: dict[str, Any] | None = None) -> Controls:
    controls = Controls(ClientIdentity(user="ana", role=role))
    controls.set_live(True)
    led_roles = {"roles": ["engineer", "operator"], "needs": ["device_ready"]}
    controls.apply_snapshot({
        "you": {"user": "ana", "role": role},
        "commands": {"led.set": led_roles, "led.preset": led_roles, "led.adopt": led_roles},
        "interlocks": {},
        "devices": {"led-x": {"device_ready": device_ready}},
    })
    return controls


def a_panel(qtbot: QtBot, controls: Controls | None = None) -> LedPanel:
    panel = LedPanel("led-x", 1500, controls)
    qtbot.addWidget(panel)
    return panel


SNAPSHOT: dict[str, object] = {
    "state": {"brightness_nits": 800.0, "colour_temperature_k": 5600, "blackout": True,
              "freeze": False, "test_pattern": "grid", "brightness_output_nits": 0.0,
              "temperature_c": 41.0, "panels_online": 240, "panels_total": 240, "preset": 2,
              "alerts": []},
    "desired": {"brightness_nits": 800.0, "colour_temperature_k": 5600, "blackout": True},
}


@pytest.mark.parametrize("role", ["viewer", "producer"])
def test_viewer_and_producer_see_every_control_disabled_with_the_reason(
        qtbot: QtBot, role: str) -> None:
    panel = a_panel(qtbot, led_controls(role))
    panel.apply_snapshot(SNAPSHOT)
    label = {"viewer": "viewer", "producer": "producer"}[role]
    for name in LED_WIDGETS:
        widget = getattr(panel, name)
        assert not widget.isEnabled(), name
        assert widget.toolTip() == (f"The {label} role may not use this control "
                                    "(allowed: engineer, operator)"), name
    assert panel.reported_labels["brightness_nits"].text() == "800 nits"  # still shown


def test_operator_controls_follow_the_device_interlock(qtbot: QtBot) -> None:
    controls = led_controls("operator")
    panel = a_panel(qtbot, controls)
    assert all(getattr(panel, name).isEnabled() for name in LED_WIDGETS)
    assert panel.adopt_button.toolTip() == tr("adopt_tip")  # its own tip while allowed
    blocked = led_controls("operator", device_ready=WALL_FAULT)
    controls.apply_snapshot(blocked.snapshot)
    for name in LED_WIDGETS:
        assert not getattr(panel, name).isEnabled(), name
        assert getattr(panel, name).toolTip() == "led-x is offline", name
    i18n.set_language("zh")
    viewer = a_panel(qtbot, led_controls("viewer"))
    assert viewer.recall_button.toolTip() == "访客无权执行此操作（允许：工程师、操作员）"


def test_stale_hides_every_value_and_returns_only_with_fresh_data(qtbot: QtBot) -> None:
    panel = a_panel(qtbot)
    panel.show()
    panel.apply_snapshot(SNAPSHOT)
    panel.apply_reported({"alerts": ["panels offline: 3"]})
    assert panel.output_label.text() == "0 nits"
    assert not panel.stale_banner.isVisible()

    panel.set_live(False)
    value_labels = [*panel.desired_labels.values(), *panel.reported_labels.values(),
                    panel.output_label, panel.processor_temperature_label, panel.panels_label,
                    panel.preset_label, panel.alerts_label]
    for label in value_labels:
        assert label.text() == "unknown", label.objectName()
        assert label.property("stale") is True
        assert label.toolTip().startswith("Stale")
    assert panel.stale_banner.isVisible()
    assert "Stale" in panel.stale_banner.text()
    for name in LED_WIDGETS:
        assert not getattr(panel, name).isEnabled(), name
    # the controls do not show the last value either
    assert panel.brightness_spin.text() == "unknown"
    assert panel.temperature_spin.text() == "unknown"
    assert not panel.blackout_button.isChecked()
    assert panel.pattern_combo.currentIndex() == -1
    panel.apply_reported({"temperature_c": 44.0})  # arrives while stale: still hidden
    assert panel.processor_temperature_label.text() == "unknown"

    panel.set_live(True)  # back, but nothing fresh yet for the other values
    assert not panel.stale_banner.isVisible()
    assert all(getattr(panel, name).isEnabled() for name in LED_WIDGETS)
    assert panel.processor_temperature_label.text() == "44.0 °C"  # received after the loss
    assert panel.reported_labels["brightness_nits"].text() == "unknown"
    assert panel.output_label.text() == "unknown"
    assert panel.alerts_label.text() == "unknown"
    assert panel.brightness_spin.text() == "unknown"

    panel.apply_reported({"brightness_nits": 640.0})  # one fresh delta: that key only
    assert panel.reported_labels["brightness_nits"].text() == "640 nits"
    assert panel.reported_labels["brightness_nits"].property("stale") is False
    assert panel.brightness_slider.value() == 640
    assert panel.brightness_spin.value() == 640.0 and "640" in panel.brightness_spin.text()
    assert panel.desired_labels["brightness_nits"].text() == "unknown"
    assert panel.drift_marks["brightness_nits"].text() == ""  # unknown is not a mismatch
    assert panel.reported_labels["colour_temperature_k"].text() == "unknown"

    panel.apply_snapshot(SNAPSHOT)  # a fresh snapshot: everything again
    for label in value_labels:
        assert label.property("stale") is False, label.objectName()
    assert panel.alerts_label.text() == "none"
    assert panel.blackout_button.isChecked()
    assert panel.pattern_combo.currentData() == "grid"
    assert panel.temperature_spin.value() == 5600


def test_panel_follows_controls_liveness(qtbot: QtBot) -> None:
    controls = Controls(ClientIdentity(user="ana", role="operator"))
    panel = a_panel(qtbot, controls)  # the engine not heard yet
    assert panel.live is False
    assert panel.reported_labels["brightness_nits"].text() == "unknown"
    controls.set_live(True)
    assert panel.live is True
    panel.apply_snapshot(SNAPSHOT)
    assert panel.output_label.text() == "0 nits"
    controls.set_live(False)
    assert panel.output_label.text() == "unknown"


def test_mismatch_is_marked_with_a_symbol_not_only_colour(qtbot: QtBot) -> None:
    panel = a_panel(qtbot)
    panel.apply_snapshot(SNAPSHOT)
    mark = panel.drift_marks["brightness_nits"]
    assert mark.text() == ""
    panel.apply_reported({"brightness_nits": 321.0})
    assert mark.text() == "≠"
    assert mark.toolTip() == "The wall differs from the desired value"
    assert panel.reported_labels["brightness_nits"].property("drift") is True
    assert panel.drift_marks["colour_temperature_k"].text() == ""
    panel.apply_desired({"brightness_nits": 321.0})  # adopted
    assert mark.text() == "" and mark.toolTip() == ""


def test_alerts_render_from_codes_in_the_console_language(qtbot: QtBot) -> None:
    i18n.set_language("zh")
    panel = a_panel(qtbot)
    panel.apply_snapshot(SNAPSHOT)
    panel.apply_reported({
        "alerts": ["panels offline: 12", "over temperature: 71.5 C"],
        "alert_problems": [
            {"code": "led_alert_panels_offline", "params": {"count": 12},
             "message": "panels offline: 12"},
            {"code": "led_alert_over_temperature", "params": {"temperature_c": 71.5},
             "message": "over temperature: 71.5 °C"}]})
    lines = panel.alerts_label.text().splitlines()
    assert lines == ["⚠ 灯板离线：12 块", "⚠ 温度过高：71.5 °C"]
    panel.apply_reported({"alerts": ["fan 2 stalled"]})  # a driver without codes
    assert panel.alerts_label.text() == "⚠ fan 2 stalled"
    panel.apply_reported({"alerts": [], "alert_problems": []})
    assert panel.alerts_label.text() == "无"
    panel.set_live(False)
    assert panel.alerts_label.text() == "未知"
    assert panel.stale_banner.text().startswith("⚠ 数据过期：")


def test_engine_loss_shows_the_wall_stale_and_disables_its_controls(qtbot: QtBot) -> None:
    harness = StageHarness(free_port_config(stage="gui-led-loss")).start()
    bridge = make_bridge(harness)
    window = MainWindow(harness.config, bridge)
    qtbot.addWidget(window)
    bridge.start()
    try:
        panel = window.led_panels["led-main"]
        qtbot.waitUntil(lambda: panel.reported_labels["brightness_nits"].property("stale")
                        is False and panel.brightness_slider.isEnabled(), timeout=3000)
        assert panel.output_label.text().endswith("nits")
        harness.stop()
        qtbot.waitUntil(lambda: panel.stale_banner.isVisibleTo(window), timeout=3000)
        for label in (*panel.reported_labels.values(), *panel.desired_labels.values(),
                      panel.output_label, panel.panels_label, panel.alerts_label):
            assert label.text() == "unknown"
        for name in LED_WIDGETS:
            widget = getattr(panel, name)
            assert not widget.isEnabled(), name
        assert panel.recall_button.toolTip() == \
            "The engine is not connected; this control is unavailable"
    finally:
        stop_bridge(bridge)
        if harness.loop.loop.is_running():
            harness.stop()
