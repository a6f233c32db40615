"""CP-SAT optimiser: optional intervals per (booking, stage), lexicographic objective.

Model (see docs/decisions/0010-0014):

* a booking may go on any capable stage; per option a presence literal and a start on the
  slot grid whose domain already excludes closed hours, outages and the booking's window;
* per stage a NoOverlap over intervals of ``duration + changeover``; per pool a Cumulative
  over one interval of ``duration`` per booking (whichever stage it lands on; 0014);
  confirmed bookings are fixed intervals in both;
* objective, lexicographic by weighting: priority x minutes placed, then hold rank (ties),
  then stability (keep the current placement), then stage preferences;
* warm start from the greedy plan (or a caller's hint); the primary term is constrained to be
  at least greedy's, and greedy is returned if the solver finds nothing better in time;
* the search stops as soon as every placeable booking is placed with every keepable
  placement kept, or when the caller's ``interrupt`` event is set (Ctrl-C in the CLI): CP-SAT
  then runs on a worker thread so that the main thread, where Python runs signal handlers,
  stays free to ask it to stop.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from ortools.sat.python import cp_model

from scheduler.booking.domains import floor_to, start_ranges
from scheduler.booking.explain import capacity_reason
from scheduler.booking.greedy import greedy_plan
from scheduler.booking.model import (
    Assignment,
    Booking,
    Plan,
    Problem,
    Rejection,
    Status,
    capable_stages,
    epoch_minutes,
    from_epoch_minutes,
)

#: (stage id, epoch-minute start) a caller would like a booking to keep or start from.
Hint = dict[str, tuple[str, int]]


@dataclass
class _Option:
    booking: Booking
    stage: str
    present: cp_model.IntVar
    slot: cp_model.IntVar  # start = origin + slot_minutes * slot
    domain: list[tuple[int, int]]  # allowed values of ``slot``


@dataclass
class _Levels:
    """Weights that make the single weighted objective lexicographic."""

    w_primary: int
    w_rank: int
    w_stability: int
    w_preference: int


class _StopWhenAllPlaced(cp_model.CpSolverSolutionCallback):
    """Stops the search once nothing is left to gain on the first and stability levels."""

    def __init__(self, options: list[_Option], n_placeable: int,
                 keep_terms: list[tuple[cp_model.IntVar, int]], keep_target: int) -> None:
        super().__init__()
        self._options = options
        self._n = n_placeable
        self._keep_terms = keep_terms
        self._keep_target = keep_target
        self.stopped_complete = False
        self.solutions = 0

    def on_solution_callback(self) -> None:
        self.solutions += 1
        placed = sum(self.value(o.present) for o in self._options)
        if placed < self._n:
            return
        kept = sum(w * self.value(v) for v, w in self._keep_terms)
        if kept >= self._keep_target:
            self.stopped_complete = True
            self.stop_search()


def optimise(
    problem: Problem,
    time_limit_seconds: float = 10.0,
    *,
    num_workers: int = 2,
    seed: int = 0,
    hint: Hint | None = None,
    pools_per_option: bool = False,
    interrupt: threading.Event | None = None,
) -> Plan:
    """Best plan found within the time limit; never worse than the greedy baseline.

    Args:
        problem: the instance; confirmed bookings are fixed, the rest are optional.
        time_limit_seconds: wall-clock limit for CP-SAT.
        num_workers: CP-SAT search workers (2 suits a 2-core machine).
        seed: CP-SAT random seed.
        hint: placements to warm-start from instead of the greedy plan (e.g. the previous
            plan); bookings absent from it are hinted from greedy.
        pools_per_option: the earlier pool formulation (one pool interval per booking and
            stage), kept as a reference the tests compare optima against.
        interrupt: set (by a signal handler or another thread) to stop the search at once;
            the best plan found so far is returned (greedy's if CP-SAT had none yet). The
            caller tells an interrupted plan by the event being set.
    """
    t0 = time.perf_counter()
    greedy = greedy_plan(problem)
    warm = greedy
    if any(b.stage is not None and b.status is not Status.CONFIRMED for b in problem.bookings):
        warm = greedy_plan(problem, keep_previous=True)
        if warm.objective < greedy.objective:
            warm = greedy
    slot = problem.slot_minutes
    fixed = [b for b in problem.bookings if b.status is Status.CONFIRMED]
    plannable = [b for b in problem.bookings if b.status is not Status.CONFIRMED]
    stages = problem.stage_by_id()
    times = [epoch_minutes(b.earliest_start) for b in problem.bookings]
    times += [epoch_minutes(b.start) for b in fixed if b.start is not None]
    origin = floor_to(min(times), slot) if times else 0

    model = cp_model.CpModel()
    options: list[_Option] = []
    by_booking: dict[str, list[_Option]] = {}
    stage_intervals: dict[str, list[cp_model.IntervalVar]] = {s.id: [] for s in problem.stages}
    pool_intervals: dict[str, list[tuple[cp_model.IntervalVar, int]]] = {
        p.id: [] for p in problem.pools
    }
    for b in fixed:
        assert b.stage is not None and b.start is not None
        st = epoch_minutes(b.start) - origin
        co = stages[b.stage].changeover_minutes
        stage_intervals[b.stage].append(
            model.new_fixed_size_interval_var(st, b.duration_minutes + co, f"fixed_{b.id}")
        )
        for pid, amount in b.pools:
            iv = model.new_fixed_size_interval_var(st, b.duration_minutes, f"fixedp_{b.id}")
            pool_intervals[pid].append((iv, amount))
    # Bookings with several stage options: placed on any, and the start slot the pools see.
    placed: dict[str, cp_model.IntVar] = {}
    at_slot: dict[str, cp_model.IntVar] = {}
    for b in plannable:
        opts: list[_Option] = []
        for s in capable_stages(problem, b):
            ranges = start_ranges(s, b, slot)
            if not ranges:
                continue
            dom = [((lo - origin) // slot, (hi - origin) // slot) for lo, hi in ranges]
            k = model.new_int_var_from_domain(
                cp_model.Domain.from_intervals([list(r) for r in dom]), f"k_{b.id}_{s.id}")
            x = model.new_bool_var(f"x_{b.id}_{s.id}")
            opt = _Option(b, s.id, x, k, dom)
            stage_intervals[s.id].append(model.new_optional_fixed_size_interval_var(
                slot * k, b.duration_minutes + s.changeover_minutes, x, f"iv_{b.id}_{s.id}"))
            opts.append(opt)
        if not opts:
            continue
        by_booking[b.id] = opts
        options += opts
        if pools_per_option:
            for o in opts:
                for pid, amount in b.pools:
                    iv = model.new_optional_fixed_size_interval_var(
                        slot * o.slot, b.duration_minutes, o.present, f"ivp_{b.id}_{o.stage}")
                    pool_intervals[pid].append((iv, amount))
            model.add_at_most_one(o.present for o in opts)
            continue
        # Pools do not care which stage: one interval per booking, not one per option, keeps
        # the cumulatives (every booking needs technicians) small enough to propagate fast
        # (docs/decisions/0014-booking-pool-intervals-per-booking.md).
        if len(opts) == 1:
            present, k_any = opts[0].present, opts[0].slot
        else:
            present = model.new_bool_var(f"placed_{b.id}")
            model.add_exactly_one([present.Not(), *(o.present for o in opts)])
            placed[b.id] = present
            if not b.pools:
                continue
            union = cp_model.Domain.from_intervals([list(r) for o in opts for r in o.domain])
            k_any = model.new_int_var_from_domain(union, f"k_{b.id}")
            for o in opts:
                model.add(k_any == o.slot).only_enforce_if(o.present)
            at_slot[b.id] = k_any
        for pid, amount in b.pools:
            iv = model.new_optional_fixed_size_interval_var(
                slot * k_any, b.duration_minutes, present, f"ivp_{b.id}_{pid}")
            pool_intervals[pid].append((iv, amount))
    for ivs in stage_intervals.values():
        if len(ivs) > 1:
            model.add_no_overlap(ivs)
    for pool in problem.pools:
        entries = pool_intervals[pool.id]
        if entries:
            model.add_cumulative([iv for iv, _ in entries], [a for _, a in entries], pool.capacity)

    # --- objective levels -------------------------------------------------------------
    gcd = 0
    for b in plannable:
        gcd = math.gcd(gcd, b.weight)
    gcd = gcd or 1
    max_rank = max((b.hold_rank or 1 for b in plannable if b.status is Status.HOLD), default=1)
    rank_terms = [
        (o.present, max_rank + 1 - (o.booking.hold_rank or 1))
        for o in options
        if o.booking.status is Status.HOLD
    ]
    keep_terms: list[tuple[cp_model.IntVar, int]] = []
    keep_at: list[tuple[cp_model.IntVar, str, str, int]] = []  # y, booking, stage, slot
    keep_target = 0
    for b in plannable:
        if b.stage is None or b.start is None or b.id not in by_booking:
            continue
        prev = (epoch_minutes(b.start) - origin) / slot
        best = 0
        for o in by_booking[b.id]:
            if prev != int(prev) or not _in_domain(o, int(prev)):
                continue
            points = 2 if o.stage == b.stage else 1
            y = model.new_bool_var(f"keep_{b.id}_{o.stage}")
            model.add_implication(y, o.present)
            model.add(o.slot == int(prev)).only_enforce_if(y)
            keep_terms.append((y, points))
            keep_at.append((y, b.id, o.stage, int(prev)))
            best = max(best, points)
        keep_target += best
    pref_terms = [
        (o.present, 1) for o in options if o.stage in o.booking.prefer_stages
    ]
    max_pref = len({o.booking.id for o in options if o.stage in o.booking.prefer_stages})
    max_keep = sum(w for _, w in keep_terms)
    levels = _Levels(w_preference=1, w_stability=0, w_rank=0, w_primary=0)
    levels.w_stability = max_pref + 1
    levels.w_rank = levels.w_stability * max_keep + max_pref + 1
    levels.w_primary = levels.w_rank * (sum(w for _, w in rank_terms) + 1)
    primary = sum(o.present * (o.booking.weight // gcd) for o in options)
    model.maximize(
        levels.w_primary * primary
        + levels.w_rank * sum(v * w for v, w in rank_terms)
        + levels.w_stability * sum(v * w for v, w in keep_terms)
        + sum(v * w for v, w in pref_terms)
    )
    greedy_primary = sum(
        problem.booking_by_id()[a.id].weight for a in warm.assignments
        if problem.booking_by_id()[a.id].status is not Status.CONFIRMED
    ) // gcd
    if options:
        model.add(primary >= greedy_primary)

    # --- warm start -------------------------------------------------------------------
    start_from: Hint = {a.id: (a.stage, epoch_minutes(a.start)) for a in warm.assignments}
    if hint:
        start_from.update(hint)
    hinted: dict[str, tuple[str, int]] = {}
    for o in options:
        want = start_from.get(o.booking.id)
        on = want is not None and want[0] == o.stage and (want[1] - origin) % slot == 0 \
            and _in_domain(o, (want[1] - origin) // slot)
        model.add_hint(o.present, 1 if on else 0)
        if on and want is not None:
            model.add_hint(o.slot, (want[1] - origin) // slot)
            hinted[o.booking.id] = (o.stage, (want[1] - origin) // slot)
        else:
            # A complete hint: CP-SAT checks it as a whole plan before searching.
            model.add_hint(o.slot, o.domain[0][0])
    for bid, present in placed.items():
        model.add_hint(present, 1 if bid in hinted else 0)
    for bid, k_any in at_slot.items():
        model.add_hint(k_any, hinted[bid][1] if bid in hinted else by_booking[bid][0].domain[0][0])
    for y, bid, sid, prev_slot in keep_at:
        model.add_hint(y, 1 if hinted.get(bid) == (sid, prev_slot) else 0)

    n_placeable = len(by_booking)
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = max(0.05, time_limit_seconds)
    solver.parameters.num_workers = max(1, num_workers)
    solver.parameters.random_seed = seed
    # Energy cuts for the no-overlaps and cumulatives in the LP: they move the bound off
    # "every placeable booking placed" (0.3% from the optimum on the benchmark month).
    solver.parameters.linearization_level = 2
    # CP-SAT's own Ctrl-C catching ends the search as if the time limit had come (nobody can
    # tell it was interrupted) and, when the solve returns, resets SIGINT to SIG_DFL: the
    # next Ctrl-C kills the process (a desk, a CLI) with no cleanup. Callers stop a search
    # with ``interrupt`` instead.
    solver.parameters.catch_sigint_signal = False
    callback = _StopWhenAllPlaced(options, n_placeable, keep_terms, keep_target)
    status = _run(solver, model, callback, interrupt) if options else cp_model.OPTIMAL
    elapsed = time.perf_counter() - t0

    fixed_hours = sum(b.weight for b in fixed) / 60.0
    placeable_hours = sum(b.weight for b in plannable if b.id in by_booking) / 60.0
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return _fallback(problem, warm, greedy, elapsed, fixed_hours + placeable_hours)

    assignments: list[Assignment] = []
    for b in fixed:
        assert b.stage is not None and b.start is not None
        assignments.append(Assignment(b.id, b.stage, b.start,
                                      b.start + timedelta(minutes=b.duration_minutes)))
    placed_weight = 0
    for o in options:
        if solver.value(o.present):
            start = from_epoch_minutes(origin + slot * solver.value(o.slot))
            end = start + timedelta(minutes=o.booking.duration_minutes)
            assignments.append(Assignment(o.booking.id, o.stage, start, end))
            placed_weight += o.booking.weight
    objective = fixed_hours + placed_weight / 60.0
    complete = callback.stopped_complete or status == cp_model.OPTIMAL
    if complete:
        bound = objective
    else:
        primary_bound = math.floor(solver.best_objective_bound / levels.w_primary + 1e-9)
        bound = min(fixed_hours + primary_bound * gcd / 60.0, fixed_hours + placeable_hours)
        bound = max(bound, objective)
    if objective + 1e-9 < warm.objective:
        return _fallback(problem, warm, greedy, elapsed, bound)
    placed_ids = {a.id for a in assignments}
    rejected = [
        Rejection(b.id, capacity_reason(problem, b, assignments))
        for b in plannable
        if b.id not in placed_ids
    ]
    moved = [
        a.id for a in assignments
        if (b := problem.booking_by_id()[a.id]).stage is not None
        and (a.stage != b.stage or a.start != b.start)
    ]
    return Plan(
        assignments=assignments,
        rejected=rejected,
        objective=objective,
        bound=bound,
        greedy_objective=greedy.objective,
        status="optimal" if complete else "feasible",
        solve_seconds=elapsed,
        source="cp-sat",
        moved=moved,
    )


def _run(solver: cp_model.CpSolver, model: cp_model.CpModel,
         callback: cp_model.CpSolverSolutionCallback,
         interrupt: threading.Event | None) -> Any:
    """``solver.solve``, stopped early when ``interrupt`` is set.

    Python runs signal handlers only on the main thread and only between bytecodes, so a
    handler cannot run while the main thread is inside ``solve``; the solve runs on a worker
    thread instead and the main thread waits, polling the event, and calls ``stop_search``
    (thread-safe) once it is set.
    """
    if interrupt is None:
        return solver.solve(model, callback)
    if interrupt.is_set():
        return cp_model.UNKNOWN
    outcome: list[Any] = []
    failure: list[BaseException] = []

    def work() -> None:
        try:
            outcome.append(solver.solve(model, callback))
        except BaseException as exc:  # re-raised on the caller's thread
            failure.append(exc)

    worker = threading.Thread(target=work, name="cp-sat", daemon=True)
    worker.start()
    while worker.is_alive():
        worker.join(0.05)
        if interrupt.is_set():
            # repeated: a stop asked before solve() has set up its search is not kept
            solver.stop_search()
    if failure:
        raise failure[0]
    return outcome[0]


def _fallback(problem: Problem, warm: Plan, greedy: Plan, elapsed: float, bound: float) -> Plan:
    """The warm-start plan, labelled as what it is, when CP-SAT did not beat it."""
    by_id = problem.booking_by_id()
    warm.moved = [
        a.id for a in warm.assignments
        if (b := by_id[a.id]).stage is not None and (a.stage != b.stage or a.start != b.start)
    ]
    warm.solve_seconds = elapsed
    warm.bound = max(bound, warm.objective)
    warm.greedy_objective = greedy.objective
    warm.status = "optimal" if warm.bound <= warm.objective + 1e-9 else "feasible"
    return warm


def _in_domain(option: _Option, value: int) -> bool:
    return any(lo <= value <= hi for lo, hi in option.domain)
