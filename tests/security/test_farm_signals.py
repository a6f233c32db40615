"""`farm controller` and `farm agent` exit within 5 s of SIGTERM or SIGINT, whatever their peers do.

Real CLI processes on loopback. Before, an agent stopped only its tasks' first process: a task
that had started a child kept the agent's output pipe open, the agent waited 5 s per task for
it, and the child outlived the agent.
"""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from scheduler.dispatch.client import ControllerUnavailable, FarmClient
from scheduler.dispatch.jobfile import JobSpec, chunk_tasks
from tests.dispatch.conftest import ROOT, free_port
from tests.security.farm_peers import alive, kill_quietly
from tests.security.stage_procs import closed_after

STOP_S = 5.0
# A task that starts a child of its own (both hold the agent's output pipe) and records pids.
TASK = ("import os, subprocess, sys, time; "
        "c = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)']); "
        "p = os.path.join(sys.argv[1], os.environ['STAGECTL_ATTEMPT']); "
        "open(p + '.tmp', 'w').write('%d %d' % (os.getpid(), c.pid)); os.rename(p + '.tmp', p); "
        "print('PROGRESS 0.5', flush=True); time.sleep(120)")


class Stack:
    """CLI processes of one test; every one is killed (and continued first) at the end."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.address = f"tcp://127.0.0.1:{free_port()}"
        self.pids_dir = tmp / "pids"
        self.pids_dir.mkdir()
        self.procs: list[subprocess.Popen[str]] = []

    def cli(self, *args: str) -> subprocess.Popen[str]:
        proc = subprocess.Popen([sys.executable, "-m", "stagectl", "farm", *args], cwd=ROOT,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.procs.append(proc)
        return proc

    def controller(self) -> subprocess.Popen[str]:
        proc = self.cli("controller", "--db", str(self.tmp / "farm.sqlite"), "--bind",
                        self.address, "--heartbeat-s", "0.3", "--node-timeout-s", "1.5")
        self.wait(lambda: self.ping(), 20, "the controller to answer")
        return proc

    def agent(self, node: str, slots: int = 2) -> subprocess.Popen[str]:
        return self.cli("agent", "--controller", self.address, "--node-id", node,
                        "--slots", str(slots), "--register-timeout-s", "30")

    def ping(self) -> bool:
        try:
            with FarmClient(self.address, timeout_s=1) as c:
                c.request("ping")
            return True
        except ControllerUnavailable:
            return False

    def request(self, kind: str, **fields: object) -> dict[str, object]:
        with FarmClient(self.address, timeout_s=5) as c:
            return c.request(kind, **fields)

    def submit(self, job_id: str, frames: int) -> None:
        job = JobSpec(id=job_id, frame_start=1, frame_end=frames, chunk_size=1,
                      argv=("{python}", "-c", TASK, str(self.pids_dir)), output=None,
                      estimate_s=100.0, tasks=chunk_tasks(job_id, 1, frames, 1))
        self.request("submit", jobs=[job.to_wire()])

    def task_pids(self, count: int) -> list[int]:
        self.wait(lambda: len([p for p in self.pids_dir.iterdir()
                               if not p.name.endswith(".tmp")]) >= count, 20,
                  f"{count} tasks to start")
        pids = []
        for f in self.pids_dir.iterdir():
            if not f.name.endswith(".tmp"):
                pids += [int(x) for x in f.read_text().split()]
        return pids

    @staticmethod
    def wait(pred: object, timeout_s: float, what: str) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if pred():  # type: ignore[operator]
                return
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}")

    def close(self) -> None:
        for proc in self.procs:
            kill_quietly(proc.pid, signal.SIGCONT)
            kill_quietly(proc.pid, signal.SIGKILL)
        for proc in self.procs:
            proc.communicate(timeout=10)
        for f in self.pids_dir.iterdir():
            for pid in f.read_text().split():
                kill_quietly(int(pid), signal.SIGKILL)


stack = closed_after(Stack, "stack")


def stop_within(proc: subprocess.Popen[str], sig: int, limit_s: float = STOP_S) -> float:
    t0 = time.monotonic()
    proc.send_signal(sig)
    try:
        proc.wait(timeout=limit_s + 5)
    except subprocess.TimeoutExpired:
        pass
    took = time.monotonic() - t0
    assert proc.returncode is not None and took < limit_s, \
        f"still running {took:.1f} s after {signal.Signals(sig).name}"
    return took


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_agent_stops_its_tasks_process_groups(stack: Stack, sig: int) -> None:
    stack.controller()
    agent = stack.agent("n1", slots=2)
    stack.submit("busy", 2)
    pids = stack.task_pids(2)
    assert len(pids) == 4 and all(alive(p) for p in pids)
    stop_within(agent, sig)
    stack.wait(lambda: not any(alive(p) for p in pids), 2, "the tasks and their children to die")


def test_agent_stops_with_its_controller_gone(stack: Stack) -> None:
    controller = stack.controller()
    agent = stack.agent("n1", slots=1)
    stack.submit("orphaned", 1)
    pids = stack.task_pids(1)
    controller.send_signal(signal.SIGKILL)
    controller.wait(timeout=10)
    time.sleep(1.0)  # the agent keeps heartbeating into the void
    stop_within(agent, signal.SIGTERM)
    stack.wait(lambda: not any(alive(p) for p in pids), 2, "the task and its child to die")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_controller_stops_with_a_hung_agent_and_leaves_the_store_consistent(
        stack: Stack, sig: int) -> None:
    controller = stack.controller()
    hung = stack.agent("hung", slots=1)
    stack.agent("busy", slots=1)
    stack.submit("work", 2)
    stack.task_pids(2)
    hung.send_signal(signal.SIGSTOP)
    with FarmClient(stack.address, timeout_s=5) as c:  # a client mid-conversation too
        c.request("status")
    stop_within(controller, sig)
    db = stack.tmp / "farm.sqlite"
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        rows = conn.execute("SELECT t.id, t.state, a.state FROM tasks t LEFT JOIN attempts a "
                            "ON a.id = t.attempt_id").fetchall()
    finally:
        conn.close()
    for task_id, task_state, attempt_state in rows:
        if task_state == "RUNNING":
            assert attempt_state == "RUNNING", (task_id, task_state, attempt_state)
    stack.controller()  # the same file serves again
    assert len(stack.request("status")["jobs"]) == 1  # type: ignore[arg-type]


def test_controller_stops_while_the_batch_system_hangs(stack: Stack) -> None:
    """A pool's `sbatch` that never answers (slurmctld wedged) must not hold the controller."""
    fake = stack.tmp / "fake-slurm"
    fake.mkdir()
    marker = stack.tmp / "sbatch-started"
    sbatch = fake / "sbatch"
    sbatch.write_text(f"#!/bin/sh\ntouch {marker}\nexec sleep 60\n")
    sbatch.chmod(0o755)
    config = stack.tmp / "farm.toml"
    config.write_text(f'[[pools]]\nid = "hpc"\nbackend = "slurm"\nmax_slots = 2\n'
                      f'options = {{ bin_dir = "{fake}", timeout_s = 60 }}\n')
    controller = stack.cli("controller", "--db", str(stack.tmp / "farm.sqlite"), "--bind",
                           stack.address, "--config", str(config))
    stack.wait(stack.ping, 20, "the controller to answer")
    stack.submit("pooled", 1)
    stack.wait(marker.exists, 20, "the controller to call sbatch")
    stop_within(controller, signal.SIGTERM)
    conn = sqlite3.connect(stack.tmp / "farm.sqlite")
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("SELECT COUNT(*) FROM tasks").fetchone()[0] == 1
    finally:
        conn.close()
