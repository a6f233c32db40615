"""One LED wall's controls and status: renders reported/desired state, emits intents.

The controls follow what the wall *reports*, so a change made at the processor's front panel
moves them too; the desired column shows what the engine will re-apply on reconnect, and a
reported value that differs from it is highlighted (``Adopt`` makes the wall's values the
desired state). Every user action becomes one ``intent(cmd, args)``; the panel never talks to
the engine or decides anything on its own.

Liveness (``docs/protocols/console-state.md``): while the engine is not heard from, every value
shows an explicit unknown look under a "stale" banner, never its last value, and the controls
are disabled. When the engine is back, a value returns only when a fresh snapshot or delta for
it arrives. With a :class:`~gui.controls.Controls`, each control also follows the roles and
interlocks the engine publishes for its command, saying why in its tooltip when disabled.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt, Signal
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

from drivers.led.protocol import PRESET_MAX, PRESET_MIN, TEST_PATTERNS
from gui.controls import Controls
from gui.i18n import add_strings, tr, tr_pattern
from gui.messages import render_message

COLOUR_TEMPERATURE_MIN_K, COLOUR_TEMPERATURE_MAX_K = 2000, 11000
DRIFT_STYLE = "background-color: #ffe0b2; color: #8a4b00; border-radius: 3px; padding: 0 4px;"
ALERT_STYLE = "color: #b71c1c; font-weight: bold;"
UNKNOWN_STYLE = "color: #9e9e9e; font-style: italic;"
STALE_BANNER_STYLE = ("background-color: #eeeeee; color: #424242; font-weight: bold; "
                      "border: 1px dashed #757575; padding: 2px 6px;")
DRIFT_MARK = "≠"
ALERT_MARK = "⚠"
BLACKOUT_STYLE = "QPushButton:checked { background-color: #b71c1c; color: white; }"
FREEZE_STYLE = "QPushButton:checked { background-color: #1565c0; color: white; }"

# The parameters this panel shows, in display order.
SHOWN_KEYS: tuple[str, ...] = ("brightness_nits", "colour_temperature_k", "blackout", "freeze",
                               "test_pattern")
# The reported keys the wall-status group shows.
STATUS_KEYS: tuple[str, ...] = ("brightness_output_nits", "temperature_c", "panels_online",
                                "panels_total", "preset", "alerts")

add_strings({
    "led_unknown": {"en": "unknown", "zh": "未知"},
    "led_stale": {"en": "⚠ Stale: the engine is not heard from; values unknown",
                  "zh": "⚠ 数据过期：未收到引擎消息，数值未知"},
    "led_stale_tip": {"en": "Stale: no fresh value from the engine since the link was lost",
                      "zh": "数据过期：与引擎的连接中断后尚未收到新数值"},
})


def _format(key: str, value: Any) -> str:
    """A parameter value as the operator reads it."""
    if value is None:
        return tr("unset")
    if key in ("brightness_nits", "brightness_output_nits"):
        return tr("nits", value=float(value))
    if key == "colour_temperature_k":
        return tr("kelvin", value=int(value))
    if key in ("blackout", "freeze"):
        return tr("on") if value else tr("off")
    if key == "test_pattern":
        return tr_pattern(str(value))
    return str(value)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) \
            and not isinstance(a, bool) and not isinstance(b, bool):
        return abs(float(a) - float(b)) <= 1e-3 * max(1.0, abs(float(a)))
    return bool(a == b)


class LedPanel(QWidget):
    """Controls and status of one LED processor.

    Args:
        device: the device name (sent with every intent).
        max_brightness_nits: this wall's brightness limit, from the stage config.
        controls: the engine's controls data; each control is bound to its command on this
            device, and the panel follows ``controls.live``. Without one (tests), every
            control is enabled while live.
        parent: the Qt parent.

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
        self.live = True
        # keys whose last value went stale and has not been refreshed since (hidden)
        self._awaiting_reported: set[str] = set()
        self._awaiting_desired: set[str] = set()
        self._rendering = False
        max_nits = int(max_brightness_nits)

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
        for pattern in TEST_PATTERNS:
            self.pattern_combo.addItem(tr_pattern(pattern), pattern)

        cells: dict[str, QWidget] = {
            "brightness_nits": _row(self.brightness_slider, self.brightness_spin),
            "colour_temperature_k": _row(self.temperature_slider, self.temperature_spin),
            "blackout": _row(self.blackout_button, stretch=True),
            "freeze": _row(self.freeze_button, stretch=True),
            "test_pattern": _row(self.pattern_combo, stretch=True),
        }
        names = {"brightness_nits": "brightness", "colour_temperature_k": "colour_temperature",
                 "blackout": "blackout", "freeze": "freeze", "test_pattern": "test_pattern"}
        self.desired_labels: dict[str, QLabel] = {}
        self.reported_labels: dict[str, QLabel] = {}
        self.drift_marks: dict[str, QLabel] = {}
        for row, key in enumerate(SHOWN_KEYS, start=1):
            grid.addWidget(QLabel(tr(names[key])), row, 0)
            grid.addWidget(cells[key], row, 1)
            self.desired_labels[key] = QLabel(tr("unset"))
            self.reported_labels[key] = QLabel(tr("unset"))
            for label in (self.desired_labels[key], self.reported_labels[key]):
                label.setMinimumWidth(110)
                label.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)
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
        grid.addWidget(QLabel(tr("preset")), preset_row, 0)
        grid.addWidget(preset_cell, preset_row, 1)
        grid.addWidget(adopt_cell, preset_row, 2, 1, 3)
        grid.setRowStretch(preset_row + 1, 1)  # spare height goes below, not between rows
        # disabled as a whole while stale; a bound control inside follows its command too
        self._control_cells = [*cells.values(), preset_cell, adopt_cell]

        settings = QGroupBox(tr("settings_group"))
        settings.setLayout(grid)

        # -- wall status
        self.output_label = QLabel(tr("unset"))
        self.output_label.setObjectName("output_label")
        self.processor_temperature_label = QLabel(tr("unset"))
        self.processor_temperature_label.setObjectName("processor_temperature_label")
        self.panels_label = QLabel(tr("unset"))
        self.panels_label.setObjectName("panels_label")
        self.preset_label = QLabel(tr("unset"))
        self.preset_label.setObjectName("preset_label")
        self.alerts_label = QLabel(tr("no_alerts"))
        self.alerts_label.setObjectName("alerts_label")
        self.alerts_label.setWordWrap(True)
        form = QFormLayout()
        form.addRow(tr("output"), self.output_label)
        form.addRow(tr("processor_temperature"), self.processor_temperature_label)
        form.addRow(tr("panels"), self.panels_label)
        form.addRow(tr("current_preset"), self.preset_label)
        form.addRow(tr("alerts"), self.alerts_label)
        status = QGroupBox(tr("status_group"))
        status.setLayout(form)

        self.stale_banner = QLabel(tr("led_stale"))
        self.stale_banner.setObjectName("stale_banner")
        self.stale_banner.setStyleSheet(STALE_BANNER_STYLE)
        self.stale_banner.setToolTip(tr("led_stale_tip"))
        self.stale_banner.setVisible(False)

        columns = QHBoxLayout()
        columns.addWidget(settings, 3)
        side = QVBoxLayout()
        side.addWidget(status)
        side.addStretch(1)
        columns.addLayout(side, 1)
        layout = QVBoxLayout(self)
        layout.addWidget(self.stale_banner)
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
        self.pattern_combo.activated.connect(
            lambda index: self._set("test_pattern", self.pattern_combo.itemData(index)))
        self.recall_button.clicked.connect(
            lambda: self.intent.emit("led.preset", {"device": self.device,
                                                    "number": self.preset_spin.value()}))
        self.adopt_button.clicked.connect(
            lambda: self.intent.emit("led.adopt", {"device": self.device}))

        # -- roles, interlocks and liveness from the engine
        self.controls = controls
        if controls is not None:
            for widget in (self.brightness_slider, self.brightness_spin,
                           self.temperature_slider, self.temperature_spin,
                           self.blackout_button, self.freeze_button, self.pattern_combo):
                controls.bind(widget, "led.set", device)
            for widget in (self.preset_spin, self.recall_button):
                controls.bind(widget, "led.preset", device)
            controls.bind(self.adopt_button, "led.adopt", device)
            controls.changed.connect(self._follow_controls)
            self.set_live(controls.live)

    def _follow_controls(self) -> None:
        if self.controls is not None:
            self.set_live(self.controls.live)

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
        self.pattern_combo.setCurrentIndex(-1)

    def _stale_reported(self, key: str) -> bool:
        return not self.live or key in self._awaiting_reported

    # ---- rendering ------------------------------------------------------------------------

    def apply_snapshot(self, snapshot: dict[str, Any]) -> None:
        """Replace everything from one device entry of a ``status`` result.

        Controls move only for values that differ from what the panel already knew, so a
        periodic resync does not snap back a control whose command is still in flight.
        """
        reported = dict(snapshot.get("state") or {})
        changed = {key for key in SHOWN_KEYS if self.reported.get(key) != reported.get(key)}
        self.reported = reported
        self.desired = dict(snapshot.get("desired") or {})
        self._awaiting_reported.clear()
        self._awaiting_desired.clear()
        self._guarded(lambda: self._render(changed))

    def apply_reported(self, delta: dict[str, Any]) -> None:
        """Merge reported keys that changed."""
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
        if self.live:
            self._render_controls(changed)
        for key in SHOWN_KEYS:
            desired_stale = not self.live or key in self._awaiting_desired
            reported_stale = self._stale_reported(key)
            desired, reported = self.desired.get(key), self.reported.get(key)
            _show(self.desired_labels[key], None if desired_stale else _format(key, desired))
            label = self.reported_labels[key]
            _show(label, None if reported_stale else _format(key, reported))
            drift = (not desired_stale and not reported_stale and desired is not None
                     and reported is not None and not _same(desired, reported))
            label.setProperty("drift", drift)
            if drift:
                label.setStyleSheet(DRIFT_STYLE)
                label.setToolTip(tr("drift_tip"))
            mark = self.drift_marks[key]
            mark.setText(DRIFT_MARK if drift else "")
            mark.setStyleSheet(DRIFT_STYLE + " font-weight: bold;" if drift else "")
            mark.setToolTip(tr("drift_tip") if drift else "")

        self._render_status()

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
            index = self.pattern_combo.findData(shown["test_pattern"])
            if index >= 0:
                self.pattern_combo.setCurrentIndex(index)

    def _render_status(self) -> None:
        """The wall-status group: each value, or unknown while stale."""
        stale = self._stale_reported
        output = self.reported.get("brightness_output_nits")
        _show(self.output_label, None if stale("brightness_output_nits")
              else _format("brightness_output_nits", output))
        temp_c = self.reported.get("temperature_c")
        _show(self.processor_temperature_label, None if stale("temperature_c") else
              tr("unset") if temp_c is None else tr("celsius", value=float(temp_c)))
        online, total = self.reported.get("panels_online"), self.reported.get("panels_total")
        _show(self.panels_label,
              None if stale("panels_online") or stale("panels_total") else
              tr("unset") if online is None or total is None
              else tr("panels_value", online=online, total=total))
        preset = self.reported.get("preset")
        _show(self.preset_label, None if stale("preset") else
              tr("unset") if not preset else str(preset))
        if stale("alerts"):
            _show(self.alerts_label, None)
            return
        alerts = _alert_lines(self.reported)
        _show(self.alerts_label, "\n".join(f"{ALERT_MARK} {a}" for a in alerts) if alerts
              else tr("no_alerts"))
        self.alerts_label.setStyleSheet(ALERT_STYLE if alerts else "")


def _show(label: QLabel, text: str | None) -> None:
    """A value label shows ``text``, or (None) the unknown look of a stale value."""
    stale = text is None
    label.setText(tr("led_unknown") if stale else str(text))
    label.setProperty("stale", stale)
    label.setStyleSheet(UNKNOWN_STYLE if stale else "")
    label.setToolTip(tr("led_stale_tip") if stale else "")


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
