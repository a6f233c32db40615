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
from dataclasses import dataclass, field
from typing import Any

import orjson

ROLES: tuple[str, ...] = ("operator", "engineer", "producer", "viewer")
ENGINE_TOPIC = "engine"
DEVICE_TOPIC_PREFIX = "device."
TRACKING_TOPIC_PREFIX = "tracking."


class ProtocolError(ValueError):
    """A request that is not a valid command envelope."""


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
    except TypeError:  # e.g. an int beyond 64 bits, echoed back from a hostile request
        return json.dumps(obj, separators=(",", ":"), ensure_ascii=False,
                          default=_json_default).encode()


def _reject_constant(name: str) -> float:
    raise ProtocolError(f"{name} is not valid JSON")


def decode_request(payload: bytes) -> Request:
    """Decode and check a request envelope.

    Raises:
        ProtocolError: with what is wrong; the id is kept in ``args`` when known.
    """
    if len(payload) > 1_000_000:
        raise ProtocolError("request larger than 1 MB")
    try:
        obj = json.loads(payload.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ProtocolError(f"request is not UTF-8 JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise ProtocolError("request must be a JSON object")
    rid = obj.get("id")
    if not isinstance(rid, (str, int)) or isinstance(rid, bool):
        raise ProtocolError("request needs an 'id' (string or integer)")
    cmd = obj.get("cmd")
    if not isinstance(cmd, str) or not cmd:
        raise ProtocolError("request needs a 'cmd' string")
    args = obj.get("args", {})
    if not isinstance(args, dict):
        raise ProtocolError("'args' must be a JSON object")
    role = obj.get("role", "viewer")
    if role not in ROLES:
        raise ProtocolError(f"'role' must be one of {', '.join(ROLES)}, got {role!r}")
    user = obj.get("user", "anonymous")
    if not isinstance(user, str):
        raise ProtocolError("'user' must be a string")
    return Request(id=str(rid), cmd=cmd, args=args, role=role, user=user[:64])


def request_id_of(payload: bytes) -> str | None:
    """Best-effort id of a request that failed to decode, so the error can be matched."""
    try:
        obj = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return None
    if isinstance(obj, dict) and isinstance(obj.get("id"), (str, int)):
        return str(obj["id"])
    return None


def ok_reply(rid: str, result: object) -> bytes:
    """Encode a success reply."""
    return dumps({"id": rid, "ok": True, "result": result})


def error_reply(rid: str | None, code: str, message: str, **details: object) -> bytes:
    """Encode an error reply; ``details`` name the device, parameter, value, etc."""
    clean = {k: v for k, v in details.items()
             if not (isinstance(v, float) and not math.isfinite(v))}
    return dumps({"id": rid, "ok": False,
                  "error": {"code": code, "message": message, **clean}})


def device_topic(name: str) -> str:
    """PUB topic of one device."""
    return DEVICE_TOPIC_PREFIX + name
