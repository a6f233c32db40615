"""Say why a booking was not placed, in words a producer can act on.

Each reason names what is in the way: which required capability each allowed stage lacks
(the same set the plan checker reports as ``lacks``), which pool is too small, which bookings
hold the stage time. Times are written in the site's time zone with the zone named.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from zoneinfo import ZoneInfo

from scheduler.booking.domains import start_ranges
from scheduler.booking.model import (
    DEFAULT_TIMEZONE,
    Assignment,
    Booking,
    Problem,
    capable_stages,
)


def _words(items: list[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} and {items[-1]}"


def missing_capabilities(problem: Problem, booking: Booking) -> dict[str, list[str]]:
    """The required capabilities each stage the booking may use lacks.

    The stages are its allowed stages (every stage when it names none); each maps to what it
    lacks, sorted, and stages that lack nothing are left out.
    """
    allowed = set(booking.stages)
    out: dict[str, list[str]] = {}
    for s in problem.stages:
        if allowed and s.id not in allowed:
            continue
        lacks = sorted(booking.requires - s.capabilities)
        if lacks:
            out[s.id] = lacks
    return out


def _capability_reason(problem: Problem, booking: Booking) -> str:
    need = sorted(booking.requires)
    lacks = missing_capabilities(problem, booking)
    groups: dict[tuple[str, ...], list[str]] = defaultdict(list)
    for sid, caps in lacks.items():
        groups[tuple(caps)].append(sid)
    parts = [
        f"{_words(sids)} {'lacks' if len(sids) == 1 else 'lack'} {_words(list(caps))}"
        for caps, sids in sorted(groups.items(), key=lambda g: g[1])
    ]
    what = f"both {_words(need)}" if len(need) == 2 else (
        need[0] if len(need) == 1 else f"all of {_words(need)}")
    where = "none of its allowed stages has" if booking.stages else "no stage has"
    if len(groups) == 1 and list(groups) == [tuple(need)] and len(lacks) > 1:
        # every stage lacks every capability: naming them all says nothing more
        text = f"{where} {what}" + (" (none has any of them)" if len(need) > 1 else "")
    else:
        text = f"{where} {what}: {'; '.join(parts)}"
    if booking.stages:
        elsewhere = [s.id for s in problem.stages
                     if booking.requires <= s.capabilities and s.id not in booking.stages]
        if elsewhere:
            one = len(elsewhere) == 1
            verb, be = ("has", "is") if one else ("have", "are")
            text += (f" ({_words(elsewhere)} {verb} {'them' if len(need) > 1 else 'it'} but "
                     f"{be} not allowed)")
    return text


def _zone_of(problem: Problem, booking: Booking) -> str:
    """The zone to write a booking's times in: its stage's, else its allowed stages'."""
    stages = problem.stage_by_id()
    if booking.stage in stages:
        return stages[booking.stage].timezone
    for sid in booking.stages:
        if sid in stages:
            return stages[sid].timezone
    return problem.stages[0].timezone if problem.stages else DEFAULT_TIMEZONE


def _span(start: datetime, end: datetime, tz_name: str) -> str:
    """``2031-03-04 08:00 – 12:00 (Asia/Shanghai)``: a window in the site's zone, named."""
    zone = ZoneInfo(tz_name)
    a, b = start.astimezone(zone), end.astimezone(zone)
    tail = b.strftime("%H:%M") if a.date() == b.date() else b.strftime("%Y-%m-%d %H:%M")
    return f"{a.strftime('%Y-%m-%d %H:%M')} – {tail} ({tz_name})"


def static_reason(problem: Problem, booking: Booking) -> str | None:
    """A reason the booking can never be placed, whatever else is booked; None if it could."""
    stages = capable_stages(problem, booking)
    if not stages:
        if not booking.requires:
            return "there are no stages to book"
        return _capability_reason(problem, booking)
    window = booking.latest_end - booking.earliest_start
    when = _span(booking.earliest_start, booking.latest_end, _zone_of(problem, booking))
    if window.total_seconds() < booking.duration_minutes * 60:
        return (
            f"its window {when} "
            f"is shorter than the {booking.duration_minutes} minutes it needs"
        )
    pools = problem.pool_by_id()
    for pid, amount in booking.pools:
        if amount > pools[pid].capacity:
            return f"it needs {amount} of pool {pid}, which has only {pools[pid].capacity}"
    if not any(start_ranges(s, booking, problem.slot_minutes) for s in stages):
        return (
            f"no {booking.duration_minutes}-minute slot on a capable stage "
            f"({', '.join(s.id for s in stages)}) lies inside open hours and clear of outages "
            f"within its window {when}"
        )
    return None


def capacity_reason(problem: Problem, booking: Booking, placed: list[Assignment]) -> str:
    """Why a placeable booking lost out: who holds the stage time in its window."""
    static = static_reason(problem, booking)
    if static:
        return static
    by_id = problem.booking_by_id()
    stage_ids = {s.id for s in capable_stages(problem, booking)}
    blockers = sorted(
        (
            a
            for a in placed
            if a.stage in stage_ids
            and a.start < booking.latest_end
            and booking.earliest_start < a.end
        ),
        key=lambda a: (-by_id[a.id].priority, a.start),
    )
    pools = ", ".join(pid for pid, _ in booking.pools)
    if not blockers:
        if pools:
            return f"pool capacity ({pools}) is used by other bookings throughout its window"
        return ("the capable stages have no free slot long enough in its window "
                "(changeovers and outages included)")
    names = ", ".join(f"{a.id} (p{by_id[a.id].priority})" for a in blockers[:5])
    more = f" and {len(blockers) - 5} more" if len(blockers) > 5 else ""
    tail = f"; pools: {pools}" if pools else ""
    return (
        f"capable stages ({', '.join(sorted(stage_ids))}) are taken in its window by "
        f"{names}{more}{tail}"
    )
