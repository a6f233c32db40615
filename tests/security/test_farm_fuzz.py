"""Fuzz the controller's message handling: any JSON gets a structured answer, never a crash.

Runs the production `Controller._receive` in-process on generated messages of every type.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from scheduler.dispatch import limits as lim
from scheduler.dispatch import protocol as p
from scheduler.dispatch.config import ControllerConfig
from scheduler.dispatch.controller import Controller, Peer
from scheduler.dispatch.roles import AGENT, READ, WRITE
from tests.dispatch.conftest import free_port

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=12)
FIELDS = ["node_id", "slots", "vram_gb", "speed", "gpus", "running", "finished", "attempt",
          "fraction", "lines", "ok", "exit_code", "error", "jobs", "job", "limit", "req"]
MESSAGES = st.builds(
    lambda kind, fields: {**fields, "type": kind},
    st.sampled_from(sorted(AGENT | READ | WRITE | {"nonsense"})),
    st.dictionaries(st.sampled_from(FIELDS), JSON, max_size=6))


@pytest.fixture(scope="module")
def controller(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Controller]:
    tmp: Path = tmp_path_factory.mktemp("fuzz")
    ctl = Controller(tmp / "farm.sqlite",
                     ControllerConfig(bind=f"tcp://127.0.0.1:{free_port()}"))
    yield ctl
    ctl.close()


@given(msg=MESSAGES)
def test_any_message_is_answered_or_applied_never_raises(controller: Controller,
                                                         msg: dict[str, object]) -> None:
    try:
        frame = orjson.dumps(msg)
    except TypeError:  # an integer orjson cannot write: send it as text
        frame = str(msg).encode()
    controller._out.clear()
    with controller.store.transaction():
        controller._receive(Peer(b"fuzz"), [frame])
    replies = [m for _, m in controller._out if m["type"] in (p.REPLY, p.REFUSE)]
    if msg["type"] in READ | WRITE | {"nonsense"}:
        assert len(replies) == 1, (msg, controller._out)
    for reply in replies:
        if not reply.get("ok", False):
            assert reply["code"] != "internal", reply
            assert reply.get("error") or reply.get("reason")


@given(value=JSON)
def test_registration_validator_only_raises_field_errors(value: object) -> None:
    msg = {"node_id": "n1", "slots": 1}
    for key in ("slots", "speed", "vram_gb", "gpus", "running", "finished", "node_id"):
        try:
            lim.registration({**msg, key: value})
        except lim.FieldError as exc:
            assert exc.field.split("[")[0].split(".")[0] in (key, "finished")


@given(frame=st.binary(max_size=200))
def test_decode_only_raises_protocol_errors(frame: bytes) -> None:
    try:
        assert isinstance(p.decode(frame)["type"], str)
    except p.ProtocolError:
        pass
