"""The whole-chunk LP bound (scheduler.farm.bound): valid against proven optima, and stronger.

plan_farm reports ``max(lower_bound, CP-SAT's bound, lp_bound)`` for cost plans of up to
``planner.LP_BOUND_MAX_TASKS`` tasks, the LP run after the solver with the chosen plan as its
hint; the last tests check that wiring.
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from scheduler.farm import bound as bound_module
from scheduler.farm import planner
from scheduler.farm.bound import lp_bound
from scheduler.farm.cpsat import WindowResult
from scheduler.farm.generate import synthetic_farm
from scheduler.farm.greedy import greedy_schedule
from scheduler.farm.model import parse_farm
from scheduler.farm.planner import PlanningError, plan_farm
from scheduler.farm.problem import build_problem, lower_bound

TOL = 1e-6


def two_chunks_one_slot() -> dict[str, Any]:
    """Two 600 s chunks due at 1000 s and one free slot: one chunk must be rented (6 CNY).

    Capacity as a fluid sees only 200 s too many (2 CNY of rent); being late instead costs
    200 s at 1000 CNY/h (55.6 CNY).
    """
    return {
        "late_cost_cny_per_hour": 1000,
        "nodes": [{"id": "n", "slots": 1, "vram_gb": 24, "speed": 1.0}],
        "pools": [
            {
                "id": "cloud",
                "max_slots": 2,
                "vram_gb": 80,
                "speed": 1.0,
                "cost_per_gpu_hour_cny": 36,
                "startup_seconds": 0,
            }
        ],
        "jobs": [
            {
                "id": "a",
                "priority": 1,
                "deadline": 1000,
                "tasks": [{"id": "a1", "work": 600}, {"id": "a2", "work": 600}],
            }
        ],
    }


def random_tiny_farm(rng: random.Random) -> dict[str, Any]:
    """1-3 nodes (some with a maintenance gap or closing for good), maybe a pool, 1-4 jobs.

    Late costs from 1 to 1000 CNY/h, so that in some farms being late is the cheapest choice
    and the lateness levels of the bound matter.
    """
    nodes = []
    for i in range(rng.randint(1, 3)):
        node: dict[str, Any] = {
            "id": f"n{i}",
            "slots": rng.randint(1, 2),
            "vram_gb": rng.choice((24, 48)),
            "speed": rng.choice((1.0, 1.5, 2.0)),
        }
        if rng.random() < 0.4:
            a = rng.randint(300, 2000)
            b = a + rng.randint(200, 1500)
            node["available"] = [[0, a], [b, None]] if rng.random() < 0.7 else [[0, b]]
        nodes.append(node)
    pools = []
    if rng.random() < 0.85:
        pools.append(
            {
                "id": "cloud",
                "max_slots": rng.randint(1, 3),
                "vram_gb": 80,
                "speed": rng.choice((1.0, 2.0)),
                "cost_per_gpu_hour_cny": rng.choice((10.0, 28.5, 60.0)),
                "startup_seconds": rng.choice((0, 120, 600)),
            }
        )
    jobs = []
    for j in range(rng.randint(1, 4)):
        tasks: list[dict[str, Any]] = []
        for t in range(rng.randint(1, 4)):
            task: dict[str, Any] = {
                "id": f"j{j}t{t}",
                "work": rng.choice((0, 300, 600, 900, 1200, 2000)),
            }
            if t > 0 and rng.random() < 0.4:
                task["after"] = [f"j{j}t{rng.randrange(t)}"]
            tasks.append(task)
        job: dict[str, Any] = {
            "id": f"j{j}",
            "priority": rng.choice((1, 2, 3)),
            "vram_gb": rng.choice((0, 24, 40)),
            "tasks": tasks,
        }
        if rng.random() < 0.85:
            job["deadline"] = rng.randint(200, 3000)
        jobs.append(job)
    return {
        "late_cost_cny_per_hour": rng.choice((1.0, 10.0, 50.0, 1000.0)),
        "nodes": nodes,
        "pools": pools,
        "jobs": jobs,
    }


def test_whole_chunks_are_rented_not_a_fraction_of_them() -> None:
    farm = parse_farm(two_chunks_one_slot())
    problem = build_problem(farm)
    plan = plan_farm(farm, "cost", time_limit_s=10)
    assert plan.status == "optimal"
    assert plan.objective == pytest.approx(6.0)
    bound = lp_bound(problem, "cost", time_limit_s=5.0)
    assert bound is not None
    # The fluid bounds see 200 s of rent; this one sees the whole 600 s chunk.
    assert lower_bound(problem, "cost") < 2.0 + TOL
    assert bound == pytest.approx(6.0, abs=1e-6)
    assert bound <= plan.objective + TOL


def test_lateness_is_bounded_by_its_cost_when_it_is_cheaper_than_rent() -> None:
    raw = two_chunks_one_slot()
    raw["late_cost_cny_per_hour"] = 5  # 200 s late costs 0.28 CNY, renting 6 CNY
    farm = parse_farm(raw)
    plan = plan_farm(farm, "cost", time_limit_s=10)
    assert plan.status == "optimal"
    assert plan.objective == pytest.approx(200 * 5 / 3600)
    bound = lp_bound(build_problem(farm), "cost", time_limit_s=5.0)
    assert bound is not None
    assert 0.0 < bound <= plan.objective + TOL


def test_never_above_a_proven_optimum_on_random_tiny_farms() -> None:
    rng = random.Random(16)
    checked = positive = stronger = 0
    for _ in range(60):
        farm = parse_farm(random_tiny_farm(rng))
        try:
            plan = plan_farm(farm, "cost", time_limit_s=10)
        except PlanningError:
            continue  # no plan (work that cannot fit before a node closes for good)
        if plan.status != "optimal":
            continue
        problem = build_problem(farm)
        bound = lp_bound(problem, "cost", time_limit_s=5.0)
        assert bound is not None
        assert bound <= plan.objective + TOL, (farm, plan.objective, bound)
        checked += 1
        positive += bound > TOL
        stronger += bound > lower_bound(problem, "cost") + 1e-3
    # The sample means something: most farms proved, many with a bound above zero, and some
    # where it beats the fluid bounds.
    assert checked >= 40
    assert positive >= 15
    assert stronger >= 3


@pytest.mark.parametrize(("chunks", "slots", "seed"), [(20, 4, 1), (24, 6, 0), (20, 4, 3)])
def test_never_above_a_proven_optimum_on_small_synthetic_farms(
    chunks: int, slots: int, seed: int
) -> None:
    farm = parse_farm(synthetic_farm(chunks, slots, seed))
    plan = plan_farm(farm, "cost", time_limit_s=30)
    problem = build_problem(farm)
    hint = greedy_schedule(problem)
    bound = lp_bound(problem, "cost", time_limit_s=5.0, hint=hint)
    assert bound is not None
    if plan.status == "optimal":
        assert bound <= plan.objective + TOL
    else:
        assert bound <= plan.objective + TOL  # any plan is above every lower bound


def test_stronger_than_the_fluid_bound_on_the_bench_farm() -> None:
    farm = parse_farm(synthetic_farm(100, 16, 1))
    problem = build_problem(farm)
    bound = lp_bound(problem, "cost", time_limit_s=10.0)
    assert bound is not None
    # Every plan is above it; the fluid bounds stop at 153.7 (cheap) and 177.85 (CP-SAT).
    greedy = plan_farm(farm, "cost", time_limit_s=2.0)
    assert bound <= greedy.objective + TOL
    assert bound > max(lower_bound(problem, "cost"), 177.85) + 5.0


def test_makespan_and_no_time_give_none() -> None:
    problem = build_problem(parse_farm(synthetic_farm(100, 16, 1)))
    assert lp_bound(problem, "makespan") is None
    assert lp_bound(problem, "cost", time_limit_s=0.0) is None


def _spy_lp(monkeypatch: pytest.MonkeyPatch) -> list[float | None]:
    """Record every value plan_farm's lp_bound returns."""
    seen: list[float | None] = []

    def spy(*args: Any, **kwargs: Any) -> float | None:
        value = lp_bound(*args, **kwargs)
        seen.append(value)
        return value

    monkeypatch.setattr(bound_module, "lp_bound", spy)
    return seen


def test_plan_farm_reports_the_lp_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    farm = parse_farm(synthetic_farm(100, 16, 1))
    problem = build_problem(farm)
    seen = _spy_lp(monkeypatch)
    plan = plan_farm(farm, "cost", time_limit_s=4.0)
    assert plan.status != "optimal"  # 100 x 16 is not proved in seconds (decision 0020)
    assert len(seen) == 1 and seen[0] is not None
    # Never below the bounds reported before (the cheap one, and the LP bound is the larger
    # here); never above the plan.
    assert plan.bound >= lower_bound(problem, "cost")
    assert plan.bound >= min(seen[0], plan.objective) - TOL
    assert plan.bound <= plan.objective + TOL


@pytest.mark.parametrize(("chunks", "slots", "seed"), [(20, 4, 1), (24, 6, 0)])
def test_the_reported_bound_stays_below_the_optimum(
    monkeypatch: pytest.MonkeyPatch, chunks: int, slots: int, seed: int
) -> None:
    farm = parse_farm(synthetic_farm(chunks, slots, seed))
    best = plan_farm(farm, "cost", time_limit_s=30)
    # The solver switched off: the greedy plan comes back with the cheap and the LP bound.
    monkeypatch.setattr(
        planner,
        "solve_window",
        lambda *a, **k: WindowResult("none", {}, {}, {}, 0.0, 0.0),
    )
    seen = _spy_lp(monkeypatch)
    plan = plan_farm(farm, "cost", time_limit_s=10)
    assert plan.status == "greedy"
    assert len(seen) == 1 and seen[0] is not None
    assert plan.bound >= min(max(lower_bound(build_problem(farm), "cost"), seen[0]), plan.objective)
    assert plan.bound <= best.objective + TOL  # a bound on every plan, the best one included
