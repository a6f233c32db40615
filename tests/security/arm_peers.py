"""Helpers for the arm-link security tests: the real simulator and driver, and a raw peer."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import zmq
import zmq.asyncio

from drivers.arm import protocol as p
from drivers.arm.driver import ArmCurveKeys, ZmqArm
from drivers.arm.simulator import ArmSimSettings, ArmSimulator
from drivers.device import Backoff
from tests.arm.conftest import READY_POSE, until

__all__ = ["FAR", "READY_POSE", "RawArmClient", "driver", "error_of", "raw_client",
           "simulator", "until"]

FAR = [150.0, -60.0, 90.0, -30.0, 0.0, 0.0]


class RawArmClient:
    """A bare DEALER, as any other process on the network would talk to the controller."""

    def __init__(self, endpoint: str, curve: ArmCurveKeys | None = None) -> None:
        self.ctx = zmq.asyncio.Context()
        self.sock = self.ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        if curve is not None:
            self.sock.curve_serverkey = curve.server_public
            self.sock.curve_publickey = curve.client_public
            self.sock.curve_secretkey = curve.client_secret
        self.sock.connect(endpoint)
        self._n = 0

    async def send(self, cmd: str, args: dict[str, Any] | None = None,
                   lease: str | None = None) -> str:
        self._n += 1
        rid = f"raw-{self._n}"
        await self.sock.send(p.encode_request(rid, cmd, args or {}, lease))
        return rid

    async def recv(self, timeout_s: float = 3.0) -> dict[str, Any]:
        reply: dict[str, Any] = json.loads(await asyncio.wait_for(self.sock.recv(), timeout_s))
        return reply

    async def call(self, cmd: str, args: dict[str, Any] | None = None,
                   lease: str | None = None, timeout_s: float = 3.0) -> dict[str, Any]:
        rid = await self.send(cmd, args, lease)
        while True:
            reply = await self.recv(timeout_s)
            if reply.get("id") == rid:
                return reply

    async def call_raw(self, *frames: bytes, timeout_s: float = 3.0) -> dict[str, Any]:
        await self.sock.send_multipart(list(frames))
        return await self.recv(timeout_s)

    def close(self) -> None:
        self.sock.close(0)
        self.ctx.term()


@contextlib.asynccontextmanager
async def raw_client(endpoint: str, curve: ArmCurveKeys | None = None
                     ) -> AsyncIterator[RawArmClient]:
    client = RawArmClient(endpoint, curve)
    try:
        yield client
    finally:
        client.close()


@contextlib.asynccontextmanager
async def simulator(**settings: Any) -> AsyncIterator[ArmSimulator]:
    base: dict[str, Any] = {"command": "tcp://127.0.0.1:*", "telemetry": "tcp://127.0.0.1:*",
                            "watchdog_s": 0.3, "seed": 1}
    sim = ArmSimulator(ArmSimSettings(**{**base, **settings}))
    await sim.start()
    try:
        yield sim
    finally:
        await sim.stop()


@contextlib.asynccontextmanager
async def driver(sim: ArmSimulator, armed: bool = True, name: str = "arm-a",
                 **options: Any) -> AsyncIterator[ZmqArm]:
    """The production driver connected to ``sim``, holding its lease (interlocks as given)."""
    base: dict[str, Any] = {"heartbeat_s": 0.05, "watchdog_s": 0.3, "timeout_s": 0.4,
                            "backoff": Backoff(initial_s=0.05, max_s=0.2)}
    dev = ZmqArm(name, sim.command_endpoint, sim.telemetry_endpoint, **{**base, **options})
    await dev.start()
    try:
        assert await dev.wait_online(3.0)
        await until(lambda: dev.lease_held and sim.lease is not None)
        dev.set_interlocks(armed=armed, talent_on_stage=False, estop_latched=False)
        await until(lambda: sim.interlocks["armed"] is armed)
        yield dev
    finally:
        await dev.stop()


def error_of(reply: dict[str, Any]) -> dict[str, Any]:
    """The error object of a refused reply (fails if the reply was ok)."""
    assert reply.get("ok") is False, reply
    error = reply["error"]
    assert isinstance(error, dict) and error["code"] and error["message"], reply
    return error
