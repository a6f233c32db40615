"""An outage applied after its preview stores exactly what the preview showed (both backends).

CP-SAT may find several equally good re-plans and, on several threads, return another one each
run; "preview what moves, then apply" must not show one and store another.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from scheduler.booking.checker import check_plan
from scheduler.booking.model import Assignment, Status
from scheduler.booking.store import BookingStore
from tests.booking.helpers import at, booking, stages_doc


def _hit_stage(db: Path | str) -> BookingStore:
    store = BookingStore(db)
    store.setup(stages_doc())
    for bid, hour in (("A", 8), ("B", 13)):
        store.request(booking(bid, duration_minutes=180, stages=["NS-1", "HP-1"], stage="NS-1",
                              start=at(hour), earliest_start=at(8), latest_end=at(20)), "p")
        store.confirm(bid, "p")
    return store


def test_apply_after_preview_stores_the_previewed_moves_without_planning_again(
        booking_db: Path | str, monkeypatch: pytest.MonkeyPatch) -> None:
    store = _hit_stage(booking_db)
    start, end = datetime.fromisoformat(at(7)), datetime.fromisoformat(at(18))
    preview = store.outage_plan("NS-1", start, end, time_limit_seconds=5)
    assert preview.version == store.version() and preview.moved

    def no_second_plan(*args: object, **kwargs: object) -> None:
        raise AssertionError("re-planned although nothing changed since the preview")

    monkeypatch.setattr(store, "_replan_outage", no_second_plan)
    applied = store.outage("NS-1", start, end, "ops", "fault", time_limit_seconds=5,
                           previewed=preview)
    assert applied.moved == preview.moved and applied.unplaced == preview.unplaced
    for m in preview.moved:
        rec = store.get(m["id"])
        assert (rec.booking.stage, rec.booking.start) == (
            m["to_stage"], datetime.fromisoformat(m["to_start"]))
    store.close()


def test_a_change_after_the_preview_plans_again(booking_db: Path | str) -> None:
    store = _hit_stage(booking_db)
    start, end = datetime.fromisoformat(at(7)), datetime.fromisoformat(at(18))
    preview = store.outage_plan("NS-1", start, end, time_limit_seconds=5)
    with BookingStore(booking_db) as other:  # somebody books HP-1 meanwhile
        other.request(booking("C", stage="HP-1", start=at(8), duration_minutes=600,
                              requires=["arm"]), "q")
        other.confirm("C", "q")
    applied = store.outage("NS-1", start, end, "ops", "fault", time_limit_seconds=5,
                           previewed=preview)
    assert applied.version != preview.version
    problem = store.problem(frozenset({Status.HOLD, Status.CONFIRMED}))
    placed = [Assignment(b.id, b.stage, b.start, b.end) for b in problem.bookings
              if b.stage and b.start and b.end]
    assert check_plan(problem, placed) == []  # the fresh plan works around C
    store.close()


def test_a_preview_of_another_outage_is_not_used(booking_db: Path | str,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    store = _hit_stage(booking_db)
    start, end = datetime.fromisoformat(at(7)), datetime.fromisoformat(at(18))
    preview = store.outage_plan("NS-1", start, datetime.fromisoformat(at(12)),
                                time_limit_seconds=5)
    calls: list[int] = []
    real = store._replan_outage

    def counting(*args: object, **kwargs: object) -> object:
        calls.append(1)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(store, "_replan_outage", counting)
    store.outage("NS-1", start, end, "ops", "fault", time_limit_seconds=5, previewed=preview)
    assert calls == [1]
    store.close()
