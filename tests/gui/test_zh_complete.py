"""The Chinese console has no English left: every widget's text, and every message the engine sends.

A full window (an arm, an LED wall, a tracking source and a cue list, against a real engine)
is built in Chinese, driven through arming, talent, an e-stop and its reset, an LED change, a
simulator fault and a refused command, then every text a person can read is collected: labels,
buttons, group titles, tab texts, table headers and cells, combo items, spin-box suffixes,
placeholders, tooltips, plot titles and legends, the event log and the window title. Latin
words that are not names from the stage file, units or protocol names fail the test, and so
does an ASCII colon, semicolon, comma or bracket after Chinese text.

The failure lists each offending string under the module whose widget shows it, so it says
whose table to fix (``docs/i18n-glossary.md`` has the terms).
"""

from __future__ import annotations

import importlib
import pkgutil
import re
import socket
import string
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractSpinBox,
    QComboBox,
    QDoubleSpinBox,
    QGraphicsTextItem,
    QGraphicsView,
    QGroupBox,
    QLabel,
    QLineEdit,
    QListWidget,
    QPlainTextEdit,
    QSpinBox,
    QTableWidget,
    QTabWidget,
    QTextEdit,
    QTreeWidget,
    QWidget,
)

import gui
from gui import i18n
from gui.app import MainWindow
from gui.messages import render_error, render_message
from stagectl import messages as m
from stagectl.client import ClientIdentity, EngineClient
from stagectl.config import parse_config
from stagectl.engine.messages import ERRORS
from stagectl.harness import StageHarness, free_port, free_port_config
from tests.gui.conftest import OPERATOR, make_bridge, stop_bridge

# Cue names and marks are typed by people; Chinese ones keep them out of the check.
CUES = """
[[cues]]
number = 1
name = "开场全景"
led = { preset = 3 }
arm = { joints_deg = [0.0, -10.0, 20.0, 0.0, 0.0, 0.0] }
mark = "第一场 全景"

[[cues]]
number = 2
name = "暖色推近"
led = { brightness_nits = 700.0, colour_temperature_k = 3200 }

[[cues]]
number = 3
name = "回到原位"
arm = { joints_deg = [0.0, 0.0, 0.0, 0.0, 0.0, 0.0] }
"""

CJK = "\u3400-\u4dbf\u4e00-\u9fff"
# Latin that may stay (docs/i18n-glossary.md, "What stays English"): units, protocol and signal
# names, the product name, axis letters, joint names J1..J6, the F12 key.
ALLOWED = ("°C", "K", "Hz", "ms", "mm", "fps", "UDP", "OSC", "JSON", "ZeroMQ", "MQTT", "FreeD",
           "OpenTrackIO", "LED", "SDI", "ST", "stagectl", "X", "Y", "Z", "x", "y", "z",
           "S", "F12", "J1", "J2", "J3", "J4", "J5", "J6", "CPU",
           # the vendor LED APIs (docs/i18n-glossary.md): protocol names and the processors'
           # own UI labels, as a crew reads them on the processor
           "HTTP", "IP", "VMP", "Live Control", "Tessera", "HELIOS", "NovaStar", "COEX")
_URL = re.compile(r"\b[a-z]+://\S+")
_ASCII_AFTER_CJK = re.compile(f"[{CJK}\u3000-\u303f\uff00-\uffef] *[:;,(]")


def _allowed(names: set[str]) -> re.Pattern[str]:
    tokens = sorted({*ALLOWED, *names}, key=len, reverse=True)
    return re.compile("(?<![A-Za-z0-9_-])(?:" + "|".join(map(re.escape, tokens))
                      + ")(?![A-Za-z0-9_])")


def english_left(text: str, allowed: re.Pattern[str]) -> list[str]:
    """Latin words in ``text`` that are not allowed names, units or protocol names."""
    text = allowed.sub(" ", _URL.sub(" ", text))
    problems = re.findall("[A-Za-z]{2,}|(?<![A-Za-z0-9])[A-Za-z](?![A-Za-z0-9])", text)
    if _ASCII_AFTER_CJK.search(text):
        problems.append("ASCII punctuation after Chinese")
    return problems


@pytest.fixture
def full_stage(tmp_path: Path) -> Iterator[StageHarness]:
    cues = tmp_path / "cues.toml"
    cues.write_text(CUES, encoding="utf-8")
    data = free_port_config(stage="zh-stage", arms=1, cues_file=str(cues)).model_dump()
    port = free_port(socket.SOCK_DGRAM)
    data["devices"].append({"name": "cam-a", "kind": "tracking", "driver": "freed",
                            "port": port, "host": "127.0.0.1", "rate_hz": 50})
    data["simulators"].append({"name": "cam-a-sim", "kind": "tracking", "protocol": "freed",
                               "target": f"127.0.0.1:{port}", "rate_hz": 50})
    harness = StageHarness(parse_config(data)).start()
    try:
        yield harness
    finally:
        harness.stop()


def _owner(widget: Any) -> str:
    """The gui module whose widget (or nearest gui ancestor) this is."""
    node = widget
    while node is not None:
        module = type(node).__module__
        if module.startswith("gui."):
            return module.replace(".", "/") + ".py"
        node = node.parent() if hasattr(node, "parent") else None
    return "?"


def _texts(window: MainWindow) -> Iterator[tuple[Any, str, str]]:
    """(widget, where, text) for every text a person can read in the window."""
    yield window, "window title", window.windowTitle()
    for w in window.findChildren(QWidget):
        if w.toolTip():
            yield w, "tooltip", w.toolTip()
        if isinstance(w, QLabel):
            yield w, "label", re.sub("<[^>]+>", " ", w.text())
        elif isinstance(w, QAbstractButton):
            yield w, "button", w.text()
        elif isinstance(w, QGroupBox):
            yield w, "group title", w.title()
        elif isinstance(w, QLineEdit):
            yield w, "text", w.text()
            yield w, "placeholder", w.placeholderText()
        elif isinstance(w, (QPlainTextEdit, QTextEdit)):
            for line in w.toPlainText().splitlines():
                yield w, "text line", line
        if isinstance(w, QTabWidget):
            for i in range(w.count()):
                yield w, "tab", w.tabText(i)
                yield w, "tab tooltip", w.tabToolTip(i)
        if isinstance(w, QTableWidget):
            for i in range(w.columnCount()):
                item = w.horizontalHeaderItem(i)
                if item is not None:
                    yield w, "column header", item.text()
            for r in range(w.rowCount()):
                item = w.verticalHeaderItem(r)
                if item is not None:
                    yield w, "row header", item.text()
                for c in range(w.columnCount()):
                    cell = w.item(r, c)
                    if cell is not None:
                        yield w, "cell", cell.text()
                        yield w, "cell tooltip", cell.toolTip()
        if isinstance(w, QTreeWidget):
            header = w.headerItem()
            for i in range(w.columnCount()):
                yield w, "column header", header.text(i)
        if isinstance(w, QListWidget):
            for i in range(w.count()):
                yield w, "list item", w.item(i).text()
        if isinstance(w, QComboBox):
            for i in range(w.count()):
                yield w, "combo item", w.itemText(i)
        if isinstance(w, (QSpinBox, QDoubleSpinBox)):
            yield w, "spin suffix", w.suffix() + " " + w.prefix()
        if isinstance(w, QAbstractSpinBox):
            yield w, "spin special", w.specialValueText()
        if isinstance(w, QGraphicsView) and w.scene() is not None:  # pyqtgraph plots
            for graphic in w.scene().items():
                if isinstance(graphic, QGraphicsTextItem):
                    yield w, "plot text", graphic.toPlainText()


def _latch(op: EngineClient) -> None:
    """Arm, then e-stop, and wait until the arm has latched it."""
    op.call("safety.arm", {})
    op.call("estop", {"reason": "演练"})
    deadline = time.monotonic() + 5.0
    while op.call("arm.status", {})["state"].get("state") != "ESTOP":
        assert time.monotonic() < deadline, "the arm never latched its e-stop"
        time.sleep(0.02)


def _session(op: EngineClient, eng: EngineClient) -> None:
    """After the e-stop: the things an operator does and sees in a session."""
    op.call("safety.reset", {})
    op.call("safety.talent", {"on": True})
    op.call("safety.talent", {"on": False})
    op.call("led.set", {"key": "brightness_nits", "value": 650.0})
    op.call("led.set", {"key": "blackout", "value": False})
    eng.call("sim.fault", {"fault": "panels_offline", "value": 3})


def _walk(qtbot, window: MainWindow, allowed: re.Pattern[str],  # type: ignore[no-untyped-def]
          offenders: dict[str, set[str]]) -> int:
    for index in range(window.tabs.count()):  # every tab laid out once
        window.tabs.setCurrentIndex(index)
        qtbot.wait(50)
    seen = 0
    for widget, where, text in _texts(window):
        if not text.strip():
            continue
        seen += 1
        left = english_left(text, allowed)
        if left:
            offenders[_owner(widget)].add(f"{where}: {text!r}  [{', '.join(left)}]")
    return seen


@pytest.mark.timeout(60)
def test_every_widget_text_is_chinese(qtbot, full_stage: StageHarness) -> None:  # type: ignore[no-untyped-def]
    i18n.set_language("zh")
    bridge = make_bridge(full_stage)
    window = MainWindow(full_stage.config, bridge)
    qtbot.addWidget(window)
    window.show()
    bridge.start()
    names = {d.name for d in full_stage.config.devices} | {
        full_stage.config.stage.name, OPERATOR.user, "ana", "eng"}
    allowed = _allowed(names)
    offenders: dict[str, set[str]] = defaultdict(set)
    operator, engineer = ClientIdentity("ana", "operator"), ClientIdentity("eng", "engineer")
    try:
        with EngineClient(full_stage.config, operator, timeout_s=3.0) as op, \
                EngineClient(full_stage.config, engineer, timeout_s=3.0) as eng:
            qtbot.waitUntil(lambda: bridge.connected, timeout=5000)
            led = window.led_panels["led-main"]
            qtbot.waitUntil(lambda: "brightness_nits" in led.reported, timeout=5000)
            _latch(op)  # first walk: e-stop latched, the arm in ESTOP
            bridge.command("arm.jog", {"axis": 0, "velocity": 1.0})  # refused
            log = window.event_log.view
            qtbot.waitUntil(lambda: "点动机械臂" in log.toPlainText(), timeout=5000)
            state = window.arm_panels["arm-a"].state_label  # the arm tab shows the latch
            qtbot.waitUntil(lambda: "急停" in state.text() or "ESTOP" in state.text(),
                            timeout=5000)
            seen = _walk(qtbot, window, allowed, offenders)
            _session(op, eng)  # second walk: reset, talent, LED changes, a degraded wall
            health = window.health_panel
            qtbot.waitUntil(lambda: health.health_of("led-main") == "degraded", timeout=5000)
            seen += _walk(qtbot, window, allowed, offenders)
        assert seen > 200, f"the walk found only {seen} texts"
        assert not offenders, "English left in the Chinese console:\n" + "\n".join(
            f"{owner}:\n    " + "\n    ".join(sorted(lines))
            for owner, lines in sorted(offenders.items()))
    finally:
        stop_bridge(bridge)
        window.close()


def test_the_check_catches_english() -> None:
    allowed = _allowed({"arm-a", "led-main"})
    assert english_left("arm-a 处于急停，请先复位", allowed) == []
    assert english_left("led-main 亮度 800 尼特，6500 K，udp://127.0.0.1:9000", allowed) == []
    assert english_left("arm.jog 失败：arm.jog refused", allowed) == [
        "arm", "jog", "arm", "jog", "refused"]
    assert english_left("状态: IDLE", allowed) == ["IDLE", "ASCII punctuation after Chinese"]
    assert english_left("operator · operator", allowed) == ["operator", "operator"]


def _sample(value_of: dict[str, Any], fields: set[str]) -> dict[str, Any]:
    return {name: value_of.get(name, 7) for name in fields}


# Realistic param values where a bare number would hide a missing label.
SAMPLE: dict[str, Any] = {"role": "operator", "state": "ESTOP", "was": "FAULT",
                          "health": "degraded", "kind": "arm", "wanted": "led",
                          "key": "test_pattern", "value": 7, "what": "run_path",
                          "cmd": "arm.jog", "interlock": "talent_on_stage",
                          "device": "arm-a", "user": "ana", "axis": "j1", "unit": "°",
                          "limit_kind": "soft_max"}


def test_every_catalogued_message_renders_in_chinese() -> None:
    i18n.set_language("zh")
    allowed = _allowed({"arm-a", "ana"})
    m.fallbacks.clear()
    bad = []
    for code, (en, _) in sorted(m.catalogue().items()):
        fields = {f for _, f, _, _ in string.Formatter().parse(en) if f}
        text = render_message({"code": code, "params": _sample(SAMPLE, fields),
                               "message": "ENGLISH"})
        if english_left(text, allowed) or "ENGLISH" in text:
            bad.append(f"{code}: {text!r}")
    for code in sorted(ERRORS):
        text = render_error("arm.jog", {"code": code, "message": "ENGLISH", "role": "viewer"})
        if english_left(text, allowed) or "ENGLISH" in text:
            bad.append(f"error {code}: {text!r}")
    assert not bad, "\n".join(bad)
    assert not m.fallbacks, dict(m.fallbacks)


# A Qt file-dialog filter keeps its ASCII brackets and patterns (Qt parses them).
_FILE_FILTER = re.compile(r"\(\*\.[^)]*\)")


def test_every_string_table_entry_is_chinese() -> None:
    """Every panel's strings, also those the walk does not reach (dialogs, rarer states)."""
    for module in pkgutil.iter_modules(gui.__path__):
        importlib.import_module(f"gui.{module.name}")  # each registers its add_strings()
    allowed = _allowed(set())
    bad = []
    for key, text in sorted(i18n.STRINGS.items()):
        zh = _FILE_FILTER.sub(" ", re.sub(r"\{[^{}]*\}", " ", text["zh"]))
        left = english_left(zh, allowed)
        if left:
            bad.append(f"{key}: {text['zh']!r}  [{', '.join(left)}]")
    assert not bad, "English left in zh strings:\n" + "\n".join(bad)
