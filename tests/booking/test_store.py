from datetime import datetime, timedelta

import pytest

from scheduler.booking.checker import check_plan
from scheduler.booking.model import Assignment, Status
from scheduler.booking.parse import BookingInputError
from scheduler.booking.store import BookingRefused, BookingStore
from tests.booking.helpers import at, booking


def test_request_validates_against_stored_stages(store: BookingStore) -> None:
    with pytest.raises(BookingInputError, match=r"request.stages\[0\]: unknown stage"):
        store.request(booking("X", stages=["nope"]), "ann")
    rec = store.request({k: v for k, v in booking("ignored").items() if k != "id"}, "ann")
    assert rec.id == "BK00001" and rec.status is Status.REQUESTED
    with pytest.raises(BookingRefused, match="already exists"):
        store.request(booking("BK00001"), "ann")


def test_holds_rank_confirm_release_promote(store: BookingStore) -> None:
    for name in ("A", "B", "C"):
        store.request(booking(name, stage="NS-1", start=at(10)), name)
        store.hold(name, name)
    assert [store.get(n).booking.hold_rank for n in "ABC"] == [1, 2, 3]
    with pytest.raises(BookingRefused, match="A holds NS-1 first"):
        store.confirm("B", "B")
    store.release("A", "A", "budget cut")
    assert [store.get(n).booking.hold_rank for n in "BC"] == [1, 2]
    assert any(h.action == "rank" and h.reason == "hold rank 2 -> 1" for h in store.history("B"))
    rec = store.confirm("B", "B")
    assert rec.status is Status.CONFIRMED and rec.sequence == 1
    c = store.get("C")
    assert c.status is Status.REJECTED
    assert store.history("C")[-1].reason == "slot confirmed by B"


def test_confirm_never_double_books(store: BookingStore) -> None:
    store.request(booking("A", stage="NS-1", start=at(10)), "a")
    store.confirm("A", "a")
    store.request(booking("B", stage="NS-1", start=at(14.25)), "b")  # inside changeover
    with pytest.raises(BookingRefused, match="overlap"):
        store.confirm("B", "b")
    with pytest.raises(BookingRefused, match="overlap"):
        store.hold("B", "b")
    store.hold("B", "b", stage="NS-1", start=datetime.fromisoformat(at(14.5)))
    assert store.confirm("B", "b").status is Status.CONFIRMED


def test_hold_without_slot_takes_earliest_free(store: BookingStore) -> None:
    store.request(booking("A", stages=["NS-1"], stage="NS-1", start=at(8)), "a")
    store.confirm("A", "a")
    store.request(booking("B", stages=["NS-1"]), "b")
    rec = store.hold("B", "b")
    assert rec.booking.stage == "NS-1" and rec.booking.start == datetime.fromisoformat(at(12.5))


def test_challenge_deadline_releases_first_hold(store: BookingStore, clock) -> None:
    for name in ("A", "B"):
        store.request(booking(name, stage="NS-1", start=at(10)), name)
        store.hold(name, name)
    with pytest.raises(BookingRefused, match="ranked 2 or lower"):
        store.challenge("A", "a", clock.now + timedelta(hours=1))
    first = store.challenge("B", "b", clock.now + timedelta(hours=2))
    assert first.id == "A" and first.challenged_by == "B"
    clock.now += timedelta(hours=3)
    store.sweep()
    assert store.get("A").status is Status.RELEASED
    assert "not answered" in store.history("A")[-1].reason
    assert store.get("B").booking.hold_rank == 1


def test_hold_expiry_completion_cancel_sequence(store: BookingStore, clock) -> None:
    store.request(booking("A", stage="NS-1", start=at(10)), "a")
    store.hold("A", "a", expires=clock.now + timedelta(hours=1))
    store.request(booking("B", stage="HP-1", start=at(10)), "b")
    store.confirm("B", "b")
    store.request(booking("C", stage="HP-1", start=at(8, 5), earliest_start=at(8, 5),
                          latest_end=at(20, 5)), "c")
    store.confirm("C", "c")
    assert store.cancel("C", "c", "weather").sequence == 2
    with pytest.raises(BookingRefused, match="already cancelled"):
        store.cancel("C", "c")
    clock.now = datetime.fromisoformat(at(20))
    store.sweep()
    assert store.get("A").status is Status.EXPIRED
    assert store.get("B").status is Status.COMPLETED
    actions = [(h.actor, h.action, h.to_status) for h in store.history("B")]
    assert actions == [("b", "request", "requested"), ("b", "confirm", "confirmed"),
                       ("system", "complete", "completed")]


def test_solve_apply_places_requests_as_holds(store: BookingStore) -> None:
    store.request(booking("low", priority=1, requires=["arm"], duration_minutes=480), "x")
    store.request(booking("high", priority=5, requires=["arm"], duration_minutes=480), "y")
    plan = store.solve(5, "planner", apply=True)
    assert plan.objective == 40
    assert store.get("high").status is Status.HOLD
    assert store.get("low").status is Status.REQUESTED
    assert store.history("high")[-1].action == "place"


def test_outage_moves_with_fewest_changes(store: BookingStore) -> None:
    store.request(booking("A", stage="NS-1", start=at(8), earliest_start=at(8),
                          latest_end=at(20)), "a")
    store.confirm("A", "a")
    store.request(booking("B", stage="NS-1", start=at(13), earliest_start=at(8),
                          latest_end=at(20)), "b")
    store.hold("B", "b")
    store.request(booking("C", requires=["arm"], stage="HP-1", start=at(9)), "c")
    store.confirm("C", "c")
    store.request(booking("X", requires=["xr"], stage="HK-1", start=at(8)), "x")
    store.confirm("X", "x")
    rep = store.outage("NS-1", datetime.fromisoformat(at(7)), datetime.fromisoformat(at(12)),
                       "ops", "LED panel fault", time_limit_seconds=5)
    assert [m["id"] for m in rep.moved] == ["A"]
    a = store.get("A")
    assert a.status is Status.CONFIRMED and a.sequence == 2
    assert a.booking.start is not None
    assert not (a.booking.stage == "NS-1" and a.booking.start < datetime.fromisoformat(at(12)))
    problem = store.problem()
    placed = [Assignment(b.id, b.stage, b.start, b.end) for b in problem.bookings
              if b.stage and b.start and b.end]
    assert check_plan(problem, placed) == []
    assert store.get("B").booking.start == datetime.fromisoformat(at(13))
    assert store.get("C").booking.start == datetime.fromisoformat(at(9))
    assert rep.unplaced == [] and rep.kept == 3
    assert "LED panel fault" in store.history("A")[-1].reason
    # A second outage on the only xr stage: X cannot move and is reported.
    rep = store.outage("HK-1", datetime.fromisoformat(at(0)), datetime.fromisoformat(at(23)),
                       "ops", time_limit_seconds=2)
    assert [u["id"] for u in rep.unplaced] == ["X"]
    assert store.get("X").status is Status.REJECTED
    assert store.integrity_check() == "ok"
