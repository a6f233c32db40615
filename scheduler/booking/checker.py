"""Independent plan checker: re-validates every plan with a sweep line.

Deliberately shares nothing with the planners' model building (no slot-index domains, no
epoch-minute arithmetic, no CP-SAT): it works on the aware datetimes of the problem and the
plan, so a bug in the planners' encoding cannot hide itself. A plan that fails is never stored.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from scheduler.booking.model import Assignment, Problem, Status


@dataclass(frozen=True)
class Violation:
    """One broken rule: what kind, which bookings, and a sentence saying what."""

    kind: str
    ids: tuple[str, ...]
    message: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.message}"


@dataclass(frozen=True)
class _Span:
    start: datetime
    end: datetime
    tag: str  # "booking" or "outage"
    ref: str


def _sweep(spans: Iterable[_Span]) -> Iterable[tuple[_Span, list[_Span]]]:
    """Yield each span as it opens, with the spans still open at that instant.

    Half-open intervals: a span ending at ``t`` is closed before one starting at ``t`` opens.
    """
    events: list[tuple[datetime, int, int, _Span]] = []
    for n, s in enumerate(spans):
        events.append((s.start, 1, n, s))
        events.append((s.end, 0, n, s))
    events.sort(key=lambda e: (e[0], e[1], e[2]))
    active: dict[int, _Span] = {}
    for _, kind, n, span in events:
        if kind == 0:
            active.pop(n, None)
        else:
            yield span, list(active.values())
            active[n] = span


def check_plan(
    problem: Problem,
    assignments: list[Assignment],
    rejected_ids: Iterable[str] | None = None,
) -> list[Violation]:
    """Every rule the plan breaks; an empty list means the plan is valid.

    Args:
        problem: the instance the plan claims to solve.
        assignments: the placements to check.
        rejected_ids: if given, also check that every booking is either placed or rejected,
            exactly once.
    """
    out: list[Violation] = []
    bookings = problem.booking_by_id()
    stages = problem.stage_by_id()
    seen: set[str] = set()
    valid: list[Assignment] = []
    for a in assignments:
        b = bookings.get(a.id)
        if b is None:
            out.append(Violation("unknown", (a.id,), f"{a.id} is not a booking of this problem"))
            continue
        if a.id in seen:
            out.append(Violation("duplicate", (a.id,), f"{a.id} is placed more than once"))
            continue
        seen.add(a.id)
        st = stages.get(a.stage)
        if st is None:
            out.append(Violation("unknown", (a.id,), f"{a.id} is on unknown stage {a.stage}"))
            continue
        valid.append(a)
        if a.end - a.start != timedelta(minutes=b.duration_minutes):
            out.append(Violation("duration", (a.id,),
                                 f"{a.id} lasts {a.end - a.start}, needs {b.duration_minutes} min"))
        if b.status is Status.CONFIRMED and (a.stage != b.stage or a.start != b.start):
            out.append(Violation("fixed", (a.id,),
                                 f"confirmed {a.id} moved from {b.stage}@{b.start} to "
                                 f"{a.stage}@{a.start.isoformat()}"))
        if b.stages and a.stage not in b.stages:
            out.append(Violation("stage", (a.id,), f"{a.id} is not allowed on {a.stage}"))
        missing = set(b.requires) - set(st.capabilities)
        if missing:
            out.append(Violation("capability", (a.id,),
                                 f"{a.id} on {a.stage} lacks {sorted(missing)}"))
        if a.start < b.earliest_start or a.end > b.latest_end:
            out.append(Violation("window", (a.id,),
                                 f"{a.id} at {a.start.isoformat()}..{a.end.isoformat()} is outside "
                                 f"{b.earliest_start.isoformat()}..{b.latest_end.isoformat()}"))
        if b.status is not Status.CONFIRMED and a.start.timestamp() % (problem.slot_minutes * 60):
            out.append(Violation("slot", (a.id,),
                                 f"{a.id} starts off the {problem.slot_minutes}-minute grid"))
        if st.open and not any(w.start <= a.start and a.end <= w.end for w in st.open):
            out.append(Violation("open", (a.id,),
                                 f"{a.id} on {a.stage} is not inside an opening window"))
    for b in bookings.values():
        if b.status is Status.CONFIRMED and b.id not in seen:
            out.append(Violation("fixed", (b.id,), f"confirmed {b.id} is missing from the plan"))
    if rejected_ids is not None:
        rej = list(rejected_ids)
        for rid in set(rej) & seen:
            out.append(Violation("coverage", (rid,), f"{rid} is both placed and rejected"))
        for bid in set(bookings) - seen - set(rej):
            out.append(Violation("coverage", (bid,), f"{bid} is neither placed nor rejected"))
    out += _check_stages(problem, valid)
    out += _check_pools(problem, valid)
    return out


def _check_stages(problem: Problem, assignments: list[Assignment]) -> list[Violation]:
    out: list[Violation] = []
    per_stage: dict[str, list[Assignment]] = defaultdict(list)
    for a in assignments:
        per_stage[a.stage].append(a)
    for st in problem.stages:
        placed = per_stage.get(st.id, [])
        changeover = timedelta(minutes=st.changeover_minutes)
        occupancy = [_Span(a.start, a.end + changeover, "booking", a.id) for a in placed]
        for span, active in _sweep(occupancy):
            for other in active:
                out.append(Violation("overlap", (other.ref, span.ref),
                                     f"{other.ref} and {span.ref} overlap on {st.id} "
                                     f"(changeover {st.changeover_minutes} min included)"))
        spans = [_Span(a.start, a.end, "booking", a.id) for a in placed]
        spans += [_Span(w.start, w.end, "outage", w.start.isoformat()) for w in st.outages]
        for span, active in _sweep(spans):
            for other in active:
                if {span.tag, other.tag} == {"booking", "outage"}:
                    bid = span.ref if span.tag == "booking" else other.ref
                    when = other.ref if span.tag == "booking" else span.ref
                    out.append(Violation("outage", (bid,),
                                         f"{bid} on {st.id} overlaps the outage from {when}"))
    return out


def _check_pools(problem: Problem, assignments: list[Assignment]) -> list[Violation]:
    out: list[Violation] = []
    bookings = problem.booking_by_id()
    for pool in problem.pools:
        users = [(a, dict(bookings[a.id].pools).get(pool.id, 0)) for a in assignments]
        users = [(a, n) for a, n in users if n > 0]
        amount = {a.id: n for a, n in users}
        for span, active in _sweep(_Span(a.start, a.end, "booking", a.id) for a, _ in users):
            level = amount[span.ref] + sum(amount[o.ref] for o in active)
            if level > pool.capacity:
                ids = tuple(sorted([span.ref] + [o.ref for o in active]))
                out.append(Violation("pool", ids,
                                     f"pool {pool.id} needs {level} > capacity {pool.capacity} "
                                     f"at {span.start.isoformat()} ({', '.join(ids)})"))
    return out
