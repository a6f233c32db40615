"""Bounds on what a peer sends the farm controller, checked before any of it is used.

The controller trusts no peer (docs/decisions/0055-farm-controller-trusts-no-peer.md): a
registration, report or request with a field out of range is answered with a structured error
naming the field, the value and the allowed range, and nothing of it is applied. Pure
functions over decoded messages, so they are tested on their own.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

MAX_SLOTS = 256
"""Slots one agent may declare (a 2e6-slot registration once stalled the controller)."""
SPEED_RANGE = (0.01, 100.0)
"""Speed relative to the reference GPU (1e-310 once crashed the planner with an overflow)."""
MAX_VRAM_GB = 4096.0
MAX_GPUS = 64
MAX_MODEL_CHARS = 128
MAX_ERROR_CHARS = 2000
MAX_LINES = 100
MAX_LINE_CHARS = 500
MAX_FINISHED = 1024
MAX_ATTEMPT_ID = 2**63 - 1
MAX_EXIT_CODE = 2**31
MAX_EVENTS = 1000
MAX_JOBS_PER_SUBMIT = 1000
MAX_TASKS_PER_SUBMIT = 200_000
NODE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
NODE_ID_RULE = "1-64 letters, digits, '-', '_' or '.', starting with a letter or digit"


class FieldError(ValueError):
    """A field out of its allowed range: ``field``, the ``value`` (shortened) and ``allowed``."""

    def __init__(self, field: str, value: Any, allowed: str) -> None:
        shown = repr(value)
        if len(shown) > 80:
            shown = shown[:77] + "..."
        super().__init__(f"{field}: got {shown}; expected {allowed}")
        self.field, self.value, self.allowed = field, shown, allowed

    def to_wire(self) -> dict[str, Any]:
        """The error's fields for a reply."""
        return {"code": "bad_value", "field": self.field, "value": self.value,
                "allowed": self.allowed}


def integer(msg: dict[str, Any], key: str, lo: int, hi: int, default: int | None = None,
            field: str | None = None) -> int:
    """An integer field in ``[lo, hi]`` (booleans and floats are not integers)."""
    value = msg.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise FieldError(field or key, value, f"an integer in [{lo}, {hi}]")
    return value


def number(msg: dict[str, Any], key: str, lo: float, hi: float, default: float | None = None,
           field: str | None = None) -> float:
    """A finite number in ``[lo, hi]``."""
    value = msg.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not math.isfinite(value) or not lo <= value <= hi:
        raise FieldError(field or key, value, f"a number in [{lo:g}, {hi:g}]")
    return float(value)


def text(msg: dict[str, Any], key: str, max_chars: int, default: str | None = None,
         field: str | None = None) -> str:
    """A string of at most ``max_chars`` characters."""
    value = msg.get(key, default)
    if not isinstance(value, str) or len(value) > max_chars:
        raise FieldError(field or key, value, f"a string of at most {max_chars} characters")
    return value


def node_id(msg: dict[str, Any], key: str = "node_id") -> str:
    """An agent's node id."""
    value = msg.get(key)
    if not isinstance(value, str) or not NODE_ID.match(value):
        raise FieldError(key, value, NODE_ID_RULE)
    return value


def attempt_id(msg: dict[str, Any], key: str = "attempt", field: str | None = None) -> int:
    """An attempt id (a positive 63-bit integer)."""
    return integer(msg, key, 1, MAX_ATTEMPT_ID, field=field)


def attempt_ids(msg: dict[str, Any], key: str, max_items: int) -> set[int]:
    """A list of attempt ids (default empty)."""
    values = msg.get(key, [])
    if not isinstance(values, list) or len(values) > max_items:
        raise FieldError(key, values, f"a list of at most {max_items} attempt ids")
    return {attempt_id({"v": v}, "v", f"{key}[{i}]") for i, v in enumerate(values)}


def lines(msg: dict[str, Any], key: str = "lines") -> list[str]:
    """Output lines (each cut to MAX_LINE_CHARS)."""
    values = msg.get(key, [])
    if not isinstance(values, list) or len(values) > MAX_LINES \
            or not all(isinstance(v, str) for v in values):
        raise FieldError(key, values, f"a list of at most {MAX_LINES} strings")
    return [v[:MAX_LINE_CHARS] for v in values]


@dataclass(frozen=True)
class Finished:
    """An agent's report that an attempt ended."""

    attempt: int
    ok: bool
    exit_code: int | None
    error: str
    lines: list[str]


def finished(msg: dict[str, Any], where: str = "") -> Finished:
    """Validate a ``finished`` report (``where`` prefixes field names, e.g. ``finished[0].``)."""
    if not isinstance(msg, dict):
        raise FieldError(where.rstrip(".") or "finished", msg, "a finished report object")
    ok = msg.get("ok", False)
    if not isinstance(ok, bool):
        raise FieldError(f"{where}ok", ok, "true or false")
    code = msg.get("exit_code")
    if code is not None:
        code = integer(msg, "exit_code", -MAX_EXIT_CODE, MAX_EXIT_CODE, field=f"{where}exit_code")
    error = msg.get("error") or ""
    if not isinstance(error, str):
        raise FieldError(f"{where}error", error, "a string")
    return Finished(attempt_id(msg, field=f"{where}attempt"), ok, code, error[:MAX_ERROR_CHARS],
                    lines({"lines": msg.get("lines", [])}))


@dataclass(frozen=True)
class Registration:
    """A validated ``register`` message."""

    node_id: str
    slots: int
    vram_gb: float
    speed: float
    gpus: list[dict[str, Any]]
    running: set[int]
    finished: list[Finished]


def registration(msg: dict[str, Any]) -> Registration:
    """Validate a ``register`` message: every value bounded, every string short."""
    nid = node_id(msg)
    slots = integer(msg, "slots", 1, MAX_SLOTS)
    vram = number(msg, "vram_gb", 0.0, MAX_VRAM_GB, default=0.0)
    speed = number(msg, "speed", *SPEED_RANGE, default=1.0)
    raw_gpus = msg.get("gpus", [])
    if not isinstance(raw_gpus, list) or len(raw_gpus) > MAX_GPUS:
        raise FieldError("gpus", raw_gpus, f"a list of at most {MAX_GPUS} GPUs")
    gpus = []
    for i, g in enumerate(raw_gpus):
        if not isinstance(g, dict):
            raise FieldError(f"gpus[{i}]", g, "an object {index, model, vram_gb}")
        gpus.append({
            "index": integer(g, "index", 0, MAX_GPUS - 1, default=i, field=f"gpus[{i}].index"),
            "model": text(g, "model", MAX_MODEL_CHARS, default="", field=f"gpus[{i}].model"),
            "vram_gb": number(g, "vram_gb", 0.0, MAX_VRAM_GB, default=0.0,
                              field=f"gpus[{i}].vram_gb"),
        })
    running = attempt_ids(msg, "running", MAX_SLOTS)
    raw_fin = msg.get("finished", [])
    if not isinstance(raw_fin, list) or len(raw_fin) > MAX_FINISHED:
        raise FieldError("finished", raw_fin, f"a list of at most {MAX_FINISHED} reports")
    done = [finished(f, f"finished[{i}].") for i, f in enumerate(raw_fin)]
    return Registration(nid, slots, vram, speed, gpus, running, done)
