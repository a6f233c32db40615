"""The cue list with GO, back and jump; renders ``cue.list`` results and emits intents."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from gui import arm_i18n  # noqa: F401  (registers the strings)
from gui.i18n import tr

GO_STYLE = "QPushButton { background-color: #2e7d32; color: white; font-size: 20px; " \
           "font-weight: bold; min-height: 44px; }"


class CuePanel(QWidget):
    """The stage's cues; the current cue is marked, blocked cues say why.

    Signals:
        intent(str, dict): a command name and its args for the engine.
    """

    intent = Signal(str, dict)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.current: int | None = None
        layout = QVBoxLayout(self)
        self.list = QListWidget()
        layout.addWidget(self.list, 1)
        buttons = QHBoxLayout()
        self.go_button = QPushButton(tr("cue_go"))
        self.go_button.setObjectName("cue_go")
        self.go_button.setStyleSheet(GO_STYLE)
        self.go_button.clicked.connect(lambda: self.intent.emit("cue.go", {}))
        self.back_button = QPushButton(tr("cue_back"))
        self.back_button.clicked.connect(lambda: self.intent.emit("cue.back", {}))
        self.jump_button = QPushButton(tr("cue_jump"))
        self.jump_button.clicked.connect(self._jump)
        buttons.addWidget(self.back_button)
        buttons.addWidget(self.jump_button)
        buttons.addWidget(self.go_button, 2)
        layout.addLayout(buttons)

    def _jump(self) -> None:
        item = self.list.currentItem()
        if item is not None:
            self.intent.emit("cue.jump", {"number": int(item.data(256))})

    def refresh(self) -> None:
        """Ask the engine for the list again."""
        self.intent.emit("cue.list", {})

    def apply_listing(self, listing: dict[str, Any]) -> None:
        """Render a ``cue.list`` result."""
        current = listing.get("current")
        self.current = current if isinstance(current, int) else None
        selected = self.list.currentRow()
        self.list.clear()
        for cue in listing.get("cues", []):
            problems = "; ".join(cue.get("problems") or []) or tr("cue_ready")
            mark = "▶ " if cue.get("number") == self.current else "   "
            item = QListWidgetItem(f"{mark}{cue.get('number')}  {cue.get('name', '')}  "
                                   f"— {problems}")
            item.setData(256, cue.get("number"))
            self.list.addItem(item)
        if 0 <= selected < self.list.count():
            self.list.setCurrentRow(selected)
