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
expected, so a wrangler can fix the file without reading the code. The controller validates
every job it receives again (the wire is input too, docs/decisions/0055): values are bounded,
argv may not hold a NUL byte, and outputs must stay inside the output root.
"""

from __future__ import annotations

import math
import re
import time
import tomllib
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path, PurePath
from typing import Any

from scheduler.dispatch.runner import TOKENS

JOB_KEYS = {
    "id", "frame_start", "frame_end", "chunk_size", "argv", "output", "estimate_s", "vram_gb",
    "gpus", "deadline_utc", "deadline_in_s", "priority", "after", "max_attempts",
}
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
MAX_TASKS_PER_JOB = 100_000
MAX_FRAME = 10**9
MAX_ARGS = 256
MAX_ARG_CHARS = 4096
MAX_AFTER = 100


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


def job_from_wire(data: dict[str, Any], output_root: Path | None = None) -> JobSpec:
    """Rebuild a job the controller received (validated again: the wire is input too).

    On the wire ``output`` is an absolute path; with ``output_root`` it must lie inside it.
    """
    return parse_job(data, "<wire>", "job", base_dir=None, now_utc=time.time(),
                     output_root=output_root)


def unchecked_job(data: dict[str, Any]) -> JobSpec:
    """A stored job as it was, without today's checks.

    The controller keeps such a job cancelled so that its history stays readable.
    """
    job_id = str(data["id"])
    start, end = int(data["frame_start"]), int(data["frame_end"])
    chunk = int(data["chunk_size"])
    return JobSpec(
        id=job_id, frame_start=start, frame_end=end, chunk_size=chunk,
        argv=tuple(str(a) for a in data.get("argv", ())), output=data.get("output"),
        estimate_s=float(data.get("estimate_s", 60.0)), vram_gb=float(data.get("vram_gb", 0)),
        gpus=int(data.get("gpus", 1)), deadline_utc=data.get("deadline_utc"),
        priority=float(data.get("priority", 1.0)), after=tuple(data.get("after", ())),
        max_attempts=int(data.get("max_attempts", 3)),
        tasks=chunk_tasks(job_id, start, end, chunk))


def check_output(file: str, path: str, output: str, output_root: Path | None,
                 base_dir: Path | None) -> str:
    """The output pattern as an absolute path inside ``output_root``, or a JobFileError.

    Relative patterns are taken from ``base_dir`` (None: the pattern must be absolute, as it
    is on the wire). No ``..`` component is accepted, and the deepest existing folder of the
    pattern, with its symlinks resolved, must be inside the root.
    """
    where = f"{path}.output"
    if "\x00" in output or len(output) > MAX_ARG_CHARS:
        raise JobFileError(file, where, output,
                           f"a path of at most {MAX_ARG_CHARS} characters without NUL bytes")
    if ".." in PurePath(output).parts:
        raise JobFileError(file, where, output,
                           "a path without '..' components (outputs stay inside the output "
                           f"root {output_root or base_dir})")
    pattern = Path(output)
    if not pattern.is_absolute():
        if base_dir is None:
            raise JobFileError(file, where, output, "an absolute path")
        pattern = base_dir / pattern
    if output_root is not None:
        root = output_root.resolve()
        folder = pattern.parent.resolve()
        if not folder.is_relative_to(root):
            raise JobFileError(file, where, output,
                               f"a path inside the output root {root} (it resolves to "
                               f"{folder}); write under the root or choose another with "
                               "--output-root / [controller] output_root")
    return str(pattern)


def load_job_file(path: Path, now_utc: float | None = None,
                  output_root: Path | None = None) -> list[JobSpec]:
    """Read and validate every ``[[jobs]]`` entry of a TOML job file.

    Relative outputs are taken from ``output_root`` (default: the job file's folder), and
    every output must stay inside it.
    """
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
    root = (output_root or path.parent).resolve()
    jobs = [parse_job(raw, file, f"jobs[{i}]", root, now, output_root=root)
            for i, raw in enumerate(raw_jobs)]
    seen: dict[str, int] = {}
    for i, job in enumerate(jobs):
        if job.id in seen:
            raise JobFileError(file, f"jobs[{i}].id", job.id,
                               f"a unique job id (jobs[{seen[job.id]}] has it too)")
        seen[job.id] = i
    _check_cycles(file, jobs)
    return jobs


def parse_job(raw: Any, file: str, path: str, base_dir: Path | None, now_utc: float,
              output_root: Path | None = None) -> JobSpec:
    """Validate one job table (relative outputs from ``base_dir``, kept in ``output_root``)."""
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
    start = _int(raw, file, path, "frame_start", None, minimum=0, maximum=MAX_FRAME)
    end = _int(raw, file, path, "frame_end", None, minimum=0, maximum=MAX_FRAME)
    if end < start:
        raise JobFileError(file, f"{path}.frame_end", end, f"a frame >= frame_start ({start})")
    chunk = _int(raw, file, path, "chunk_size", 1, minimum=1, maximum=MAX_FRAME)
    if -(-(end - start + 1) // chunk) > MAX_TASKS_PER_JOB:
        raise JobFileError(file, f"{path}.chunk_size", chunk,
                           f"a chunk size that cuts {end - start + 1} frames into at most "
                           f"{MAX_TASKS_PER_JOB} tasks")
    argv = _req(raw, file, path, "argv")
    if not (isinstance(argv, list) and 0 < len(argv) <= MAX_ARGS
            and all(isinstance(a, str) for a in argv)):
        raise JobFileError(file, f"{path}.argv", argv,
                           f"a non-empty list of at most {MAX_ARGS} strings")
    for i, arg in enumerate(argv):
        if "\x00" in arg or len(arg) > MAX_ARG_CHARS:
            raise JobFileError(file, f"{path}.argv[{i}]", arg,
                               f"a string of at most {MAX_ARG_CHARS} characters without NUL "
                               "bytes (a NUL byte cannot be passed to a program)")
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
        output = check_output(file, path, output, output_root, base_dir)
        if not any("{output}" in a for a in argv):
            raise JobFileError(file, f"{path}.argv", argv,
                               "the {output} token somewhere (the job declares an output)")
    estimate = _num(raw, file, path, "estimate_s", 60.0, minimum=0.0, maximum=1e6)
    vram = _num(raw, file, path, "vram_gb", 0.0, minimum=0.0, maximum=4096.0)
    gpus = _int(raw, file, path, "gpus", 1, minimum=1, maximum=64)
    priority = _num(raw, file, path, "priority", 1.0, minimum=0.0, maximum=1e6)
    attempts = _int(raw, file, path, "max_attempts", 3, minimum=1, maximum=100)
    deadline: float | None = None
    if "deadline_utc" in raw and "deadline_in_s" in raw:
        raise JobFileError(file, f"{path}.deadline_in_s", raw["deadline_in_s"],
                           "either deadline_utc or deadline_in_s, not both")
    if "deadline_utc" in raw:
        value = raw["deadline_utc"]
        if isinstance(value, (int, float)) and not isinstance(value, bool) \
                and math.isfinite(value) and 0 <= value <= 1e11:
            deadline = float(value)  # the wire form: a POSIX timestamp
        elif isinstance(value, datetime) and value.tzinfo is not None:
            deadline = value.timestamp()
        else:
            raise JobFileError(file, f"{path}.deadline_utc", value,
                               "a TOML date-time with an offset, e.g. 2026-03-01T18:00:00+08:00")
    elif "deadline_in_s" in raw:
        deadline = now_utc + _num(raw, file, path, "deadline_in_s", 0.0, minimum=0.0,
                                  maximum=1e9)
    after = raw.get("after", [])
    if not (isinstance(after, list) and len(after) <= MAX_AFTER
            and all(isinstance(a, str) and _ID.match(a) for a in after)):
        raise JobFileError(file, f"{path}.after", after,
                           f"a list of at most {MAX_AFTER} job ids")
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
         minimum: int, maximum: int) -> int:
    value = _req(raw, file, path, key) if default is None else raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise JobFileError(file, f"{path}.{key}", value, f"an integer >= {minimum}")
    if value > maximum:
        raise JobFileError(file, f"{path}.{key}", value, f"an integer <= {maximum}")
    return value


def _num(raw: dict[str, Any], file: str, path: str, key: str, default: float,
         minimum: float, maximum: float) -> float:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < minimum \
            or not math.isfinite(value):
        raise JobFileError(file, f"{path}.{key}", value, f"a number >= {minimum:g}")
    if value > maximum:
        raise JobFileError(file, f"{path}.{key}", value, f"a number <= {maximum:g}")
    return float(value)
