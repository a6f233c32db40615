"""The farm's wire codec: one JSON object per ZeroMQ frame, with a ``type`` key.

Agents and clients are DEALERs, the controller a ROUTER (docs/farm-dispatch.md lists every
message). Pure functions, so the codec is tested and fuzzed on its own.
"""

from __future__ import annotations

from typing import Any

import orjson

PROTOCOL_VERSION = 1
DEFAULT_CONTROLLER = "tcp://127.0.0.1:5580"

# agent -> controller
REGISTER, HEARTBEAT, PROGRESS, LOG, FINISHED, BYE = (
    "register", "heartbeat", "progress", "log", "finished", "bye")
# controller -> agent
WELCOME, ASSIGN, CANCEL, ACK, REREGISTER, REFUSE = (
    "welcome", "assign", "cancel", "ack", "reregister", "refuse")
# client -> controller (each answered by REPLY)
CLIENT_REQUESTS = frozenset({"submit", "status", "nodes", "cancel_job", "retry_job", "cost",
                             "events", "ping"})
REPLY = "reply"
MAX_MESSAGE_BYTES = 1 << 20


class ProtocolError(ValueError):
    """A frame that is not a farm message."""


def encode(message: dict[str, Any]) -> bytes:
    """Message -> frame."""
    if "type" not in message:
        raise ProtocolError(f"message has no type: {message!r}")
    return orjson.dumps(message)


def decode(frame: bytes, max_bytes: int = MAX_MESSAGE_BYTES) -> dict[str, Any]:
    """Frame -> message; raises :class:`ProtocolError` on anything but a typed JSON object.

    Malformed input is refused, never half-read: invalid UTF-8, integers beyond 64 bits that
    cannot be a finite double, nesting deeper than orjson's 1024 levels, a non-object, a
    missing or non-string ``type``, or more than ``max_bytes``.
    """
    if len(frame) > max_bytes:
        raise ProtocolError(f"message of {len(frame)} bytes exceeds {max_bytes}")
    try:
        message = orjson.loads(frame)
    except orjson.JSONDecodeError as exc:
        raise ProtocolError(f"not JSON: {exc}") from exc
    if not isinstance(message, dict) or not isinstance(message.get("type"), str) \
            or len(message["type"]) > 64:
        raise ProtocolError("expected a JSON object with a string 'type'")
    return message
