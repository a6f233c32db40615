"""The farm controller trusts no peer: spoofed reports, lying agents, unbounded registrations.

Each test was written against a measured failure (issue 11): a `finished ok` from any peer
made a job DONE with no frames on disk, `register` with speed 1e-310 crashed the controller,
2e6 slots stalled it.
"""

from __future__ import annotations

import time
from pathlib import Path

from scheduler.dispatch import protocol as p
from tests.dispatch.conftest import Farm, work_job
from tests.security.farm_peers import RawPeer, farm

__all__ = ["farm"]


def _running_attempt(farm: Farm, node: str) -> int:
    def busy() -> bool:
        nodes = {n["id"]: n for n in farm.request("nodes")["nodes"]}
        return bool(nodes.get(node, {}).get("running"))
    farm.wait(busy, 15, f"{node} to run a task")
    nodes = {n["id"]: n for n in farm.request("nodes")["nodes"]}
    return int(nodes[node]["running"][0]["attempt"])


def test_spoofed_finished_from_another_peer_is_ignored(farm: Farm, tmp_path: Path) -> None:
    farm.start_controller()
    farm.start_agent("victim")
    farm.wait_nodes(1)
    job = work_job("spoofed", tmp_path / "out", 1, 1, sleep=30)
    farm.request("submit", jobs=[job.to_wire()])
    aid = _running_attempt(farm, "victim")
    with RawPeer(farm.address) as spoofer:
        spoofer.send({"type": p.PROGRESS, "attempt": aid, "fraction": 1.0})
        spoofer.send({"type": p.FINISHED, "node_id": "victim", "attempt": aid, "ok": True,
                      "exit_code": 0, "error": "", "elapsed_s": 1.0, "lines": []})
        time.sleep(1.0)
        status = farm.request("status")["jobs"][0]
        assert status["state"] == "active" and status["counts"]["RUNNING"] == 1, status
        assert status["frames_done"] == 0 and status["progress"] < 0.5
        # a heartbeat in the victim's name from another connection takes nothing over
        spoofer.send({"type": p.HEARTBEAT, "node_id": "victim", "running": []})
        assert spoofer.recv_type(p.REREGISTER)["type"] == p.REREGISTER
        time.sleep(0.5)
    nodes = {n["id"]: n for n in farm.request("nodes")["nodes"]}
    assert nodes["victim"]["running"][0]["attempt"] == aid  # still the victim's, still running
    counters = farm.request("ping")["counters"]
    assert counters.get("foreign_report", 0) >= 2 and counters.get("foreign_heartbeat") == 1


def test_agent_reporting_success_without_outputs_fails_and_retries(farm: Farm,
                                                                   tmp_path: Path) -> None:
    farm.start_controller()
    job = work_job("liar-job", tmp_path / "out", 1, 2, chunk=2, max_attempts=2)
    with RawPeer(farm.address) as liar:
        liar.send({"type": p.REGISTER, "node_id": "liar", "slots": 1, "vram_gb": 24,
                   "speed": 1.0, "gpus": [], "running": [], "finished": [], "version": 1})
        assert liar.recv_type(p.WELCOME)
        farm.request("submit", jobs=[job.to_wire()])
        assigned = 0
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            status = farm.request("status")["jobs"][0]
            if status["state"] != "active":
                break
            liar.send({"type": p.HEARTBEAT, "node_id": "liar", "running": []})
            if liar.sock.poll(200):
                msg = liar.recv()
                if msg["type"] == p.ASSIGN:
                    assigned += 1
                    liar.send({"type": p.FINISHED, "node_id": "liar", "attempt": msg["attempt"],
                               "ok": True, "exit_code": 0, "error": "", "lines": []})
    status = farm.request("status")["jobs"][0]
    assert status["state"] == "stalled", status
    assert status["counts"]["FAILED"] == 1 and status["frames_done"] == 0
    assert assigned == 2  # retried per max_attempts, then failed
    assert any("missing or empty" in r for r in status["reasons"]), status["reasons"]
    failures = [e for e in farm.request("events", limit=100)["events"]
                if e["kind"] == "task_failed"]
    assert len(failures) == 2 and "liar-job.0001.png" in failures[0]["detail"]


def test_registration_values_are_bounded(farm: Farm, tmp_path: Path) -> None:
    farm.start_controller()
    job = work_job("bounded", tmp_path / "out", 1, 4, estimate_s=10)
    farm.request("submit", jobs=[job.to_wire()])  # so that every registration re-plans
    base = {"type": p.REGISTER, "node_id": "evil", "slots": 1, "vram_gb": 24, "speed": 1.0,
            "gpus": [], "running": [], "finished": [], "version": 1}
    cases = [
        ({"speed": 1e-310}, "speed"),
        ({"speed": 1e300}, "speed"),
        ({"slots": 2_000_000}, "slots"),
        ({"slots": 0}, "slots"),
        ({"slots": True}, "slots"),
        ({"vram_gb": 1e308}, "vram_gb"),
        ({"vram_gb": -1}, "vram_gb"),
        ({"gpus": [{"index": i, "model": "x", "vram_gb": 1} for i in range(500)]}, "gpus"),
        ({"gpus": [{"index": 0, "model": "m" * 1000, "vram_gb": 1}]}, "gpus[0].model"),
        ({"node_id": "n" * 10_000}, "node_id"),
        ({"node_id": "../../x"}, "node_id"),
        ({"running": list(range(1, 5000))}, "running"),
    ]
    with RawPeer(farm.address) as evil:
        for change, field in cases:
            t0 = time.monotonic()
            evil.send({**base, **change})
            reply = evil.recv(timeout_s=5)
            assert time.monotonic() - t0 < 1.0
            assert reply["type"] == p.REFUSE, (change, reply)
            assert reply["code"] == "bad_value" and reply["field"] == field, reply
            assert reply["allowed"] and "expected" in reply["reason"]
    assert farm.controller is not None and farm.controller.poll() is None
    assert farm.request("nodes")["nodes"] == []
    assert farm.request("ping")["counters"]["bad_value"] == len(cases)
    # a sane agent still registers and runs the job
    farm.start_agent("good")
    farm.wait(farm.jobs_done, 30, "the job on a well-behaved agent")
