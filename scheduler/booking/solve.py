"""The checked solve pipeline behind ``stagectl book solve``.

Confirmed bookings must agree with each other before anything is planned (else it is bad
input); the optimiser's plan must pass the independent checker before anyone sees it. A
solve stopped by its caller (Ctrl-C) raises :class:`SolveInterrupted` with the best plan
found so far, checked too, so that no caller stores it by mistake.
"""

from __future__ import annotations

import threading
from datetime import timedelta

from scheduler.booking.checker import check_plan
from scheduler.booking.model import Assignment, Plan, Problem, Status
from scheduler.booking.optimiser import optimise
from scheduler.booking.parse import BookingInputError


class PlanCheckFailed(RuntimeError):
    """The plan broke a rule: a planner bug. The plan is never stored or written."""

    def __init__(self, violations: list[str]) -> None:
        super().__init__("plan failed the independent checker: " + "; ".join(violations[:5]))
        self.violations = violations


class SolveInterrupted(RuntimeError):
    """The caller stopped the search before its time limit (Ctrl-C).

    Attributes:
        plan: the best plan found until then; it passed the independent checker, but the
            search did not finish, so it is shown, never stored.
    """

    def __init__(self, plan: Plan) -> None:
        super().__init__(f"search interrupted after {plan.solve_seconds:.1f} s")
        self.plan = plan


def check_confirmed(problem: Problem) -> None:
    """Refuse inputs whose confirmed bookings already break a rule (overlap, pool, outage).

    Raises:
        BookingInputError: naming each confirmed booking's JSON path and the rule.
    """
    index = {b.id: i for i, b in enumerate(problem.bookings)}
    fixed = [
        Assignment(b.id, b.stage, b.start, b.start + timedelta(minutes=b.duration_minutes))
        for b in problem.bookings
        if b.status is Status.CONFIRMED and b.stage is not None and b.start is not None
    ]
    errors = [
        f"bookings[{index[v.ids[-1]]}]: confirmed booking breaks a rule: {v}"
        for v in check_plan(problem, fixed)
    ]
    if errors:
        raise BookingInputError(errors)


def solve(problem: Problem, time_limit_seconds: float = 10.0, *, num_workers: int = 2,
          seed: int = 0, interrupt: threading.Event | None = None) -> Plan:
    """Validate the fixed part, optimise, and check the plan independently.

    Args:
        problem: the instance.
        time_limit_seconds: wall-clock limit for CP-SAT.
        num_workers: CP-SAT search workers.
        seed: CP-SAT random seed.
        interrupt: set it (a SIGINT handler, another thread) to stop the search early.

    Raises:
        BookingInputError: confirmed bookings conflict.
        PlanCheckFailed: the plan broke a rule (never expected; a bug to report).
        SolveInterrupted: ``interrupt`` was set before the solve returned (its ``plan``:
            the best found so far, checked).
    """
    check_confirmed(problem)
    plan = optimise(problem, time_limit_seconds, num_workers=num_workers, seed=seed,
                    interrupt=interrupt)
    violations = check_plan(problem, plan.assignments, [r.id for r in plan.rejected])
    if violations:
        raise PlanCheckFailed([str(v) for v in violations])
    if interrupt is not None and interrupt.is_set():
        raise SolveInterrupted(plan)
    return plan
