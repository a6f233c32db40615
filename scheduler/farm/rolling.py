"""Rolling-horizon improvement for farms too large for one CP-SAT model.

Starting from a complete plan (greedy, or the previous plan repaired), slide a window of a few
hundred tasks along the time axis, ordered by their current start. Each window is re-solved by
CP-SAT with every other task fixed; the current plan is a feasible hint for every window, so a
window's answer is accepted only when the whole plan scores no worse. The plan therefore only
ever improves on its starting point (docs/decisions/0020-farm-decomposition.md).
"""

from __future__ import annotations

import time

from scheduler.farm.cpsat import solve_window
from scheduler.farm.problem import Problem, Schedule, assign_slots, score

WINDOW_INTERVALS = 1200
"""Optional intervals per window: small enough that presolve takes well under a second."""


def improve_rolling(
    problem: Problem,
    objective: str,
    plan: Schedule,
    deadline: float,
    num_workers: int = 2,
    keep: dict[int, tuple[int, int]] | None = None,
) -> tuple[Schedule, int]:
    """Improve ``plan`` window by window until the wall-clock ``deadline`` (time.monotonic()).

    Returns:
        The plan (never worse than ``plan``) and the number of windows that improved it.
    """
    n = problem.n_tasks
    avg_options = max(1.0, sum(len(o) for o in problem.options) / max(n, 1))
    size = max(20, min(n, int(WINDOW_INTERVALS / avg_options)))
    best = plan
    best_value = score(problem, best).value(objective)
    accepted = 0
    offset = 0
    stale_sweeps = 0
    while time.monotonic() < deadline - 0.05:
        order = sorted(range(n), key=lambda t: (best.start[t], t))
        starts = list(range(offset, n, size)) or [0]
        if offset and starts[0] != 0:
            starts.insert(0, 0)
        improved_sweep = False
        for k, first in enumerate(starts):
            remaining = deadline - time.monotonic()
            if remaining < 0.1:
                break
            nxt = starts[k + 1] if k + 1 < len(starts) else n
            free = order[first:nxt]
            if not free:
                continue
            lo = min(best.start[t] for t in free)
            hi_free = max(best.end[t] for t in free)
            hi = hi_free + (hi_free - lo)
            budget = min(max(remaining / (len(starts) - k), 0.1), 3.0, remaining)
            result = solve_window(
                problem,
                objective,
                free,
                current=best,
                hint=best,
                time_limit_s=budget,
                num_workers=num_workers,
                lo_s=lo,
                hi_s=hi,
                keep=keep,
            )
            if result.status == "none":
                continue
            group = [problem.group_of[r] for r in best.resource]
            start = list(best.start)
            end = list(best.end)
            for t in free:
                group[t], start[t], end[t] = result.group[t], result.start[t], result.end[t]
            prefer = {t: (best.resource[t], best.slot[t]) for t in range(n)}
            candidate = assign_slots(problem, group, start, end, prefer)
            value = score(problem, candidate).value(objective)
            if value <= best_value:
                if value < best_value - 1e-9:
                    improved_sweep = True
                    accepted += 1
                best, best_value = candidate, value
        offset = size // 2 if offset == 0 else 0
        stale_sweeps = 0 if improved_sweep else stale_sweeps + 1
        if stale_sweeps >= 2 and not keep:
            break  # both window alignments tried without gain: a local optimum
    return best, accepted
