"""Public unrelated-parallel-machine instances (R||Cmax) and the textbook model they are judged by.

The reader and the farm document let ``bench/rcmax.py`` and ``tests/farm/test_assign.py`` plan
an instance through the farm planner; :func:`textbook_makespan` is the plain CP-SAT model
beside it (one boolean per job and machine, a load per machine, minimise the largest load; no
hint, no tricks), the yardstick of issue 16 (docs/decisions/0063-farm-assignment-model.md).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ortools.sat.python import cp_model


def read_rcmax(path: Path) -> list[list[int]]:
    """times[j][i]: processing time of job j on machine i (line 1 n, line 2 m, n rows of m)."""
    numbers = [int(x) for x in path.read_text(encoding="utf-8").split()]
    n, m = numbers[0], numbers[1]
    body = numbers[2:]
    if len(body) != n * m:
        raise ValueError(f"{path}: expected {n} x {m} times, found {len(body)}")
    return [body[j * m : (j + 1) * m] for j in range(n)]


def rcmax_farm(times: list[list[int]]) -> dict[str, Any]:
    """The farm JSON document of an instance: one-slot nodes, one task per job.

    See docs/farm-json.md.
    """
    m = len(times[0]) if times else 0
    return {
        "nodes": [{"id": f"m{i + 1}", "slots": 1, "vram_gb": 0} for i in range(m)],
        "jobs": [
            {
                "id": f"j{j + 1}",
                "tasks": [
                    {"id": f"t{j + 1}", "durations": {f"m{i + 1}": p for i, p in enumerate(row)}}
                ],
            }
            for j, row in enumerate(times)
        ],
    }


@dataclass(frozen=True)
class TextbookResult:
    """The textbook model's answer: makespan and bound (None without a solution)."""

    makespan: int | None
    bound: int | None
    status: str
    seconds: float


def textbook_makespan(times: list[list[int]], time_limit_s: float, workers: int) -> TextbookResult:
    """Solve the textbook assignment model of an instance with CP-SAT."""
    n, m = len(times), len(times[0])
    model = cp_model.CpModel()
    x = [[model.new_bool_var(f"x{j}_{i}") for i in range(m)] for j in range(n)]
    cmax = model.new_int_var(0, sum(max(row) for row in times), "cmax")
    for row in x:
        model.add_exactly_one(row)
    for i in range(m):
        model.add(sum(times[j][i] * x[j][i] for j in range(n)) <= cmax)
    model.minimize(cmax)
    solver = cp_model.CpSolver()
    # a solve must not take over Ctrl-C: CP-SAT would end the search as if timed out, then
    # reset SIGINT to the default, so the next Ctrl-C killed the process with no clean-up
    solver.parameters.catch_sigint_signal = False
    solver.parameters.max_time_in_seconds = time_limit_s
    solver.parameters.num_workers = workers
    t0 = time.monotonic()
    code = solver.solve(model)
    wall = time.monotonic() - t0
    ok = code in (cp_model.OPTIMAL, cp_model.FEASIBLE)
    return TextbookResult(
        makespan=int(solver.objective_value) if ok else None,
        bound=int(solver.best_objective_bound) if ok else None,
        status=solver.status_name(code).lower(),
        seconds=round(wall, 2),
    )
