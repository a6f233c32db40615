"""One LED wall's controls and status: renders reported/desired state, emits intents.

The controls follow what the wall *reports*, so a change made at the processor's front panel
moves them too; the desired column shows what the engine will re-apply on reconnect, and a
reported value that differs from it is highlighted (``Adopt`` makes the wall's values the
desired state). Every user action becomes one ``intent(cmd, args)``; the panel never talks to
the engine or decides anything on its own.
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
from gui.i18n import tr, tr_pattern

COLOUR_TEMPERATURE_MIN_K, COLOUR_TEMPERATURE_MAX_K = 2000, 11000
DRIFT_STYLE = "background-color: #ffe0b2; color: #8a4b00; border-radius: 3px; padding: 0 4px;"
ALERT_STYLE = "color: #b71c1c; font-weight: bold;"
BLACKOUT_STYLE = "QPushButton:checked { background-color: #b71c1c; color: white; }"
FREEZE_STYLE = "QPushButton:checked { background-color: #1565c0; color: white; }"

# The parameters this panel shows, in display order.
SHOWN_KEYS: tuple[str, ...] = ("brightness_nits", "colour_temperature_k", "blackout", "freeze",
                               "test_pattern")


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

    Signals:
        intent(str, dict): a command name and its args for the engine.
    """

    intent = Signal(str, dict)

    def __init__(self, device: str, max_brightness_nits: float,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.device = device
        self.reported: dict[str, Any] = {}
        self.desired: dict[str, Any] = {}
        self._rendering = False
        max_nits = int(max_brightness_nits)

        # -- settings: parameter | control | desired | reported
        grid = QGridLayout()
        for col, key in enumerate(("col_parameter", "col_control", "col_desired",
                                   "col_reported")):
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

        controls: dict[str, QWidget] = {
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
        for row, key in enumerate(SHOWN_KEYS, start=1):
            grid.addWidget(QLabel(tr(names[key])), row, 0)
            grid.addWidget(controls[key], row, 1)
            self.desired_labels[key] = QLabel(tr("unset"))
            self.reported_labels[key] = QLabel(tr("unset"))
            for label in (self.desired_labels[key], self.reported_labels[key]):
                label.setMinimumWidth(110)
                label.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)
            grid.addWidget(self.desired_labels[key], row, 2)
            grid.addWidget(self.reported_labels[key], row, 3)

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
        grid.addWidget(QLabel(tr("preset")), preset_row, 0)
        grid.addWidget(_row(self.preset_spin, self.recall_button, stretch=True), preset_row, 1)
        grid.addWidget(self.adopt_button, preset_row, 2, 1, 2)
        grid.setRowStretch(preset_row + 1, 1)  # spare height goes below, not between rows

        settings = QGroupBox(tr("settings_group"))
        settings.setLayout(grid)

        # -- wall status
        self.output_label = QLabel(tr("unset"))
        self.output_label.setObjectName("output_label")
        self.processor_temperature_label = QLabel(tr("unset"))
        self.panels_label = QLabel(tr("unset"))
        self.panels_label.setObjectName("panels_label")
        self.preset_label = QLabel(tr("unset"))
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

        layout = QHBoxLayout(self)
        layout.addWidget(settings, 3)
        side = QVBoxLayout()
        side.addWidget(status)
        side.addStretch(1)
        layout.addLayout(side, 1)

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
        self._guarded(lambda: self._render(changed))

    def apply_reported(self, delta: dict[str, Any]) -> None:
        """Merge reported keys that changed."""
        self.reported.update(delta)
        self._guarded(lambda: self._render(set(delta)))

    def apply_desired(self, delta: dict[str, Any]) -> None:
        """Merge desired keys that changed."""
        self.desired.update(delta)
        self.refresh()

    def refresh(self) -> None:
        """Show the current reported/desired state (also undoes a control the engine refused)."""
        self._guarded(lambda: self._render(None))

    def _render(self, changed: set[str] | None) -> None:
        """Render labels; move only the controls whose reported value changed (all if None).

        A control the operator just moved keeps its position until the wall reports that
        key, instead of snapping back whenever an unrelated status value arrives.
        """
        shown = {key: self.reported.get(key, self.desired.get(key)) for key in SHOWN_KEYS
                 if changed is None or key in changed}
        brightness, temperature = shown.get("brightness_nits"), shown.get("colour_temperature_k")
        if brightness is not None and not self.brightness_slider.isSliderDown():
            self.brightness_slider.setValue(round(float(brightness)))
            if not self.brightness_spin.hasFocus():
                self.brightness_spin.setValue(float(brightness))
        if temperature is not None and not self.temperature_slider.isSliderDown():
            self.temperature_slider.setValue(int(temperature))
            if not self.temperature_spin.hasFocus():
                self.temperature_spin.setValue(int(temperature))
        for key, button in (("blackout", self.blackout_button),
                            ("freeze", self.freeze_button)):
            if shown.get(key) is not None:
                button.setChecked(bool(shown[key]))
        if shown.get("test_pattern") is not None:
            index = self.pattern_combo.findData(shown["test_pattern"])
            if index >= 0:
                self.pattern_combo.setCurrentIndex(index)

        for key in SHOWN_KEYS:
            desired, reported = self.desired.get(key), self.reported.get(key)
            self.desired_labels[key].setText(_format(key, desired))
            label = self.reported_labels[key]
            label.setText(_format(key, reported))
            drift = desired is not None and reported is not None and not _same(desired, reported)
            label.setProperty("drift", drift)
            label.setStyleSheet(DRIFT_STYLE if drift else "")
            label.setToolTip(tr("drift_tip") if drift else "")

        self.output_label.setText(_format("brightness_output_nits",
                                          self.reported.get("brightness_output_nits")))
        temp_c = self.reported.get("temperature_c")
        self.processor_temperature_label.setText(
            tr("unset") if temp_c is None else tr("celsius", value=float(temp_c)))
        online, total = self.reported.get("panels_online"), self.reported.get("panels_total")
        self.panels_label.setText(tr("unset") if online is None or total is None
                                  else tr("panels_value", online=online, total=total))
        preset = self.reported.get("preset")
        self.preset_label.setText(tr("unset") if not preset else str(preset))
        alerts = self.reported.get("alerts") or []
        self.alerts_label.setText("\n".join(str(a) for a in alerts) if alerts
                                  else tr("no_alerts"))
        self.alerts_label.setStyleSheet(ALERT_STYLE if alerts else "")


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
