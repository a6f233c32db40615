"""The assignment (load) model for independent tasks (docs/decisions/0063).

Real solver throughout: when the model is chosen, that it loses no optimum to the ordering
of identical slots, that its plans pass the checker, and that on the public rcmax_1 instance
it is no worse than the textbook assignment model given the same time and workers.
"""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Any

import pytest

from scheduler.farm import assign, planner
from scheduler.farm.checker import check_plan
from scheduler.farm.greedy import greedy_schedule
from scheduler.farm.model import parse_farm
from scheduler.farm.planner import plan_farm
from scheduler.farm.problem import Problem, build_problem
from scheduler.farm.rcmax import rcmax_farm, read_rcmax, textbook_makespan
from tests.conftest import require_path

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "scheduling"


def independent_farm(seed: int, n_tasks: int = 6, pool_slots: int = 2) -> dict[str, Any]:
    """Identical slots (a 2-slot node and a twin 1-slot node), a slow node, a pool with a
    startup delay; tasks of random work, one zero-length."""
    rng = random.Random(seed)
    return {
        "nodes": [
            {"id": "a", "slots": 2, "vram_gb": 24},
            {"id": "b", "slots": 1, "vram_gb": 24},
            {"id": "slow", "slots": 1, "vram_gb": 24, "speed": 0.5},
        ],
        "pools": [
            {
                "id": "cloud",
                "max_slots": pool_slots,
                "vram_gb": 80,
                "speed": 2.0,
                "cost_per_gpu_hour_cny": 30,
                "startup_seconds": rng.choice((0, 150, 400)),
            }
        ],
        "jobs": [
            {
                "id": "j",
                "tasks": [
                    {"id": f"t{i}", "work": 0 if i == 0 else rng.randint(50, 900)}
                    for i in range(n_tasks)
                ],
            }
        ],
    }


def brute_force_makespan(problem: Problem) -> int:
    """The optimum by enumeration over every slot of every group, task by task.

    A state is the slots' finish times and which slots are used; only exact duplicates are
    merged, so nothing here relies on slots being interchangeable.
    """
    slots = [
        (g, grp.windows[0][0]) for g, grp in enumerate(problem.groups) for _ in range(grp.capacity)
    ]
    start = (tuple(opens for _, opens in slots), frozenset[int]())
    states = {start}
    for opts in problem.options:
        nxt = set()
        for finish, used in states:
            for si, (g, _) in enumerate(slots):
                for o in opts:
                    if o.group == g:
                        new = list(finish)
                        new[si] += o.duration_s
                        nxt.add((tuple(new), used | {si}))
        states = nxt
    return min(max((finish[si] for si in used), default=0) for finish, used in states)


def test_applies_only_to_independent_makespan_farms() -> None:
    data = independent_farm(1)
    problem = build_problem(parse_farm(data))
    assert assign.applies(problem, "makespan")
    assert not assign.applies(problem, "cost")
    assert not assign.applies(problem, "makespan", replanning=True)

    chained = independent_farm(1)
    chained["jobs"][0]["tasks"][2]["after"] = ["t1"]
    assert not assign.applies(build_problem(parse_farm(chained)), "makespan")

    gap = independent_farm(1)
    gap["nodes"][0]["available"] = [[0, 1000], [2000, None]]
    assert not assign.applies(build_problem(parse_farm(gap)), "makespan")

    # One window from a later time on (or a bounded one) is still only a per-slot load.
    late = independent_farm(1)
    late["nodes"][2]["available"] = [[300, 5000]]
    assert assign.applies(build_problem(parse_farm(late)), "makespan")


def test_planner_uses_the_assignment_model_only_where_it_applies(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[int] = []
    real = assign.solve_makespan

    def spy(problem: Problem, *args: Any, **kwargs: Any) -> assign.AssignResult:
        calls.append(problem.n_tasks)
        return real(problem, *args, **kwargs)

    monkeypatch.setattr(planner, "solve_makespan", spy)
    independent = parse_farm(independent_farm(2))
    plan = plan_farm(independent, "makespan", time_limit_s=3)
    assert calls == [6]
    assert plan.status == "optimal"
    assert plan.makespan_s == brute_force_makespan(build_problem(independent))

    chained = independent_farm(2)
    chained["jobs"][0]["tasks"][3]["after"] = ["t1", "t2"]
    farm = parse_farm(chained)
    plan = plan_farm(farm, "makespan", time_limit_s=2)
    assert calls == [6]  # the interval model planned the chain
    assert check_plan(farm, plan.assignments).ok


@pytest.mark.parametrize("seed", range(6))
def test_identical_slot_ordering_loses_no_optimum(seed: int) -> None:
    problem = build_problem(parse_farm(independent_farm(seed, n_tasks=7, pool_slots=1)))
    # The two 24 GB nodes are one group of three interchangeable slots, 7 tasks on 5 slots.
    assert max(g.capacity for g in problem.groups) == 3
    optimum = brute_force_makespan(problem)
    for symmetry in (True, False):
        result = assign.solve_makespan(
            problem, None, time_limit_s=10, symmetry=symmetry, search_share=0
        )
        assert result.status == "optimal"
        assert result.schedule is not None
        assert max(result.schedule.end) == optimum


@pytest.mark.parametrize("seed", range(4))
def test_assignment_plans_pass_the_checker(seed: int) -> None:
    data = independent_farm(seed, n_tasks=14)
    data["nodes"][2]["available"] = [[200, 6000]]
    farm = parse_farm(data)
    plan = plan_farm(farm, "makespan", time_limit_s=3)
    report = check_plan(farm, plan.assignments, "makespan")
    assert report.ok, report.violations
    assert plan.objective == report.makespan_s
    assert plan.greedy_objective is not None and plan.objective <= plan.greedy_objective
    assert plan.bound <= plan.objective


def test_search_keeps_a_plan_it_cannot_improve_and_improves_greedy() -> None:
    problem = build_problem(parse_farm(independent_farm(3, n_tasks=12)))
    greedy = greedy_schedule(problem)
    slots = assign._slots(problem)
    better = assign.improve_by_search(problem, slots, greedy, until=time.monotonic() + 0.5)
    assert max(better.end) <= max(greedy.end)
    # With the greedy makespan as the lower bound there is nothing to search for.
    same = assign.improve_by_search(
        problem, slots, greedy, until=float("inf"), lower_bound=max(greedy.end)
    )
    assert same is greedy


def test_rcmax_1_no_worse_than_the_textbook_model() -> None:
    times = read_rcmax(require_path(DATA / "rcmax_1.txt"))
    farm = parse_farm(rcmax_farm(times))
    plan = plan_farm(farm, "makespan", time_limit_s=6, num_workers=2)
    assert check_plan(farm, plan.assignments, "makespan").ok
    plain = textbook_makespan(times, 6, 2).makespan
    assert plain is not None
    assert plan.makespan_s <= plain
    assert plan.makespan_s >= 117  # the proved optimum (README of the data)
