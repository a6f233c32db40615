"""The production arm driver against the simulated controller over loopback ZeroMQ."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
import zmq
import zmq.asyncio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from drivers.arm import protocol as p
from drivers.arm.driver import ArmRefused, ZmqArm
from drivers.arm.simulator import ArmSimulator
from drivers.device import Health
from tests.arm.conftest import READY_POSE, until


class RawClient:
    """A bare DEALER, as a third-party controller would talk to the arm."""

    def __init__(self, endpoint: str) -> None:
        self.ctx = zmq.asyncio.Context()
        self.sock = self.ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.connect(endpoint)

    async def call(self, payload: bytes) -> dict[str, object]:
        await self.sock.send(payload)
        reply: dict[str, object] = json.loads(await asyncio.wait_for(self.sock.recv(), 2.0))
        return reply

    def close(self) -> None:
        self.sock.close(0)
        self.ctx.term()


async def test_move_reaches_target_with_repeatability_noise(sim: ArmSimulator,
                                                           arm: ZmqArm) -> None:
    result = await arm.move_joints(READY_POSE, profile="scurve")
    assert result["state"] == "MOVING" and result["duration_s"] > 0.3
    await until(lambda: arm.reported.get("state") == "MOVING")
    await until(lambda: sim.state == "IDLE", 5.0)
    assert sim.position == pytest.approx(READY_POSE, abs=0.05)
    assert sim.position != READY_POSE  # repeatability noise, not a teleport
    await until(lambda: arm.reported["joints_deg"] == pytest.approx(READY_POSE, abs=0.05))


async def test_soft_limit_refused_before_sending_and_by_the_controller(
        sim: ArmSimulator, arm: ZmqArm) -> None:
    sent = arm.counters["commands_sent"]
    with pytest.raises(ArmRefused) as info:
        await arm.move_joints([0, 0, 0, 0, 123.0, 0])
    assert info.value.code == "soft_limit"
    assert info.value.details["axis"] == "j5" and info.value.details["limit_value"] == 120.0
    assert arm.counters["commands_sent"] == sent  # nothing left the driver
    raw = RawClient(sim.command_endpoint)  # a lease holder that does not check
    try:
        reply = await raw.call(p.encode_request("x", "move_joints",
                                                {"joints_deg": [0, 0, 0, 0, 123.0, 0]},
                                                arm.lease_id))
    finally:
        raw.close()
    error = reply["error"]
    assert isinstance(error, dict)
    assert (reply["ok"], error["code"], error["axis"], error["limit"]) == \
        (False, "soft_limit", "j5", "soft_max")
    assert sim.state == "IDLE" and sim.counters.motions == 0


async def test_narrowed_soft_limits_apply_on_both_sides(sim: ArmSimulator, arm: ZmqArm) -> None:
    limits = dict(arm.desired["limits"])
    limits["soft_max"] = [100.0, 55.0, 155.0, 175.0, 120.0, 345.0]
    await arm.set("limits", limits)
    await until(lambda: sim.envelope.axes[0].soft_max == 100.0)
    with pytest.raises(ArmRefused, match="j1 would reach 110"):
        await arm.move_joints([110.0, 0, 0, 0, 0, 0])


async def test_watchdog_trip_stops_and_faults(sim: ArmSimulator, arm: ZmqArm) -> None:
    await arm.move_joints([150.0, -60, 90, -30, 0, 0], speed_scale=0.2)
    await until(lambda: sim.state == "MOVING")
    arm.heartbeats_enabled = False  # the controlling host hangs
    await until(lambda: sim.state == "STOPPING", 1.0)
    await until(lambda: sim.state == "FAULT", 2.0)
    assert sim.velocity == [0.0] * 6
    assert sim.arm.fault.startswith("watchdog")
    assert sim.position[0] < 150.0  # stopped short of the target
    await until(lambda: arm.reported.get("state") == "FAULT")
    assert arm.health.state == Health.DEGRADED and "watchdog" in arm.health.reason
    arm.heartbeats_enabled = True
    with pytest.raises(ArmRefused) as info:
        await arm.home()
    assert info.value.code == "fault"
    assert (await arm.reset())["state"] == "IDLE"


async def test_idle_arm_without_heartbeat_stays_idle(sim: ArmSimulator, arm: ZmqArm) -> None:
    arm.heartbeats_enabled = False
    await asyncio.sleep(0.5)
    assert sim.state == "IDLE"


async def test_estop_mid_move_zero_velocity_within_a_control_cycle(sim: ArmSimulator,
                                                                  arm: ZmqArm) -> None:
    await arm.move_joints([120.0, -60, 90, -30, 0, 0])
    await until(lambda: sim.state == "MOVING" and abs(sim.velocity[0]) > 10)
    start = time.monotonic()
    assert arm.estop_now("test")
    await until(lambda: sim.state == "ESTOP", 0.5)
    elapsed = time.monotonic() - start
    assert sim.velocity == [0.0] * 6
    assert elapsed < 2 * (1 / 250) + 0.01, elapsed  # one or two control cycles (+ loop slack)
    frozen = sim.position
    await asyncio.sleep(0.05)
    assert sim.position == frozen
    await until(lambda: arm.reported.get("state") == "ESTOP")
    with pytest.raises(ArmRefused, match="reset first"):
        await arm.move_joints(READY_POSE)


async def test_estop_jumps_the_command_queue(sim: ArmSimulator) -> None:
    raw = RawClient(sim.command_endpoint)
    try:
        for i in range(20):
            await raw.sock.send(p.encode_request(str(i), "heartbeat"))
        await raw.sock.send(p.encode_request("e", "estop"))
        ids = [json.loads(await asyncio.wait_for(raw.sock.recv(), 2))["id"] for _ in range(21)]
    finally:
        raw.close()
    assert sim.state == "ESTOP"
    assert ids.index("e") < 20  # not served last


async def test_planned_pose_is_published_ahead_by_the_lookahead(sim: ArmSimulator,
                                                               arm: ZmqArm) -> None:
    await arm.move_joints([60.0, -60, 90, -30, 0, 0], speed_scale=0.3)
    await until(lambda: arm.last is not None and arm.last.state == "MOVING" and
                arm.last.progress > 0.2)
    sample = arm.last
    assert sample is not None
    assert sample.planned_t_utc_s == pytest.approx(sample.t_utc_s + 0.12, abs=1e-3)
    ahead = sample.planned_joints_deg[0] - sample.joints_deg[0]
    assert ahead == pytest.approx(sample.velocities_deg_s[0] * 0.12, rel=0.25)


async def test_path_waits_for_its_start_time(sim: ArmSimulator, arm: ZmqArm) -> None:
    frames = [{"t_s": 1.0, "joints_deg": [20.0, 0, 0, 0, 0, 0]}]
    result = await arm.run_path(frames, start_utc_s=time.time() + 0.3)
    assert 0.2 < result["starts_in_s"] <= 0.3
    await asyncio.sleep(0.15)
    assert sim.state == "MOVING" and sim.position[0] == pytest.approx(0.0, abs=0.05)
    await until(lambda: sim.state == "IDLE", 3.0)
    assert sim.position[0] == pytest.approx(20.0, abs=0.05)


async def test_controller_restart_reapplies_envelope(sim: ArmSimulator, arm: ZmqArm) -> None:
    endpoints = (sim.command_endpoint, sim.telemetry_endpoint)
    await sim.stop()
    await until(lambda: not arm.online, 2.0)
    assert arm.reported["state"] == "DISCONNECTED"
    with pytest.raises(Exception, match="offline|no telemetry"):
        await arm.home()
    fresh = ArmSimulator(sim.with_settings(command=endpoints[0], telemetry=endpoints[1],
                                           watchdog_s=2.0))
    await fresh.start()
    try:
        await until(lambda: arm.online and fresh.watchdog_s == 0.3, 3.0)
    finally:
        await fresh.stop()


async def test_safe_shutdown_is_a_controlled_stop(sim: ArmSimulator, arm: ZmqArm) -> None:
    await arm.move_joints([150.0, -60, 90, -30, 0, 0], speed_scale=0.3)
    await until(lambda: sim.state == "MOVING")
    await arm.stop()
    assert sim.state == "IDLE" and sim.velocity == [0.0] * 6
    assert sim.position[0] < 150.0


fuzz_payloads = st.one_of(
    st.binary(max_size=64),
    st.just(b"[" * 50000),
    st.builds(lambda cmd, args: json.dumps({"id": 1, "cmd": cmd, "args": args}).encode(),
              st.sampled_from(sorted(p.MOTION_COMMANDS)),
              st.dictionaries(st.sampled_from(["joints_deg", "pose", "keyframes", "axis",
                                               "velocity", "speed_scale", "track_mm"]),
                              st.one_of(st.none(), st.text(max_size=4), st.booleans(),
                                        st.floats(min_value=1e6, allow_infinity=False),
                                        st.integers(min_value=10**6),
                                        st.lists(st.text(max_size=2), max_size=7),
                                        st.lists(st.floats(min_value=1e3, max_value=1e300),
                                                 min_size=6, max_size=6)),
                              min_size=1, max_size=3)))


async def test_fuzz_command_channel_clear_errors_and_arm_never_moves(sim: ArmSimulator) -> None:
    raw = RawClient(sim.command_endpoint)
    replies: list[dict[str, object]] = []

    @settings(max_examples=120, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(fuzz_payloads)
    def feed(payload: bytes) -> None:
        replies.append(json.loads(sim.handle(payload) or b"{}"))

    try:
        feed()
        # and over the real socket, the worst ones
        for payload in (b"\x00" * 10, b"[" * 50000, b'{"id":1,"cmd":"move_joints","args":'
                        b'{"joints_deg":[1e308,1e308,1e308,1e308,1e308,1e308]}}'):
            replies.append(await raw.call(payload))
    finally:
        raw.close()
    assert replies and all(r.get("ok") is False for r in replies)
    for reply in replies:
        error = reply["error"]
        assert isinstance(error, dict) and error["code"] and error["message"]
    assert sim.counters.motions == 0 and sim.state == "IDLE"
    assert sim.velocity == [0.0] * 6
