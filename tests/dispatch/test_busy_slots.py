"""Plans start from the farm as it is: slots busy with running attempts free up only later."""

from __future__ import annotations

import time
from pathlib import Path

from scheduler.dispatch.config import ControllerConfig, PoolConfig
from scheduler.dispatch.controller import AttemptRec, Controller, NodeRec, PoolRec
from scheduler.farm.planner import plan_farm
from tests.dispatch.conftest import free_port, work_job


def _run(ctl: Controller, task_id: str, resource: str, slot: int, started_utc: float) -> int:
    task = ctl.tasks[task_id]
    with ctl.store.transaction():
        aid = ctl.store.new_attempt(task.id, task.job_id, resource, slot, 1, started_utc)
        task.state, task.attempt_id = "RUNNING", aid
        ctl.store.update_task(task.id, state="RUNNING", attempt_id=aid)
    ctl.attempts[aid] = AttemptRec(aid, task.id, task.job_id, resource, slot, started_utc)
    return aid


def test_new_work_is_planned_after_the_running_attempt(tmp_path: Path) -> None:
    cfg = ControllerConfig(bind=f"tcp://127.0.0.1:{free_port()}")
    ctl = Controller(tmp_path / "farm.sqlite", cfg)
    try:
        now = time.time()
        ctl.nodes["gpu-a"] = NodeRec("gpu-a", b"a", 2, 48.0, 1.0, [], time.monotonic())
        # Job "long": one 1-frame chunk estimated at 600 s, running for 100 s on slot 0.
        ctl._submit([work_job("long", tmp_path / "out", 1, 1, estimate_s=600).to_wire()])
        aid = _run(ctl, "long:1-1", "gpu-a", 0, now - 100)
        ctl.nodes["gpu-a"].running[0] = aid
        # Job "next": two chunks of 300 s; one slot is free now, the other in ~500 s.
        ctl._submit([work_job("next", tmp_path / "out", 1, 2, estimate_s=300).to_wire()])
        farm, t_plan, info = ctl._snapshot()
        assert farm is not None
        assert {n.id: n.slots for n in farm.nodes} == {"gpu-a": 1, "gpu-a~540": 1}
        plan = plan_farm(farm, "makespan", time_limit_s=5)
        with ctl.store.transaction():
            ctl._apply_plan(plan, t_plan, info)
        starts = sorted(t.planned_start_utc - t_plan for t in ctl.tasks.values()
                        if t.job_id == "next" and t.planned_start_utc is not None)
        assert {t.planned_resource for t in ctl.tasks.values() if t.job_id == "next"} == {"gpu-a"}
        # Treating the busy slot as free would start both at 0 and promise 300 s.
        assert starts == [0, 300]
        assert ctl.jobs["next"].predicted_finish_utc == t_plan + 600
    finally:
        ctl.close()


def test_busy_pool_gpus_and_overran_attempts(tmp_path: Path) -> None:
    cfg = ControllerConfig(bind=f"tcp://127.0.0.1:{free_port()}")
    ctl = Controller(tmp_path / "farm.sqlite", cfg)
    try:
        now = time.time()
        pool_cfg = PoolConfig("cloud", max_slots=3, speed=2.0, startup_s=120)
        ctl.pools["cloud"] = PoolRec(pool_cfg, backend=None)  # type: ignore[arg-type]
        ctl.nodes["gpu-b"] = NodeRec("gpu-b", b"b", 1, 48.0, 1.0, [], time.monotonic())
        ctl._submit([work_job("a", tmp_path / "out", 1, 2, estimate_s=400).to_wire()])
        # A pool attempt with 200 s of its 200 s estimate left, and a node attempt that has
        # overrun its 400 s estimate (planned to hold the slot BUSY_MIN_S more, rounded up).
        pool_aid = _run(ctl, "a:1-1", "cloud", 0, now)
        ctl.pools["cloud"].running[pool_aid] = 1
        node_aid = _run(ctl, "a:2-2", "gpu-b", 0, now - 1000)
        ctl.nodes["gpu-b"].running[0] = node_aid
        ctl._submit([work_job("b", tmp_path / "out", 1, 1, estimate_s=100).to_wire()])
        farm, _, info = ctl._snapshot()
        assert farm is not None
        assert [(n.id, n.slots, n.available[0][0]) for n in farm.nodes] == [("gpu-b~60", 1, 60)]
        assert [(q.id, q.max_slots, q.startup_s) for q in farm.pools] == [
            ("cloud", 2, 120), ("cloud~240", 1, 240)]
        assert info["aliases"] == {"gpu-b~60": "gpu-b", "cloud~240": "cloud"}
    finally:
        ctl.close()
