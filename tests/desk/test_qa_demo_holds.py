"""Acceptance pass: the demo desk's month shows holds by rank (before: every hold was #1)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from scheduler.booking.model import Status
from scheduler.booking.store import BookingStore
from stagectl.cli import desk_demo


def test_demo_month_has_second_holds_behind_first_ones(tmp_path: Path) -> None:
    before = datetime.now(UTC)
    desk_demo.prepare(tmp_path / "desk")
    store = BookingStore(tmp_path / "desk" / "booking.sqlite")
    try:
        holds = [r for r in store.records() if r.status is Status.HOLD]
        firsts = {(r.booking.stage, r.booking.start) for r in holds if r.booking.hold_rank == 1}
        seconds = [r for r in holds if (r.booking.hold_rank or 0) >= 2]
        assert len(seconds) >= 2, [(r.id, r.booking.hold_rank) for r in holds]
        for r in seconds:
            assert (r.booking.stage, r.booking.start) in firsts  # behind a first hold
            assert r.booking.start is not None and r.booking.start > before
            assert r.booking.production in desk_demo.SECOND_HOLDERS
            assert store.history(r.id)[0].actor == "demo-seed"
    finally:
        store.close()
