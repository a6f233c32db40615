"""Every request the engine reads gets a reply: malformed ones a structured error and a counter.

Measured before: a request holding a 5,000-digit integer got no reply at all (Python's
int-digits limit raised ValueError inside ``json.loads``, which nothing caught). Each case
here is sent by a raw DEALER (or REQ) over loopback to a real engine.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import pytest
import zmq

from stagectl.client import ClientIdentity, EngineClient
from stagectl.harness import StageHarness, free_port_config


@pytest.fixture(scope="module")
def stage() -> Iterator[StageHarness]:
    harness = StageHarness(free_port_config(stage="malformed")).start()
    yield harness
    harness.stop()


def exchange(stage: StageHarness, frames: list[bytes], kind: int = zmq.DEALER
             ) -> list[bytes]:
    ctx = zmq.Context.instance()
    sock = ctx.socket(kind)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(stage.config.engine.command)
    try:
        sock.send_multipart(frames)
        assert sock.poll(3000), f"engine did not reply to {[f[:40] for f in frames]}"
        return sock.recv_multipart()
    finally:
        sock.close()


def error_of(stage: StageHarness, payload: bytes) -> dict[str, Any]:
    (frame,) = exchange(stage, [payload])
    reply: dict[str, Any] = orjson.loads(frame)
    assert reply["ok"] is False, reply
    assert reply["error"]["message"], reply
    return reply


def counters(stage: StageHarness) -> dict[str, int]:
    with EngineClient(stage.config, ClientIdentity("t", "viewer")) as c:
        result: dict[str, int] = c.call("status")["engine"]["counters"]
        return result


HUGE = b"9" * 5000
DEEP = b"[" * 5000 + b"]" * 5000


@pytest.mark.parametrize("name,payload,kind,words", [
    ("5000-digit integer", b'{"id": "h1", "cmd": "led.set", "args": {"key": "gamma", '
     b'"value": ' + HUGE + b'}, "role": "operator"}', "number", "out of range"),
    ("5000-digit id", b'{"id": ' + HUGE + b', "cmd": "ping"}', "number", "out of range"),
    ("huge float", b'{"id": "h2", "cmd": "ping", "args": {"x": 1e999}}', "number",
     "out of range"),
    ("deep nesting", b'{"id": "d1", "cmd": "ping", "args": {"x": ' + DEEP + b'}}', "nesting",
     "deeper than 1024"),
    ("NaN", b'{"id": "n1", "cmd": "led.set", "args": {"key": "gamma", "value": NaN}}',
     "non_finite", "NaN and Infinity"),
    ("Infinity", b'{"id": "n2", "cmd": "ping", "args": {"x": Infinity}}', "non_finite",
     "NaN and Infinity"),
    ("-Infinity", b'{"id": "n3", "cmd": "ping", "args": {"x": -Infinity}}', "non_finite",
     "NaN and Infinity"),
    ("non-UTF-8", b'{"id": "u1", "cmd": "ping", "user": "\xff\xfe"}', "utf8", "UTF-8"),
    ("lone surrogate byte", b'\xed\xa0\x80{"id": "u2"}', "utf8", "UTF-8"),
    ("array", b'[1, 2]', "not_object", "JSON object"),
    ("string", b'"ping"', "not_object", "JSON object"),
    ("null", b'null', "not_object", "JSON object"),
    ("empty", b"", "empty", "empty request"),
    ("blank", b"  \n", "empty", "empty request"),
    ("truncated", b'{"id": "t1", "cmd": "pi', "json", "not valid JSON"),
    ("trailing garbage", b'{"id": "t2", "cmd": "ping"} x', "json", "not valid JSON"),
])
def test_malformed_request_gets_structured_error_and_counter(
        stage: StageHarness, name: str, payload: bytes, kind: str, words: str) -> None:
    before = counters(stage)
    reply = error_of(stage, payload)
    assert reply["error"]["code"] == "bad_request"
    assert reply["error"]["kind"] == kind, reply
    assert words in reply["error"]["message"], reply
    after = counters(stage)
    assert after.get(f"bad_{kind}", 0) == before.get(f"bad_{kind}", 0) + 1
    assert after["bad_requests"] == before.get("bad_requests", 0) + 1


def test_error_carries_the_id_when_it_can_be_read(stage: StageHarness) -> None:
    reply = error_of(stage, b'{"id": "h1", "cmd": "led.set", "args": {"value": ' + HUGE + b'}}')
    assert reply["id"] == "h1"
    reply = error_of(stage, b'{"id": 17, "cmd": "ping", "args": {"x": NaN}}')
    assert reply["id"] == "17"
    assert error_of(stage, b"\xff")["id"] is None


def test_nesting_the_decoder_accepts_still_gets_a_reply(stage: StageHarness) -> None:
    """1000 levels parse, but the reply must not fail echoing them (orjson encodes 254)."""
    nested = b"[" * 1000 + b"]" * 1000
    reply = error_of(stage, b'{"id": "d2", "cmd": "led.set", "role": "operator", '
                            b'"args": {"key": "gamma", "value": ' + nested + b'}}')
    assert reply["id"] == "d2" and reply["error"]["code"] == "bad_request", reply
    assert "nests too deeply" in reply["error"]["message"]
    reply = error_of(stage, b'{"id": "d3", "cmd": "cue.jump", "role": "operator", '
                            b'"args": {"number": ' + nested + b'}}')
    assert reply["id"] == "d3" and reply["error"]["code"] == "bad_request", reply


@pytest.mark.parametrize("frames", [
    [b"one", b"two", b"three"],
    [b'{"id": "x", "cmd": "ping"}', b'{"id": "y", "cmd": "ping"}'],
    [b"", b'{"id": "x", "cmd": "ping"}', b"extra"],
])
def test_wrong_frame_count_gets_one_error_frame(stage: StageHarness,
                                                frames: list[bytes]) -> None:
    before = counters(stage).get("bad_frames", 0)
    reply_frames = exchange(stage, frames)
    reply = orjson.loads(reply_frames[-1])
    assert reply["ok"] is False and reply["error"]["code"] == "bad_request"
    assert reply["error"]["kind"] == "frames" and "one frame" in reply["error"]["message"]
    assert reply_frames[:-1] == ([b""] if frames[0] == b"" else [])
    assert counters(stage)["bad_frames"] == before + 1


def test_empty_frame_then_request_is_a_req_envelope(stage: StageHarness) -> None:
    """``[b"", payload]`` is how REQ sockets frame a request: served, delimiter kept."""
    delimiter, frame = exchange(stage, [b"", b'{"id": "r1", "cmd": "ping"}'])
    assert delimiter == b"" and orjson.loads(frame)["result"]["pong"] is True
    (frame,) = exchange(stage, [b'{"id": "r2", "cmd": "ping"}'], zmq.REQ)
    assert orjson.loads(frame)["id"] == "r2"
    (frame,) = exchange(stage, [b""], zmq.REQ)
    assert orjson.loads(frame)["error"]["kind"] == "empty"


def test_engine_still_serves_after_all_of_it(stage: StageHarness) -> None:
    for payload in (HUGE, DEEP, b"\xff" * 100, b"NaN", b"{" * 3000):
        error_of(stage, payload)
    with EngineClient(stage.config, ClientIdentity("t", "operator")) as c:
        assert c.call("ping")["pong"] is True
        c.call("led.set", {"key": "gamma", "value": 2.2})


def test_a_state_message_that_cannot_be_encoded_is_counted_not_raised(
        stage: StageHarness) -> None:
    """bus.dumps falls back to json for a >64-bit int and that refuses a NaN beside it; the
    publisher (called from device callbacks) must not raise."""
    engine = stage.engine
    assert engine is not None
    before = engine.counters["publish_unencodable"]
    stage.loop.call(lambda: engine._publish("engine", {"type": "event", "data": {
        "big": 2**70, "nan": float("nan")}}))
    assert engine.counters["publish_unencodable"] == before + 1
    assert exchange(stage, [b'{"id": "after", "cmd": "ping"}'])  # still serving
