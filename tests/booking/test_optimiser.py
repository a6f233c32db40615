from datetime import datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scheduler.booking.checker import check_plan
from scheduler.booking.greedy import greedy_plan
from scheduler.booking.optimiser import optimise
from scheduler.booking.parse import problem_from_dict
from scheduler.booking.solve import solve
from tests.booking.helpers import at, booking, doc


def valid(problem, plan) -> bool:
    return not check_plan(problem, plan.assignments, [r.id for r in plan.rejected])


def test_greedy_fcfs_loses_to_priority() -> None:
    # A low-priority request arrives first and takes the only arm slot; the optimiser
    # gives the slot to the priority-5 request instead.
    d = doc(
        booking("low", priority=1, requires=["arm"], duration_minutes=480),
        booking("high", priority=5, requires=["arm"], duration_minutes=480),
    )
    p = problem_from_dict(d)
    g = greedy_plan(p)
    assert [x.id for x in g.assignments] == ["low"] and g.objective == 8
    plan = solve(p, 5)
    assert [x.id for x in plan.assignments] == ["high"]
    assert plan.objective == 40 and plan.greedy_objective == 8
    assert plan.status == "optimal" and plan.bound == 40
    assert plan.rejected[0].id == "low" and "high (p5)" in plan.rejected[0].reason
    assert valid(p, plan)


def test_stops_early_when_everything_placed() -> None:
    d = doc(*(booking(f"B{i}", earliest_start=at(0, day=4 + i), latest_end=at(23, day=4 + i))
              for i in range(5)))
    plan = optimise(problem_from_dict(d), 30)
    assert len(plan.assignments) == 5 and plan.status == "optimal"
    assert plan.solve_seconds < 5


def test_hold_rank_breaks_ties_and_stability_keeps_placement() -> None:
    d = doc(
        booking("second", status="hold", hold_rank=2, stages=["NS-1"], duration_minutes=720),
        booking("first", status="hold", hold_rank=1, stages=["NS-1"], duration_minutes=720),
        booking("mover", stages=["HP-1", "NS-1"], earliest_start=at(8, 5), latest_end=at(20, 5),
                stage="HP-1", start=at(10, 5)),
    )
    p = problem_from_dict(d)
    plan = solve(p, 5)
    placed = plan.assignment_by_id()
    assert "first" in placed and "second" not in placed
    assert placed["mover"].stage == "HP-1"
    assert placed["mover"].start == datetime.fromisoformat(at(10, 5))
    assert plan.moved == []


def test_confirmed_are_fixed_and_open_windows_respected() -> None:
    d = doc(
        booking("fixed", status="confirmed", stage="HK-1", start=at(8), requires=["xr"]),
        booking("x", requires=["xr"], latest_end=at(23, 5), duration_minutes=300),
    )
    p = problem_from_dict(d)
    plan = solve(p, 5)
    x = plan.assignment_by_id()["x"]
    assert x.start >= datetime.fromisoformat(at(12))
    assert valid(p, plan)


def test_no_time_falls_back_to_greedy_and_is_never_worse() -> None:
    from scheduler.booking.generate import generate_month

    p = problem_from_dict(generate_month(seed=3, demand="overloaded", n_requests=60))
    g = greedy_plan(p)
    plan = optimise(p, 0.01)
    assert plan.objective >= g.objective
    assert valid(p, plan)


@st.composite
def instances(draw: st.DrawFn) -> dict:
    n = draw(st.integers(1, 7))
    bks = []
    for i in range(n):
        day = draw(st.integers(4, 5))
        start_h = draw(st.integers(0, 16))
        dur = draw(st.sampled_from([60, 120, 180, 240, 360, 480]))
        slack_h = draw(st.integers(0, 12))
        end_h = min(23.75, start_h + dur / 60 + slack_h)
        b = booking(
            f"B{i}",
            priority=draw(st.integers(1, 5)),
            duration_minutes=dur,
            earliest_start=at(start_h, day),
            latest_end=at(end_h, day),
            requires=draw(st.sampled_from([[], [], ["arm"], ["led_8k"], ["xr"]])),
        )
        if draw(st.booleans()):
            b["pools"] = {"arm_kits": 1}
        if draw(st.integers(0, 4)) == 0:
            b["status"] = "hold"
            b["hold_rank"] = draw(st.integers(1, 3))
        bks.append(b)
    d = doc(*bks)
    d["stages"][1]["outages"] = [[at(draw(st.integers(0, 20)), 4), at(22, 4)]]
    return d


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(instances())
def test_property_optimiser_valid_and_never_worse_than_greedy(d: dict) -> None:
    p = problem_from_dict(d)
    g = greedy_plan(p)
    assert valid(p, g)
    plan = optimise(p, 1.0)
    assert valid(p, plan)
    assert plan.objective >= g.objective - 1e-9
    assert plan.bound >= plan.objective - 1e-9


def test_pool_binds_across_stages() -> None:
    # One arm kit for two stages: the two arm bookings cannot overlap in time even on
    # different stages, so only one fits the shared four-hour window.
    d = doc(
        booking("a", priority=2, stages=["HP-1"], pools={"arm_kits": 1},
                earliest_start=at(8), latest_end=at(12)),
        booking("b", priority=3, stages=["HP-1", "NS-1"], pools={"arm_kits": 1},
                earliest_start=at(8), latest_end=at(12)),
        booking("c", priority=1, stages=["HP-1", "NS-1"], pools={"arm_kits": 1},
                earliest_start=at(12), latest_end=at(16)),
    )
    p = problem_from_dict(d)
    plan = solve(p, 5)
    assert sorted(a.id for a in plan.assignments) == ["b", "c"]
    assert plan.status == "optimal" and valid(p, plan)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(instances())
def test_property_pool_per_booking_has_the_same_optimum(d: dict) -> None:
    # One pool interval per booking (shared by its stage options) is a reformulation of one
    # per (booking, stage) option: both must prove the same optimum.
    p = problem_from_dict(d)
    per_booking = optimise(p, 5.0)
    per_option = optimise(p, 5.0, pools_per_option=True)
    assert per_booking.status == per_option.status == "optimal"
    assert per_booking.objective == per_option.objective
    assert valid(p, per_booking)
