"""Run one task attempt: expand the argv, stage outputs under a temp name, check, rename.

A task's command writes its frames into a staging folder private to the attempt
(``<output dir>/.stagectl-tmp/<task>.<attempt>/``). Only after the command exits 0 and every
declared output is there and non-empty are the files moved into place with ``os.replace``
(atomic on one filesystem), so a frame exists exactly once whatever was killed when: a
killed attempt leaves only its staging folder, which the next attempt of the task removes.

Agents call :func:`run_attempt` in-process; compute-pool jobs run this module
(``python -m scheduler.dispatch.runner``) so they follow the same rules.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from scheduler.dispatch.render import frame_path

STAGING = ".stagectl-tmp"
TOKENS = ("{frame_start}", "{frame_end}", "{output}", "{python}")
EXIT_OUTPUTS = 3
"""Exit code of the runner module when the command succeeded but an output is missing."""


@dataclass(frozen=True)
class TaskRun:
    """What to run: an argv template with tokens, the frame range and the output pattern."""

    task_id: str
    attempt: int
    argv: tuple[str, ...]
    frame_start: int
    frame_end: int
    output: str | None
    """Path pattern; a run of ``#`` is the frame number. None: the task declares no output."""


@dataclass(frozen=True)
class Result:
    """How an attempt ended."""

    ok: bool
    exit_code: int | None
    error: str
    outputs: tuple[str, ...] = ()


def declared_outputs(output: str | None, frame_start: int, frame_end: int) -> list[str]:
    """Final paths the task must produce (one per frame when the pattern has ``#``)."""
    if output is None:
        return []
    if "#" not in output:
        return [output]
    return [frame_path(output, f) for f in range(frame_start, frame_end + 1)]


def staging_dir(run: TaskRun) -> Path | None:
    """The attempt's private folder next to its outputs."""
    if run.output is None:
        return None
    return Path(run.output).parent / STAGING / f"{_safe(run.task_id)}.{run.attempt}"


def expand_argv(run: TaskRun, staged_output: str | None) -> list[str]:
    """The argv with its tokens replaced (never passed through a shell)."""
    values = {
        "{frame_start}": str(run.frame_start),
        "{frame_end}": str(run.frame_end),
        "{output}": staged_output or "",
        "{python}": sys.executable,
    }
    out = []
    for arg in run.argv:
        for token, value in values.items():
            arg = arg.replace(token, value)
        out.append(arg)
    return out


def clean_stale(run: TaskRun) -> None:
    """Remove staging folders that earlier attempts of this task left behind."""
    if run.output is None:
        return
    root = Path(run.output).parent / STAGING
    if not root.is_dir():
        return
    mine = f"{_safe(run.task_id)}.{run.attempt}"
    for folder in root.glob(f"{_safe(run.task_id)}.*"):
        if folder.name != mine:
            shutil.rmtree(folder, ignore_errors=True)


def start(
    run: TaskRun, env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[str], Path | None]:
    """Prepare the staging folder and start the command (stdout and stderr merged, text)."""
    clean_stale(run)
    stage = staging_dir(run)
    staged_output = None
    if stage is not None and run.output is not None:
        stage.mkdir(parents=True, exist_ok=True)
        staged_output = str(stage / Path(run.output).name)
    argv = expand_argv(run, staged_output)
    proc = subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        bufsize=1,
        env={**os.environ, **(env or {})},
        preexec_fn=_die_with_parent,
        start_new_session=True,  # its own process group: a stop kills everything it started
    )
    return proc, stage


def finish(run: TaskRun, exit_code: int, stage: Path | None) -> Result:
    """Check the staged outputs of a finished command and move them into place."""
    if exit_code != 0:
        _rmtree(stage)
        return Result(False, exit_code, f"command exited with {exit_code}")
    finals = declared_outputs(run.output, run.frame_start, run.frame_end)
    staged = [stage / Path(p).name for p in finals] if stage is not None else []
    for final, tmp in zip(finals, staged, strict=True):
        if not tmp.is_file():
            _rmtree(stage)
            return Result(False, exit_code, f"declared output {final} was not written")
        if tmp.stat().st_size == 0:
            _rmtree(stage)
            return Result(False, exit_code, f"declared output {final} is empty")
    for final, tmp in zip(finals, staged, strict=True):
        os.replace(tmp, final)
    _rmtree(stage)
    return Result(True, exit_code, "", tuple(finals))


def run_attempt(
    run: TaskRun, env: dict[str, str] | None = None, on_line: Callable[[str], None] | None = None
) -> Result:
    """Run an attempt to the end, passing each output line to ``on_line``."""
    try:
        proc, stage = start(run, env)
    except (OSError, ValueError, subprocess.SubprocessError) as exc:
        return Result(False, None, f"cannot start {run.argv[0]!r}: {exc}")
    assert proc.stdout is not None
    for line in proc.stdout:
        if on_line is not None:
            on_line(line.rstrip("\n"))
    proc.stdout.close()
    return finish(run, proc.wait(), stage)


def _rmtree(stage: Path | None) -> None:
    if stage is None:
        return
    shutil.rmtree(stage, ignore_errors=True)
    with contextlib.suppress(OSError):
        stage.parent.rmdir()  # only when no other attempt is staging there


def _safe(task_id: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in task_id)


def _die_with_parent() -> None:
    """Linux: the command gets SIGKILL when its agent dies, so no orphan keeps writing."""
    if sys.platform.startswith("linux"):
        import ctypes

        with contextlib.suppress(Exception):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m scheduler.dispatch.runner --task T --attempt N ... -- ARGV...`` (pool jobs)."""
    parser = argparse.ArgumentParser(description="Run one farm task attempt with staged outputs.")
    parser.add_argument("--task", required=True)
    parser.add_argument("--attempt", type=int, required=True)
    parser.add_argument("--frame-start", type=int, required=True)
    parser.add_argument("--frame-end", type=int, required=True)
    parser.add_argument("--output", default=None)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command after --")
    run = TaskRun(args.task, args.attempt, tuple(command), args.frame_start, args.frame_end,
                  args.output)
    result = run_attempt(run, on_line=lambda line: print(line, flush=True))
    if not result.ok:
        print(f"stagectl-runner: {result.error}", file=sys.stderr, flush=True)
        return result.exit_code if result.exit_code else EXIT_OUTPUTS
    return 0


if __name__ == "__main__":
    sys.exit(main())
