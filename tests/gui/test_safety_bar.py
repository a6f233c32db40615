"""The safety bar: state words a colour-blind operator can read, no stale state, controls gated
by the engine's ``controls`` snapshot, and a Reset that asks first.

:class:`SnapshotControls` applies the contract of ``docs/protocols/console-state.md`` to a
snapshot (from the real engine, or written out here) the way ``gui.controls.Controls`` does,
so the panels can be tested on their own.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from typing import Any

import pytest
from PySide6.QtCore import QObject, Qt, Signal
from pytestqt.qtbot import QtBot

from gui import i18n
from gui.arm_i18n import tr_role
from gui.safety_bar import SafetyBar
from stagectl.client import ClientIdentity, EngineClient
from stagectl.harness import StageHarness
from tests.gui.conftest import wait_for

ALL = ["engineer", "operator", "producer", "viewer"]
CONTROL = ["engineer", "operator"]
MOTION_NEEDS = ["estop_clear", "armed", "talent_clear", "device_ready"]
NOT_ARMED = {"code": "interlock_not_armed", "params": {"interlock": "not_armed"},
             "message": "interlock: stage not armed (stagectl arm arm)"}
LATCHED = {"code": "interlock_estop", "params": {"interlock": "estop", "reason": "test"},
           "message": "interlock: e-stop latched (test); reset first"}
NOTHING = {"code": "nothing_to_reset", "params": {},
           "message": "nothing to reset: no e-stop latched and no arm in ESTOP or FAULT"}
IN_ESTOP = {"code": "device_in_state_fault", "params": {"device": "arm-a", "state": "ESTOP"},
            "message": "arm-a is in ESTOP; reset first"}
CLEAR_STATUS = {"armed": False, "talent_on_stage": False, "estop_latched": False,
                "estop_reason": "", "estop_by": ""}
FORBIDDEN = {"en": "{role} may not use this control", "zh": "{role}无权使用此控件"}


def snapshot(**interlocks: Any) -> dict[str, Any]:
    """A ``controls`` snapshot as the engine publishes it (one arm, ``arm-a``)."""
    commands = {"estop": {"roles": ALL, "needs": []},
                "safety.arm": {"roles": CONTROL, "needs": ["estop_clear"]},
                "safety.disarm": {"roles": CONTROL, "needs": []},
                "safety.talent": {"roles": ALL, "needs": []},
                "safety.talent.off": {"roles": CONTROL, "needs": []},
                "safety.reset": {"roles": CONTROL, "needs": ["resettable"]},
                "arm.stop": {"roles": ALL, "needs": []},
                "arm.reset": {"roles": CONTROL, "needs": ["resettable"]}}
    for cmd in ("arm.jog", "arm.home", "arm.run_path"):
        commands[cmd] = {"roles": CONTROL, "needs": MOTION_NEEDS}
    devices = interlocks.pop("devices", {"arm-a": {"device_ready": None,
                                                   "device_resettable": NOTHING}})
    locks = {"estop_clear": None, "armed": None, "talent_clear": None, "resettable": NOTHING}
    locks.update(interlocks)
    return {"commands": commands, "interlocks": locks, "devices": devices}


class Asked:
    """A ``confirm(title, text)`` stand-in that records the question and answers ``answer``."""

    def __init__(self, answer: bool) -> None:
        self.answer = answer
        self.questions: list[tuple[str, str]] = []

    def __call__(self, title: str, text: str) -> bool:
        self.questions.append((title, text))
        return self.answer


class SnapshotControls(QObject):
    """The ``Controls`` API over a snapshot: role in ``roles`` and every ``needs`` clear."""

    changed = Signal()

    def __init__(self, role: str, snap: dict[str, Any], user: str = "test") -> None:
        super().__init__()
        self.role, self.user, self.snapshot, self.live = role, user, snap, True

    def update(self, snap: dict[str, Any]) -> None:
        self.snapshot = snap
        self.changed.emit()

    def blocked(self, cmd: str, device: str | None = None) -> list[dict[str, Any]] | None:
        entry = self.snapshot["commands"].get(cmd)
        if entry is None:
            return [{"code": "unknown_command", "params": {"cmd": cmd}}]
        if self.role not in entry["roles"]:
            return [{"code": "forbidden", "params": {"role": self.role}}]
        device_locks = self.snapshot.get("devices", {}).get(device or "", {})
        problems = [self.snapshot["interlocks"].get(need) if need in self.snapshot["interlocks"]
                    else device_locks.get(need, {"code": "no_device"})
                    for need in entry["needs"]]
        return [p for p in problems if p is not None] or None

    def reason(self, cmd: str, device: str | None = None) -> str | None:
        problems = self.blocked(cmd, device)
        if problems is None:
            return None
        if problems[0]["code"] == "forbidden":
            return FORBIDDEN[i18n.language()].format(role=tr_role(self.role))
        return "; ".join(str(p.get("message", p["code"])) for p in problems)


@pytest.fixture(params=["en", "zh"])
def lang(request: pytest.FixtureRequest) -> Iterator[str]:
    i18n.set_language(request.param)
    yield request.param
    i18n.set_language("en")


Sent = list[tuple[str, dict[str, Any]]]


def make_bar(qtbot: QtBot, controls: SnapshotControls | None = None,
             status: dict[str, Any] | None = None) -> tuple[SafetyBar, Sent]:
    bar = SafetyBar(controls)
    qtbot.addWidget(bar)
    sent: Sent = []
    bar.intent.connect(lambda cmd, args: sent.append((cmd, args)))
    bar.apply_status(CLEAR_STATUS if status is None else status)
    return bar, sent


def buttons(bar: SafetyBar) -> dict[str, Any]:
    return {"arm": bar.arm_button, "talent": bar.talent_button, "reset": bar.reset_button}


def test_state_words_differ_in_symbol_and_word_not_only_colour(qtbot: QtBot, lang: str) -> None:
    bar, _ = make_bar(qtbot)
    seen = {}
    for status in (CLEAR_STATUS, {**CLEAR_STATUS, "armed": True},
                   {**CLEAR_STATUS, "estop_latched": True, "estop_by": "ana (operator)"},
                   {**CLEAR_STATUS, "talent_on_stage": True}):
        bar.apply_status(status)
        seen[tuple(sorted(k for k, v in status.items() if v is True))] = (
            bar.motion_label.text(), bar.latch_label.text(), bar.talent_label.text())
    disarmed, armed, latched, talent = seen[()], seen[("armed",)], \
        seen[("estop_latched",)], seen[("talent_on_stage",)]
    words = {"en": ("○ DISARMED", "● ARMED", "▲ E-STOP LATCHED", "◆ TALENT ON STAGE"),
             "zh": ("○ 运动未使能", "● 运动已使能", "▲ 急停未复位", "◆ 演员在台上")}[lang]
    assert (disarmed[0], armed[0], latched[1], talent[2]) == words
    # a symbol of its own for each state: tellable apart in greyscale
    assert len({w[0] for w in words}) == 4
    assert latched[1] != disarmed[1] and talent[2] != disarmed[2]
    bar.apply_status({**CLEAR_STATUS, "estop_latched": True})
    assert "#b71c1c" in bar.latch_label.styleSheet() and "border: 4px" in \
        bar.latch_label.styleSheet()  # boxed and inverted
    if lang == "zh":
        assert not re.search(r"[A-Za-z]", "".join(disarmed + armed + latched + talent))


def test_not_live_shows_unknown_never_the_last_state_and_keeps_estop(qtbot: QtBot,
                                                                     lang: str) -> None:
    controls = SnapshotControls("operator", snapshot())
    bar, sent = make_bar(qtbot, controls, {**CLEAR_STATUS, "armed": True})
    assert bar.known and not bar.motion_label.isHidden() and bar.unknown_label.isHidden()
    assert all(b.isEnabled() for b in buttons(bar).values() if b is not bar.reset_button)
    bar.set_live(False)
    assert bar.unknown_label.text() == {"en": "? UNKNOWN — engine not connected",
                                        "zh": "？状态未知（引擎未连接）"}[lang]
    assert not bar.unknown_label.isHidden()
    assert bar.motion_label.isHidden() and bar.latch_label.isHidden()
    assert bar.talent_label.isHidden()
    for name, button in buttons(bar).items():
        assert not button.isEnabled(), name
        assert button.toolTip() == i18n.tr("console_engine_offline"), name
    assert bar.estop_button.isEnabled()
    qtbot.mouseClick(bar.estop_button, Qt.MouseButton.LeftButton)
    assert sent == [("estop", {"reason": "console E-STOP"})]
    # back, but the old state is not shown: only a fresh safety.status brings the words back
    bar.set_live(True)
    assert not bar.known and not bar.unknown_label.isHidden()
    assert not bar.arm_button.isEnabled()
    assert bar.arm_button.toolTip() == i18n.tr("state_not_known_tip")
    bar.apply_status(CLEAR_STATUS)
    assert bar.known and bar.motion_label.text() == i18n.tr("disarmed")
    assert bar.arm_button.isEnabled()


@pytest.mark.parametrize("role", ["viewer", "producer"])
def test_viewer_and_producer_cannot_arm_reset_or_clear_talent(qtbot: QtBot, lang: str,
                                                              role: str) -> None:
    controls = SnapshotControls(role, snapshot(resettable=None))
    bar, _ = make_bar(qtbot, controls, {**CLEAR_STATUS, "estop_latched": True})
    expected = FORBIDDEN[lang].format(role=tr_role(role))
    for button in (bar.arm_button, bar.reset_button):
        assert not button.isEnabled()
        assert button.toolTip() == expected
    assert bar.talent_button.isEnabled()  # putting talent on stage is for everyone
    bar.apply_status({**CLEAR_STATUS, "talent_on_stage": True})
    assert bar.talent_button.text() == i18n.tr("talent_off_button")
    assert not bar.talent_button.isEnabled() and bar.talent_button.toolTip() == expected
    assert bar.estop_button.isEnabled()


def test_operator_controls_follow_the_interlocks(qtbot: QtBot) -> None:
    controls = SnapshotControls("operator", snapshot())
    bar, sent = make_bar(qtbot, controls)
    assert bar.arm_button.isEnabled() and bar.arm_button.toolTip() == ""
    assert not bar.reset_button.isEnabled()
    assert bar.reset_button.toolTip() == NOTHING["message"]
    qtbot.mouseClick(bar.arm_button, Qt.MouseButton.LeftButton)
    assert sent[-1] == ("safety.arm", {})
    bar.apply_status({"armed": True})
    assert bar.arm_button.text() == "Disarm"
    qtbot.mouseClick(bar.arm_button, Qt.MouseButton.LeftButton)
    assert sent[-1] == ("safety.disarm", {})
    # latched: arming is refused with the interlock's reason; reset becomes possible
    bar.apply_status({**CLEAR_STATUS, "estop_latched": True})
    controls.update(snapshot(estop_clear=LATCHED, armed=NOT_ARMED, resettable=None))
    assert not bar.arm_button.isEnabled() and bar.arm_button.text() == "Arm stage"
    assert bar.arm_button.toolTip() == LATCHED["message"]
    assert bar.reset_button.isEnabled()
    # talent on: the operator may clear it, and the button says that is what it does
    bar.apply_status({"talent_on_stage": True})
    assert bar.talent_button.isEnabled()
    qtbot.mouseClick(bar.talent_button, Qt.MouseButton.LeftButton)
    assert sent[-1] == ("safety.talent", {"on": False})


def test_a_cli_hint_never_reaches_the_tooltip(qtbot: QtBot) -> None:
    controls = SnapshotControls("operator", snapshot(armed=NOT_ARMED))
    controls.snapshot["commands"]["safety.arm"]["needs"] = ["armed"]  # to see the text
    bar, _ = make_bar(qtbot, controls)
    assert bar.arm_button.toolTip() == "interlock: stage not armed"


def test_reset_asks_naming_what_it_re_enables(qtbot: QtBot, lang: str) -> None:
    devices = {"arm-a": {"device_ready": IN_ESTOP, "device_resettable": None},
               "arm-b": {"device_ready": None, "device_resettable": NOTHING}}
    controls = SnapshotControls("operator", snapshot(estop_clear=LATCHED, armed=NOT_ARMED,
                                                     resettable=None, devices=devices))
    bar, sent = make_bar(qtbot, controls, {**CLEAR_STATUS, "estop_latched": True,
                                           "estop_reason": "console E-STOP",
                                           "estop_by": "ana (operator)"})
    bar.confirm = asked = Asked(False)
    assert bar.reset_button.isEnabled()
    qtbot.mouseClick(bar.reset_button, Qt.MouseButton.LeftButton)
    assert len(asked.questions) == 1 and sent == []
    title, text = asked.questions[0]
    if lang == "en":
        assert title == "Reset after E-STOP?"
        assert "clear the E-STOP latch (by ana (operator): console E-STOP)" in text
        assert "arm-a" in text and "arm-b" not in text
        assert "stays DISARMED" in text and "separate act" in text
    else:
        assert "复位急停（操作人：ana（操作员）；原因：控制台急停）" in text
        assert "arm-a" in text and "arm-b" not in text
        assert "运动未使能" in text and "使能运动" in text
        assert not re.search(r"[A-Za-z]", text.replace("ana", "").replace("arm-a", ""))
        assert ":" not in text and "(" not in text
    bar.confirm = lambda title, text: True
    qtbot.mouseClick(bar.reset_button, Qt.MouseButton.LeftButton)
    assert sent == [("safety.reset", {})]


# ---- against the real engine ---------------------------------------------------------------

def test_estop_then_confirmed_reset_leaves_the_stage_disarmed(qtbot: QtBot,
                                                              arm_stage: StageHarness) -> None:
    """The bar's intents go to the real engine; what it shows is what the engine answers."""
    client = EngineClient(arm_stage.config, ClientIdentity("gui-test", "operator"),
                          timeout_s=3.0)
    try:
        controls = SnapshotControls("operator", client.call("controls"))
        bar, sent = make_bar(qtbot, controls, client.call("safety.status"))

        def deliver(cmd: str, args: dict[str, Any]) -> None:
            client.call(cmd, args)
            bar.apply_status(client.call("safety.status"))
            controls.update(client.call("controls"))

        bar.intent.connect(deliver)
        wait_for(lambda: client.call("arm.status")["state"].get("state") == "IDLE")
        controls.update(client.call("controls"))
        qtbot.mouseClick(bar.arm_button, Qt.MouseButton.LeftButton)
        assert bar.motion_label.text() == "● ARMED"
        qtbot.mouseClick(bar.estop_button, Qt.MouseButton.LeftButton)
        assert bar.latch_label.text() == "▲ E-STOP LATCHED"
        assert bar.motion_label.text() == "○ DISARMED"  # the e-stop disarmed the stage
        assert "gui-test (operator)" in bar.latch_label.toolTip()

        def resettable() -> bool:
            controls.update(client.call("controls"))
            return bar.reset_button.isEnabled()
        wait_for(resettable)
        assert not bar.arm_button.isEnabled()  # arming waits for the reset
        bar.confirm = asked = Asked(True)
        qtbot.mouseClick(bar.reset_button, Qt.MouseButton.LeftButton)
        assert len(asked.questions) == 1
        assert "arm-a" in asked.questions[0][1] and "gui-test" in asked.questions[0][1]
        assert bar.latch_label.text() == "no e-stop"
        assert bar.motion_label.text() == "○ DISARMED"
        assert client.call("safety.status")["armed"] is False
        wait_for(lambda: client.call("arm.status")["state"].get("state") == "IDLE")
        assert [cmd for cmd, _ in sent] == ["safety.arm", "estop", "safety.reset"]
        # arming is its own act, and now possible again

        def armable() -> bool:
            controls.update(client.call("controls"))
            return bar.arm_button.isEnabled()
        wait_for(armable)
        assert bar.arm_button.text() == "Arm stage" and bar.motion_label.text() == "○ DISARMED"
    finally:
        client.close()


def test_snapshot_controls_read_the_engine_snapshot_as_published(
        arm_stage: StageHarness) -> None:
    """The stand-in reads what the engine really sends (so the tests above mean something)."""
    client = EngineClient(arm_stage.config, ClientIdentity("vic", "viewer"), timeout_s=3.0)
    try:
        snap = client.call("controls")
        viewer = SnapshotControls("viewer", copy.deepcopy(snap))
        assert viewer.blocked("estop") is None and viewer.blocked("safety.talent") is None
        for cmd in ("safety.arm", "safety.reset", "safety.talent.off"):
            assert viewer.blocked(cmd) == [{"code": "forbidden",
                                            "params": {"role": "viewer"}}], cmd
        operator = SnapshotControls("operator", snap)
        assert operator.blocked("arm.jog", "arm-a") is not None  # not armed
        assert operator.blocked("safety.arm") is None
    finally:
        client.close()
