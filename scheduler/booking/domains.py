"""Where a booking may start on a stage: the slot grid, its window, open hours, outages.

Shared by the greedy baseline and the CP-SAT optimiser (both place starts on the slot grid);
the checker deliberately does not use it.
"""

from __future__ import annotations

from scheduler.booking.model import Booking, Stage, epoch_minutes

Ranges = list[tuple[int, int]]


def ceil_to(minutes: int, step: int) -> int:
    """Round ``minutes`` up to a multiple of ``step``."""
    return -(-minutes // step) * step


def floor_to(minutes: int, step: int) -> int:
    """Round ``minutes`` down to a multiple of ``step``."""
    return (minutes // step) * step


def _intersect(a: Ranges, b: Ranges) -> Ranges:
    out: Ranges = []
    i = j = 0
    while i < len(a) and j < len(b):
        lo = max(a[i][0], b[j][0])
        hi = min(a[i][1], b[j][1])
        if lo <= hi:
            out.append((lo, hi))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return out


def _subtract(a: Ranges, lo: int, hi: int) -> Ranges:
    out: Ranges = []
    for x, y in a:
        if y < lo or x > hi:
            out.append((x, y))
            continue
        if x < lo:
            out.append((x, lo - 1))
        if y > hi:
            out.append((hi + 1, y))
    return out


def _union(ranges: Ranges) -> Ranges:
    out: Ranges = []
    for lo, hi in sorted(ranges):
        if out and lo <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


def start_ranges(stage: Stage, booking: Booking, slot_minutes: int) -> Ranges:
    """Inclusive ``[lo, hi]`` ranges of epoch-minute starts, both ends on the slot grid.

    A start ``t`` is in a range when ``[t, t + duration)`` lies inside the booking's window,
    inside one of the stage's open windows (if it has any) and clear of every outage.
    """
    d = booking.duration_minutes
    ranges: Ranges = [
        (epoch_minutes(booking.earliest_start), epoch_minutes(booking.latest_end) - d)
    ]
    if stage.open:
        opens = _union(
            [(epoch_minutes(w.start), epoch_minutes(w.end) - d) for w in stage.open]
        )
        ranges = _intersect(ranges, [r for r in opens if r[0] <= r[1]])
    for w in stage.outages:
        ranges = _subtract(ranges, epoch_minutes(w.start) - d + 1, epoch_minutes(w.end) - 1)
    snapped = [(ceil_to(lo, slot_minutes), floor_to(hi, slot_minutes)) for lo, hi in ranges]
    return [(lo, hi) for lo, hi in snapped if lo <= hi]
