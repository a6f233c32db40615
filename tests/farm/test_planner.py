from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scheduler.farm.checker import check_plan
from scheduler.farm.cpsat import solve_window
from scheduler.farm.generate import synthetic_farm
from scheduler.farm.greedy import greedy_schedule
from scheduler.farm.model import parse_farm
from scheduler.farm.planner import PlanningError, plan_farm
from scheduler.farm.problem import UNITS_PER_CNY, build_problem, deadline_energy_bound, score


def test_tiny_farm_is_solved_to_optimality(farm_json: dict[str, Any]) -> None:
    farm = parse_farm(farm_json)
    plan = plan_farm(farm, "cost", time_limit_s=5)
    report = check_plan(farm, plan.assignments)
    assert report.ok, report.violations
    assert plan.status == "optimal"
    assert plan.objective == pytest.approx(report.objective("cost"))
    assert plan.bound == pytest.approx(plan.objective)
    assert plan.greedy_objective is not None
    assert plan.objective <= plan.greedy_objective + 1e-9
    # Every job can meet its deadline on the nodes alone except that the 40 GB work only fits
    # the 48 GB node and the pool; the optimum rents nothing at all.
    assert plan.objective == 0


def test_makespan_objective(farm_json: dict[str, Any]) -> None:
    farm = parse_farm(farm_json)
    plan = plan_farm(farm, "makespan", time_limit_s=5)
    assert check_plan(farm, plan.assignments).ok
    assert plan.objective == plan.makespan_s
    # f1 (1200 s), f2 (>= 1250 s) and, to beat 2150 s, r1 and r2 (900 s each) all need one
    # of the three fast slots (n48 from 0 s, the pool's two from 120 s): some slot runs two of
    # them, and the cheapest such pair that does not delay d1 is r + f1 on n48: 2100 s.
    assert plan.makespan_s == 2100
    assert plan.status == "optimal"


def test_output_json_contract(farm_json: dict[str, Any]) -> None:
    plan = plan_farm(parse_farm(farm_json), "cost", time_limit_s=2)
    data = plan.to_json()
    assert set(data) == {
        "status",
        "objective",
        "bound",
        "greedy_objective",
        "solve_seconds",
        "makespan",
        "cost_cny",
        "assignments",
        "jobs",
    }
    assert set(data["assignments"][0]) == {"task", "resource", "slot", "start", "end"}
    assert set(data["jobs"][0]) == {"id", "finish", "late_seconds"}


def test_unplannable_windows_raise() -> None:
    data = {
        "nodes": [{"id": "n", "slots": 1, "vram_gb": 24, "available": [[0, 100]]}],
        "jobs": [{"id": "j", "tasks": [{"id": "a", "work": 80}, {"id": "b", "work": 80}]}],
    }
    with pytest.raises(PlanningError):
        plan_farm(parse_farm(data), "cost", time_limit_s=1)


def test_rolling_horizon_never_worse_than_greedy() -> None:
    farm = parse_farm(synthetic_farm(160, 16, seed=4))
    plan = plan_farm(farm, "cost", time_limit_s=4, flat_max_intervals=0)
    report = check_plan(farm, plan.assignments)
    assert report.ok, report.violations
    assert plan.greedy_objective is not None
    assert plan.objective <= plan.greedy_objective + 1e-6
    assert plan.objective == pytest.approx(report.objective("cost"))


def test_planner_beats_greedy_on_a_synthetic_farm() -> None:
    farm = parse_farm(synthetic_farm(60, 8, seed=2))
    plan = plan_farm(farm, "cost", time_limit_s=3)
    assert plan.greedy_objective is not None
    assert plan.objective < plan.greedy_objective


def test_replan_after_node_loss_keeps_unaffected_tasks(farm_json: dict[str, Any]) -> None:
    # Plenty of room: three 24 GB nodes, loose deadlines, cheap pool as overflow.
    data = {
        "late_cost_cny_per_hour": 1000,
        "nodes": [{"id": f"n{i}", "slots": 2, "vram_gb": 24} for i in range(3)],
        "pools": [
            {"id": "cloud", "max_slots": 4, "vram_gb": 80, "speed": 1, "cost_per_gpu_hour_cny": 30}
        ],
        "jobs": [
            {
                "id": f"j{k}",
                "deadline": 20000,
                "vram_gb": 24,
                "tasks": [{"id": f"j{k}t{i}", "work": 1000 + 100 * i} for i in range(4)],
            }
            for k in range(3)
        ],
    }
    farm = parse_farm(data)
    first = plan_farm(farm, "cost", time_limit_s=3)
    assert first.objective == 0
    lost = first.assignments[0].resource
    again = plan_farm(
        farm.without_resource(lost), "cost", time_limit_s=3, previous=first.assignments
    )
    assert check_plan(farm.without_resource(lost), again.assignments).ok
    assert again.objective == 0
    before = {a.task: (a.resource, a.start_s) for a in first.assignments if a.resource != lost}
    after = {a.task: (a.resource, a.start_s) for a in again.assignments}
    moved = [t for t, where in before.items() if after[t] != where]
    assert not moved, f"unaffected tasks moved: {moved}"
    assert {a.resource for a in again.assignments} <= {"n0", "n1", "n2"} - {lost}


@st.composite
def small_farms(draw: st.DrawFn) -> dict[str, Any]:
    n_nodes = draw(st.integers(1, 3))
    nodes = []
    for i in range(n_nodes):
        node: dict[str, Any] = {
            "id": f"n{i}",
            "slots": draw(st.integers(1, 3)),
            "vram_gb": draw(st.sampled_from([24, 48, 80])),
            "speed": draw(st.sampled_from([1.0, 1.5, 2.0])),
        }
        if draw(st.booleans()):
            gap = draw(st.integers(100, 2000))
            node["available"] = [[0, gap], [gap + draw(st.integers(50, 1000)), None]]
        nodes.append(node)
    pools = []
    if draw(st.booleans()):
        pools.append(
            {
                "id": "pool",
                "max_slots": draw(st.integers(1, 3)),
                "vram_gb": 80,
                "speed": draw(st.sampled_from([1.0, 2.0])),
                "cost_per_gpu_hour_cny": draw(st.integers(0, 60)),
                "startup_seconds": draw(st.integers(0, 600)),
            }
        )
    biggest = max(n["vram_gb"] for n in nodes + pools)
    jobs = []
    for j in range(draw(st.integers(1, 4))):
        tasks: list[dict[str, Any]] = []
        for k in range(draw(st.integers(1, 4))):
            work = draw(st.one_of(st.just(0), st.integers(1, 2000)))
            task: dict[str, Any] = {"id": f"j{j}t{k}", "work": work}
            if tasks and draw(st.booleans()):
                task["after"] = [draw(st.sampled_from([t["id"] for t in tasks]))]
            tasks.append(task)
        job: dict[str, Any] = {
            "id": f"j{j}",
            "priority": draw(st.integers(1, 5)),
            "vram_gb": draw(st.sampled_from([v for v in (0, 24, 48, 80) if v <= biggest])),
            "tasks": tasks,
        }
        if draw(st.booleans()):
            job["deadline"] = draw(st.integers(0, 5000))
        jobs.append(job)
    return {
        "late_cost_cny_per_hour": draw(st.integers(0, 2000)),
        "nodes": nodes,
        "pools": pools,
        "jobs": jobs,
    }


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=small_farms(), objective=st.sampled_from(["cost", "makespan"]))
def test_random_farms_pass_the_checker_and_beat_greedy(
    data: dict[str, Any], objective: str
) -> None:
    farm = parse_farm(data)
    plan = plan_farm(farm, objective, time_limit_s=0.5)
    report = check_plan(farm, plan.assignments)
    assert report.ok, report.violations
    assert plan.objective == pytest.approx(report.objective(objective))
    greedy = score(build_problem(farm), greedy_schedule(build_problem(farm))).value(objective)
    assert plan.greedy_objective == pytest.approx(greedy)
    assert plan.objective <= greedy + 1e-6
    assert plan.bound <= plan.objective + 1e-6


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=small_farms())
def test_deadline_energy_cuts_keep_the_optimum(data: dict[str, Any]) -> None:
    # The cuts are redundant: with and without them the flat cost model proves the same
    # optimum (and with them the bound can only be tighter before that).
    problem = build_problem(parse_farm(data))
    results = [
        solve_window(problem, "cost", range(problem.n_tasks), None, None, 5.0, energy_cuts=cuts)
        for cuts in (True, False)
    ]
    assert results[0].status == results[1].status
    if results[0].status == "optimal":
        assert results[0].bound_units == pytest.approx(results[1].bound_units)


@pytest.mark.parametrize(
    ("chunks", "slots", "seed"), [(16, 4, 1), (24, 4, 2), (24, 4, 3), (40, 8, 1)]
)
def test_deadline_energy_cuts_keep_synthetic_optima(chunks: int, slots: int, seed: int) -> None:
    problem = build_problem(parse_farm(synthetic_farm(chunks, slots, seed)))
    with_cuts, without = (
        solve_window(problem, "cost", range(problem.n_tasks), None, None, 10.0, energy_cuts=c)
        for c in (True, False)
    )
    assert with_cuts.status == without.status == "optimal"
    assert with_cuts.bound_units == without.bound_units > 0


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=small_farms())
def test_deadline_energy_bound_never_exceeds_a_proved_optimum(data: dict[str, Any]) -> None:
    problem = build_problem(parse_farm(data))
    result = solve_window(problem, "cost", range(problem.n_tasks), None, None, 5.0)
    if result.status == "optimal":
        optimum = result.bound_units / UNITS_PER_CNY
        assert deadline_energy_bound(problem) <= optimum + 1e-6


@pytest.mark.parametrize(("chunks", "slots", "seed"), [(16, 4, 1), (24, 4, 2), (40, 8, 1)])
def test_deadline_energy_bound_on_synthetic_optima(chunks: int, slots: int, seed: int) -> None:
    problem = build_problem(parse_farm(synthetic_farm(chunks, slots, seed)))
    result = solve_window(problem, "cost", range(problem.n_tasks), None, None, 10.0)
    assert result.status == "optimal"
    bound = deadline_energy_bound(problem)
    assert 0 < bound <= result.bound_units / UNITS_PER_CNY + 1e-6


def test_deadline_energy_bound_is_exact_when_one_chunk_must_be_rented() -> None:
    # One 1-slot node, two 100 s chunks due at 100 s: one of them is rented (100 s at
    # 36 CNY/h = 1 CNY); being late instead would cost far more.
    farm = parse_farm(
        {
            "late_cost_cny_per_hour": 1000,
            "nodes": [{"id": "n", "slots": 1, "vram_gb": 48}],
            "pools": [
                {
                    "id": "p",
                    "max_slots": 2,
                    "vram_gb": 48,
                    "speed": 1,
                    "cost_per_gpu_hour_cny": 36,
                    "startup_seconds": 0,
                }
            ],
            "jobs": [
                {
                    "id": "j",
                    "priority": 1,
                    "deadline": 100,
                    "tasks": [{"id": "a", "work": 100}, {"id": "b", "work": 100}],
                }
            ],
        }
    )
    assert deadline_energy_bound(build_problem(farm)) == pytest.approx(1.0)
    plan = plan_farm(farm, "cost", time_limit_s=5)
    assert plan.status == "optimal" and plan.objective == pytest.approx(1.0)


def test_rolling_plans_report_the_deadline_energy_bound() -> None:
    farm = parse_farm(synthetic_farm(300, 16, 1))
    plan = plan_farm(farm, "cost", time_limit_s=3.0, flat_max_intervals=10)  # force rolling
    expected = deadline_energy_bound(build_problem(farm))
    assert expected > 100
    # The LP bound of scheduler.farm.bound may raise it (300 tasks: within its size limit).
    assert plan.bound >= min(expected, plan.objective) - 1e-6
    assert plan.bound <= plan.objective
