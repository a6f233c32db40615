"""What the engine tells consoles (docs/protocols/console-state.md), read off a real PUB socket.

The expectations are the protocol page's text: controls with roles, needs and interlocks;
cue readiness pushed on every safety change without a GO; events and refusals carrying a
code and params; heartbeats fast enough for a 0.75 s staleness rule; ``seq`` without gaps.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from drivers.messages import DRIVER_MESSAGES
from stagectl.client import EngineError, StateSubscriber
from stagectl.engine.messages import ENGINE_MESSAGES, ERRORS
from stagectl.harness import StageHarness
from tests.arm.conftest import client, wait_for
from tests.arm.test_safety import sims
from tests.stage_toml import cue_stage_config


class Stream:
    """Every message on the engine's PUB socket, collected as it is read."""

    def __init__(self, h: StageHarness) -> None:
        self.sub = StateSubscriber(h.config)
        self.messages: list[tuple[str, dict[str, Any]]] = []

    def pump(self, seconds: float = 0.0) -> None:
        deadline = time.monotonic() + seconds
        while True:
            got = self.sub.recv(max(0.0, min(0.05, deadline - time.monotonic())))
            if got is not None:
                self.messages.append(got)
            elif time.monotonic() >= deadline:
                return

    def latest(self, topic: str) -> dict[str, Any] | None:
        for t, m in reversed(self.messages):
            if t == topic:
                return m
        return None

    def until(self, topic: str, predicate: Callable[[dict[str, Any]], bool],
              timeout: float = 3.0) -> dict[str, Any]:
        """The newest message on ``topic`` whose data satisfies ``predicate``."""
        deadline = time.monotonic() + timeout
        while True:
            latest = self.latest(topic)
            if latest is not None and predicate(latest["data"]):
                return latest["data"]
            assert time.monotonic() < deadline, f"no {topic} message matched in {timeout} s"
            self.pump(0.05)

    def close(self) -> None:
        self.sub.close()


@pytest.fixture
def cue_stage(tmp_path: Path) -> Iterator[StageHarness]:
    with StageHarness(cue_stage_config(tmp_path, "cue-stage")) as h:
        yield h


@pytest.fixture
def stream(cue_stage: StageHarness) -> Iterator[Stream]:
    s = Stream(cue_stage)
    s.pump(0.3)  # the subscription is live before the test acts
    try:
        yield s
    finally:
        s.close()


def _codes(problems: list[dict[str, Any]]) -> set[str]:
    return {p["code"] for p in problems}


def _cue(listing: dict[str, Any], number: int) -> dict[str, Any]:
    return next(c for c in listing["cues"] if c["number"] == number)


def test_controls_say_who_may_do_what_and_which_interlock_blocks(
        cue_stage: StageHarness) -> None:
    with client(cue_stage, "producer", "pia") as producer:
        controls = producer.call("controls")
    assert controls["you"] == {"user": "pia", "role": "producer"}
    jog = controls["commands"]["arm.jog"]
    assert "producer" not in jog["roles"] and "operator" in jog["roles"]
    assert jog["needs"] == ["estop_clear", "armed", "talent_clear", "device_ready"]
    assert controls["commands"]["estop"]["needs"] == []
    assert set(controls["commands"]["estop"]["roles"]) == {"operator", "engineer", "producer",
                                                           "viewer"}
    assert "producer" not in controls["commands"]["safety.talent.off"]["roles"]
    assert controls["interlocks"]["armed"]["code"] == "interlock_not_armed"
    assert controls["interlocks"]["estop_clear"] is None
    assert controls["interlocks"]["resettable"]["code"] == "nothing_to_reset"
    wait_for(lambda: cue_stage.engine is not None
             and cue_stage.engine.devices["arm-a"].online)
    with client(cue_stage) as op:
        assert op.call("controls")["devices"]["arm-a"]["device_ready"] is None


def test_interlock_changes_are_published_as_controls(cue_stage: StageHarness,
                                                     stream: Stream) -> None:
    with client(cue_stage) as op:
        op.call("safety.arm")
        stream.until("stage.controls", lambda d: d["interlocks"]["armed"] is None)
        op.call("estop", {"reason": "drill"})
        data = stream.until("stage.controls",
                            lambda d: d["interlocks"]["estop_clear"] is not None)
        assert data["interlocks"]["estop_clear"]["code"] == "interlock_estop"
        assert data["interlocks"]["estop_clear"]["params"]["reason"] == "drill"
        assert data["interlocks"]["armed"] is not None  # the e-stop disarmed the stage
        assert data["interlocks"]["resettable"] is None  # a latch to clear
        assert "you" not in data  # the published copy is the same for everyone


def test_cue_readiness_follows_every_safety_change_without_a_go(cue_stage: StageHarness,
                                                                stream: Stream) -> None:
    arm_sim, _ = sims(cue_stage)
    wait_for(lambda: cue_stage.engine is not None
             and cue_stage.engine.devices["arm-a"].online)
    first = stream.until("stage.cues", lambda d: "interlock_not_armed"
                         in _codes(_cue(d, 1)["problems"]))
    assert first["next"] == 1 and first["current"] is None
    assert not _cue(first, 1)["ready"] and _cue(first, 2)["ready"]  # LED only: no interlock
    assert {a["what"] for a in _cue(first, 1)["actions"]} == {"move_joints", "preset", "mark"}
    with client(cue_stage) as op:
        op.call("safety.arm")
        armed = stream.until("stage.cues", lambda d: _cue(d, 1)["ready"])
        assert _cue(armed, 1)["problems"] == []
        assert "soft_limit" in str(_cue(armed, 5)["problems"]) or \
            not _cue(armed, 5)["ready"]  # beyond the envelope: blocked by the arm's check
        op.call("safety.talent", {"on": True})
        talent = stream.until("stage.cues", lambda d: not _cue(d, 1)["ready"])
        assert "interlock_talent" in _codes(_cue(talent, 1)["problems"])
        op.call("safety.talent", {"on": False})
        stream.until("stage.cues", lambda d: _cue(d, 1)["ready"])
        op.call("estop")
        latched = stream.until("stage.cues", lambda d: "interlock_estop"
                               in _codes(_cue(d, 1)["problems"]))
        assert "interlock_not_armed" in _codes(_cue(latched, 1)["problems"])
        wait_for(lambda: arm_sim.state == "ESTOP")
        op.call("safety.reset")
        after = stream.until("stage.cues", lambda d: "interlock_estop"
                             not in _codes(_cue(d, 1)["problems"]))
        assert _codes(_cue(after, 1)["problems"]) == {"interlock_not_armed"}  # reset: not armed


def test_go_blocked_when_the_next_cue_is_not_ready_and_running_cue_reported(
        cue_stage: StageHarness, stream: Stream) -> None:
    with client(cue_stage) as op:
        controls = op.call("controls")
        assert controls["interlocks"]["next_cue"] is not None  # cue 1 needs an armed stage
        assert controls["interlocks"]["previous_cue"]["code"] == "start_of_list"
        op.call("safety.arm")
        stream.until("stage.controls", lambda d: d["interlocks"]["next_cue"] is None)
        op.call("cue.go")
        moving = stream.until("stage.cues", lambda d: d["running"] is not None, 2.0)
        assert moving["running"]["cue"] == 1 and moving["running"]["device"] == "arm-a"
        assert moving["current"] == 1 and moving["next"] == 2
        done = stream.until("stage.cues", lambda d: d["running"] is None, 10.0)
        assert done["current"] == 1


def test_events_and_refusals_carry_codes_in_the_catalogue(cue_stage: StageHarness,
                                                          stream: Stream) -> None:
    with client(cue_stage, "viewer", "vic") as viewer, pytest.raises(EngineError) as refused:
        viewer.call("arm.jog", {"axis": "j1", "velocity": 5.0})
    assert refused.value.code == "forbidden" and refused.value.code in ERRORS
    with client(cue_stage) as op:
        with pytest.raises(EngineError) as interlock:
            op.call("arm.jog", {"axis": "j1", "velocity": 5.0})
        assert interlock.value.code == "interlock" and interlock.value.code in ERRORS
        assert _codes(interlock.value.details["problems"]) == {"interlock_not_armed"}
        assert "stagectl" not in str(interlock.value)  # no CLI hints reach a console
        op.call("led.set", {"key": "blackout", "value": True})
        op.call("safety.arm")
        op.call("estop", {"reason": "drill"})
    stream.pump(0.5)
    events = [m["data"] for _t, m in stream.messages if m.get("type") == "event"]
    catalogue = {**DRIVER_MESSAGES, **ENGINE_MESSAGES}
    assert events and all(e["code"] in catalogue for e in events), events
    by_code = {e["code"]: e for e in events}
    assert {"command_refused_role", "stage_armed", "estop_disarmed", "command_done"} <= set(by_code)
    led = next(e for e in events if e["code"] == "command_done"
               and e["params"]["cmd"] == "led.set")
    assert led["params"]["args"] == {"key": "blackout", "value": True}
    assert "{" not in led["message"] and "True" not in led["message"]  # a sentence, no repr
    assert by_code["estop_disarmed"]["params"]["reason"] == "drill"
    done = [e["params"]["cmd"] for e in events if e["code"] == "command_done"]
    assert "safety.arm" not in done and "estop" not in done  # announced once, by safety


def test_heartbeats_and_seq_let_a_console_tell_live_from_stale(cue_stage: StageHarness,
                                                               stream: Stream) -> None:
    stream.messages.clear()
    stream.pump(1.6)
    beats = [m["t"] for t, m in stream.messages if m.get("type") == "heartbeat"]
    assert len(beats) >= 5  # every 0.25 s: a 0.75 s silence means the link is gone
    assert max(b - a for a, b in zip(beats, beats[1:], strict=False)) < 0.5
    seqs = [m["seq"] for _t, m in stream.messages]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))  # one counter, no gaps


def test_controls_are_current_the_moment_a_safety_reply_arrives(cue_stage: StageHarness,
                                                                stream: Stream) -> None:
    with client(cue_stage) as op:
        op.call("safety.arm")
        assert op.call("controls")["interlocks"]["armed"] is None
        op.call("estop")
        now = op.call("controls")  # no wait: the reply to estop came first
        assert now["interlocks"]["estop_clear"]["code"] == "interlock_estop"
        assert now["interlocks"]["resettable"] is None
    stream.pump(0.2)
    topics = [t for t, m in stream.messages if t in ("stage.safety", "stage.controls")]
    last_safety = max(i for i, t in enumerate(topics) if t == "stage.safety")
    assert "stage.controls" in topics[last_safety:]  # published right after the safety delta


def test_replies_say_which_state_message_they_follow(cue_stage: StageHarness,
                                                      stream: Stream) -> None:
    with client(cue_stage) as op:
        op.call("safety.arm")
        stream.pump(0.2)
        published = max(m["seq"] for _t, m in stream.messages)
        op.send("safety.status", {})
        assert op.socket.poll(3000)
        reply = json.loads(op.socket.recv())
    assert reply["ok"] and reply["seq"] >= published  # computed after what was published
