"""The event log: device and engine events, refused commands and connection changes."""

from __future__ import annotations

import html
import time
from datetime import datetime
from zoneinfo import ZoneInfo

from PySide6.QtWidgets import QPlainTextEdit, QWidget

from gui.i18n import tr_level

LEVEL_COLOURS: dict[str, str] = {"info": "#424242", "warning": "#8a4b00", "error": "#b71c1c"}
MAX_LINES = 2000


class EventLog(QPlainTextEdit):
    """A read-only, bounded list of timestamped lines, coloured by level."""

    def __init__(self, parent: QWidget | None = None, timezone: str = "Asia/Shanghai") -> None:
        super().__init__(parent)
        self._tz = ZoneInfo(timezone)
        self.setReadOnly(True)
        self.setMaximumBlockCount(MAX_LINES)
        self.setObjectName("event_log")

    def add(self, source: str, message: str, level: str = "info",
            t: float | None = None) -> None:
        """Append one line: stage-local time, level, source and message."""
        stamp = datetime.fromtimestamp(t if t is not None else time.time(), self._tz).strftime(
            "%H:%M:%S")
        colour = LEVEL_COLOURS.get(level, LEVEL_COLOURS["info"])
        self.appendHtml(
            f'<span style="color:{colour}">{stamp} [{html.escape(tr_level(level))}] '
            f"<b>{html.escape(source)}</b>: {html.escape(message)}</span>")

    def lines(self) -> list[str]:
        """The log as plain text lines (for tests and copying)."""
        return self.toPlainText().splitlines()
