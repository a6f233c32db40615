"""Fixtures for the arm tests: a simulated controller, the production driver, a stage."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator

import pytest

from drivers.arm.driver import ZmqArm
from drivers.arm.simulator import ArmSimSettings, ArmSimulator
from drivers.device import Backoff
from stagectl.client import ClientIdentity, EngineClient
from stagectl.harness import StageHarness, free_port_config

READY_POSE = [0.0, -60.0, 90.0, -30.0, 0.0, 0.0]


async def until(predicate: Callable[[], bool], timeout: float = 3.0) -> float:
    """Wait for predicate; returns seconds taken, fails the test on timeout."""
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(0.002)
    return time.monotonic() - start


def wait_for(predicate: Callable[[], bool], timeout: float = 3.0) -> None:
    """Blocking variant for harness tests (the stage runs on another thread)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


@pytest.fixture
async def sim() -> AsyncIterator[ArmSimulator]:
    s = ArmSimulator(ArmSimSettings(command="tcp://127.0.0.1:*",
                                    telemetry="tcp://127.0.0.1:*", watchdog_s=0.3, seed=1))
    await s.start()
    yield s
    await s.stop()


@pytest.fixture
async def arm(sim: ArmSimulator) -> AsyncIterator[ZmqArm]:
    dev = ZmqArm("arm-a", sim.command_endpoint, sim.telemetry_endpoint, heartbeat_s=0.05,
                 watchdog_s=0.3, timeout_s=0.4, backoff=Backoff(initial_s=0.05, max_s=0.2))
    await dev.start()
    assert await dev.wait_online(2.0)
    await until(lambda: dev.last is not None and sim.watchdog_s == 0.3)
    dev.set_interlocks(armed=True, talent_on_stage=False, estop_latched=False)  # as Safety does
    await until(lambda: sim.interlocks["armed"])
    yield dev
    await dev.stop()


@pytest.fixture
def stage() -> Iterator[StageHarness]:
    """LED + arm stage; LED freezes on e-stop."""
    h = StageHarness(free_port_config(stage="arm-stage", arms=1,
                                      safety={"estop_led_action": "freeze"})).start()
    try:
        yield h
    finally:
        h.stop()


def client(h: StageHarness, role: str = "operator", user: str = "ana") -> EngineClient:
    return EngineClient(h.config, ClientIdentity(user, role), timeout_s=3.0)
