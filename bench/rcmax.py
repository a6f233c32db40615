"""Benchmark: public unrelated-parallel-machine instances (R||Cmax) through the farm planner.

rcmax_1 (100 jobs x 10 machines, optimum 117), rcmax_201 (100 x 10, optimum 1014) and
rcmax_101 (500 x 10, best known 502, bound 501), from ../shared/data/scheduling/, each become a
farm JSON document (machines -> one-slot nodes, jobs -> one task with explicit per-node
durations) that is written to a file and planned exactly as ``stagectl farm plan --objective
makespan`` does (load_farm, then plan_farm). Beside it, in the same run, with the same time
limit and number of workers, the plain textbook CP-SAT model written here: one boolean per
job and machine, a load per machine, minimise the largest load.

One JSON line per instance; the last stdout line is the summary object (value: our total
makespan, baseline: the plain model's, ratio: the worst ours / plain; goal <= 1.00).
The load average before and after goes to each row and the summary: numbers from a busy
machine are not quiet-machine numbers.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from scheduler.farm.checker import check_plan
from scheduler.farm.model import load_farm
from scheduler.farm.planner import plan_farm
from scheduler.farm.rcmax import rcmax_farm, read_rcmax, textbook_makespan

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "scheduling"
INSTANCES = {"rcmax_1": 117, "rcmax_201": 1014, "rcmax_101": 502}
"""Instance -> goal makespan (optimum, or best known for rcmax_101)."""


def plain_model(times: list[list[int]], time_limit_s: float, workers: int) -> dict[str, Any]:
    """The textbook assignment model (scheduler.farm.rcmax), as a row of the output."""
    return dataclasses.asdict(textbook_makespan(times, time_limit_s, workers))


def ours(times: list[list[int]], time_limit_s: float, workers: int) -> dict[str, Any]:
    """Through the JSON interface: write the document, load it as the CLI does, plan it."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "farm.json"
        path.write_text(json.dumps(rcmax_farm(times)), encoding="utf-8")
        farm = load_farm(path)
    t0 = time.monotonic()
    plan = plan_farm(farm, "makespan", time_limit_s=time_limit_s, num_workers=workers)
    wall = time.monotonic() - t0
    report = check_plan(farm, plan.assignments, "makespan")
    if not report.ok:
        raise SystemExit(f"plan fails the checker: {report.violations[:3]}")
    return {
        "makespan": plan.makespan_s,
        "bound": plan.to_json()["bound"],
        "status": plan.status,
        "seconds": round(wall, 2),
    }


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5 s per model and instance")
    parser.add_argument("--time-limit", type=float, default=30.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--only", nargs="*", choices=sorted(INSTANCES), help="a subset")
    args = parser.parse_args()
    limit = 5.0 if args.quick else args.time_limit
    load_before = _load()
    total_ours = total_plain = 0
    worst = 0.0
    for name, goal in INSTANCES.items():
        if args.only and name not in args.only:
            continue
        times = read_rcmax(args.data / f"{name}.txt")
        row_load = _load()
        mine = ours(times, limit, args.workers)
        plain = plain_model(times, limit, args.workers)
        ratio = mine["makespan"] / plain["makespan"] if plain["makespan"] else 0.0
        worst = max(worst, ratio)
        total_ours += mine["makespan"]
        total_plain += plain["makespan"] or 0
        row = {
            "instance": name,
            "jobs": len(times),
            "machines": len(times[0]),
            "goal": goal,
            "ours": mine,
            "plain": plain,
            "ratio": round(ratio, 4),
            "time_limit_s": limit,
            "workers": args.workers,
            "load_avg_before": row_load,
            "load_avg_after": _load(),
        }
        print(json.dumps(row), flush=True)
    print(
        json.dumps(
            {
                "bench": "rcmax",
                "metric": "makespan_ratio",
                "unit": "ratio",
                "value": total_ours,
                "baseline": total_plain,
                "ratio": round(worst, 4),
                "goal": "<= 1.00",
                "time_limit_s": limit,
                "workers": args.workers,
                "load_avg_before": load_before,
                "load_avg_after": _load(),
            }
        )
    )


if __name__ == "__main__":
    main()
