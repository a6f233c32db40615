"""The device health table: one row per device, health in colour, and why."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QTableWidgetItem

from gui.i18n import STRINGS, tr, tr_health, tr_reason

HEALTH_COLOURS: dict[str, tuple[str, str]] = {  # state: (background, text)
    "online": ("#c8e6c9", "#1b5e20"),
    "degraded": ("#ffe0b2", "#8a4b00"),
    "offline": ("#ffcdd2", "#b71c1c"),
    "unknown": ("#e0e0e0", "#424242"),
}
COL_DEVICE, COL_KIND, COL_HEALTH, COL_REASON = range(4)
STATE_ROLE = Qt.ItemDataRole.UserRole


def tr_kind(kind: str) -> str:
    """A device kind for display."""
    key = f"kind_{kind}"
    return tr(key) if key in STRINGS else kind


class DeviceHealthPanel(QTableWidget):
    """Device, kind, health (coloured) and reason; fed by ``status`` and health messages."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(0, 4, parent)
        self.setHorizontalHeaderLabels([tr("col_device"), tr("col_kind"), tr("col_health"),
                                        tr("col_reason")])
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.verticalHeader().setVisible(False)
        header = self.horizontalHeader()
        for col in (COL_DEVICE, COL_KIND, COL_HEALTH):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(COL_REASON, QHeaderView.ResizeMode.Stretch)
        self._items: dict[str, list[QTableWidgetItem]] = {}
        self._health: dict[str, dict[str, Any]] = {}
        self._engine_connected = True

    def _row(self, device: str) -> list[QTableWidgetItem]:
        items = self._items.get(device)
        if items is None:
            row = self.rowCount()
            self.insertRow(row)
            items = [QTableWidgetItem(device if col == COL_DEVICE else "") for col in range(4)]
            for col, item in enumerate(items):
                self.setItem(row, col, item)
            self._items[device] = items
        return items

    def apply_status(self, status: dict[str, Any]) -> None:
        """Render every device of a ``status`` result."""
        for snapshot in status.get("devices", []):
            name = str(snapshot.get("name", "?"))
            self._row(name)[COL_KIND].setText(tr_kind(str(snapshot.get("kind", ""))))
            self.apply_health(name, {"state": snapshot.get("health", "unknown"),
                                     "reason": snapshot.get("health_reason", ""),
                                     "problems": snapshot.get("health_problems", [])})

    def apply_health(self, device: str, health: dict[str, Any]) -> None:
        """Render one device's health message."""
        self._health[device] = health
        self._render(device)

    def set_engine_connected(self, connected: bool) -> None:
        """Without the engine, health is unknown: grey the rows until it is back."""
        self._engine_connected = connected
        for device in self._items:
            self._render(device)

    def _render(self, device: str) -> None:
        items = self._row(device)
        health = self._health.get(device, {})
        state = str(health.get("state", "unknown")) if self._engine_connected else "unknown"
        if state not in HEALTH_COLOURS:
            state = "unknown"
        background, text = HEALTH_COLOURS[state]
        item = items[COL_HEALTH]
        item.setText(tr_health(state))
        item.setData(STATE_ROLE, state)  # the wire state, for tests
        item.setBackground(QBrush(QColor(background)))
        item.setForeground(QBrush(QColor(text)))
        items[COL_REASON].setText(tr_reason(health))

    def health_of(self, device: str) -> str | None:
        """The health state shown for ``device`` (``online``...), or None if not listed."""
        items = self._items.get(device)
        if items is None:
            return None
        value = items[COL_HEALTH].data(STATE_ROLE)
        return None if value is None else str(value)
