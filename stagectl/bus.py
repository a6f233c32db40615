"""The engine's client protocol over ZeroMQ (documented in ``docs/protocols/engine-zmq.md``).

Command socket (ROUTER on the engine, DEALER in clients): one JSON object per request,
``{"id", "cmd", "args", "role", "user"}``; the reply carries the same ``id`` and either
``{"ok": true, "result": ...}`` or ``{"ok": false, "error": {"code", "message", ...}}``.

State socket (PUB): two frames, a topic (``device.<name>``, ``tracking.<source>`` or
``engine``) and a JSON object ``{"type", "device", "seq", "t", "data"}``. ``type`` is
``delta``, ``desired``, ``health``, ``event``, ``sample`` (tracking) or (on ``engine``)
``heartbeat``.
"""

from __future__ import annotations

import json
import math
import re
import reprlib
from dataclasses import dataclass, field
from typing import Any

import orjson

from drivers.steps import Steps

ROLES: tuple[str, ...] = ("operator", "engineer", "producer", "viewer")
ENGINE_TOPIC = "engine"
DEVICE_TOPIC_PREFIX = "device."
TRACKING_TOPIC_PREFIX = "tracking."


DEFAULT_MAX_MESSAGE_BYTES = 1_000_000
MAX_NESTING = 1024  # orjson's own depth limit: deeper documents are refused while parsing
_ID_PATTERN = re.compile(rb'"id"\s*:\s*(?:"((?:[^"\\]|\\.){1,128})"|(-?\d{1,19})[\s,}])')


class ProtocolError(ValueError):
    """A request that is not a valid command envelope.

    ``kind`` names what was wrong (the engine counts ``bad_<kind>``): ``empty``, ``too_large``,
    ``utf8``, ``nesting``, ``number``, ``non_finite``, ``json``, ``not_object``, ``envelope``
    or ``frames``;
    ``request_id`` is the request's id when it could be read, so the error can be matched.
    """

    def __init__(self, message: str, kind: str = "envelope",
                 request_id: str | None = None) -> None:
        self.kind = kind
        self.request_id = request_id
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class Request:
    """A decoded command request."""

    id: str
    cmd: str
    args: dict[str, Any] = field(default_factory=dict)
    role: str = "viewer"
    user: str = "anonymous"


def _json_default(value: object) -> object:
    if isinstance(value, (set, tuple)):
        return list(value)
    return str(value)


def dumps(obj: object) -> bytes:
    """Compact UTF-8 JSON for the wire (orjson: non-finite floats become null)."""
    try:
        return orjson.dumps(obj, default=_json_default, option=orjson.OPT_NON_STR_KEYS)
    except TypeError:  # e.g. an int beyond 64 bits or nesting past 254 levels
        try:
            return json.dumps(obj, separators=(",", ":"), ensure_ascii=False, allow_nan=False,
                              default=_json_default).encode()
        except RecursionError:
            raise TypeError("value nested too deeply to encode") from None


def _explain(exc: orjson.JSONDecodeError, payload: bytes) -> tuple[str, str]:
    """(message, kind) for a document orjson refused, in words a client author can act on."""
    msg, pos = exc.msg, exc.pos
    near = payload[max(0, pos - 1):pos + 9]
    if msg.startswith("str is not valid UTF-8"):
        return "request is not valid UTF-8; send the JSON text encoded as UTF-8", "utf8"
    if msg.startswith("depth limit exceeded"):
        return (f"request nests arrays/objects deeper than {MAX_NESTING} levels; "
                "flatten it"), "nesting"
    if msg.startswith("number is infinity"):
        return (f"a number at byte {pos} is out of range (at most about 1.8e308; integers "
                "beyond 64 bits are read as floats)"), "number"
    if b"NaN" in near or b"Infinity" in near:
        return (f"NaN and Infinity at byte {pos} are not valid JSON numbers; send a finite "
                "number or null"), "non_finite"
    return f"request is not valid JSON: {msg} at byte {pos}", "json"


def request_id_of(payload: bytes) -> str | None:
    """Best-effort id of a request that failed to decode, so the error can be matched.

    Reads the first ``"id": "..."`` or ``"id": 123`` in the first 4 KB without parsing the
    document (which is what failed).
    """
    found = _ID_PATTERN.search(payload[:4096])
    if found is None:
        return None
    text = found.group(1) if found.group(1) is not None else found.group(2)
    try:
        rid = text.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if found.group(1) is not None:
        try:  # undo JSON escapes; an id that does not survive that is not matchable
            rid = str(orjson.loads(b'"' + text + b'"'))
        except orjson.JSONDecodeError:
            return None
    return rid


def decode_request(payload: bytes, max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> Request:
    """Decode and check a request envelope.

    Raises:
        ProtocolError: what is wrong, its ``kind`` and the request's id when it was readable.
    """
    if len(payload) > max_bytes:
        raise ProtocolError(f"request is {len(payload)} bytes; the limit is {max_bytes} "
                            "([engine] max_message_bytes)", "too_large",
                            request_id_of(payload))
    if len(payload) < 4096 and not payload.strip():
        raise ProtocolError('empty request: send one JSON object such as '
                            '{"id": "1", "cmd": "ping"}', "empty")
    try:
        obj = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        message, kind = _explain(exc, payload)
        raise ProtocolError(message, kind, request_id_of(payload)) from None
    if not isinstance(obj, dict):
        raise ProtocolError(f"request must be a JSON object, not {_json_type(obj)}",
                            "not_object")
    return _check_envelope(obj)


def _check_envelope(obj: dict[str, Any]) -> Request:
    """The request an envelope object holds, or a ProtocolError saying what is wrong."""
    rid = obj.get("id")
    if not isinstance(rid, (str, int)) or isinstance(rid, bool):
        raise ProtocolError("request needs an 'id' (string or integer)")
    rid = str(rid)
    cmd = obj.get("cmd")
    if not isinstance(cmd, str) or not cmd:
        raise ProtocolError("request needs a 'cmd' string", request_id=rid)
    args = obj.get("args", {})
    if not isinstance(args, dict):
        raise ProtocolError("'args' must be a JSON object", request_id=rid)
    role = obj.get("role", "viewer")
    if role not in ROLES:
        raise ProtocolError(f"'role' must be one of {', '.join(ROLES)}, got "
                            f"{short(role)}", request_id=rid)
    user = obj.get("user", "anonymous")
    if not isinstance(user, str):
        raise ProtocolError("'user' must be a string", request_id=rid)
    return Request(id=rid, cmd=cmd, args=args, role=role, user=user[:64])


# ---- large requests, decoded in steps ----------------------------------------------------
# One orjson call on a 0.8 MB path (10,000 keyframes, 80,000 Python objects) holds the
# interpreter for 4-8 ms on the 2-core stage PC: an e-stop arriving then waits for it.
# decode_request_steps() builds the same request in slices of about STEP_BYTES: the outer
# containers (envelope, args, and one level below, e.g. the keyframes array) are walked here,
# and each element below them is decoded by json's C scanner, one at a time. Anything it is
# not sure about (an escape sequence, a number orjson would read differently, any syntax
# error) falls back to decode_request(), so results and error messages are orjson's.

STEP_BYTES = 8_192
_WALK_DEPTH = 3  # object, args, args' members; deeper values go to the C scanner whole
_WS = " \t\n\r"


class _Unsure(Exception):
    """The stepped decoder defers to orjson for this payload."""


def _parse_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise _Unsure
    return value


def _parse_int(text: str) -> int:
    if len(text) > 18:  # orjson turns ints past 64 bits into floats, or refuses them
        raise _Unsure
    return int(text)


def _no_constant(name: str) -> float:
    raise _Unsure


class _Stepper:
    def __init__(self, text: str) -> None:
        self.text = text
        self.done_at = 0  # where the last step ended
        decoder = json.JSONDecoder(parse_float=_parse_float, parse_int=_parse_int,
                                   parse_constant=_no_constant, strict=True)
        self.scan_once: Any = decoder.scan_once  # type: ignore[attr-defined]
        self.scanstring: Any = json.decoder.scanstring  # type: ignore[attr-defined]

    def skip(self, idx: int) -> int:
        text, n = self.text, len(self.text)
        while idx < n and text[idx] in _WS:
            idx += 1
        return idx

    def value(self, idx: int, depth: int) -> Any:  # a generator: yields between steps
        text = self.text
        idx = self.skip(idx)
        if idx >= len(text):
            raise _Unsure
        char = text[idx]
        if depth < _WALK_DEPTH and char == "{":
            return (yield from self.members(idx + 1, depth))
        if depth < _WALK_DEPTH and char == "[":
            return (yield from self.items(idx + 1, depth))
        try:
            value, end = self.scan_once(text, idx)
        except (StopIteration, ValueError, RecursionError):
            raise _Unsure from None
        if end - self.done_at > STEP_BYTES:
            self.done_at = end
            yield
        return value, end

    def members(self, idx: int, depth: int) -> Any:
        text = self.text
        out: dict[str, Any] = {}
        idx = self.skip(idx)
        if idx < len(text) and text[idx] == "}":
            return out, idx + 1
        while True:
            if idx >= len(text) or text[idx] != '"':
                raise _Unsure
            try:
                key, idx = self.scanstring(text, idx + 1, True)
            except ValueError:
                raise _Unsure from None
            idx = self.skip(idx)
            if idx >= len(text) or text[idx] != ":":
                raise _Unsure
            out[key], idx = yield from self.value(idx + 1, depth + 1)
            idx = self.skip(idx)
            if idx < len(text) and text[idx] == ",":
                idx = self.skip(idx + 1)
                continue
            if idx < len(text) and text[idx] == "}":
                return out, idx + 1
            raise _Unsure

    def items(self, idx: int, depth: int) -> Any:
        text = self.text
        out: list[Any] = []
        idx = self.skip(idx)
        if idx < len(text) and text[idx] == "]":
            return out, idx + 1
        while True:
            item, idx = yield from self.value(idx, depth + 1)
            out.append(item)
            idx = self.skip(idx)
            if idx < len(text) and text[idx] == ",":
                idx += 1
                continue
            if idx < len(text) and text[idx] == "]":
                return out, idx + 1
            raise _Unsure


def decode_request_steps(payload: bytes, max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
                         ) -> Steps[Request]:
    """:func:`decode_request` as a generator that yields every ~``STEP_BYTES`` decoded.

    ``request = yield from decode_request_steps(payload)``, or drive it with ``next()`` and
    let the event loop run between steps. Same result and same errors as
    :func:`decode_request`.
    """
    if len(payload) > max_bytes or b"\\u" in payload:
        return decode_request(payload, max_bytes)
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        return decode_request(payload, max_bytes)
    yield
    stepper = _Stepper(text)
    try:
        obj, end = yield from stepper.value(0, 0)
        if stepper.skip(end) != len(text) or not isinstance(obj, dict):
            raise _Unsure
    except _Unsure:
        return decode_request(payload, max_bytes)
    return _check_envelope(obj)


def _json_type(value: object) -> str:
    return {list: "an array", str: "a string", int: "a number", float: "a number",
            bool: "a boolean"}.get(type(value), "null")


_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxstring, _REPR.maxother = 3, 40, 40


def short(value: object, limit: int = 40) -> str:
    """A bounded, recursion-safe repr of a client value for error messages."""
    text = _REPR.repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def ok_reply(rid: str, result: object, seq: int | None = None) -> bytes:
    """Encode a success reply.

    ``seq``: the engine's state-stream counter when the result was computed, so a console
    can tell a snapshot older than a delta it already applied
    (``docs/protocols/console-state.md``).
    """
    reply: dict[str, object] = {"id": rid, "ok": True, "result": result}
    if seq is not None:
        reply["seq"] = seq
    return dumps(reply)


def error_reply(rid: str | None, code: str, message: str, **details: object) -> bytes:
    """Encode an error reply; ``details`` name the device, parameter, value, etc."""
    clean = {k: v for k, v in details.items()
             if not (isinstance(v, float) and not math.isfinite(v))}
    try:
        return dumps({"id": rid, "ok": False,
                      "error": {"code": code, "message": message, **clean}})
    except (TypeError, ValueError):  # a detail echoing a hostile value: send it as text
        shown = {k: short(v, 200) for k, v in clean.items()}
        return dumps({"id": rid, "ok": False,
                      "error": {"code": code, "message": message, **shown}})


def device_topic(name: str) -> str:
    """PUB topic of one device."""
    return DEVICE_TOPIC_PREFIX + name
