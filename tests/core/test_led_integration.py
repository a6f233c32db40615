"""Production LED driver against the simulator over loopback UDP."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Callable

import pytest

from drivers.device import Backoff, DeviceEvent, Health
from drivers.led.driver import OscLedProcessor
from drivers.led.simulator import ERROR_REPLIES_PER_S, LedSimSettings, LedSimulator
from drivers.osc import encode_message
from tests.conftest import require_tool


async def until(predicate: Callable[[], bool], timeout: float = 2.0) -> float:
    """Wait for predicate; returns seconds taken, fails the test on timeout."""
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(0.01)
    return time.monotonic() - start


@pytest.fixture
async def sim() -> AsyncIterator[LedSimulator]:
    s = LedSimulator(LedSimSettings(port=0, latency_ms=1.0, ramp_nits_per_s=4000))
    await s.start()
    yield s
    await s.stop()


@pytest.fixture
async def led(sim: LedSimulator) -> AsyncIterator[OscLedProcessor]:
    dev = OscLedProcessor("led-main", sim.address, timeout_s=0.6, keepalive_s=0.2,
                          backoff=Backoff(initial_s=0.05, max_s=0.3))
    await dev.start()
    assert await dev.wait_online(2.0)
    yield dev
    await dev.stop()


async def test_set_reaches_simulator_and_reports_back(sim: LedSimulator,
                                                      led: OscLedProcessor) -> None:
    await led.set("colour_temperature_k", 3200)
    await until(lambda: sim.values["colour_temperature_k"] == 3200)
    await until(lambda: led.reported.get("colour_temperature_k") == 3200)
    await led.set("test_pattern", "grid")
    await led.set("blackout", True)
    await until(lambda: led.reported.get("blackout") is True)
    await until(lambda: led.reported.get("brightness_output_nits") == 0.0)
    assert sim.values["test_pattern"] == "grid"


async def test_brightness_ramps_instead_of_jumping(sim: LedSimulator,
                                                   led: OscLedProcessor) -> None:
    outputs: list[float] = []
    led.subscribe(lambda e: outputs.append(e.data["brightness_output_nits"])
                  if e.kind == "delta" and "brightness_output_nits" in e.data else None)
    await led.set("brightness_nits", 200.0)  # from 1000: 800 nits at 4000 nits/s = 0.2 s
    await until(lambda: led.reported.get("brightness_output_nits") == 200.0)
    intermediate = [v for v in outputs if 200.0 < v < 1000.0]
    assert intermediate, f"no intermediate output values seen: {outputs}"
    assert led.reported["brightness_nits"] == 200.0


async def test_invalid_command_sends_nothing(led: OscLedProcessor) -> None:
    sent = led.counters["commands_sent"]
    with pytest.raises(ValueError, match="setting colour_temperature_k to 1500"):
        await led.set("colour_temperature_k", 1500)
    assert led.counters["commands_sent"] == sent
    assert "colour_temperature_k" not in led.desired


async def test_simulator_rejects_out_of_range_from_other_clients(sim: LedSimulator) -> None:
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol,
                                                       local_addr=("127.0.0.1", 0))
    try:
        transport.sendto(encode_message("/led/brightness", (("f", 99999.0),)), sim.address)
        transport.sendto(encode_message("/led/colour_temperature", (("s", "warm"),)),
                         sim.address)
        await until(lambda: sim.counters.rejected == 2)
        assert sim.values["brightness_nits"] == 1000.0
    finally:
        transport.close()


async def test_malformed_osc_counted_and_ignored(sim: LedSimulator,
                                                 led: OscLedProcessor) -> None:
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol,
                                                       local_addr=("127.0.0.1", 0))
    try:
        for junk in (b"", b"\x00\x01garbage", b"/led/brightness\x00,f\x00\x00\x01", b"#bundle"):
            transport.sendto(junk, sim.address)
        await until(lambda: sim.counters.malformed >= 3)
    finally:
        transport.close()
    # still alive and serving
    await led.set("gamma", 2.2)
    await until(lambda: sim.values["gamma"] == 2.2)
    assert led.health.state == Health.ONLINE


async def test_driver_counts_malformed_replies(led: OscLedProcessor) -> None:
    led._datagram(b"not osc at all")
    led._datagram(encode_message("/led/colour_temperature", (("s", "hot"),)))
    assert led.counters["malformed"] == 1
    assert led.counters["bad_reports"] == 1


async def test_restart_reconnects_and_reapplies_within_2s(sim: LedSimulator,
                                                          led: OscLedProcessor) -> None:
    await led.set("brightness_nits", 700.0)
    await led.set("colour_temperature_k", 4300)
    await until(lambda: sim.values["colour_temperature_k"] == 4300)
    host, port = sim.address
    await sim.stop()
    await until(lambda: led.health.state == Health.OFFLINE, timeout=3.0)
    assert "no reply" in led.health.reason
    fresh = LedSimulator(LedSimSettings(host=host, port=port, latency_ms=1.0))
    await fresh.start()
    try:
        assert fresh.values["colour_temperature_k"] == 6500  # factory state after a restart
        took = await until(lambda: fresh.values["colour_temperature_k"] == 4300
                           and fresh.values["brightness_nits"] == 700.0, timeout=2.0)
        assert took < 2.0
        assert led.counters["reapplies"] >= 1
        await until(lambda: led.health.state == Health.ONLINE)
    finally:
        await fresh.stop()


async def test_fast_restart_detected_by_session(sim: LedSimulator,
                                                led: OscLedProcessor) -> None:
    await led.set("gamma", 2.6)
    await until(lambda: sim.values["gamma"] == 2.6)
    host, port = sim.address
    await sim.stop()
    fresh = LedSimulator(LedSimSettings(host=host, port=port, latency_ms=1.0))
    await fresh.start()  # back before the link timeout: only the session id tells
    try:
        await until(lambda: fresh.values["gamma"] == 2.6, timeout=2.0)
    finally:
        await fresh.stop()


async def test_panels_fault_degrades_with_reason(sim: LedSimulator,
                                                 led: OscLedProcessor) -> None:
    events: list[DeviceEvent] = []
    led.subscribe(events.append)
    led.send_raw("/sim/fault/panels_offline", (("i", 12),))
    await until(lambda: led.health.state == Health.DEGRADED)
    assert "12 of 240 panels offline" in led.health.reason
    assert any(e.kind == "health" for e in events)
    led.send_raw("/sim/fault/panels_offline", (("i", 0),))
    await until(lambda: led.health.state == Health.ONLINE)


async def test_oscsend_change_shows_in_reported_within_1s(sim: LedSimulator,
                                                          led: OscLedProcessor) -> None:
    oscsend = require_tool("oscsend")
    await led.set("brightness_nits", 1200.0)
    await until(lambda: led.reported.get("brightness_nits") == 1200.0)
    host, port = sim.address
    start = time.monotonic()
    proc = await asyncio.create_subprocess_exec(oscsend, host, str(port), "/led/brightness",
                                                "f", "800")
    assert await proc.wait() == 0
    await until(lambda: led.reported.get("brightness_nits") == 800.0, timeout=1.0)
    assert time.monotonic() - start < 1.0
    proc = await asyncio.create_subprocess_exec(oscsend, host, str(port),
                                                "/led/colour_temperature", "i", "3200")
    assert await proc.wait() == 0
    await until(lambda: led.reported.get("colour_temperature_k") == 3200, timeout=1.0)
    # while connected the engine does not fight the other controller ...
    await asyncio.sleep(0.8)
    assert sim.values["brightness_nits"] == 800.0
    assert led.desired["brightness_nits"] == 1200.0  # ... but it remembers its own intent


def test_oscsend_rejected_value_counted() -> None:
    oscsend = require_tool("oscsend")

    async def scenario() -> None:
        sim = LedSimulator(LedSimSettings(port=0, latency_ms=0))
        await sim.start()
        try:
            host, port = sim.address
            proc = await asyncio.create_subprocess_exec(oscsend, host, str(port),
                                                        "/led/preset/recall", "i", "500")
            assert await proc.wait() == 0
            await until(lambda: sim.counters.rejected == 1)
            proc = await asyncio.create_subprocess_exec(oscsend, host, str(port),
                                                        "/led/preset/recall", "i", "2")
            assert await proc.wait() == 0
            await until(lambda: sim.values["colour_temperature_k"] == 3200)
        finally:
            await sim.stop()

    asyncio.run(scenario())


def test_simulator_runs_standalone_as_a_process() -> None:
    """`python -m drivers.led.simulator` serves the protocol to a plain UDP client."""
    import socket
    import sys

    from drivers.osc import decode_packet

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "drivers.led.simulator", "--listen",
                             f"127.0.0.1:{port}"], stderr=subprocess.DEVNULL)
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
            client.settimeout(0.2)
            deadline = time.monotonic() + 10
            while True:
                client.sendto(encode_message("/led/dump"), ("127.0.0.1", port))
                try:
                    data = client.recv(2048)
                    break
                except (TimeoutError, ConnectionRefusedError):
                    assert time.monotonic() < deadline, "simulator never answered"
            assert decode_packet(data)[0].address == "/led/session"
    finally:
        proc.terminate()
        proc.wait(5)


async def test_a_garbage_flood_gets_a_bounded_number_of_error_replies(sim: LedSimulator) -> None:
    """/led/error answers are capped per sender: a spoofed flood is not amplified."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setblocking(False)
    sock.bind(("127.0.0.1", 0))
    try:
        for _ in range(200):
            sock.sendto(b"\x00garbage", sim.address)
        await until(lambda: sim.counters.rejected >= 200)
        replies = 0
        while True:
            try:
                sock.recv(2048)
                replies += 1
            except BlockingIOError:
                break
        assert replies == ERROR_REPLIES_PER_S  # the rest counted, not sent
        assert sim.counters.errors_unanswered == 200 - ERROR_REPLIES_PER_S
    finally:
        sock.close()
