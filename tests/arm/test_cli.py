"""`stagectl estop`, `stagectl arm ...` and `stagectl cue ...` as an operator runs them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from stagectl.harness import free_port
from tests.stage_toml import write_stage_toml

STAGECTL = [sys.executable, "-m", "stagectl"]


def run(*args: str, role: str = "operator") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200", "STAGECTL_ROLE": role, "STAGECTL_USER": "cli"}
    return subprocess.run([*STAGECTL, *args], capture_output=True, text=True, timeout=30,
                          env=env)


@pytest.fixture
def arm_stage(tmp_path: Path) -> Iterator[str]:
    cues = tmp_path / "cues.toml"
    cues.write_text('[[cues]]\nnumber = 1\nname = "ready"\n'
                    'arm = { joints_deg = [0.0, -30.0, 40.0, 0.0, 0.0, 0.0] }\n')
    cmd, tel = f"tcp://127.0.0.1:{free_port()}", f"tcp://127.0.0.1:{free_port()}"
    config = write_stage_toml(tmp_path / "stage.toml", "cli-arm", tmp_path / "audit.sqlite",
                              f"""[cues]
file = "{cues}"
[[devices]]
name = "arm-a"
kind = "arm"
command = "{cmd}"
telemetry = "{tel}"
[[simulators]]
name = "arm-a-sim"
kind = "arm"
command = "{cmd}"
telemetry = "{tel}"
""")
    procs = [subprocess.Popen([*STAGECTL, cmd_, "--config", str(config)],
                              stderr=subprocess.PIPE, text=True) for cmd_ in ("sim", "serve")]
    try:
        deadline = time.monotonic() + 20
        while True:
            result = run("status", "--json", "--config", str(config))
            if result.returncode == 0 and \
                    json.loads(result.stdout)["devices"][0]["health"] == "online":
                break
            assert time.monotonic() < deadline, f"stage never came up: {result.stderr}"
            time.sleep(0.2)
        yield str(config)
    finally:
        for proc in reversed(procs):
            proc.send_signal(signal.SIGINT)
        for proc in reversed(procs):
            try:
                assert proc.wait(10) == 0, proc.stderr.read() if proc.stderr else ""
            finally:
                if proc.poll() is None:
                    proc.kill()
                if proc.stderr:
                    proc.stderr.close()


def test_arm_cue_and_estop_from_the_command_line(arm_stage: str) -> None:
    cfg = ("--config", arm_stage)
    refused = run("arm", "move-joints", "0", "-30", "40", "0", "0", "0", *cfg)
    assert refused.returncode == 1 and "not armed" in refused.stderr
    assert "to clear: stagectl arm arm" in refused.stderr  # the CLI names the CLI command
    assert run("arm", "arm", *cfg, role="viewer").returncode == 1  # forbidden
    assert run("arm", "arm", *cfg).returncode == 0
    bad = run("arm", "move-joints", "0", "0", "0", "0", "124", "0", *cfg)
    assert bad.returncode == 1 and "j5" in bad.stderr and "soft_max" in bad.stderr
    go = run("cue", "go", *cfg)
    assert go.returncode == 0 and "GO cue 1" in go.stdout
    time.sleep(0.2)
    stop = run("estop", "--reason", "cli drill", *cfg, role="viewer")
    assert stop.returncode == 0, stop.stderr
    assert "E-STOP" in stop.stdout and "arm-a" in stop.stdout
    status = json.loads(run("arm", "status", "--json", *cfg).stdout)
    assert status["state"]["state"] == "ESTOP"
    assert status["state"]["velocities_deg_s"] == [0.0] * 6
    assert run("arm", "reset", *cfg, role="viewer").returncode == 1
    assert run("arm", "reset", "--reason", "drill over", *cfg).returncode == 0
    still = run("arm", "jog", "j1", "-10", "--duration", "0.2", *cfg)  # reset never re-arms
    assert still.returncode == 1 and "not armed" in still.stderr
    assert run("arm", "arm", *cfg).returncode == 0
    assert run("arm", "jog", "j1", "-10", "--duration", "0.2", *cfg).returncode == 0
    audit = run("arm", "audit", *cfg)
    assert "estop" in audit.stdout and "cli drill" in audit.stdout and "reset" in audit.stdout
    listing = run("cue", "list", *cfg)
    assert listing.returncode == 0 and "> " in listing.stdout
