"""The stage interlocks are enforced by the arm controller itself, not only by the engine."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from drivers.arm import protocol as p
from drivers.arm.driver import ArmRefused
from drivers.arm.simulator import ArmSimulator
from stagectl.client import ClientIdentity, EngineClient, EngineError
from stagectl.harness import StageHarness, free_port_config
from tests.arm.conftest import wait_for
from tests.security.arm_peers import FAR, READY_POSE, driver, error_of, raw_client, simulator, until


async def test_arm_refuses_motion_when_the_pushed_interlocks_forbid_it() -> None:
    async with simulator() as sim, driver(sim, armed=False) as arm:
        with pytest.raises(ArmRefused) as info:  # the driver skips the engine's own check
            await arm.move_joints(READY_POSE)
        assert info.value.code == p.INTERLOCK and info.value.details["interlock"] == "not_armed"
        assert "not armed" in str(info.value)
        arm.set_interlocks(armed=True, talent_on_stage=True, estop_latched=False)
        await until(lambda: sim.interlocks["talent_on_stage"])
        with pytest.raises(ArmRefused) as info:
            await arm.jog("j1", 5.0, 0.5)
        assert info.value.details["interlock"] == "talent_on_stage"
        arm.set_interlocks(armed=True, talent_on_stage=False, estop_latched=True)
        await until(lambda: sim.interlocks["estop_latched"])
        async with raw_client(sim.command_endpoint) as raw:  # a holder that skips every check
            reply = await raw.call("home", lease=arm.lease_id)
        assert error_of(reply)["code"] == p.INTERLOCK and reply["error"]["interlock"] == "estop"
        assert sim.counters.motions == 0 and sim.state == "IDLE"
        arm.set_interlocks(armed=True, talent_on_stage=False, estop_latched=False)
        await until(lambda: not sim.interlocks["estop_latched"])
        assert (await arm.move_joints(READY_POSE))["state"] == "MOVING"


async def test_until_the_first_push_the_stage_counts_as_disarmed() -> None:
    async with simulator() as sim, raw_client(sim.command_endpoint) as raw:
        assert (await raw.call("acquire", {"lease": "x" * 32, "holder": "tool"}))["ok"]
        reply = await raw.call("move_joints", {"joints_deg": READY_POSE}, lease="x" * 32)
        assert error_of(reply)["code"] == p.INTERLOCK
        assert reply["error"]["interlock"] == "not_armed"
        assert sim.counters.motions == 0


@pytest.mark.parametrize("drop", ["disarm", "talent", "estop"])
async def test_an_interlock_dropping_during_motion_stops_the_arm(drop: str) -> None:
    async with simulator() as sim, driver(sim) as arm:
        await arm.move_joints(FAR, speed_scale=0.3)
        await until(lambda: sim.state == "MOVING" and abs(sim.velocity[0]) > 5)
        arm.set_interlocks(armed=drop != "disarm", talent_on_stage=drop == "talent",
                           estop_latched=drop == "estop")
        if drop == "estop":
            await until(lambda: sim.state == "ESTOP", 0.5)
        else:
            await until(lambda: sim.state == "STOPPING", 0.5)
            await until(lambda: sim.state == "IDLE", 2.0)
        assert sim.velocity == [0.0] * 6 and sim.position[0] < FAR[0] - 10


@pytest.fixture
def stage() -> Iterator[StageHarness]:
    h = StageHarness(free_port_config(stage="interlock-stage", arms=1)).start()
    try:
        yield h
    finally:
        h.stop()


def test_estop_then_reset_leaves_the_stage_disarmed(stage: StageHarness) -> None:
    assert stage.sims is not None
    sim = stage.sims.by_name("arm-a-sim")
    assert isinstance(sim, ArmSimulator)
    with EngineClient(stage.config, ClientIdentity("ana", "operator"), timeout_s=3.0) as op:
        op.call("safety.arm")
        wait_for(lambda: sim.interlocks["armed"])
        op.call("arm.move_joints", {"joints_deg": FAR, "speed_scale": 0.3})
        wait_for(lambda: sim.state == "MOVING")
        op.call("estop", {"reason": "drill"})
        wait_for(lambda: sim.state == "ESTOP")
        status = op.call("safety.status")
        assert status["armed"] is False and status["estop_latched"] is True
        wait_for(lambda: sim.interlocks == {"armed": False, "talent_on_stage": False,
                                            "estop_latched": True})
        reset = op.call("safety.reset", {"reason": "drill over"})
        assert reset["armed"] is False
        wait_for(lambda: sim.state == "IDLE" and not sim.interlocks["estop_latched"])
        assert op.call("safety.status")["armed"] is False
        assert sim.interlocks["armed"] is False  # the arm was told, and refuses on its own
        with pytest.raises(EngineError) as info:
            op.call("arm.home")
        assert info.value.code == "interlock" and info.value.details["interlock"] == "not_armed"
        op.call("safety.arm")  # a separate, deliberate act
        wait_for(lambda: sim.interlocks["armed"])
        assert op.call("arm.home")["state"] == "HOMING"


async def test_a_move_right_after_arming_is_never_refused_and_stale_pushes_are_ignored(
        ) -> None:
    async with simulator() as sim, driver(sim, armed=False) as arm, \
            raw_client(sim.command_endpoint) as raw:
        for i in range(10):
            arm.set_interlocks(armed=True, talent_on_stage=False, estop_latched=False)
            target = [5.0 if i % 2 == 0 else -5.0, 0.0, 0.0, 0.0, 0.0, 0.0]
            assert (await arm.move_joints(target))["state"] == "MOVING"  # no wait between
            arm.set_interlocks(armed=False, talent_on_stage=False, estop_latched=False)
            await until(lambda: sim.state == "IDLE" and not sim.interlocks["armed"], 3.0)
        stale = {"armed": True, "talent_on_stage": False, "estop_latched": False, "seq": 1}
        reply = await raw.call("heartbeat", {"interlocks": stale}, lease=arm.lease_id)
        assert reply["ok"] and reply["result"]["interlocks"]["armed"] is False  # ignored
