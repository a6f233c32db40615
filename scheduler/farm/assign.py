"""Assignment (load) model for farms whose tasks are independent: makespan = the largest load.

When no task waits for another and every resource a task may use is open in one window from
some time on (a pool from its startup), where a task runs is all that matters: a slot's tasks
run back to back from the slot's opening, and the slot finishes at opening + load. That is
the textbook unrelated-parallel-machines model (R||Cmax): one boolean per task and slot,
a load per slot, minimise the largest finish. It has no intervals, no start variables and
no disjunctions to branch on, so CP-SAT's LP and its search work on the part that is hard.

Slots of one group (docs/decisions/0020) are interchangeable, so their loads are ordered
(slot 0 carries the most): every plan has a counterpart with that order, so no optimum is
lost, and the search does not revisit permutations of the same plan.
See docs/decisions/0063-farm-assignment-model.md.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from ortools.sat.python import cp_model

from scheduler.farm.model import UNBOUNDED_S
from scheduler.farm.problem import Problem, Schedule

MAX_LITERALS = 200_000
"""Above this many (task, slot) booleans the model is not built (the interval path plans)."""
SEARCH_SHARE = 0.3
"""Share of the budget for the local search that improves the hint before CP-SAT starts."""
STALL_S = 2.0
"""The search also stops when its last gain is this long past and longer ago than it took."""


@dataclass
class AssignResult:
    """The solver's plan as a complete schedule, or None; and the proved bound."""

    status: str  # "optimal", "feasible" or "none"
    schedule: Schedule | None
    bound: float
    wall_s: float


@dataclass(frozen=True)
class _Slot:
    group: int
    index: int  # position among the group's slots (loads ordered by it)
    resource: int
    slot: int
    opens_s: int
    closes_s: int


def applies(problem: Problem, objective: str, replanning: bool = False) -> bool:
    """True when a makespan plan depends only on which slot each task runs on.

    That needs: the makespan objective, no precedences, and every group some task may use
    open in a single window (``[opens, closes)``, e.g. a pool from its startup). Re-planning
    keeps the interval model, whose keep-in-place terms are about start times.
    """
    if objective != "makespan" or replanning or problem.n_tasks == 0:
        return False
    if any(problem.preds[ti] for ti in range(problem.n_tasks)):
        return False
    used = {o.group for opts in problem.options for o in opts}
    if any(len(problem.groups[g].windows) != 1 for g in used):
        return False
    return _literal_count(problem) <= MAX_LITERALS


def _literal_count(problem: Problem) -> int:
    return sum(
        min(problem.groups[o.group].capacity, problem.n_tasks)
        for opts in problem.options
        for o in opts
    )


def _slots(problem: Problem) -> list[_Slot]:
    """Every slot of every group, at most one per task in a group (more can stay empty)."""
    out: list[_Slot] = []
    for g, group in enumerate(problem.groups):
        opens_s, closes_s = group.windows[0] if group.windows else (0, UNBOUNDED_S)
        k = 0
        for ri in group.members:
            for s in range(problem.resources[ri].slots):
                if k < problem.n_tasks:
                    out.append(_Slot(g, k, ri, s, opens_s, closes_s))
                k += 1
    return out


def solve_makespan(
    problem: Problem,
    hint: Schedule | None,
    time_limit_s: float,
    num_workers: int = 2,
    lower_bound: int = 0,
    symmetry: bool = True,
    search_share: float = SEARCH_SHARE,
) -> AssignResult:
    """Minimise the makespan with the assignment model; see :func:`applies` for when.

    Args:
        problem: the indexed farm (no precedences; one window per used group).
        hint: a complete plan (greedy): the solution hint, and its makespan the upper bound.
        time_limit_s: wall-clock limit, model building included.
        num_workers: CP-SAT search workers.
        lower_bound: a known valid lower bound on the makespan.
        symmetry: order the loads of interchangeable slots (off only for tests that check
            it loses no optimum).
        search_share: share of ``time_limit_s`` for :func:`improve_by_search` on the hint.
    """
    t0 = time.monotonic()
    n = problem.n_tasks
    slots = _slots(problem)
    if hint is not None and search_share > 0:
        hint = improve_by_search(
            problem, slots, hint, t0 + search_share * time_limit_s, lower_bound
        )
    hi = problem.horizon_s if hint is None else max(max(hint.end, default=0), 0)
    lo = max(0, min(lower_bound, hi))
    m = cp_model.CpModel()
    makespan = m.new_int_var(lo, hi, "makespan")
    # Options that could end by the upper bound; a task with none has no better place.
    by_slot: list[list[tuple[int, int, cp_model.IntVar]]] = [[] for _ in slots]
    task_lits: list[list[tuple[int, cp_model.IntVar]]] = [[] for _ in range(n)]
    slots_of_group: dict[int, list[int]] = {}
    for si, sl in enumerate(slots):
        slots_of_group.setdefault(sl.group, []).append(si)
    for ti in range(n):
        for o in problem.options[ti]:
            for si in slots_of_group.get(o.group, []):
                sl = slots[si]
                if sl.opens_s + o.duration_s > min(hi, sl.closes_s):
                    continue
                lit = m.new_bool_var(f"x{ti}_{si}")
                by_slot[si].append((ti, o.duration_s, lit))
                task_lits[ti].append((si, lit))
        if not task_lits[ti]:
            return AssignResult("none", None, float(lo), time.monotonic() - t0)
        m.add_exactly_one(lit for _, lit in task_lits[ti])

    loads: list[cp_model.IntVar | None] = [None] * len(slots)
    for si, sl in enumerate(slots):
        items = by_slot[si]
        if not items:
            continue
        cap = min(hi, sl.closes_s) - sl.opens_s
        total = sum(d for _, d, _ in items)
        load = m.new_int_var(0, max(0, min(cap, total)), f"load{si}")
        m.add(load == sum(d * lit for _, d, lit in items))
        if sl.opens_s > 0:
            # A slot opening late counts only when something runs there.
            used = m.new_bool_var(f"used{si}")
            for _, _, lit in items:
                m.add_implication(lit, used)
            m.add(makespan >= sl.opens_s + load).only_enforce_if(used)
        else:
            m.add(makespan >= load)
        loads[si] = load
    if symmetry:
        for sis in slots_of_group.values():
            for a, b in zip(sis, sis[1:], strict=False):
                la, lb = loads[a], loads[b]
                if la is not None and lb is not None:
                    m.add(la >= lb)
    m.minimize(makespan)

    if hint is not None:
        _add_hint(m, problem, slots, slots_of_group, task_lits, by_slot, loads, hint, makespan)

    solver = cp_model.CpSolver()
    # a solve must not take over Ctrl-C: CP-SAT would end the search as if timed out, then
    # reset SIGINT to the default, so the next Ctrl-C killed the process with no clean-up
    solver.parameters.catch_sigint_signal = False
    solver.parameters.max_time_in_seconds = max(time_limit_s - (time.monotonic() - t0), 0.05)
    solver.parameters.num_workers = num_workers
    solver.parameters.random_seed = 0
    code = solver.solve(m)
    if code not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return AssignResult("none", None, float(lo), solver.wall_time)
    on_slot: list[list[int]] = [[] for _ in slots]
    duration: list[int] = [0] * n
    for ti in range(n):
        si = next(si for si, lit in task_lits[ti] if solver.boolean_value(lit))
        on_slot[si].append(ti)
        duration[ti] = next(d for t, d, _ in by_slot[si] if t == ti)
    openings = [(s.resource, s.slot, s.opens_s) for s in slots]
    schedule = sequence(problem, openings, on_slot, duration)
    return AssignResult(
        "optimal" if code == cp_model.OPTIMAL else "feasible",
        schedule,
        float(solver.best_objective_bound),
        solver.wall_time,
    )


def sequence(
    problem: Problem,
    slots: list[tuple[int, int, int]],
    on_slot: list[list[int]],
    duration: list[int],
) -> Schedule:
    """Run each slot's tasks back to back from its opening: (resource, slot, opens) per slot.

    Longer tasks go first (any order gives the same finish; this one is deterministic).
    """
    n = problem.n_tasks
    sched = Schedule([-1] * n, [-1] * n, [0] * n, [0] * n)
    for (ri, k, opens_s), tasks in zip(slots, on_slot, strict=True):
        t = opens_s
        for ti in sorted(tasks, key=lambda x: (-duration[x], x)):
            sched.resource[ti], sched.slot[ti] = ri, k
            sched.start[ti], sched.end[ti] = t, t + duration[ti]
            t += duration[ti]
    return sched


def _add_hint(
    m: cp_model.CpModel,
    problem: Problem,
    slots: list[_Slot],
    slots_of_group: dict[int, list[int]],
    task_lits: list[list[tuple[int, cp_model.IntVar]]],
    by_slot: list[list[tuple[int, int, cp_model.IntVar]]],
    loads: list[cp_model.IntVar | None],
    hint: Schedule,
    makespan: cp_model.IntVar,
) -> None:
    """Hint a complete plan, its slots renumbered so that the loads are ordered."""
    where = {(s.resource, s.slot): si for si, s in enumerate(slots)}
    load_of: dict[int, int] = {}
    for ti in range(problem.n_tasks):
        si = where.get((hint.resource[ti], hint.slot[ti]))
        if si is None:
            return  # a slot past one per task: cannot happen for a sane hint; skip the hint
        load_of[si] = load_of.get(si, 0) + hint.end[ti] - hint.start[ti]
    rename: dict[int, int] = {}
    for sis in slots_of_group.values():
        ordered = sorted(sis, key=lambda si: (-load_of.get(si, 0), si))
        rename.update(zip(ordered, sis, strict=True))
    chosen = [rename[where[(hint.resource[ti], hint.slot[ti])]] for ti in range(problem.n_tasks)]
    for ti, lits in enumerate(task_lits):
        for si, lit in lits:
            m.add_hint(lit, si == chosen[ti])
    hinted_load = [0] * len(slots)
    for ti, si in enumerate(chosen):
        hinted_load[si] += next((d for t, d, _ in by_slot[si] if t == ti), 0)
    for si, load in enumerate(loads):
        if load is not None:
            m.add_hint(load, hinted_load[si])
    m.add_hint(
        makespan, max((slots[si].opens_s + hinted_load[si] for si in set(chosen)), default=0)
    )


def improve_by_search(
    problem: Problem,
    slots: list[_Slot],
    plan: Schedule,
    until: float,
    lower_bound: int = 0,
    seed: int = 0,
    fastest_start: bool = True,
) -> Schedule:
    """Tabu search on overload: a plan whose makespan is lower, or ``plan`` itself.

    With target ``T`` = best makespan - 1, the search minimises the total time slots finish
    after ``T`` by moving one task off an over-full slot or swapping it with a task of
    another slot, the best non-tabu such step each time (a task may not return to the
    slot it left for a few steps). When nothing finishes after ``T`` any more, that plan is
    the new best and ``T`` drops by one. CP-SAT alone is slow to find the last unit of an
    exact fit (rcmax_1: 118 -> 117 took it 30 s and more), this finds it in about a second,
    and CP-SAT then proves it from the hint.
    """
    where = {(s.resource, s.slot): si for si, s in enumerate(slots)}
    n = problem.n_tasks
    n_slots = len(slots)
    assign: list[int] = []
    for ti in range(n):
        si = where.get((plan.resource[ti], plan.slot[ti]))
        if si is None:
            return plan
        assign.append(si)
    # dur[t][s]: duration of task t on slot s, or -1 where it cannot run there.
    dur = [[-1] * n_slots for _ in range(n)]
    group_slots: dict[int, list[int]] = {}
    for si, sl in enumerate(slots):
        group_slots.setdefault(sl.group, []).append(si)
    limit = [min(sl.closes_s, UNBOUNDED_S) for sl in slots]
    elig: list[list[int]] = [[] for _ in range(n)]
    for ti in range(n):
        for o in problem.options[ti]:
            for si in group_slots.get(o.group, []):
                if slots[si].opens_s + o.duration_s <= limit[si]:
                    dur[ti][si] = o.duration_s
                    elig[ti].append(si)
    big = 4 * UNBOUNDED_S  # the duration where a task cannot run: fails every limit
    d = np.full((n, n_slots), big, dtype=np.int64)
    for ti in range(n):
        for si in elig[ti]:
            d[ti, si] = dur[ti][si]
    if fastest_start:
        # Start from each task on its fastest slot (least total work; most overloaded),
        # ties to the one the plan chose: the search balances from there.
        assign = [min(elig[ti], key=lambda si: (dur[ti][si], si != assign[ti])) for ti in range(n)]
    where_now = np.array(assign, dtype=np.int64)
    lim = np.array(limit, dtype=np.int64)
    fin = np.array([sl.opens_s for sl in slots], dtype=np.int64)
    np.add.at(fin, where_now, d[np.arange(n), where_now])
    # Keys: overload change first, then the change in total work (and a random tie-break).
    scale = 4.0 * max((x for row in dur for x in row), default=0) + 4.0
    tabu = np.zeros((n, n_slots), dtype=np.int64)  # step until which task may not go there
    rng = np.random.default_rng(seed)
    best_value, best_assign = int(fin.max()), where_now.copy()
    if best_value > max(plan.end, default=0):
        best_value = max(plan.end, default=0)  # only a plan better than ``plan`` counts
    target = best_value - 1
    step = 0
    started = last_gain = time.monotonic()
    while target >= lower_bound:
        now = time.monotonic()
        # Stop at the deadline, or once the last gain is long past (CP-SAT takes over).
        if now >= until or now - last_gain > max(STALL_S, now - started - (now - last_gain)):
            break
        step += 1
        hot = np.flatnonzero(fin > target)
        if hot.size == 0:
            best_value, best_assign = int(fin.max()), where_now.copy()
            target = best_value - 1
            last_gain = time.monotonic()
            continue
        c = int(hot[rng.integers(hot.size)])
        a = np.flatnonzero(where_now == c)
        if a.size == 0:
            continue
        over = np.maximum(fin - target, 0)
        left = fin[c] - d[a, c]  # c's finish without each of its tasks
        gain_c = over[c] - np.maximum(left - target, 0)
        # Moves: task a[i] to slot k.
        nk = fin[None, :] + d[a, :]
        delta = np.maximum(nk - target, 0) - over[None, :] - gain_c[:, None]
        tie = d[a, :] - d[a, c][:, None]
        ok = (nk <= lim[None, :]) & (tabu[a, :] <= step)
        ok[:, c] = False
        key = np.where(ok, delta * scale + tie + rng.random(ok.shape), np.inf)
        best_move = int(np.argmin(key))
        best_key = float(key.flat[best_move])
        # Swaps: task a[i] to slot k = u's slot, task u to c (only steps that do not worsen).
        u = np.flatnonzero(where_now != c)
        if u.size:
            ku = where_now[u]
            nc = left[:, None] + d[u, c][None, :]
            nk2 = (fin[ku] - d[u, ku])[None, :] + d[a[:, None], ku[None, :]]
            delta2 = (
                np.maximum(nc - target, 0)
                + np.maximum(nk2 - target, 0)
                - over[c]
                - over[ku][None, :]
            )
            tie2 = nc - fin[c] + nk2 - fin[ku][None, :]
            ok2 = (
                (nc <= lim[c])
                & (nk2 <= lim[ku][None, :])
                & (delta2 <= 0)
                & (tabu[a[:, None], ku[None, :]] <= step)
                & (tabu[u, c] <= step)[None, :]
            )
            key2 = np.where(ok2, delta2 * scale + tie2 + rng.random(ok2.shape), np.inf)
            best_swap = int(np.argmin(key2))
            if float(key2.flat[best_swap]) < best_key:
                i, j = divmod(best_swap, u.size)
                ti, uj, k = int(a[i]), int(u[j]), int(ku[j])
                fin[c] += d[uj, c] - d[ti, c]
                fin[k] += d[ti, k] - d[uj, k]
                where_now[ti], where_now[uj] = k, c
                tabu[ti, c] = step + int(rng.integers(5, 16))
                tabu[uj, k] = step + int(rng.integers(5, 16))
                continue
        if best_key == np.inf:
            continue
        i, k = divmod(best_move, n_slots)
        ti = int(a[i])
        fin[c] -= d[ti, c]
        fin[k] += d[ti, k]
        where_now[ti] = k
        tabu[ti, c] = step + int(rng.integers(5, 16))
    if int(fin.max()) < best_value:
        best_value, best_assign = int(fin.max()), where_now.copy()
    if best_value >= max(plan.end, default=0):
        return plan
    on_slot: list[list[int]] = [[] for _ in slots]
    for ti, si in enumerate(best_assign.tolist()):
        on_slot[si].append(ti)
    duration = [dur[ti][on] for ti, on in enumerate(best_assign.tolist())]
    return sequence(problem, [(s.resource, s.slot, s.opens_s) for s in slots], on_slot, duration)
