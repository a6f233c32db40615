"""Say why a booking was not placed, in words a producer can act on."""

from __future__ import annotations

from scheduler.booking.domains import start_ranges
from scheduler.booking.model import Assignment, Booking, Problem, capable_stages


def static_reason(problem: Problem, booking: Booking) -> str | None:
    """A reason the booking can never be placed, whatever else is booked; None if it could."""
    stages = capable_stages(problem, booking)
    if not stages:
        where = f"allowed stages {list(booking.stages)}" if booking.stages else "no stage"
        need = sorted(booking.requires)
        return f"{where} has every required capability {need}"
    window = booking.latest_end - booking.earliest_start
    if window.total_seconds() < booking.duration_minutes * 60:
        return (
            f"window {booking.earliest_start.isoformat()} .. {booking.latest_end.isoformat()} "
            f"is shorter than {booking.duration_minutes} minutes"
        )
    pools = problem.pool_by_id()
    for pid, amount in booking.pools:
        if amount > pools[pid].capacity:
            return f"needs {amount} of pool {pid!r}, which has only {pools[pid].capacity}"
    if not any(start_ranges(s, booking, problem.slot_minutes) for s in stages):
        return (
            f"no {booking.duration_minutes}-minute slot on a capable stage "
            f"({', '.join(s.id for s in stages)}) lies inside open hours and clear of outages "
            "within its window"
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
        return f"pool capacity ({pools}) is used by other bookings throughout its window"
    names = ", ".join(f"{a.id} (p{by_id[a.id].priority})" for a in blockers[:5])
    more = f" and {len(blockers) - 5} more" if len(blockers) > 5 else ""
    tail = f"; pools: {pools}" if pools else ""
    return (
        f"capable stages ({', '.join(sorted(stage_ids))}) are taken in its window by "
        f"{names}{more}{tail}"
    )
