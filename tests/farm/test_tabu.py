from __future__ import annotations

import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scheduler.farm.checker import check_plan
from scheduler.farm.fjsp import load_fjs, parse_fjs
from scheduler.farm.generate import synthetic_farm
from scheduler.farm.greedy import greedy_schedule
from scheduler.farm.model import Assignment, Farm, parse_farm
from scheduler.farm.planner import plan_farm
from scheduler.farm.problem import Problem, Schedule, build_problem
from scheduler.farm.tabu import applies, tabu_search
from tests.conftest import require_path

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "scheduling"

# 4 jobs x 3 operations on 3 machines, with machine choices ("<ops> (<k> (<machine> <time>)*)*").
TINY = """4 3
3 2 1 3 2 5 1 2 4 2 1 2 3 3
3 1 1 4 2 2 2 3 3 1 3 2
3 2 2 3 3 2 1 1 3 2 2 2 3 4
3 1 3 5 2 1 2 2 3 1 2 3
"""


def _mk(name: str) -> Farm:
    path = DATA / f"{name}.fjs"
    require_path(path)
    return load_fjs(path)


def _assignments(problem: Problem, sched: Schedule) -> list[Assignment]:
    return [
        Assignment(
            task=problem.task_ids[t],
            resource=problem.resources[sched.resource[t]].id,
            slot=sched.slot[t],
            start_s=sched.start[t],
            end_s=sched.end[t],
        )
        for t in range(problem.n_tasks)
    ]


def _assert_valid_semi_active(farm: Farm, problem: Problem, sched: Schedule) -> None:
    report = check_plan(farm, _assignments(problem, sched), "makespan")
    assert report.ok, report.violations[:5]
    assert report.makespan_s == max(sched.end)
    by_machine: dict[int, list[int]] = {}
    for t in sorted(range(problem.n_tasks), key=lambda t: sched.start[t]):
        by_machine.setdefault(sched.resource[t], []).append(t)
    machine_pred_end = {}
    for tasks in by_machine.values():
        for a, b in zip(tasks, tasks[1:], strict=False):
            machine_pred_end[b] = sched.end[a]
    for t in range(problem.n_tasks):
        job_end = max((sched.end[p] for p in problem.preds[t]), default=0)
        assert sched.start[t] == max(job_end, machine_pred_end.get(t, 0)), t


def _serial(problem: Problem) -> Schedule:
    """A poor but feasible plan: every task on its first machine, one after another."""
    resource, slot, start, end = [], [], [], []
    now = 0
    for t in range(problem.n_tasks):  # jobs' tasks are consecutive and in chain order
        ri, d = min(problem.duration_on[t].items())
        resource.append(ri)
        slot.append(0)
        start.append(now)
        end.append(now + d)
        now += d
    return Schedule(resource, slot, start, end)


def test_applies_to_fjsp_but_not_to_render_farms() -> None:
    assert applies(build_problem(parse_farm(parse_fjs(TINY, "tiny"))))
    assert applies(build_problem(_mk("mk10")))  # four unused machines share one group
    assert not applies(build_problem(parse_farm(synthetic_farm(30, 8, 1))))


def test_mk01_improves_greedy_within_two_seconds() -> None:
    farm = _mk("mk01")
    problem = build_problem(farm)
    greedy = greedy_schedule(problem)
    sched = tabu_search(problem, greedy, time.monotonic() + 2.0, seed=0)
    _assert_valid_semi_active(farm, problem, sched)
    assert max(sched.end) < max(greedy.end)
    assert max(sched.end) <= 42  # optimum 40


@pytest.mark.parametrize("name", ["mk04", "mk10"])
def test_never_worse_than_initial_and_meets_deadline(name: str) -> None:
    farm = _mk(name)
    problem = build_problem(farm)
    greedy = greedy_schedule(problem)
    # Delay everything: the machine orders are what count, the result is compacted.
    shifted = Schedule(
        greedy.resource, greedy.slot, [s + 7 for s in greedy.start], [e + 7 for e in greedy.end]
    )
    for initial, budget in ((greedy, 0.0), (greedy, 0.5), (shifted, 0.3)):
        t0 = time.monotonic()
        sched = tabu_search(problem, initial, t0 + budget, seed=1)
        assert time.monotonic() - t0 < budget + 2.0  # stops at the deadline
        _assert_valid_semi_active(farm, problem, sched)
        assert max(sched.end) <= max(greedy.end)


def test_tiny_instance_reaches_the_proved_optimum() -> None:
    farm = parse_farm(parse_fjs(TINY, "tiny"))
    problem = build_problem(farm)
    exact = plan_farm(farm, "makespan", time_limit_s=5)
    assert exact.status == "optimal"
    start = _serial(problem)
    assert max(start.end) > exact.makespan_s
    sched = tabu_search(problem, start, time.monotonic() + 2.0, seed=0, target=exact.makespan_s)
    _assert_valid_semi_active(farm, problem, sched)
    assert max(sched.end) == exact.makespan_s


def test_target_and_iteration_limit_stop_early() -> None:
    farm = _mk("mk01")
    problem = build_problem(farm)
    greedy = greedy_schedule(problem)
    t0 = time.monotonic()
    same = tabu_search(problem, greedy, t0 + 10.0, target=max(greedy.end))
    assert max(same.end) <= max(greedy.end)
    sched = tabu_search(problem, greedy, t0 + 10.0, max_iterations=50)
    assert time.monotonic() - t0 < 5.0
    _assert_valid_semi_active(farm, problem, sched)


def test_seeds_are_reproducible() -> None:
    farm = _mk("mk01")
    problem = build_problem(farm)
    greedy = greedy_schedule(problem)
    a = tabu_search(problem, greedy, time.monotonic() + 10.0, seed=3, max_iterations=300)
    b = tabu_search(problem, greedy, time.monotonic() + 10.0, seed=3, max_iterations=300)
    assert a == b


def test_planner_hands_job_shops_to_tabu_after_cpsat() -> None:
    farm = _mk("mk10")
    plan = plan_farm(farm, "makespan", time_limit_s=6.0)
    assert check_plan(farm, plan.assignments, "makespan").ok
    # CP-SAT alone stays at 208-212 even with 60 s; 3 s of tabu after it gets ~203 here.
    assert plan.makespan_s <= 210
    assert plan.status == "feasible" and plan.bound < plan.makespan_s


def test_planner_keeps_cpsat_proofs_for_small_job_shops() -> None:
    farm = _mk("mk01")
    plan = plan_farm(farm, "makespan", time_limit_s=20.0)
    assert plan.status == "optimal" and plan.makespan_s == 40


@st.composite
def job_shops(draw: st.DrawFn) -> str:
    """Random .fjs text: 1-4 jobs of 1-5 operations, 1-3 machine choices each, on 1-4 machines."""
    n_machines = draw(st.integers(1, 4))
    rows = []
    for _ in range(draw(st.integers(1, 4))):
        ops = []
        for _ in range(draw(st.integers(1, 5))):
            machines = draw(
                st.lists(st.integers(1, n_machines), min_size=1, max_size=3, unique=True)
            )
            pairs = [f"{m} {draw(st.integers(1, 20))}" for m in machines]
            ops.append(f"{len(machines)} " + " ".join(pairs))
        rows.append(f"{len(ops)} " + " ".join(ops))
    return f"{len(rows)} {n_machines}\n" + "\n".join(rows) + "\n"


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=job_shops(), seed=st.integers(0, 3))
def test_random_job_shops_stay_valid_and_never_get_worse(text: str, seed: int) -> None:
    farm = parse_farm(parse_fjs(text, "random"))
    problem = build_problem(farm)
    assert applies(problem)
    greedy = greedy_schedule(problem)
    sched = tabu_search(problem, greedy, time.monotonic() + 5.0, seed=seed, max_iterations=200)
    _assert_valid_semi_active(farm, problem, sched)
    assert max(sched.end) <= max(greedy.end)
    # Through the planner: CP-SAT then tabu; the answer is checked and the bound is valid.
    plan = plan_farm(farm, "makespan", time_limit_s=0.6)
    assert check_plan(farm, plan.assignments, "makespan").ok
    assert plan.makespan_s <= max(greedy.end)
    assert plan.bound <= plan.makespan_s


def test_large_job_shops_skip_the_flat_model_and_use_a_sparse_tabu_table(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    farm = _mk("mk01")
    # As if mk01 were too big for one CP-SAT model: tabu gets the whole budget.
    plan = plan_farm(farm, "makespan", time_limit_s=2.0, flat_max_intervals=10)
    assert check_plan(farm, plan.assignments, "makespan").ok
    assert plan.makespan_s <= 42 and plan.makespan_s < (plan.greedy_objective or 0)
    # The sparse arc table (used above DENSE_TABU_MAX) searches the same way as the list.
    problem = build_problem(farm)
    greedy = greedy_schedule(problem)
    dense = tabu_search(problem, greedy, time.monotonic() + 10.0, seed=2, max_iterations=300)
    monkeypatch.setattr("scheduler.farm.tabu.DENSE_TABU_MAX", 0)
    sparse = tabu_search(problem, greedy, time.monotonic() + 10.0, seed=2, max_iterations=300)
    assert sparse == dense
