"""One camera arm: joint readouts, state, jog, home, stop, run path. Renders and emits intents.

The panel shows what the arm *reports* (state, joints, velocities, tool pose) while the engine
is live; when it is not (:meth:`ArmPanel.set_live`) every readout turns to an explicit unknown
("—", greyed, state "unknown") and every control is disabled: E-STOP on the safety bar is the
one path that never is. Each control is enabled from the engine's ``controls`` snapshot (role
and interlocks, ``docs/protocols/console-state.md``) and its tooltip says why when not. Every
button becomes one ``intent(cmd, args)`` for the engine, which checks interlocks and limits
again; Reset asks first, as the safety bar's does (the engine resets the stage latch and every
arm either way).
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QFileDialog,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from gui.arm_i18n import label, tr_arm_fault, tr_arm_state
from gui.controls import ControlsLike, gate
from gui.i18n import tr
from gui.safety_bar import Confirm, ask_with_dialog, reset_confirmation

JOINTS: tuple[str, ...] = ("j1", "j2", "j3", "j4", "j5", "j6")
JOG_DEG_S = 10.0
JOG_S = 0.3
_STATE = "font-size: 16px; font-weight: bold; padding: 2px 6px; "
STATE_STYLES = {"IDLE": _STATE + "color: #1b5e20;",
                "MOVING": _STATE + "color: #0d47a1;",
                "HOMING": _STATE + "color: #0d47a1;",
                "STOPPING": _STATE + "color: #e65100;",
                "ESTOP": _STATE + "background: #b71c1c; color: white; border: 2px solid #fdd835;",
                "FAULT": _STATE + "background: #e65100; color: white;",
                "DISCONNECTED": _STATE + "color: #616161; border: 1px solid #9e9e9e;"}
UNKNOWN_STATE_STYLE = _STATE + "color: #616161; background: #e0e0e0; border: 1px dashed #757575;"
STALE_STYLE = "color: #9e9e9e;"
POSE_ORDER = (("x_mm", "pose_x", " mm"), ("y_mm", "pose_y", " mm"), ("z_mm", "pose_z", " mm"),
              ("roll_deg", "pose_roll", "°"), ("pitch_deg", "pose_pitch", "°"),
              ("yaw_deg", "pose_yaw", "°"))


def _num(value: object, digits: int) -> float:
    """``value`` rounded for display, never "-0.0"."""
    return round(float(value), digits) + 0.0  # type: ignore[arg-type]


def _style(widget: QWidget, style: str) -> None:
    """Set a style sheet only when it changes (re-polishing on every sample is costly)."""
    if widget.styleSheet() != style:
        widget.setStyleSheet(style)


class ArmPanel(QWidget):
    """Readouts and controls of one arm.

    Args:
        device: the arm's name (sent with every intent).
        axes: axis names in order (``j1``..``j6`` and ``track`` when present).
        controls: the engine's controls; None leaves the engine alone to refuse.
        parent: the Qt parent.

    Attributes:
        confirm: asks ``(title, text)`` before a reset; True sends it (tests replace it).
        safety: the last ``safety.status`` (:meth:`apply_safety`), named in the reset question.

    Signals:
        intent(str, dict): a command name and its args for the engine.
    """

    intent = Signal(str, dict)

    def __init__(self, device: str, axes: tuple[str, ...] = JOINTS,
                 controls: ControlsLike | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.device = device
        self.axes = axes
        self.controls = controls
        self.reported: dict[str, Any] = {}
        self.safety: dict[str, Any] = {}
        self.live = True
        self.confirm: Confirm = ask_with_dialog(self)
        layout = QVBoxLayout(self)
        top = QHBoxLayout()
        top.addWidget(QLabel(label("arm_state")))
        self.state_label = QLabel()
        self.state_label.setObjectName("arm_state")
        top.addWidget(self.state_label)
        self.fault_label = QLabel("")
        self.fault_label.setObjectName("arm_fault")
        top.addWidget(self.fault_label, 1)
        layout.addLayout(top)

        grid = QGridLayout()
        for col, key in enumerate(("arm_joint", "arm_position", "arm_velocity", "arm_jog")):
            grid.addWidget(QLabel(f"<b>{tr(key)}</b>"), 0, col, 1, 2 if col == 3 else 1)
        self.position_labels: dict[str, QLabel] = {}
        self.velocity_labels: dict[str, QLabel] = {}
        self.jog_buttons: dict[tuple[str, int], QPushButton] = {}
        for row, name in enumerate(axes, start=1):
            unit = "mm" if name == "track" else "°"
            grid.addWidget(QLabel(tr("arm_axis_track") if name == "track" else name), row, 0)
            self.position_labels[name] = QLabel("—")
            self.velocity_labels[name] = QLabel("—")
            grid.addWidget(self.position_labels[name], row, 1)
            grid.addWidget(self.velocity_labels[name], row, 2)
            for col, sign in ((3, -1), (4, 1)):
                button = QPushButton(f"{'−' if sign < 0 else '+'}{unit}")
                button.setAutoRepeat(True)
                button.setAutoRepeatInterval(int(JOG_S * 1000))
                button.clicked.connect(lambda _=False, n=name, s=sign: self.jog(n, s))
                self.jog_buttons[(name, sign)] = button
                grid.addWidget(button, row, col)
        layout.addLayout(grid)
        self.pose_label = QLabel()
        self.pose_label.setObjectName("arm_pose")
        layout.addWidget(self.pose_label)

        buttons = QHBoxLayout()
        self.home_button = QPushButton(tr("arm_home"))
        self.home_button.clicked.connect(lambda: self._emit("arm.home", {}))
        self.stop_button = QPushButton(tr("arm_stop"))
        self.stop_button.clicked.connect(lambda: self._emit("arm.stop", {}))
        self.reset_button = QPushButton(tr("safety_reset"))
        self.reset_button.clicked.connect(self.request_reset)
        self.path_button = QPushButton(tr("arm_run_path"))
        self.path_button.clicked.connect(self._choose_path)
        for button in (self.home_button, self.stop_button, self.reset_button, self.path_button):
            buttons.addWidget(button)
        layout.addLayout(buttons)
        layout.addStretch(1)
        if controls is not None:
            controls.changed.connect(self._sync)
        self._render()

    # ---- intents ----------------------------------------------------------------------

    def _emit(self, cmd: str, args: dict[str, Any]) -> None:
        self.intent.emit(cmd, {"device": self.device, **args})

    def jog(self, axis: str, sign: int) -> None:
        """Jog ``axis`` briefly in direction ``sign``."""
        velocity = sign * (JOG_DEG_S * 10 if axis == "track" else JOG_DEG_S)
        self._emit("arm.jog", {"axis": axis, "velocity": velocity, "duration_s": JOG_S})

    def run_path_file(self, path: Path) -> None:
        """Send the keyframes in a JSON or TOML file as ``arm.run_path``."""
        text = path.read_text(encoding="utf-8")
        data = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
        frames = data.get("keyframes") if isinstance(data, dict) else data
        self._emit("arm.run_path", {"keyframes": frames})

    def _choose_path(self) -> None:
        name, _ = QFileDialog.getOpenFileName(self, tr("arm_run_path"), "",
                                              tr("arm_path_files"))
        if name:
            self.run_path_file(Path(name))

    def request_reset(self) -> None:
        """Ask as the safety bar does; only a yes sends ``arm.reset``."""
        title, text = reset_confirmation(self.safety, self.controls)
        if self.confirm(title, text):
            self._emit("arm.reset", {})

    # ---- rendering --------------------------------------------------------------------

    @property
    def known(self) -> bool:
        """Whether the panel holds the arm's state from the live engine."""
        return self.live and "state" in self.reported

    def set_live(self, live: bool) -> None:
        """The engine is heard from (True) or not: not live forgets every reported value."""
        self.live = live
        if not live:
            self.reported.clear()  # never shown again: a fresh snapshot must come
            self.safety.clear()
        self._render()

    def apply_safety(self, status: dict[str, Any]) -> None:
        """Keep the stage's ``safety.status`` for the reset question."""
        self.safety.update(status)

    def apply_snapshot(self, snapshot: dict[str, Any]) -> None:
        """Render a full device snapshot (from ``status``)."""
        state = snapshot.get("state")
        if isinstance(state, dict):
            self.apply_reported(state)

    def apply_reported(self, delta: dict[str, Any]) -> None:
        """Render changed reported values."""
        self.reported.update(delta)
        self._render()

    def _render(self) -> None:
        shown = self.reported if self.live else {}
        state = shown.get("state")
        known = self.known
        self.state_label.setText(tr_arm_state(state) if known else tr("arm_state_unknown"))
        _style(self.state_label, STATE_STYLES.get(str(state), UNKNOWN_STATE_STYLE)
               if known else UNKNOWN_STATE_STYLE)
        fault = tr_arm_fault(shown.get("fault"))
        self.fault_label.setText(tr("arm_fault", fault=fault) if fault else "")
        joints = list(shown.get("joints_deg") or [])
        velocities = list(shown.get("velocities_deg_s") or [])
        if "track_mm" in shown:
            joints.append(shown["track_mm"])
        style = "" if known else STALE_STYLE
        for i, name in enumerate(self.axes):
            self.position_labels[name].setText(f"{_num(joints[i], 2):8.2f}"
                                               if i < len(joints) else "—")
            self.velocity_labels[name].setText(f"{_num(velocities[i], 1):7.1f}"
                                               if i < len(velocities) else "—")
            _style(self.position_labels[name], style)
            _style(self.velocity_labels[name], style)
        pose = shown.get("tool_pose")
        parts = [f"{tr(name)} {_num(pose[key], 1):.1f}{unit}" for key, name, unit in POSE_ORDER
                 if key in pose] if isinstance(pose, dict) else []
        self.pose_label.setText(label("arm_pose") + ("  ".join(parts) if parts else "—"))
        _style(self.pose_label, style)
        self._sync()

    def _sync(self) -> None:
        """Enable each control from liveness, the arm's state and the engine's controls."""
        known, device = self.known, self.device
        for button in self.jog_buttons.values():
            gate(button, self.controls, "arm.jog", device, live=self.live, known=known)
        gate(self.home_button, self.controls, "arm.home", device, live=self.live, known=known)
        gate(self.path_button, self.controls, "arm.run_path", device, live=self.live,
             known=known)
        gate(self.reset_button, self.controls, "arm.reset", device, live=self.live,
             known=known)
        # Stop makes the stage safer: it waits for nothing but a live engine to reach
        gate(self.stop_button, self.controls, "arm.stop", device, live=self.live)
