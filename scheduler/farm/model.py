"""Farm model: nodes, pools, jobs and tasks, parsed from the JSON contract in docs/farm-json.md.

Parsing is strict on purpose: an unknown key, a negative amount of work, a dependency cycle or
a task that no resource can run is rejected with the JSON path of the offending value, so a
scheduler operator can fix the file without reading the planner. All times are integer seconds
from "now" (see docs/decisions/0022-farm-time-units.md).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

UNBOUNDED_S = 10**12
"""Stand-in for "no end" in availability windows (about 31 700 years, still int64-safe)."""


class FarmInputError(ValueError):
    """Bad farm input: ``path`` is the JSON path of the offending value, ``reason`` says why."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}" if path else reason)
        self.path = path
        self.reason = reason


@dataclass(frozen=True)
class Node:
    """An on-prem GPU node: ``slots`` GPUs, each running one task at a time."""

    id: str
    slots: int
    vram_gb: float
    speed: float = 1.0
    available: tuple[tuple[int, int], ...] = ((0, UNBOUNDED_S),)


@dataclass(frozen=True)
class Pool:
    """Rented compute: up to ``max_slots`` GPUs at once, usable from ``startup_s`` on."""

    id: str
    max_slots: int
    vram_gb: float
    speed: float
    cost_per_gpu_hour_cny: float
    startup_s: int = 0


@dataclass(frozen=True)
class Task:
    """A frame chunk: ``work_gpu_s`` reference GPU-seconds, or explicit per-resource durations.

    With ``durations_s`` given, the task may only run on the listed resources.
    ``after`` holds resolved task ids this task must wait for.
    """

    id: str
    work_gpu_s: float
    durations_s: Mapping[str, int] | None = None
    after: tuple[str, ...] = ()


@dataclass(frozen=True)
class Job:
    """A render job: its tasks share priority, deadline and VRAM need."""

    id: str
    tasks: tuple[Task, ...]
    priority: float = 1.0
    deadline_s: int | None = None
    vram_gb: float = 0.0


@dataclass(frozen=True)
class Farm:
    """A complete planning problem."""

    nodes: tuple[Node, ...]
    pools: tuple[Pool, ...]
    jobs: tuple[Job, ...]
    late_cost_cny_per_hour: float = 0.0
    task_paths: Mapping[str, str] = field(default_factory=dict, compare=False)
    """JSON path of each task (for error messages)."""

    def tasks(self) -> list[tuple[Job, Task]]:
        """All tasks with their job, in input order."""
        return [(job, task) for job in self.jobs for task in job.tasks]

    def without_resource(self, resource_id: str) -> Farm:
        """The same farm with one node or pool removed (e.g. a node went down)."""
        return Farm(
            nodes=tuple(n for n in self.nodes if n.id != resource_id),
            pools=tuple(p for p in self.pools if p.id != resource_id),
            jobs=self.jobs,
            late_cost_cny_per_hour=self.late_cost_cny_per_hour,
            task_paths=self.task_paths,
        )


@dataclass(frozen=True)
class Assignment:
    """Where and when one task runs: ``[start_s, end_s)`` on ``slot`` of ``resource``."""

    task: str
    resource: str
    slot: int
    start_s: int
    end_s: int


@dataclass(frozen=True)
class JobFinish:
    """When a job's last task ends and how late that is against its deadline."""

    id: str
    finish_s: int
    late_s: int


@dataclass(frozen=True)
class Plan:
    """A planner result, serialised by :meth:`to_json` to the output contract."""

    status: str
    objective_name: str
    objective: float
    bound: float
    greedy_objective: float | None
    solve_seconds: float
    makespan_s: int
    cost_cny: float
    assignments: tuple[Assignment, ...]
    jobs: tuple[JobFinish, ...]

    def to_json(self) -> dict[str, Any]:
        """The output JSON object of docs/farm-json.md."""
        return {
            "status": self.status,
            "objective": _num(self.objective),
            "bound": _num(self.bound),
            "greedy_objective": (
                None if self.greedy_objective is None else _num(self.greedy_objective)
            ),
            "solve_seconds": round(self.solve_seconds, 3),
            "makespan": self.makespan_s,
            "cost_cny": round(self.cost_cny, 4),
            "assignments": [
                {
                    "task": a.task,
                    "resource": a.resource,
                    "slot": a.slot,
                    "start": a.start_s,
                    "end": a.end_s,
                }
                for a in self.assignments
            ],
            "jobs": [
                {"id": j.id, "finish": j.finish_s, "late_seconds": j.late_s} for j in self.jobs
            ],
        }


def _num(x: float) -> float | int:
    return int(x) if float(x).is_integer() else round(x, 4)


def assignments_from_json(data: Any) -> list[Assignment]:
    """Read the ``assignments`` of a previous plan's output JSON (for re-planning hints)."""
    items = _get(data, "", "assignments", list) if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise FarmInputError("assignments", "expected a list")
    out = []
    for i, item in enumerate(items):
        path = f"assignments[{i}]"
        if not isinstance(item, dict):
            raise FarmInputError(path, f"expected an object, got {type(item).__name__}")
        out.append(
            Assignment(
                task=_get(item, path, "task", str),
                resource=_get(item, path, "resource", str),
                slot=_int(_get(item, path, "slot", (int, float)), f"{path}.slot", minimum=0),
                start_s=_int(_get(item, path, "start", (int, float)), f"{path}.start", 0),
                end_s=_int(_get(item, path, "end", (int, float)), f"{path}.end", 0),
            )
        )
    return out


# --------------------------------------------------------------------------- parsing


def load_farm(path: str | Path) -> Farm:
    """Read and validate a farm JSON file."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise FarmInputError("", f"not valid JSON: {exc}") from exc
    return parse_farm(data)


def parse_farm(data: Any) -> Farm:
    """Validate a decoded JSON object and build a :class:`Farm`.

    Raises:
        FarmInputError: with the JSON path and the reason of the first problem found.
    """
    if not isinstance(data, dict):
        raise FarmInputError("", f"top level must be an object, got {type(data).__name__}")
    _known(data, "", {"late_cost_cny_per_hour", "nodes", "pools", "jobs"})
    late = _number(data.get("late_cost_cny_per_hour", 0), "late_cost_cny_per_hour", minimum=0)
    nodes = tuple(
        _parse_node(n, f"nodes[{i}]") for i, n in enumerate(_list(data, "", "nodes", True))
    )
    pools = tuple(
        _parse_pool(p, f"pools[{i}]") for i, p in enumerate(_list(data, "", "pools", True))
    )
    resource_ids: dict[str, str] = {}
    named: list[tuple[str, str]] = [("nodes", n.id) for n in nodes]
    named += [("pools", p.id) for p in pools]
    counts = {"nodes": 0, "pools": 0}
    for kind, rid in named:
        i = counts[kind]
        counts[kind] += 1
        if rid in resource_ids:
            raise FarmInputError(
                f"{kind}[{i}].id", f"duplicate resource id {rid!r} (also {resource_ids[rid]})"
            )
        resource_ids[rid] = f"{kind}[{i}]"
    if not nodes and not pools:
        raise FarmInputError("nodes", "the farm needs at least one node or pool")

    raw_jobs = _list(data, "", "jobs", False)
    task_paths: dict[str, str] = {}
    job_ids: dict[str, int] = {}
    for j, raw_job in enumerate(raw_jobs):
        jpath = f"jobs[{j}]"
        if not isinstance(raw_job, dict):
            raise FarmInputError(jpath, f"expected an object, got {type(raw_job).__name__}")
        jid = _get(raw_job, jpath, "id", str)
        if jid in job_ids:
            raise FarmInputError(f"{jpath}.id", f"duplicate job id {jid!r}")
        job_ids[jid] = j
        for k, raw_task in enumerate(_list(raw_job, jpath, "tasks", False)):
            tpath = f"{jpath}.tasks[{k}]"
            if not isinstance(raw_task, dict):
                raise FarmInputError(tpath, f"expected an object, got {type(raw_task).__name__}")
            tid = _get(raw_task, tpath, "id", str)
            if tid in task_paths:
                raise FarmInputError(f"{tpath}.id", f"duplicate task id {tid!r}")
            task_paths[tid] = tpath

    jobs = []
    job_tasks: dict[str, list[str]] = {}
    for j, raw_job in enumerate(raw_jobs):
        jpath = f"jobs[{j}]"
        job_tasks[raw_job["id"]] = [t["id"] for t in raw_job["tasks"]]
    for j, raw_job in enumerate(raw_jobs):
        jobs.append(_parse_job(raw_job, f"jobs[{j}]", resource_ids, task_paths, job_tasks))
    farm = Farm(nodes, pools, tuple(jobs), late, task_paths)
    _check_acyclic(farm)
    _check_fits(farm)
    return farm


def _parse_node(raw: Any, path: str) -> Node:
    if not isinstance(raw, dict):
        raise FarmInputError(path, f"expected an object, got {type(raw).__name__}")
    _known(raw, path, {"id", "slots", "vram_gb", "speed", "available"})
    windows: tuple[tuple[int, int], ...] = ((0, UNBOUNDED_S),)
    if "available" in raw:
        windows = _parse_windows(raw["available"], f"{path}.available")
    return Node(
        id=_get(raw, path, "id", str),
        slots=_int(_get(raw, path, "slots", (int, float)), f"{path}.slots", minimum=1),
        vram_gb=_number(_get(raw, path, "vram_gb", (int, float)), f"{path}.vram_gb", minimum=0),
        speed=_speed(raw.get("speed", 1.0), f"{path}.speed"),
        available=windows,
    )


def _parse_windows(raw: Any, path: str) -> tuple[tuple[int, int], ...]:
    if not isinstance(raw, list):
        raise FarmInputError(path, f"expected a list of [start, end] pairs, got {raw!r}")
    windows = []
    for i, w in enumerate(raw):
        wpath = f"{path}[{i}]"
        if not (isinstance(w, list) and len(w) == 2):
            raise FarmInputError(wpath, f"expected [start, end], got {w!r}")
        start = _int(w[0], f"{wpath}[0]", minimum=0)
        end = UNBOUNDED_S if w[1] is None else _int(w[1], f"{wpath}[1]", minimum=0)
        if end <= start:
            raise FarmInputError(wpath, f"window must end after it starts, got {w!r}")
        windows.append((start, end))
    windows.sort()
    merged: list[tuple[int, int]] = []
    for start, end in windows:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return tuple(merged)


def _parse_pool(raw: Any, path: str) -> Pool:
    if not isinstance(raw, dict):
        raise FarmInputError(path, f"expected an object, got {type(raw).__name__}")
    _known(
        raw,
        path,
        {"id", "max_slots", "vram_gb", "speed", "cost_per_gpu_hour_cny", "startup_seconds"},
    )
    return Pool(
        id=_get(raw, path, "id", str),
        max_slots=_int(_get(raw, path, "max_slots", (int, float)), f"{path}.max_slots", 1),
        vram_gb=_number(_get(raw, path, "vram_gb", (int, float)), f"{path}.vram_gb", minimum=0),
        speed=_speed(raw.get("speed", 1.0), f"{path}.speed"),
        cost_per_gpu_hour_cny=_number(
            _get(raw, path, "cost_per_gpu_hour_cny", (int, float)),
            f"{path}.cost_per_gpu_hour_cny",
            minimum=0,
        ),
        startup_s=_int(raw.get("startup_seconds", 0), f"{path}.startup_seconds", minimum=0),
    )


def _parse_job(
    raw: dict[str, Any],
    path: str,
    resource_ids: Mapping[str, str],
    task_paths: Mapping[str, str],
    job_tasks: Mapping[str, list[str]],
) -> Job:
    _known(raw, path, {"id", "priority", "deadline", "vram_gb", "tasks", "after"})
    job_after = []
    for i, ref in enumerate(_list(raw, path, "after", True)):
        if not isinstance(ref, str) or ref not in job_tasks:
            raise FarmInputError(f"{path}.after[{i}]", f"unknown job id {ref!r}")
        job_after.extend(job_tasks[ref])
    deadline = raw.get("deadline")
    tasks = []
    for k, raw_task in enumerate(raw["tasks"]):
        tpath = f"{path}.tasks[{k}]"
        tasks.append(_parse_task(raw_task, tpath, resource_ids, task_paths, job_tasks, job_after))
    if not tasks:
        raise FarmInputError(f"{path}.tasks", "a job needs at least one task")
    return Job(
        id=raw["id"],
        tasks=tuple(tasks),
        priority=_number(raw.get("priority", 1), f"{path}.priority", minimum=0),
        deadline_s=None if deadline is None else _int(deadline, f"{path}.deadline", minimum=0),
        vram_gb=_number(raw.get("vram_gb", 0), f"{path}.vram_gb", minimum=0),
    )


def _parse_task(
    raw: dict[str, Any],
    path: str,
    resource_ids: Mapping[str, str],
    task_paths: Mapping[str, str],
    job_tasks: Mapping[str, list[str]],
    job_after: Sequence[str],
) -> Task:
    _known(raw, path, {"id", "work", "durations", "after"})
    durations: dict[str, int] | None = None
    if "durations" in raw:
        raw_d = raw["durations"]
        if not isinstance(raw_d, dict) or not raw_d:
            raise FarmInputError(
                f"{path}.durations",
                f"expected a non-empty object {{resource: seconds}}, got {raw_d!r}",
            )
        durations = {}
        for rid, seconds in raw_d.items():
            dpath = f"{path}.durations.{rid}"
            if rid not in resource_ids:
                raise FarmInputError(dpath, f"unknown node or pool {rid!r}")
            durations[rid] = math.ceil(_number(seconds, dpath, minimum=0))
    if "work" in raw:
        work = _number(raw["work"], f"{path}.work", minimum=0)
    elif durations is None:
        raise FarmInputError(f"{path}.work", "missing: give work or durations")
    else:
        work = 0.0
    after: list[str] = []
    for i, ref in enumerate(_list(raw, path, "after", True)):
        if not isinstance(ref, str):
            raise FarmInputError(f"{path}.after[{i}]", f"expected a task or job id, got {ref!r}")
        if ref in task_paths:
            after.append(ref)
        elif ref in job_tasks:
            after.extend(job_tasks[ref])
        else:
            raise FarmInputError(f"{path}.after[{i}]", f"unknown task or job id {ref!r}")
    for ref in job_after:
        if ref not in after:
            after.append(ref)
    return Task(id=raw["id"], work_gpu_s=work, durations_s=durations, after=tuple(after))


def _check_acyclic(farm: Farm) -> None:
    tasks = {t.id: t for _, t in farm.tasks()}
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done
    for root in tasks:
        if root in state:
            continue
        stack: list[tuple[str, int]] = [(root, 0)]
        state[root] = 1
        while stack:
            tid, i = stack[-1]
            after = tasks[tid].after
            if i == len(after):
                state[tid] = 2
                stack.pop()
                continue
            stack[-1] = (tid, i + 1)
            nxt = after[i]
            if state.get(nxt) == 1:
                names = [s for s, _ in stack]
                cycle = [*names[names.index(nxt) :], nxt]
                raise FarmInputError(
                    f"{farm.task_paths[tid]}.after",
                    "dependency cycle: " + " -> ".join(reversed(cycle)),
                )
            if nxt not in state:
                state[nxt] = 1
                stack.append((nxt, 0))


def _check_fits(farm: Farm) -> None:
    for job, task in farm.tasks():
        if any(True for _ in eligible_durations(farm, job, task)):
            continue
        biggest = max([n.vram_gb for n in farm.nodes] + [p.vram_gb for p in farm.pools])
        if task.durations_s is not None:
            why = f"none of {sorted(task.durations_s)} has {job.vram_gb:g} GB VRAM"
        elif job.vram_gb > biggest:
            why = f"needs {job.vram_gb:g} GB VRAM, the largest GPU has {biggest:g} GB"
        else:
            why = "its duration fits in no availability window of any node with enough VRAM"
        raise FarmInputError(farm.task_paths[task.id], f"fits nowhere: {why}")


def eligible_durations(farm: Farm, job: Job, task: Task) -> list[tuple[Node | Pool, int]]:
    """Resources the task may run on, with its duration there in seconds.

    A resource is eligible when its VRAM covers the job's need, it is listed in explicit
    durations (when those are given), and the task fits in one of its availability windows.
    """
    out: list[tuple[Node | Pool, int]] = []
    resources: list[Node | Pool] = [*farm.nodes, *farm.pools]
    for r in resources:
        if r.vram_gb < job.vram_gb:
            continue
        if task.durations_s is not None:
            if r.id not in task.durations_s:
                continue
            duration = task.durations_s[r.id]
        else:
            duration = math.ceil(task.work_gpu_s / r.speed - 1e-9)
        if isinstance(r, Node) and not any(e - s >= duration for s, e in r.available):
            continue
        out.append((r, duration))
    return out


# --------------------------------------------------------------------------- small validators


def _known(raw: Mapping[str, Any], path: str, keys: set[str]) -> None:
    for key in raw:
        if key not in keys:
            where = f"{path}.{key}" if path else key
            raise FarmInputError(where, f"unknown key (expected one of {sorted(keys)})")


def _get(raw: Mapping[str, Any], path: str, key: str, kind: type | tuple[type, ...]) -> Any:
    where = f"{path}.{key}" if path else key
    if key not in raw:
        raise FarmInputError(where, "missing")
    value = raw[key]
    if not isinstance(value, kind) or isinstance(value, bool):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise FarmInputError(where, f"expected {names}, got {value!r}")
    return value


def _list(raw: Mapping[str, Any], path: str, key: str, optional: bool) -> list[Any]:
    where = f"{path}.{key}" if path else key
    if key not in raw:
        if optional:
            return []
        raise FarmInputError(where, "missing")
    value = raw[key]
    if not isinstance(value, list):
        raise FarmInputError(where, f"expected a list, got {type(value).__name__}")
    return value


def _number(value: Any, path: str, minimum: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise FarmInputError(path, f"expected a number, got {value!r}")
    if minimum is not None and value < minimum:
        raise FarmInputError(path, f"must be >= {minimum:g}, got {value:g}")
    return float(value)


def _int(value: Any, path: str, minimum: int | None = None) -> int:
    number = _number(value, path, minimum)
    if not number.is_integer():
        raise FarmInputError(path, f"expected a whole number of seconds/slots, got {value!r}")
    if abs(number) > UNBOUNDED_S:
        raise FarmInputError(path, f"must be at most {UNBOUNDED_S}, got {value!r}")
    return int(number)


def _speed(value: Any, path: str) -> float:
    speed = _number(value, path, minimum=0)
    if speed <= 0:
        raise FarmInputError(path, f"must be > 0, got {value!r}")
    return speed
