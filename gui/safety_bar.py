"""The always-visible safety bar: a large E-STOP (also on F12) and the stage interlocks.

The E-STOP button is never disabled and never gated: pressing it sends ``estop`` even when the
link looks down (the engine drops nothing it receives). Everything else on the bar renders what
the engine said and is honest about not knowing:

* the state words (ARMED / DISARMED, E-STOP LATCHED, TALENT ON STAGE) each carry a symbol and
  a word as well as a colour, so an operator who cannot tell red from green still can;
* when the engine is not live (:meth:`SafetyBar.set_live`), the words give way to an explicit
  UNKNOWN and every button but E-STOP is disabled; the last state is never shown again until
  a fresh ``safety.status`` arrives;
* arm/disarm, talent and reset are enabled from the engine's ``controls`` snapshot
  (``docs/protocols/console-state.md``): the asker's role and the interlocks each command
  needs; a disabled button's tooltip says why;
* Reset asks first, naming the latch it clears and the arms it resets, and says the stage
  stays disarmed (arming is its own act).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import QHBoxLayout, QLabel, QMessageBox, QPushButton, QWidget

from gui.arm_i18n import join_list, tr_estop_by, tr_estop_reason
from gui.controls import ControlsLike, gate
from gui.i18n import tr

ESTOP_SHORTCUT = "F12"
ESTOP_STYLE = ("QPushButton { background-color: #c62828; color: white; font-size: 26px; "
               "font-weight: bold; border: 4px solid #fdd835; border-radius: 10px; "
               "min-height: 64px; min-width: 220px; }"
               "QPushButton:pressed { background-color: #8e0000; }")
_WORD = "font-size: 20px; padding: 4px 10px; border-radius: 4px; "
# each state differs in symbol and word as well as colour; the latch is boxed and inverted
ARMED_STYLE = _WORD + "font-weight: bold; color: black; background: #ffb300; " \
                      "border: 3px solid black;"
DISARMED_STYLE = _WORD + "font-weight: bold; color: #1b5e20; background: #e8f5e9; " \
                         "border: 2px solid #1b5e20;"
LATCHED_STYLE = _WORD + "font-weight: bold; color: white; background: #b71c1c; " \
                        "border: 4px solid #fdd835;"
NOT_LATCHED_STYLE = _WORD + "color: #424242; border: 1px solid #bdbdbd;"
TALENT_STYLE = _WORD + "font-weight: bold; color: black; background: #fdd835; " \
                       "border: 3px solid black;"
CLEAR_STYLE = _WORD + "color: #424242; border: 1px solid #bdbdbd;"
UNKNOWN_STYLE = _WORD + "font-weight: bold; color: #424242; background: #e0e0e0; " \
                        "border: 2px dashed #757575;"
STATUS_KEYS = ("armed", "talent_on_stage", "estop_latched")  # all three: the state is known
SHOWN_KEYS = (*STATUS_KEYS, "estop_reason", "estop_by")
TALENT_OFF_CMD = "safety.talent.off"  # pseudo-command: who may clear "talent on stage"
Confirm = Callable[[str, str], bool]


def resettable_arms(controls: ControlsLike | None) -> list[str] | None:
    """The arms a reset would reset (``resettable`` clear), None when not known."""
    devices = controls.snapshot.get("devices") if controls is not None else None
    if not isinstance(devices, dict):
        return None
    return sorted(name for name, entry in devices.items()
                  if isinstance(entry, dict) and entry.get("device_resettable", False) is None)


def reset_confirmation(safety: dict[str, Any], controls: ControlsLike | None) -> tuple[str, str]:
    """The title and text that ask before a reset (``safety.reset`` and ``arm.reset`` alike).

    Args:
        safety: the engine's ``safety.status`` (``estop_latched``, ``estop_reason``,
            ``estop_by``).
        controls: the engine's controls (its ``devices`` say which arms are resettable).

    Returns:
        (title, text) in the console's language.
    """
    if safety.get("estop_latched"):
        latch = tr("reset_clear_latch", by=tr_estop_by(safety.get("estop_by")),
                   reason=tr_estop_reason(safety.get("estop_reason")))
    else:
        latch = tr("reset_no_latch")
    arms = resettable_arms(controls)
    which = (tr("reset_arms_unknown") if arms is None else
             tr("reset_arms", arms=join_list(arms)) if arms else tr("reset_arms_none"))
    text = "\n".join((tr("reset_intro"), f"• {latch}", f"• {which}", "",
                      tr("reset_stays_disarmed"), "", tr("reset_question")))
    return tr("reset_title"), text


def ask_with_dialog(parent: QWidget) -> Confirm:
    """A ``confirm(title, text)`` that asks with a Yes/No box (No is the default)."""
    def confirm(title: str, text: str) -> bool:
        answer = QMessageBox.question(
            parent, title, text,
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.No)
        return answer == QMessageBox.StandardButton.Yes
    return confirm


class SafetyBar(QWidget):
    """E-STOP plus the stage's state words, arm/disarm, talent and reset.

    Args:
        controls: the engine's controls; None leaves the engine alone to refuse.
        parent: the Qt parent.

    Attributes:
        confirm: asks ``(title, text)`` before a reset; True sends it (tests replace it).

    Signals:
        intent(str, dict): a command name and its args for the engine.
    """

    intent = Signal(str, dict)

    def __init__(self, controls: ControlsLike | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controls = controls
        self.status: dict[str, Any] = {}
        self.live = True
        self.confirm: Confirm = ask_with_dialog(self)
        layout = QHBoxLayout(self)
        self.estop_button = QPushButton(tr("estop_button", shortcut=ESTOP_SHORTCUT))
        self.estop_button.setObjectName("estop_button")
        self.estop_button.setToolTip(tr("estop_tip"))
        self.estop_button.setStyleSheet(ESTOP_STYLE)
        self.estop_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.estop_button.clicked.connect(self.estop)
        layout.addWidget(self.estop_button)

        self.motion_label = QLabel()
        self.motion_label.setObjectName("safety_motion")
        self.latch_label = QLabel()
        self.latch_label.setObjectName("safety_latch")
        self.talent_label = QLabel()
        self.talent_label.setObjectName("safety_talent")
        self.unknown_label = QLabel(tr("safety_unknown"))
        self.unknown_label.setObjectName("safety_unknown")
        self.unknown_label.setStyleSheet(UNKNOWN_STYLE)
        for word in (self.motion_label, self.latch_label, self.talent_label,
                     self.unknown_label):
            layout.addWidget(word)
        layout.addStretch(1)

        self.arm_button = QPushButton(tr("arm_stage"))
        self.arm_button.clicked.connect(self._toggle_armed)
        self.talent_button = QPushButton(tr("talent_on"))
        self.talent_button.clicked.connect(self._toggle_talent)
        self.reset_button = QPushButton(tr("safety_reset"))
        self.reset_button.clicked.connect(self.request_reset)
        for button in (self.arm_button, self.talent_button, self.reset_button):
            layout.addWidget(button)
        if controls is not None:
            controls.changed.connect(self._sync)
        self._render()

    # ---- intents ----------------------------------------------------------------------

    def install_shortcut(self, window: QWidget) -> QShortcut:
        """F12 anywhere in the application presses the E-STOP."""
        shortcut = QShortcut(QKeySequence(ESTOP_SHORTCUT), window)
        shortcut.setContext(Qt.ShortcutContext.ApplicationShortcut)
        shortcut.activated.connect(self.estop)
        return shortcut

    def estop(self) -> None:
        """Send the stage e-stop (always: live or not, whatever the role)."""
        self.intent.emit("estop", {"reason": "console E-STOP"})

    def _toggle_armed(self) -> None:
        self.intent.emit(self.arm_command(), {})

    def _toggle_talent(self) -> None:
        self.intent.emit("safety.talent", {"on": not self.status.get("talent_on_stage")})

    def request_reset(self) -> None:
        """Ask (naming what will be re-enabled); only a yes sends ``safety.reset``."""
        title, text = reset_confirmation(self.status, self.controls)
        if self.confirm(title, text):
            self.intent.emit("safety.reset", {})

    def arm_command(self) -> str:
        """The command the arm button sends now."""
        return "safety.disarm" if self.status.get("armed") else "safety.arm"

    def talent_command(self) -> str:
        """The command the talent button is gated by now (clearing talent is restricted)."""
        if not self.status.get("talent_on_stage"):
            return "safety.talent"
        commands = self.controls.snapshot.get("commands") if self.controls else None
        return TALENT_OFF_CMD if isinstance(commands, dict) and TALENT_OFF_CMD in commands \
            else "safety.talent"

    # ---- rendering --------------------------------------------------------------------

    @property
    def known(self) -> bool:
        """Whether the bar holds a full state from the live engine."""
        return self.live and all(key in self.status for key in STATUS_KEYS)

    def set_live(self, live: bool) -> None:
        """The engine is heard from (True) or not: not live forgets the state it showed."""
        self.live = live
        if not live:
            self.status.clear()  # never shown again: a fresh safety.status must come
        self._render()

    def apply_status(self, status: dict[str, Any]) -> None:
        """Render ``safety.status`` (or a ``stage.safety`` delta, or a command's reply)."""
        self.status.update({k: v for k, v in status.items() if k in SHOWN_KEYS})
        self._render()

    def _render(self) -> None:
        known = self.known
        for word in (self.motion_label, self.latch_label, self.talent_label):
            word.setVisible(known)
        self.unknown_label.setVisible(not known)
        armed, talent = bool(self.status.get("armed")), bool(self.status.get("talent_on_stage"))
        latched = bool(self.status.get("estop_latched"))
        if known:
            self.motion_label.setText(tr("armed" if armed else "disarmed"))
            self.motion_label.setStyleSheet(ARMED_STYLE if armed else DISARMED_STYLE)
            self.latch_label.setText(tr("latched" if latched else "not_latched"))
            self.latch_label.setStyleSheet(LATCHED_STYLE if latched else NOT_LATCHED_STYLE)
            self.latch_label.setToolTip(tr("latched_tip", by=tr_estop_by(
                self.status.get("estop_by")), reason=tr_estop_reason(
                self.status.get("estop_reason"))) if latched else "")
            self.talent_label.setText(tr("talent_present" if talent else "talent_clear"))
            self.talent_label.setStyleSheet(TALENT_STYLE if talent else CLEAR_STYLE)
        self.arm_button.setText(tr("disarm_stage" if armed else "arm_stage"))
        self.talent_button.setText(tr("talent_off_button" if talent else "talent_on"))
        self._sync()

    def _sync(self) -> None:
        """Enable each button from liveness, the state and the engine's controls."""
        known = self.known
        gate(self.arm_button, self.controls, self.arm_command(), live=self.live, known=known)
        gate(self.talent_button, self.controls, self.talent_command(), live=self.live,
             known=known)
        gate(self.reset_button, self.controls, "safety.reset", live=self.live, known=known)
