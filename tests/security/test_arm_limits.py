"""Limits as the arm holds them: set_limits confirmed by the arm, recovery from past a soft
limit, and a cap on the distance of one jog."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from drivers.arm import protocol as p
from drivers.arm.driver import ArmRefused
from drivers.arm.simulator import ArmSimulator
from stagectl.client import ClientIdentity, EngineClient, EngineError
from stagectl.harness import StageHarness, free_port_config
from tests.arm.conftest import wait_for
from tests.security.arm_peers import FAR, driver, error_of, raw_client, simulator, until


@pytest.fixture
def stage() -> Iterator[StageHarness]:
    h = StageHarness(free_port_config(stage="limits-stage", arms=1)).start()
    try:
        yield h
    finally:
        h.stop()


def test_set_limits_while_moving_is_refused_and_reported_not_applied(
        stage: StageHarness) -> None:
    assert stage.sims is not None
    sim = stage.sims.by_name("arm-a-sim")
    assert isinstance(sim, ArmSimulator)
    narrow = [30.0, 55.0, 155.0, 175.0, 120.0, 345.0]
    with EngineClient(stage.config, ClientIdentity("eve", "engineer"), timeout_s=3.0) as eng:
        eng.call("safety.arm")
        wait_for(lambda: sim.interlocks["armed"])
        eng.call("arm.move_joints", {"joints_deg": FAR, "speed_scale": 0.2})
        wait_for(lambda: sim.state == "MOVING")
        with pytest.raises(EngineError) as info:
            eng.call("arm.set_limits", {"soft_max": narrow})
        assert info.value.code == p.BUSY and info.value.details["applied"] is False
        assert "not applied" in str(info.value) and "MOVING" in str(info.value)
        assert sim.envelope.axes[0].soft_max == 165.0
        status = eng.call("arm.status")
        assert status["axes"][0]["soft_max"] == 165.0  # what the arm holds, not what was asked
        assert status["desired"]["limits"]["soft_max"][0] == 165.0
        eng.call("arm.stop")
        wait_for(lambda: sim.state == "IDLE", 5.0)
        applied = eng.call("arm.set_limits", {"soft_max": narrow})
        assert applied["applied"] is True and applied["limits"]["soft_max"][0] == 30.0
        assert sim.envelope.axes[0].soft_max == 30.0
        assert eng.call("arm.status")["axes"][0]["soft_max"] == 30.0


async def test_a_joint_settled_past_its_soft_limit_may_move_back_never_further() -> None:
    async with simulator() as sim, driver(sim) as arm:
        sim.arm.position = np.array([0.0, -60.0, 90.0, -30.0, 120.0016, 0.0])  # settled past
        await until(lambda: arm.position is not None and arm.position[4] > 120.0)
        for outward in ([0, -60, 90, -30, 120.5, 0], [0, -60, 90, -30, 121.0, 0]):
            with pytest.raises(ArmRefused) as info:
                await arm.move_joints(outward)
            assert info.value.code == "soft_limit" and info.value.details["axis"] == "j5"
            assert "further out" in str(info.value)
        with pytest.raises(ArmRefused, match="j5"):
            await arm.jog("j5", 5.0, 0.2)
        async with raw_client(sim.command_endpoint) as raw:  # the controller refuses it too
            reply = await raw.call("jog", {"axis": "j5", "velocity": 5.0, "duration_s": 0.2},
                                   lease=arm.lease_id)
        assert error_of(reply)["code"] == "soft_limit"
        assert (await arm.jog("j5", -5.0, 0.2))["state"] == "MOVING"  # back towards the range
        await until(lambda: sim.state == "IDLE", 3.0)
        assert sim.position[4] == pytest.approx(119.0016, abs=0.02)


async def test_narrowed_limits_allow_retracting_and_the_driver_checks_the_arms_limits() -> None:
    async with simulator() as sim, driver(sim) as arm:
        await arm.move_joints([60.0, -60.0, 90.0, -30.0, 0.0, 0.0])
        await until(lambda: sim.state == "IDLE" and abs(sim.position[0] - 60) < 0.1, 5.0)
        limits = dict(arm.desired["limits"])
        narrow = {**limits, "soft_max": [30.0, 55.0, 155.0, 175.0, 120.0, 345.0]}
        assert (await arm.apply_limits(narrow))["applied"] is True
        assert arm.envelope.axes[0].soft_max == 30.0  # from the arm's reply
        with pytest.raises(ArmRefused, match="further out"):
            await arm.move_joints([70.0, -60.0, 90.0, -30.0, 0.0, 0.0])
        assert (await arm.move_joints([40.0, -60.0, 90.0, -30.0, 0.0, 0.0]))["state"] == \
            "MOVING"
        await until(lambda: sim.state == "IDLE", 5.0)
        assert (await arm.apply_limits(limits))["applied"] is True  # widen again
        assert arm.envelope.axes[0].soft_max == 165.0
        assert (await arm.move_joints([100.0, -60.0, 90.0, -30.0, 0.0, 0.0]))["state"] == \
            "MOVING"


async def test_one_jog_moves_at_most_the_documented_distance() -> None:
    async with simulator() as sim, driver(sim) as arm:
        with pytest.raises(ArmRefused) as info:
            await arm.jog("j1", 1.0e4, 0.01)  # 100 deg at a capped speed, before
        assert info.value.code == p.INVALID_VALUE
        assert f"at most {p.MAX_JOG_DEG:g} deg" in str(info.value)
        async with raw_client(sim.command_endpoint) as raw:
            reply = await raw.call("jog", {"axis": "j1", "velocity": 100.0, "duration_s": 2.0},
                                   lease=arm.lease_id)
        assert error_of(reply)["code"] == p.INVALID_VALUE
        assert sim.counters.motions == 0
        assert (await arm.jog("j1", 20.0, 0.5))["state"] == "MOVING"  # 10 deg: the cap
        await until(lambda: sim.state == "IDLE", 3.0)
        assert sim.position[0] == pytest.approx(10.0, abs=0.05)
