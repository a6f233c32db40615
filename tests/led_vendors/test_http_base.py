"""The shared vendor HTTP driver base: what every vendor driver inherits (drivers/led/http.py)."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from drivers.led.http import HttpLedProcessor
from drivers.led.model import Capabilities
from drivers.led.simhttp import VendorSimSettings, VendorSimulator
from tests.led_vendors.conftest import wait_for


class _Sim(VendorSimulator):
    """One brightness leaf; the first ``stall`` writes are never answered in time."""

    protocol = "toy"

    def __init__(self, settings: VendorSimSettings, stall: int = 0) -> None:
        super().__init__(settings)
        self.stall = stall
        self.writes = 0
        self.polls = 0

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if request.method == "GET":
            self.polls += 1
            await asyncio.sleep(float(request.query.get("slow", "0")))
            return web.json_response({"b": self.wall.values["brightness_nits"]})
        self.writes += 1
        if self.writes <= self.stall:
            await asyncio.sleep(1.0)  # longer than the driver's request timeout
        body = await request.json()
        self.wall.set({"brightness_nits": float(body["b"])})
        return web.json_response({"b": self.wall.values["brightness_nits"]})


class _Driver(HttpLedProcessor):
    capabilities = Capabilities("toy")

    def __init__(self, *args: Any, slow_poll_s: float = 0.0, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.slow_poll_s = slow_poll_s

    async def _poll(self) -> None:
        data, _ = await self.request("GET", "/b", params={"slow": str(self.slow_poll_s)})
        self._report({"brightness_nits": float(data["b"])})

    async def _write(self, values: dict[str, Any]) -> None:
        for value in values.values():
            data, _ = await self.request("PUT", "/b", body={"b": value})
            self._report({"brightness_nits": float(data["b"])})

    async def _recall(self, number: int) -> None:
        raise NotImplementedError


async def test_an_unanswered_write_is_sent_again_not_dropped() -> None:
    sim = _Sim(VendorSimSettings(latency_ms=0), stall=1)
    await sim.start()
    dev = _Driver("w", sim.url, poll_interval_s=5.0, timeout_s=5.0, request_timeout_s=0.3)
    try:
        await dev.start()
        assert await dev.wait_online(3)
        await dev.set("brightness_nits", 640.0)
        assert await wait_for(lambda: dev.reported.get("brightness_nits") == 640.0, 3.0)
        assert sim.wall.values["brightness_nits"] == 640.0
        assert dev.counters["write_retries"] == 1 and dev.online
    finally:
        await dev.stop()
        await sim.stop()


async def test_a_command_does_not_wait_behind_a_slow_poll() -> None:
    """A write preempts a poll in flight (a Tessera whole-tree GET can be slow)."""
    sim = _Sim(VendorSimSettings(latency_ms=0))
    await sim.start()
    dev = _Driver("w", sim.url, poll_interval_s=0.05, timeout_s=5.0, request_timeout_s=3.0)
    try:
        await dev.start()
        assert await dev.wait_online(3)
        dev.slow_poll_s = 2.0  # every poll from now on takes 2 s
        await asyncio.sleep(0.2)  # one is in flight
        loop = asyncio.get_running_loop()
        started = loop.time()
        await dev.set("brightness_nits", 700.0)
        assert await wait_for(lambda: dev.reported.get("brightness_nits") == 700.0, 1.5)
        assert loop.time() - started < 1.5  # not behind the 2 s poll
        assert dev.counters["polls_preempted"] >= 1
    finally:
        await dev.stop()
        await sim.stop()
