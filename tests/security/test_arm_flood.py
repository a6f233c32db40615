"""E-stop is never behind anything at the arm: floods, big uploads, long plans, bad input."""

from __future__ import annotations

import asyncio
import math
import time

from drivers.arm import protocol as p
from tests.security.arm_peers import FAR, driver, error_of, raw_client, simulator, until


def path(n: int, spacing_s: float = 0.1) -> list[dict[str, object]]:
    """A gentle, valid path of ``n`` keyframes from home."""
    return [{"t_s": round(spacing_s * (i + 1), 4),
             "joints_deg": [round(10 * math.sin(i / 500), 4), round(5 * math.sin(i / 300), 4),
                            0.0, 0.0, 0.0, 0.0]} for i in range(n)]


async def test_estop_is_not_held_back_by_thirty_half_megabyte_uploads() -> None:
    upload = p.encode_request("up", "run_path", {"keyframes": path(9000)})
    assert 450_000 < len(upload) < 1_000_000
    async with simulator() as sim, driver(sim) as arm, \
            raw_client(sim.command_endpoint) as flooder, \
            raw_client(sim.command_endpoint) as operator:
        await arm.move_joints(FAR, speed_scale=0.2)
        await until(lambda: sim.state == "MOVING" and abs(sim.velocity[0]) > 5)
        for _ in range(30):
            await flooder.sock.send(upload)
        start = time.monotonic()
        await operator.send("estop", {"reason": "flood drill"})
        await until(lambda: sim.state == "ESTOP", 2.0)
        elapsed = time.monotonic() - start
        assert elapsed < 0.5, f"e-stop took {elapsed:.3f} s behind the uploads"
        assert sim.velocity == [0.0] * 6 and sim.counters.watchdog_trips == 0
        codes = [error_of(await flooder.recv(5.0))["code"] for _ in range(30)]
        assert set(codes) <= {p.NOT_LEASE_HOLDER, p.TOO_MANY_REQUESTS}, codes


async def test_other_clients_are_served_while_the_controller_plans_a_long_path() -> None:
    frames = path(10_000, spacing_s=0.36)  # a one-hour path: 900,000 samples to check
    async with simulator() as sim, driver(sim) as arm, raw_client(sim.command_endpoint) as raw, \
            raw_client(sim.command_endpoint) as viewer:
        assert (await raw.call("heartbeat", lease=arm.lease_id))["ok"]  # a holder connection
        await raw.send("run_path", {"keyframes": frames}, lease=arm.lease_id)
        await until(lambda: sim.counters.received >= 1 and sim._planning is not None, 3.0)
        start = time.monotonic()
        reply = await viewer.call("heartbeat")
        waited = time.monotonic() - start
        assert reply["ok"] and waited < 0.25, f"a heartbeat waited {waited:.3f} s"
        assert sim._planning is not None  # it really overlapped the planning
        result = await raw.recv(10.0)
        assert result["ok"] and result["result"]["state"] == "MOVING", result
        assert (await viewer.call("estop"))["ok"] and sim.state == "ESTOP"


async def test_driver_heartbeats_keep_flowing_while_it_checks_a_long_path() -> None:
    frames = path(10_000, spacing_s=0.36)
    async with simulator() as sim, driver(sim) as arm:
        await arm.move_joints(FAR, speed_scale=0.1)
        await until(lambda: sim.state == "MOVING")
        gaps: list[float] = []

        async def ticker() -> None:
            last = time.monotonic()
            while True:
                await asyncio.sleep(0.001)
                now = time.monotonic()
                gaps.append(now - last)
                last = now

        tick = asyncio.create_task(ticker())
        try:
            start = time.monotonic()
            await arm.check_async("run_path", {"keyframes": frames})
            took = time.monotonic() - start
        finally:
            tick.cancel()
            await asyncio.gather(tick, return_exceptions=True)
        assert took > 0.05  # real work was done, in slices
        assert max(gaps) < 0.25, f"the driver's loop stalled {max(gaps):.3f} s"
        assert sim.state == "MOVING" and sim.counters.watchdog_trips == 0


async def test_every_malformed_request_gets_a_structured_error_and_the_arm_keeps_serving() -> None:
    async with simulator(max_message_bytes=100_000, max_in_flight=4) as sim, \
            raw_client(sim.command_endpoint) as raw:
        cases = {
            b'{"id":"big","cmd":"jog","args":{"axis":"j1","velocity":' + b"9" * 5000 + b"}}":
                p.BAD_JSON,
            b"[" * 100_000 + b"]" * 1: p.TOO_LARGE,
            b'{"id":"deep","cmd":"heartbeat","args":' + b'{"a":' * 5000 + b"1"
            + b"}" * 5001: p.BAD_JSON,
            b'{"id":"u","cmd":"heart\xff\xfebeat"}': p.BAD_JSON,
            b'{"id":"n","cmd":"move_joints","args":{"joints_deg":[NaN,0,0,0,0,0]}}': p.BAD_JSON,
            b'{"id":"x","cmd":"heartbeat","extra":1}': p.BAD_REQUEST,
            b"x" * 150_000: p.TOO_LARGE,
        }
        for payload, code in cases.items():
            reply = await raw.call_raw(payload)
            assert error_of(reply)["code"] == code, (payload[:40], reply)
        reply = await raw.call_raw(b'{"id":"two","cmd":"heartbeat"}', b"second frame")
        assert error_of(reply)["code"] == p.BAD_REQUEST and "frame" in reply["error"]["message"]
        # bounded requests in flight per client: the excess is answered, not queued
        for i in range(200):
            await raw.sock.send(p.encode_request(f"f{i}", "heartbeat"))
        replies = [await raw.recv() for _ in range(200)]
        assert all("ok" in r for r in replies) and len({r["id"] for r in replies}) == 200
        assert sim.counters.malformed >= 5
        assert (await raw.call("heartbeat"))["ok"] is True


async def test_the_lease_holders_own_large_path_is_accepted_while_strangers_are_refused(
        ) -> None:
    frames = path(9000)
    async with simulator() as sim, driver(sim) as arm, raw_client(sim.command_endpoint) as raw:
        reply = await raw.call("run_path", {"keyframes": frames}, lease=arm.lease_id)
        error = error_of(reply)  # the right lease, but a connection that never presented it
        assert error["code"] == p.NOT_LEASE_HOLDER and "connection" in error["message"]
        result = await arm.run_path(frames)
        assert result["state"] == "MOVING" and result["duration_s"] == 900.0
        assert arm.lease_held


async def test_a_request_that_only_mentions_stop_does_not_jump_the_queue() -> None:
    """Only a real ``estop``/``stop`` is urgent; ``{"id": "stop", ...}`` from a flooding client
    still counts against its in-flight cap (it used to skip the cap and be served first)."""
    async with simulator() as sim, raw_client(sim.command_endpoint) as rogue:
        for _ in range(200):
            await rogue.sock.send(b'{"id": "stop", "cmd": "heartbeat"}')
        codes = []
        for _ in range(200):
            reply = await rogue.recv(5.0)
            codes.append("ok" if reply["ok"] else reply["error"]["code"])
        assert p.TOO_MANY_REQUESTS in codes, sorted(set(codes))
        assert (await rogue.call("estop", {"reason": "still urgent"}))["ok"]
        await until(lambda: sim.state == "ESTOP", 2.0)
