"""The forced-rent local search of cost plans (scheduler.farm.greedy.improve_rented, 0068)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from scheduler.farm import greedy, planner
from scheduler.farm.checker import check_plan
from scheduler.farm.generate import synthetic_farm
from scheduler.farm.greedy import greedy_schedule, improve_rented
from scheduler.farm.model import parse_farm
from scheduler.farm.planner import plan_farm
from scheduler.farm.problem import Problem, Schedule, build_problem, score


def test_forced_tasks_go_to_pools_and_the_rest_choose_as_the_frugal_greedy() -> None:
    problem = build_problem(parse_farm(synthetic_farm(40, 8, 1)))
    pools = {ri for ri, r in enumerate(problem.resources) if r.is_pool}
    frugal = greedy_schedule(problem, cost_aware=True, least_slack=True)
    on_nodes = [t for t in range(problem.n_tasks) if frugal.resource[t] not in pools]
    forced = set(on_nodes[:5])
    plan = greedy_schedule(problem, cost_aware=True, least_slack=True, rented=forced)
    assert all(plan.resource[t] in pools for t in forced)
    assert greedy_schedule(problem, cost_aware=True, least_slack=True, rented=set()) == frugal


def test_the_search_is_never_worse_than_its_start_and_keeps_makespan_plans() -> None:
    problem = build_problem(parse_farm(synthetic_farm(60, 8, 2)))
    start = greedy_schedule(problem, cost_aware=True, least_slack=True)
    found = improve_rented(problem, "cost", start, time.monotonic() + 1.0)
    assert found is not None
    assert score(problem, found).value("cost") <= score(problem, start).value("cost") + 1e-9
    # No time: the start, or the first decode when that is better.
    quick = improve_rented(problem, "cost", start, time.monotonic())
    assert quick is not None
    assert score(problem, quick).value("cost") <= score(problem, start).value("cost") + 1e-9
    assert improve_rented(problem, "makespan", start, time.monotonic() + 1.0) is start


def test_the_search_improves_on_the_frugal_greedy_of_the_bench_farm() -> None:
    problem = build_problem(parse_farm(synthetic_farm(100, 16, 1)))
    frugal = min(
        (greedy_schedule(problem, cost_aware=True, least_slack=s) for s in (False, True)),
        key=lambda p: score(problem, p).value("cost"),
    )
    # A fixed number of steps, not a time: the steps are seeded, so this is reproducible.
    found = improve_rented(problem, "cost", None, until=float("inf"), max_steps=400)
    assert found is not None
    assert score(problem, found).value("cost") < score(problem, frugal).value("cost") - 1.0


def test_plan_farm_starts_cpsat_from_the_search_on_cost_farms_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[str] = []
    real = greedy.improve_rented

    def spy(problem: Problem, objective: str, *args: Any, **kwargs: Any) -> Schedule | None:
        calls.append(objective)
        return real(problem, objective, *args, **kwargs)

    monkeypatch.setattr(planner, "improve_rented", spy)
    farm = parse_farm(synthetic_farm(40, 8, 3))
    plan = plan_farm(farm, "cost", time_limit_s=3)
    assert calls == ["cost"]
    assert check_plan(farm, plan.assignments).ok
    assert plan.greedy_objective is not None
    assert plan.objective <= plan.greedy_objective + 1e-9
    plan_farm(farm, "makespan", time_limit_s=2)
    assert calls == ["cost"]
