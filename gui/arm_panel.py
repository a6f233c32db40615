"""One camera arm: joint readouts, state, jog, home, stop, run path. Renders and emits intents.

The panel shows what the arm *reports* (state, joints, velocities, tool pose); every button
becomes one ``intent(cmd, args)`` for the engine, which checks interlocks and limits. The
panel decides nothing: a refused move comes back as a failed command in the event log.
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

from gui import arm_i18n  # noqa: F401  (registers the strings)
from gui.i18n import tr

JOINTS: tuple[str, ...] = ("j1", "j2", "j3", "j4", "j5", "j6")
JOG_DEG_S = 10.0
JOG_S = 0.3
STATE_STYLES = {"IDLE": "color: #1b5e20;", "MOVING": "color: #0d47a1; font-weight: bold;",
                "HOMING": "color: #0d47a1; font-weight: bold;",
                "STOPPING": "color: #e65100; font-weight: bold;",
                "ESTOP": "background: #b71c1c; color: white; font-weight: bold; padding: 2px;",
                "FAULT": "background: #e65100; color: white; font-weight: bold; padding: 2px;",
                "DISCONNECTED": "color: #757575;"}


class ArmPanel(QWidget):
    """Readouts and controls of one arm.

    Args:
        device: the arm's name (sent with every intent).
        axes: axis names in order (``j1``..``j6`` and ``track`` when present).

    Signals:
        intent(str, dict): a command name and its args for the engine.
    """

    intent = Signal(str, dict)

    def __init__(self, device: str, axes: tuple[str, ...] = JOINTS,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.device = device
        self.axes = axes
        self.reported: dict[str, Any] = {}
        layout = QVBoxLayout(self)
        top = QHBoxLayout()
        top.addWidget(QLabel(tr("arm_state") + ":"))
        self.state_label = QLabel("DISCONNECTED")
        self.state_label.setObjectName("arm_state")
        top.addWidget(self.state_label)
        self.fault_label = QLabel("")
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
            grid.addWidget(QLabel(name), row, 0)
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
        self.pose_label = QLabel(tr("arm_pose") + ": —")
        layout.addWidget(self.pose_label)

        buttons = QHBoxLayout()
        self.home_button = QPushButton(tr("arm_home"))
        self.home_button.clicked.connect(lambda: self._emit("arm.home", {}))
        self.stop_button = QPushButton(tr("arm_stop"))
        self.stop_button.clicked.connect(lambda: self._emit("arm.stop", {}))
        self.reset_button = QPushButton(tr("safety_reset"))
        self.reset_button.clicked.connect(lambda: self._emit("arm.reset", {}))
        self.path_button = QPushButton(tr("arm_run_path"))
        self.path_button.clicked.connect(self._choose_path)
        for button in (self.home_button, self.stop_button, self.reset_button, self.path_button):
            buttons.addWidget(button)
        layout.addLayout(buttons)
        layout.addStretch(1)

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
                                              "Paths (*.json *.toml)")
        if name:
            self.run_path_file(Path(name))

    # ---- rendering --------------------------------------------------------------------

    def apply_snapshot(self, snapshot: dict[str, Any]) -> None:
        """Render a full device snapshot (from ``status``)."""
        state = snapshot.get("state")
        if isinstance(state, dict):
            self.apply_reported(state)

    def apply_reported(self, delta: dict[str, Any]) -> None:
        """Render changed reported values."""
        self.reported.update(delta)
        if "state" in delta:
            state = str(delta["state"])
            self.state_label.setText(state)
            self.state_label.setStyleSheet(STATE_STYLES.get(state, ""))
        if "fault" in delta:
            self.fault_label.setText(str(delta["fault"] or ""))
        joints = list(self.reported.get("joints_deg") or [])
        velocities = list(self.reported.get("velocities_deg_s") or [])
        if "track_mm" in self.reported:
            joints.append(self.reported["track_mm"])
        for i, name in enumerate(self.axes):
            if i < len(joints):
                self.position_labels[name].setText(f"{float(joints[i]):8.2f}")
            if i < len(velocities):
                self.velocity_labels[name].setText(f"{float(velocities[i]):7.1f}")
        pose = self.reported.get("tool_pose")
        if isinstance(pose, dict) and ("tool_pose" in delta):
            order = ("x_mm", "y_mm", "z_mm", "roll_deg", "pitch_deg", "yaw_deg")
            unit = {"mm": " mm", "deg": "°"}
            self.pose_label.setText(tr("arm_pose") + ": " + "  ".join(
                f"{k.split('_')[0]} {float(pose[k]):.1f}{unit[k.split('_')[1]]}"
                for k in order if k in pose))
