"""Large requests are decoded in steps, with exactly the results and errors of one orjson call.

Measured before: one orjson call on a 10,000-keyframe path (0.8 MB, 80,000 objects) held the
engine's loop 4-8 ms, the largest part of the e-stop's p99 while a path was being uploaded
(``bench/estop_under_load.py``). ``bus.decode_request_steps`` yields every ~8 KB decoded.
"""

from __future__ import annotations

import json
import random
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from stagectl import bus


def stepped(payload: bytes) -> tuple[bus.Request, int]:
    """The request and how many times the decoder let the loop run."""
    steps = bus.decode_request_steps(payload)
    count = 0
    while True:
        try:
            next(steps)
        except StopIteration as done:
            return done.value, count
        count += 1


def outcome(decode: Any, payload: bytes) -> tuple[str, object]:
    try:
        return "ok", decode(payload)
    except bus.ProtocolError as exc:
        return "error", (str(exc), exc.kind, exc.request_id)


def path_request(n: int, seed: int = 1) -> bytes:
    rng = random.Random(seed)
    keyframes = [{"t_s": round(0.05 * (i + 1), 3),
                  "joints_deg": [round(rng.uniform(-90, 90), 4) for _ in range(6)]}
                 for i in range(n)]
    return orjson.dumps({"id": "up-1", "cmd": "arm.run_path", "role": "operator",
                         "user": "ana", "args": {"device": "arm-a", "keyframes": keyframes}})


def test_a_long_path_is_decoded_in_many_small_steps() -> None:
    payload = path_request(10_000)
    request, steps = stepped(payload)
    assert request == bus.decode_request(payload)
    # each step decodes about STEP_BYTES: the loop runs ~100 times during this upload
    assert steps >= len(payload) // (2 * bus.STEP_BYTES)


def test_a_small_request_is_the_same() -> None:
    payload = b'{"id": 7, "cmd": "status", "args": {}, "role": "viewer"}'
    assert stepped(payload)[0] == bus.decode_request(payload)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=30)


@given(st.dictionaries(st.sampled_from(["id", "cmd", "args", "role", "user", "x"]), JSON,
                       max_size=6), st.booleans())
def test_any_envelope_decodes_as_orjson_does(envelope: dict[str, Any], ascii_only: bool
                                             ) -> None:
    payload = json.dumps(envelope, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")
    assert outcome(lambda p: stepped(p)[0], payload) == outcome(bus.decode_request, payload)


MALFORMED = [
    b'{"id": "1", "cmd": "x", "args": {"k": [1e999]}}',
    b'{"id": "1", "cmd": "x", "args": {"k": [123456789012345678901234]}}',
    b'{"id": "1", "cmd": "x", "args": {"k": [' + b"9" * 5000 + b"]}}",
    b'{"id": "1", "cmd": "x", "args": {"k": "\\ud800"}}',
    b'{"id": "1", "cmd": "x", "args": {"k": [NaN]}}',
    b'{"id": "1", "cmd": "x", "args": {"k": [Infinity]}}',
    b'{"id": "1", "cmd": "x"} trailing',
    b'{"id": "1", "cmd": "x", "args": ' + b"[" * 5000 + b"]" * 5000 + b"}",
    b'{"id": "1", "cmd": "x", "args": {"k": [1, 2,]}}',
    b'{"id": "1", "cmd": "x", "args": {"k": "\x01"}}',
    b'{"id": "1", "cmd": "x", "args": {"k": "\xff\xfe"}}',
    b'{"id": "1", "cmd": "x", "args": {"k": [1, 2}}',
    b'{"id": "1", "cmd": "x", "args": {"k" 1}}',
    b'{"id": "1", "cmd": "x", "args": {"k": 1',
    b"[1, 2]",
    b"",
]


@pytest.mark.parametrize("payload", MALFORMED)
def test_malformed_requests_get_orjsons_error(payload: bytes) -> None:
    padded = payload + b" " * 70_000 if payload.endswith(b"}") else payload
    for body in (payload, padded):
        assert outcome(lambda p: stepped(p)[0], body) == outcome(bus.decode_request, body)


@given(st.binary(max_size=200))
def test_any_bytes_decode_as_orjson_does(payload: bytes) -> None:
    assert outcome(lambda p: stepped(p)[0], payload) == outcome(bus.decode_request, payload)


@given(st.integers(0, 400), st.integers(0, 255))
def test_a_flipped_byte_in_a_path_decodes_as_orjson_does(offset: int, value: int) -> None:
    payload = bytearray(path_request(20))
    payload[offset % len(payload)] = value
    body = bytes(payload)
    assert outcome(lambda p: stepped(p)[0], body) == outcome(bus.decode_request, body)
