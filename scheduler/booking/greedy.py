"""Greedy baseline: first come, first served, earliest feasible slot.

This is how the shared spreadsheet works today, and it is the floor the optimiser must
never fall below: the optimiser is warm-started from it and falls back to it.
"""

from __future__ import annotations

import time
from datetime import timedelta

from scheduler.booking.domains import ceil_to, start_ranges
from scheduler.booking.explain import capacity_reason
from scheduler.booking.model import (
    Assignment,
    Booking,
    Plan,
    Problem,
    Rejection,
    Status,
    capable_stages,
    epoch_minutes,
    from_epoch_minutes,
    priority_hours,
)


class _Timeline:
    """What is already placed: stage occupancy and pool usage, in epoch minutes."""

    def __init__(self, problem: Problem) -> None:
        self.stage_busy: dict[str, list[tuple[int, int]]] = {s.id: [] for s in problem.stages}
        self.pool_busy: dict[str, list[tuple[int, int, int]]] = {p.id: [] for p in problem.pools}
        self.capacity = {p.id: p.capacity for p in problem.pools}

    def add(self, booking: Booking, stage: str, start: int) -> None:
        end = start + booking.duration_minutes
        self.stage_busy[stage].append((start, end))
        for pid, amount in booking.pools:
            self.pool_busy[pid].append((start, end, amount))

    def _pool_jump(self, booking: Booking, t: int, end: int) -> int | None:
        for pid, amount in booking.pools:
            over = [(s, e, a) for s, e, a in self.pool_busy[pid] if s < end and t < e]
            if not over:
                continue
            events = sorted([(max(s, t), a) for s, e, a in over] + [(e, -a) for s, e, a in over])
            level = peak = 0
            for _, delta in events:
                level += delta
                peak = max(peak, level)
            if peak + amount > self.capacity[pid]:
                return min(e for _, e, _ in over)
        return None

    def earliest(self, booking: Booking, stage: str, changeover: int, ranges: list[tuple[int, int]],
                 slot: int) -> int | None:
        """Earliest grid start in ``ranges`` clear of the stage and within pool capacity."""
        d = booking.duration_minutes
        busy = self.stage_busy[stage]
        for lo, hi in ranges:
            t = lo
            while t <= hi:
                end = t + d
                jump: int | None = None
                for s, e in busy:
                    if t < e + changeover and s < end + changeover:
                        jump = max(jump or 0, e + changeover)
                if jump is None:
                    jump = self._pool_jump(booking, t, end)
                if jump is None:
                    return t
                t = ceil_to(max(jump, t + 1), slot)
        return None


def greedy_plan(problem: Problem, keep_previous: bool = False) -> Plan:
    """Place bookings in input order (first come, first served) at their earliest slot.

    Confirmed bookings are fixed first. Ties between stages go to the earliest start, then to
    the stage listed first. With ``keep_previous``, bookings that carry a current placement
    (``stage``/``start``) keep it first wherever it is still feasible: the warm start for
    re-plans.
    """
    t0 = time.perf_counter()
    slot = problem.slot_minutes
    timeline = _Timeline(problem)
    assignments: list[Assignment] = []
    rejected: list[Rejection] = []
    placed: list[Booking] = []
    for b in problem.bookings:
        if b.status is Status.CONFIRMED and b.stage is not None and b.start is not None:
            timeline.add(b, b.stage, epoch_minutes(b.start))
            assignments.append(Assignment(b.id, b.stage, b.start, b.start + _mins(b)))
            placed.append(b)
    stages = problem.stage_by_id()
    kept: set[str] = set()
    for b in problem.bookings if keep_previous else ():
        if b.status is Status.CONFIRMED or b.stage is None or b.start is None:
            continue
        if b.stage not in {s.id for s in capable_stages(problem, b)}:
            continue
        t = epoch_minutes(b.start)
        stage = stages[b.stage]
        inside = [(t, t) for lo, hi in start_ranges(stage, b, slot) if lo <= t <= hi]
        if inside and timeline.earliest(b, b.stage, stage.changeover_minutes, inside, slot) == t:
            timeline.add(b, b.stage, t)
            assignments.append(Assignment(b.id, b.stage, b.start, b.start + _mins(b)))
            placed.append(b)
            kept.add(b.id)
    for b in problem.bookings:
        if b.status is Status.CONFIRMED or b.id in kept:
            continue
        best: tuple[int, int, str] | None = None
        for i, stage in enumerate(capable_stages(problem, b)):
            ranges = start_ranges(stage, b, slot)
            found = timeline.earliest(b, stage.id, stage.changeover_minutes, ranges, slot)
            if found is not None and (best is None or (found, i) < best[:2]):
                best = (found, i, stage.id)
        if best is None:
            rejected.append(Rejection(b.id, capacity_reason(problem, b, assignments)))
            continue
        t, _, sid = best
        timeline.add(b, sid, t)
        start = from_epoch_minutes(t)
        assignments.append(Assignment(b.id, sid, start, start + _mins(b)))
        placed.append(b)
    objective = priority_hours(placed)
    return Plan(
        assignments=assignments,
        rejected=rejected,
        objective=objective,
        bound=priority_hours(problem.bookings),
        greedy_objective=objective,
        status="feasible",
        solve_seconds=time.perf_counter() - t0,
        source="greedy",
    )


def _mins(b: Booking) -> timedelta:
    return timedelta(minutes=b.duration_minutes)
