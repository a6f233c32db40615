"""Real controller and agent processes on loopback: kill -9 an agent, restart the controller."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from tests.dispatch.conftest import Farm, frames_exactly_once, work_job


def done_attempts_per_task(db: Path) -> dict[str, int]:
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute("SELECT t.id, COUNT(a.id) FROM tasks t LEFT JOIN attempts a "
                            "ON a.task_id = t.id AND a.state = 'DONE' GROUP BY t.id").fetchall()
    finally:
        conn.close()
    return {r[0]: r[1] for r in rows}


def test_sigkill_agent_mid_task_every_frame_once(farm: Farm, tmp_path: Path) -> None:
    out = tmp_path / "out"
    farm.start_controller()
    farm.start_agent("victim", slots=2)
    farm.start_agent("steady", slots=1)
    farm.wait_nodes(2)
    job = work_job("kill-agent", out, 1, 12, chunk=2, sleep=0.6)
    farm.request("submit", jobs=[job.to_wire()])

    def victim_busy() -> bool:
        nodes = {n["id"]: n for n in farm.request("nodes")["nodes"]}
        return nodes.get("victim", {}).get("busy", 0) > 0
    farm.wait(victim_busy, 15, "the victim to run a task")
    time.sleep(0.3)  # mid-task: frames staged, not yet moved into place
    farm.kill(farm.agents["victim"])
    farm.wait(farm.jobs_done, 40, "the job to finish on the surviving agent")
    frames_exactly_once(out, [job])
    assert set(done_attempts_per_task(farm.db).values()) == {1}
    kinds = [e["kind"] for e in farm.request("events", limit=500)["events"]]
    assert "node_lost" in kinds and "task_requeued" in kinds


def test_kill_and_restart_controller_mid_run(farm: Farm, tmp_path: Path) -> None:
    out = tmp_path / "out"
    farm.start_controller()
    farm.start_agent("n1", slots=2)
    farm.start_agent("n2", slots=1)
    farm.wait_nodes(2)
    jobs = [work_job("restart-a", out, 1, 8, chunk=1, sleep=0.4),
            work_job("restart-b", out, 1, 4, chunk=2, sleep=0.4, after=("restart-a",))]
    farm.request("submit", jobs=[j.to_wire() for j in jobs])

    def some_done() -> bool:
        return farm.request("status")["jobs"][0]["frames_done"] >= 2
    farm.wait(some_done, 20, "the first frames")
    assert farm.controller is not None
    farm.kill(farm.controller)
    time.sleep(1.0)  # agents finish work while no controller listens
    farm.start_controller()
    farm.wait(farm.jobs_done, 40, "both jobs after the restart")
    frames_exactly_once(out, jobs)
    assert set(done_attempts_per_task(farm.db).values()) == {1}
    conn = sqlite3.connect(farm.db)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()


def test_retries_then_blocklist_and_failed_job(farm: Farm, tmp_path: Path) -> None:
    out = tmp_path / "out"
    farm.start_controller()
    farm.start_agent("bad", slots=1)
    farm.start_agent("good", slots=1)
    farm.wait_nodes(2)
    flaky = work_job("flaky", out, 1, 6, fail_on="bad", max_attempts=5)
    doomed = work_job("doomed", out, 1, 1, fail_on="bad,good", max_attempts=2)
    child = work_job("child", out, 1, 1, after=("doomed",))
    farm.request("submit", jobs=[j.to_wire() for j in (flaky, doomed, child)])

    def settled() -> bool:
        states = {j["id"]: j["state"] for j in farm.request("status")["jobs"]}
        return states == {"flaky": "done", "doomed": "stalled", "child": "stalled"}
    farm.wait(settled, 40, "flaky done, doomed failed, child blocked")
    jobs = {j["id"]: j for j in farm.request("status")["jobs"]}
    assert jobs["doomed"]["counts"]["FAILED"] == 1
    assert jobs["child"]["counts"]["BLOCKED"] == 1
    nodes = {n["id"]: n for n in farm.request("nodes")["nodes"]}
    events = farm.request("events", limit=500)["events"]
    blocked = [e for e in events if e["kind"] == "node_blocklisted"]
    # "bad" failed flaky at most 3 times: then it was blocklisted for that job
    flaky_fail_on_bad = [e for e in events if e["kind"] == "task_failed"
                         and e["job_id"] == "flaky" and e["resource"] == "bad"]
    assert len(flaky_fail_on_bad) == 3
    assert "flaky" in nodes["bad"]["blocklisted_for"]
    assert any(e["job_id"] == "flaky" and e["resource"] == "bad" for e in blocked)
    frames_exactly_once(out, [flaky])
    # retry: doomed fails again (the command fails everywhere) but it did run again
    reply = farm.request("retry_job", job="doomed")
    assert reply["requeued"] == 1
    farm.wait(settled, 30, "doomed to fail again")
    failures = [e for e in farm.request("events", limit=500)["events"]
                if e["kind"] == "task_failed" and e["job_id"] == "doomed"]
    assert len(failures) == 4


def test_cancel_stops_running_attempts(farm: Farm, tmp_path: Path) -> None:
    farm.start_controller()
    farm.start_agent("n1", slots=1)
    farm.wait_nodes(1)
    job = work_job("long", tmp_path / "out", 1, 3, sleep=30)
    farm.request("submit", jobs=[job.to_wire()])
    farm.wait(lambda: farm.request("status")["jobs"][0]["counts"]["RUNNING"] == 1, 15,
              "the task to run")
    assert farm.request("cancel_job", job="long")["stopped"] == 1
    farm.wait(lambda: farm.request("nodes")["nodes"][0]["busy"] == 0, 5, "the slot to free")
    job_status = farm.request("status")["jobs"][0]
    assert job_status["state"] == "cancelled"
    assert job_status["counts"]["BLOCKED"] == 3
