"""Independent plan checker: re-validates a plan against the farm and recomputes its objective.

Deliberately shares no code with the planners beyond the input data classes: durations,
eligibility, windows and the objective are recomputed here from the farm as the JSON contract
defines them, so a bug in the planner's indexing or grouping cannot hide itself.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from scheduler.farm.model import Assignment, Farm, Job, Node, Pool, Task


@dataclass
class CheckReport:
    """Violations found (empty means valid) and the recomputed objective pieces."""

    violations: list[str] = field(default_factory=list)
    rent_cny: float = 0.0
    late_cost_cny: float = 0.0
    makespan_s: int = 0
    job_finish_s: dict[str, int] = field(default_factory=dict)
    job_late_s: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when the plan has no violation."""
        return not self.violations

    def objective(self, name: str) -> float:
        """Recomputed objective: ``cost`` in CNY or ``makespan`` in seconds."""
        return float(self.makespan_s) if name == "makespan" else self.rent_cny + self.late_cost_cny


def check_plan(
    farm: Farm, assignments: Sequence[Assignment], objective: str = "cost"
) -> CheckReport:
    """Check every rule of the contract; ``objective`` only selects what :meth:`objective` means."""
    del objective  # both objectives are recomputed; kept for a readable call site
    report = CheckReport()
    bad = report.violations
    nodes = {n.id: n for n in farm.nodes}
    pools = {p.id: p for p in farm.pools}
    tasks: dict[str, tuple[Job, Task]] = {t.id: (j, t) for j, t in farm.tasks()}
    placed: dict[str, Assignment] = {}
    for a in assignments:
        if a.task not in tasks:
            bad.append(f"task {a.task!r}: not in the farm")
            continue
        if a.task in placed:
            bad.append(f"task {a.task!r}: assigned more than once")
            continue
        placed[a.task] = a
    for tid in tasks:
        if tid not in placed:
            bad.append(f"task {tid!r}: not assigned")

    for tid, a in placed.items():
        job, task = tasks[tid]
        res: Node | Pool | None = nodes.get(a.resource) or pools.get(a.resource)
        where = f"task {tid!r} on {a.resource!r} slot {a.slot} [{a.start_s}, {a.end_s})"
        if res is None:
            bad.append(f"{where}: unknown resource")
            continue
        slots = res.slots if isinstance(res, Node) else res.max_slots
        if not 0 <= a.slot < slots:
            bad.append(f"{where}: slot out of range 0..{slots - 1}")
        if res.vram_gb < job.vram_gb:
            bad.append(f"{where}: needs {job.vram_gb:g} GB VRAM, resource has {res.vram_gb:g}")
        if task.durations_s is not None:
            if a.resource not in task.durations_s:
                bad.append(f"{where}: resource not among the task's explicit durations")
                continue
            expected = math.ceil(task.durations_s[a.resource])
        else:
            expected = math.ceil(task.work_gpu_s / res.speed - 1e-9)
        if a.end_s - a.start_s != expected:
            bad.append(f"{where}: lasts {a.end_s - a.start_s} s, expected {expected} s")
        if a.start_s < 0:
            bad.append(f"{where}: starts before now")
        if isinstance(res, Node):
            if not any(ws <= a.start_s and a.end_s <= we for ws, we in res.available):
                bad.append(f"{where}: outside the node's availability windows")
        elif a.start_s < res.startup_s:
            bad.append(f"{where}: before the pool's startup ({res.startup_s} s)")
        for dep in task.after:
            other = placed.get(dep)
            if other is not None and other.end_s > a.start_s:
                bad.append(f"{where}: starts before {dep!r} ends ({other.end_s} s)")

    by_slot: dict[tuple[str, int], list[Assignment]] = {}
    by_pool: dict[str, list[Assignment]] = {}
    for a in placed.values():
        if a.end_s == a.start_s:
            continue  # zero-length work occupies no slot time
        by_slot.setdefault((a.resource, a.slot), []).append(a)
        if a.resource in pools:
            by_pool.setdefault(a.resource, []).append(a)
    for (rid, slot), items in by_slot.items():
        items.sort(key=lambda a: (a.start_s, a.end_s))
        for x, y in zip(items, items[1:], strict=False):
            if y.start_s < x.end_s:
                bad.append(f"{rid!r} slot {slot}: {x.task!r} and {y.task!r} overlap")
    for rid, items in by_pool.items():
        events = sorted(
            [(a.start_s, 1) for a in items if a.end_s > a.start_s]
            + [(a.end_s, -1) for a in items if a.end_s > a.start_s]
        )
        running = 0
        for t, delta in events:
            running += delta
            if running > pools[rid].max_slots:
                bad.append(
                    f"pool {rid!r}: {running} tasks at {t} s, max_slots {pools[rid].max_slots}"
                )
                break

    for a in placed.values():
        pool = pools.get(a.resource)
        if pool is not None:
            report.rent_cny += (a.end_s - a.start_s) / 3600 * pool.cost_per_gpu_hour_cny
        report.makespan_s = max(report.makespan_s, a.end_s)
    for job in farm.jobs:
        ends = [placed[t.id].end_s for t in job.tasks if t.id in placed]
        finish = max(ends, default=0)
        late = 0 if job.deadline_s is None else max(0, finish - job.deadline_s)
        report.job_finish_s[job.id] = finish
        report.job_late_s[job.id] = late
        report.late_cost_cny += job.priority * late / 3600 * farm.late_cost_cny_per_hour
    return report
