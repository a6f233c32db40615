"""A month of bookings for the demo desk, starting this week (``stagectl desk seed``).

The generator (``scheduler.booking.generate``) writes stages, pools and requests; the month is
then put through the store's own lifecycle as producers would: every request is recorded, a
greedy plan places them as holds (through ``apply_plan``, which the independent checker
guards), and a few of the first holds are confirmed. Nothing bypasses the store's checks, so
what the page shows is what the store holds. The greedy plan, not CP-SAT, because the demo
seeds in its own process: CP-SAT takes over SIGINT while it solves, and a Ctrl-C then must
still stop the demo cleanly.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from scheduler.booking.generate import generate_month
from scheduler.booking.greedy import greedy_plan
from scheduler.booking.model import Status
from scheduler.booking.parse import BookingInputError
from scheduler.booking.store import BookingRefused, BookingStore

SEED_ACTOR = "demo-seed"


@dataclass(frozen=True)
class SeedReport:
    """What seeding did."""

    requested: int
    held: int
    confirmed: int
    refused: int
    start: datetime


def week_start(now: datetime, zone: str = "Asia/Shanghai") -> datetime:
    """Monday 00:00 of ``now``'s week, in ``zone``."""
    local = now.astimezone(ZoneInfo(zone))
    return (local - timedelta(days=local.weekday())).replace(hour=0, minute=0, second=0,
                                                             microsecond=0)


def seed_month(store: BookingStore, now: datetime, *, seed: int = 7, requests: int = 60,
               days: int = 28, confirm_fraction: float = 0.4,
               ) -> SeedReport:
    """Fill an empty store with a month from this week's Monday (see the module doc)."""
    start = week_start(now)
    doc = generate_month(seed=seed, n_requests=requests, month_start=start, days=days)
    store.setup(doc, actor=SEED_ACTOR)
    requested = refused = 0
    for spec in doc["bookings"]:
        spec = {k: v for k, v in spec.items() if k not in ("status", "hold_rank", "stage",
                                                             "start")}
        try:
            store.request(spec, SEED_ACTOR, "demo month")
            requested += 1
        except (BookingRefused, BookingInputError):
            refused += 1
    store.sweep()
    version = store.version()
    problem = store.problem()
    store.apply_plan(problem, greedy_plan(problem), SEED_ACTOR, "demo month", version)
    rng = random.Random(seed)
    held = confirmed = 0
    for record in store.records():
        if record.status is not Status.HOLD:
            continue
        held += 1
        if record.booking.hold_rank == 1 and rng.random() < confirm_fraction:
            try:
                store.confirm(record.id, SEED_ACTOR, "demo month")
                confirmed += 1
            except BookingRefused:
                refused += 1
    return SeedReport(requested, held - confirmed, confirmed, refused, start)
