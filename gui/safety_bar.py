"""The always-visible safety bar: a large E-STOP (also on F12) and the stage interlocks.

The E-STOP button is never disabled: pressing it sends ``estop`` even when the link looks
down (the engine drops nothing it receives, and a console that has lost the engine says so
in the status bar). Arm/disarm, talent and reset are intents like any other; the engine
checks roles and writes the audit log.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QWidget

from gui import arm_i18n  # noqa: F401  (registers the strings)
from gui.i18n import tr

ESTOP_SHORTCUT = "F12"
ESTOP_STYLE = ("QPushButton { background-color: #c62828; color: white; font-size: 26px; "
               "font-weight: bold; border: 4px solid #fdd835; border-radius: 10px; "
               "min-height: 64px; min-width: 220px; }"
               "QPushButton:pressed { background-color: #8e0000; }")
LATCHED_STYLE = "color: white; background: #b71c1c; font-weight: bold; padding: 4px;"
ARMED_STYLE = "color: #e65100; font-weight: bold; padding: 4px;"
SAFE_STYLE = "color: #1b5e20; padding: 4px;"


class SafetyBar(QWidget):
    """E-STOP plus arm/disarm, talent and reset.

    Signals:
        intent(str, dict): a command name and its args for the engine.
    """

    intent = Signal(str, dict)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.status: dict[str, Any] = {}
        layout = QHBoxLayout(self)
        self.estop_button = QPushButton(f"{tr('estop')}  ({ESTOP_SHORTCUT})")
        self.estop_button.setObjectName("estop_button")
        self.estop_button.setToolTip(tr("estop_tip"))
        self.estop_button.setStyleSheet(ESTOP_STYLE)
        self.estop_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.estop_button.clicked.connect(self.estop)
        layout.addWidget(self.estop_button)
        self.status_label = QLabel("")
        self.status_label.setObjectName("safety_status")
        layout.addWidget(self.status_label, 1)
        self.arm_button = QPushButton(tr("arm_stage"))
        self.arm_button.clicked.connect(self._toggle_armed)
        self.talent_button = QPushButton(tr("talent_on"))
        self.talent_button.setCheckable(True)
        self.talent_button.clicked.connect(
            lambda checked: self.intent.emit("safety.talent", {"on": bool(checked)}))
        self.reset_button = QPushButton(tr("safety_reset"))
        self.reset_button.clicked.connect(lambda: self.intent.emit("safety.reset", {}))
        for button in (self.arm_button, self.talent_button, self.reset_button):
            layout.addWidget(button)
        self.apply_status({"armed": False, "talent_on_stage": False, "estop_latched": False})

    def install_shortcut(self, window: QWidget) -> QShortcut:
        """F12 anywhere in the application presses the E-STOP."""
        shortcut = QShortcut(QKeySequence(ESTOP_SHORTCUT), window)
        shortcut.setContext(Qt.ShortcutContext.ApplicationShortcut)
        shortcut.activated.connect(self.estop)
        return shortcut

    def estop(self) -> None:
        """Send the stage e-stop."""
        self.intent.emit("estop", {"reason": "console E-STOP"})

    def _toggle_armed(self) -> None:
        self.intent.emit("safety.disarm" if self.status.get("armed") else "safety.arm", {})

    def apply_status(self, status: dict[str, Any]) -> None:
        """Render ``safety.status`` (or a ``stage.safety`` delta)."""
        self.status.update(status)
        armed, talent = bool(self.status.get("armed")), bool(self.status.get("talent_on_stage"))
        latched = bool(self.status.get("estop_latched"))
        self.status_label.setText(tr("safety_status",
                                     armed=tr("armed" if armed else "disarmed"),
                                     talent=tr("talent_present" if talent else "talent_clear"),
                                     latch=tr("latched" if latched else "not_latched")))
        self.status_label.setStyleSheet(LATCHED_STYLE if latched else
                                        ARMED_STYLE if armed else SAFE_STYLE)
        self.arm_button.setText(tr("disarm_stage" if armed else "arm_stage"))
        self.talent_button.setChecked(talent)
