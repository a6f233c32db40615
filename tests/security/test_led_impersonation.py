"""Issue 11: the LED driver listens to its processor only.

An impostor on another loopback address (127.0.0.2) using the processor's port, or on the
processor's host from another port, sends the replies a live processor would. The wall's
real processor is muted: the driver must go offline anyway, count what it rejected, and an
e-stop must not report the LED action as applied to the dead wall.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator, Callable

import pytest

from drivers.device import Backoff, Health
from drivers.led import protocol as p
from drivers.led.driver import OscLedProcessor
from drivers.led.simulator import FAULT_MUTE, LedSimSettings, LedSimulator
from drivers.osc import encode_message
from stagectl.client import ClientIdentity, EngineClient
from stagectl.config import LedDeviceConfig
from stagectl.harness import StageHarness, free_port_config

TIMEOUT_S = 0.6


async def until(predicate: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"condition not met within {timeout} s"
        await asyncio.sleep(0.01)


def impostor_packets(session: str = "impostor") -> list[bytes]:
    """What a live processor sends a subscriber: session, status, a changed setting."""
    return [encode_message(p.SESSION, (("s", session),)),
            encode_message(p.STATUS_TEMPERATURE, (("f", 31.0),)),
            encode_message(p.STATUS_PANELS, (("i", 240), ("i", 240))),
            encode_message("/led/brightness", (("f", 42.0),))]


@contextlib.asynccontextmanager
async def impostor(bind: tuple[str, int], target: tuple[str, int]) -> AsyncIterator[list[int]]:
    """A real UDP socket at ``bind`` sending processor replies to ``target`` every 20 ms."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(bind)
    sock.setblocking(False)
    sent = [0]
    stop = asyncio.Event()

    async def blast() -> None:
        while not stop.is_set():
            for packet in impostor_packets():
                with contextlib.suppress(OSError):
                    sock.sendto(packet, target)
                    sent[0] += 1
            await asyncio.sleep(0.02)

    task = asyncio.create_task(blast())
    try:
        yield sent
    finally:
        stop.set()
        await task
        sock.close()


@pytest.fixture
async def sim() -> AsyncIterator[LedSimulator]:
    s = LedSimulator(LedSimSettings(host="127.0.0.1", port=0, latency_ms=1.0))
    await s.start()
    yield s
    await s.stop()


async def driver_for(remote: tuple[str, int]) -> OscLedProcessor:
    dev = OscLedProcessor("led-main", remote, timeout_s=TIMEOUT_S, keepalive_s=0.1,
                          backoff=Backoff(initial_s=0.05, max_s=0.2))
    await dev.start()
    assert await dev.wait_online(3.0)
    return dev


def driver_port(dev: OscLedProcessor) -> int:
    transport = dev._transport._transport
    assert transport is not None
    port: int = transport.get_extra_info("sockname")[1]
    return port


@pytest.mark.parametrize("impostor_host", ["127.0.0.2", "127.0.0.1"])
async def test_impostor_does_not_keep_a_muted_wall_online(sim: LedSimulator,
                                                          impostor_host: str) -> None:
    """127.0.0.2 uses the processor's own port; 127.0.0.1 (the processor's host) another."""
    dev = await driver_for(sim.address)
    try:
        port = sim.address[1] if impostor_host == "127.0.0.2" else 0
        async with impostor((impostor_host, port), ("127.0.0.1", driver_port(dev))) as sent:
            await until(lambda: dev.counters["rejected_datagrams"] > 20, 2.0)
            assert dev.health.state == Health.ONLINE  # the real processor still answers
            dev.send_raw(FAULT_MUTE, (("i", 1),))
            muted_at = time.monotonic()
            await until(lambda: dev.health.state == Health.OFFLINE, TIMEOUT_S + 2.0)
            assert time.monotonic() - muted_at < TIMEOUT_S + 2.0
            assert "no reply from udp://127.0.0.1" in dev.health.reason
            await asyncio.sleep(3 * TIMEOUT_S)  # and it stays offline while the impostor talks
            assert dev.health.state == Health.OFFLINE  # type: ignore[comparison-overlap]
            assert sent[0] > 100
        assert dev.reported.get("brightness_nits") != 42.0
        assert dev.session != "impostor"
        snapshot = dev.snapshot()
        assert snapshot["counters"]["rejected_datagrams"] >= 100
        assert dev._transport.counters.rejected == snapshot["counters"]["rejected_datagrams"]
        assert {host for host, _ in dev._rejected_sources} == {impostor_host}
    finally:
        await dev.stop()


async def test_configured_name_is_compared_as_its_address(sim: LedSimulator) -> None:
    """``localhost`` resolves to 127.0.0.1: the real replies count, an impostor does not."""
    dev = await driver_for(("localhost", sim.address[1]))
    try:
        assert dev._transport.peer == ("127.0.0.1", sim.address[1])
        async with impostor(("127.0.0.2", sim.address[1]), ("127.0.0.1", driver_port(dev))):
            await until(lambda: dev.counters["rejected_datagrams"] > 20, 2.0)
            await asyncio.sleep(2 * TIMEOUT_S)
            assert dev.health.state == Health.ONLINE
            dev.send_raw(FAULT_MUTE, (("i", 1),))
            await until(lambda: dev.health.state == Health.OFFLINE, TIMEOUT_S + 2.0)
    finally:
        await dev.stop()


async def test_unresolvable_processor_name_fails_with_the_name() -> None:
    dev = OscLedProcessor("led-main", ("no-such-processor.invalid", 9000))
    with pytest.raises(OSError, match="cannot resolve udp://no-such-processor.invalid:9000"):
        await dev.start()


def test_estop_does_not_report_freeze_applied_to_a_dead_wall() -> None:
    """The engine end to end: status shows the wall offline and the rejected count."""
    config = free_port_config(stage="impostor-stage",
                              safety={"estop_led_action": "freeze"})
    led_cfg = config.devices[0]
    assert isinstance(led_cfg, LedDeviceConfig)
    host, port_text = led_cfg.address.rsplit(":", 1)
    with StageHarness(config) as stage:
        assert stage.engine is not None
        dev = stage.engine.devices["led-main"]
        assert isinstance(dev, OscLedProcessor)
        sim_port = int(port_text)
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.2", sim_port))
        target = ("127.0.0.1", stage.loop.call(lambda: driver_port(dev)))
        try:
            stage.loop.call(lambda: dev.send_raw(FAULT_MUTE, (("i", 1),)))
            deadline = time.monotonic() + dev.timeout_s + 3.0
            while True:
                for packet in impostor_packets():
                    sock.sendto(packet, target)
                with EngineClient(config, ClientIdentity("op", "operator")) as client:
                    status = client.call("status")
                    (led,) = [d for d in status["devices"] if d["name"] == "led-main"]
                    if led["health"] == "offline":
                        break
                assert time.monotonic() < deadline, f"wall still {led['health']}"
                time.sleep(0.05)
            assert led["counters"]["rejected_datagrams"] > 0
            for packet in impostor_packets():
                sock.sendto(packet, target)
            with EngineClient(config, ClientIdentity("op", "operator")) as client:
                result = client.call("estop", {"reason": "impostor test"})
            assert result["led"]["led-main"] != "freeze", result
            assert "reconnect" in result["led"]["led-main"]
        finally:
            sock.close()
    assert host == "127.0.0.1"
