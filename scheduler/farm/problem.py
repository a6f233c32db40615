"""The farm as the planners see it: integer indices, resource groups and per-task options.

Nodes whose slots are interchangeable for every task (same VRAM, speed, windows and explicit
durations) are merged into one *group*: the solver treats a group as a single cumulative
resource and slots are assigned afterwards by :func:`assign_slots`, which always succeeds
because intervals that never exceed a capacity can be coloured with that many colours.
See docs/decisions/0020-farm-decomposition.md.
"""

from __future__ import annotations

import bisect
import heapq
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from scheduler.farm.model import UNBOUNDED_S, Farm, Node, Pool, eligible_durations

COST_SCALE = 100
"""Integer objective unit: 1 CNY = COST_SCALE * 3600 units (prices to 0.01 CNY/h are exact)."""
UNITS_PER_CNY = COST_SCALE * 3600


@dataclass(frozen=True)
class Resource:
    """A node or pool with its usable windows (pools: from their startup on)."""

    id: str
    slots: int
    windows: tuple[tuple[int, int], ...]
    cost_per_gpu_hour_cny: float
    is_pool: bool


@dataclass
class Group:
    """Resources whose slots are interchangeable for every task, solved as one cumulative."""

    members: list[int]
    capacity: int
    windows: tuple[tuple[int, int], ...]
    is_pool: bool


@dataclass(frozen=True)
class Option:
    """Task may run on ``group`` for ``duration_s`` at ``cost_units`` (pool rent, scaled)."""

    group: int
    duration_s: int
    cost_units: int


@dataclass
class Schedule:
    """A complete plan in index form: task i runs on resource[i], slot[i], [start[i], end[i])."""

    resource: list[int]
    slot: list[int]
    start: list[int]
    end: list[int]


@dataclass(frozen=True)
class Score:
    """A schedule's objective pieces, in float units for reporting."""

    cost_cny: float
    late_cost_cny: float
    makespan_s: int
    job_finish_s: tuple[int, ...]
    job_late_s: tuple[int, ...]

    def value(self, objective: str) -> float:
        """The objective: ``cost`` (CNY, rent + lateness) or ``makespan`` (seconds)."""
        if objective == "makespan":
            return float(self.makespan_s)
        return self.cost_cny + self.late_cost_cny


@dataclass
class Problem:
    """Index form of a :class:`Farm`."""

    farm: Farm
    task_ids: list[str]
    job_of: list[int]
    resources: list[Resource]
    groups: list[Group]
    group_of: list[int]
    options: list[list[Option]]
    preds: list[list[int]]
    succs: list[list[int]]
    topo: list[int]
    deadline_s: list[int | None]
    late_units_per_s: list[int]
    horizon_s: int
    duration_on: list[dict[int, int]] = field(default_factory=list)
    """duration_on[task][resource] for every eligible resource."""

    @property
    def n_tasks(self) -> int:
        """Number of tasks."""
        return len(self.task_ids)


def build_problem(farm: Farm) -> Problem:
    """Index the farm, merge interchangeable nodes into groups and compute the horizon."""
    resources: list[Resource] = []
    for n in farm.nodes:
        resources.append(Resource(n.id, n.slots, n.available, 0.0, False))
    for p in farm.pools:
        resources.append(
            Resource(
                p.id, p.max_slots, ((p.startup_s, UNBOUNDED_S),), p.cost_per_gpu_hour_cny, True
            )
        )
    r_index = {r.id: i for i, r in enumerate(resources)}
    pairs = farm.tasks()
    task_ids = [t.id for _, t in pairs]
    t_index = {tid: i for i, tid in enumerate(task_ids)}
    job_index = {j.id: i for i, j in enumerate(farm.jobs)}
    job_of = [job_index[j.id] for j, _ in pairs]

    duration_on: list[dict[int, int]] = []
    for job, task in pairs:
        eligible: list[tuple[Node | Pool, int]] = eligible_durations(farm, job, task)
        duration_on.append({r_index[r.id]: d for r, d in eligible})

    # Nodes are interchangeable when every task sees them the same way.
    signatures: dict[tuple[object, ...], int] = {}
    groups: list[Group] = []
    group_of = [0] * len(resources)
    for ri, r in enumerate(resources):
        if r.is_pool:
            key: tuple[object, ...] = ("pool", ri)
        else:
            key = ("node", r.windows, tuple(d.get(ri) for d in duration_on))
        if key in signatures:
            g = signatures[key]
            groups[g].members.append(ri)
            groups[g].capacity += r.slots
        else:
            signatures[key] = len(groups)
            groups.append(Group([ri], r.slots, r.windows, r.is_pool))
        group_of[ri] = signatures[key]

    options: list[list[Option]] = []
    for ti in range(len(task_ids)):
        seen: dict[int, Option] = {}
        for ri, d in duration_on[ti].items():
            g = group_of[ri]
            if g not in seen:
                cost = round(COST_SCALE * resources[ri].cost_per_gpu_hour_cny * d)
                seen[g] = Option(g, d, cost)
        options.append(sorted(seen.values(), key=lambda o: o.group))

    preds: list[list[int]] = [[t_index[a] for a in t.after] for _, t in pairs]
    succs: list[list[int]] = [[] for _ in task_ids]
    for ti, ps in enumerate(preds):
        for pi in ps:
            succs[pi].append(ti)
    indegree = [len(p) for p in preds]
    queue = [ti for ti in range(len(task_ids)) if indegree[ti] == 0]
    topo: list[int] = []
    while queue:
        ti = queue.pop()
        topo.append(ti)
        for s in succs[ti]:
            indegree[s] -= 1
            if indegree[s] == 0:
                queue.append(s)

    deadlines = [farm.jobs[j].deadline_s for j in job_of]
    late_units = [
        round(COST_SCALE * farm.jobs[j].priority * farm.late_cost_cny_per_hour)
        if farm.jobs[j].deadline_s is not None
        else 0
        for j in range(len(farm.jobs))
    ]
    # Semi-active schedules (nothing can start earlier) never need more than: the last window
    # boundary, then every task back to back at its longest eligible duration.
    last_boundary = max(
        [b for r in resources for w in r.windows for b in w if b < UNBOUNDED_S] + [0]
    )
    horizon = last_boundary + sum(max(d.values()) for d in duration_on)
    return Problem(
        farm=farm,
        task_ids=task_ids,
        job_of=job_of,
        resources=resources,
        groups=groups,
        group_of=group_of,
        options=options,
        preds=preds,
        succs=succs,
        topo=topo,
        deadline_s=deadlines,
        late_units_per_s=late_units,
        horizon_s=horizon,
        duration_on=duration_on,
    )


def fit_start(windows: tuple[tuple[int, int], ...], earliest_s: int, duration_s: int) -> int | None:
    """Earliest start >= earliest_s such that [start, start + duration) lies in one window."""
    if len(windows) == 1:  # the common case, in the greedy's inner loop
        start = max(windows[0][0], earliest_s)
        return start if start + duration_s <= windows[0][1] else None
    i = max(bisect.bisect_right(windows, (earliest_s, UNBOUNDED_S + 1)) - 1, 0)
    for ws, we in windows[i:]:
        start = max(ws, earliest_s)
        if start + duration_s <= we:
            return start
    return None


def score(problem: Problem, sched: Schedule) -> Score:
    """Exact (float) objective pieces of a schedule."""
    farm = problem.farm
    cost = 0.0
    for ti in range(problem.n_tasks):
        r = problem.resources[sched.resource[ti]]
        if r.is_pool:
            cost += (sched.end[ti] - sched.start[ti]) / 3600 * r.cost_per_gpu_hour_cny
    finish = [0] * len(farm.jobs)
    for ti in range(problem.n_tasks):
        j = problem.job_of[ti]
        finish[j] = max(finish[j], sched.end[ti])
    late = []
    late_cost = 0.0
    for j, job in enumerate(farm.jobs):
        late_s = 0 if job.deadline_s is None else max(0, finish[j] - job.deadline_s)
        late.append(late_s)
        late_cost += job.priority * late_s / 3600 * farm.late_cost_cny_per_hour
    return Score(cost, late_cost, max(sched.end, default=0), tuple(finish), tuple(late))


def assign_slots(
    problem: Problem,
    group_choice: list[int],
    start: list[int],
    end: list[int],
    prefer: dict[int, tuple[int, int]] | None = None,
) -> Schedule:
    """Turn per-group times into (resource, slot) pairs by interval colouring.

    Within a group every slot is interchangeable, so sweeping tasks by start time and taking a
    free slot always succeeds when the group's capacity is never exceeded. ``prefer`` maps a
    task to the (resource, slot) it should keep when that slot is free (re-planning).
    """
    n = problem.n_tasks
    resource = [-1] * n
    slot = [-1] * n
    by_group: dict[int, list[int]] = {}
    for ti in range(n):
        by_group.setdefault(group_choice[ti], []).append(ti)
    for g, tasks in by_group.items():
        members = problem.groups[g].members
        all_slots = [(ri, k) for ri in members for k in range(problem.resources[ri].slots)]
        busy: list[tuple[int, tuple[int, int]]] = []  # heap of (end, slot)
        free = set(all_slots)
        every_slot = set(all_slots)
        for ti in sorted(tasks, key=lambda t: (start[t], end[t])):
            while busy and busy[0][0] <= start[ti]:
                _, s = heapq.heappop(busy)
                free.add(s)
            want = prefer.get(ti) if prefer else None
            if end[ti] == start[ti]:
                # Zero-length work occupies no slot time (cumulatives ignore it too).
                resource[ti], slot[ti] = (
                    want if want is not None and want in every_slot else all_slots[0]
                )
                continue
            if want is not None and want in free:
                chosen = want
            elif not free:
                raise RuntimeError(f"group {g} over capacity at {start[ti]} s (planner bug)")
            else:
                chosen = min(free)
            free.discard(chosen)
            heapq.heappush(busy, (end[ti], chosen))
            resource[ti], slot[ti] = chosen
    return Schedule(resource, slot, list(start), list(end))


def earliest_ends(problem: Problem) -> list[int | None]:
    """Earliest end of each task: its predecessors' earliest ends, then its first fit.

    ``None`` marks a task that fits in no window of any eligible resource after the earliest
    end of its predecessors (e.g. a chained task behind a node that closes for good), and
    every task after it: no plan exists then.
    """
    earliest_end: list[int | None] = [0] * problem.n_tasks
    for ti in problem.topo:
        ready_of = [earliest_end[p] for p in problem.preds[ti]]
        if None in ready_of:
            earliest_end[ti] = None
            continue
        ready = max((r for r in ready_of if r is not None), default=0)
        best: int | None = None
        for ri, d in problem.duration_on[ti].items():
            s = fit_start(problem.resources[ri].windows, ready, d)
            if s is not None and (best is None or s + d < best):
                best = s + d
        earliest_end[ti] = best
    return earliest_end


def lower_bound(problem: Problem, objective: str) -> float:
    """A cheap valid lower bound: cheapest option per task, critical paths, total work.

    ``math.inf`` when some task cannot fit anywhere (:func:`earliest_ends`): no plan exists,
    and every plan's value is above it vacuously.
    """
    n = problem.n_tasks
    maybe_ends = earliest_ends(problem)
    if None in maybe_ends:
        return math.inf
    earliest_end = [e for e in maybe_ends if e is not None]
    if objective == "makespan":
        capacity = sum(r.slots for r in problem.resources)
        work = sum(min(d.values()) for d in problem.duration_on)
        return float(max(max(earliest_end, default=0), math.ceil(work / max(capacity, 1))))
    farm = problem.farm
    rent = sum(
        min(
            d / 3600 * problem.resources[ri].cost_per_gpu_hour_cny
            for ri, d in problem.duration_on[ti].items()
        )
        for ti in range(n)
    )
    energy = deadline_energy_bound(problem)
    finish = [0] * len(farm.jobs)
    for ti in range(n):
        finish[problem.job_of[ti]] = max(finish[problem.job_of[ti]], earliest_end[ti])
    late = sum(
        job.priority * max(0, finish[j] - job.deadline_s) / 3600 * farm.late_cost_cny_per_hour
        for j, job in enumerate(farm.jobs)
        if job.deadline_s is not None
    )
    return max(rent + late, energy)


def latest_ends(problem: Problem) -> dict[int, int]:
    """Task -> the time it must end by for its job to be on time, for jobs that pay for lateness.

    That is the job's deadline minus the shortest chain of work after the task inside the same
    job (render -> denoise -> encode); a successor in another job does not delay this job.
    """
    n = problem.n_tasks
    tail = [0] * n
    for ti in reversed(problem.topo):
        tail[ti] = max(
            (
                tail[s] + min(problem.duration_on[s].values())
                for s in problem.succs[ti]
                if problem.job_of[s] == problem.job_of[ti]
            ),
            default=0,
        )
    latest: dict[int, int] = {}
    for ti in range(n):
        j = problem.job_of[ti]
        due_s = problem.farm.jobs[j].deadline_s
        if due_s is not None and problem.late_units_per_s[j] != 0:
            latest[ti] = due_s - tail[ti]
    return latest


def spread_cut_times(latest: Sequence[int], limit: int) -> list[int]:
    """The distinct values of ``latest``, thinned evenly to about ``limit`` (the last kept)."""
    cut_times = sorted(set(latest))
    if len(cut_times) > limit:
        step = len(cut_times) / limit
        cut_times = [cut_times[int(i * step)] for i in range(limit)] + [cut_times[-1]]
    return cut_times


def open_seconds(windows: Sequence[tuple[int, int]], until_s: int) -> int:
    """Seconds of ``windows`` (sorted availability windows) before ``until_s``."""
    return sum(max(0, min(we, until_s) - ws) for ws, we in windows if ws < until_s)


MAX_BOUND_CUT_TIMES = 256
"""Cut times tried by :func:`deadline_energy_bound` (evenly spread over the latest ends)."""


def deadline_energy_bound(problem: Problem) -> float:
    """A cost bound from node capacity before each deadline (CNY); valid for any plan.

    Each task with a deadline must end by its *latest end* (its job's deadline minus the
    shortest same-job chain after it) unless its job is late. For a cut time T, the tasks due
    by T that stay on nodes need, in speed-weighted slot-seconds, at least the sum of their
    cheapest node durations times that node's speed, and the nodes offer
    ``sum(slots * speed * open seconds before T)``. What exceeds that must be rented (at the
    task's cheapest pool price per unit) or bought with lateness: a job ``L`` seconds late
    adds at most ``L`` seconds of all node capacity, at the cheapest late cost per second.
    The cheapest fractional cover of the excess is a valid bound for each T (the same
    relaxation as the CP-SAT energy cuts, docs/decisions/0020); the bound is the best T plus
    the rent of tasks that can only run in a pool. It is what the rolling-horizon plans of
    large farms report, where there is no solver bound.
    """
    farm = problem.farm
    node_weight = {nd.id: nd.speed for nd in farm.nodes}
    weight = [node_weight.get(r.id, 0.0) if not r.is_pool else 0.0 for r in problem.resources]
    due_by = latest_ends(problem)
    forced = 0.0
    latest: list[int] = []
    need: list[float] = []
    rent_per_unit: list[float] = []
    late_per_s = math.inf
    for ti in range(problem.n_tasks):
        on_nodes = [d * weight[ri] for ri, d in problem.duration_on[ti].items() if weight[ri] > 0]
        rents = [
            d / 3600 * problem.resources[ri].cost_per_gpu_hour_cny
            for ri, d in problem.duration_on[ti].items()
            if problem.resources[ri].is_pool
        ]
        if not on_nodes:
            forced += min(rents, default=0.0)
            continue
        if ti not in due_by:
            continue
        late_per_s = min(late_per_s, problem.late_units_per_s[problem.job_of[ti]] / UNITS_PER_CNY)
        e = min(on_nodes)
        if e <= 0:
            continue
        latest.append(due_by[ti])
        need.append(e)
        rent_per_unit.append(min(rents, default=math.inf) / e)
    if not latest:
        return forced
    node_groups = [g for g in problem.groups if not g.is_pool]
    rate = sum(g.capacity * weight[g.members[0]] for g in node_groups)
    # Lateness buys capacity at late_per_s / rate per unit; renting at each task's price.
    late_unit = late_per_s / rate if rate > 0 else math.inf
    per_unit = np.minimum(np.array(rent_per_unit), late_unit)
    order = np.argsort(per_unit, kind="stable")
    ratio = per_unit[order]
    units = np.array(need)[order]
    ends = np.array(latest)[order]
    cut_times = spread_cut_times(latest, MAX_BOUND_CUT_TIMES)
    best = 0.0
    for t_cut in cut_times:
        capacity = sum(
            g.capacity * weight[g.members[0]] * open_seconds(g.windows, t_cut) for g in node_groups
        )
        due_units = np.where(ends <= t_cut, units, 0.0)
        excess = float(due_units.sum()) - capacity
        if excess <= 0:
            continue
        # Cover the excess with the cheapest units first (rent or lateness). The excess is at
        # most the due units (capacity >= 0); the clamp only absorbs float rounding.
        covered = np.cumsum(due_units)
        k = min(int(np.searchsorted(covered, excess)), len(covered) - 1)
        before = float(covered[k - 1]) if k > 0 else 0.0
        cost = float((ratio[:k] * due_units[:k]).sum()) + (excess - before) * float(ratio[k])
        best = max(best, cost)
    return forced + best
