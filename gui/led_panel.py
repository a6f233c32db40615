"""One LED wall's controls and status: renders reported/desired state, emits intents.

The controls follow what the wall *reports*, so a change made at the processor's front panel
moves them too; the desired column shows what the engine will re-apply on reconnect, and a
reported value that differs from it is highlighted (``Adopt`` makes the wall's values the
desired state). Every user action becomes one ``intent(cmd, args)``; the panel never talks to
the engine or decides anything on its own.

Every processor (stagectl OSC, Brompton Tessera, Megapixel HELIOS, NovaStar COEX) is driven
through the same controls. What a processor cannot do comes with its snapshot as
``capabilities`` (``drivers.led.model.Capabilities``): its controls are disabled and marked
*unsupported*, the tooltip naming the vendor and the reason, and a status value it does not
give reads "not reported by this processor": a missing feature never looks broken or stale.
The test-pattern chooser offers only the processor's patterns; a vendor pattern the model has
no name for (``tessera:smpte-bars``) is shown as reported. The header names the processor
(vendor, model, firmware) from the reported ``processor``.

Liveness (``docs/protocols/console-state.md``): while the engine is not heard from, every value
shows an explicit unknown look under a "stale" banner, never its last value, and the controls
are disabled. When the engine is back, a value returns only when a fresh snapshot or delta for
it arrives. The capabilities are kept meanwhile: like the wall's brightness limit they follow
from the stage config's ``driver``, so an unsupported control stays disabled and says why.
With a :class:`~gui.controls.Controls`, each control also follows the roles and interlocks
the engine publishes for its command, saying why in its tooltip when disabled.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QStandardItemModel
from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from drivers.led.model import (
    ALERTS,
    BRIGHTNESS_OUTPUT,
    FEATURES,
    GROUP_BRIGHTNESS,
    GROUP_PREFIX,
    INPUT,
    PANELS,
    PRESET_RECALL,
    TEMPERATURE,
    VENDORS,
)
from drivers.led.protocol import PRESET_MAX, PRESET_MIN, TEST_PATTERNS
from gui import i18n
from gui.controls import Controls, gate
from gui.i18n import add_strings, tr, tr_pattern
from gui.messages import render_message

COLOUR_TEMPERATURE_MIN_K, COLOUR_TEMPERATURE_MAX_K = 2000, 11000
DRIFT_STYLE = "background-color: #ffe0b2; color: #8a4b00; border-radius: 3px; padding: 0 4px;"
ALERT_STYLE = "color: #b71c1c; font-weight: bold;"
UNKNOWN_STYLE = "color: #9e9e9e; font-style: italic;"
# a feature the processor lacks: calm grey with a dotted outline (neither error red nor the
# italic unknown look of a stale value)
UNSUPPORTED_STYLE = ("color: #616161; background-color: #f5f5f5; border: 1px dotted #9e9e9e; "
                     "border-radius: 3px; padding: 0 4px;")
UNSUPPORTED_NAME_STYLE = "color: #757575;"
PROCESSOR_STYLE = "font-weight: bold; color: #263238; padding: 2px 0;"
STALE_BANNER_STYLE = ("background-color: #eeeeee; color: #424242; font-weight: bold; "
                      "border: 1px dashed #757575; padding: 2px 6px;")
DRIFT_MARK = "≠"
ALERT_MARK = "⚠"
BLACKOUT_STYLE = "QPushButton:checked { background-color: #b71c1c; color: white; }"
FREEZE_STYLE = "QPushButton:checked { background-color: #1565c0; color: white; }"

# The parameters this panel shows, in display order (each is also its feature's name).
SHOWN_KEYS: tuple[str, ...] = ("brightness_nits", "colour_temperature_k", "blackout", "freeze",
                               "test_pattern", INPUT)
# The reported keys the wall-status group shows.
STATUS_KEYS: tuple[str, ...] = ("brightness_output_nits", "temperature_c", "panels_online",
                                "panels_total", "preset", "alerts", "processor")
# A hostile or confused processor cannot grow the panel without bound.
MAX_GROUPS = 64
MAX_PATTERNS = 64
MAX_INPUTS = 64
TEXT_CHARS = 64  # a processor's name, model, firmware, input or pattern as shown
# the reported lists a vendor driver may give beside ``input``: the inputs it offers
INPUTS_KEY = "inputs"

add_strings({
    "led_unknown": {"en": "unknown", "zh": "未知"},
    "led_stale": {"en": "⚠ Stale: the engine is not heard from; values unknown",
                  "zh": "⚠ 数据过期：未收到引擎消息，数值未知"},
    "led_stale_tip": {"en": "Stale: no fresh value from the engine since the link was lost",
                      "zh": "数据过期：与引擎的连接中断后尚未收到新数值"},
    "led_unsupported": {"en": "unsupported", "zh": "不支持"},
    "led_not_supported_by": {"en": "Not supported by {vendor}", "zh": "{vendor} 不支持此功能"},
    # Chinese names the feature instead of the driver's English reason (which has no code)
    "led_not_supported_feature": {"en": "Not supported by {vendor}: {why}",
                                  "zh": "{vendor} 不支持{feature}"},
    # two lines in English, so the narrow status column keeps its width
    "led_not_reported": {"en": "not reported by\nthis processor", "zh": "该处理器不提供此数据"},
    "led_processor": {"en": "Processor: {text}", "zh": "处理器：{text}"},
    "led_processor_firmware": {"en": "firmware {version}", "zh": "固件 {version}"},
    "led_processor_serial": {"en": "serial {serial}", "zh": "序列号 {serial}"},
    "led_processor_name": {"en": "“{name}”", "zh": "“{name}”"},
    "led_input": {"en": "Input", "zh": "输入源"},
    "led_input_apply": {"en": "Switch", "zh": "切换"},
    "led_input_tip": {"en": "Type or choose the processor's input in its own words "
                            "(sdi:1, hdmi1, 12G-SDI ...), then press Switch",
                      "zh": "输入或选择处理器的输入源（按处理器自己的写法），然后点击“切换”"},
    "led_input_placeholder": {"en": "input name", "zh": "输入源名称"},
    "led_groups": {"en": "Group brightness", "zh": "分组亮度"},
    "led_group": {"en": "Group {group}", "zh": "分组 {group}"},
    "led_no_groups": {"en": "no groups reported by this processor",
                      "zh": "该处理器未报告分组"},
    "led_groups_more": {"en": "{count} more groups not shown", "zh": "另有 {count} 个分组未显示"},
    "led_pattern_vendor_tip": {"en": "The processor shows {pattern}, which the console cannot "
                                     "choose on it; choose another pattern to change it",
                               "zh": "处理器正在显示 {pattern}，控制台无法在此处理器上选择它；"
                                     "可选择其他测试画面替换"},
    # the features a processor may lack (drivers.led.model.FEATURES)
    "led_feature_brightness_nits": {"en": "brightness", "zh": "亮度调节"},
    "led_feature_colour_temperature_k": {"en": "colour temperature", "zh": "色温调节"},
    "led_feature_gamma": {"en": "gamma", "zh": "伽马调节"},
    "led_feature_blackout": {"en": "blackout", "zh": "黑屏"},
    "led_feature_freeze": {"en": "freeze", "zh": "冻结画面"},
    "led_feature_test_pattern": {"en": "test patterns", "zh": "测试画面"},
    "led_feature_output_frame_rate_hz": {"en": "output frame rate", "zh": "输出帧率设置"},
    "led_feature_genlock_source": {"en": "genlock source", "zh": "同步锁相源设置"},
    "led_feature_genlock_phase_deg": {"en": "genlock phase", "zh": "同步锁相相位设置"},
    "led_feature_input": {"en": "input selection", "zh": "输入源切换"},
    "led_feature_group_brightness": {"en": "group brightness", "zh": "分组亮度"},
    "led_feature_preset_recall": {"en": "preset recall", "zh": "预设调用"},
    "led_feature_preset_save": {"en": "preset save", "zh": "保存预设"},
    "led_feature_temperature": {"en": "temperature readout", "zh": "温度读数"},
    "led_feature_panels": {"en": "panel status", "zh": "灯板状态"},
    "led_feature_alerts": {"en": "alerts", "zh": "告警"},
    "led_feature_brightness_output": {"en": "light output readout", "zh": "实际输出亮度读数"},
})


def _format(key: str, value: Any) -> str:
    """A parameter value as the operator reads it."""
    if value is None:
        return tr("unset")
    if key in ("brightness_nits", "brightness_output_nits") or key.startswith(GROUP_PREFIX):
        return tr("nits", value=float(value))
    if key == "colour_temperature_k":
        return tr("kelvin", value=int(value))
    if key in ("blackout", "freeze"):
        return tr("on") if value else tr("off")
    if key == "test_pattern":
        return tr_pattern(_clip(value))  # a vendor pattern (tessera:smpte-bars) as reported
    return _clip(value)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) \
            and not isinstance(a, bool) and not isinstance(b, bool):
        return abs(float(a) - float(b)) <= 1e-3 * max(1.0, abs(float(a)))
    return bool(a == b)


def _clip(value: object, chars: int = TEXT_CHARS) -> str:
    text = str(value)
    return text if len(text) <= chars else text[:chars - 1] + "…"


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def feature_label(feature: str) -> str:
    """A feature (``input``, ``group_brightness`` ...) in the console's language."""
    key = f"led_feature_{feature}"
    return tr(key) if key in i18n.STRINGS else feature


def capabilities_from(value: object) -> dict[str, Any] | None:
    """A snapshot's ``capabilities`` made safe to show (None: not a capabilities object).

    Returns:
        ``{"protocol", "vendor", "unsupported": {feature: why}, "problems": {feature:
        message object}, "test_patterns": [...]}``, bounded; ``problems`` holds coded
        reasons when a driver sends them (``unsupported_problems``), rendered translated.
    """
    if not isinstance(value, Mapping):
        return None
    protocol = _clip(value.get("protocol") or "")
    vendor = value.get("vendor")
    vendor_text = _clip(vendor) if isinstance(vendor, str) and vendor.strip() \
        else VENDORS.get(protocol, protocol)
    raw = value.get("unsupported")
    unsupported = {_clip(k): _clip(v if isinstance(v, str) else "", 300)
                   for k, v in list(raw.items())[:len(FEATURES) + 16]} \
        if isinstance(raw, Mapping) else {}
    coded = value.get("unsupported_problems")
    problems = {str(k): dict(v) for k, v in list(coded.items())[:len(FEATURES) + 16]
                if isinstance(v, Mapping) and "code" in v} if isinstance(coded, Mapping) else {}
    patterns = value.get("test_patterns")
    if isinstance(patterns, list):
        shown = [_clip(p) for p in patterns[:MAX_PATTERNS] if isinstance(p, str) and p]
    else:
        shown = list(TEST_PATTERNS)
    return {"protocol": protocol, "vendor": vendor_text, "unsupported": unsupported,
            "problems": problems, "test_patterns": list(dict.fromkeys(shown))}


def _group_order(group: str) -> tuple[int, int, str]:
    return (0, int(group), "") if group.isdigit() else (1, 0, group)


class LedPanel(QWidget):
    """Controls and status of one LED processor, whatever its vendor.

    Args:
        device: the device name (sent with every intent).
        max_brightness_nits: this wall's brightness limit, from the stage config.
        controls: the engine's controls data; each control is bound to its command on this
            device, and the panel follows ``controls.live``. Without one (tests), every
            control is enabled while live.
        parent: the Qt parent.

    Attributes:
        capabilities: what the processor can do (:func:`capabilities_from`), None until a
            snapshot says (then every control is offered and the engine decides).

    Signals:
        intent(str, dict): a command name and its args for the engine.
    """

    intent = Signal(str, dict)

    def __init__(self, device: str, max_brightness_nits: float,
                 controls: Controls | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.device = device
        self.reported: dict[str, Any] = {}
        self.desired: dict[str, Any] = {}
        self.capabilities: dict[str, Any] | None = None
        self.live = True
        # keys whose last value went stale and has not been refreshed since (hidden)
        self._awaiting_reported: set[str] = set()
        self._awaiting_desired: set[str] = set()
        self._rendering = False
        self.max_brightness_nits = float(max_brightness_nits)
        max_nits = int(max_brightness_nits)

        # -- header: which processor this is
        self.processor_label = QLabel(tr("led_processor", text=tr("unset")))
        self.processor_label.setObjectName("processor_label")
        self.processor_label.setStyleSheet(PROCESSOR_STYLE)
        self.processor_label.setWordWrap(True)  # a long name never widens the panel
        self.processor_label.setTextInteractionFlags(
            Qt.TextInteractionFlag.TextSelectableByMouse)

        # -- settings: parameter | control | desired | mismatch mark | reported
        grid = QGridLayout()
        for col, key in ((0, "col_parameter"), (1, "col_control"), (2, "col_desired"),
                         (4, "col_reported")):
            header = QLabel(tr(key))
            header.setStyleSheet("font-weight: bold;")
            grid.addWidget(header, 0, col)
        grid.setColumnStretch(1, 1)

        self.brightness_slider = QSlider(Qt.Orientation.Horizontal)
        self.brightness_slider.setObjectName("brightness_slider")
        self.brightness_slider.setRange(0, max_nits)
        self.brightness_slider.setSingleStep(10)
        self.brightness_slider.setPageStep(100)
        self.brightness_spin = QDoubleSpinBox()
        self.brightness_spin.setObjectName("brightness_spin")
        self.brightness_spin.setRange(0.0, float(max_nits))
        self.brightness_spin.setDecimals(0)
        self.brightness_spin.setSingleStep(10.0)
        self.brightness_spin.setSuffix(tr("nits_suffix"))
        self.brightness_spin.setKeyboardTracking(False)

        self.temperature_slider = QSlider(Qt.Orientation.Horizontal)
        self.temperature_slider.setObjectName("colour_temperature_slider")
        self.temperature_slider.setRange(COLOUR_TEMPERATURE_MIN_K, COLOUR_TEMPERATURE_MAX_K)
        self.temperature_slider.setSingleStep(50)
        self.temperature_slider.setPageStep(500)
        self.temperature_spin = QSpinBox()
        self.temperature_spin.setObjectName("colour_temperature_spin")
        self.temperature_spin.setRange(COLOUR_TEMPERATURE_MIN_K, COLOUR_TEMPERATURE_MAX_K)
        self.temperature_spin.setSingleStep(50)
        self.temperature_spin.setSuffix(" K")
        self.temperature_spin.setKeyboardTracking(False)

        self.blackout_button = QPushButton(tr("blackout"))
        self.blackout_button.setObjectName("blackout_button")
        self.blackout_button.setCheckable(True)
        self.blackout_button.setStyleSheet(BLACKOUT_STYLE)
        self.freeze_button = QPushButton(tr("freeze"))
        self.freeze_button.setObjectName("freeze_button")
        self.freeze_button.setCheckable(True)
        self.freeze_button.setStyleSheet(FREEZE_STYLE)

        self.pattern_combo = QComboBox()
        self.pattern_combo.setObjectName("test_pattern_combo")
        self.pattern_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self._patterns: tuple[str, ...] = ()
        self._set_patterns(TEST_PATTERNS)

        self.input_combo = QComboBox()
        self.input_combo.setObjectName("input_combo")
        self.input_combo.setEditable(True)
        self.input_combo.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self.input_combo.setMinimumContentsLength(6)
        line = self.input_combo.lineEdit()
        if line is not None:
            line.setPlaceholderText(tr("led_input_placeholder"))
            line.setMaxLength(48)  # drivers.led.model.validate_input
        self.input_button = QPushButton(tr("led_input_apply"))
        self.input_button.setObjectName("input_button")
        input_tip = tr("led_input_tip")

        cells: dict[str, QWidget] = {
            "brightness_nits": _row(self.brightness_slider, self.brightness_spin),
            "colour_temperature_k": _row(self.temperature_slider, self.temperature_spin),
            "blackout": _row(self.blackout_button, stretch=True),
            "freeze": _row(self.freeze_button, stretch=True),
            "test_pattern": _row(self.pattern_combo, stretch=True),
            INPUT: _row(self.input_combo, self.input_button, stretch=True),
        }
        names = {"brightness_nits": "brightness", "colour_temperature_k": "colour_temperature",
                 "blackout": "blackout", "freeze": "freeze", "test_pattern": "test_pattern",
                 INPUT: "led_input"}
        self.name_labels: dict[str, QLabel] = {}
        self.desired_labels: dict[str, QLabel] = {}
        self.reported_labels: dict[str, QLabel] = {}
        self.drift_marks: dict[str, QLabel] = {}
        for row, key in enumerate(SHOWN_KEYS, start=1):
            self.name_labels[key] = QLabel(tr(names[key]))
            self.name_labels[key].setObjectName(f"name_{key}")
            grid.addWidget(self.name_labels[key], row, 0)
            grid.addWidget(cells[key], row, 1)
            self.desired_labels[key] = _value_label(f"desired_{key}")
            self.reported_labels[key] = _value_label(f"reported_{key}")
            mark = QLabel()
            mark.setObjectName(f"drift_mark_{key}")
            mark.setAlignment(Qt.AlignmentFlag.AlignCenter)
            mark.setMinimumWidth(16)
            self.drift_marks[key] = mark
            grid.addWidget(self.desired_labels[key], row, 2)
            grid.addWidget(mark, row, 3)
            grid.addWidget(self.reported_labels[key], row, 4)

        self.preset_spin = QSpinBox()
        self.preset_spin.setObjectName("preset_spin")
        self.preset_spin.setRange(PRESET_MIN, PRESET_MAX)
        self.preset_spin.setButtonSymbols(QAbstractSpinBox.ButtonSymbols.UpDownArrows)
        self.recall_button = QPushButton(tr("recall"))
        self.recall_button.setObjectName("recall_button")
        self.adopt_button = QPushButton(tr("adopt"))
        self.adopt_button.setObjectName("adopt_button")
        self.adopt_button.setToolTip(tr("adopt_tip"))
        preset_row = len(SHOWN_KEYS) + 1
        preset_cell = _row(self.preset_spin, self.recall_button, stretch=True)
        adopt_cell = _row(self.adopt_button, stretch=True)
        self.name_labels["preset"] = QLabel(tr("preset"))
        grid.addWidget(self.name_labels["preset"], preset_row, 0)
        grid.addWidget(preset_cell, preset_row, 1)
        grid.addWidget(adopt_cell, preset_row, 2, 1, 3)
        grid.setRowStretch(preset_row + 1, 1)  # spare height goes below, not between rows

        settings = QGroupBox(tr("settings_group"))
        settings.setLayout(grid)

        # -- group brightness: one row per group the processor reports
        self.groups_box = QGroupBox(tr("led_groups"))
        self.groups_box.setObjectName("groups_box")
        self._groups_grid = QGridLayout(self.groups_box)
        self._groups_grid.setColumnStretch(1, 1)
        self.groups_note = QLabel(tr("led_no_groups"))
        self.groups_note.setObjectName("groups_note")
        self.groups_note.setWordWrap(True)
        self._groups_grid.addWidget(self.groups_note, 0, 0, 1, 5)
        self.group_spins: dict[str, QDoubleSpinBox] = {}
        self.group_desired_labels: dict[str, QLabel] = {}
        self.group_reported_labels: dict[str, QLabel] = {}
        self.group_drift_marks: dict[str, QLabel] = {}
        self.group_cells: dict[str, QWidget] = {}
        # disabled as a whole while stale; a bound control inside follows its command too
        self._control_cells = [*cells.values(), preset_cell, adopt_cell, self.groups_box]

        # -- wall status
        self.output_label = _value_label("output_label", width=0)
        self.processor_temperature_label = _value_label("processor_temperature_label",
                                                        width=0)
        self.panels_label = _value_label("panels_label", width=0)
        self.preset_label = _value_label("preset_label", width=0)
        self.alerts_label = QLabel(tr("no_alerts"))
        self.alerts_label.setObjectName("alerts_label")
        self.alerts_label.setWordWrap(True)
        form = QFormLayout()
        for name, value in (("output", self.output_label),
                            ("processor_temperature", self.processor_temperature_label),
                            ("panels", self.panels_label), ("current_preset", self.preset_label),
                            ("alerts", self.alerts_label)):
            title = QLabel(tr(name))
            title.setWordWrap(True)  # a narrow column wraps the name, never clips the value
            form.addRow(title, value)
        status = QGroupBox(tr("status_group"))
        status.setLayout(form)

        self.stale_banner = QLabel(tr("led_stale"))
        self.stale_banner.setObjectName("stale_banner")
        self.stale_banner.setStyleSheet(STALE_BANNER_STYLE)
        self.stale_banner.setToolTip(tr("led_stale_tip"))
        self.stale_banner.setVisible(False)

        columns = QHBoxLayout()
        main = QVBoxLayout()
        main.addWidget(settings, 3)
        main.addWidget(self.groups_box, 0)
        columns.addLayout(main, 2)
        side = QVBoxLayout()
        side.addWidget(status)
        side.addStretch(1)
        columns.addLayout(side, 1)
        layout = QVBoxLayout(self)
        layout.addWidget(self.stale_banner)
        layout.addWidget(self.processor_label)
        layout.addLayout(columns, 1)

        # -- intents (only user actions; renders are guarded by self._rendering)
        self.brightness_slider.valueChanged.connect(self._on_brightness_slider)
        self.brightness_slider.sliderReleased.connect(
            lambda: self._set("brightness_nits", float(self.brightness_slider.value())))
        self.brightness_spin.valueChanged.connect(self._on_brightness_spin)
        self.temperature_slider.valueChanged.connect(self._on_temperature_slider)
        self.temperature_slider.sliderReleased.connect(
            lambda: self._set("colour_temperature_k", self.temperature_slider.value()))
        self.temperature_spin.valueChanged.connect(self._on_temperature_spin)
        self.blackout_button.clicked.connect(lambda checked: self._set("blackout", checked))
        self.freeze_button.clicked.connect(lambda checked: self._set("freeze", checked))
        self.pattern_combo.activated.connect(self._on_pattern)
        # an input switch is a deliberate act: typed or chosen, sent with the button
        self.input_button.clicked.connect(self._on_input)
        self.recall_button.clicked.connect(
            lambda: self.intent.emit("led.preset", {"device": self.device,
                                                    "number": self.preset_spin.value()}))
        self.adopt_button.clicked.connect(
            lambda: self.intent.emit("led.adopt", {"device": self.device}))

        # -- what gates each control: its feature, its command (roles, interlocks), liveness
        led_set = "led.set"
        self._gated: dict[str, list[tuple[QWidget, str, str]]] = {
            "brightness_nits": [(self.brightness_slider, led_set, ""),
                                (self.brightness_spin, led_set, "")],
            "colour_temperature_k": [(self.temperature_slider, led_set, ""),
                                     (self.temperature_spin, led_set, "")],
            "blackout": [(self.blackout_button, led_set, "")],
            "freeze": [(self.freeze_button, led_set, "")],
            "test_pattern": [(self.pattern_combo, led_set, "")],
            INPUT: [(self.input_combo, led_set, input_tip),
                    (self.input_button, led_set, input_tip)],
            PRESET_RECALL: [(self.preset_spin, "led.preset", ""),
                            (self.recall_button, "led.preset", "")],
            GROUP_BRIGHTNESS: [],
        }
        self.controls = controls
        if controls is not None:
            controls.bind(self.adopt_button, "led.adopt", device)
            controls.changed.connect(self._follow_controls)
            self.set_live(controls.live)
        self._gate()
        self.refresh()

    def _follow_controls(self) -> None:
        if self.controls is not None:
            self.set_live(self.controls.live)
        self._gate()

    # ---- capabilities ---------------------------------------------------------------------

    @property
    def vendor(self) -> str:
        """The processor family in words (empty until a snapshot says)."""
        return str(self.capabilities["vendor"]) if self.capabilities else ""

    def unsupported(self, feature: str) -> str | None:
        """Why the processor lacks ``feature`` (English, possibly empty), None if it has it."""
        if not self.capabilities:
            return None
        why = self.capabilities["unsupported"].get(feature)
        return None if why is None else str(why)

    def unsupported_tip(self, feature: str) -> str | None:
        """The tooltip of an unsupported feature, in the console's language (None: supported).

        English: "Not supported by {vendor}: {why}" with the driver's reason. Chinese: the
        vendor and the feature; the reason too when the driver sends it coded.
        """
        why = self.unsupported(feature)
        if why is None:
            return None
        vendor = self.vendor
        coded = (self.capabilities or {}).get("problems", {}).get(feature)
        if i18n.language() == "en":
            reason = render_message(coded) if coded else why
            return tr("led_not_supported_feature", vendor=vendor, why=reason) if reason \
                else tr("led_not_supported_by", vendor=vendor)
        text = tr("led_not_supported_feature", vendor=vendor, feature=feature_label(feature),
                  why="")
        return f"{text}：{render_message(coded)}" if coded else text

    def apply_capabilities(self, value: object) -> None:
        """Take a snapshot's (or a delta's) ``capabilities``; anything else is ignored."""
        caps = capabilities_from(value)
        if caps is None or caps == self.capabilities:
            return
        self.capabilities = caps
        self._guarded(lambda: self._set_patterns(tuple(caps["test_patterns"])))
        self._gate()
        self.refresh()

    def _gate(self) -> None:
        """Enable each control only when its feature exists and its command may be sent."""
        for feature, entries in self._gated.items():
            tip = self.unsupported_tip(feature)
            for widget, cmd, own_tip in entries:
                self._gate_one(widget, tip, cmd, own_tip)
        for key, label in self.name_labels.items():
            feature = PRESET_RECALL if key == "preset" else key
            tip = self.unsupported_tip(feature)
            label.setStyleSheet(UNSUPPORTED_NAME_STYLE if tip else "")
            label.setToolTip(tip or "")

    def _gate_one(self, widget: QWidget, unsupported_tip: str | None, cmd: str,
                  own_tip: str) -> None:
        widget.setProperty("unsupported", unsupported_tip is not None)
        if unsupported_tip is not None:
            widget.setEnabled(False)
            widget.setToolTip(unsupported_tip)
        else:
            gate(widget, self.controls, cmd, self.device, live=self.live, own_tip=own_tip)

    def _set_patterns(self, patterns: tuple[str, ...]) -> None:
        """Offer exactly ``patterns`` (keeping the selection when it is still offered)."""
        if patterns == self._patterns:
            return
        current = self.pattern_combo.currentData()
        self._patterns = patterns
        self.pattern_combo.clear()
        for pattern in patterns:
            self.pattern_combo.addItem(tr_pattern(pattern), pattern)
        self.pattern_combo.setCurrentIndex(self.pattern_combo.findData(current)
                                           if current is not None else -1)
        shown = self.reported.get("test_pattern")
        if shown is not None:
            self._show_pattern(shown)

    def _show_pattern(self, value: object) -> None:
        """Select the reported pattern; one the chooser does not offer shows as reported."""
        combo = self.pattern_combo
        foreign = len(self._patterns)  # a vendor pattern's item sits after the offered ones
        index = combo.findData(value)
        if 0 <= index < foreign:
            if combo.count() > foreign:
                combo.removeItem(foreign)
            combo.setCurrentIndex(index)
            return
        text = tr_pattern(_clip(value))  # a vendor's own pattern as reported
        if combo.count() > foreign:
            combo.setItemText(foreign, text)
            combo.setItemData(foreign, value)
        else:
            combo.addItem(text, value)
        model = combo.model()
        if isinstance(model, QStandardItemModel):
            item = model.item(foreign)
            if item is not None:
                item.setEnabled(False)  # shown, never chosen: the model cannot command it
        combo.setItemData(foreign, tr("led_pattern_vendor_tip", pattern=_clip(value)),
                          Qt.ItemDataRole.ToolTipRole)
        combo.setCurrentIndex(foreign)

    # ---- intents --------------------------------------------------------------------------

    def _set(self, key: str, value: Any) -> None:
        self.intent.emit("led.set", {"device": self.device, "key": key, "value": value})

    def _guarded(self, action: Callable[[], None]) -> None:
        self._rendering = True
        try:
            action()
        finally:
            self._rendering = False

    def _on_brightness_slider(self, value: int) -> None:
        if self._rendering:
            return
        self._guarded(lambda: self.brightness_spin.setValue(float(value)))
        if not self.brightness_slider.isSliderDown():  # a drag sends once, on release
            self._set("brightness_nits", float(value))

    def _on_brightness_spin(self, value: float) -> None:
        if self._rendering:
            return
        self._guarded(lambda: self.brightness_slider.setValue(round(value)))
        self._set("brightness_nits", float(value))

    def _on_temperature_slider(self, value: int) -> None:
        if self._rendering:
            return
        self._guarded(lambda: self.temperature_spin.setValue(value))
        if not self.temperature_slider.isSliderDown():
            self._set("colour_temperature_k", value)

    def _on_temperature_spin(self, value: int) -> None:
        if self._rendering:
            return
        self._guarded(lambda: self.temperature_slider.setValue(value))
        self._set("colour_temperature_k", value)

    def _on_pattern(self, index: int) -> None:
        if 0 <= index < len(self._patterns):
            self._set("test_pattern", self.pattern_combo.itemData(index))

    def _on_input(self) -> None:
        text = self.input_combo.currentText().strip()
        if text:
            self._set(INPUT, text)

    def _on_group(self, group: str, value: float) -> None:
        if not self._rendering:
            self._set(GROUP_PREFIX + group, float(value))

    # ---- liveness -------------------------------------------------------------------------

    def set_live(self, live: bool) -> None:
        """Whether the engine is heard from.

        Going stale hides every value (unknown look, stale banner) and disables the
        controls; the last values are dropped, so coming back shows each value only once a
        fresh snapshot or delta for it arrives.
        """
        if live == self.live:
            return
        self.live = live
        if not live:
            self._awaiting_reported = set(self.reported) | set(SHOWN_KEYS) | set(STATUS_KEYS)
            self._awaiting_desired = set(self.desired) | set(SHOWN_KEYS)
            self.reported, self.desired = {}, {}
            self._guarded(self._blank_controls)
        self.stale_banner.setVisible(not live)
        for cell in self._control_cells:
            cell.setEnabled(live)
        self._gate()
        self.refresh()

    def _blank_controls(self) -> None:
        """Controls stop showing a value: the wall's real one is not known."""
        self.brightness_spin.setSpecialValueText(tr("led_unknown"))
        self.brightness_spin.setValue(self.brightness_spin.minimum())
        self.temperature_spin.setSpecialValueText(tr("led_unknown"))
        self.temperature_spin.setValue(self.temperature_spin.minimum())
        for slider in (self.brightness_slider, self.temperature_slider):
            slider.setValue(slider.minimum())
        self.blackout_button.setChecked(False)
        self.freeze_button.setChecked(False)
        if self.pattern_combo.count() > len(self._patterns):
            self.pattern_combo.removeItem(len(self._patterns))
        self.pattern_combo.setCurrentIndex(-1)
        self.input_combo.setEditText("")
        for spin in self.group_spins.values():
            spin.setSpecialValueText(tr("led_unknown"))
            spin.setValue(spin.minimum())

    def _stale_reported(self, key: str) -> bool:
        return not self.live or key in self._awaiting_reported

    # ---- rendering ------------------------------------------------------------------------

    def apply_snapshot(self, snapshot: dict[str, Any]) -> None:
        """Replace everything from one device entry of a ``status`` result.

        Controls move only for values that differ from what the panel already knew, so a
        periodic resync does not snap back a control whose command is still in flight.
        """
        if "capabilities" in snapshot:
            self.apply_capabilities(snapshot["capabilities"])
        reported = dict(snapshot.get("state") or {})
        keys = set(SHOWN_KEYS) | set(self.reported) | set(reported)
        changed = {key for key in keys if self.reported.get(key) != reported.get(key)}
        self.reported = reported
        self.desired = dict(snapshot.get("desired") or {})
        self._awaiting_reported.clear()
        self._awaiting_desired.clear()
        self._guarded(lambda: self._render(changed))

    def apply_reported(self, delta: dict[str, Any]) -> None:
        """Merge reported keys that changed (``capabilities`` in a delta replaces them)."""
        delta = dict(delta)
        if "capabilities" in delta:
            self.apply_capabilities(delta.pop("capabilities"))
        if "alerts" in delta and "alert_problems" not in delta:
            self.reported.pop("alert_problems", None)  # never render older coded alerts
        self.reported.update(delta)
        self._awaiting_reported -= set(delta)
        if "alert_problems" in delta:
            self._awaiting_reported.discard("alerts")
        self._guarded(lambda: self._render(set(delta)))

    def apply_desired(self, delta: dict[str, Any]) -> None:
        """Merge desired keys that changed."""
        self.desired.update(delta)
        self._awaiting_desired -= set(delta)
        self.refresh()

    def refresh(self) -> None:
        """Show the current reported/desired state (also undoes a control the engine refused)."""
        self._guarded(lambda: self._render(None))

    def _render(self, changed: set[str] | None) -> None:
        """Render labels; move only the controls whose reported value changed (all if None).

        A control the operator just moved keeps its position until the wall reports that
        key, instead of snapping back whenever an unrelated status value arrives.
        """
        self._sync_groups()
        if self.live:
            self._render_controls(changed)
        for key in SHOWN_KEYS:
            self._render_row(key, self.desired_labels[key], self.reported_labels[key],
                             self.drift_marks[key], self.unsupported_tip(key))
        for group in self.group_spins:
            key = GROUP_PREFIX + group
            self._render_row(key, self.group_desired_labels[group],
                             self.group_reported_labels[group],
                             self.group_drift_marks[group], None)
        self._render_processor()
        self._render_status()

    def _render_row(self, key: str, desired_label: QLabel, reported_label: QLabel,
                    mark: QLabel | None, unsupported_tip: str | None) -> None:
        if unsupported_tip is not None and self.live:  # not a value: the processor lacks it
            for label in (desired_label, reported_label):
                _show_unsupported(label, tr("led_unsupported"), unsupported_tip)
                label.setProperty("drift", False)
            if mark is not None:
                _mark(mark, False)
            return
        desired_stale = not self.live or key in self._awaiting_desired
        reported_stale = self._stale_reported(key)
        desired, reported = self.desired.get(key), self.reported.get(key)
        _show(desired_label, None if desired_stale else _format(key, desired))
        _show(reported_label, None if reported_stale else _format(key, reported))
        drift = (not desired_stale and not reported_stale and desired is not None
                 and reported is not None and not _same(desired, reported))
        reported_label.setProperty("drift", drift)
        if drift:
            reported_label.setStyleSheet(DRIFT_STYLE)
            reported_label.setToolTip(tr("drift_tip"))
        if mark is not None:
            _mark(mark, drift)

    def _render_controls(self, changed: set[str] | None) -> None:
        shown = {key: self.reported.get(key, self.desired.get(key)) for key in SHOWN_KEYS
                 if changed is None or key in changed}
        brightness, temperature = shown.get("brightness_nits"), shown.get("colour_temperature_k")
        if brightness is not None and not self.brightness_slider.isSliderDown():
            self.brightness_slider.setValue(round(float(brightness)))
            if not self.brightness_spin.hasFocus():
                self.brightness_spin.setSpecialValueText("")
                self.brightness_spin.setValue(float(brightness))
        if temperature is not None and not self.temperature_slider.isSliderDown():
            self.temperature_slider.setValue(int(temperature))
            if not self.temperature_spin.hasFocus():
                self.temperature_spin.setSpecialValueText("")
                self.temperature_spin.setValue(int(temperature))
        for key, button in (("blackout", self.blackout_button),
                            ("freeze", self.freeze_button)):
            if shown.get(key) is not None:
                button.setChecked(bool(shown[key]))
        if shown.get("test_pattern") is not None:
            self._show_pattern(shown["test_pattern"])
        if changed is None or INPUT in changed or INPUTS_KEY in changed:
            self._render_inputs()
        for group, spin in self.group_spins.items():
            key = GROUP_PREFIX + group
            if changed is not None and key not in changed:
                continue
            nits = _number(self.reported.get(key, self.desired.get(key)))
            if nits is not None and not spin.hasFocus():
                spin.setSpecialValueText("")
                spin.setValue(nits)

    def _render_inputs(self) -> None:
        """The input chooser lists the inputs the processor offers, its text the current one."""
        offered = self.reported.get(INPUTS_KEY)
        names = [_clip(n, 48) for n in offered[:MAX_INPUTS] if isinstance(n, str) and n] \
            if isinstance(offered, list) else []
        current = self.reported.get(INPUT, self.desired.get(INPUT))
        if isinstance(current, str) and current and current not in names:
            names.append(_clip(current, 48))
        combo = self.input_combo
        line = combo.lineEdit()
        editing = combo.hasFocus() or (line is not None and line.hasFocus())
        text = combo.currentText()
        if [combo.itemText(i) for i in range(combo.count())] != names:
            combo.clear()
            combo.addItems(names)
            combo.setEditText(text)
        if not editing and isinstance(current, str):
            combo.setEditText(_clip(current, 48))

    def _sync_groups(self) -> None:
        """One row per group the processor reports (or the engine holds a value for)."""
        tip = self.unsupported_tip(GROUP_BRIGHTNESS)
        groups = sorted({k[len(GROUP_PREFIX):] for k in (*self.reported, *self.desired)
                         if isinstance(k, str) and k.startswith(GROUP_PREFIX)
                         and re.fullmatch(r"[A-Za-z0-9_-]{1,32}", k[len(GROUP_PREFIX):])},
                        key=_group_order)
        if tip is None:
            for group in groups[:MAX_GROUPS]:
                if group not in self.group_spins:
                    self._add_group(group)
        hidden = max(0, len(groups) - MAX_GROUPS)
        if tip is not None and self.live:
            _show_unsupported(self.groups_note, tr("led_unsupported"), tip)
            self.groups_note.setVisible(True)
        elif hidden:
            _plain(self.groups_note, tr("led_groups_more", count=hidden))
            self.groups_note.setVisible(True)
        else:
            _plain(self.groups_note, tr("led_no_groups"))
            self.groups_note.setVisible(not self.group_spins)
        self.groups_box.setToolTip(tip or "")

    def _add_group(self, group: str) -> None:
        row = len(self.group_spins) + 1
        name = QLabel(tr("led_group", group=group))
        spin = QDoubleSpinBox()
        spin.setObjectName(f"group_spin_{group}")
        spin.setRange(0.0, self.max_brightness_nits)
        spin.setDecimals(0)
        spin.setSingleStep(10.0)
        spin.setSuffix(tr("nits_suffix"))
        spin.setKeyboardTracking(False)
        spin.valueChanged.connect(lambda value, g=group: self._on_group(g, value))
        cell = _row(spin, stretch=True)
        desired = _value_label(f"group_desired_{group}")
        reported = _value_label(f"group_reported_{group}")
        mark = QLabel()
        mark.setObjectName(f"group_drift_mark_{group}")
        mark.setAlignment(Qt.AlignmentFlag.AlignCenter)
        mark.setMinimumWidth(16)
        self._groups_grid.addWidget(name, row, 0)
        self._groups_grid.addWidget(cell, row, 1)
        self._groups_grid.addWidget(desired, row, 2)
        self._groups_grid.addWidget(mark, row, 3)
        self._groups_grid.addWidget(reported, row, 4)
        self.group_drift_marks[group] = mark
        self.group_spins[group] = spin
        self.group_desired_labels[group] = desired
        self.group_reported_labels[group] = reported
        self.group_cells[group] = cell
        self._gated[GROUP_BRIGHTNESS].append((spin, "led.set", ""))
        self._gate_one(spin, self.unsupported_tip(GROUP_BRIGHTNESS), "led.set", "")

    def _render_processor(self) -> None:
        """The header: vendor, model, firmware, serial and the processor's own name."""
        parts: list[str] = [self.vendor] if self.vendor else []
        identity = None if self._stale_reported("processor") else self.reported.get("processor")
        if isinstance(identity, Mapping):
            model, firmware = identity.get("model"), identity.get("firmware")
            serial, name = identity.get("serial"), identity.get("name")
            if model not in (None, ""):
                parts.append(_clip(model))
            if firmware not in (None, ""):
                parts.append(tr("led_processor_firmware", version=_clip(firmware)))
            if serial not in (None, ""):
                parts.append(tr("led_processor_serial", serial=_clip(serial)))
            if name not in (None, ""):
                parts.append(tr("led_processor_name", name=_clip(name)))
        self.processor_label.setText(tr("led_processor",
                                        text=" · ".join(parts) if parts else tr("unset")))

    def _render_status(self) -> None:
        """The wall-status group: each value, unknown while stale, or not reported at all."""
        stale = self._stale_reported

        def lacks(label: QLabel, feature: str) -> bool:
            tip = self.unsupported_tip(feature)
            if tip is None or not self.live:
                return False
            _show_unsupported(label, tr("led_not_reported"), tip)
            return True

        output = self.reported.get("brightness_output_nits")
        if not lacks(self.output_label, BRIGHTNESS_OUTPUT):
            _show(self.output_label, None if stale("brightness_output_nits")
                  else _format("brightness_output_nits", output))
        temp_c = _number(self.reported.get("temperature_c"))
        if not lacks(self.processor_temperature_label, TEMPERATURE):
            _show(self.processor_temperature_label, None if stale("temperature_c") else
                  tr("unset") if temp_c is None else tr("celsius", value=temp_c))
        online, total = self.reported.get("panels_online"), self.reported.get("panels_total")
        if not lacks(self.panels_label, PANELS):
            _show(self.panels_label,
                  None if stale("panels_online") or stale("panels_total") else
                  tr("unset") if online is None or total is None
                  else tr("panels_value", online=online, total=total))
        preset = self.reported.get("preset")
        if not lacks(self.preset_label, PRESET_RECALL):
            _show(self.preset_label, None if stale("preset") else
                  tr("unset") if not preset else _clip(preset))
        if lacks(self.alerts_label, ALERTS):
            return
        if stale("alerts"):
            _show(self.alerts_label, None)
            return
        alerts = _alert_lines(self.reported)
        _show(self.alerts_label, "\n".join(f"{ALERT_MARK} {a}" for a in alerts) if alerts
              else tr("no_alerts"))
        self.alerts_label.setStyleSheet(ALERT_STYLE if alerts else "")


def _value_label(name: str, width: int = 110) -> QLabel:
    label = QLabel(tr("unset"))
    label.setObjectName(name)
    if width:
        label.setMinimumWidth(width)
        label.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)
    return label


def _show(label: QLabel, text: str | None) -> None:
    """A value label shows ``text``, or (None) the unknown look of a stale value."""
    stale = text is None
    label.setText(tr("led_unknown") if stale else str(text))
    label.setProperty("stale", stale)
    label.setProperty("unsupported", False)
    label.setStyleSheet(UNKNOWN_STYLE if stale else "")
    label.setToolTip(tr("led_stale_tip") if stale else "")


def _show_unsupported(label: QLabel, text: str, tip: str) -> None:
    """A label for a feature the processor lacks: neither a value nor stale nor an error."""
    label.setText(text)
    label.setProperty("stale", False)
    label.setProperty("unsupported", True)
    label.setStyleSheet(UNSUPPORTED_STYLE)
    label.setToolTip(tip)


def _plain(label: QLabel, text: str) -> None:
    label.setText(text)
    label.setProperty("unsupported", False)
    label.setStyleSheet(UNKNOWN_STYLE)
    label.setToolTip("")


def _mark(mark: QLabel, drift: bool) -> None:
    mark.setText(DRIFT_MARK if drift else "")
    mark.setStyleSheet(DRIFT_STYLE + " font-weight: bold;" if drift else "")
    mark.setToolTip(tr("drift_tip") if drift else "")


def _alert_lines(reported: dict[str, Any]) -> list[str]:
    """The wall's alerts in the console's language (its English strings without codes)."""
    problems = reported.get("alert_problems")
    if isinstance(problems, list) and all(isinstance(p, dict) for p in problems):
        return [render_message(p) for p in problems]
    return [str(a) for a in reported.get("alerts") or []]


def _row(*widgets: QWidget, stretch: bool = False) -> QWidget:
    """Widgets side by side in one cell."""
    box = QWidget()
    layout = QHBoxLayout(box)
    layout.setContentsMargins(0, 0, 0, 0)
    for widget in widgets:
        layout.addWidget(widget, 0 if stretch else (1 if isinstance(widget, QSlider) else 0))
    if stretch:
        layout.addStretch(1)
    return box
