"""Concurrent writers through separate connections (threads), on SQLite and PostgreSQL.

On PostgreSQL changes lock only the stages and pools they touch (``BookingStore._scope``), so
writers on different stages really run at once: these tests aim at what that could break, a
pool shared across stages, a booking moved while another writer locks its old stage, and the
version check of a plan, and check the stored result with the independent checker.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest

from scheduler.booking.checker import check_plan
from scheduler.booking.model import Assignment, Status
from scheduler.booking.store import BookingRefused, BookingStore, lock_key
from tests.booking.helpers import at, booking


def three_stages_one_kit() -> dict[str, object]:
    """Three stages with no changeover and one arm kit shared by all of them."""
    return {
        "slot_minutes": 15,
        "stages": [{"id": s, "site": "Nansha", "capabilities": ["led_8k"],
                    "changeover_minutes": 0} for s in ("NS-1", "NS-2", "NS-3")],
        "pools": [{"id": "arm_kits", "capacity": 1}],
    }


def run_at_once(n: int, work: Callable[[int], object]) -> list[object]:
    """Run ``work(i)`` in ``n`` threads released together; results (or exceptions) by i."""
    gate = threading.Barrier(n)
    out: list[object] = [None] * n

    def body(i: int) -> None:
        gate.wait()
        try:
            out[i] = work(i)
        except Exception as exc:  # the test inspects what each thread got
            out[i] = exc

    threads = [threading.Thread(target=body, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
        assert not t.is_alive()
    return out


def stored_violations(db: Path | str) -> list[str]:
    with BookingStore(db) as s:
        problem = s.problem(frozenset({Status.CONFIRMED}))
        assignments = [Assignment(b.id, b.stage, b.start, b.end) for b in problem.bookings
                       if b.stage is not None and b.start is not None and b.end is not None]
        return [str(v) for v in check_plan(problem, assignments)]


def test_lock_keys_differ_per_stage_and_pool_and_are_64_bit() -> None:
    keys = {lock_key("stage", "NS-1"), lock_key("stage", "NS-2"), lock_key("pool", "NS-1")}
    assert len(keys) == 3
    assert all(-(2**63) <= k < 2**63 for k in keys)


def test_one_pool_unit_on_three_stages_goes_to_exactly_one(booking_db: Path | str) -> None:
    with BookingStore(booking_db) as s:
        s.setup(three_stages_one_kit())
        ids = [s.request(booking(f"K{i}", stage=st, start=at(10), pools={"arm_kits": 1}),
                         actor=f"p{i}").id for i, st in enumerate(("NS-1", "NS-2", "NS-3"))]
    for round_ in range(3):
        def confirm(i: int) -> object:
            with BookingStore(booking_db) as mine:
                return mine.confirm(ids[i], actor=f"p{i}")

        results = run_at_once(3, confirm)
        won = [r for r in results if not isinstance(r, Exception)]
        lost = [r for r in results if isinstance(r, Exception)]
        if round_ == 0:
            assert len(won) == 1, results
            assert all(isinstance(e, BookingRefused) and "arm_kits" in str(e) for e in lost), lost
        else:  # the winner's booking is confirmed already: everyone is refused again
            assert not won, results
    assert stored_violations(booking_db) == []


def test_storm_of_writers_on_shared_stages_and_pool_breaks_no_rule(
        booking_db: Path | str) -> None:
    with BookingStore(booking_db) as s:
        s.setup(three_stages_one_kit())
    stages = ("NS-1", "NS-2", "NS-3")
    outcomes: Counter[str] = Counter()
    lock = threading.Lock()

    def writer(i: int) -> object:
        rng = random.Random(i)
        mine: list[str] = []
        with BookingStore(booking_db) as st:
            for k in range(12):
                stage = rng.choice(stages)
                hour = 8 + rng.randrange(0, 8)  # a few slots: most overlap somebody's
                spec = booking(f"S{i:02d}{k:02d}", duration_minutes=120, stage=stage,
                               start=at(hour), earliest_start=at(8), latest_end=at(20))
                if rng.random() < 0.3:
                    spec["pools"] = {"arm_kits": 1}
                try:
                    rec = st.request(spec, actor=f"w{i}")
                    mine.append(rec.id)
                    action = rng.choice(("confirm", "hold-confirm", "hold-release",
                                         "cancel-some"))
                    if action == "confirm":
                        st.confirm(rec.id, actor=f"w{i}")
                    elif action == "hold-confirm":
                        st.hold(rec.id, actor=f"w{i}")
                        st.confirm(rec.id, actor=f"w{i}")
                    elif action == "hold-release":
                        st.hold(rec.id, actor=f"w{i}")
                        st.release(rec.id, actor=f"w{i}")
                    elif mine:
                        st.cancel(rng.choice(mine), actor=f"w{i}")
                    result = "done"
                except BookingRefused as exc:
                    result = "refused" if str(exc) else "refused without a reason"
                with lock:
                    outcomes[result] += 1
        return None

    results = run_at_once(6, writer)
    assert all(r is None for r in results), results
    assert outcomes["refused without a reason"] == 0
    assert outcomes["done"] > 0 and outcomes["refused"] > 0, outcomes
    assert stored_violations(booking_db) == []
    with BookingStore(booking_db) as s:
        records = s.records()
        assert len(records) == 6 * 12  # every request stored, ids never taken twice
        assert len({r.id for r in records}) == len(records)
        history = s.history()
        assert {h.booking_id for h in history} == {r.id for r in records}
        confirmed = [r for r in records if r.status is Status.CONFIRMED]
        assert confirmed
        for r in confirmed:  # its own history ends in the confirmation
            last = [h for h in history if h.booking_id == r.id][-1]
            assert last.to_status == Status.CONFIRMED.value


def test_a_plan_read_before_a_stage_change_is_not_applied(booking_db: Path | str) -> None:
    with BookingStore(booking_db) as s:
        s.setup(three_stages_one_kit())
        a = s.request(booking("A1", stages=["NS-1", "NS-2"]), actor="p")
        version = s.version()
        problem = s.problem()
        from scheduler.booking.solve import solve

        plan = solve(problem, 5.0)
        with BookingStore(booking_db) as other:  # another producer, another connection
            b = other.request(booking("B1", stage="NS-1", start=at(8)), actor="q")
            other.confirm(b.id, actor="q")
        assert s.version() > version
        with pytest.raises(BookingRefused, match="changed while planning"):
            s.apply_plan(problem, plan, "p", "solve", version)
        assert s.get(a.id).status is Status.REQUESTED


def test_a_request_moved_by_a_plan_while_a_hold_waits_ends_consistent(
        booking_db: Path | str) -> None:
    """A hold picks its stage's locks from an unlocked read; a plan moving the booking meanwhile
    must make the hold re-lock (store-wide), not act on the old stage."""
    with BookingStore(booking_db) as s:
        s.setup(three_stages_one_kit())
        ids = [s.request(booking(f"M{i}", stages=["NS-1", "NS-2", "NS-3"]), actor="p").id
               for i in range(6)]

    def work(i: int) -> object:
        with BookingStore(booking_db) as st:
            if i == 0:
                return st.solve(5.0, "planner", apply=True)
            try:
                return st.hold(ids[i % len(ids)], actor=f"h{i}")
            except BookingRefused as exc:
                return exc

    run_at_once(6, work)
    with BookingStore(booking_db) as s:
        holds = [r for r in s.records() if r.status is Status.HOLD]
        for r in holds:
            assert r.booking.stage is not None and r.booking.start is not None
        by_stage: dict[str, list[tuple[datetime, datetime, int]]] = {}
        for r in holds:
            assert r.booking.end is not None and r.booking.hold_rank is not None
            by_stage.setdefault(r.booking.stage or "", []).append(
                (r.booking.start or datetime.min, r.booking.end, r.booking.hold_rank))
        for rows in by_stage.values():  # two holds that clash never share a rank
            for n, (s1, e1, k1) in enumerate(rows):
                assert k1 >= 1
                for s2, e2, k2 in rows[n + 1:]:
                    if s2 < e1 and s1 < e2:
                        assert k1 != k2, rows
    assert stored_violations(booking_db) == []
