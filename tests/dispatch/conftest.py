from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from scheduler.dispatch.client import FarmClient
from scheduler.dispatch.jobfile import JobSpec, chunk_tasks
from tests.security.stage_procs import closed_after

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def work_job(job_id: str, out: Path, first: int, last: int, chunk: int = 1, sleep: float = 0.0,
             fail_on: str = "", max_attempts: int = 3, after: tuple[str, ...] = (),
             vram_gb: float = 0.0, estimate_s: float = 1.0) -> JobSpec:
    argv = ["{python}", "-m", "tests.dispatch.work", "--frame", "{frame_start}",
            "--to-frame", "{frame_end}", "--out", "{output}", "--sleep", str(sleep)]
    if fail_on:
        argv += ["--fail-on", fail_on]
    return JobSpec(id=job_id, frame_start=first, frame_end=last, chunk_size=chunk,
                   argv=tuple(argv), output=str(out / job_id / f"{job_id}.####.png"),
                   estimate_s=estimate_s, vram_gb=vram_gb, max_attempts=max_attempts,
                   after=after, tasks=chunk_tasks(job_id, first, last, chunk))


class Farm:
    """Processes of one test farm; everything started is stopped at teardown."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.db = tmp / "farm.sqlite"
        self.address = f"tcp://127.0.0.1:{free_port()}"
        self.procs: list[subprocess.Popen[str]] = []
        self.controller: subprocess.Popen[str] | None = None
        self.agents: dict[str, subprocess.Popen[str]] = {}

    def spawn(self, *args: str) -> subprocess.Popen[str]:
        proc = subprocess.Popen([sys.executable, "-m", "tests.dispatch.proc", *args], cwd=ROOT,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.procs.append(proc)
        return proc

    def start_controller(self, *extra: str) -> subprocess.Popen[str]:
        self.controller = self.spawn("controller", "--db", str(self.db), "--bind",
                                     self.address, *extra)
        assert self.controller.stdout is not None
        assert self.controller.stdout.readline().strip() == "ready"
        return self.controller

    def start_agent(self, node_id: str, *extra: str, slots: int = 1) -> subprocess.Popen[str]:
        proc = self.spawn("agent", "--controller", self.address, "--node-id", node_id,
                          "--slots", str(slots), *extra)
        self.agents[node_id] = proc
        return proc

    def client(self, **kw: Any) -> FarmClient:
        return FarmClient(self.address, timeout_s=5.0, **kw)

    def request(self, kind: str, **fields: Any) -> dict[str, Any]:
        with self.client() as c:
            return c.request(kind, **fields)

    def wait(self, predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.1)
        raise AssertionError(f"timed out after {timeout_s} s waiting for {what}; "
                             f"status: {self.request('status')}")

    def wait_nodes(self, n: int, timeout_s: float = 15) -> None:
        self.wait(lambda: len(self.request("nodes")["nodes"]) >= n, timeout_s, f"{n} nodes")

    def jobs_done(self) -> bool:
        jobs = self.request("status")["jobs"]
        return bool(jobs) and all(j["state"] == "done" for j in jobs)

    def kill(self, proc: subprocess.Popen[str]) -> None:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()


farm = closed_after(Farm, "farm")


def frames_exactly_once(out: Path, jobs: list[JobSpec]) -> None:
    """Every declared frame exists once, non-empty, and no staged or stray file is left."""
    from scheduler.dispatch.runner import declared_outputs

    expected = {Path(f) for j in jobs for t in j.tasks
                for f in declared_outputs(j.output, t.frame_start, t.frame_end)}
    found = {p for p in out.rglob("*") if p.is_file()}
    missing = expected - found
    extra = found - expected
    assert not missing, f"missing frames: {sorted(missing)[:5]}"
    assert not extra, f"stray files (staged copies?): {sorted(extra)[:5]}"
    assert all(p.stat().st_size > 0 for p in expected)
