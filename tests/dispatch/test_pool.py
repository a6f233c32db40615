"""The compute-pool path through the PoolBackend interface (LocalPool stands in for Slurm)."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from scheduler.dispatch.client import FarmClient
from scheduler.dispatch.config import ControllerConfig, PoolConfig
from scheduler.dispatch.controller import Controller
from scheduler.dispatch.pool import LocalPool, PoolJobState, cost_cny
from tests.dispatch.conftest import ROOT, frames_exactly_once, free_port, work_job

PY = sys.executable


def wait_for(pred: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.05)
    raise AssertionError("timed out")


@pytest.fixture
def pool() -> Iterator[LocalPool]:
    p = LocalPool(max_running=2)
    yield p
    p.close()


def state(pool: LocalPool, job_id: str) -> PoolJobState:
    return pool.poll([job_id])[job_id]


def test_dependency_waits_for_afterok_and_cancel(pool: LocalPool, tmp_path: Path) -> None:
    a = pool.submit("a", [PY, "-c", "import time; time.sleep(0.4)"], gpus=1, after=[],
                    deadline_utc=None, workdir=tmp_path)
    b = pool.submit("b", [PY, "-c", "pass"], gpus=1, after=[a], deadline_utc=None,
                    workdir=tmp_path)
    bad = pool.submit("bad", [PY, "-c", "raise SystemExit(3)"], gpus=1, after=[],
                      deadline_utc=None, workdir=tmp_path)
    c = pool.submit("c", [PY, "-c", "pass"], gpus=1, after=[bad], deadline_utc=None,
                    workdir=tmp_path)
    assert state(pool, b).state == "PENDING"
    wait_for(lambda: state(pool, b).state == "COMPLETED")
    assert state(pool, a).state == "COMPLETED" and state(pool, a).elapsed_s >= 0.3
    assert state(pool, bad).state == "FAILED" and state(pool, bad).exit_code == 3
    wait_for(lambda: state(pool, c).state == "CANCELLED")
    long = pool.submit("long", [PY, "-c", "import time; time.sleep(30)"], gpus=1, after=[],
                       deadline_utc=None, workdir=tmp_path)
    wait_for(lambda: state(pool, long).state == "RUNNING")
    pool.cancel(long)
    assert state(pool, long).state == "CANCELLED"
    past = datetime.now(UTC) - timedelta(seconds=1)
    late = pool.submit("late", [PY, "-c", "pass"], gpus=1, after=[long], deadline_utc=past,
                       workdir=tmp_path)
    assert state(pool, late).state == "CANCELLED"


def test_cost_is_run_time_times_price() -> None:
    assert cost_cny(1800, 2, 30.0) == pytest.approx(30.0)
    assert cost_cny(-5, 1, 30.0) == 0.0


@contextmanager
def pool_controller(tmp_path: Path, price: float, max_slots: int = 1) -> Iterator[FarmClient]:
    """A controller with one local pool (``price`` CNY per GPU-hour), and a client to it."""
    cfg = ControllerConfig(
        bind=f"tcp://127.0.0.1:{free_port()}", plan_time_limit_s=0.3, pool_poll_s=0.2,
        replan_min_interval_s=0.2,
        pools=(PoolConfig(id="hpc", backend="local", max_slots=max_slots, vram_gb=80,
                          speed=2.0, cost_per_gpu_hour_cny=price, workdir=str(ROOT)),))
    ctl = Controller(tmp_path / "farm.sqlite", cfg)
    thread = threading.Thread(target=ctl.serve, name="controller-under-test")
    thread.start()
    try:
        with FarmClient(cfg.bind, timeout_s=5) as client:
            yield client
    finally:
        ctl.stop()
        thread.join(timeout=10)


def test_controller_runs_tasks_on_the_pool_and_accounts_cost(tmp_path: Path) -> None:
    price = 36.0
    out = tmp_path / "out"
    job = work_job("pooled", out, 1, 4, chunk=2, sleep=0.3, vram_gb=64)
    with pool_controller(tmp_path, price, max_slots=2) as client:
        client.request("submit", jobs=[job.to_wire()])

        def done() -> bool:
            return client.request("status")["jobs"][0]["state"] == "done"
        wait_for(done, 30)
        cost = client.request("cost")
        events = client.request("events", limit=100)["events"]
    frames_exactly_once(out, [job])
    assert sum(e["kind"] == "pool_submitted" for e in events) == 2
    assert cost["spent_cny"] > 0
    # each chunk ran at least its 0.3 s sleep, billed per second at 36 CNY/GPU-hour
    assert cost["spent_cny"] >= 2 * cost_cny(0.3, 1, price)
    assert cost["spent_cny"] < 2 * cost_cny(10, 1, price)
    assert cost["forecast_cny"] == pytest.approx(cost["spent_cny"])


class _LyingPool:
    """A batch system that reports every job COMPLETED without running anything."""

    def __init__(self) -> None:
        self.jobs: list[str] = []

    def submit(self, name: str, argv: list[str], **_: object) -> str:
        self.jobs.append(name)
        return str(len(self.jobs))

    def poll(self, job_ids: list[str]) -> dict[str, PoolJobState]:
        return {j: PoolJobState(j, "COMPLETED", 1.0, 0) for j in job_ids}

    def cancel(self, job_id: str) -> None:
        pass


def test_pool_job_completed_without_outputs_fails(tmp_path: Path) -> None:
    cfg = ControllerConfig(
        bind=f"tcp://127.0.0.1:{free_port()}", plan_time_limit_s=0.3, pool_poll_s=0.2,
        replan_min_interval_s=0.2,
        pools=(PoolConfig(id="hpc", backend="slurm", max_slots=2, vram_gb=80, speed=2.0,
                          workdir=str(ROOT)),))
    ctl = Controller(tmp_path / "farm.sqlite", cfg, backends={"hpc": _LyingPool()})
    thread = threading.Thread(target=ctl.serve, name="controller-under-test")
    thread.start()
    job = work_job("unwritten", tmp_path / "out", 1, 1, vram_gb=64, max_attempts=1)
    try:
        with FarmClient(cfg.bind, timeout_s=5) as client:
            client.request("submit", jobs=[job.to_wire()])

            def failed() -> bool:
                return client.request("status")["jobs"][0]["counts"].get("FAILED", 0) == 1
            wait_for(failed, 30)
            status = client.request("status")["jobs"][0]
    finally:
        ctl.stop()
        thread.join(timeout=10)
    assert status["frames_done"] == 0, status
    output = str(tmp_path / "out" / "unwritten" / "unwritten.0001.png")
    assert any(f"pool job 1 reported success but declared output {output} is missing or "
               "empty" in r for r in status["reasons"]), status["reasons"]


def test_cancelling_a_job_bills_the_time_its_pool_attempts_ran(tmp_path: Path) -> None:
    """A cancelled pool job ran for a while: that time is money spent, not 0."""
    job = work_job("long", tmp_path / "out", 1, 1, chunk=1, sleep=30, vram_gb=64)
    with pool_controller(tmp_path, 3600.0) as client:  # 1 CNY per GPU-second
        client.request("submit", jobs=[job.to_wire()])
        wait_for(lambda: client.request("cost")["spent_cny"] >= 1.0, 30)  # ran >= 1 s
        client.request("cancel_job", job="long")

        def pool_idle() -> bool:
            return not any(n["busy"] for n in client.request("nodes")["nodes"] if n.get("pool"))
        wait_for(pool_idle, 10)
        cost = client.request("cost")
        events = client.request("events", limit=100)["events"]
    assert any(e["kind"] == "job_cancelled" for e in events)
    assert 1.0 <= cost["spent_cny"] < 30.0  # billed for the time it ran, then stopped
    assert cost["forecast_cny"] == pytest.approx(cost["spent_cny"])


class _FailsFirstPool:
    """A batch system whose first job fails (exit 3); later ones run for real (LocalPool)."""

    def __init__(self) -> None:
        self.local = LocalPool(max_running=2)
        self.failed: str | None = None
        self.submitted = 0

    def submit(self, name: str, argv: list[str], **kw: object) -> str:
        self.submitted += 1
        if self.failed is None:
            self.failed = f"fail-{name}"
            return self.failed
        return self.local.submit(name, argv, **kw)  # type: ignore[arg-type]

    def poll(self, job_ids: list[str]) -> dict[str, PoolJobState]:
        out = {j: PoolJobState(j, "FAILED", 0.1, 3) for j in job_ids if j == self.failed}
        rest = [j for j in job_ids if j != self.failed]
        if rest:
            out.update(self.local.poll(rest))
        return out

    def cancel(self, job_id: str) -> None:
        if job_id != self.failed:
            self.local.cancel(job_id)

    def close(self) -> None:
        self.local.close()


def test_a_pool_task_that_fails_is_planned_again_and_retried(tmp_path: Path) -> None:
    """A pool runs only planned tasks: a failed attempt's requeued task must be re-planned,
    or (with no agents) it would sit QUEUED forever."""
    backend = _FailsFirstPool()
    cfg = ControllerConfig(
        bind=f"tcp://127.0.0.1:{free_port()}", plan_time_limit_s=0.3, pool_poll_s=0.2,
        replan_min_interval_s=0.2,
        pools=(PoolConfig(id="hpc", backend="slurm", max_slots=2, vram_gb=80, speed=2.0,
                          workdir=str(ROOT)),))
    ctl = Controller(tmp_path / "farm.sqlite", cfg, backends={"hpc": backend})
    thread = threading.Thread(target=ctl.serve, name="controller-under-test")
    thread.start()
    out = tmp_path / "out"
    job = work_job("retry", out, 1, 1, vram_gb=64, max_attempts=3)
    try:
        with FarmClient(cfg.bind, timeout_s=5) as client:
            client.request("submit", jobs=[job.to_wire()])

            def done() -> bool:
                return client.request("status")["jobs"][0]["state"] == "done"
            wait_for(done, 30)
    finally:
        ctl.stop()
        thread.join(timeout=10)
        backend.close()
    assert backend.submitted == 2  # the failed attempt, then the re-planned retry
    frames_exactly_once(out, [job])
