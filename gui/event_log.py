"""The event log: device and engine events, refused commands and connection changes.

Entries are kept in a bounded in-memory list (:data:`MAX_LINES`); the text view shows the
ones that pass the filter bar (severity and source), so changing a filter re-renders from the
list and new entries respect the current filter.
"""

from __future__ import annotations

import html
import time
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from PySide6.QtGui import QTextCursor
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QVBoxLayout,
    QWidget,
)

from gui.i18n import add_strings, tr, tr_level

LEVEL_COLOURS: dict[str, str] = {"info": "#424242", "warning": "#8a4b00", "error": "#b71c1c"}
MAX_LINES = 2000

# severity filter value -> the levels it shows (None: every level)
SEVERITIES: dict[str, frozenset[str] | None] = {
    "all": None,
    "warning": frozenset({"warning", "error"}),
    "error": frozenset({"error"}),
}
ALL_SOURCES = ""  # the source combo's "all" entry

add_strings({
    "log_filter_level": {"en": "Severity:", "zh": "级别："},
    "log_filter_source": {"en": "Source:", "zh": "来源："},
    "log_severity_all": {"en": "all levels", "zh": "全部级别"},
    "log_severity_warning": {"en": "warnings and errors", "zh": "警告和错误"},
    "log_severity_error": {"en": "errors only", "zh": "仅错误"},
    "log_all_sources": {"en": "all sources", "zh": "全部来源"},
    "log_count": {"en": "{shown} of {total} shown", "zh": "显示 {shown} / {total} 条"},
    # one line: time, level, source, message (full-width brackets and colon in Chinese)
    "log_line": {"en": "{stamp} [{level}] {source}: {message}",
                 "zh": "{stamp} 【{level}】{source}：{message}"},
})


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One event as received: when (epoch seconds), how severe, from where, what."""

    t: float
    level: str
    source: str
    message: str


class EventLog(QWidget):
    """A filter bar above a read-only, bounded list of timestamped lines, coloured by level.

    Args:
        parent: the Qt parent.
        timezone: the stage's IANA zone; times are shown stage-local.
    """

    def __init__(self, parent: QWidget | None = None, timezone: str = "Asia/Shanghai") -> None:
        super().__init__(parent)
        self.setObjectName("event_log")
        self._tz = ZoneInfo(timezone)
        self._entries: deque[LogEntry] = deque(maxlen=MAX_LINES)
        self._shown = 0  # how many of them pass the filter (the view's line count)

        self.severity_combo = QComboBox()
        self.severity_combo.setObjectName("event_log_severity")
        for severity in SEVERITIES:
            self.severity_combo.addItem(tr(f"log_severity_{severity}"), severity)
        self.source_combo = QComboBox()
        self.source_combo.setObjectName("event_log_source")
        self.source_combo.addItem(tr("log_all_sources"), ALL_SOURCES)
        self.count_label = QLabel()
        self.count_label.setObjectName("event_log_count")

        bar = QHBoxLayout()
        bar.setContentsMargins(0, 0, 0, 0)
        bar.addWidget(QLabel(tr("log_filter_level")))
        bar.addWidget(self.severity_combo)
        bar.addSpacing(12)
        bar.addWidget(QLabel(tr("log_filter_source")))
        bar.addWidget(self.source_combo)
        bar.addStretch(1)
        bar.addWidget(self.count_label)

        self.view = QPlainTextEdit()
        self.view.setObjectName("event_log_view")
        self.view.setReadOnly(True)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(bar)
        layout.addWidget(self.view, 1)

        self.severity_combo.currentIndexChanged.connect(lambda _: self._rerender())
        self.source_combo.currentIndexChanged.connect(lambda _: self._rerender())
        self._show_count()

    # ---- filter ---------------------------------------------------------------------------

    def set_severity(self, severity: str) -> None:
        """Show ``all`` levels, ``warning`` (warnings and errors) or ``error`` only.

        Raises:
            ValueError: an unknown severity.
        """
        index = self.severity_combo.findData(severity)
        if index < 0:
            raise ValueError(f"severity must be one of {', '.join(SEVERITIES)}, "
                             f"got {severity!r}")
        self.severity_combo.setCurrentIndex(index)

    def set_source(self, source: str | None) -> None:
        """Show only ``source``'s entries (``None``: every source).

        Raises:
            ValueError: a source that has not logged anything.
        """
        index = self.source_combo.findData(ALL_SOURCES if source is None else source)
        if index < 0:
            raise ValueError(f"no entries from source {source!r}")
        self.source_combo.setCurrentIndex(index)

    def sources(self) -> list[str]:
        """Every source seen so far, in the order first seen."""
        return [str(self.source_combo.itemData(i)) for i in range(1, self.source_combo.count())]

    def _passes(self, entry: LogEntry) -> bool:
        levels = SEVERITIES.get(str(self.severity_combo.currentData()))
        level = entry.level if entry.level in LEVEL_COLOURS else "info"
        if levels is not None and level not in levels:
            return False
        source = self.source_combo.currentData()
        return source in (ALL_SOURCES, None) or entry.source == source

    # ---- entries --------------------------------------------------------------------------

    def add(self, source: str, message: str, level: str = "info",
            t: float | None = None) -> None:
        """Keep one entry and show it if it passes the filter.

        Args:
            source: the device name, ``engine`` or the console.
            message: the sentence to show (already in the console's language).
            level: info, warning or error (anything else is shown as info).
            t: when it happened (epoch seconds); now when not given.
        """
        entry = LogEntry(t if t is not None else time.time(), level, source, message)
        if len(self._entries) == self._entries.maxlen and self._passes(self._entries[0]):
            self._drop_first_line()  # the oldest entry leaves the list, and the view
        self._entries.append(entry)
        if self.source_combo.findData(source) < 0:
            self.source_combo.addItem(source, source)
        if self._passes(entry):
            self.view.appendHtml(self._html(entry))
            self._shown += 1
        self._show_count()

    def entries(self) -> list[LogEntry]:
        """Every kept entry, filtered or not, oldest first."""
        return list(self._entries)

    def lines(self) -> list[str]:
        """The lines shown, as plain text (for tests and copying)."""
        return self.view.toPlainText().splitlines()

    def _html(self, entry: LogEntry) -> str:
        stamp = datetime.fromtimestamp(entry.t, self._tz).strftime("%H:%M:%S")
        colour = LEVEL_COLOURS.get(entry.level, LEVEL_COLOURS["info"])
        line = tr("log_line", stamp=stamp, level=html.escape(tr_level(entry.level)),
                  source=f"<b>{html.escape(entry.source)}</b>",
                  message=html.escape(entry.message))
        return f'<span style="color:{colour}">{line}</span>'

    def _drop_first_line(self) -> None:
        self._shown -= 1
        if self._shown == 0:
            self.view.clear()
            return
        cursor = QTextCursor(self.view.document())
        cursor.movePosition(QTextCursor.MoveOperation.Start)
        cursor.movePosition(QTextCursor.MoveOperation.NextBlock,
                            QTextCursor.MoveMode.KeepAnchor)
        cursor.removeSelectedText()

    def _rerender(self) -> None:
        self.view.clear()
        shown = [entry for entry in self._entries if self._passes(entry)]
        for entry in shown:
            self.view.appendHtml(self._html(entry))
        self._shown = len(shown)
        self._show_count()

    def _show_count(self) -> None:
        self.count_label.setText(tr("log_count", shown=self._shown, total=len(self._entries)))
