"""A cost lower bound that knows chunks are whole: column generation over per-slot task sets.

The CP-SAT relaxation and :func:`scheduler.farm.problem.deadline_energy_bound` both treat the
node capacity before a deadline as a fluid: a 4,000 s chunk may fill the last 3,017 s before a
maintenance gap and the 983 s after it. They stop at 177.85 CNY on the 100 x 16 bench farm
whose best plan costs about 207 CNY. This bound is the linear relaxation of a *configuration*
model instead (docs/decisions/0064-farm-lp-bound.md):

* every job picks a lateness *level* (on time, or late by an amount in ``[a, b)``), paying at
  least ``a`` seconds of its late cost; in that level each of its tasks must end by its
  latest end (deadline minus the shortest same-job chain after it) plus ``b - 1``;
* every slot of a resource group (pools included, with rent as the item cost) runs one
  *pattern*: a set of tasks that passes the single-machine test "for every due time T, the
  durations of the pattern's tasks that must end by T sum to at most the slot's open seconds
  before T", where a task's due time is the last end inside one availability window (so a
  chunk longer than the time before a gap is due before the gap or after it, never across);
* every task is covered by one pattern of one group at its job's level.

Any plan gives such a solution at no more than its cost, so the model's optimum, and any
Lagrangian value of it, is a lower bound. Column generation finds good duals with GLOP; each
pricing problem is a 0-1 knapsack with nested capacities, solved exactly by dynamic
programming over due times. The bound returned is the Lagrangian value of the best duals
seen, ``sum_j min_k (C_jk + sum_t pi_tk) - sum_g slots_g * max(0, best pattern weight_g)``,
which is valid at every iteration, so a time budget only weakens it. Durations are rounded
down and capacities down to whole DP units, which only adds patterns (still a relaxation).
"""

from __future__ import annotations

import bisect
import math
import time
from dataclasses import dataclass, field

import numpy as np
from ortools.linear_solver import pywraplp

from scheduler.farm.model import UNBOUNDED_S
from scheduler.farm.problem import (
    Problem,
    Schedule,
    latest_ends,
    open_seconds,
    spread_cut_times,
)

LATE_LEVELS_S = (0, 1, 60, 300, 900, 1800, 3600)
"""Lower ends of the lateness levels (seconds); the last level has no upper end."""
DP_CELLS = 20_000_000
"""Pricing DP table budget (items x capacity units); the unit is 1 s while it fits."""
MAX_PATTERNS = 8
"""Disjoint patterns priced per group and iteration (at most the group's slots)."""
COMPACT_CUTS = 2000
"""Due times per group in the compact LP that gives the first duals."""
LP_TOLERANCE = 1e-6
"""The compact LP's value is taken this much (relative) lower: GLOP's tolerances."""
BOX_START = 0.5
"""First box step: duals may rise this many times the dearest rent above the centre."""
SMOOTHING = 0.7
"""Wentges smoothing: weight of the best duals so far in the pricing point."""


@dataclass
class _Item:
    """Task ``task`` at lateness level ``level`` on a group: due ``due_s``, ``dur_s`` long."""

    row: int
    task: int
    due_s: int
    dur_s: int
    rent_cny: float


@dataclass
class _Group:
    capacity: int
    windows: tuple[tuple[int, int], ...]
    items: list[_Item]
    bounded: bool
    """True when the group closes for good at some time (capacity past every due time)."""
    _caps: dict[tuple[int, int], int] = field(default_factory=dict)

    def cap_units(self, due_s: int, unit_s: int) -> int:
        """Open seconds of one slot before ``due_s``, in whole ``unit_s`` units (rounded down)."""
        key = (due_s, unit_s)
        cap = self._caps.get(key)
        if cap is None:
            cap = self._caps[key] = open_seconds(self.windows, due_s) // unit_s
        return cap


def _due_in_windows(windows: tuple[tuple[int, int], ...], latest_s: int, dur_s: int) -> int | None:
    """The latest end <= ``latest_s`` of a ``dur_s`` task inside one window, or None."""
    best: int | None = None
    for ws, we in windows:
        end_s = min(we, latest_s)
        if end_s - ws >= dur_s:
            best = end_s if best is None else max(best, end_s)
    return best


def _price(group: _Group, weight: np.ndarray, n_patterns: int = 1) -> tuple[float, list[list[int]]]:
    """Best pattern weight of ``group`` under row weights, and up to ``n_patterns`` patterns.

    Patterns after the first are best ones among the tasks that earlier patterns left (a
    whole slot assignment for the group, so the master sees complementary columns).
    """
    best = 0.0
    patterns: list[list[int]] = []
    banned: set[int] = set()
    for n_done in range(n_patterns):
        value, chosen = _knapsack(group, weight, banned)
        if n_done == 0:
            best = value
        if not chosen or value <= 1e-9:
            break
        patterns.append(chosen)
        banned.update(group.items[i].task for i in chosen)
    return best, patterns


def _knapsack(group: _Group, weight: np.ndarray, banned: set[int]) -> tuple[float, list[int]]:
    """The best pattern of one slot: a 0-1 knapsack whose capacity grows with the due time.

    Items with weight <= 0 never help; the rest are taken by due time, each fitting if the
    pattern's load so far is within the slot's open seconds before its due time. Durations
    and capacities are in whole units of ``unit_s`` seconds, rounded down (more patterns
    pass, so the bound stays valid), the unit chosen to keep the table near ``DP_CELLS``.
    """
    items = group.items
    pos = [
        i
        for i, it in enumerate(items)
        if weight[it.row] - it.rent_cny > 1e-12 and it.task not in banned
    ]
    if not pos:
        return 0.0, []
    free = [i for i in pos if items[i].due_s >= UNBOUNDED_S]
    timed = [i for i in pos if items[i].due_s < UNBOUNDED_S]
    free_weight = float(sum(weight[items[i].row] - items[i].rent_cny for i in free))
    if not timed:
        return free_weight, free
    timed.sort(key=lambda i: items[i].due_s)
    unit_s = max(1, math.ceil(len(timed) * group.cap_units(items[timed[-1]].due_s, 1) / DP_CELLS))
    caps = [group.cap_units(items[i].due_s, unit_s) for i in timed]
    cap_max = caps[-1]
    f = np.zeros(cap_max + 1)
    take = np.zeros((len(timed), cap_max + 1), dtype=bool)
    for k, i in enumerate(timed):
        it = items[i]
        d = it.dur_s // unit_s
        cap = caps[k]
        if d > cap:
            continue
        cand = f[: cap + 1 - d] + float(weight[it.row] - it.rent_cny)
        better = cand > f[d : cap + 1]
        take[k, d : cap + 1] = better
        np.maximum(f[d : cap + 1], cand, out=f[d : cap + 1])
    w = int(np.argmax(f))
    value = float(f[w]) + free_weight
    chosen: list[int] = []
    for k in range(len(timed) - 1, -1, -1):
        if take[k, w]:
            chosen.append(timed[k])
            w -= items[timed[k]].dur_s // unit_s
    return value, chosen + free


def lp_bound(
    problem: Problem,
    objective: str,
    time_limit_s: float = 2.0,
    hint: Schedule | None = None,
) -> float | None:
    """A lower bound on the cost objective (CNY), or None (makespan, or no time to compute it).

    Args:
        problem: the indexed farm (:func:`scheduler.farm.problem.build_problem`).
        objective: only ``cost`` is bounded here; ``makespan`` returns None.
        time_limit_s: wall-clock budget; the best Lagrangian value found by then is returned.
        hint: a complete plan whose per-slot task sets seed the master LP (optional).

    The value is in the units of :func:`scheduler.farm.problem.lower_bound` (CNY) and never
    above the optimum; callers take the larger of the two.
    """
    if objective != "cost":
        return None
    t_end = time.monotonic() + time_limit_s
    farm = problem.farm
    n = problem.n_tasks
    latest = latest_ends(problem)
    rate_cny_per_s = farm.late_cost_cny_per_hour / 3600

    # Rows: one per (task, level). A job that pays for lateness picks a level k, late by at
    # least LATE_LEVELS_S[k] (that much late cost) and less than the next level's start (its
    # tasks end by latest end + that, minus 1 s); other jobs have the single level "any time".
    row_of: list[list[int]] = [[] for _ in range(n)]
    row_ext_s: list[int] = []
    job_level_rows: list[list[tuple[list[int], float]]] = []
    tasks_of: dict[int, list[int]] = {}
    for ti in range(n):
        tasks_of.setdefault(problem.job_of[ti], []).append(ti)
    for j, tasks in sorted(tasks_of.items()):
        timed = all(t in latest for t in tasks)
        starts = LATE_LEVELS_S if timed else (0,)
        levels: list[tuple[list[int], float]] = []
        for k, late_s in enumerate(starts):
            last = k == len(starts) - 1
            ext_s = UNBOUNDED_S if not timed or last else starts[k + 1] - 1
            rows = list(range(len(row_ext_s), len(row_ext_s) + len(tasks)))
            for ti, r in zip(tasks, rows, strict=True):
                row_of[ti].append(r)
                row_ext_s.append(ext_s)
            levels.append((rows, farm.jobs[j].priority * late_s * rate_cny_per_s))
        job_level_rows.append(levels)
    n_rows = len(row_ext_s)

    # Items: (row, group) pairs a slot of the group can hold, with their due time there.
    groups = [
        _Group(g.capacity, g.windows, [], g.windows[-1][1] < UNBOUNDED_S) for g in problem.groups
    ]
    for ti in range(n):
        for opt in problem.options[ti]:
            group = groups[opt.group]
            price = problem.resources[problem.groups[opt.group].members[0]].cost_per_gpu_hour_cny
            rent_cny = opt.duration_s / 3600 * price
            for r in row_of[ti]:
                ext_s = row_ext_s[r]
                limit_s = UNBOUNDED_S if ext_s >= UNBOUNDED_S else latest[ti] + ext_s
                due_s = _due_in_windows(group.windows, limit_s, opt.duration_s)
                if due_s is None:
                    continue
                if due_s >= UNBOUNDED_S and group.bounded:
                    due_s = group.windows[-1][1]
                group.items.append(_Item(r, ti, due_s, opt.duration_s, rent_cny))

    # 1. The compact LP (each slot's knapsack fractional) is a valid bound by itself, and its
    #    duals are the first point where the whole-chunk Lagrangian is evaluated.
    best: float | None = None
    compact = _compact_lp(n_rows, job_level_rows, groups, t_end)
    if compact is None:
        return None
    compact_value, center = compact
    best = compact_value - LP_TOLERANCE * max(1.0, abs(compact_value))
    evaluated = _lagrangian(job_level_rows, groups, center, MAX_PATTERNS, t_end)
    if evaluated is None:
        return best
    value, patterns = evaluated
    best = max(best, value)

    # 2. Column generation on the configuration LP from there, as long as time allows:
    #    box step around the best duals so far, Wentges smoothing, exact DP pricing.
    master = _Master(n_rows, job_level_rows, groups)
    if hint is not None:
        _seed_from_plan(problem, master, groups, row_of, latest, hint)
    for g, pats in patterns.items():
        for items in pats:
            master.add(g, items)
    step = BOX_START * max((it.rent_cny for grp in groups for it in grp.items), default=1.0)
    center_value = value
    while time.monotonic() < t_end:
        master.set_box(center + step, np.maximum(center - step, 0.0))
        solved = master.solve(t_end)
        if solved is None:
            break
        lp_value, pi_out, mu_out, boxed = solved
        added = 0
        for alpha in (SMOOTHING, 0.0):
            pi = pi_out if alpha == 0.0 else alpha * center + (1.0 - alpha) * pi_out
            evaluated = _lagrangian(job_level_rows, groups, pi, MAX_PATTERNS, t_end)
            if evaluated is None:
                return best
            value, patterns = evaluated
            best = max(best, value)
            if value > center_value + 1e-9:
                center, center_value = pi, value
            for g, pats in patterns.items():
                for items in pats:
                    rc = master.reduced_cost(g, items, pi_out, mu_out)
                    if rc < -1e-9 and master.add(g, items):
                        added += 1
            if added:
                break
        if added == 0:
            if boxed <= 1e-9:
                break  # the LP is optimal over every pattern: best is its value
            center, center_value = pi_out, value
            step *= 2
    return best


def _lagrangian(
    job_level_rows: list[list[tuple[list[int], float]]],
    groups: list[_Group],
    pi: np.ndarray,
    n_patterns: int,
    t_end: float,
) -> tuple[float, dict[int, list[list[int]]]] | None:
    """Lagrangian value at cover duals ``pi`` (a valid bound) and each group's patterns.

    ``sum over jobs of min over levels (late cost + sum of the level's duals)`` minus, per
    group, its slots times the best pattern weight (duals minus rent). None when ``t_end``
    passes first.
    """
    value = 0.0
    for levels in job_level_rows:
        value += min(c + float(pi[rows].sum()) for rows, c in levels)
    patterns: dict[int, list[list[int]]] = {}
    for g, grp in enumerate(groups):
        if time.monotonic() > t_end:
            return None
        w, pats = _price(grp, pi, min(grp.capacity, n_patterns))
        value -= grp.capacity * max(0.0, w)
        patterns[g] = pats
    return value, patterns


def _add_job_levels(
    s: pywraplp.Solver,
    cover: list[pywraplp.Constraint],
    obj: pywraplp.Objective,
    job_level_rows: list[list[tuple[list[int], float]]],
) -> None:
    """Each job picks one lateness level (its late cost), which must cover the level's rows.

    One ``y`` per job and level: ``sum_k y_jk == 1``, and ``-y`` in each cover row of the
    level (a row ``>= 0`` then asks the columns to cover it as much as the level is taken).
    """
    inf = s.infinity()
    for levels in job_level_rows:
        one = s.Constraint(1.0, 1.0)
        for rows, cost in levels:
            y = s.NumVar(0.0, inf, "")
            one.SetCoefficient(y, 1.0)
            for r in rows:
                cover[r].SetCoefficient(y, -1.0)
            obj.SetCoefficient(y, cost)


def _compact_lp(
    n_rows: int,
    job_level_rows: list[list[tuple[list[int], float]]],
    groups: list[_Group],
    t_end: float,
) -> tuple[float, np.ndarray] | None:
    """Cover-row duals of the compact LP: fractional tasks, slot-seconds before each due time.

    It is the Lagrangian dual with each slot's whole-task knapsack replaced by its fractional
    relaxation (so the same bound form evaluated at its duals with whole tasks is at least its
    value). The capacity rows are a chain over due times ("load so far"), so each item has one
    coefficient; a task may sit on up to ``capacity`` slots of a group, as in the Lagrangian.
    """
    s = pywraplp.Solver.CreateSolver("GLOP")
    if s is None:  # pragma: no cover
        return None
    inf = s.infinity()
    cover = [s.Constraint(0.0, inf) for _ in range(n_rows)]
    obj = s.Objective()
    _add_job_levels(s, cover, obj, job_level_rows)
    for grp in groups:
        timed = [it.due_s for it in grp.items if it.due_s < UNBOUNDED_S]
        cuts = spread_cut_times(timed, COMPACT_CUTS) if timed else []
        # load[i] = slot-seconds of items due by cuts[i] <= capacity before cuts[i]
        chain: list[pywraplp.Constraint] = []
        prev = None
        for t in cuts:
            load = s.NumVar(0.0, float(grp.capacity * open_seconds(grp.windows, t)), "")
            row = s.Constraint(0.0, 0.0)  # load - prev - sum(d x) == 0
            row.SetCoefficient(load, 1.0)
            if prev is not None:
                row.SetCoefficient(prev, -1.0)
            chain.append(row)
            prev = load
        for it in grp.items:
            x = s.NumVar(0.0, float(grp.capacity), "")
            cover[it.row].SetCoefficient(x, 1.0)
            if it.rent_cny:
                obj.SetCoefficient(x, it.rent_cny)
            if it.due_s < UNBOUNDED_S:
                # the first kept cut at or after the due time (cuts are a subset: a relaxation)
                i = bisect.bisect_left(cuts, it.due_s)
                if i < len(chain):
                    chain[i].SetCoefficient(x, -float(it.dur_s))
    obj.SetMinimization()
    left_s = t_end - time.monotonic()
    if left_s <= 0:
        return None
    s.SetTimeLimit(max(1, int(left_s * 1000)))
    if s.Solve() != pywraplp.Solver.OPTIMAL:
        return None
    return obj.Value(), np.array([max(0.0, c.dual_value()) for c in cover])


class _Master:
    """The restricted master LP (GLOP): one y per job and level, patterns per group."""

    def __init__(
        self,
        n_rows: int,
        job_level_rows: list[list[tuple[list[int], float]]],
        groups: list[_Group],
    ) -> None:
        s = pywraplp.Solver.CreateSolver("GLOP")
        if s is None:  # pragma: no cover - GLOP ships with every OR-Tools wheel
            raise RuntimeError("GLOP is not available")
        self.s = s
        inf = s.infinity()
        self.cover = [s.Constraint(0.0, inf) for _ in range(n_rows)]
        self.cap = [s.Constraint(-inf, float(g.capacity)) for g in groups]
        obj = s.Objective()
        _add_job_levels(s, self.cover, obj, job_level_rows)
        # Box columns: cover a row at a price, or over-cover it for a fee (set per iteration):
        # they keep the duals inside [low, high], and the LP feasible.
        self.box = []
        self.floor = []
        for r in range(n_rows):
            a = s.NumVar(0.0, inf, "")
            self.cover[r].SetCoefficient(a, 1.0)
            self.box.append(a)
            b = s.NumVar(0.0, inf, "")
            self.cover[r].SetCoefficient(b, -1.0)
            self.floor.append(b)
        obj.SetMinimization()
        self.obj = obj
        self.groups = groups
        self.seen: set[tuple[int, tuple[int, ...]]] = set()

    def set_box(self, high: np.ndarray, low: np.ndarray) -> None:
        for a, c in zip(self.box, high, strict=True):
            self.obj.SetCoefficient(a, float(c))
        for b, c in zip(self.floor, low, strict=True):
            self.obj.SetCoefficient(b, -float(c))

    def add(self, g: int, items: list[int]) -> bool:
        key = (g, tuple(sorted(items)))
        if not items or key in self.seen:
            return False
        self.seen.add(key)
        lam = self.s.NumVar(0.0, self.s.infinity(), "")
        self.cap[g].SetCoefficient(lam, 1.0)
        rent = 0.0
        for i in items:
            it = self.groups[g].items[i]
            self.cover[it.row].SetCoefficient(lam, 1.0)
            rent += it.rent_cny
        self.obj.SetCoefficient(lam, rent)
        return True

    def solve(self, t_end: float) -> tuple[float, np.ndarray, np.ndarray, float] | None:
        left_s = t_end - time.monotonic()
        if left_s <= 0:
            return None
        self.s.SetTimeLimit(max(1, int(left_s * 1000)))
        if self.s.Solve() != pywraplp.Solver.OPTIMAL:
            return None
        duals = np.array([max(0.0, c.dual_value()) for c in self.cover])
        mu = np.array([min(0.0, c.dual_value()) for c in self.cap])
        boxed = float(sum(a.solution_value() for a in self.box + self.floor))
        return self.obj.Value(), duals, mu, boxed

    def reduced_cost(self, g: int, items: list[int], pi: np.ndarray, mu: np.ndarray) -> float:
        grp = self.groups[g]
        return float(sum(grp.items[i].rent_cny - pi[grp.items[i].row] for i in items) - mu[g])


def _seed_from_plan(
    problem: Problem,
    master: _Master,
    groups: list[_Group],
    row_of: list[list[int]],
    latest: dict[int, int],
    plan: Schedule,
) -> None:
    """Add each slot's task set of a complete plan as a pattern (at the job's level)."""
    farm = problem.farm
    finish: dict[int, int] = {}
    for ti in range(problem.n_tasks):
        j = problem.job_of[ti]
        finish[j] = max(finish.get(j, 0), plan.end[ti])
    index: dict[tuple[int, int], int] = {}
    for g, grp in enumerate(groups):
        for i, it in enumerate(grp.items):
            index[(g, it.row)] = i
    per_slot: dict[tuple[int, int], list[int]] = {}
    for ti in range(problem.n_tasks):
        j = problem.job_of[ti]
        k = 0
        if ti in latest:
            due = farm.jobs[j].deadline_s
            late = 0 if due is None else max(0, finish[j] - due)
            k = max(level for level, a in enumerate(LATE_LEVELS_S) if a <= late)
        g = problem.group_of[plan.resource[ti]]
        item = index.get((g, row_of[ti][k]))
        if item is None:
            return  # the plan is outside the model (it should not be): seed nothing
        per_slot.setdefault((plan.resource[ti], plan.slot[ti]), []).append(item)
    for (ri, _), items in per_slot.items():
        master.add(problem.group_of[ri], items)
