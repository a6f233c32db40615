"""Benchmark: Brandimarte flexible job-shop instances through the farm planner.

mk01, mk04, mk06, mk08, mk10 (../shared/data/scheduling/) planned with the makespan
objective, 60 s each on 2 cores; makespan against the best-known values. Goal: best-known on
mk01, mk04, mk08; within 5% on mk06 and mk10.

Each instance prints one JSON line; the last stdout line is the summary JSON object
(mean makespan / best-known; baseline 1.0 = best-known everywhere).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from scheduler.farm.checker import check_plan
from scheduler.farm.fjsp import load_fjs
from scheduler.farm.planner import plan_farm

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "scheduling"
BEST_KNOWN = {"mk01": 40, "mk04": 60, "mk06": 57, "mk08": 523, "mk10": 193}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5 s per instance")
    parser.add_argument("--time-limit", type=float, default=60.0)
    parser.add_argument("--data", type=Path, default=DATA)
    args = parser.parse_args()
    limit = 5.0 if args.quick else args.time_limit
    ratios = []
    for name, best in BEST_KNOWN.items():
        farm = load_fjs(args.data / f"{name}.fjs")
        plan = plan_farm(farm, "makespan", time_limit_s=limit)
        assert check_plan(farm, plan.assignments).ok
        ratios.append(plan.makespan_s / best)
        row = {
            "instance": name,
            "makespan": plan.makespan_s,
            "best_known": best,
            "gap_pct": round(100 * (plan.makespan_s / best - 1), 2),
            "bound": plan.bound,
            "greedy": plan.greedy_objective,
            "status": plan.status,
            "solve_seconds": round(plan.solve_seconds, 2),
        }
        print(json.dumps(row), flush=True)
    mean = sum(ratios) / len(ratios)
    print(
        json.dumps(
            {
                "bench": "fjsp",
                "metric": f"mean makespan / best-known over {len(ratios)} Brandimarte instances",
                "unit": "ratio",
                "value": round(mean, 4),
                "baseline": 1.0,
                "ratio": round(mean, 4),
                "goal": "best-known on mk01, mk04, mk08; within 5% on mk06 and mk10",
            }
        )
    )


if __name__ == "__main__":
    main()
