"""The device health table: one row per device, health in colour, and why.

Health comes from the engine, so while the engine is not live (:meth:`set_live`) every health
and reason cell shows an explicit grey *unknown* and the last value is forgotten: a device
shows a colour again only when a fresh ``status`` or health message arrives.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QSizePolicy,
    QTableWidget,
    QTableWidgetItem,
    QWidget,
)

from gui import i18n
from gui.i18n import STRINGS, tr, tr_health, tr_reason

i18n.add_strings({
    "health_stale_reason": {"en": "no word from the engine", "zh": "未收到引擎消息"},
})

HEALTH_COLOURS: dict[str, tuple[str, str]] = {  # state: (background, text)
    "online": ("#c8e6c9", "#1b5e20"),
    "degraded": ("#ffe0b2", "#8a4b00"),
    "offline": ("#ffcdd2", "#b71c1c"),
    "unknown": ("#e0e0e0", "#424242"),
}
STALE_TEXT = "#757575"
COL_DEVICE, COL_KIND, COL_HEALTH, COL_REASON = range(4)
STATE_ROLE = Qt.ItemDataRole.UserRole
VISIBLE_ROWS_MAX = 8  # beyond this the table scrolls


def tr_kind(kind: str) -> str:
    """A device kind for display."""
    key = f"kind_{kind}"
    return tr(key) if key in STRINGS else kind


class DeviceHealthPanel(QTableWidget):
    """Device, kind, health (coloured) and reason; fed by ``status`` and health messages.

    Its height follows its rows: every device is visible without scrolling up to
    :data:`VISIBLE_ROWS_MAX` devices.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(0, 4, parent)
        self.setObjectName("health_panel")
        self.setHorizontalHeaderLabels([tr("col_device"), tr("col_kind"), tr("col_health"),
                                        tr("col_reason")])
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # read-only and never scrolled up to 8 rows
        self.verticalHeader().setVisible(False)
        header = self.horizontalHeader()
        for col in (COL_DEVICE, COL_KIND, COL_HEALTH):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(COL_REASON, QHeaderView.ResizeMode.Stretch)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self._items: dict[str, list[QTableWidgetItem]] = {}
        self._health: dict[str, dict[str, Any]] = {}
        self.live = True
        self._fit()

    def _row(self, device: str) -> list[QTableWidgetItem]:
        items = self._items.get(device)
        if items is None:
            row = self.rowCount()
            self.insertRow(row)
            items = [QTableWidgetItem(device if col == COL_DEVICE else "") for col in range(4)]
            for col, item in enumerate(items):
                self.setItem(row, col, item)
            self._items[device] = items
            self._render(device)
            self._fit()
        return items

    def _fit(self) -> None:
        """Height for every row (up to :data:`VISIBLE_ROWS_MAX`), header and frame."""
        rows = max(1, min(self.rowCount(), VISIBLE_ROWS_MAX))
        row_height = self.verticalHeader().defaultSectionSize()
        scrollbar = self.horizontalScrollBar().sizeHint().height()
        self.setFixedHeight(self.horizontalHeader().sizeHint().height() + rows * row_height
                            + 2 * self.frameWidth() + scrollbar)

    def add_device(self, device: str, kind: str) -> None:
        """List ``device`` (from the stage config) before the engine says anything of it."""
        self._row(device)[COL_KIND].setText(tr_kind(kind))

    def apply_status(self, status: dict[str, Any]) -> None:
        """Render every device of a ``status`` result."""
        for snapshot in status.get("devices", []):
            name = str(snapshot.get("name", "?"))
            self._row(name)[COL_KIND].setText(tr_kind(str(snapshot.get("kind", ""))))
            self.apply_health(name, {"state": snapshot.get("health", "unknown"),
                                     "reason": snapshot.get("health_reason", ""),
                                     "problems": snapshot.get("health_problems", [])})

    def apply_health(self, device: str, health: dict[str, Any]) -> None:
        """Render one device's health message (ignored while not live: it would be stale)."""
        if not self.live:
            return
        self._health[device] = health
        self._render(device)

    def set_live(self, live: bool) -> None:
        """Without the engine, health is unknown: grey every row and forget what it said."""
        self.live = live
        if not live:
            self._health.clear()
        for device in self._items:
            self._render(device)

    def set_engine_connected(self, connected: bool) -> None:
        """The old name of :meth:`set_live`."""
        self.set_live(connected)

    def _render(self, device: str) -> None:
        items = self._items[device]
        health = self._health.get(device, {})
        state = str(health.get("state", "unknown")) if self.live else "unknown"
        if state not in HEALTH_COLOURS:
            state = "unknown"
        background, text = HEALTH_COLOURS[state]
        item = items[COL_HEALTH]
        item.setText(tr_health(state))
        item.setData(STATE_ROLE, state)  # the wire state, for tests
        item.setBackground(QBrush(QColor(background)))
        item.setForeground(QBrush(QColor(text)))
        reason = items[COL_REASON]
        if self.live:
            reason.setText(tr_reason(health))
            reason.setForeground(QBrush())
        else:
            reason.setText(tr("health_stale_reason"))
            reason.setForeground(QBrush(QColor(STALE_TEXT)))

    def health_of(self, device: str) -> str | None:
        """The health state shown for ``device`` (``online``...), or None if not listed."""
        items = self._items.get(device)
        if items is None:
            return None
        value = items[COL_HEALTH].data(STATE_ROLE)
        return None if value is None else str(value)

    def all_rows_visible(self) -> bool:
        """Whether the viewport shows every row without scrolling (layout tests)."""
        if self.rowCount() == 0:
            return True
        last = self.rowCount() - 1
        bottom = self.rowViewportPosition(last) + self.rowHeight(last)
        return self.rowViewportPosition(0) >= 0 and bottom <= self.viewport().height()
