"""Subprocess worker for the concurrency and kill tests (run as ``python -m``)."""

from __future__ import annotations

import sys
import time

from scheduler.booking.store import BookingRefused, BookingStore
from tests.booking.helpers import at, booking


def confirm_same(db: str, name: str, go_at: float) -> None:
    store = BookingStore(db)
    rec = store.request(booking(name, stage="NS-1", start=at(10)), actor=name)
    while time.time() < go_at:
        time.sleep(0.001)
    try:
        store.confirm(rec.id, actor=name)
        print("WON", flush=True)
    except BookingRefused as exc:
        print(f"LOST {exc}", flush=True)


def writer_loop(db: str) -> None:
    store = BookingStore(db)
    for i in range(10_000):
        day, hour = 1 + (i // 20) % 28, i % 20  # one hour apart: 15 min + 30 min changeover
        bid = f"W{i:05d}"
        spec = booking(bid, duration_minutes=15, stage="NS-1",
                       earliest_start=at(0, day), latest_end=at(23.75, day), start=at(hour, day))
        store.request(spec, actor="writer")
        store.confirm(bid, actor="writer")
        print(bid, flush=True)  # acknowledged only after COMMIT returned


if __name__ == "__main__":
    if sys.argv[1] == "confirm-same":
        confirm_same(sys.argv[2], sys.argv[3], float(sys.argv[4]))
    else:
        writer_loop(sys.argv[2])
