"""Benchmark: seeded synthetic 8K render farms, the 10 s plan against a long reference and a bound.

Farms of 24/48/80 GB nodes and one rented pool (``scheduler.farm.generate.synthetic_farm``,
seed 1) at 100 x 16, 300 x 16, 1000 x 32 and 5000 chunks x 64 slots, cost objective (pool
rent + lateness, CNY). Per size it prints the plan at 10 s, the reference (the best plan known
for that farm: a 600 s run, cached in ``bench/farm_plan_reference.json``), the bound (the
larger of the planner's own bound and the LP bound of ``scheduler.farm.bound.lp_bound``), and
both gaps: 10 s plan vs reference and 10 s plan vs bound, with the bound's gap to the
reference too.

The reference cache keeps, per size, the best objective known, the time limit and date of the
run that found it and the commit it ran on (``dirty`` when scheduler/farm had uncommitted
changes). A size missing from the cache is computed on first use (600 s each); ``--refresh``
computes every size again; the cache only ever keeps the lowest objective, and a 10 s plan
that beats it lowers it too (it is then the best plan known).

Goals (issue 16): 10 s plan within 3 % of the reference at 100 x 16 and 300 x 16 and within
10 % at 1000 x 32; 5000 x 64 at 10 s within 25 % of its bound; the bound within 10 % of the
reference at 100 x 16.

The summary's ``value`` is the worst ratio over the sizes of the 10 s plan to its goal's
yardstick, each divided by its allowed ratio (plan / reference / 1.03 at 100 x 16 and 300 x 16,
/ 1.10 at 1000 x 32, plan / bound / 1.25 at 5000 x 64): one number that is <= 1.0 exactly
when every plan goal is met. ``baseline`` is the same worst ratio for the greedy plan of the
same runs, so ``ratio`` = value / baseline says how much of the greedy's excess the solver
removed. The bound goal is reported per size (``bound_vs_reference``) and in ``bound_goal_met``.
The load average is printed before and after (timings here are only quiet-machine numbers when
the 1-minute load is under 1 before the run).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

from scheduler.farm.checker import check_plan
from scheduler.farm.generate import synthetic_farm
from scheduler.farm.model import Farm, Plan, parse_farm
from scheduler.farm.planner import plan_farm
from scheduler.farm.problem import build_problem

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(__file__).resolve().parent / "farm_plan_reference.json"
SIZES = [(100, 16), (300, 16), (1000, 32), (5000, 64)]
QUICK = [(100, 16), (300, 16)]
PLAN_LIMIT_S = 10.0
REFERENCE_LIMIT_S = 600.0
# Allowed ratio of the 10 s plan to its yardstick: ("reference" | "bound", ratio).
PLAN_GOAL: dict[str, tuple[str, float]] = {
    "100x16": ("reference", 1.03),
    "300x16": ("reference", 1.03),
    "1000x32": ("reference", 1.10),
    "5000x64": ("bound", 1.25),
}
BOUND_GOAL: dict[str, float] = {"100x16": 1.10}
"""reference / bound allowed."""


def size_key(chunks: int, slots: int) -> str:
    return f"{chunks}x{slots}"


def make_farm(chunks: int, slots: int, seed: int) -> Farm:
    return parse_farm(synthetic_farm(chunks, slots, seed))


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def git_commit() -> tuple[str, bool]:
    """HEAD and whether the planner's sources differ from it."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "scheduler/farm"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown", True
    return head, bool(dirty)


def read_cache() -> dict[str, Any]:
    try:
        data = json.loads(CACHE.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def record(key: str, seed: int, objective_cny: float, limit_s: float, how: str) -> bool:
    """Store a plan's objective for ``key`` if it beats the cached best; True when it did.

    Read, merge and write back at once, so two runs writing different sizes keep both.
    """
    cache = read_cache()
    sizes = cache.setdefault("sizes", {})
    name = f"{key}/seed{seed}"
    old = sizes.get(name)
    # Compared as stored (4 decimals): the same plan again is not a new best.
    if old is not None and old["best_cny"] <= round(objective_cny, 4) + 1e-9:
        return False
    commit, dirty = git_commit()
    sizes[name] = {
        "best_cny": round(objective_cny, 4),
        "time_limit_s": limit_s,
        "found_by": how,
        "date_utc": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "commit": commit,
        "dirty": dirty,
        "load_average": load_average(),
    }
    cache["about"] = (
        "Best cost objective (CNY) known per synthetic farm (bench/farm_plan.py, cost "
        "objective); a run only ever lowers it. time_limit_s/date/commit: the run that found it."
    )
    tmp = CACHE.with_suffix(".tmp")
    tmp.write_text(json.dumps(cache, indent=2, sort_keys=True) + "\n")
    tmp.replace(CACHE)
    return True


def checked_plan(farm: Farm, limit_s: float) -> tuple[Plan, float]:
    """The cost plan of ``farm`` within ``limit_s``, its wall time, after the checker passed it."""
    t0 = time.perf_counter()
    plan = plan_farm(farm, "cost", time_limit_s=limit_s)
    wall = time.perf_counter() - t0
    report = check_plan(farm, plan.assignments)
    assert report.ok, report.violations[:5]
    return plan, wall


def reference(chunks: int, slots: int, seed: int, limit_s: float, refresh: bool) -> float:
    """The best objective known for the farm, running the long plan when asked or missing."""
    key = size_key(chunks, slots)
    cached = read_cache().get("sizes", {}).get(f"{key}/seed{seed}")
    if cached is not None and not refresh:
        return float(cached["best_cny"])
    farm = make_farm(chunks, slots, seed)
    plan, wall = checked_plan(farm, limit_s)
    record(key, seed, plan.objective, limit_s, f"plan_farm {limit_s:g} s")
    print(
        json.dumps(
            {
                "reference": key,
                "objective_cny": round(plan.objective, 2),
                "planner_bound_cny": round(plan.bound, 2),
                "status": plan.status,
                "wall_s": round(wall, 1),
                "load_average": load_average(),
            }
        ),
        flush=True,
    )
    return float(read_cache()["sizes"][f"{key}/seed{seed}"]["best_cny"])


def run(
    chunks: int, slots: int, seed: int, limit_s: float, ref_cny: float | None
) -> dict[str, Any]:
    # Imported here so that --references-only runs without the LP module.
    from scheduler.farm.bound import lp_bound

    key = size_key(chunks, slots)
    farm = make_farm(chunks, slots, seed)
    plan, wall = checked_plan(farm, limit_s)
    t1 = time.perf_counter()
    lp = lp_bound(build_problem(farm), "cost")
    lp_s = time.perf_counter() - t1
    bound = max(plan.bound, lp if lp is not None else 0.0)
    if record(key, seed, plan.objective, limit_s, f"bench plan {limit_s:g} s"):
        ref_cny = plan.objective
    greedy = plan.greedy_objective if plan.greedy_objective is not None else float("nan")

    def pct(a: float, b: float | None) -> float | None:
        return round(100 * (a / b - 1), 1) if b else None

    yard, allowed = PLAN_GOAL.get(key, ("reference", 1.10))
    base = ref_cny if yard == "reference" else bound
    row: dict[str, Any] = {
        "size": key,
        "tasks": len(plan.assignments),
        "plan_cny": round(plan.objective, 2),
        "plan_limit_s": limit_s,
        "plan_wall_s": round(wall, 2),
        "status": plan.status,
        "greedy_cny": round(greedy, 2),
        "reference_cny": None if ref_cny is None else round(ref_cny, 2),
        "planner_bound_cny": round(plan.bound, 2),
        "lp_bound_cny": None if lp is None else round(lp, 2),
        "lp_bound_s": round(lp_s, 2),
        "bound_cny": round(bound, 2),
        "gap_plan_vs_reference_pct": None if ref_cny is None else pct(plan.objective, ref_cny),
        "gap_plan_vs_bound_pct": pct(plan.objective, bound),
        "bound_vs_reference": (
            None if ref_cny is None or bound <= 0 else round(ref_cny / bound, 4)
        ),
        "goal": f"plan <= {allowed:g} x {yard}",
        "goal_ratio": None if not base else round(plan.objective / base / allowed, 4),
        "greedy_goal_ratio": None if not base else round(greedy / base / allowed, 4),
    }
    if key in BOUND_GOAL:
        row["bound_goal"] = f"reference <= {BOUND_GOAL[key]:g} x bound"
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100x16 and 300x16 only, 5 s plans")
    parser.add_argument("--refresh", action="store_true", help="recompute the references")
    parser.add_argument(
        "--references-only", action="store_true", help="compute missing references and stop"
    )
    parser.add_argument("--sizes", help="comma-separated, e.g. 100x16,300x16")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--reference-limit", type=float, default=REFERENCE_LIMIT_S)
    args = parser.parse_args()
    sizes = QUICK if args.quick else SIZES
    if args.sizes:
        sizes = [tuple(int(x) for x in s.split("x")) for s in args.sizes.split(",")]  # type: ignore[misc]
    limit_s = PLAN_LIMIT_S / 2 if args.quick else PLAN_LIMIT_S
    print(json.dumps({"load_average_before": load_average()}), flush=True)
    refs: dict[str, float | None] = {}
    for chunks, slots in sizes:
        key = size_key(chunks, slots)
        cached = read_cache().get("sizes", {}).get(f"{key}/seed{args.seed}")
        if args.quick and cached is None and not args.refresh:
            refs[key] = None  # a quick run never starts a 600 s reference
            continue
        refs[key] = reference(chunks, slots, args.seed, args.reference_limit, args.refresh)
    if args.references_only:
        print(json.dumps({"load_average_after": load_average()}), flush=True)
        return
    rows = []
    for chunks, slots in sizes:
        row = run(chunks, slots, args.seed, limit_s, refs[size_key(chunks, slots)])
        rows.append(row)
        print(json.dumps(row), flush=True)
    print(json.dumps({"load_average_after": load_average()}), flush=True)
    ratios = [r["goal_ratio"] for r in rows if r["goal_ratio"] is not None]
    greedy = [r["greedy_goal_ratio"] for r in rows if r["greedy_goal_ratio"] is not None]
    bound_met = all(
        r["bound_vs_reference"] is not None and r["bound_vs_reference"] <= BOUND_GOAL[r["size"]]
        for r in rows
        if r["size"] in BOUND_GOAL
    )
    value = max(ratios) if ratios else None
    baseline = max(greedy) if greedy else None
    print(
        json.dumps(
            {
                "bench": "farm_plan",
                "metric": "worst over sizes of 10 s plan / goal yardstick / allowed ratio "
                "(reference at 100x16, 300x16 (1.03), 1000x32 (1.10); bound at 5000x64 (1.25))",
                "unit": "ratio",
                "value": value,
                "baseline": baseline,
                "ratio": round(value / baseline, 4) if value and baseline else None,
                "goal": "value <= 1.0 (every plan goal met); bound within 10 % of the "
                "reference at 100x16",
                "bound_goal_met": bound_met,
                "quick": args.quick,
            }
        )
    )


if __name__ == "__main__":
    main()
