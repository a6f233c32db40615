from __future__ import annotations

import math

import pytest

from scheduler.farm.checker import check_plan
from scheduler.farm.model import Assignment, parse_farm
from scheduler.farm.planner import PlanningError, plan_farm
from scheduler.farm.problem import (
    assign_slots,
    build_problem,
    earliest_ends,
    fit_start,
    lower_bound,
)


def _farm() -> dict[str, object]:
    return {
        "nodes": [
            {"id": "a", "slots": 2, "vram_gb": 24},
            {"id": "b", "slots": 2, "vram_gb": 24},
            {"id": "c", "slots": 1, "vram_gb": 24, "available": [[0, 50], [80, None]]},
        ],
        "jobs": [
            {
                "id": "j",
                "tasks": [{"id": f"t{i}", "work": 100} for i in range(4)]
                + [{"id": "zero", "work": 0}],
            }
        ],
    }


def test_identical_nodes_are_one_group() -> None:
    problem = build_problem(parse_farm(_farm()))
    assert len(problem.groups) == 2  # a+b merged (4 slots), c alone (its windows differ)
    assert sorted(g.capacity for g in problem.groups) == [1, 4]


def test_slot_assignment_colours_a_full_group_and_zero_length_work() -> None:
    farm = parse_farm(_farm())
    problem = build_problem(farm)
    g = problem.group_of[0]
    # Four 100 s tasks fill all four slots of a+b; the zero-length task sits in the middle.
    start = [0, 0, 0, 0, 50]
    end = [100, 100, 100, 100, 50]
    sched = assign_slots(problem, [g] * 5, start, end)
    plan = [
        Assignment(
            problem.task_ids[t],
            problem.resources[sched.resource[t]].id,
            sched.slot[t],
            start[t],
            end[t],
        )
        for t in range(5)
    ]
    report = check_plan(farm, plan)
    assert report.ok, report.violations


def test_fit_start_respects_windows() -> None:
    windows = ((0, 50), (80, 10**12))
    assert fit_start(windows, 0, 40) == 0
    assert fit_start(windows, 20, 40) == 80
    assert fit_start(windows, 60, 10) == 80
    assert fit_start(((0, 50),), 20, 40) is None


def _closing_chain() -> dict[str, object]:
    """A node open until 100 s only; ``b`` (80 s) must wait for ``a`` (80 s): it never fits."""
    return {
        "nodes": [{"id": "n", "slots": 1, "vram_gb": 24, "available": [[0, 100]]}],
        "jobs": [
            {
                "id": "j",
                "deadline": 50,
                "tasks": [
                    {"id": "a", "work": 80},
                    {"id": "b", "work": 80, "after": ["a"]},
                    {"id": "c", "work": 10, "after": ["b"]},
                ],
            }
        ],
    }


def test_a_chained_task_that_cannot_fit_gives_an_infinite_bound_not_a_crash() -> None:
    problem = build_problem(parse_farm(_closing_chain()))
    ends = earliest_ends(problem)
    index = {tid: i for i, tid in enumerate(problem.task_ids)}
    assert ends[index["a"]] == 80
    assert ends[index["b"]] is None and ends[index["c"]] is None
    for objective in ("cost", "makespan"):
        assert lower_bound(problem, objective) == math.inf


def test_the_planner_names_the_task_that_cannot_fit() -> None:
    with pytest.raises(PlanningError, match="'b'"):
        plan_farm(parse_farm(_closing_chain()), "cost", time_limit_s=1)
