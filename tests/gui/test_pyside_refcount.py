"""Guard against the PySide6 6.12.0 refcount bug that crashes the console's plots.

PySide6 6.12.0's ``QGraphicsWidget.setMaximumHeight`` decrements ``None``'s reference count;
pyqtgraph calls it on every axis update, so on Python 3.11 (where None is not immortal) the
console aborts with "none_dealloc" after a few seconds of live plotting. pyproject.toml pins
PySide6 below 6.12; this test fails if a broken version comes back.
"""

from __future__ import annotations

import sys

from PySide6.QtWidgets import QGraphicsWidget


def test_setters_keep_none_refcount(qapp) -> None:
    widget = QGraphicsWidget()
    before = sys.getrefcount(None)
    for _ in range(2000):
        widget.setMaximumHeight(10.0)
        widget.setMinimumHeight(10.0)
        widget.setMaximumWidth(10.0)
        widget.setMinimumWidth(10.0)
    assert sys.getrefcount(None) - before > -100
