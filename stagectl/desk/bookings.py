"""The booking store behind the desk: a pool of connections, JSON shapes, times, refusals.

``BookingStore`` holds one sqlite3 connection; FastAPI runs the (sync) endpoints on a thread
pool, so each request checks a store out of :class:`StorePool` and gives it back: a
connection is never used by two threads at once, the number of connections is bounded, and
every one is closed when the desk stops. Concurrency between connections (and processes) is
the store's own: every change runs in ``BEGIN IMMEDIATE``.

Times in replies are ISO 8601 with the site's offset (:func:`stagectl.cli.timefmt.iso`); a
time sent without an offset is read in the site's zone by the one parser,
:func:`stagectl.cli.timefmt.parse_time`, and the reply's ``notes`` say so.
"""

from __future__ import annotations

import json
import queue
import re
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from scheduler.booking.checker import Violation, check_plan
from scheduler.booking.model import Assignment, Booking, Problem, Stage, Status, Window
from scheduler.booking.parse import BookingInputError, booking_to_dict
from scheduler.booking.store import BookingStore, Record
from scheduler.sql import is_postgres_url
from stagectl.cli.book import _booking_zone, _request_zones, _zones
from stagectl.cli.timefmt import TimeInputError, fmt_span, fmt_time, iso, parse_time
from stagectl.desk import DeskError

__all__ = [
    "StorePool",
    "booking_json",
    "explain_refusal",
    "read_request",
    "read_time",
    "stage_json",
]

_TIME_FIELDS = ("earliest_start", "latest_end", "start")
PLACEHOLDER_RANK = 10**6  # BookingStore.hold's rank before it ranks the stage


def _utc_now() -> datetime:
    return datetime.now(UTC)


class StorePool:
    """At most ``size`` stores on one database file, checked out one request at a time.

    Args:
        path: the booking database (created, with its folder's parents, when missing).
        size: most connections open at once; a request waits up to ``wait_s`` for one.
        clock: the stores' clock (tests inject one).
    """

    def __init__(self, path: Path | str, size: int = 8, clock: Callable[[], datetime] = _utc_now,
                 wait_s: float = 30.0) -> None:
        self.path: Path | str = path if is_postgres_url(path) else Path(path)
        self.size = size
        self.clock = clock
        self.wait_s = wait_s
        self._idle: queue.LifoQueue[BookingStore] = queue.LifoQueue()
        self._all: list[BookingStore] = []
        self._lock = threading.Lock()
        self._write = threading.Lock()
        self._closed = False
        if isinstance(self.path, Path):
            self.path.parent.mkdir(parents=True, exist_ok=True)
        first = BookingStore(self.path, clock, create=True)
        self._all.append(first)
        self._idle.put(first)

    @contextmanager
    def store(self, write: bool = False) -> Iterator[BookingStore]:
        """A store for this thread until the block ends.

        Args:
            write: the block changes the store: hold this process's write lock meanwhile.
                SQLite lets one writer in at a time anyway (``BEGIN IMMEDIATE``, across
                processes too); queueing the desk's own writers on a lock spares them
                SQLite's busy handler, which sleeps up to 100 ms between tries.
        """
        if self._closed:
            raise DeskError(503, "store_unavailable", reason="the desk is stopping")
        with self._checkout() as s:
            if write:  # connection first, then the lock: a lock holder never waits for one
                with self.writing():
                    yield s
            else:
                yield s

    @contextmanager
    def writing(self) -> Iterator[None]:
        """This process's write lock (see :meth:`store`); take it while holding a store.

        SQLite only: on PostgreSQL the store's own advisory locks let changes on different
        stages run at once (and share commits' WAL flushes), so the desk queues nothing.
        """
        if not isinstance(self.path, Path):
            yield
            return
        if not self._write.acquire(timeout=self.wait_s):
            raise DeskError(503, "store_unavailable",
                            reason=f"waited {self.wait_s:g} s for the other changes to finish")
        try:
            yield
        finally:
            self._write.release()

    @contextmanager
    def _checkout(self) -> Iterator[BookingStore]:
        try:
            s = self._idle.get_nowait()
        except queue.Empty:
            s = self._grow() or self._wait()
        try:
            yield s
        finally:
            if s.conn.in_transaction:  # a failure between BEGIN and COMMIT/ROLLBACK
                try:
                    s.conn.rollback()
                except sqlite3.Error:
                    pass
            if self._closed:
                s.close()
            else:
                self._idle.put(s)

    def _grow(self) -> BookingStore | None:
        with self._lock:
            if len(self._all) >= self.size:
                return None
            s = BookingStore(self.path, self.clock, create=False)
            self._all.append(s)
            return s

    def _wait(self) -> BookingStore:
        try:
            return self._idle.get(timeout=self.wait_s)
        except queue.Empty:
            raise DeskError(503, "store_unavailable",
                            reason=f"all {self.size} connections busy for {self.wait_s:g} s")\
                from None

    def close(self) -> None:
        """Close every idle connection now (busy ones close when given back)."""
        self._closed = True
        while True:
            try:
                self._idle.get_nowait().close()
            except queue.Empty:
                break


# --------------------------------------------------------------------------- JSON shapes


def stages_of(store: BookingStore) -> dict[str, Stage]:
    """The stored stages by id (outages recorded with ``book outage`` included)."""
    return store.configuration().stage_by_id()


def booking_json(rec: Record, stages: dict[str, Stage]) -> dict[str, Any]:
    """A booking as docs/desk-api.md shows it: times with the site's offset."""
    b = rec.booking
    tz = _booking_zone(rec, stages)
    return {
        "id": b.id,
        "status": rec.status.value,
        "production": b.production,
        "contact": b.contact,
        "priority": b.priority,
        "stage": b.stage,
        "start": iso(b.start, tz),
        "end": iso(b.end, tz),
        "timezone": tz,
        "hold_rank": b.hold_rank if rec.status is Status.HOLD else None,
        "hold_expires": iso(rec.hold_expires, tz),
        "requires": sorted(b.requires),
        "stages": list(b.stages),
        "pool": dict(b.pools),
        "earliest_start": iso(b.earliest_start, tz),
        "latest_end": iso(b.latest_end, tz),
        "duration_minutes": b.duration_minutes,
        "sequence": rec.sequence,
        "challenged_by": rec.challenged_by,
        "challenge_deadline": iso(rec.challenge_deadline, tz),
        "created_at": iso(rec.created_at, tz),
        "updated_at": iso(rec.updated_at, tz),
    }


def stage_json(stage: Stage, outages: list[tuple[str, Window, str]]) -> dict[str, Any]:
    """A stage: site, zone, capabilities, changeover, rate, open windows, outages."""
    tz = stage.timezone
    reasons = {(w.start, w.end): why for sid, w, why in outages if sid == stage.id}
    return {
        "id": stage.id,
        "site": stage.site,
        "timezone": tz,
        "capabilities": sorted(stage.capabilities),
        "changeover_minutes": stage.changeover_minutes,
        "day_rate_cny": stage.day_rate_cny,
        "prelight_strike_rate_cny": stage.prelight_strike_rate_cny,
        "windows": [{"start": iso(w.start, tz), "end": iso(w.end, tz)} for w in stage.open],
        "outages": [{"start": iso(w.start, tz), "end": iso(w.end, tz),
                     "reason": reasons.get((w.start, w.end), "")} for w in stage.outages],
        "wall_width_m": stage.wall_width_m,
        "wall_height_m": stage.wall_height_m,
        "pixel_pitch_mm": stage.pixel_pitch_mm,
    }


def history_json(store: BookingStore, rec: Record,
                 stages: dict[str, Stage]) -> list[dict[str, Any]]:
    """The booking's audit trail, times in its site's zone, with who did each change."""
    tz = _booking_zone(rec, stages)
    out = []
    for h in store.history(rec.id):
        details = dict(h.details)
        if details.get("hold_rank") == PLACEHOLDER_RANK:  # set, then ranked in the same change
            details.pop("hold_rank")
        for key in ("start", "deadline", "hold_expires", "challenge_deadline"):
            value = details.get(key)
            if isinstance(value, str):
                try:
                    details[key] = iso(datetime.fromisoformat(value), tz)
                except ValueError:
                    pass
        out.append({"seq": h.seq, "at": iso(h.at, tz), "actor": h.actor, "action": h.action,
                    "from": h.from_status, "to": h.to_status, "reason": h.reason,
                    "details": details, "timezone": tz})
    return out


# --------------------------------------------------------------------------- times


def read_time(value: Any, zones: list[str], field: str, *, end_of_day: bool = False,
              notes: list[str] | None = None) -> datetime:
    """A sent time; one without an offset is read in ``zones`` and a note says so.

    Raises:
        DeskError: 400 ``invalid`` naming the field.
    """
    if not isinstance(value, str) or len(value) > 100:
        raise DeskError(400, "invalid", {"field": field}, field=field,
                        reason=f"expected a date or time as a string, got {_show(value)}")
    try:
        parsed = parse_time(value, zones, field, end_of_day=end_of_day)
    except TimeInputError as exc:
        raise DeskError(400, "invalid", {"field": field}, field=field,
                        reason=str(exc).removeprefix(f"{field}: ")) from None
    if parsed.note and notes is not None:
        notes.append(parsed.note)
    return parsed.value


def _show(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def read_request(body: dict[str, Any], stages: dict[str, Stage]) -> tuple[dict[str, Any],
                                                                          list[str]]:
    """A ``POST /bookings`` body as a store request spec, and the notes on its times.

    The body uses the booking input contract (docs/booking-json.md); times may lack an
    offset (read in the zone of its stage, else of the stages it may use).

    Raises:
        DeskError: 400 ``invalid`` for a field that is wrong.
    """
    for key in ("status", "hold_rank"):
        if key in body:
            raise DeskError(400, "invalid", {"field": key}, field=key,
                            reason="set by the booking lifecycle, not by a request "
                                   "(use /hold and /confirm)")
    spec = dict(body)
    _check_limits(spec)
    stage = spec.get("stage") if isinstance(spec.get("stage"), str) else None
    if stage is not None and stage not in stages:
        raise DeskError(400, "invalid", {"field": "stage"}, field="stage",
                        reason=f"unknown stage {stage!r} (stages: {', '.join(sorted(stages))})")
    allowed_raw = spec.get("stages", [])
    allowed = [s for s in allowed_raw if isinstance(s, str)] \
        if isinstance(allowed_raw, list) else []
    for sid in allowed:
        if sid not in stages:
            raise DeskError(400, "invalid", {"field": "stages"}, field="stages",
                            reason=f"unknown stage {sid!r} (stages: {', '.join(sorted(stages))})")
    req_raw = spec.get("requires", [])
    requires = [c for c in req_raw if isinstance(c, str)] if isinstance(req_raw, list) else []
    known = sorted(set().union(*(s.capabilities for s in stages.values())))
    unknown = [c for c in requires if c not in known]
    if unknown:
        raise DeskError(400, "invalid", {"field": "requires"}, field="requires",
                        reason=f"unknown capability {', '.join(map(repr, unknown))} (no stage "
                               f"has it; known: {', '.join(known) or 'none'})")
    zones = _request_zones(stages, stage, allowed, requires) if stages else ["UTC"]
    notes: list[str] = []
    times: dict[str, datetime] = {}
    for key in _TIME_FIELDS:
        if key in spec and spec[key] is not None:
            times[key] = read_time(spec[key], zones, key, end_of_day=key == "latest_end",
                                   notes=notes)
            spec[key] = times[key].isoformat()
    duration = spec.get("duration_minutes")
    first, last = times.get("earliest_start"), times.get("latest_end")
    if first and last and last - first > MAX_WINDOW:
        raise DeskError(400, "invalid", {"field": "latest_end"}, field="latest_end",
                        reason=f"a window of at most {MAX_WINDOW.days} days (ask again for "
                               "later dates)")
    if isinstance(duration, int) and not isinstance(duration, bool) and duration > 0 \
            and first and last and last - first < timedelta(minutes=duration):
        raise DeskError(400, "invalid", {"field": "latest_end"}, field="latest_end",
                        reason=f"the window {fmt_span(first, last, zones[0])} ({zones[0]}) is "
                               f"shorter than duration_minutes {duration}: widen it or ask "
                               "for less time")
    return spec, notes


ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
MAX_PRIORITY = 1000
MAX_WINDOW = timedelta(days=366)
MAX_TEXT = 200


def _check_limits(spec: dict[str, Any]) -> None:
    """Bounds the booking contract leaves open, so one request cannot stall every plan.

    An id goes into URLs and calendar UIDs (letters, digits, ``_.:-``); a priority is
    multiplied into the solver's objective; free text is shown on every page.
    """
    bid = spec.get("id")
    if bid is not None and (not isinstance(bid, str) or not ID_RE.match(bid)):
        raise DeskError(400, "invalid", {"field": "id"}, field="id",
                        reason="1 to 64 letters, digits or _.:- (starting with a letter or "
                               f"digit), got {_show(bid)}")
    prio = spec.get("priority")
    if isinstance(prio, int) and not isinstance(prio, bool) and prio > MAX_PRIORITY:
        raise DeskError(400, "invalid", {"field": "priority"}, field="priority",
                        reason=f"at most {MAX_PRIORITY}, got {prio}")
    dur = spec.get("duration_minutes")
    if isinstance(dur, int) and not isinstance(dur, bool) and \
            dur > MAX_WINDOW.total_seconds() // 60:
        raise DeskError(400, "invalid", {"field": "duration_minutes"}, field="duration_minutes",
                        reason=f"at most {MAX_WINDOW.days} days of minutes, got {dur}")
    for key in ("production", "contact"):
        value = spec.get(key)
        if isinstance(value, str) and len(value) > MAX_TEXT:
            raise DeskError(400, "invalid", {"field": key}, field=key,
                            reason=f"at most {MAX_TEXT} characters, got {len(value)}")
    for key in ("requires", "stages", "prefer_stages", "phases"):
        value = spec.get(key)
        if isinstance(value, list) and len(value) > 50:
            raise DeskError(400, "invalid", {"field": key}, field=key,
                            reason=f"at most 50 items, got {len(value)}")


def input_error(exc: BookingInputError) -> DeskError:
    """A booking contract error as 400 ``invalid`` (``details.errors``: every line)."""
    first = exc.errors[0] if exc.errors else "request: invalid"
    path, _, reason = first.partition(": ")
    field = path.removeprefix("request").lstrip(".") or "request"
    return DeskError(400, "invalid", {"field": field, "errors": list(exc.errors)},
                     field=field, reason=reason or first)


# --------------------------------------------------------------------------- refusals

_CLI_HINT = re.compile(r"\s*\(`stagectl [^`]*`[^)]*\)|`stagectl [^`]*`")
_FIRST_HOLD = re.compile(r"^(\S+) holds (\S+) first \(rank (\d+)\)")
_POOL = re.compile(r"pool (\S+) needs (\d+) > capacity (\d+)")

#: Lifecycle states in Chinese (the page's words, stagectl/desk/static/i18n.js).
STATUS_ZH = {"requested": "已申请", "hold": "预留", "confirmed": "已确认", "released": "已释放",
             "completed": "已结束", "expired": "预留已过期", "cancelled": "已取消",
             "rejected": "已拒绝"}

#: (pattern of a store refusal, its Chinese); groups: booking id, then a status when named.
_STORE_ZH: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^(\S+) is (\w+); only a hold or a placed request can be confirmed"),
     "{0} 当前为{s1}，只有预留或已指定时段的申请才能确认"),
    (re.compile(r"^(\S+) has no stage and start yet"),
     "{0} 还没有摄影棚和开始时间：请先预留，或运行排期"),
    (re.compile(r"^(\S+) is (\w+); only a hold can be released"),
     "{0} 当前为{s1}，只有预留才能释放（其他情况请取消）"),
    (re.compile(r"^(\S+) is (\w+); only a requested booking can be put on hold"),
     "{0} 当前为{s1}，只有已申请的预订才能预留"),
    (re.compile(r"^(\S+) is already (\w+)"), "{0} 已经是{s1}"),
    (re.compile(r"^(\S+) must be a hold ranked 2 or lower to challenge"),
     "{0} 必须是顺位第 2 或更后的预留，才能向第一预留发起确认要求"),
    (re.compile(r"^no first hold clashes with (\S+)"), "没有与 {0} 冲突的第一预留"),
    (re.compile(r"^booking '(.+)' already exists"), "预订 {0} 已存在"),
    (re.compile(r"^bookings changed while (?:planning|re-planning)"),
     "排期期间预订有变化，请重试"),
    (re.compile(r"^outage end must be after its start"), "停用的结束时间必须晚于开始时间"),
    (re.compile(r"^unknown stage '(.+)'"), "没有摄影棚 {0}"),
    (re.compile(r"^no slot for (\S+): (.*)$"), "{0} 找不到可用时段：{1}"),
]

#: One sentence of an explanation: (English, Simplified Chinese).
Sentence = tuple[str, str]


def _local_span(a: datetime | None, b: datetime | None, tz: str) -> str:
    return f"{fmt_span(a, b, tz)} ({tz})"


def _who(rec: Record) -> Sentence:
    b = rec.booking
    state, state_zh = rec.status.value, STATUS_ZH.get(rec.status.value, rec.status.value)
    if rec.status is Status.HOLD and b.hold_rank:
        state += f" #{b.hold_rank}"
        state_zh = f"第 {b.hold_rank} 预留"
    if b.production:
        return f"{b.id} ({b.production}, {state})", f"{b.id}（{b.production}，{state_zh}）"
    return f"{b.id} ({state})", f"{b.id}（{state_zh}）"


def _violation_sentence(v: Violation, me: Booking, store: BookingStore,
                        stages: dict[str, Stage], problem: Problem) -> Sentence:
    st = stages.get(me.stage or "")
    tz = st.timezone if st else "UTC"
    sid = me.stage or "?"
    if v.kind == "overlap":
        other_id = next((i for i in v.ids if i != me.id), None)
        other = store.get(other_id) if other_id is not None else None
        if other is not None and other.booking.start is not None:
            co = st.changeover_minutes if st else 0
            when = _local_span(other.booking.start, other.booking.end, tz)
            who, who_zh = _who(other)
            en = f"{sid} is taken by {who} {when}"
            zh = f"{sid} 在 {when} 已被 {who_zh} 占用"
            if co:
                en += (f"; with its {co}-minute changeover nothing else may use {sid} within "
                       f"{co} minutes of it")
                zh += f"；换场需 {co} 分钟，其前后 {co} 分钟内 {sid} 不能再用"
            return en, zh
        return (f"{sid} is taken then by another booking (changeover included)",
                f"{sid} 此时已被其他预订占用（含换场时间）")
    if v.kind == "capability" and st is not None:
        lacks = ", ".join(sorted(me.requires - st.capabilities))
        has = ", ".join(sorted(st.capabilities))
        return (f"{sid} lacks {lacks}, which this booking requires "
                f"(it has {has or 'no special capabilities'})",
                f"{sid} 没有本预订需要的 {lacks}（它有：{has or '无特殊能力'}）")
    if v.kind == "window":
        slot = _local_span(me.start, me.end, tz)
        window = _local_span(me.earliest_start, me.latest_end, tz)
        return (f"the slot {slot} is outside the booking's window {window}",
                f"时段 {slot} 超出本预订允许的时间范围 {window}")
    if v.kind == "outage" and st is not None and me.start and me.end:
        hit = [w for w in st.outages if w.overlaps(me.start, me.end)]
        if hit:
            when = _local_span(hit[0].start, hit[0].end, tz)
            return (f"{sid} is out of service then (outage {when})", f"{sid} 在 {when} 停用")
    if v.kind == "pool":
        others = ", ".join(i for i in v.ids if i != me.id)
        m = _POOL.search(v.message)
        if m:
            pool, need, cap = m.groups()
            return (f"pool {pool} is used up then: {need} needed, capacity {cap}"
                    + (f" (with {others})" if others else ""),
                    f"资源池 {pool} 此时不够用：需要 {need}，容量 {cap}"
                    + (f"（与 {others} 同时）" if others else ""))
    if v.kind == "open" and st is not None:
        slot = _local_span(me.start, me.end, tz)
        hours = "; ".join(fmt_span(w.start, w.end, tz) for w in st.open[:3])
        return (f"{sid} is not open for all of {slot}" + (f" (open {hours})" if hours else ""),
                f"{sid} 在 {slot} 不全在开放时间内" + (f"（开放：{hours}）" if hours else ""))
    if v.kind == "slot":
        return _grid(me, tz, problem.slot_minutes)
    if v.kind == "stage":
        allowed = ", ".join(me.stages)
        return (f"{sid} is not one of this booking's allowed stages ({allowed})",
                f"{sid} 不在本预订允许的摄影棚中（{allowed}）")
    return str(v), str(v)


def _grid(me: Booking, tz: str, slot_minutes: int) -> Sentence:
    when = fmt_time(me.start, tz)
    return (f"the start {when} is not on the {slot_minutes}-minute grid "
            "(start on a whole quarter hour)",
            f"开始时间 {when} 不在 {slot_minutes} 分钟的时间格上（请从整刻钟开始）")


def placement_explanation(store: BookingStore, booking: Booking) -> list[Sentence]:
    """Plain sentences saying what stops ``booking`` at its stage and start (may be empty)."""
    if booking.stage is None or booking.start is None:
        return []
    problem = store.around(booking)  # the confirmed bookings near it, not the calendar
    stages = problem.stage_by_id()
    if booking.stage not in stages:
        return [(f"there is no stage {booking.stage!r}", f"没有摄影棚 {booking.stage}")]
    mine = replace(booking, status=Status.CONFIRMED, hold_rank=None)
    others = tuple(b for b in problem.bookings if b.id != booking.id)
    problem = replace(problem, bookings=(*others, mine))
    assignments = [
        Assignment(b.id, b.stage, b.start, b.start + timedelta(minutes=b.duration_minutes))
        for b in problem.bookings if b.stage is not None and b.start is not None]
    out: list[Sentence] = []
    for v in check_plan(problem, assignments):
        if booking.id in v.ids:
            sentence = _violation_sentence(v, mine, store, stages, problem)
            if sentence not in out:
                out.append(sentence)
    if booking.start.timestamp() % (problem.slot_minutes * 60):
        sentence = _grid(mine, stages[booking.stage].timezone, problem.slot_minutes)
        if sentence not in out:
            out.append(sentence)
    return out


def _store_zh(text: str) -> str:
    for pattern, zh in _STORE_ZH:
        m = pattern.match(text)
        if m:
            groups = m.groups()
            fields = {f"s{i}": STATUS_ZH.get(g, g) for i, g in enumerate(groups)}
            return zh.format(*groups, **fields)
    return text


def explain_refusal(store: BookingStore, message: str, booking: Booking | None = None,
                    api_id: str | None = None) -> list[Sentence]:
    """The refusal as plain sentences, English and Chinese: what is in the way, what to do.

    Args:
        store: to look up the bookings and stages named.
        message: the store's refusal.
        booking: the booking at the placement that was tried (hold, confirm), if any.
        api_id: the booking the request was about (for the API's own hints).
    """
    if booking is not None and " cannot go on " in message:
        sentences = placement_explanation(store, booking)
        if sentences:
            return sentences
    m = _FIRST_HOLD.match(message)
    if m is not None:
        first_id, stage, rank = m.groups()
        stages = stages_of(store)
        first = store.get(first_id)
        tz = _booking_zone(first, stages)
        when = _local_span(first.booking.start, first.booking.end, tz)
        who, who_zh = _who(first)
        where = f"POST /api/v1/bookings/{api_id}/challenge" if api_id else ""
        return [(f"{who} holds {stage} first (hold rank {rank}) {when}",
                 f"{who_zh} 已在 {when} 第一预留 {stage}（顺位 {rank}）"),
                (f"challenge it ({where}) or wait until it is released" if where
                 else "challenge it or wait until it is released",
                 f"可向它发起确认要求（{where}），或等它释放" if where
                 else "可向它发起确认要求，或等它释放")]
    text = _CLI_HINT.sub("", message).strip()
    if text.startswith("no slot for ") or _store_zh(text) != text:
        return [(text, _store_zh(text))]  # one sentence, whatever its semicolons
    parts = [p.strip() for p in text.split("; ") if p.strip()] or [text]
    return [(p, _store_zh(p)) for p in parts]


# --------------------------------------------------------------------------- re-plans


def zone_for(stages: dict[str, Stage], stage: str | None = None) -> str:
    """A stage's zone, else the most common zone of all stages."""
    if stage is not None and stage in stages:
        return stages[stage].timezone
    return _zones(stages.values())[0]


def as_spec(booking: Booking) -> dict[str, Any]:
    """A booking in the input contract's shape."""
    return booking_to_dict(booking)
