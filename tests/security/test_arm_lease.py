"""Motion enable lives at the arm: one controlling session (the lease), the watchdog fed only
by it, and control handed over only when the lease expires or is released."""

from __future__ import annotations

import asyncio

from drivers.arm import protocol as p
from tests.security.arm_peers import FAR, READY_POSE, driver, error_of, raw_client, simulator, until


async def test_direct_move_and_reset_from_a_client_without_the_lease_are_refused() -> None:
    async with simulator() as sim, driver(sim) as arm, raw_client(sim.command_endpoint) as raw:
        reply = await raw.call("move_joints", {"joints_deg": READY_POSE})
        error = error_of(reply)
        assert error["code"] == p.NOT_LEASE_HOLDER
        assert error["holder"] == arm.holder and arm.holder in error["message"]
        for cmd, args in (("home", {}), ("jog", {"axis": "j1", "velocity": 5.0}),
                          ("set_limits", {"velocity_scale": 1.0}),
                          ("heartbeat", {"interlocks": {"armed": True, "talent_on_stage": False,
                                                        "estop_latched": False}})):
            assert error_of(await raw.call(cmd, args))["code"] == p.NOT_LEASE_HOLDER, cmd
        # a guessed lease id is no better than none
        guessed = await raw.call("move_joints", {"joints_deg": READY_POSE}, lease="0" * 32)
        assert error_of(guessed)["code"] == p.NOT_LEASE_HOLDER
        assert sim.state == "IDLE" and sim.counters.motions == 0
        # anyone may e-stop; only the holder may clear it
        assert (await raw.call("estop", {"reason": "anyone"}))["ok"] is True
        assert sim.state == "ESTOP"
        assert error_of(await raw.call("reset"))["code"] == p.NOT_LEASE_HOLDER
        assert sim.state == "ESTOP"
        # reading is open to everyone
        status = await raw.call("heartbeat")
        assert status["ok"] and status["result"]["lease"]["holder"] == arm.holder
        assert status["result"]["lease"]["yours"] is False
        assert (await arm.reset())["state"] == "IDLE"


async def test_a_second_engine_cannot_take_a_live_lease_but_takes_an_expired_one() -> None:
    async with simulator() as sim, raw_client(sim.command_endpoint) as raw:
        async with driver(sim, lease_ttl_s=0.5) as first:
            taken = await raw.call("acquire", {"lease": "b" * 32, "holder": "engine-2"})
            error = error_of(taken)
            assert error["code"] == p.LEASE_HELD and error["holder"] == first.holder
            first.heartbeats_enabled = False  # the first engine hangs (SIGKILL-like)
            await asyncio.sleep(0.7)
            granted = await raw.call("acquire", {"lease": "b" * 32, "holder": "engine-2"})
            assert granted["ok"] and granted["result"]["holder"] == "engine-2"
            # the new holder starts disarmed, whatever the old one had pushed
            assert granted["result"]["interlocks"]["armed"] is False
            first.heartbeats_enabled = True
            await until(lambda: "engine-2" in str(first.health.reason), 2.0)
            assert not first.lease_held
            refused = await raw.call("move_joints", {"joints_deg": READY_POSE},
                                     lease=first.lease_id)
            assert error_of(refused)["code"] == p.NOT_LEASE_HOLDER
            assert (await raw.call("release", lease="b" * 32))["ok"]
            await until(lambda: first.lease_held, 2.0)  # the driver takes control back


async def test_watchdog_trips_when_the_engine_stops_even_if_another_client_heartbeats() -> None:
    async with simulator() as sim, driver(sim) as arm, raw_client(sim.command_endpoint) as raw:
        await arm.move_joints(FAR, speed_scale=0.2)
        await until(lambda: sim.state == "MOVING")
        arm.heartbeats_enabled = False  # the engine is gone mid-move

        async def other_client() -> None:
            while True:
                await raw.call("heartbeat")
                await asyncio.sleep(0.05)

        feeder = asyncio.create_task(other_client())
        try:
            await until(lambda: sim.state == "FAULT", 2.0)
        finally:
            feeder.cancel()
            await asyncio.gather(feeder, return_exceptions=True)
        assert sim.arm.fault.startswith("watchdog")
        assert sim.position[0] < FAR[0] - 10
        assert sim.velocity == [0.0] * 6


async def test_driver_takes_the_lease_again_after_a_controller_restart() -> None:
    async with simulator() as sim:
        async with driver(sim) as arm:
            endpoints = sim.command_endpoint, sim.telemetry_endpoint
            await sim.stop()
            await until(lambda: not arm.online, 2.0)
            async with simulator(command=endpoints[0], telemetry=endpoints[1]) as fresh:
                await until(lambda: fresh.lease is not None and arm.lease_held, 3.0)
                assert fresh.lease is not None and fresh.lease.holder == arm.holder
                await until(lambda: fresh.interlocks["armed"], 2.0)  # pushed again
                assert (await arm.move_joints(READY_POSE))["state"] == "MOVING"
            await sim.start()  # let the outer context stop it cleanly
