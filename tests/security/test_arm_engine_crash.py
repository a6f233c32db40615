"""A real `stagectl serve` SIGKILLed mid-move: another client's heartbeats do not keep the arm
moving, and a restarted engine takes control once the dead one's lease expires."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import zmq

from drivers.arm import protocol as p
from drivers.arm.simulator import ArmSimSettings, ArmSimulator
from stagectl.client import ClientIdentity, EngineClient
from stagectl.config import load_config
from stagectl.harness import LoopThread, free_port
from tests.security.arm_peers import FAR
from tests.stage_toml import write_stage_toml

STAGECTL = [sys.executable, "-m", "stagectl"]


def wait(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"{what}: not within {timeout} s"
        time.sleep(0.02)


@pytest.fixture
def controller() -> Iterator[tuple[ArmSimulator, LoopThread]]:
    loop = LoopThread("arm-controller")
    sim = ArmSimulator(ArmSimSettings(command=f"tcp://127.0.0.1:{free_port()}",
                                      telemetry=f"tcp://127.0.0.1:{free_port()}",
                                      watchdog_s=0.3, seed=3))
    loop.run(sim.start())
    try:
        yield sim, loop
    finally:
        loop.run(sim.stop())
        loop.close()


def engine_config(tmp_path: Path, sim: ArmSimulator) -> Path:
    return write_stage_toml(tmp_path / "stage.toml", "crash-stage", more=f"""[[devices]]
name = "arm-a"
kind = "arm"
command = "{sim.command_endpoint}"
telemetry = "{sim.telemetry_endpoint}"
heartbeat_s = 0.05
watchdog_s = 0.3
lease_ttl_s = 1.0
""")


def serve(config: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([*STAGECTL, "serve", "--config", str(config)],
                            stderr=subprocess.PIPE, text=True)


def holds_lease(client: EngineClient) -> bool:
    try:
        return bool(client.call("arm.status")["lease"]["held"])
    except Exception:
        return False


def test_engine_sigkilled_mid_move_faults_the_arm_and_a_new_engine_takes_over(
        tmp_path: Path, controller: tuple[ArmSimulator, LoopThread]) -> None:
    sim, _ = controller
    config_path = engine_config(tmp_path, sim)
    config = load_config(config_path)
    first = serve(config_path)
    second: subprocess.Popen[str] | None = None
    ctx = zmq.Context()
    other = ctx.socket(zmq.DEALER)
    other.setsockopt(zmq.LINGER, 0)
    other.connect(sim.command_endpoint)
    try:
        with EngineClient(config, ClientIdentity("ana", "operator"), timeout_s=2.0) as op:
            wait(lambda: holds_lease(op), 20, "first engine takes control")
            op.call("safety.arm")
            wait(lambda: sim.interlocks["armed"], 2, "interlocks pushed")
            op.call("arm.move_joints", {"joints_deg": FAR, "speed_scale": 0.2})
            wait(lambda: sim.state == "MOVING", 2, "moving")
        first.send_signal(signal.SIGKILL)
        first.wait(5)
        deadline = time.monotonic() + 2.0
        while sim.state != "FAULT" and time.monotonic() < deadline:
            other.send(p.encode_request("hb", "heartbeat"))  # a bystander keeps "heartbeating"
            if other.poll(50):
                assert json.loads(other.recv())["ok"] is True
        assert sim.state == "FAULT" and sim.arm.fault.startswith("watchdog"), sim.arm.fault
        assert sim.position[0] < FAR[0] - 10 and sim.velocity == [0.0] * 6
        second = serve(config_path)
        with EngineClient(config, ClientIdentity("ana", "operator"), timeout_s=2.0) as op:
            wait(lambda: holds_lease(op), 20, "restarted engine takes control after expiry")
            assert sim.lease is not None and f"pid {second.pid}" in sim.lease.holder
            assert sim.interlocks["armed"] is False  # the new engine starts disarmed
            assert op.call("arm.reset")["devices"] == {"arm-a": "FAULT -> IDLE"}
        second.send_signal(signal.SIGINT)
        assert second.wait(10) == 0
        wait(lambda: sim.lease is None, 2, "lease released at shutdown")
        assert sim.counters.lease_expiries == 1  # the killed engine's; the second released
    finally:
        for proc in (first, second):
            if proc is not None:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait(5)
                if proc.stderr:
                    proc.stderr.close()
        other.close(0)
        ctx.term()
