"""What a processor cannot do shows as *unsupported* on the LED panel, never as broken or stale.

Two kinds of wall: the stagectl OSC processor through a real engine and simulator (its driver
declares ``input`` and ``group_brightness`` unsupported), and a vendor processor whose snapshot
and deltas are fed through the same path the engine's messages take (the bridge's
``status_received`` signal and the listener's ``dispatch`` of a ``device.<name>`` delta): it
has an input and groups but no colour bars and no light-output, panel or temperature readout.
"""

# mypy: disallow-untyped-calls=False
# (pytest-qt's key and mouse helpers are untyped)

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage, QStandardItemModel
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from drivers.led.driver import OSC_CAPABILITIES
from drivers.led.model import Capabilities
from gui import i18n
from gui.app import DEFAULT_SIZE, LEFT_WIDTH, MainWindow
from gui.bridge import EngineBridge
from gui.controls import Controls
from gui.led_panel import MAX_GROUPS, LedPanel
from stagectl.client import ClientIdentity
from stagectl.harness import StageHarness, free_port_config
from tests.gui.conftest import OPERATOR, Console

OSC_INPUT_WHY = "the stagectl LED OSC address space has no input selection"
OSC_GROUPS_WHY = "the stagectl LED OSC address space has no groups"

# A vendor processor as its driver would describe itself (drivers.led.model.Capabilities)
VENDOR_PATTERNS = ("off", "white", "black", "red", "green", "blue", "grid", "ramp",
                   "checkerboard")
VENDOR_CAPS = Capabilities("tessera", unsupported={
    "output_frame_rate_hz": "no output frame rate in the Tessera API 3.1",
    "brightness_output": "the Tessera API has no readback of the actual light output",
    "panels": "the Tessera API 3.1 does not count panels",
    "temperature": "processor temperature needs firmware 3.5",
}, test_patterns=VENDOR_PATTERNS).as_dict()
VENDOR_SNAPSHOT: dict[str, Any] = {
    "name": "led-main", "kind": "led", "health": "online", "health_reason": "",
    "state": {"brightness_nits": 1200.0, "colour_temperature_k": 5600, "blackout": False,
              "freeze": False, "test_pattern": "off", "input": "sdi:1",
              "group_brightness.1": 1200.0, "group_brightness.2": 900.0,
              "group_brightness.10": 1000.0, "preset": 4, "alerts": [],
              "processor": {"model": "SX40", "serial": "SX40-004211", "firmware": "3.5.2",
                            "name": "Stage A"}},
    "desired": {"brightness_nits": 1200.0, "group_brightness.2": 1000.0, "input": "sdi:1"},
    "counters": {}, "capabilities": VENDOR_CAPS,
}


def operator_controls(role: str = "operator") -> Controls:
    controls = Controls(ClientIdentity(user="ana", role=role))
    controls.set_live(True)
    led_roles = {"roles": ["engineer", "operator"], "needs": ["device_ready"]}
    controls.apply_snapshot({
        "you": {"user": "ana", "role": role},
        "commands": {"led.set": led_roles, "led.preset": led_roles, "led.adopt": led_roles},
        "interlocks": {}, "devices": {"led-main": {"device_ready": None}},
    })
    return controls


@pytest.fixture
def vendor_window(qtbot: QtBot) -> Iterator[tuple[MainWindow, EngineBridge]]:
    """A window on a stage with one LED wall, fed by hand through the bridge's own path."""
    config = free_port_config(stage="gui-vendor")
    bridge = EngineBridge(config, identity=OPERATOR)  # never started: no engine
    window = MainWindow(config, bridge)
    qtbot.addWidget(window)
    window.controls.apply_snapshot(operator_controls().snapshot)
    bridge.connection_changed.emit(True)
    bridge.status_received.emit({"devices": [VENDOR_SNAPSHOT]})
    yield window, bridge
    window.close()


def delta(bridge: EngineBridge, data: dict[str, Any], seq: int) -> None:
    """A ``device.led-main`` delta as the engine publishes it, through the listener."""
    bridge._listener.dispatch("device.led-main", {"type": "delta", "seq": seq,
                                                  "device": "led-main", "data": data})


def intents_of(panel: LedPanel) -> list[tuple[str, dict[str, Any]]]:
    seen: list[tuple[str, dict[str, Any]]] = []
    panel.intent.connect(lambda cmd, args: seen.append((cmd, args)))
    return seen


# ---- the OSC processor, through a real engine ---------------------------------------------

def test_osc_input_and_groups_are_disabled_and_marked_unsupported(
        qtbot: QtBot, console: Console) -> None:
    led = console.led
    qtbot.waitUntil(lambda: led.capabilities is not None, timeout=3000)
    qtbot.waitUntil(led.brightness_slider.isEnabled, timeout=3000)  # controls arrived
    assert led.vendor == "stagectl OSC"
    assert led.processor_label.text() == "Processor: stagectl OSC"
    for widget in (led.input_combo, led.input_button):
        assert not widget.isEnabled()
        assert widget.property("unsupported") is True
        assert widget.toolTip() == f"Not supported by stagectl OSC: {OSC_INPUT_WHY}"
    for label in (led.desired_labels["input"], led.reported_labels["input"]):
        assert label.text() == "unsupported"
        assert label.property("unsupported") is True and label.property("stale") is False
        assert "Not supported by stagectl OSC" in label.toolTip()
    assert led.name_labels["input"].toolTip().endswith(OSC_INPUT_WHY)
    assert led.groups_note.text() == "unsupported" and led.groups_note.isVisibleTo(led)
    assert led.groups_note.toolTip() == f"Not supported by stagectl OSC: {OSC_GROUPS_WHY}"
    assert led.group_spins == {}
    # what OSC can do stays as it was: live values, enabled controls, every pattern
    assert led.brightness_slider.isEnabled() and led.recall_button.isEnabled()
    assert led.brightness_slider.property("unsupported") is False
    offered = [led.pattern_combo.itemData(i) for i in range(led.pattern_combo.count())]
    assert offered == list(OSC_CAPABILITIES.test_patterns)
    qtbot.waitUntil(lambda: led.panels_label.text() == "240 / 240", timeout=3000)
    assert led.processor_temperature_label.text().endswith("°C")
    assert led.output_label.text().endswith("nits")


def test_an_unsupported_refusal_renders_in_both_languages(qtbot: QtBot,
                                                          console: Console) -> None:
    """A command for a missing feature (another client's, or a stale control) is refused by
    the engine with code ``unsupported``: the console says so in English and in Chinese."""
    window, bridge = console.window, console.bridge
    with qtbot.waitSignal(bridge.command_error, timeout=3000) as refused:
        bridge.command("led.set", {"device": "led-main", "key": "input", "value": "sdi:1"})
    cmd, error = refused.args
    assert (cmd, error["code"]) == ("led.set", "unsupported")
    assert (error["device"], error["feature"], error["vendor"]) == \
        ("led-main", "input", "stagectl OSC")
    qtbot.waitUntil(lambda: any("input is not supported by stagectl OSC" in line
                                for line in window.event_log.lines()), timeout=3000)
    i18n.set_language("zh")
    with qtbot.waitSignal(bridge.command_error, timeout=3000):
        bridge.command("led.set", {"device": "led-main", "key": "group_brightness.1",
                                   "value": 500})
    qtbot.waitUntil(lambda: any("该处理器不支持此功能（不是故障）" in line
                                for line in window.event_log.lines()), timeout=3000)
    assert "不支持" in window.statusBar().currentMessage()


def test_osc_unsupported_in_chinese(qtbot: QtBot) -> None:
    i18n.set_language("zh")
    panel = LedPanel("led-main", 1500)
    qtbot.addWidget(panel)
    panel.apply_snapshot({"state": {"brightness_nits": 800.0}, "desired": {},
                          "capabilities": OSC_CAPABILITIES.as_dict()})
    assert panel.reported_labels["input"].text() == "不支持"
    assert panel.input_button.toolTip() == "stagectl OSC 不支持输入源切换"
    assert panel.groups_note.toolTip() == "stagectl OSC 不支持分组亮度"
    assert panel.processor_label.text() == "处理器：stagectl OSC"


def test_unsupported_stays_disabled_through_an_engine_loss(qtbot: QtBot) -> None:
    panel = LedPanel("led-main", 1500, operator_controls())
    qtbot.addWidget(panel)
    panel.apply_snapshot({"state": {"brightness_nits": 800.0}, "desired": {},
                          "capabilities": OSC_CAPABILITIES.as_dict()})
    assert panel.controls is not None
    panel.controls.set_live(False)
    # values are unknown like every other (the contract), the control still says why
    assert panel.reported_labels["input"].text() == "unknown"
    assert panel.reported_labels["input"].property("stale") is True
    assert not panel.input_button.isEnabled()
    assert panel.input_button.toolTip().startswith("Not supported by stagectl OSC")
    assert panel.recall_button.toolTip() == \
        "The engine is not connected; this control is unavailable"
    panel.controls.set_live(True)  # back: the declared capabilities hold at once
    assert panel.reported_labels["input"].text() == "unsupported"
    assert panel.reported_labels["brightness_nits"].text() == "unknown"  # until fresh
    assert not panel.input_button.isEnabled() and panel.recall_button.isEnabled()


# ---- a vendor processor, fed through the bridge's path -------------------------------------

def test_vendor_input_and_groups_are_offered_and_send_led_set(
        qtbot: QtBot, vendor_window: tuple[MainWindow, EngineBridge]) -> None:
    window, _ = vendor_window
    led = window.led_panels["led-main"]
    sent = intents_of(led)
    assert led.processor_label.text() == \
        "Processor: Brompton Tessera · SX40 · firmware 3.5.2 · serial SX40-004211 · “Stage A”"
    assert led.input_combo.isEnabled() and led.input_button.isEnabled()
    assert led.input_combo.currentText() == "sdi:1"
    assert led.reported_labels["input"].text() == "sdi:1"
    assert led.input_button.toolTip().startswith("Type or choose")
    line = led.input_combo.lineEdit()
    assert line is not None
    line.selectAll()
    qtbot.keyClicks(line, "sdi:2")
    assert sent == []  # typing sends nothing
    qtbot.mouseClick(led.input_button, Qt.MouseButton.LeftButton)
    assert sent == [("led.set", {"device": "led-main", "key": "input", "value": "sdi:2"})]

    assert list(led.group_spins) == ["1", "2", "10"]  # numeric order, from reported keys
    assert not led.groups_note.isVisibleTo(led)
    spin = led.group_spins["2"]
    assert spin.isEnabled() and spin.value() == 900.0 and spin.maximum() == 1500.0
    assert led.group_desired_labels["2"].text() == "1000 nits"
    assert led.group_reported_labels["2"].text() == "900 nits"
    assert led.group_drift_marks["2"].text() == "≠"  # reported differs from desired
    sent.clear()
    spin.lineEdit().selectAll()
    qtbot.keyClicks(spin.lineEdit(), "750")
    qtbot.keyClick(spin.lineEdit(), Qt.Key.Key_Return)
    assert sent == [("led.set", {"device": "led-main", "key": "group_brightness.2",
                                 "value": 750.0})]


def test_vendor_deltas_move_the_controls_and_never_send(
        qtbot: QtBot, vendor_window: tuple[MainWindow, EngineBridge]) -> None:
    window, bridge = vendor_window
    led = window.led_panels["led-main"]
    sent = intents_of(led)
    delta(bridge, {"group_brightness.2": 1000.0, "group_brightness.3": 400.0,
                   "input": "hdmi:1", "inputs": ["sdi:1", "sdi:2", "hdmi:1"]}, seq=1)
    assert led.group_spins["2"].value() == 1000.0
    assert led.group_drift_marks["2"].text() == ""
    assert list(led.group_spins) == ["1", "2", "10", "3"]  # a new group gets a row
    assert led.group_spins["3"].value() == 400.0
    assert led.input_combo.currentText() == "hdmi:1"
    assert [led.input_combo.itemText(i) for i in range(led.input_combo.count())] == \
        ["sdi:1", "sdi:2", "hdmi:1"]
    assert sent == []


def test_vendor_patterns_only_what_the_processor_has(
        qtbot: QtBot, vendor_window: tuple[MainWindow, EngineBridge]) -> None:
    window, bridge = vendor_window
    led = window.led_panels["led-main"]
    combo = led.pattern_combo
    assert [combo.itemData(i) for i in range(combo.count())] == list(VENDOR_PATTERNS)
    assert combo.findData("colour_bars") == -1
    # the processor shows a pattern of its own (set at its front panel): shown as is
    delta(bridge, {"test_pattern": "tessera:smpte-bars"}, seq=1)
    assert combo.currentText() == "tessera:smpte-bars"
    assert led.reported_labels["test_pattern"].text() == "tessera:smpte-bars"
    model = combo.model()
    assert isinstance(model, QStandardItemModel)
    vendor_item = model.item(combo.currentIndex())
    assert vendor_item is not None and not vendor_item.isEnabled()  # never chosen
    assert combo.count() == len(VENDOR_PATTERNS) + 1
    sent = intents_of(led)
    combo.setFocus()
    qtbot.keyClick(combo, Qt.Key.Key_Up)  # the operator picks the pattern above it
    assert sent == [("led.set", {"device": "led-main", "key": "test_pattern",
                                 "value": "checkerboard"})]
    delta(bridge, {"test_pattern": "checkerboard"}, seq=2)
    assert combo.currentData() == "checkerboard"
    assert combo.count() == len(VENDOR_PATTERNS)  # the vendor entry is gone


def test_vendor_status_not_reported_is_not_unknown(
        qtbot: QtBot, vendor_window: tuple[MainWindow, EngineBridge]) -> None:
    window, _ = vendor_window
    led = window.led_panels["led-main"]
    for label in (led.output_label, led.panels_label, led.processor_temperature_label):
        assert label.text() == "not reported by\nthis processor", label.objectName()
        assert label.property("unsupported") is True and label.property("stale") is False
        assert label.toolTip().startswith("Not supported by Brompton Tessera: ")
    assert led.panels_label.toolTip().endswith("the Tessera API 3.1 does not count panels")
    assert led.preset_label.text() == "4"
    assert led.alerts_label.text() == "none"
    i18n.set_language("zh")
    led.refresh()
    assert led.output_label.text() == "该处理器不提供此数据"
    assert led.output_label.toolTip() == "Brompton Tessera 不支持实际输出亮度读数"
    assert led.processor_label.text() == \
        "处理器：Brompton Tessera · SX40 · 固件 3.5.2 · 序列号 SX40-004211 · “Stage A”"


def test_viewer_sees_vendor_controls_refused_by_role_not_unsupported(qtbot: QtBot) -> None:
    panel = LedPanel("led-main", 1500, operator_controls("viewer"))
    qtbot.addWidget(panel)
    panel.apply_snapshot(VENDOR_SNAPSHOT)
    role_tip = "The viewer role may not use this control (allowed: engineer, operator)"
    for widget in (panel.input_combo, panel.input_button, *panel.group_spins.values()):
        assert not widget.isEnabled()
        assert widget.property("unsupported") is False
        assert widget.toolTip() == role_tip


def test_capabilities_in_a_delta_and_hostile_shapes(qtbot: QtBot) -> None:
    panel = LedPanel("led-main", 1500)
    qtbot.addWidget(panel)
    panel.apply_snapshot({"state": {}, "desired": {}})
    assert panel.capabilities is None and panel.input_button.isEnabled()  # old engine
    for junk in ("tessera", ["input"], {"unsupported": "input"}, None, 7):
        panel.apply_reported({"capabilities": junk})
        assert panel.input_button.isEnabled()
    assert "capabilities" not in panel.reported
    panel.apply_reported({"capabilities": {"protocol": "novastar",
                                           "unsupported": {"input": "not on this model"},
                                           "test_patterns": ["off", "red", 5, "x" * 500]}})
    assert panel.vendor == "NovaStar COEX"  # from the protocol when no vendor is sent
    assert not panel.input_button.isEnabled()
    assert panel.input_button.toolTip() == "Not supported by NovaStar COEX: not on this model"
    assert panel.pattern_combo.count() == 3 and len(panel.pattern_combo.itemText(2)) <= 64
    many = {f"group_brightness.{i}": 100.0 for i in range(500)}
    many["group_brightness.no good!"] = 1.0
    panel.apply_reported(many)
    assert len(panel.group_spins) == MAX_GROUPS
    assert panel.groups_note.text() == f"{500 - MAX_GROUPS} more groups not shown"
    panel.apply_reported({"processor": "not a dict", "input": 42})
    assert panel.processor_label.text() == "Processor: NovaStar COEX"


def test_vendor_engine_loss_hides_group_values(
        qtbot: QtBot, vendor_window: tuple[MainWindow, EngineBridge]) -> None:
    window, bridge = vendor_window
    led = window.led_panels["led-main"]
    bridge.connection_changed.emit(False)
    assert led.group_reported_labels["1"].text() == "unknown"
    assert led.group_desired_labels["2"].text() == "unknown"
    assert not led.group_spins["1"].isEnabled()
    assert led.group_spins["1"].text() == "unknown"
    assert led.input_combo.currentText() == ""
    assert led.processor_label.text() == "Processor: Brompton Tessera"  # identity is state
    bridge.connection_changed.emit(True)
    window.controls.apply_snapshot(operator_controls().snapshot)
    delta(bridge, {"group_brightness.1": 640.0}, seq=1)
    assert led.group_reported_labels["1"].text() == "640 nits"
    assert led.group_reported_labels["2"].text() == "unknown"  # not fresh yet
    assert led.group_spins["1"].isEnabled()


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_screenshot_of_a_vendor_wall(qtbot: QtBot, tmp_path: Path, lang: str) -> None:
    i18n.set_language(lang)
    panel = LedPanel("led-main", 1500, operator_controls())
    qtbot.addWidget(panel)
    panel.resize(820, 600)
    panel.show()
    panel.apply_snapshot({**VENDOR_SNAPSHOT, "state": {
        **VENDOR_SNAPSHOT["state"], "test_pattern": "tessera:smpte-bars"}})
    path = tmp_path / f"led-caps-{lang}.png"
    assert panel.grab().save(str(path))
    image = QImage(str(path))
    assert image.width() >= 800 and image.height() >= 500


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_window_still_fits_1366x768_with_a_vendor_wall(qtbot: QtBot, lang: str) -> None:
    """Unsupported marks, groups and the identity never squeeze the device table and log.

    The console takes its language at start (``STAGECTL_LANG``), so each language gets its
    own window, as an operator's would.
    """
    i18n.set_language(lang)
    try:
        config = free_port_config(stage="gui-vendor")
        bridge = EngineBridge(config, identity=OPERATOR)  # never started: no engine
        window = MainWindow(config, bridge)
        qtbot.addWidget(window)
        window.controls.apply_snapshot(operator_controls().snapshot)
        bridge.connection_changed.emit(True)
        window.show()
        qtbot.waitExposed(window)
        led = window.led_panels["led-main"]
        window.tabs.setCurrentWidget(led)
        bridge.status_received.emit({"devices": [VENDOR_SNAPSHOT]})
        QApplication.processEvents()
        assert (window.width(), window.height()) == DEFAULT_SIZE, lang
        hint = window.minimumSizeHint()
        assert hint.width() <= 1366 and hint.height() <= 768, (lang, hint)
        assert window.splitter.sizes()[0] >= LEFT_WIDTH - 10, (lang, window.splitter.sizes())
        assert led.width() >= led.minimumSizeHint().width(), lang  # nothing clipped
        window.close()
    finally:
        i18n.set_language("en")


def test_osc_stage_through_the_harness_shows_the_same_capabilities(qtbot: QtBot) -> None:
    """The snapshot's capabilities are the driver's own (not a copy kept in the console)."""
    harness = StageHarness(free_port_config(stage="gui-caps")).start()
    try:
        assert harness.engine is not None
        snapshot = harness.engine.devices["led-main"].snapshot()
        panel = LedPanel("led-main", 1500)
        qtbot.addWidget(panel)
        panel.apply_snapshot(snapshot)
        assert panel.unsupported("input") == OSC_INPUT_WHY
        assert panel.unsupported("group_brightness") == OSC_GROUPS_WHY
        assert panel.unsupported("brightness_nits") is None
    finally:
        harness.stop()


def test_a_model_pattern_the_processor_lacks_shows_translated_but_not_offered(
        qtbot: QtBot) -> None:
    i18n.set_language("zh")
    panel = LedPanel("led-main", 1500)
    qtbot.addWidget(panel)
    panel.apply_snapshot({**VENDOR_SNAPSHOT, "state": {"test_pattern": "colour_bars"}})
    combo = panel.pattern_combo
    assert combo.currentText() == "彩条"  # reported (another controller), not choosable
    assert combo.currentIndex() == len(VENDOR_PATTERNS)
    assert "colour_bars" in combo.itemData(combo.currentIndex(), Qt.ItemDataRole.ToolTipRole)
