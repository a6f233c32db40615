"""A chunk that loses its agent every time fails after ``lost_limit`` losses (no endless loop)."""

from __future__ import annotations

import time
from pathlib import Path

from scheduler.dispatch.config import ControllerConfig
from scheduler.dispatch.controller import AttemptRec, Controller
from tests.dispatch.conftest import free_port, work_job


def test_task_fails_after_lost_limit_and_survives_restart(tmp_path: Path) -> None:
    db = tmp_path / "farm.sqlite"
    cfg = ControllerConfig(bind=f"tcp://127.0.0.1:{free_port()}", lost_limit=3)
    ctl = Controller(db, cfg)
    try:
        ctl._submit([work_job("crashy", tmp_path / "out", 1, 2, chunk=2).to_wire()])
        (task,) = ctl.tasks.values()
        for n in range(1, 4):
            with ctl.store.transaction():
                aid = ctl.store.new_attempt(task.id, task.job_id, "node-x", 0, 1, time.time())
                task.state, task.attempt_id = "RUNNING", aid
                ctl.store.update_task(task.id, state="RUNNING", attempt_id=aid)
                a = AttemptRec(aid, task.id, task.job_id, "node-x", 0, time.time(),
                               sent_mono=time.monotonic())
                ctl.attempts[aid] = a
                ctl._lose(a, f"node node-x lost: crash {n}")
            if n < 3:
                assert task.state == "QUEUED", n
        assert task.state == "FAILED"
        assert "lost 3 times" in task.reason
    finally:
        ctl.close()
    # the count is durable: a restarted controller sees the task failed
    again = Controller(db, cfg)
    try:
        assert again.tasks[task.id].state == "FAILED"
    finally:
        again.close()
