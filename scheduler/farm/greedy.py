"""Greedy baseline: earliest-deadline-first list scheduling onto the earliest-finishing slot.

This is what classic farm managers do (dispatch by priority/deadline to whatever frees up
first). The planner uses it twice: as the CP-SAT solution hint and as the floor it never
returns worse than (docs/decisions/0021-farm-never-worse-than-greedy.md).
"""

from __future__ import annotations

import heapq
import math
import random
import time
from collections.abc import Collection, Sequence

from scheduler.farm.problem import Problem, Schedule, fit_start, score


def greedy_schedule(
    problem: Problem,
    prefer: dict[int, tuple[int, int, int]] | None = None,
    cost_aware: bool = False,
    least_slack: bool = False,
    rank_work: Sequence[float] | None = None,
    rented: Collection[int] | None = None,
) -> Schedule:
    """List-schedule every task; raises RuntimeError when some task finds no slot.

    Ready tasks (all predecessors placed) are taken by earliest deadline, then highest
    priority, then earliest ready time, then most work left on their chain, and put on the
    (resource, slot) where they finish first; ties go to the cheaper resource. ``prefer``
    maps a task to a (resource, slot, start) it held in a previous plan: such tasks are
    taken in order of that start and kept there whenever the slot is still free in time
    (re-planning keeps unaffected work in place).
    ``cost_aware`` (a hint for the solver, not the baseline) instead takes the cheapest
    resource that still lets the job meet its deadline, and the earliest finish otherwise.
    ``least_slack`` orders by deadline minus the work left on the task's chain instead.
    ``rank_work`` replaces that chain work in the ordering (randomised restarts).
    ``rented`` (with ``cost_aware``: the decoder of :func:`improve_rented`) puts these tasks
    in pools; the others choose as ``cost_aware`` does. Renting a task can leave the nodes
    free for longer ones that would otherwise be rented.
    """
    n = problem.n_tasks
    free_at = [[0] * r.slots for r in problem.resources]
    sched = Schedule([-1] * n, [-1] * n, [0] * n, [0] * n)
    missing = [len(p) for p in problem.preds]
    ready_at = [0] * n
    farm = problem.farm
    heap: list[tuple[float, float, float, float, int]] = []
    remaining = _remaining_work(problem)
    rank = remaining if rank_work is None else rank_work
    latest_end: list[float | None] = [None] * n
    if cost_aware or rented is not None:
        for ti in range(n):
            due = farm.jobs[problem.job_of[ti]].deadline_s
            latest_end[ti] = math.inf
            if due is not None:
                latest_end[ti] = due - (remaining[ti] - min(problem.duration_on[ti].values()))

    def push(ti: int) -> None:
        job = farm.jobs[problem.job_of[ti]]
        if prefer is not None:
            keep = prefer.get(ti)
            first = float(keep[2]) if keep is not None else float(ready_at[ti])
            heapq.heappush(heap, (first, 0.0 if keep else 1.0, -job.priority, 0.0, ti))
            return
        deadline = math.inf if job.deadline_s is None else float(job.deadline_s)
        if least_slack:
            deadline -= rank[ti]
        heapq.heappush(heap, (deadline, -job.priority, ready_at[ti], -rank[ti], ti))

    for ti in range(n):
        if missing[ti] == 0:
            push(ti)
    placed = 0
    while heap:
        ti = heapq.heappop(heap)[-1]
        ready = ready_at[ti]
        choice = _kept(problem, free_at, ti, ready, prefer)
        if choice is None:
            allowed = _pools_of(problem, ti) if rented is not None and ti in rented else None
            choice = _earliest_finish(problem, free_at, ti, ready, latest_end[ti], allowed)
        if choice is None:
            raise RuntimeError(f"greedy found no slot for task {problem.task_ids[ti]!r}")
        ri, k, start, end = choice
        free_at[ri][k] = end
        sched.resource[ti], sched.slot[ti], sched.start[ti], sched.end[ti] = ri, k, start, end
        placed += 1
        for s in problem.succs[ti]:
            ready_at[s] = max(ready_at[s], end)
            missing[s] -= 1
            if missing[s] == 0:
                push(s)
    if placed != n:
        raise RuntimeError("dependency graph has a cycle (input validation missed it)")
    return sched


def _kept(
    problem: Problem,
    free_at: list[list[int]],
    ti: int,
    ready: int,
    prefer: dict[int, tuple[int, int, int]] | None,
) -> tuple[int, int, int, int] | None:
    if prefer is None or ti not in prefer:
        return None
    ri, k, start = prefer[ti]
    d = problem.duration_on[ti].get(ri)
    if d is None or k >= len(free_at[ri]) or free_at[ri][k] > start or ready > start:
        return None
    if fit_start(problem.resources[ri].windows, start, d) != start:
        return None
    return ri, k, start, start + d


def _pools_of(problem: Problem, ti: int) -> list[int]:
    """The task's pools, or all its resources when it has none."""
    chosen = [ri for ri in problem.duration_on[ti] if problem.resources[ri].is_pool]
    return chosen or list(problem.duration_on[ti])


def _earliest_finish(
    problem: Problem,
    free_at: list[list[int]],
    ti: int,
    ready: int,
    latest_end: float | None,
    allowed: Sequence[int] | None = None,
) -> tuple[int, int, int, int] | None:
    """Earliest-finishing slot; with a ``latest_end``, the cheapest one finishing by then.

    ``allowed`` restricts the resources looked at.
    """
    best: tuple[float, float, float, int, int, int] | None = None
    durations = problem.duration_on[ti]
    for ri in durations if allowed is None else allowed:
        d = durations[ri]
        slots = free_at[ri]
        first_free = min(slots)
        k = slots.index(first_free)  # the first slot free that early, as before
        r = problem.resources[ri]
        start = fit_start(r.windows, max(ready, first_free), d)
        if start is None:
            continue
        end = start + d
        if latest_end is not None and end <= latest_end:
            key: tuple[float, float, float, int, int, int] = (
                -1.0,
                r.cost_per_gpu_hour_cny * d,
                float(end),
                ri,
                k,
                start,
            )
        else:
            key = (0.0, float(end), r.cost_per_gpu_hour_cny, ri, k, start)
        if best is None or key < best:
            best = key
    if best is None:
        return None
    *_, ri, k, start = best
    return ri, k, start, start + problem.duration_on[ti][ri]


def _remaining_work(problem: Problem) -> list[int]:
    """Shortest possible duration of each task plus the longest such chain after it."""
    tail = [0] * problem.n_tasks
    for ti in reversed(problem.topo):
        after = max((tail[s] for s in problem.succs[ti]), default=0)
        tail[ti] = min(problem.duration_on[ti].values()) + after
    return tail


def randomised_restarts(
    problem: Problem,
    objective: str,
    best: Schedule | None,
    until: float,
    seed: int = 0,
) -> Schedule | None:
    """Re-run the greedies with jittered chain-work ranks until ``until`` (time.monotonic()).

    A cheap way to a better CP-SAT hint: one pass costs milliseconds, and the best of a few
    hundred jittered orders is often several percent better than the deterministic one.
    Returns the best plan found, or ``best`` when nothing beat it.
    """
    rng = random.Random(seed)
    base = _remaining_work(problem)
    best_value = None if best is None else score(problem, best).value(objective)
    cost = objective == "cost"
    while time.monotonic() < until:
        rank = [w * rng.uniform(0.6, 1.4) for w in base]
        try:
            plan = greedy_schedule(
                problem, cost_aware=cost, least_slack=cost and rng.random() < 0.5, rank_work=rank
            )
        except RuntimeError:
            return best
        value = score(problem, plan).value(objective)
        if best_value is None or value < best_value:
            best, best_value = plan, value
    return best


STALE_STEPS_PER_TASK = 50
"""improve_rented stops after this many steps per movable task without a gain."""


def improve_rented(
    problem: Problem,
    objective: str,
    best: Schedule | None,
    until: float,
    seed: int = 0,
    rank_moves: float = 0.7,
    job_moves: float = 0.5,
    max_steps: int | None = None,
) -> Schedule | None:
    """Local search over which tasks are forced into pools, decoded by the frugal greedy.

    For the cost objective rent is proportional to the work rented, so a plan is good when
    the nodes do as much work as they can before the deadlines. The frugal greedy
    (``cost_aware``, ``least_slack``) rents a task when no node can finish it in time; forcing
    some other task into a pool first can leave the nodes free for that one (and for more
    work in all). A step either toggles one task (a task on a node is forced into a pool, a
    forced one is released) or, with probability ``rank_moves``, jitters one task's rank in
    the greedy's order; it decodes and keeps the change when the plan is no worse (so it
    walks plateaus). A rank jitter moves a whole job with probability ``job_moves``. It stops
    at ``until`` (time.monotonic()), after ``max_steps`` steps, or after
    ``STALE_STEPS_PER_TASK`` steps per movable task without a better plan. Returns the best
    plan seen, or ``best`` when nothing beat it.
    """
    if objective != "cost":
        return best
    rng = random.Random(seed)
    pools = [r.is_pool for r in problem.resources]
    movable = [
        t
        for t, durations in enumerate(problem.duration_on)
        if any(pools[ri] for ri in durations) and not all(pools[ri] for ri in durations)
    ]
    if not movable:
        return best
    best_value = None if best is None else score(problem, best).value(objective)
    forced: set[int] = set()
    rank = [float(w) for w in _remaining_work(problem)]
    jobs: dict[int, list[int]] = {}
    for t, j in enumerate(problem.job_of):
        jobs.setdefault(j, []).append(t)
    try:
        current = greedy_schedule(
            problem, cost_aware=True, least_slack=True, rank_work=rank, rented=forced
        )
    except RuntimeError:
        return best
    value = score(problem, current).value(objective)
    if best_value is None or value < best_value:
        best, best_value = current, value
    steps = last_gain = 0
    stale_steps = STALE_STEPS_PER_TASK * len(movable)
    while time.monotonic() < until and (max_steps is None or steps < max_steps):
        if steps - last_gain > stale_steps:
            break  # a small farm's search has run dry: leave the time to CP-SAT
        steps += 1
        trial_forced, trial_rank = forced, rank
        if rng.random() < rank_moves:
            trial_rank = list(rank)
            t = rng.randrange(problem.n_tasks)
            factor = rng.uniform(0.5, 1.5)
            for u in jobs[problem.job_of[t]] if rng.random() < job_moves else (t,):
                trial_rank[u] *= factor
        else:
            on_nodes = [t for t in movable if not pools[current.resource[t]] or t in forced]
            if not on_nodes:
                break
            trial_forced = forced ^ {rng.choice(on_nodes)}
        try:
            plan = greedy_schedule(
                problem,
                cost_aware=True,
                least_slack=True,
                rank_work=trial_rank,
                rented=trial_forced,
            )
        except RuntimeError:
            continue
        trial_value = score(problem, plan).value(objective)
        if trial_value <= value + 1e-9:
            forced, rank, current, value = trial_forced, trial_rank, plan, trial_value
            if best_value is None or value < best_value - 1e-9:
                best, best_value = plan, value
                last_gain = steps
    return best
