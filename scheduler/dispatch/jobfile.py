"""Job files (TOML): a frame range cut into chunks, an argv template, outputs, VRAM, deadline.

Example (docs/farm-dispatch.md has every key)::

    [[jobs]]
    id = "sh010-plate"
    frame_start = 1001
    frame_end = 1024
    chunk_size = 4
    argv = ["{python}", "-m", "scheduler.dispatch.render", "--width", "960", "--height", "540",
            "--frame", "{frame_start}", "--to-frame", "{frame_end}", "--out", "{output}"]
    output = "renders/sh010/plate.####.png"
    estimate_s = 2.0          # reference GPU-seconds per frame
    vram_gb = 8
    deadline_utc = 2026-03-01T18:00:00+08:00
    priority = 2
    after = ["sh005-layout"]

Validation is strict and every error names the file, the key path, the value and what was
expected, so a wrangler can fix the file without reading the code.
"""

from __future__ import annotations

import re
import time
import tomllib
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from scheduler.dispatch.runner import TOKENS

JOB_KEYS = {
    "id", "frame_start", "frame_end", "chunk_size", "argv", "output", "estimate_s", "vram_gb",
    "gpus", "deadline_utc", "deadline_in_s", "priority", "after", "max_attempts",
}
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class JobFileError(ValueError):
    """A bad job file: ``file``, ``path`` (key path), ``value`` and what was ``expected``."""

    def __init__(self, file: str, path: str, value: Any, expected: str) -> None:
        super().__init__(f"{file}: {path}: got {value!r}; expected {expected}")
        self.file, self.path, self.value, self.expected = file, path, value, expected


@dataclass(frozen=True)
class TaskSpec:
    """One chunk of frames."""

    id: str
    frame_start: int
    frame_end: int


@dataclass(frozen=True)
class JobSpec:
    """A validated job; ``deadline_utc`` is a POSIX timestamp (None: no deadline)."""

    id: str
    frame_start: int
    frame_end: int
    chunk_size: int
    argv: tuple[str, ...]
    output: str | None
    estimate_s: float
    vram_gb: float = 0.0
    gpus: int = 1
    deadline_utc: float | None = None
    priority: float = 1.0
    after: tuple[str, ...] = ()
    max_attempts: int = 3
    tasks: tuple[TaskSpec, ...] = field(default=())

    def to_wire(self) -> dict[str, Any]:
        """The job as sent to the controller (tasks are re-derived there)."""
        wire = {
            "id": self.id, "frame_start": self.frame_start, "frame_end": self.frame_end,
            "chunk_size": self.chunk_size, "argv": list(self.argv), "output": self.output,
            "estimate_s": self.estimate_s, "vram_gb": self.vram_gb, "gpus": self.gpus,
            "deadline_utc": self.deadline_utc, "priority": self.priority,
            "after": list(self.after), "max_attempts": self.max_attempts,
        }
        return {k: v for k, v in wire.items() if v is not None}


def chunk_tasks(job_id: str, frame_start: int, frame_end: int,
                chunk_size: int) -> tuple[TaskSpec, ...]:
    """The job's frame range cut into chunks of ``chunk_size`` frames (the last may be short)."""
    out = []
    for start in range(frame_start, frame_end + 1, chunk_size):
        end = min(start + chunk_size - 1, frame_end)
        out.append(TaskSpec(f"{job_id}:{start}-{end}", start, end))
    return tuple(out)


def job_from_wire(data: dict[str, Any]) -> JobSpec:
    """Rebuild a job the controller received (validated again: the wire is input too)."""
    return parse_job(data, "<wire>", "job", base_dir=None, now_utc=time.time())


def load_job_file(path: Path, now_utc: float | None = None) -> list[JobSpec]:
    """Read and validate every ``[[jobs]]`` entry of a TOML job file."""
    file = str(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise JobFileError(file, "", str(path), f"a readable file ({exc.strerror})") from exc
    except tomllib.TOMLDecodeError as exc:
        raise JobFileError(file, "", str(exc), "valid TOML") from exc
    unknown = sorted(set(data) - {"jobs"})
    if unknown:
        raise JobFileError(file, unknown[0], data[unknown[0]], "only [[jobs]] tables at top level")
    raw_jobs = data.get("jobs")
    if not isinstance(raw_jobs, list) or not raw_jobs:
        raise JobFileError(file, "jobs", raw_jobs, "at least one [[jobs]] table")
    now = time.time() if now_utc is None else now_utc
    jobs = [parse_job(raw, file, f"jobs[{i}]", path.parent.resolve(), now)
            for i, raw in enumerate(raw_jobs)]
    seen: dict[str, int] = {}
    for i, job in enumerate(jobs):
        if job.id in seen:
            raise JobFileError(file, f"jobs[{i}].id", job.id,
                               f"a unique job id (jobs[{seen[job.id]}] has it too)")
        seen[job.id] = i
    _check_cycles(file, jobs)
    return jobs


def parse_job(raw: Any, file: str, path: str, base_dir: Path | None, now_utc: float) -> JobSpec:
    """Validate one job table."""
    if not isinstance(raw, dict):
        raise JobFileError(file, path, raw, "a table")
    for key in raw:
        if key not in JOB_KEYS:
            raise JobFileError(file, f"{path}.{key}", raw[key],
                               f"one of the known keys {sorted(JOB_KEYS)}")
    job_id = _req(raw, file, path, "id")
    if not isinstance(job_id, str) or not _ID.match(job_id):
        raise JobFileError(file, f"{path}.id", job_id,
                           "1-64 letters, digits, '-', '_' or '.', starting with a letter or digit")
    start = _int(raw, file, path, "frame_start", None, minimum=0)
    end = _int(raw, file, path, "frame_end", None, minimum=0)
    if end < start:
        raise JobFileError(file, f"{path}.frame_end", end, f"a frame >= frame_start ({start})")
    chunk = _int(raw, file, path, "chunk_size", 1, minimum=1)
    argv = _req(raw, file, path, "argv")
    if not (isinstance(argv, list) and argv and all(isinstance(a, str) for a in argv)):
        raise JobFileError(file, f"{path}.argv", argv, "a non-empty list of strings")
    for i, arg in enumerate(argv):
        for token in re.findall(r"\{[a-z_]+\}", arg):
            if token not in TOKENS:
                raise JobFileError(file, f"{path}.argv[{i}]", arg,
                                   f"only the tokens {', '.join(TOKENS)}")
    output = raw.get("output")
    if output is not None:
        if not isinstance(output, str) or not output.strip():
            raise JobFileError(file, f"{path}.output", output, "a path pattern string")
        if "#" not in output and end > start:
            raise JobFileError(file, f"{path}.output", output,
                               "a pattern with a run of '#' for the frame number "
                               "(the job has more than one frame)")
        if base_dir is not None and not Path(output).is_absolute():
            output = str(base_dir / output)
        if not any("{output}" in a for a in argv):
            raise JobFileError(file, f"{path}.argv", argv,
                               "the {output} token somewhere (the job declares an output)")
    estimate = _num(raw, file, path, "estimate_s", 60.0, minimum=0.0)
    vram = _num(raw, file, path, "vram_gb", 0.0, minimum=0.0)
    gpus = _int(raw, file, path, "gpus", 1, minimum=1)
    priority = _num(raw, file, path, "priority", 1.0, minimum=0.0)
    attempts = _int(raw, file, path, "max_attempts", 3, minimum=1)
    deadline: float | None = None
    if "deadline_utc" in raw and "deadline_in_s" in raw:
        raise JobFileError(file, f"{path}.deadline_in_s", raw["deadline_in_s"],
                           "either deadline_utc or deadline_in_s, not both")
    if "deadline_utc" in raw:
        value = raw["deadline_utc"]
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            deadline = float(value)  # the wire form: a POSIX timestamp
        elif isinstance(value, datetime) and value.tzinfo is not None:
            deadline = value.timestamp()
        else:
            raise JobFileError(file, f"{path}.deadline_utc", value,
                               "a TOML date-time with an offset, e.g. 2026-03-01T18:00:00+08:00")
    elif "deadline_in_s" in raw:
        deadline = now_utc + _num(raw, file, path, "deadline_in_s", 0.0, minimum=0.0)
    after = raw.get("after", [])
    if not (isinstance(after, list) and all(isinstance(a, str) for a in after)):
        raise JobFileError(file, f"{path}.after", after, "a list of job ids")
    if job_id in after:
        raise JobFileError(file, f"{path}.after", after,
                           "other jobs (a job cannot wait for itself)")
    return JobSpec(
        id=job_id, frame_start=start, frame_end=end, chunk_size=chunk, argv=tuple(argv),
        output=output, estimate_s=estimate, vram_gb=vram, gpus=gpus, deadline_utc=deadline,
        priority=priority, after=tuple(after), max_attempts=attempts,
        tasks=chunk_tasks(job_id, start, end, chunk),
    )


def _check_cycles(file: str, jobs: list[JobSpec]) -> None:
    by_id = {j.id: (i, j) for i, j in enumerate(jobs)}
    state: dict[str, int] = {}

    def visit(job_id: str, trail: list[str]) -> None:
        if state.get(job_id) == 2 or job_id not in by_id:
            return
        if state.get(job_id) == 1:
            cycle = [*trail[trail.index(job_id):], job_id]
            i, _ = by_id[trail[-1]]
            raise JobFileError(file, f"jobs[{i}].after", by_id[trail[-1]][1].after,
                               "no dependency cycle, found " + " -> ".join(cycle))
        state[job_id] = 1
        for dep in by_id[job_id][1].after:
            visit(dep, [*trail, job_id])
        state[job_id] = 2

    for job in jobs:
        visit(job.id, [])


def _req(raw: dict[str, Any], file: str, path: str, key: str) -> Any:
    if key not in raw:
        raise JobFileError(file, f"{path}.{key}", None, "a value (the key is missing)")
    return raw[key]


def _int(raw: dict[str, Any], file: str, path: str, key: str, default: int | None,
         minimum: int) -> int:
    value = _req(raw, file, path, key) if default is None else raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise JobFileError(file, f"{path}.{key}", value, f"an integer >= {minimum}")
    return value


def _num(raw: dict[str, Any], file: str, path: str, key: str, default: float,
         minimum: float) -> float:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < minimum \
            or value != value:
        raise JobFileError(file, f"{path}.{key}", value, f"a number >= {minimum:g}")
    return float(value)
