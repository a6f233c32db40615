"""A task whose argv cannot be executed fails with the reason; agents and pools keep serving.

Before, a NUL byte in a job's argv killed the agent's task thread (the task stayed RUNNING
forever) and made the local pool raise on every later poll.
"""

from __future__ import annotations

import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import zmq
from typer.testing import CliRunner

from scheduler.dispatch import protocol as p
from scheduler.dispatch.client import ControllerError
from scheduler.dispatch.pool import LocalPool
from stagectl.cli.farm import app
from tests.dispatch.conftest import ROOT, Farm, free_port, work_job
from tests.security.farm_peers import farm

__all__ = ["farm"]


def test_nul_argv_refused_at_submit(farm: Farm, tmp_path: Path) -> None:
    f = tmp_path / "nul.toml"
    f.write_text('[[jobs]]\nid = "nul"\nframe_start = 1\nframe_end = 1\n'
                 'argv = ["render", "a\\u0000b"]\n')
    result = CliRunner().invoke(app, ["submit", str(f), "--controller", "tcp://127.0.0.1:1"])
    assert result.exit_code == 2 and "jobs[0].argv[1]" in result.output
    assert "NUL" in result.output
    farm.start_controller()
    job = work_job("nul", tmp_path / "out", 1, 1).to_wire()
    with farm.client() as c, pytest.raises(ControllerError) as refused:
        c.request("submit", jobs=[{**job, "argv": ["{python}", "-c", "print(1)\x00"]}])
    assert refused.value.reply["code"] == "bad_job"
    assert refused.value.reply["error"].startswith("jobs[0].argv[2]:")


def test_agent_survives_unexecutable_argv(tmp_path: Path) -> None:
    """A stand-in controller assigns what the real one never would; the real agent copes."""
    address = f"tcp://127.0.0.1:{free_port()}"
    router_ctx = zmq.Context()
    router = router_ctx.socket(zmq.ROUTER)
    router.linger = 0
    router.bind(address)
    not_exec = tmp_path / "not-executable"
    not_exec.write_text("#!/bin/sh\necho hi\n")
    not_exec.chmod(stat.S_IRUSR | stat.S_IWUSR)
    agent = subprocess.Popen([sys.executable, "-m", "tests.dispatch.proc", "agent",
                              "--controller", address, "--node-id", "n1", "--slots", "1"],
                             cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert router.poll(10_000)
        rid, frame = router.recv_multipart()
        assert p.decode(frame)["type"] == p.REGISTER
        router.send_multipart([rid, p.encode({"type": p.WELCOME, "heartbeat_s": 0.2})])
        cases = [(["{python}", "-c", "print('a\x00b')"], "null"),
                 (["/no/such/program", "{frame_start}"], "No such file"),
                 ([str(not_exec)], "Permission denied"),
                 (["{python}", "-c", "pass"], "")]
        for aid, (argv, reason) in enumerate(cases, start=1):
            router.send_multipart([rid, p.encode({
                "type": p.ASSIGN, "attempt": aid, "task": f"t:{aid}", "job": "t", "slot": 0,
                "argv": argv, "frame_start": 1, "frame_end": 1, "output": None})])
            deadline = time.monotonic() + 10
            fin = None
            while fin is None and time.monotonic() < deadline:
                if router.poll(500):
                    msg = p.decode(router.recv_multipart()[1])
                    if msg["type"] == p.FINISHED and msg["attempt"] == aid:
                        fin = msg
            assert fin is not None, f"no finished report for {argv!r}: the agent is wedged"
            router.send_multipart([rid, p.encode({"type": p.ACK, "attempt": aid})])
            assert fin["ok"] is (reason == ""), fin
            assert reason in fin["error"], fin
            if reason:
                assert "cannot start" in fin["error"]
        # the slot is free again: heartbeats list nothing running
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            msg = p.decode(router.recv_multipart()[1]) if router.poll(500) else {}
            if msg.get("type") == p.HEARTBEAT and msg["running"] == []:
                break
        else:
            raise AssertionError("the agent still lists a running attempt")
        assert agent.poll() is None
    finally:
        agent.kill()
        agent.communicate(timeout=10)
        router.close(0)
        router_ctx.term()


def test_local_pool_keeps_serving_after_a_job_that_cannot_start(tmp_path: Path) -> None:
    pool = LocalPool(max_running=1)
    try:
        bad = pool.submit("bad", [sys.executable, "-c", "pass\x00"], gpus=1, after=[],
                          deadline_utc=None, workdir=tmp_path)
        missing = pool.submit("missing", ["/no/such/program"], gpus=1, after=[],
                              deadline_utc=None, workdir=tmp_path)
        good = pool.submit("good", [sys.executable, "-c", "pass"], gpus=1, after=[],
                           deadline_utc=None, workdir=tmp_path)
        deadline = time.monotonic() + 10
        while pool.poll([good])[good].state != "COMPLETED":
            assert time.monotonic() < deadline, pool.poll([bad, missing, good])
            time.sleep(0.05)
        states = pool.poll([bad, missing])
        assert states[bad].state == "FAILED" and "null" in states[bad].reason
        assert states[missing].state == "FAILED" and "No such file" in states[missing].reason
    finally:
        pool.close()
