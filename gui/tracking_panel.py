"""Tracking panel: per-source health and a live plot of position and rotation.

Samples arrive batched from the bridge (``tracking_samples``); the panel keeps the last
``HISTORY_S`` seconds per source in numpy ring buffers and redraws at ~15 Hz, however fast
the sources run (up to 240 Hz each).

Everything here comes from the engine: while it is not live (:meth:`TrackingPanel.set_live`)
every statistic shows a grey "—", health shows unknown and the plots carry a "stale" banner;
a value returns only when a fresh one arrives.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QSizePolicy,
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
    "trk_rate": {"en": "Rate (Hz)", "zh": "频率（Hz）"},
    "trk_jitter": {"en": "Jitter (ms)", "zh": "抖动（ms）"},
    "trk_loss": {"en": "Loss (%)", "zh": "丢包（%）"},
    "trk_errors": {"en": "Errors", "zh": "错误"},
    "trk_last_seen": {"en": "Last seen (ms)", "zh": "上次接收（ms）"},
    "trk_delay": {"en": "Delay (frames)", "zh": "延迟（帧）"},
    "trk_timecode": {"en": "Timecode", "zh": "时间码"},
    "trk_plot_source": {"en": "Plot source:", "zh": "绘图跟踪源："},
    "trk_position": {"en": "Position (m)", "zh": "位置（米）"},
    "trk_rotation": {"en": "Rotation (°)", "zh": "旋转（度）"},
    "trk_time": {"en": "time (s)", "zh": "时间（秒）"},
    "trk_stale": {"en": "⚠ Stale: the engine is not heard from",
                  "zh": "⚠ 数据过期：未收到引擎消息"},
    "trk_pan": {"en": "pan", "zh": "水平摇"},
    "trk_tilt": {"en": "tilt", "zh": "俯仰"},
    "trk_roll": {"en": "roll", "zh": "横滚"},
})

HISTORY_S = 10.0
MAX_POINTS = 240 * int(HISTORY_S)
COLUMNS = ("trk_source", "health", "trk_protocol", "trk_rate", "trk_jitter", "trk_loss",
           "trk_errors", "trk_last_seen", "trk_delay", "trk_timecode")
STATE_KEYS = (None, None, "protocol", "rate_hz", "jitter_ms", "loss_pct", "errors",
              "last_seen_age_ms", "delay_frames", "timecode")
AXIS_COLOURS = ("#d32f2f", "#388e3c", "#1976d2")
PROTOCOL_NAMES = {"freed": "FreeD", "opentrackio": "OpenTrackIO", "osc": "OSC"}  # as written
STALE_TEXT = "#9e9e9e"
PLOT_MIN_HEIGHT = 200
STALE_STYLE = ("background-color: rgba(238, 238, 238, 220); color: #424242; font-size: 16px; "
               "font-weight: bold; border: 1px dashed #757575; padding: 6px 12px;")


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
        self.table.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.source_box = QComboBox()
        self.source_box.setObjectName("tracking_source")
        pg.setConfigOptions(antialias=False, background="w", foreground="#424242")
        self.pos_plot = pg.PlotWidget(title=tr("trk_position"))
        self.rot_plot = pg.PlotWidget(title=tr("trk_rotation"))
        self.pos_curves: list[Any] = []
        self.rot_curves: list[Any] = []
        for plot, curves, names in ((self.pos_plot, self.pos_curves, ("x", "y", "z")),
                                    (self.rot_plot, self.rot_curves,
                                     (tr("trk_pan"), tr("trk_tilt"), tr("trk_roll")))):
            plot.addLegend(offset=(5, 5))
            plot.setLabel("bottom", tr("trk_time"))
            for axis in ("bottom", "left"):  # a "(x0.001)" suffix is neither language
                plot.getAxis(axis).enableAutoSIPrefix(False)
            plot.showGrid(x=True, y=True, alpha=0.3)
            for name, colour in zip(names, AXIS_COLOURS, strict=True):
                curves.append(plot.plot(name=name, pen=pg.mkPen(colour, width=1.5)))
        chooser = QHBoxLayout()
        chooser.addWidget(QLabel(tr("trk_plot_source")))
        chooser.addWidget(self.source_box, 1)
        for plot in (self.pos_plot, self.rot_plot):
            plot.setMinimumHeight(PLOT_MIN_HEIGHT)
        self.stale_label = QLabel(tr("trk_stale"))
        self.stale_label.setObjectName("tracking_stale")
        self.stale_label.setStyleSheet(STALE_STYLE)
        self.stale_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.stale_label.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        plots = QGridLayout()
        plots.addWidget(self.pos_plot, 0, 0)
        plots.addWidget(self.rot_plot, 0, 1)
        plots.addWidget(self.stale_label, 0, 0, 1, 2, Qt.AlignmentFlag.AlignCenter)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table)
        layout.addLayout(chooser)
        layout.addLayout(plots, 1)
        self.live = True
        self.stale_label.hide()
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
            self._render_unknown(row)
            self._fit_table()
        return row

    def add_source(self, source: str) -> None:
        """List ``source`` (from the stage config) before the engine says anything of it."""
        self._row(source)

    def _fit_table(self) -> None:
        rows = max(1, self.table.rowCount())
        self.table.setFixedHeight(self.table.horizontalHeader().sizeHint().height()
                                  + rows * self.table.verticalHeader().defaultSectionSize()
                                  + 2 * self.table.frameWidth()
                                  + self.table.horizontalScrollBar().sizeHint().height())

    def _render_unknown(self, row: int) -> None:
        """Every engine-derived cell of ``row``: grey "—", health unknown."""
        for col in range(1, len(COLUMNS)):
            item = self.table.item(row, col)
            if item is None:
                continue
            if col == 1:
                item.setText(tr_health("unknown"))
                item.setData(Qt.ItemDataRole.UserRole, "unknown")
            else:
                item.setText("—")
            item.setForeground(QBrush(QColor(STALE_TEXT)))

    def set_live(self, live: bool) -> None:
        """Whether the engine is heard from; not live greys every value and marks the plot."""
        self.live = live
        self.stale_label.setVisible(not live)
        if not live:
            for row in self._rows.values():
                self._render_unknown(row)

    def stat(self, source: str, key: str) -> str | None:
        """The text shown for statistic ``key`` of ``source`` (tests), None if not listed."""
        row = self._rows.get(source)
        if row is None or key not in STATE_KEYS:
            return None
        item = self.table.item(row, STATE_KEYS.index(key))
        return None if item is None else item.text()

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
        """Update the statistics columns of a source (ignored while not live)."""
        if not self.live:
            return
        row = self._row(source)
        for col, key in enumerate(STATE_KEYS):
            if key is None or key not in data:
                continue
            value = data[key]
            if key == "errors" and isinstance(value, dict):
                value = sum(value.values())
            elif key == "protocol" and isinstance(value, str):
                value = PROTOCOL_NAMES.get(value.lower(), value)
            item = self.table.item(row, col)
            if item is not None:
                item.setText("—" if value is None else str(value))
                item.setForeground(QBrush())

    def apply_health(self, source: str, health: dict[str, Any]) -> None:
        """Show a source's health (ignored while not live)."""
        if source not in self._rows or not self.live:
            return
        item = self.table.item(self._rows[source], 1)
        if item is not None:
            state = str(health.get("state") or "unknown")
            item.setText(tr_health(state))
            item.setData(Qt.ItemDataRole.UserRole, state)
            item.setForeground(QBrush())

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

