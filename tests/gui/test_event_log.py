"""The event log's filter bar (severity, source), its bound, its languages and its clock."""

# mypy: disallow-untyped-calls=False
# (pytest-qt's key helpers are untyped)

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from gui import event_log as event_log_module
from gui import i18n
from gui.event_log import EventLog

T0 = 1_764_590_400.0  # 2025-12-01 12:00:00 UTC = 20:00:00 in Shanghai


def filled(qtbot: QtBot) -> EventLog:
    log = EventLog(timezone="Asia/Shanghai")
    qtbot.addWidget(log)
    log.add("led-main", "brightness 800 nits", "info", T0)
    log.add("arm-a", "arm FAULT: joint 3 over current", "error", T0 + 1)
    log.add("led-main", "12 of 240 panels offline", "warning", T0 + 2)
    log.add("console", "engine not heard from; waiting for it", "warning", T0 + 3)
    log.add("arm-a", "arm IDLE", "info", T0 + 4)
    return log


def messages(log: EventLog) -> list[str]:
    return [line.split(": ", 1)[1] for line in log.lines()]


def test_lines_are_stage_local_with_level_and_source(qtbot: QtBot) -> None:
    log = filled(qtbot)
    assert log.objectName() == "event_log"
    assert log.lines()[0] == "20:00:00 [info] led-main: brightness 800 nits"
    assert log.lines()[1] == "20:00:01 [error] arm-a: arm FAULT: joint 3 over current"
    assert log.count_label.text() == "5 of 5 shown"


def test_severity_filter_rerenders_and_applies_to_new_entries(qtbot: QtBot) -> None:
    log = filled(qtbot)
    log.set_severity("warning")
    assert messages(log) == ["arm FAULT: joint 3 over current", "12 of 240 panels offline",
                             "engine not heard from; waiting for it"]
    log.set_severity("error")
    assert messages(log) == ["arm FAULT: joint 3 over current"]
    log.add("led-main", "processor at 71 °C", "warning", T0 + 5)  # filtered out as it comes
    log.add("engine", "command refused", "error", T0 + 6)  # shown as it comes
    assert messages(log) == ["arm FAULT: joint 3 over current", "command refused"]
    assert log.count_label.text() == "2 of 7 shown"
    log.set_severity("all")  # nothing was lost while hidden
    assert len(log.lines()) == 7
    with pytest.raises(ValueError, match="severity must be one of"):
        log.set_severity("debug")


def test_source_filter_lists_every_source_seen(qtbot: QtBot) -> None:
    log = filled(qtbot)
    assert log.sources() == ["led-main", "arm-a", "console"]
    combo = log.source_combo
    assert [combo.itemText(i) for i in range(combo.count())] == [
        "all sources", "led-main", "arm-a", "console"]
    log.set_source("arm-a")
    assert messages(log) == ["arm FAULT: joint 3 over current", "arm IDLE"]
    log.add("led-main", "blackout on", "info", T0 + 5)
    log.add("arm-a", "arm MOVING", "info", T0 + 6)
    assert messages(log) == ["arm FAULT: joint 3 over current", "arm IDLE", "arm MOVING"]
    log.set_severity("error")  # both filters at once
    assert messages(log) == ["arm FAULT: joint 3 over current"]
    log.set_source(None)
    log.set_severity("all")
    assert len(log.lines()) == 7
    with pytest.raises(ValueError, match="no entries from source"):
        log.set_source("nobody")


def test_operator_uses_the_combo_boxes(qtbot: QtBot) -> None:
    log = filled(qtbot)
    log.show()
    log.severity_combo.setFocus()
    qtbot.keyClick(log.severity_combo, Qt.Key.Key_Down)  # all -> warnings and errors
    assert log.severity_combo.currentData() == "warning"
    assert len(log.lines()) == 3
    log.source_combo.setFocus()
    qtbot.keyClick(log.source_combo, Qt.Key.Key_Down)  # all -> led-main
    assert messages(log) == ["12 of 240 panels offline"]


def test_bound_holds_and_the_view_matches_the_kept_entries(
        qtbot: QtBot, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(event_log_module, "MAX_LINES", 10)
    log = EventLog(timezone="UTC")
    qtbot.addWidget(log)
    for i in range(25):
        log.add("arm-a" if i % 2 else "led-main", f"event {i}",
                "error" if i % 5 == 0 else "info", T0 + i)
    assert len(log.entries()) == 10
    assert [e.message for e in log.entries()] == [f"event {i}" for i in range(15, 25)]
    assert messages(log) == [f"event {i}" for i in range(15, 25)]
    log.set_severity("error")
    assert messages(log) == ["event 15", "event 20"]
    for i in range(25, 30):  # 15..19 leave the list: 15's line leaves the view
        log.add("led-main", f"event {i}", "info", T0 + i)
    assert messages(log) == ["event 20"]
    log.add("led-main", "event 30", "info", T0 + 30)  # the last shown line leaves
    assert log.lines() == []
    log.add("led-main", "event 31", "error", T0 + 31)
    assert messages(log) == ["event 31"]
    assert log.count_label.text() == "1 of 10 shown"


def test_chinese_labels(qtbot: QtBot) -> None:
    i18n.set_language("zh")
    log = filled(qtbot)
    combo = log.severity_combo
    assert [combo.itemText(i) for i in range(combo.count())] == [
        "全部级别", "警告和错误", "仅错误"]
    assert log.source_combo.itemText(0) == "全部来源"
    assert log.count_label.text() == "显示 5 / 5 条"
    assert log.lines()[1] == "20:00:01 【错误】arm-a：arm FAULT: joint 3 over current"
    log.add("控制台", "未收到引擎消息，正在等待", "warning", T0 + 5)
    assert log.lines()[-1] == "20:00:05 【警告】控制台：未收到引擎消息，正在等待"
    labels = {w.text() for w in log.findChildren(type(log.count_label))}
    assert {"级别：", "来源："} <= labels
