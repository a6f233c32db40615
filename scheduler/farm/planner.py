"""Plan a farm: greedy floor, then CP-SAT (flat when small, rolling horizon when large).

Makespan plans of independent tasks (no precedences, one availability window per resource)
use the assignment (load) model of :mod:`scheduler.farm.assign` instead of intervals
(docs/decisions/0063-farm-assignment-model.md).

The result is never worse than the greedy baseline: the solver is hinted with the best
heuristic plan, and if its answer scores worse (or it has none at the time limit) the heuristic
plan is returned with status ``greedy``. Every returned plan passes the independent checker.

The reported ``bound`` is the largest of the cheap bound of :func:`lower_bound`, the solver's
own and, for cost plans of up to ``LP_BOUND_MAX_TASKS`` tasks, the whole-chunk LP bound of
:mod:`scheduler.farm.bound` (docs/decisions/0064-farm-lp-bound.md).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

from scheduler.farm.assign import applies as assign_applies
from scheduler.farm.assign import solve_makespan
from scheduler.farm.checker import check_plan
from scheduler.farm.cpsat import solve_window
from scheduler.farm.greedy import greedy_schedule, improve_rented, randomised_restarts
from scheduler.farm.model import Assignment, Farm, JobFinish, Plan
from scheduler.farm.problem import (
    UNITS_PER_CNY,
    Problem,
    Schedule,
    assign_slots,
    build_problem,
    earliest_ends,
    lower_bound,
    score,
)
from scheduler.farm.rolling import improve_rolling
from scheduler.farm.tabu import applies as tabu_applies
from scheduler.farm.tabu import tabu_search

OBJECTIVES = ("cost", "makespan")
FLAT_MAX_INTERVALS = 3000
"""Above this many optional intervals one flat model is too slow on 2 cores; go rolling."""
TABU_SOLVER_SHARE = 0.25
TABU_SOLVER_MIN_S = 15.0
"""Job-shop makespan plans give CP-SAT max(25 % of the budget, min(15 s, half of it)) to
prove optimality before the tabu search takes the rest
(docs/decisions/0024-fjsp-tabu-after-cpsat.md)."""
RENT_SEARCH_SHARE = 0.8
"""Cost plans (not re-plans) spend this share of the solver's time on the forced-rent local
search of :func:`scheduler.farm.greedy.improve_rented`; CP-SAT (or the rolling horizon) then
starts from its plan (docs/decisions/0068-farm-cost-rent-search.md)."""
LP_BOUND_SHARE = 0.1
LP_BOUND_MAX_S = 30.0
LP_BOUND_MAX_TASKS = 500
"""Cost plans of up to this many tasks spend up to 10 % of the budget (at most 30 s) after
the solver on the whole-chunk LP bound of :mod:`scheduler.farm.bound`; above it its compact
LP alone takes longer than a 10 s plan can give (docs/decisions/0064-farm-lp-bound.md)."""


class PlanningError(RuntimeError):
    """No feasible plan was found (e.g. availability windows too short for the work)."""


def plan_farm(
    farm: Farm,
    objective: str = "cost",
    time_limit_s: float = 10.0,
    previous: Sequence[Assignment] | None = None,
    num_workers: int = 2,
    flat_max_intervals: int = FLAT_MAX_INTERVALS,
) -> Plan:
    """Plan every task of ``farm``.

    Args:
        farm: the validated farm.
        objective: ``cost`` (CNY: pool rent + lateness penalty) or ``makespan`` (seconds).
        time_limit_s: wall-clock budget for the whole call, model building included.
        previous: assignments of an earlier plan (re-planning after an event): used as the
            hint, and unaffected tasks stay where they were when that costs nothing.
        num_workers: CP-SAT workers.
        flat_max_intervals: size above which the rolling-horizon decomposition is used.

    Raises:
        PlanningError: when neither greedy nor the solver finds a feasible plan.
    """
    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {OBJECTIVES}, got {objective!r}")
    t0 = time.monotonic()
    deadline = t0 + time_limit_s
    problem = build_problem(farm)

    greedy: Schedule | None
    try:
        greedy = greedy_schedule(problem)
    except RuntimeError:
        greedy = None
    greedy_value = None if greedy is None else score(problem, greedy).value(objective)

    prefer, keep = _previous_maps(problem, previous)
    incumbent, incumbent_value = greedy, greedy_value
    if objective == "cost":
        for least_slack in (False, True):
            try:
                frugal = greedy_schedule(problem, cost_aware=True, least_slack=least_slack)
            except RuntimeError:
                continue
            value = score(problem, frugal).value(objective)
            if incumbent_value is None or value < incumbent_value:
                incumbent, incumbent_value = frugal, value
    if prefer:
        try:
            repaired: Schedule | None = greedy_schedule(problem, prefer=prefer)
        except RuntimeError:
            repaired = None
        if repaired is not None:
            value = score(problem, repaired).value(objective)
            if incumbent_value is None or value <= incumbent_value:
                incumbent, incumbent_value = repaired, value

    # Independent tasks, makespan: where each task runs is all that matters, and the
    # assignment (load) model plans it (docs/decisions/0063-farm-assignment-model.md).
    by_load = assign_applies(problem, objective, replanning=bool(keep))
    if incumbent is not None and not prefer and not by_load:
        restart_s = min(0.05 * time_limit_s, 3.0)
        incumbent = randomised_restarts(problem, objective, incumbent, time.monotonic() + restart_s)
        incumbent_value = None if incumbent is None else score(problem, incumbent).value(objective)

    # Time kept back for slot assignment, scoring and the checker after the solver stops.
    reserve_s = 0.1 + 4e-5 * problem.n_tasks
    n_intervals = sum(len(o) for o in problem.options)
    bound = lower_bound(problem, objective)
    if math.isinf(bound):
        stuck = next(t for t, e in enumerate(earliest_ends(problem)) if e is None)
        raise PlanningError(
            f"no feasible plan: task {problem.task_ids[stuck]!r} fits in no availability "
            "window after its predecessors"
        )
    lp_budget_s = 0.0
    if objective == "cost" and problem.n_tasks <= LP_BOUND_MAX_TASKS:
        lp_budget_s = min(LP_BOUND_SHARE * time_limit_s, LP_BOUND_MAX_S)
    solved: Schedule | None = None
    proved = False
    # Classic (flexible) job shops: CP-SAT first (it proves the small ones), then a dedicated
    # tabu search for the rest of the budget. Re-planning keeps CP-SAT's keep-in-place terms.
    job_shop = (
        objective == "makespan"
        and not keep
        and not by_load
        and incumbent is not None
        and tabu_applies(problem)
    )
    solver_deadline = deadline - reserve_s - lp_budget_s
    if objective == "cost" and not prefer and incumbent is not None:
        until = time.monotonic() + RENT_SEARCH_SHARE * max(solver_deadline - time.monotonic(), 0)
        incumbent = improve_rented(problem, objective, incumbent, until)
        incumbent_value = None if incumbent is None else score(problem, incumbent).value(objective)
    if job_shop:
        solver_deadline = min(
            solver_deadline,
            t0 + max(TABU_SOLVER_SHARE * time_limit_s, min(TABU_SOLVER_MIN_S, time_limit_s / 2)),
        )
    if by_load:
        assigned = solve_makespan(
            problem,
            incumbent,
            time_limit_s=max(solver_deadline - time.monotonic(), 0.1),
            num_workers=num_workers,
            lower_bound=math.ceil(bound - 1e-9),
        )
        if assigned.schedule is not None:
            solved = assigned.schedule
            proved = assigned.status == "optimal"
            bound = max(bound, assigned.bound)
    elif n_intervals <= flat_max_intervals or incumbent is None:
        # A makespan plan never needs to end after the incumbent's makespan.
        hi = (
            max(incumbent.end, default=0)
            if objective == "makespan" and incumbent is not None
            else None
        )
        result = solve_window(
            problem,
            objective,
            range(problem.n_tasks),
            current=None,
            hint=incumbent,
            hi_s=hi,
            time_limit_s=max(solver_deadline - time.monotonic(), 0.1),
            num_workers=num_workers,
            keep=keep,
        )
        if result.status != "none":
            n = problem.n_tasks
            group = [result.group[t] for t in range(n)]
            start = [result.start[t] for t in range(n)]
            end = [result.end[t] for t in range(n)]
            slot_prefer = {t: (r, s) for t, (r, s, _) in prefer.items()}
            solved = assign_slots(problem, group, start, end, slot_prefer)
            proved = result.status == "optimal"
            units = result.bound_units
            bound = max(bound, units / UNITS_PER_CNY if objective == "cost" else units)
    elif not job_shop:  # (a job shop too big for one model gives tabu the whole budget)
        rolled, improved = improve_rolling(
            problem, objective, incumbent, solver_deadline, num_workers, keep
        )
        solved = rolled if improved or keep else None

    if job_shop and not proved and incumbent is not None:
        start_from = incumbent
        if solved is not None and max(solved.end) <= max(incumbent.end):
            start_from = solved
        target = math.ceil(bound - 1e-9)
        searched = tabu_search(problem, start_from, deadline - reserve_s, target=target)
        if max(searched.end) < max(start_from.end):
            solved = searched
            proved = max(searched.end) <= target

    status = "greedy"
    chosen = incumbent
    if solved is not None:
        value = score(problem, solved).value(objective)
        if incumbent_value is None or value <= incumbent_value + 1e-9:
            chosen = solved
            status = "optimal" if proved else "feasible"
    if chosen is None:
        raise PlanningError("no feasible plan: greedy failed and the solver found none in time")
    if lp_budget_s and status != "optimal":
        # Imported here: makespan plans (FJSP, rcmax) never load the linear solver library.
        from scheduler.farm import bound as whole_chunk

        lp = whole_chunk.lp_bound(
            problem,
            objective,
            time_limit_s=max(deadline - reserve_s - time.monotonic(), 0.0),
            hint=chosen,
        )
        if lp is not None:
            bound = max(bound, lp)
    plan = _to_plan(problem, objective, chosen, status, bound, greedy_value, time.monotonic() - t0)
    report = check_plan(farm, plan.assignments, objective)
    if report.violations:
        raise PlanningError("planner produced an invalid plan: " + "; ".join(report.violations[:5]))
    return plan


def _previous_maps(
    problem: Problem, previous: Sequence[Assignment] | None
) -> tuple[dict[int, tuple[int, int, int]], dict[int, tuple[int, int]]]:
    """Previous assignments still possible: task -> (resource, slot, start) and (group, start)."""
    prefer: dict[int, tuple[int, int, int]] = {}
    keep: dict[int, tuple[int, int]] = {}
    if not previous:
        return prefer, keep
    t_index = {tid: i for i, tid in enumerate(problem.task_ids)}
    r_index = {r.id: i for i, r in enumerate(problem.resources)}
    for a in previous:
        ti, ri = t_index.get(a.task), r_index.get(a.resource)
        if ti is None or ri is None or ri not in problem.duration_on[ti]:
            continue
        if a.slot >= problem.resources[ri].slots:
            continue
        prefer[ti] = (ri, a.slot, a.start_s)
        keep[ti] = (problem.group_of[ri], a.start_s)
    return prefer, keep


def _to_plan(
    problem: Problem,
    objective: str,
    sched: Schedule,
    status: str,
    bound: float,
    greedy_value: float | None,
    seconds: float,
) -> Plan:
    s = score(problem, sched)
    value = s.value(objective)
    if status == "optimal":
        bound = value
    assignments = tuple(
        Assignment(
            task=problem.task_ids[t],
            resource=problem.resources[sched.resource[t]].id,
            slot=sched.slot[t],
            start_s=sched.start[t],
            end_s=sched.end[t],
        )
        for t in sorted(range(problem.n_tasks), key=lambda t: (sched.start[t], t))
    )
    jobs = tuple(
        JobFinish(job.id, s.job_finish_s[j], s.job_late_s[j])
        for j, job in enumerate(problem.farm.jobs)
    )
    return Plan(
        status=status,
        objective_name=objective,
        objective=value,
        bound=min(bound, value),
        greedy_objective=greedy_value,
        solve_seconds=seconds,
        makespan_s=s.makespan_s,
        cost_cny=s.cost_cny,
        assignments=assignments,
        jobs=jobs,
    )
