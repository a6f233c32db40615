"""Parse and validate the ``stagectl book solve`` JSON input (docs/booking-json.md).

Hand-written rather than generated so that every error names the JSON path, what was
expected and what was found, e.g. ``bookings[3].duration_minutes: must be > 0, got -15``.
All errors are collected, not just the first.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from scheduler.booking.model import (
    DEFAULT_TIMEZONE,
    Booking,
    Phase,
    Pool,
    Problem,
    Stage,
    Status,
    Window,
)

T = TypeVar("T")

_STAGE_KEYS = {
    "id",
    "capabilities",
    "changeover_minutes",
    "open",
    "outages",
    "site",
    "timezone",
    "day_rate_cny",
    "prelight_strike_rate_cny",
    "wall_width_m",
    "wall_height_m",
    "pixel_pitch_mm",
}
_POOL_KEYS = {"id", "capacity", "kind"}
_BOOKING_KEYS = {
    "id",
    "priority",
    "status",
    "hold_rank",
    "duration_minutes",
    "earliest_start",
    "latest_end",
    "requires",
    "stages",
    "pools",
    "stage",
    "start",
    "production",
    "contact",
    "phases",
    "prefer_stages",
}
_TOP_KEYS = {"slot_minutes", "stages", "pools", "bookings"}
_INPUT_STATUSES = {Status.REQUESTED, Status.HOLD, Status.CONFIRMED}


class BookingInputError(ValueError):
    """Invalid booking input; ``errors`` holds one ``"path: what is wrong"`` line each."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors


_ABSENT: Any = object()  # a required key that is missing (see _Ctx.required)


class _Ctx:
    """Collects errors while walking the document."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def err(self, path: str, message: str) -> None:
        self.errors.append(f"{path}: {message}")

    def obj(self, value: Any, path: str, keys: set[str]) -> dict[str, Any] | None:
        if not isinstance(value, dict):
            self.err(path, f"must be an object, got {_show(value)}")
            return None
        for key in sorted(set(value) - keys):
            self.err(f"{path}.{key}", f"unknown field (expected one of {sorted(keys)})")
        return value

    def required(self, d: dict[str, Any], key: str, path: str) -> Any:
        """``d[key]``, or (with "is required" said) ``_ABSENT``, which the checks pass over."""
        if key not in d:
            self.err(f"{path}.{key}", "is required")
            return _ABSENT
        return d[key]

    def string(self, value: Any, path: str) -> str | None:
        if value is _ABSENT:  # "is required" said already: not "got null" too
            return None
        if not isinstance(value, str) or not value:
            self.err(path, f"must be a non-empty string, got {_show(value)}")
            return None
        return value

    def integer(self, value: Any, path: str, minimum: int | None = None) -> int | None:
        if value is _ABSENT:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            self.err(path, f"must be an integer, got {_show(value)}")
            return None
        if minimum is not None and value < minimum:
            rel = "> 0" if minimum == 1 else f">= {minimum}"
            self.err(path, f"must be {rel}, got {value}")
            return None
        return value

    def number(self, value: Any, path: str) -> float | None:
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            self.err(path, f"must be a number >= 0, got {_show(value)}")
            return None
        return float(value)

    def time(self, value: Any, path: str) -> datetime | None:
        if value is _ABSENT:
            return None
        if not isinstance(value, str):
            self.err(path, f"must be an ISO 8601 time with offset, got {_show(value)}")
            return None
        try:
            dt = datetime.fromisoformat(value)
        except ValueError:
            self.err(path, f"must be an ISO 8601 time with offset, got {_show(value)}")
            return None
        if dt.tzinfo is None or dt.utcoffset() is None:
            self.err(path, f"must carry a UTC offset (e.g. +08:00), got {_show(value)}")
            return None
        if dt.second or dt.microsecond:
            self.err(path, f"must be on a whole minute, got {_show(value)}")
            return None
        return dt

    def windows(self, value: Any, path: str) -> tuple[Window, ...]:
        if not isinstance(value, list):
            self.err(path, f"must be a list of [start, end] pairs, got {_show(value)}")
            return ()
        out: list[Window] = []
        for i, pair in enumerate(value):
            p = f"{path}[{i}]"
            if not isinstance(pair, list) or len(pair) != 2:
                self.err(p, f"must be a [start, end] pair, got {_show(pair)}")
                continue
            start = self.time(pair[0], f"{p}[0]")
            end = self.time(pair[1], f"{p}[1]")
            if start is not None and end is not None:
                if end <= start:
                    self.err(p, f"end must be after start, got {pair[0]} .. {pair[1]}")
                else:
                    out.append(Window(start, end))
        return tuple(out)

    def str_list(self, value: Any, path: str) -> tuple[str, ...]:
        if not isinstance(value, list):
            self.err(path, f"must be a list of strings, got {_show(value)}")
            return ()
        out = []
        for i, item in enumerate(value):
            s = self.string(item, f"{path}[{i}]")
            if s is not None:
                out.append(s)
        return tuple(out)

    def optional(self, d: dict[str, Any], key: str, path: str, fn: Callable[..., T]) -> T | None:
        if key not in d or d[key] is None:
            return None
        return fn(d[key], f"{path}.{key}")


def _show(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _stage(ctx: _Ctx, raw: Any, path: str) -> Stage | None:
    d = ctx.obj(raw, path, _STAGE_KEYS)
    if d is None:
        return None
    sid = ctx.string(ctx.required(d, "id", path), f"{path}.id")
    caps = ctx.optional(d, "capabilities", path, ctx.str_list) or ()
    changeover = ctx.optional(d, "changeover_minutes", path, ctx.integer)
    if changeover is not None and changeover < 0:
        ctx.err(f"{path}.changeover_minutes", f"must be >= 0, got {changeover}")
    tz = d.get("timezone", DEFAULT_TIMEZONE)
    try:
        ZoneInfo(str(tz))
    except (ZoneInfoNotFoundError, ValueError):
        ctx.err(f"{path}.timezone", f"must be an IANA time zone, got {_show(tz)}")
    site = ctx.optional(d, "site", path, ctx.string) or ""
    nums = {
        k: ctx.optional(d, k, path, ctx.number)
        for k in ("day_rate_cny", "prelight_strike_rate_cny", "wall_width_m", "wall_height_m",
                  "pixel_pitch_mm")
    }
    opens = ctx.optional(d, "open", path, ctx.windows) or ()
    outages = ctx.optional(d, "outages", path, ctx.windows) or ()
    if sid is None:
        return None
    return Stage(
        id=sid,
        capabilities=frozenset(caps),
        changeover_minutes=max(changeover or 0, 0),
        open=opens,
        outages=outages,
        site=site,
        timezone=str(tz),
        day_rate_cny=nums["day_rate_cny"] or 0.0,
        prelight_strike_rate_cny=nums["prelight_strike_rate_cny"] or 0.0,
        wall_width_m=nums["wall_width_m"],
        wall_height_m=nums["wall_height_m"],
        pixel_pitch_mm=nums["pixel_pitch_mm"],
    )


def _pool(ctx: _Ctx, raw: Any, path: str) -> Pool | None:
    d = ctx.obj(raw, path, _POOL_KEYS)
    if d is None:
        return None
    pid = ctx.string(ctx.required(d, "id", path), f"{path}.id")
    cap = ctx.integer(ctx.required(d, "capacity", path), f"{path}.capacity", minimum=0)
    kind = ctx.optional(d, "kind", path, ctx.string) or ""
    if pid is None or cap is None:
        return None
    return Pool(pid, cap, kind)


def _phases(ctx: _Ctx, raw: Any, path: str) -> tuple[Phase, ...]:
    if not isinstance(raw, list) or not raw:
        ctx.err(path, f"must be a non-empty list of phases, got {_show(raw)}")
        return ()
    out = []
    for i, item in enumerate(raw):
        p = f"{path}[{i}]"
        d = ctx.obj(item, p, {"name", "duration_minutes"})
        if d is None:
            continue
        name = ctx.string(ctx.required(d, "name", p), f"{p}.name")
        dur = ctx.integer(ctx.required(d, "duration_minutes", p), f"{p}.duration_minutes", 1)
        if name is not None and dur is not None:
            out.append(Phase(name, dur))
    return tuple(out)


def _pool_needs(ctx: _Ctx, raw: Any, path: str) -> tuple[tuple[str, int], ...]:
    if not isinstance(raw, dict):
        ctx.err(path, f"must be an object of pool id -> amount, got {_show(raw)}")
        return ()
    out = []
    for pid, amount in raw.items():
        a = ctx.integer(amount, f"{path}.{pid}", minimum=1)
        if a is not None:
            out.append((str(pid), a))
    return tuple(sorted(out))


def _booking(ctx: _Ctx, raw: Any, path: str, slot_minutes: int) -> Booking | None:
    d = ctx.obj(raw, path, _BOOKING_KEYS)
    if d is None:
        return None
    n_before = len(ctx.errors)
    bid = ctx.string(ctx.required(d, "id", path), f"{path}.id")
    priority = ctx.integer(ctx.required(d, "priority", path), f"{path}.priority", minimum=1)
    status_raw = d.get("status", "requested")
    status: Status | None = None
    if status_raw not in {s.value for s in _INPUT_STATUSES}:
        ctx.err(f"{path}.status",
                f"must be one of requested, hold, confirmed, got {_show(status_raw)}")
    else:
        status = Status(status_raw)
    hold_rank = ctx.optional(d, "hold_rank", path, lambda v, p: ctx.integer(v, p, minimum=1))
    phases = ctx.optional(d, "phases", path, lambda v, p: _phases(ctx, v, p)) or ()
    duration: int | None
    if "duration_minutes" in d:
        duration = ctx.integer(d["duration_minutes"], f"{path}.duration_minutes", minimum=1)
        if duration is not None and phases and sum(p.duration_minutes for p in phases) != duration:
            ctx.err(
                f"{path}.phases",
                f"phase durations sum to {sum(p.duration_minutes for p in phases)}, "
                f"but duration_minutes is {duration}",
            )
    elif phases:
        duration = sum(p.duration_minutes for p in phases)
    else:
        ctx.err(f"{path}.duration_minutes", "is required")
        duration = None
    earliest = ctx.time(ctx.required(d, "earliest_start", path), f"{path}.earliest_start")
    latest = ctx.time(ctx.required(d, "latest_end", path), f"{path}.latest_end")
    if earliest is not None and latest is not None and latest <= earliest:
        ctx.err(f"{path}.latest_end", f"must be after earliest_start, got {d['latest_end']}")
    requires = ctx.optional(d, "requires", path, ctx.str_list) or ()
    stages = ctx.optional(d, "stages", path, ctx.str_list) or ()
    prefer = ctx.optional(d, "prefer_stages", path, ctx.str_list) or ()
    pools = ctx.optional(d, "pools", path, lambda v, p: _pool_needs(ctx, v, p)) or ()
    stage = ctx.optional(d, "stage", path, ctx.string)
    start = ctx.optional(d, "start", path, ctx.time)
    # given, not parsed: a start that failed to parse already has its own error
    stage_given, start_given = d.get("stage") is not None, d.get("start") is not None
    if stage_given != start_given:
        ctx.err(f"{path}.{'stage' if start_given else 'start'}",
                "stage and start must be given together")
    if status is Status.CONFIRMED and not (stage_given and start_given):
        ctx.err(path, "a confirmed booking needs both stage and start")
    if status is Status.HOLD and hold_rank is None:
        hold_rank = 1
    production = ctx.optional(d, "production", path, ctx.string) or ""
    contact = ctx.optional(d, "contact", path, ctx.string) or ""
    if len(ctx.errors) > n_before:
        return None
    assert bid and priority and duration and earliest and latest and status
    return Booking(
        id=bid,
        priority=priority,
        duration_minutes=duration,
        earliest_start=earliest,
        latest_end=latest,
        status=status,
        hold_rank=hold_rank if status is Status.HOLD else None,
        requires=frozenset(requires),
        stages=stages,
        pools=pools,
        stage=stage,
        start=start,
        production=production,
        contact=contact,
        phases=phases,
        prefer_stages=prefer,
    )


def problem_from_dict(doc: Any) -> Problem:
    """Validate a decoded JSON document and build a :class:`Problem`.

    Raises:
        BookingInputError: with one ``"path: what is wrong"`` line per problem found.
    """
    ctx = _Ctx()
    d = ctx.obj(doc, "$", _TOP_KEYS)
    if d is None:
        raise BookingInputError(ctx.errors)
    slot = d.get("slot_minutes", 15)
    slot_ok = ctx.integer(slot, "slot_minutes", minimum=1)
    if slot_ok is not None and 1440 % slot_ok:
        ctx.err("slot_minutes", f"must divide a day (1440 minutes), got {slot_ok}")
        slot_ok = None
    slot_minutes = slot_ok or 15

    def items(key: str) -> list[Any]:
        raw = d.get(key, [])
        if not isinstance(raw, list):
            ctx.err(key, f"must be a list, got {_show(raw)}")
            return []
        return raw

    stages = [s for i, r in enumerate(items("stages")) if (s := _stage(ctx, r, f"stages[{i}]"))]
    pools = [p for i, r in enumerate(items("pools")) if (p := _pool(ctx, r, f"pools[{i}]"))]
    raw_bookings = items("bookings")
    bookings: list[tuple[int, Booking]] = []
    for i, r in enumerate(raw_bookings):
        b = _booking(ctx, r, f"bookings[{i}]", slot_minutes)
        if b is not None:
            bookings.append((i, b))
    if "stages" in d and not stages and not ctx.errors:
        ctx.err("stages", "must list at least one stage")

    _unique(ctx, "stages", list(enumerate(s.id for s in stages)))
    _unique(ctx, "pools", list(enumerate(p.id for p in pools)))
    _unique(ctx, "bookings", [(i, b.id) for i, b in bookings])
    _check_references(ctx, bookings, {s.id for s in stages}, {p.id for p in pools})
    if ctx.errors:
        raise BookingInputError(ctx.errors)
    return Problem(slot_minutes, tuple(stages), tuple(pools), tuple(b for _, b in bookings))


def bookings_for(problem: Problem, raw: list[Any]) -> list[Booking]:
    """Validate booking documents against an already built problem's stages, pools and slot.

    The same checks and messages as :func:`problem_from_dict` for the ``bookings`` part; the
    stages are not parsed again (the booking store reads every booking against one config).

    Raises:
        BookingInputError: with one ``"path: what is wrong"`` line per problem found.
    """
    ctx = _Ctx()
    bookings: list[tuple[int, Booking]] = []
    for i, r in enumerate(raw):
        b = _booking(ctx, r, f"bookings[{i}]", problem.slot_minutes)
        if b is not None:
            bookings.append((i, b))
    _unique(ctx, "bookings", [(i, b.id) for i, b in bookings])
    _check_references(ctx, bookings, {s.id for s in problem.stages},
                      {p.id for p in problem.pools})
    if ctx.errors:
        raise BookingInputError(ctx.errors)
    return [b for _, b in bookings]


def _check_references(ctx: _Ctx, bookings: list[tuple[int, Booking]], stage_ids: set[str],
                      pool_ids: set[str]) -> None:
    for i, b in bookings:
        where = f"bookings[{i}]"
        for j, sid in enumerate(b.stages):
            if sid not in stage_ids:
                ctx.err(f"{where}.stages[{j}]", f"unknown stage {sid!r}")
        for j, sid in enumerate(b.prefer_stages):
            if sid not in stage_ids:
                ctx.err(f"{where}.prefer_stages[{j}]", f"unknown stage {sid!r}")
        for pid, _ in b.pools:
            if pid not in pool_ids:
                ctx.err(f"{where}.pools.{pid}", f"unknown pool {pid!r}")
        if b.stage is not None and b.stage not in stage_ids:
            ctx.err(f"{where}.stage", f"unknown stage {b.stage!r}")
        if b.start is not None:
            end = b.end
            assert end is not None
            if b.start < b.earliest_start or end > b.latest_end:
                ctx.err(f"{where}.start",
                        "placement lies outside earliest_start..latest_end")


def _unique(ctx: _Ctx, key: str, ids: list[tuple[int, str]]) -> None:
    seen: set[str] = set()
    for i, x in ids:
        if x in seen:
            ctx.err(f"{key}[{i}].id", f"duplicate id {x!r}")
        seen.add(x)


def load_problem(path: Path) -> Problem:
    """Read and validate a JSON input file.

    Raises:
        BookingInputError: unreadable file, invalid JSON, or invalid content.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise BookingInputError([f"{path}: cannot read ({exc.strerror})"]) from exc
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        where = f"{path}:{exc.lineno}:{exc.colno}"
        raise BookingInputError([f"{where}: invalid JSON ({exc.msg})"]) from exc
    return problem_from_dict(doc)


def booking_to_dict(b: Booking) -> dict[str, Any]:
    """The input-contract form of a booking (inverse of the parser)."""
    d: dict[str, Any] = {
        "id": b.id,
        "priority": b.priority,
        "status": b.status.value,
        "duration_minutes": b.duration_minutes,
        "earliest_start": b.earliest_start.isoformat(),
        "latest_end": b.latest_end.isoformat(),
        "requires": sorted(b.requires),
        "pools": dict(b.pools),
    }
    if b.hold_rank is not None and b.status is Status.HOLD:
        d["hold_rank"] = b.hold_rank
    if b.stages:
        d["stages"] = list(b.stages)
    if b.prefer_stages:
        d["prefer_stages"] = list(b.prefer_stages)
    if b.stage is not None and b.start is not None:
        d["stage"] = b.stage
        d["start"] = b.start.isoformat()
    if b.production:
        d["production"] = b.production
    if b.contact:
        d["contact"] = b.contact
    if b.phases:
        d["phases"] = [{"name": p.name, "duration_minutes": p.duration_minutes} for p in b.phases]
    return d


def stage_to_dict(s: Stage) -> dict[str, Any]:
    """The input-contract form of a stage (outages included)."""
    d: dict[str, Any] = {
        "id": s.id,
        "site": s.site,
        "timezone": s.timezone,
        "capabilities": sorted(s.capabilities),
        "changeover_minutes": s.changeover_minutes,
        "day_rate_cny": s.day_rate_cny,
        "prelight_strike_rate_cny": s.prelight_strike_rate_cny,
        "outages": [[w.start.isoformat(), w.end.isoformat()] for w in s.outages],
    }
    if s.open:
        d["open"] = [[w.start.isoformat(), w.end.isoformat()] for w in s.open]
    for key in ("wall_width_m", "wall_height_m", "pixel_pitch_mm"):
        if getattr(s, key) is not None:
            d[key] = getattr(s, key)
    return d
