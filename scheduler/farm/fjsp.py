"""Brandimarte flexible job-shop (.fjs) reader: each instance becomes a farm.

Jobs become chains of tasks, machines become one-slot nodes, and each operation's alternatives
become explicit per-node durations, so the planner's makespan objective solves the classic
benchmark unchanged (format in ../shared/data/README.md).
"""

from __future__ import annotations

from pathlib import Path

from scheduler.farm.model import Farm, FarmInputError, parse_farm


def parse_fjs(text: str, name: str = "fjs") -> dict[str, object]:
    """Parse .fjs text into farm JSON (the planner's input contract).

    Raises:
        FarmInputError: with ``<name>:line <n>`` as the path when the text is malformed.
    """
    lines = [ln.split() for ln in text.splitlines() if ln.strip()]
    if not lines:
        raise FarmInputError(name, "empty file")
    try:
        n_jobs, n_machines = int(lines[0][0]), int(lines[0][1])
    except (IndexError, ValueError) as exc:
        raise FarmInputError(f"{name}:line 1", "expected '<jobs> <machines> ...'") from exc
    if len(lines) - 1 < n_jobs:
        raise FarmInputError(name, f"header says {n_jobs} jobs, file has {len(lines) - 1}")
    nodes = [{"id": f"m{m}", "slots": 1, "vram_gb": 0} for m in range(1, n_machines + 1)]
    jobs = []
    for j in range(n_jobs):
        where = f"{name}:line {j + 2}"
        try:
            numbers = [int(x) for x in lines[j + 1]]
        except ValueError as exc:
            raise FarmInputError(where, "expected integers") from exc
        pos = 1
        tasks: list[dict[str, object]] = []
        for op in range(numbers[0] if numbers else 0):
            if pos >= len(numbers):
                raise FarmInputError(where, f"operation {op + 1} is missing")
            k = numbers[pos]
            pairs = numbers[pos + 1 : pos + 1 + 2 * k]
            if k < 1 or len(pairs) != 2 * k:
                raise FarmInputError(where, f"operation {op + 1}: expected {k} machine/time pairs")
            pos += 1 + 2 * k
            durations: dict[str, int] = {}
            for machine, seconds in zip(pairs[::2], pairs[1::2], strict=True):
                if not 1 <= machine <= n_machines:
                    raise FarmInputError(where, f"operation {op + 1}: machine {machine} unknown")
                durations[f"m{machine}"] = min(seconds, durations.get(f"m{machine}", seconds))
            task: dict[str, object] = {"id": f"j{j + 1}o{op + 1}", "durations": durations}
            if tasks:
                task["after"] = [tasks[-1]["id"]]
            tasks.append(task)
        if pos != len(numbers):
            raise FarmInputError(where, "trailing numbers after the last operation")
        jobs.append({"id": f"j{j + 1}", "tasks": tasks})
    return {"nodes": nodes, "jobs": jobs}


def read_fjs(path: str | Path) -> dict[str, object]:
    """Read a .fjs file into farm JSON."""
    p = Path(path)
    return parse_fjs(p.read_text(encoding="utf-8"), p.name)


def load_fjs(path: str | Path) -> Farm:
    """Read a .fjs file into a validated :class:`~scheduler.farm.model.Farm`."""
    return parse_farm(read_fjs(path))
