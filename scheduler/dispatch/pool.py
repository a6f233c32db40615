"""Compute pools: the backend interface, and an in-process backend for tests and demos.

A pool is rented compute reached through a batch system (Slurm in production:
``scheduler/dispatch/slurm.py``). The controller only ever uses :class:`PoolBackend`, so the
batch system can be swapped for :class:`LocalPool`, which runs the same argv as local
processes and models pending, dependencies, deadlines, capacity and cancellation.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import signal
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

POOL_STATES = ("PENDING", "RUNNING", "COMPLETED", "FAILED", "CANCELLED")
TERMINAL = frozenset({"COMPLETED", "FAILED", "CANCELLED"})


@dataclass(frozen=True)
class PoolJobState:
    """Where one pool job stands.

    ``elapsed_s`` is run time so far: 0 while pending, and never time the job spent suspended
    (Slurm's SUSPENDED), since that is what :func:`cost_cny` bills.
    """

    job_id: str
    state: str
    elapsed_s: float
    exit_code: int | None = None
    reason: str = ""
    """Why a job failed without running (e.g. its argv cannot be executed), if known."""


class PoolBackend(Protocol):
    """What the controller needs from a batch system."""

    def submit(
        self,
        name: str,
        argv: list[str],
        *,
        gpus: int,
        after: list[str],
        deadline_utc: datetime | None,
        workdir: Path,
        array: int | None = None,
    ) -> str:
        """Queue ``argv``; it starts once every job in ``after`` completed OK. Returns its id."""
        ...

    def poll(self, job_ids: list[str]) -> dict[str, PoolJobState]:
        """States of the given jobs (unknown ids may be left out)."""
        ...

    def cancel(self, job_id: str) -> None:
        """Cancel a pending or running job (no error when it already ended)."""
        ...


def cost_cny(elapsed_s: float, gpus: int, cost_per_gpu_hour_cny: float) -> float:
    """Rent of ``gpus`` GPUs for ``elapsed_s`` seconds, billed by the second.

    Args:
        elapsed_s: run time as :class:`PoolJobState` reports it (suspended time left out).
        gpus: GPUs the job holds.
        cost_per_gpu_hour_cny: the pool's price.

    Returns:
        The cost in CNY; 0 for a negative run time.
    """
    return max(elapsed_s, 0.0) / 3600.0 * gpus * cost_per_gpu_hour_cny


def open_backend(kind: str, options: Mapping[str, Any]) -> PoolBackend:
    """The backend named in a farm config's ``[[pools]]`` entry (``local`` or ``slurm``)."""
    if kind == "local":
        return LocalPool(max_running=int(options.get("max_slots", 4)))
    if kind == "slurm":
        module = importlib.import_module("scheduler.dispatch.slurm")
        backend: PoolBackend = module.SlurmPool(**dict(options))
        return backend
    raise ValueError(f"unknown pool backend {kind!r} (expected local or slurm)")


@dataclass
class _LocalJob:
    job_id: str
    argv: list[str]
    workdir: Path
    after: list[str]
    deadline_utc: datetime | None
    state: str = "PENDING"
    proc: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    ended: float = 0.0
    exit_code: int | None = None
    env: dict[str, str] = field(default_factory=dict)
    reason: str = ""


class LocalPool:
    """A pool backend that runs jobs as local processes (tests, demos, a laptop).

    Semantics follow Slurm where the controller can tell: a job waits while any ``after``
    job has not completed, is cancelled when one of them failed (Slurm's
    DependencyNeverSatisfied with ``--kill-on-invalid-dep``) or when its deadline passes
    before it starts, and at most ``max_running`` run at once.
    """

    def __init__(self, max_running: int = 4) -> None:
        self.max_running = max_running
        self._jobs: dict[str, _LocalJob] = {}
        self._next = 1000

    def submit(
        self,
        name: str,
        argv: list[str],
        *,
        gpus: int,
        after: list[str],
        deadline_utc: datetime | None,
        workdir: Path,
        array: int | None = None,
    ) -> str:
        """Queue a job (``array`` is accepted and ignored: one process per submission)."""
        if not argv:
            raise ValueError(f"{name}: empty argv")
        self._next += 1
        job_id = str(self._next)
        env = {"SLURM_JOB_ID": job_id, "SLURM_JOB_NAME": name, "CUDA_VISIBLE_DEVICES": ""}
        self._jobs[job_id] = _LocalJob(job_id, list(argv), workdir, list(after), deadline_utc,
                                       env=env)
        self._advance()
        return job_id

    def poll(self, job_ids: list[str]) -> dict[str, PoolJobState]:
        """Advance the queue and report."""
        self._advance()
        now = time.monotonic()
        out = {}
        for job_id in job_ids:
            job = self._jobs.get(job_id)
            if job is None:
                continue
            if job.state == "PENDING":
                elapsed = 0.0
            elif job.state == "RUNNING":
                elapsed = now - job.started
            else:
                elapsed = max(job.ended - job.started, 0.0) if job.started else 0.0
            out[job_id] = PoolJobState(job_id, job.state, elapsed, job.exit_code, job.reason)
        return out

    def cancel(self, job_id: str) -> None:
        """Kill a running job or drop a pending one."""
        job = self._jobs.get(job_id)
        if job is None or job.state in TERMINAL:
            return
        if job.proc is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(job.proc.pid, signal.SIGKILL)
            job.proc.kill()
            job.proc.wait()
            job.ended = time.monotonic()
        job.state = "CANCELLED"

    def close(self) -> None:
        """Cancel everything still queued or running."""
        for job_id in list(self._jobs):
            self.cancel(job_id)

    def _advance(self) -> None:
        now = time.monotonic()
        for job in self._jobs.values():
            if job.state == "RUNNING" and job.proc is not None:
                code = job.proc.poll()
                if code is not None:
                    job.exit_code, job.ended = code, now
                    job.state = "COMPLETED" if code == 0 else "FAILED"
        running = sum(1 for j in self._jobs.values() if j.state == "RUNNING")
        for job in self._jobs.values():
            if job.state != "PENDING":
                continue
            deps = [self._jobs.get(d) for d in job.after]
            if any(d is None or d.state in ("FAILED", "CANCELLED") for d in deps):
                job.state = "CANCELLED"
                continue
            if job.deadline_utc is not None and datetime.now(UTC) > job.deadline_utc:
                job.state = "CANCELLED"
                continue
            if running >= self.max_running or any(d.state != "COMPLETED" for d in deps if d):
                continue
            try:
                job.workdir.mkdir(parents=True, exist_ok=True)
                job.proc = subprocess.Popen(
                    job.argv, cwd=job.workdir, env={**os.environ, **job.env},
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                    start_new_session=True,
                )
            except (OSError, ValueError, subprocess.SubprocessError) as exc:
                # a job that cannot start fails alone; the queue keeps serving the rest
                job.state, job.started, job.ended = "FAILED", now, now
                job.reason = f"cannot start {job.argv[0]!r}: {exc}"
                continue
            job.started, job.state = now, "RUNNING"
            running += 1
