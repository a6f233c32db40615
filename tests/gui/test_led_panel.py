"""Operator actions on the LED panel reach the simulated processor, and back.

Every assertion on an action reads the *simulator's* state: the path under test is widget ->
bridge -> engine -> OSC driver -> simulator. Front-panel changes are sent straight to the
simulator over OSC (python-osc, as a third-party client would) and must show in the widgets.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from pythonosc.udp_client import SimpleUDPClient

from tests.gui.conftest import Console, sim_address, sim_values


def front_panel(console: Console) -> SimpleUDPClient:
    host, port = sim_address(console.harness)
    return SimpleUDPClient(host, port)


def test_brightness_slider_drag_sets_the_wall(qtbot, console: Console) -> None:
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


def test_brightness_spinbox_typed_value_sets_the_wall(qtbot, console: Console) -> None:
    spin = console.led.brightness_spin
    spin.lineEdit().selectAll()
    qtbot.keyClicks(spin.lineEdit(), "450")
    qtbot.keyClick(spin.lineEdit(), Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: sim_values(console.harness)["brightness_nits"] == 450.0,
                    timeout=3000)
    qtbot.waitUntil(lambda: console.led.reported.get("brightness_nits") == 450.0, timeout=3000)
    assert console.led.brightness_slider.value() == 450


def test_colour_temperature_slider_sets_the_wall(qtbot, console: Console) -> None:
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


def test_blackout_and_freeze_toggles(qtbot, console: Console) -> None:
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


def test_test_pattern_combo(qtbot, console: Console) -> None:
    combo = console.led.pattern_combo
    while combo.currentData() != "grid":  # arrow keys on a closed combo, as an operator would
        qtbot.keyClick(combo, Qt.Key.Key_Down)
    qtbot.waitUntil(lambda: sim_values(console.harness)["test_pattern"] == "grid",
                    timeout=3000)
    qtbot.waitUntil(lambda: console.led.reported.get("test_pattern") == "grid", timeout=3000)
    assert combo.currentText() == "grid"  # unrelated reports in between never moved it


def test_preset_recall(qtbot, console: Console) -> None:
    led = console.led
    led.preset_spin.setValue(2)
    qtbot.mouseClick(led.recall_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: sim_values(console.harness)["colour_temperature_k"] == 3200,
                    timeout=3000)
    assert sim_values(console.harness)["brightness_nits"] == 600.0
    qtbot.waitUntil(lambda: led.preset_label.text() == "2", timeout=3000)
    qtbot.waitUntil(lambda: led.temperature_slider.value() == 3200, timeout=3000)


def test_front_panel_changes_show_in_the_widgets(qtbot, console: Console) -> None:
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


def test_panel_fault_shows_as_degraded_with_alert(qtbot, console: Console) -> None:
    front_panel(console).send_message("/sim/fault/panels_offline", 12)
    led, health = console.led, console.window.health_panel
    qtbot.waitUntil(lambda: led.panels_label.text() == "228 / 240", timeout=3000)
    qtbot.waitUntil(lambda: health.health_of("led-main") == "degraded", timeout=3000)
    qtbot.waitUntil(lambda: "panels offline: 12" in led.alerts_label.text(), timeout=3000)
    assert any("12 of 240 panels offline" in line for line in console.window.event_log.lines())


def test_silent_processor_goes_offline_and_preset_is_refused(qtbot, console: Console) -> None:
    led, window = console.led, console.window
    front_panel(console).send_message("/sim/fault/mute", 1)  # processor stops answering
    qtbot.waitUntil(lambda: window.health_panel.health_of("led-main") == "offline",
                    timeout=4000)
    led.preset_spin.setValue(3)
    with qtbot.waitSignal(console.bridge.command_failed, timeout=3000) as failed:
        qtbot.mouseClick(led.recall_button, Qt.MouseButton.LeftButton)
    assert failed.args[0] == "led.preset"
    assert any("led.preset failed" in line and "cannot recall preset 3" in line
               for line in window.event_log.lines())
    front_panel(console).send_message("/sim/fault/mute", 0)
    qtbot.waitUntil(lambda: window.health_panel.health_of("led-main") == "online",
                    timeout=4000)


def test_resync_and_unrelated_reports_do_not_snap_back_a_control(qtbot) -> None:
    from gui.led_panel import LedPanel

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
