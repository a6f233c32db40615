"""The cue sheet: hand-built listings as the protocol page writes them, then the real engine.

The unit tests feed listings written from ``docs/protocols/console-state.md`` ("Cue readiness"),
not produced by our engine, so the panel is checked against the contract. The end-to-end test
runs an arm stage with a cue file and changes the interlocks from another client: every cue's
readiness must follow in the console without a GO.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QFont
from PySide6.QtTest import QTest
from pytestqt.qtbot import QtBot

from gui import i18n
from gui.bridge import EngineBridge
from gui.controls import Controls
from gui.cue_panel import (
    COL_ACTIONS,
    COL_NUMBER,
    COL_PROGRESS,
    COL_READY,
    COL_STATE,
    CUE_SHEET_STRINGS,
    MARK_CURRENT,
    MARK_NEXT,
    MARK_RUNNING,
    CuePanel,
)
from stagectl.client import ClientIdentity, EngineClient
from stagectl.harness import StageHarness
from tests.gui.conftest import stop_bridge
from tests.stage_toml import cue_stage_config

NOT_ARMED = {"code": "interlock_not_armed", "params": {}, "message": "stage not armed"}

# The protocol page's example, extended to three cues: 1 fired and running, 2 blocked, 3 ready.
LISTING: dict[str, Any] = {
    "source": "configs/cues.toml", "current": 1, "next": 2,
    "running": {"cue": 1, "device": "arm-a", "progress": 0.42},
    "cues": [
        {"number": 1, "name": "Opening wide", "mark": "scene 12 wide",
         "actions": [{"device": "arm-a", "kind": "arm", "what": "move_joints"},
                     {"device": "wall-a", "kind": "led", "what": "preset", "value": 2}],
         "ready": True, "problems": []},
        {"number": 2, "name": "Push in", "mark": None,
         "actions": [{"device": "arm-a", "kind": "arm", "what": "move_pose"}],
         "ready": False, "problems": [NOT_ARMED]},
        {"number": 3, "name": "Warm", "mark": None,
         "actions": [{"device": "wall-a", "kind": "led", "what": "brightness_nits",
                      "value": 700.0},
                     {"device": None, "kind": "mark", "what": "mark", "value": "scene 12"}],
         "ready": True, "problems": []}],
    "marks": []}

# The older shape (what cue.list answered before structured readiness): string problems.
OLD_LISTING: dict[str, Any] = {
    "source": "cues.toml", "current": None,
    "cues": [{"number": 1, "name": "wide", "led": {"preset": 2}, "arm": "move_joints",
              "mark": "sc1 wide", "problems": ["interlock: stage not armed (stagectl arm arm)"]},
             {"number": 2, "name": "warm", "led": {"brightness_nits": 700.0}, "arm": None,
              "mark": None, "problems": []}],
    "marks": []}


class FakeControls(QObject):
    """The methods of gui.controls.Controls the panel uses; ``refused`` maps cmd -> reason."""

    changed = Signal()

    def __init__(self) -> None:
        super().__init__()
        self.live = True
        self.role = "operator"
        self.refused: dict[str, str] = {}

    def blocked(self, cmd: str, device: str | None = None) -> list[dict[str, Any]] | None:
        if cmd not in self.refused:
            return None
        return [{"code": "forbidden", "params": {}, "message": self.refused[cmd]}]

    def reason(self, cmd: str, device: str | None = None) -> str | None:
        return self.refused.get(cmd)

    def bind(self, widget: object, cmd: str, device: str | None = None) -> None:
        raise AssertionError("the cue panel decides its buttons itself")


def listing(**changes: Any) -> dict[str, Any]:
    out = copy.deepcopy(LISTING)
    out.update(changes)
    return out


def with_ready(base: dict[str, Any], number: int, ready: bool,
               problems: list[Any] | None = None) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for cue in out["cues"]:
        if cue["number"] == number:
            cue["ready"] = ready
            cue["problems"] = [] if ready else (problems or [NOT_ARMED])
    return out


@pytest.fixture
def panel(qtbot: QtBot) -> CuePanel:
    p = CuePanel()
    qtbot.addWidget(p)
    p.show()
    return p


@pytest.fixture
def intents(panel: CuePanel) -> list[tuple[str, dict[str, Any]]]:
    seen: list[tuple[str, dict[str, Any]]] = []
    panel.intent.connect(lambda cmd, args: seen.append((cmd, args)))
    return seen


def foreground(panel: CuePanel, number: int, column: int) -> str:
    row = panel.row_of(number)
    assert row is not None
    item = panel.table.item(row, column)
    assert item is not None
    return item.foreground().color().name()


def font(panel: CuePanel, number: int) -> QFont:
    row = panel.row_of(number)
    assert row is not None
    item = panel.table.item(row, COL_NUMBER)
    assert item is not None
    return item.font()


# ---- unit: hand-built listings ------------------------------------------------------------


def test_it_is_a_table_of_every_cue_with_what_it_does(panel: CuePanel) -> None:
    panel.apply_listing(LISTING)
    assert panel.table.rowCount() == 3 and panel.table.columnCount() == 6
    assert panel.cell(1, COL_ACTIONS) == "arm-a: joint move; wall-a: preset 2; mark: scene 12 wide"
    assert panel.cell(2, COL_ACTIONS) == "arm-a: move to tool pose"
    assert panel.cell(3, COL_ACTIONS) == "wall-a: brightness 700 nits; mark: scene 12"


def test_next_cue_is_standing_by(panel: CuePanel) -> None:
    panel.apply_listing(listing(running=None, next=3, current=2))
    assert panel.cell(3, COL_STATE) == MARK_NEXT
    assert panel.cell(2, COL_STATE) == MARK_CURRENT
    assert panel.cell(1, COL_STATE) == ""
    assert font(panel, 3).bold() and not font(panel, 2).bold()
    assert panel.next_label.text() == "Next: 3 — Warm"
    assert panel.go_button.text() == "GO  3 — Warm"
    assert panel.go_button.isEnabled()
    assert panel.go_button.toolTip() == "Fire cue 3 — Warm"


def test_end_of_the_list(panel: CuePanel) -> None:
    panel.apply_listing(listing(running=None, current=3, next=None))
    assert panel.next_label.text() == "Next: none (end of the cue list)"
    assert panel.go_button.text() == "GO" and not panel.go_button.isEnabled()
    assert panel.go_button.toolTip() == "No next cue: the list is finished"
    assert MARK_NEXT not in "".join(panel.cell(n, COL_STATE) for n in (1, 2, 3))


def test_readiness_column_has_a_symbol_and_a_colour(panel: CuePanel) -> None:
    panel.apply_listing(LISTING)
    ready, blocked = panel.cell(3, COL_READY), panel.cell(2, COL_READY)
    assert ready == "✔ ready"
    assert blocked == "✖ stage not armed"
    assert foreground(panel, 3, COL_READY) != foreground(panel, 2, COL_READY)


def test_go_is_disabled_while_the_next_cue_is_blocked(qtbot: QtBot, panel: CuePanel,
                                                      intents: list[Any]) -> None:
    panel.apply_listing(LISTING)  # next is 2, blocked: stage not armed
    assert panel.go_button.text() == "GO  2 — Push in"
    assert not panel.go_button.isEnabled()
    assert panel.go_button.toolTip() == "Cue 2 is not ready: stage not armed"
    QTest.mouseClick(panel.go_button, Qt.MouseButton.LeftButton)
    assert intents == []
    panel.apply_listing(with_ready(LISTING, 2, True))  # armed: readiness changed, no GO
    assert panel.go_button.isEnabled()
    QTest.mouseClick(panel.go_button, Qt.MouseButton.LeftButton)
    assert intents == [("cue.go", {})]


def test_back_and_jump(qtbot: QtBot, panel: CuePanel, intents: list[Any]) -> None:
    panel.apply_listing(listing(current=3, next=None, running=None))
    assert not panel.back_button.isEnabled()  # back would fire cue 2: blocked
    assert "Cue 2 is not ready" in panel.back_button.toolTip()
    panel.apply_listing(listing(current=2, next=3, running=None))
    assert panel.back_button.isEnabled()  # back fires cue 1: ready
    QTest.mouseClick(panel.back_button, Qt.MouseButton.LeftButton)
    assert not panel.jump_button.isEnabled()
    assert panel.jump_button.toolTip() == "Select a cue in the sheet first"
    panel.select(2)
    assert not panel.jump_button.isEnabled()  # cue 2 is blocked
    panel.select(3)
    assert panel.jump_button.isEnabled() and panel.jump_button.text() == "Jump to 3"
    QTest.mouseClick(panel.jump_button, Qt.MouseButton.LeftButton)
    assert intents == [("cue.back", {}), ("cue.jump", {"number": 3})]


def test_back_fires_the_cue_before_the_current_one(panel: CuePanel) -> None:
    base = listing(current=2, next=3, running=None)
    panel.apply_listing(with_ready(base, 1, False))
    assert not panel.back_button.isEnabled()
    assert panel.back_button.toolTip() == "Cue 1 is not ready: stage not armed"
    panel.apply_listing(base)
    assert panel.back_button.isEnabled()
    assert panel.back_button.toolTip() == "Fire the previous cue 1 — Opening wide again"


def test_a_double_click_fires_nothing(qtbot: QtBot, panel: CuePanel, intents: list[Any]) -> None:
    panel.apply_listing(with_ready(LISTING, 2, True))
    row = panel.row_of(2)
    assert row is not None
    item = panel.table.item(row, COL_NUMBER)
    assert item is not None
    rect = panel.table.visualItemRect(item)
    QTest.mouseDClick(panel.table.viewport(), Qt.MouseButton.LeftButton,
                      Qt.KeyboardModifier.NoModifier, rect.center())
    assert panel.selected_number() == 2
    assert intents == []


def test_controls_decide_for_the_role_and_interlocks(qtbot: QtBot) -> None:
    controls = FakeControls()
    controls.refused["cue.go"] = "viewer may not GO"
    panel = CuePanel(controls)
    qtbot.addWidget(panel)
    panel.apply_listing(with_ready(LISTING, 2, True))
    assert not panel.go_button.isEnabled()
    assert panel.go_button.toolTip() == "viewer may not GO"
    controls.refused.clear()
    controls.changed.emit()
    assert panel.go_button.isEnabled()
    controls.refused["cue.jump"] = "e-stop latched"
    controls.changed.emit()
    panel.select(3)
    assert not panel.jump_button.isEnabled() and panel.jump_button.toolTip() == "e-stop latched"


def test_progress_of_the_running_cue(panel: CuePanel) -> None:
    panel.apply_listing(LISTING)
    assert panel.cell(1, COL_STATE) == MARK_RUNNING
    bar = panel.progress_bar
    assert bar is not None and bar.value() == 42
    assert panel.table.cellWidget(panel.row_of(1) or 0, COL_PROGRESS) is bar
    panel.apply_reported("arm-b", {"progress": 0.9})  # another arm: not this cue
    assert bar.value() == 42
    panel.apply_reported("arm-a", {"progress": 0.8, "state": "MOVING"})
    assert bar.value() == 80
    panel.apply_reported("arm-a", {"state": "IDLE"})  # an arm reports its state first...
    assert panel.progress_bar is None
    assert panel.cell(1, COL_STATE) == MARK_CURRENT
    panel.apply_reported("arm-a", {"progress": 1.0})  # ...then the sample's progress
    assert panel.cell(1, COL_PROGRESS) == "done"
    panel.apply_reported("arm-a", {"state": "MOVING"})  # a jog afterwards is not the cue
    panel.apply_reported("arm-a", {"progress": 0.0})
    assert panel.cell(1, COL_PROGRESS) == "done" and panel.cell(1, COL_STATE) == MARK_CURRENT


def test_progress_unknown_is_a_busy_bar(panel: CuePanel) -> None:
    panel.apply_listing(listing(running={"cue": 1, "device": "arm-a", "progress": None}))
    assert panel.progress_bar is not None and panel.progress_bar.maximum() == 0
    panel.apply_reported("arm-a", {"progress": 0.3})
    assert panel.progress_bar.maximum() == 100 and panel.progress_bar.value() == 30


def test_a_stopped_cue_says_where_it_stopped(panel: CuePanel) -> None:
    panel.apply_listing(LISTING)
    panel.apply_reported("arm-a", {"progress": 0.5, "state": "ESTOP"})
    assert panel.cell(1, COL_PROGRESS) == "stopped at 50 %"
    panel.apply_listing(listing(running=None))  # the engine's next listing: still shown
    assert panel.cell(1, COL_PROGRESS) == "stopped at 50 %"
    panel.apply_listing(listing(running=None, current=2, next=3))
    assert panel.cell(1, COL_PROGRESS) == ""


def test_stale_until_the_next_listing(panel: CuePanel) -> None:
    panel.apply_listing(with_ready(LISTING, 2, True))
    assert panel.go_button.isEnabled()
    panel.set_live(False)
    for number in (1, 2, 3):
        assert panel.cell(number, COL_READY) == "? unknown — engine not connected"
        assert foreground(panel, number, COL_READY) == "#757575"
    assert panel.progress_bar is None
    assert panel.cell(1, COL_PROGRESS) == "? unknown"
    assert foreground(panel, 1, COL_PROGRESS) == "#757575"
    for button in (panel.go_button, panel.back_button, panel.jump_button):
        assert not button.isEnabled()
    assert panel.go_button.toolTip() == "The engine is not connected"
    assert panel.next_label.text() == "Next: 2 — Push in (stale: engine not connected)"
    panel.set_live(True)  # live again: nothing is shown as known until a listing comes
    assert panel.cell(2, COL_READY) == "? unknown — waiting for the cue list from the engine"
    assert panel.next_label.text() == "Next: 2 — Push in (stale: waiting for the engine)"
    assert not panel.go_button.isEnabled()
    assert panel.go_button.toolTip() == "Waiting for the cue list from the engine"
    panel.apply_listing(with_ready(LISTING, 2, True))
    assert panel.cell(2, COL_READY) == "✔ ready" and panel.go_button.isEnabled()


def test_nothing_before_the_first_listing(panel: CuePanel) -> None:
    assert panel.table.rowCount() == 0
    assert not panel.go_button.isEnabled()
    assert panel.go_button.toolTip() == "Waiting for the cue list from the engine"
    assert panel.next_label.text() == "Waiting for the cue list from the engine"
    panel.set_live(False)
    assert panel.next_label.text() == "The engine is not connected"


def test_the_next_cue_is_kept_in_view(qtbot: QtBot) -> None:
    panel = CuePanel()
    qtbot.addWidget(panel)
    panel.resize(600, 220)
    panel.show()
    many = copy.deepcopy(LISTING)
    template = many["cues"][2]
    many["cues"] = [{**template, "number": n, "name": f"cue {n}"} for n in range(1, 41)]
    panel.apply_listing({**many, "current": 34, "next": 35, "running": None})
    row = panel.row_of(35)
    assert row is not None
    item = panel.table.item(row, COL_NUMBER)
    assert item is not None
    assert panel.table.viewport().rect().contains(panel.table.visualItemRect(item))


def test_selection_is_kept_across_renders(panel: CuePanel) -> None:
    panel.apply_listing(LISTING)
    panel.select(3)
    panel.apply_listing(with_ready(LISTING, 2, True))
    assert panel.selected_number() == 3
    reordered = copy.deepcopy(LISTING)
    reordered["cues"] = reordered["cues"][2:] + reordered["cues"][:2]
    panel.apply_listing(reordered)
    assert panel.selected_number() == 3
    shorter = copy.deepcopy(LISTING)
    shorter["cues"] = shorter["cues"][:2]
    panel.apply_listing(shorter)
    assert panel.selected_number() is None


def test_the_older_listing_shape(panel: CuePanel) -> None:
    panel.apply_listing(OLD_LISTING)
    assert panel.cell(1, COL_STATE) == MARK_NEXT  # nothing fired yet: cue 1 is next
    assert panel.cell(1, COL_ACTIONS) == "joint move; preset 2; mark: sc1 wide"
    assert panel.cell(1, COL_READY) == "✖ interlock: stage not armed (stagectl arm arm)"
    assert panel.cell(2, COL_READY) == "✔ ready"
    assert not panel.go_button.isEnabled()
    fired = copy.deepcopy(OLD_LISTING)
    fired["current"] = 1
    fired["cues"][0]["problems"] = []
    panel.apply_listing(fired)
    assert panel.next_label.text() == "Next: 2 — warm"
    # no "running" in this shape: an arm starting to move after the GO is the cue running
    panel.apply_reported("arm-a", {"state": "MOVING", "progress": 0.25})
    assert panel.cell(1, COL_STATE) == MARK_RUNNING
    assert panel.progress_bar is not None and panel.progress_bar.value() == 25
    panel.apply_listing(fired)  # a refresh keeps it
    assert panel.progress_bar is not None and panel.progress_bar.value() == 25


def test_chinese(qtbot: QtBot) -> None:
    i18n.set_language("zh")
    panel = CuePanel()
    qtbot.addWidget(panel)
    panel.apply_listing(listing(running=None, current=2, next=3))
    assert panel.go_button.text() == "执行  3 — Warm"
    assert panel.next_label.text() == "待执行：3 — Warm"
    assert panel.cell(3, COL_READY) == "✔ 就绪"
    assert panel.cell(1, COL_ACTIONS) == "arm-a：关节运动；wall-a：预设 2；标记：scene 12 wide"
    assert panel.cell(3, COL_ACTIONS) == "wall-a：亮度 700 尼特；标记：scene 12"
    panel.set_live(False)
    assert panel.cell(3, COL_READY) == "？ 未知（引擎未连接）"
    assert panel.go_button.toolTip() == "引擎未连接"


def test_every_chinese_string_is_chinese() -> None:
    for key, texts in CUE_SHEET_STRINGS.items():
        zh = re.sub(r"\{[a-z_]+\}", "", texts["zh"])
        assert not re.search(r"[A-Za-z]", re.sub(r"\bK\b", "", zh)), (key, texts["zh"])
        assert not re.search(r"[\u4e00-\u9fff][:;,()]", zh), (key, texts["zh"])


# ---- end to end: the real engine ------------------------------------------------------------

@pytest.fixture
def cue_stage(tmp_path: Path) -> Iterator[StageHarness]:
    with StageHarness(cue_stage_config(tmp_path, "gui-cues")) as h:
        yield h


class Desk:
    """A console's cue sheet on a real bridge: what gui/ wires, and every intent it sent."""

    def __init__(self, qtbot: QtBot, stage: StageHarness, role: str = "operator") -> None:
        identity = ClientIdentity(f"desk-{role}", role)
        self.bridge = EngineBridge(stage.config, identity=identity)
        self.controls = Controls(identity)
        self.panel = CuePanel(self.controls)
        qtbot.addWidget(self.panel)
        self.sent: list[str] = []
        self.seen_progress: list[int] = []
        self.panel.intent.connect(self._send)
        self.bridge.cues_changed.connect(self.panel.apply_listing)
        self.bridge.controls_changed.connect(self.controls.apply_snapshot)
        self.bridge.connection_changed.connect(self.controls.set_live)
        self.bridge.connection_changed.connect(self.panel.set_live)
        self.bridge.device_delta.connect(self._reported)
        self.bridge.start()
        qtbot.waitUntil(lambda: self.bridge.connected, timeout=3000)
        qtbot.waitUntil(lambda: self.panel.fresh and self.panel.table.rowCount() == 3,
                        timeout=3000)  # the bridge asks for every snapshot on connecting

    def _send(self, cmd: str, args: dict[str, Any]) -> None:
        self.sent.append(cmd)
        self.bridge.command(cmd, args)

    def _reported(self, device: str, delta: dict[str, Any]) -> None:
        self.panel.apply_reported(device, delta)
        if self.panel.progress_bar is not None:
            self.seen_progress.append(self.panel.progress_bar.value())

    def shows(self, number: int, words: str) -> bool:
        return words.lower() in self.panel.cell(number, COL_READY).lower()

    def close(self) -> None:
        stop_bridge(self.bridge)


@pytest.fixture
def desk(qtbot: QtBot, cue_stage: StageHarness) -> Iterator[Desk]:
    d = Desk(qtbot, cue_stage)
    try:
        yield d
    finally:
        d.close()


def cli(stage: StageHarness) -> EngineClient:
    """Another desk (a CLI) changing the stage behind the console's back."""
    return EngineClient(stage.config, ClientIdentity("cli", "operator"), timeout_s=3.0)


def test_readiness_follows_the_stage_without_a_go(qtbot: QtBot, cue_stage: StageHarness,
                                                  desk: Desk) -> None:
    panel = desk.panel
    assert desk.shows(1, "not armed") and desk.shows(2, "✔ ready") and desk.shows(5, "not armed")
    assert not panel.go_button.isEnabled()
    with cli(cue_stage) as op:
        op.call("safety.arm")
        qtbot.waitUntil(lambda: desk.shows(1, "✔ ready"), timeout=3000)
        qtbot.waitUntil(lambda: panel.go_button.isEnabled(), timeout=3000)
        assert panel.go_button.text() == "GO  1 — wide"
        qtbot.waitUntil(lambda: desk.shows(5, "j1"), timeout=3000)  # armed: now the envelope

        op.call("safety.talent", {"on": True})
        qtbot.waitUntil(lambda: desk.shows(1, "talent"), timeout=3000)
        assert not panel.go_button.isEnabled() and desk.shows(2, "✔ ready")
        op.call("safety.talent", {"on": False})
        qtbot.waitUntil(lambda: desk.shows(1, "✔ ready"), timeout=3000)

        op.call("safety.disarm")
        qtbot.waitUntil(lambda: desk.shows(1, "not armed"), timeout=3000)
        assert not panel.go_button.isEnabled()

        op.call("safety.arm")
        qtbot.waitUntil(lambda: desk.shows(1, "✔ ready"), timeout=3000)
        op.call("estop", {"reason": "drill"})
        qtbot.waitUntil(lambda: desk.shows(1, "e-stop"), timeout=3000)
        assert not panel.go_button.isEnabled()
        op.call("safety.reset")
        qtbot.waitUntil(lambda: not desk.shows(1, "e-stop"), timeout=3000)
    assert desk.sent == []  # no GO, and the panel never had to ask for the list
    assert panel.current is None


def test_go_shows_the_running_cue_and_its_end(qtbot: QtBot, cue_stage: StageHarness,
                                              desk: Desk) -> None:
    panel = desk.panel
    with cli(cue_stage) as op:
        op.call("safety.arm")
    qtbot.waitUntil(lambda: panel.go_button.isEnabled(), timeout=3000)
    QTest.mouseClick(panel.go_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.current == 1, timeout=3000)
    qtbot.waitUntil(lambda: panel.cell(1, COL_PROGRESS) == "done", timeout=8000)
    assert any(0 < v < 100 for v in desk.seen_progress), desk.seen_progress
    assert panel.cell(1, COL_STATE) == MARK_CURRENT
    assert panel.cell(2, COL_STATE) == MARK_NEXT
    assert panel.go_button.text() == "GO  2 — warm"
    assert desk.sent == ["cue.go"]


@pytest.mark.parametrize("role", ["viewer", "producer"])
def test_a_desk_that_may_not_go_says_so(qtbot: QtBot, cue_stage: StageHarness,
                                        role: str) -> None:
    desk = Desk(qtbot, cue_stage, role)
    try:
        with cli(cue_stage) as op:
            op.call("safety.arm")
        qtbot.waitUntil(lambda: desk.shows(1, "✔ ready"), timeout=3000)  # they see it...
        panel = desk.panel
        for button in (panel.go_button, panel.back_button, panel.jump_button):
            assert not button.isEnabled()  # ...but may not fire it
        assert role in panel.go_button.toolTip()
    finally:
        desk.close()


def test_engine_gone_shows_unknown(qtbot: QtBot, cue_stage: StageHarness, desk: Desk) -> None:
    with cli(cue_stage) as op:
        op.call("safety.arm")
    qtbot.waitUntil(lambda: desk.panel.go_button.isEnabled(), timeout=3000)
    engine = cue_stage.engine
    assert engine is not None
    cue_stage.loop.run(engine.stop())
    cue_stage.engine = None  # stopped here; the fixture stops the rest
    qtbot.waitUntil(lambda: desk.shows(1, "unknown — engine not connected"), timeout=3000)
    assert all(desk.shows(n, "unknown") for n in (1, 2, 5))
    assert not desk.panel.go_button.isEnabled()
    assert desk.panel.go_button.toolTip() == "The engine is not connected"
