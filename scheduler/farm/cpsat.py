"""CP-SAT model of a farm window: optional intervals per eligible resource group.

One function builds and solves both the flat model (every task free) and the sub-models of the
rolling-horizon decomposition (some tasks free inside [lo, hi), the rest fixed where the current
plan has them). Groups of interchangeable slots are cumulative resources (no-overlap when they
have a single slot); availability gaps are fixed intervals that fill the whole capacity.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from ortools.sat.python import cp_model

from scheduler.farm.model import UNBOUNDED_S
from scheduler.farm.problem import (
    Problem,
    Schedule,
    latest_ends,
    open_seconds,
    spread_cut_times,
)

MAX_ENERGY_CUT_TIMES = 64
"""At most this many cut times T for the deadline-energy cuts (evenly spread, last kept)."""


@dataclass
class WindowResult:
    """Solver answer for the free tasks: chosen group and start of each, or nothing."""

    status: str  # "optimal", "feasible" or "none"
    group: dict[int, int]
    start: dict[int, int]
    end: dict[int, int]
    bound_units: float
    wall_s: float


def solve_window(
    problem: Problem,
    objective: str,
    free: Sequence[int],
    current: Schedule | None,
    hint: Schedule | None,
    time_limit_s: float,
    num_workers: int = 2,
    lo_s: int = 0,
    hi_s: int | None = None,
    keep: dict[int, tuple[int, int]] | None = None,
    energy_cuts: bool = True,
) -> WindowResult:
    """Optimise the placement of ``free`` tasks with everything else fixed as in ``current``.

    Args:
        problem: the indexed farm.
        objective: ``cost`` or ``makespan``.
        free: tasks the solver may move; when it is every task ``current`` may be None.
        current: the plan that fixes the other tasks.
        hint: a plan used as the CP-SAT solution hint (usually ``current`` or greedy).
        time_limit_s: wall-clock limit, model building included.
        num_workers: CP-SAT search workers (2 suits a shared 2-core box).
        lo_s: free tasks start no earlier than this.
        hi_s: free tasks end no later than this (default: the problem horizon).
        keep: task -> (group, start) to keep if the primary objective allows (re-planning);
            the objective becomes lexicographic: primary first, then number of moved tasks.
        energy_cuts: add the redundant deadline-energy cuts (flat cost model); off only to
            check in tests that they cut off no optimum.
    """
    t0 = time.monotonic()
    hi = problem.horizon_s if hi_s is None else hi_s
    free_set = set(free)
    m = cp_model.CpModel()
    n = problem.n_tasks
    fixed_group = [-1] * n
    if current is not None:
        fixed_group = [problem.group_of[r] for r in current.resource]

    start: dict[int, cp_model.IntVar] = {}
    end: dict[int, cp_model.IntVar] = {}
    bounds: dict[int, tuple[int, int]] = {}
    lits: dict[int, list[tuple[int, cp_model.IntVar, int]]] = {}
    per_group: dict[int, list[tuple[cp_model.IntervalVar, int]]] = {}
    cost_terms: list[tuple[cp_model.IntVar, int]] = []
    for ti in free:
        lo_t, hi_t = lo_s, hi
        if current is not None:
            for p in problem.preds[ti]:
                if p not in free_set:
                    lo_t = max(lo_t, current.end[p])
            for s in problem.succs[ti]:
                if s not in free_set:
                    hi_t = min(hi_t, current.start[s])
        opts = [o for o in problem.options[ti] if lo_t + o.duration_s <= hi_t]
        if not opts:
            return WindowResult("none", {}, {}, {}, 0.0, 0.0)
        dmin = min(o.duration_s for o in opts)
        s_var = m.new_int_var(lo_t, hi_t - dmin, f"s{ti}")
        e_var = m.new_int_var(lo_t + dmin, hi_t, f"e{ti}")
        start[ti], end[ti] = s_var, e_var
        bounds[ti] = (lo_t, hi_t)
        if len(opts) == 1:
            o = opts[0]
            m.add(e_var == s_var + o.duration_s)
            one = m.new_constant(1)
            iv = m.new_fixed_size_interval_var(s_var, o.duration_s, f"i{ti}")
            per_group.setdefault(o.group, []).append((iv, 1))
            lits[ti] = [(o.group, one, o.duration_s)]
            if o.cost_units:
                cost_terms.append((one, o.cost_units))
            _inside_windows(m, problem, o.group, s_var, o.duration_s, None)
            continue
        choice = []
        for o in opts:
            lit = m.new_bool_var(f"x{ti}_{o.group}")
            iv = m.new_optional_fixed_size_interval_var(
                s_var, o.duration_s, lit, f"i{ti}_{o.group}"
            )
            per_group.setdefault(o.group, []).append((iv, 1))
            choice.append((o.group, lit, o.duration_s))
            _inside_windows(m, problem, o.group, s_var, o.duration_s, lit)
            if o.cost_units:
                cost_terms.append((lit, o.cost_units))
        m.add_exactly_one(lit for _, lit, _ in choice)
        size = m.new_int_var_from_domain(
            cp_model.Domain.from_values(sorted({d for _, _, d in choice})), f"d{ti}"
        )
        m.add(size == sum(d * lit for _, lit, d in choice))
        # The task's own interval: lets precedence reasoning see its variable size.
        m.new_interval_var(s_var, size, e_var, f"task{ti}")
        lits[ti] = choice

    for ti in free:
        for s in problem.succs[ti]:
            if s in free_set:
                m.add(end[ti] <= start[s])

    # Fixed tasks and availability gaps that overlap [lo, hi) of a group with free intervals.
    if current is not None and len(free_set) < n:
        for ti in range(n):
            if ti in free_set:
                continue
            g = fixed_group[ti]
            if g in per_group and current.end[ti] > lo_s and current.start[ti] < hi:
                d = current.end[ti] - current.start[ti]
                if d > 0:
                    iv = m.new_fixed_size_interval_var(current.start[ti], d, f"f{ti}")
                    per_group[g].append((iv, 1))
    for g, items in per_group.items():
        group = problem.groups[g]
        prev_end = 0
        for ws, we in [*group.windows, (UNBOUNDED_S, UNBOUNDED_S)]:
            gap_lo, gap_hi = max(prev_end, lo_s), min(ws, hi)
            if gap_hi > gap_lo:
                iv = m.new_fixed_size_interval_var(gap_lo, gap_hi - gap_lo, f"gap{g}_{ws}")
                items.append((iv, group.capacity))
            prev_end = we
        if group.capacity == 1:
            m.add_no_overlap(iv for iv, _ in items)
        else:
            m.add_cumulative([iv for iv, _ in items], [d for _, d in items], group.capacity)

    # Objective.
    primary: cp_model.LinearExprT
    if objective == "makespan":
        base = 0
        if current is not None:
            base = max((current.end[t] for t in range(n) if t not in free_set), default=0)
        mk = m.new_int_var(base, max(hi, base), "makespan")
        for ti in free:
            if not any(s in free_set for s in problem.succs[ti]):
                m.add(mk >= end[ti])
        primary = mk
        if hint is not None:
            m.add_hint(mk, max([base, *(hint.end[ti] for ti in free)]))
    else:
        late_terms = []
        late_terms_by_job: list[tuple[int, cp_model.IntVar]] = []
        by_job: dict[int, list[int]] = {}
        for ti in free:
            by_job.setdefault(problem.job_of[ti], []).append(ti)
        fixed_finish: dict[int, int] = {}
        if current is not None:
            for t in range(n):
                if t not in free_set:
                    j = problem.job_of[t]
                    fixed_finish[j] = max(fixed_finish.get(j, 0), current.end[t])
        for j, tasks in by_job.items():
            w = problem.late_units_per_s[j]
            deadline = problem.farm.jobs[j].deadline_s
            if w == 0 or deadline is None:
                continue
            base = max(0, fixed_finish.get(j, 0) - deadline)
            late = m.new_int_var(base, max(base, hi), f"late{j}")
            for ti in tasks:
                if not any(problem.job_of[s] == j for s in problem.succs[ti] if s in free_set):
                    m.add(late >= end[ti] - deadline)
            late_terms.append((late, w))
            late_terms_by_job.append((j, late))
            if hint is not None:
                m.add_hint(late, max([base, *(hint.end[ti] - deadline for ti in tasks)]))
        primary = sum(v * c for v, c in cost_terms) + sum(v * w for v, w in late_terms)
        if current is None and energy_cuts:
            _add_deadline_energy(m, problem, lits, dict(late_terms_by_job))
            if hint is not None:
                # The hint is a complete plan: nothing worse is worth exploring.
                m.add(primary <= _cost_units(problem, hint))

    scale = 1
    moves: list[cp_model.IntVar] = []
    if keep:
        for ti, (g, s_keep) in keep.items():
            if ti not in free_set:
                continue
            chosen = next((lit for gg, lit, _ in lits[ti] if gg == g), None)
            if chosen is None or not bounds[ti][0] <= s_keep <= bounds[ti][1]:
                continue
            stay = m.new_bool_var(f"stay{ti}")
            m.add_implication(stay, chosen)
            m.add(start[ti] == s_keep).only_enforce_if(stay)
            moves.append(stay)
            if hint is not None:
                same = problem.group_of[hint.resource[ti]] == g and hint.start[ti] == s_keep
                m.add_hint(stay, same)
        scale = len(moves) + 1
    m.minimize(primary * scale + sum(1 - s for s in moves) if moves else primary)

    if hint is not None:
        for ti in free:
            m.add_hint(start[ti], hint.start[ti])
            m.add_hint(end[ti], hint.end[ti])
            g_hint = problem.group_of[hint.resource[ti]]
            for g, lit, _ in lits[ti]:
                if len(lits[ti]) > 1:
                    m.add_hint(lit, g == g_hint)

    solver = cp_model.CpSolver()
    # a solve must not take over Ctrl-C: CP-SAT would end the search as if timed out, then
    # reset SIGINT to the default, so the next Ctrl-C killed the process with no clean-up
    solver.parameters.catch_sigint_signal = False
    # The limit covers model building too: callers hand out wall-clock budgets.
    solver.parameters.max_time_in_seconds = max(time_limit_s - (time.monotonic() - t0), 0.05)
    solver.parameters.num_workers = num_workers
    solver.parameters.random_seed = 0
    if objective == "makespan" and current is None and hint is not None:
        # Both workers on large-neighbourhood search around the hint: on 2 cores the default
        # pair (one tree search with the LP, one interleaved LNS) left Brandimarte mk10 at
        # 211-216 in 60 s, LNS alone at 209-210 (docs/decisions/0023-fjsp-lns-only.md).
        solver.parameters.use_lns_only = True
    if len(free_set) < n or len(free_set) > 400:
        # Probing costs seconds on large cumulative models and rarely pays off inside a
        # window that is already hinted with a feasible plan.
        solver.parameters.cp_model_probing_level = 0
    code = solver.solve(m)
    if code not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return WindowResult("none", {}, {}, {}, 0.0, solver.wall_time)
    chosen_group: dict[int, int] = {}
    starts: dict[int, int] = {}
    ends: dict[int, int] = {}
    for ti in free:
        starts[ti] = solver.value(start[ti])
        ends[ti] = solver.value(end[ti])
        chosen_group[ti] = next(g for g, lit, _ in lits[ti] if solver.boolean_value(lit))
    bound = solver.best_objective_bound
    if moves:
        bound = (bound - len(moves)) / scale
    return WindowResult(
        "optimal" if code == cp_model.OPTIMAL else "feasible",
        chosen_group,
        starts,
        ends,
        float(bound),
        solver.wall_time,
    )


def _add_deadline_energy(
    m: cp_model.CpModel,
    problem: Problem,
    lits: dict[int, list[tuple[int, cp_model.IntVar, int]]],
    late: dict[int, cp_model.IntVar],
) -> None:
    """Redundant energy cuts that give the LP relaxation a real bound on rent.

    A task must end by its job's deadline minus the shortest chain of work after it (its
    *latest end*). For each such time T: the slot-seconds that tasks with latest end <= T
    occupy must fit in the capacity available in [0, T), except for what runs after T, which
    is at most the task's job's lateness. Without these cuts the linear relaxation sees no
    reason to rent and the bound stays at zero; using latest ends rather than job deadlines
    (encode after denoise after render) raised the 100 x 16 bound from 168 to 178 CNY.
    """
    jobs = problem.farm.jobs
    # Node groups able to hold each VRAM class (tasks needing more must go there or rent).
    vram_of = {n.id: n.vram_gb for n in problem.farm.nodes}
    node_subsets: list[list[int]] = []
    for need in sorted({0.0, *(j.vram_gb for j in jobs)}):
        subset = [
            g
            for g, grp in enumerate(problem.groups)
            if not grp.is_pool and vram_of[problem.resources[grp.members[0]].id] >= need
        ]
        if subset and subset not in node_subsets:
            node_subsets.append(subset)
    # Only jobs with a lateness term in this model (all of them in the flat model).
    latest = {ti: t for ti, t in latest_ends(problem).items() if problem.job_of[ti] in late}
    # Every T gives valid cuts; past a few dozen they cost more LP time than they add.
    cut_times = spread_cut_times(list(latest.values()), MAX_ENERGY_CUT_TIMES)
    for t_due in cut_times:
        due_tasks = [ti for ti, lt in latest.items() if lt <= t_due]
        slack = sum(late[problem.job_of[ti]] for ti in due_tasks)
        # Valid for any subset of groups; the rent only shows when the free (node) groups are
        # cut apart from the paid ones, so: all node groups together, and each group alone.
        subsets = [*node_subsets, *([g] for g in range(len(problem.groups)))]
        for subset in subsets:
            if not subset:
                continue
            capacity = 0
            for g in subset:
                group = problem.groups[g]
                capacity += group.capacity * open_seconds(group.windows, t_due)
            energy = [d * lit for ti in due_tasks for g, lit, d in lits[ti] if g in subset]
            if energy:
                m.add(sum(energy) <= capacity + slack)


def _cost_units(problem: Problem, plan: Schedule) -> int:
    """The cost objective of a complete plan in the model's integer units."""
    total = 0
    finish: dict[int, int] = {}
    for ti in range(problem.n_tasks):
        g = problem.group_of[plan.resource[ti]]
        total += next(o.cost_units for o in problem.options[ti] if o.group == g)
        j = problem.job_of[ti]
        finish[j] = max(finish.get(j, 0), plan.end[ti])
    for j, end_s in finish.items():
        deadline = problem.farm.jobs[j].deadline_s
        if deadline is not None:
            total += problem.late_units_per_s[j] * max(0, end_s - deadline)
    return total


def _inside_windows(
    m: cp_model.CpModel,
    problem: Problem,
    group: int,
    start: cp_model.IntVar,
    duration_s: int,
    lit: cp_model.IntVar | None,
) -> None:
    """Start only where the task fits in one availability window of the group.

    The gap intervals already keep work out of closed time, but a zero-length task is
    invisible to cumulative and no-overlap constraints, and the explicit domain also
    propagates better than the gaps alone.
    """
    windows = problem.groups[group].windows
    if windows == ((0, UNBOUNDED_S),):
        return
    spans = [[ws, we - duration_s] for ws, we in windows if we - duration_s >= ws]
    constraint = m.add_linear_expression_in_domain(start, cp_model.Domain.from_intervals(spans))
    if lit is not None:
        constraint.only_enforce_if(lit)
