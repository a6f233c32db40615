"""Tracking panel: per-source health and a live plot of position and rotation.

Samples arrive batched from the bridge (``tracking_samples``); the panel keeps the last
``HISTORY_S`` seconds per source in numpy ring buffers and redraws at ~15 Hz, however fast
the sources run (up to 240 Hz each).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from gui import i18n
from gui.i18n import tr, tr_health

i18n.add_strings({
    "kind_tracking": {"en": "camera tracking", "zh": "摄像机跟踪"},
    "tracking_title": {"en": "Tracking", "zh": "摄像机跟踪"},
    "trk_source": {"en": "Source", "zh": "跟踪源"},
    "trk_protocol": {"en": "Protocol", "zh": "协议"},
    "trk_rate": {"en": "Rate (Hz)", "zh": "频率 (Hz)"},
    "trk_jitter": {"en": "Jitter (ms)", "zh": "抖动 (ms)"},
    "trk_loss": {"en": "Loss (%)", "zh": "丢包 (%)"},
    "trk_errors": {"en": "Errors", "zh": "错误"},
    "trk_last_seen": {"en": "Last seen (ms)", "zh": "上次接收 (ms)"},
    "trk_delay": {"en": "Delay (frames)", "zh": "延迟 (帧)"},
    "trk_timecode": {"en": "Timecode", "zh": "时间码"},
    "trk_plot_source": {"en": "Plot source:", "zh": "绘图跟踪源："},
    "trk_position": {"en": "Position (m)", "zh": "位置 (米)"},
    "trk_rotation": {"en": "Rotation (°)", "zh": "旋转 (度)"},
    "trk_time": {"en": "time (s)", "zh": "时间 (秒)"},
})

HISTORY_S = 10.0
MAX_POINTS = 240 * int(HISTORY_S)
COLUMNS = ("trk_source", "health", "trk_protocol", "trk_rate", "trk_jitter", "trk_loss",
           "trk_errors", "trk_last_seen", "trk_delay", "trk_timecode")
STATE_KEYS = (None, None, "protocol", "rate_hz", "jitter_ms", "loss_pct", "errors",
              "last_seen_age_ms", "delay_frames", "timecode")
AXIS_COLOURS = ("#d32f2f", "#388e3c", "#1976d2")


class _History:
    """Ring buffer of arrival time, position and rotation for one source."""

    def __init__(self) -> None:
        self.t = np.full(MAX_POINTS, np.nan)
        self.pos = np.full((MAX_POINTS, 3), np.nan)
        self.rot = np.full((MAX_POINTS, 3), np.nan)
        self.head = 0
        self.count = 0

    def extend(self, samples: list[dict[str, Any]]) -> None:
        for s in samples[-MAX_POINTS:]:
            i = self.head
            self.t[i] = float(s.get("arrival_s", 0.0))
            self.pos[i] = s.get("position_m") or (np.nan,) * 3
            self.rot[i] = s.get("rotation_deg") or (np.nan,) * 3
            self.head = (i + 1) % MAX_POINTS
            self.count = min(self.count + 1, MAX_POINTS)

    def ordered(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        idx = (np.arange(self.count) + self.head - self.count) % MAX_POINTS
        t = self.t[idx]
        keep = t >= (t[-1] - HISTORY_S) if self.count else np.zeros(0, bool)
        return t[keep] - (t[-1] if self.count else 0.0), self.pos[idx][keep], self.rot[idx][keep]


class TrackingPanel(QWidget):
    """Source table plus position/rotation plots of the chosen source."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("tracking_panel")
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setObjectName("tracking_table")
        self.table.setHorizontalHeaderLabels(
            [tr(c) if c != "health" else tr("col_health") for c in COLUMNS])
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(
            QHeaderView.ResizeMode.ResizeToContents)
        self.source_box = QComboBox()
        self.source_box.setObjectName("tracking_source")
        pg.setConfigOptions(antialias=False, background="w", foreground="#424242")
        self.pos_plot = pg.PlotWidget(title=tr("trk_position"))
        self.rot_plot = pg.PlotWidget(title=tr("trk_rotation"))
        self.pos_curves: list[Any] = []
        self.rot_curves: list[Any] = []
        for plot, curves, names in ((self.pos_plot, self.pos_curves, ("x", "y", "z")),
                                    (self.rot_plot, self.rot_curves, ("pan", "tilt", "roll"))):
            plot.addLegend(offset=(5, 5))
            plot.setLabel("bottom", tr("trk_time"))
            plot.showGrid(x=True, y=True, alpha=0.3)
            for name, colour in zip(names, AXIS_COLOURS, strict=True):
                curves.append(plot.plot(name=name, pen=pg.mkPen(colour, width=1.5)))
        chooser = QHBoxLayout()
        chooser.addWidget(QLabel(tr("trk_plot_source")))
        chooser.addWidget(self.source_box, 1)
        plots = QHBoxLayout()
        plots.addWidget(self.pos_plot)
        plots.addWidget(self.rot_plot)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table)
        layout.addLayout(chooser)
        layout.addLayout(plots, 1)
        self._rows: dict[str, int] = {}
        self._history: dict[str, _History] = {}
        self.samples_seen: dict[str, int] = {}
        self._dirty = False
        self._timer = QTimer(self)
        self._timer.timeout.connect(self._redraw)
        self._timer.start(66)

    # ---- model input ---------------------------------------------------------------------

    def _row(self, source: str) -> int:
        row = self._rows.get(source)
        if row is None:
            row = self.table.rowCount()
            self.table.insertRow(row)
            for col in range(len(COLUMNS)):
                self.table.setItem(row, col, QTableWidgetItem(""))
            item = self.table.item(row, 0)
            assert item is not None
            item.setText(source)
            self._rows[source] = row
            self.source_box.addItem(source)
        return row

    def apply_status(self, status: dict[str, Any]) -> None:
        """Show every tracking source of a ``status`` result."""
        for dev in status.get("devices", []):
            if dev.get("kind") == "tracking":
                self.apply_delta(str(dev["name"]), dict(dev.get("state", {})))
                self.apply_health(str(dev["name"]), {"state": dev.get("health")})

    def is_source(self, name: str) -> bool:
        """Whether ``name`` is a tracking source shown here."""
        return name in self._rows

    def apply_delta(self, source: str, data: dict[str, Any]) -> None:
        """Update the statistics columns of a source."""
        row = self._row(source)
        for col, key in enumerate(STATE_KEYS):
            if key is None or key not in data:
                continue
            value = data[key]
            if key == "errors" and isinstance(value, dict):
                value = sum(value.values())
            item = self.table.item(row, col)
            if item is not None:
                item.setText("—" if value is None else str(value))

    def apply_health(self, source: str, health: dict[str, Any]) -> None:
        """Show a source's health."""
        if source not in self._rows:
            return
        item = self.table.item(self._rows[source], 1)
        if item is not None:
            state = str(health.get("state") or "unknown")
            item.setText(tr_health(state))
            item.setData(Qt.ItemDataRole.UserRole, state)

    def add_samples(self, source: str, samples: list[dict[str, Any]]) -> None:
        """Append samples (from the bridge's batched signal)."""
        self._row(source)
        self._history.setdefault(source, _History()).extend(samples)
        self.samples_seen[source] = self.samples_seen.get(source, 0) + len(samples)
        self._dirty = True

    # ---- drawing -------------------------------------------------------------------------

    def _redraw(self) -> None:
        if not self._dirty:
            return
        self._dirty = False
        history = self._history.get(self.source_box.currentText())
        if history is None or history.count == 0:
            return
        t, pos, rot = history.ordered()
        for i in range(3):
            self.pos_curves[i].setData(t, pos[:, i])
            self.rot_curves[i].setData(t, rot[:, i])


def attach_tracking_panel(window: Any) -> TrackingPanel | None:
    """Add the tracking tab to the main window when the stage has tracking sources."""
    sources = [d for d in window.config.devices if d.kind == "tracking"]
    if not sources:
        return None
    panel = TrackingPanel()
    for device in sources:
        panel._row(device.name)
    window.led_tabs.addTab(panel, tr("tracking_title"))
    bridge = window.bridge
    bridge.status_received.connect(panel.apply_status)
    bridge.tracking_samples.connect(panel.add_samples)
    bridge.device_delta.connect(
        lambda device, delta: panel.apply_delta(device, delta) if panel.is_source(device)
        else None)
    bridge.health_changed.connect(panel.apply_health)
    return panel
