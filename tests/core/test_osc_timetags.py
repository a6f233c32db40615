"""OSC 1.0 bundles and time tags, and type tags, against data built from the specification.

Every datagram here is built byte by byte from the OSC 1.0 layout (``#bundle``, a 64-bit NTP
time tag: seconds since 1900-01-01 and a 32-bit fraction, then int32-sized elements), or by
liblo (``oscsend``, and the library itself through ctypes for bundles: a third-party sender
with its own NTP clock); none comes from our own encoder. The simulator is
reached over real loopback UDP; replies are read from the socket.

Timing assertions are orderings and generous bounds ("not yet at +100 ms", "applied by
+800 ms"), never speed.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import struct
import subprocess
import time
from collections.abc import AsyncIterator, Callable

import pytest

from drivers.led.driver import OscLedProcessor
from drivers.led.simulator import LedSimSettings, LedSimulator
from drivers.osc import (
    IMMEDIATELY,
    OscBundle,
    OscDecodeError,
    OscMessage,
    OscTimingError,
    decode_datagram,
    ntp_to_unix,
    schedule,
    unix_to_ntp,
)
from tests.conftest import IN_CI, require_tool

NTP_EPOCH_TO_UNIX_S = 2_208_988_800  # 70 years, 17 of them leap years, in seconds


# ---- the OSC 1.0 byte layout, by hand ----------------------------------------------------------


def osc_string(text: str) -> bytes:
    raw = text.encode("ascii") + b"\x00"
    return raw + b"\x00" * (-len(raw) % 4)


def msg(address: str, tags: str, *payload: bytes) -> bytes:
    return osc_string(address) + osc_string("," + tags) + b"".join(payload)


def i32(value: int) -> bytes:
    return struct.pack(">i", value)


def f32(value: float) -> bytes:
    return struct.pack(">f", value)


def ntp(unix_s: float) -> bytes:
    seconds = int(unix_s) + NTP_EPOCH_TO_UNIX_S
    fraction = int((unix_s - int(unix_s)) * 2**32)
    return struct.pack(">II", seconds, fraction)


IMMEDIATE = struct.pack(">II", 0, 1)  # 63 zero bits and a one


def bundle(timetag: bytes, *elements: bytes) -> bytes:
    return b"#bundle\x00" + timetag + b"".join(struct.pack(">i", len(e)) + e for e in elements)


def brightness(nits: float) -> bytes:
    return msg("/led/brightness", "f", f32(nits))


def gamma(value: float) -> bytes:
    return msg("/led/gamma", "f", f32(value))


# ---- pure codec -------------------------------------------------------------------------------


def test_time_tag_known_values() -> None:
    assert ntp_to_unix(NTP_EPOCH_TO_UNIX_S << 32) == 0.0
    assert ntp_to_unix((NTP_EPOCH_TO_UNIX_S + 10) << 32 | 0x8000_0000) == 10.5
    assert unix_to_ntp(10.5) == (NTP_EPOCH_TO_UNIX_S + 10) << 32 | 0x8000_0000
    (raw,) = struct.unpack(">Q", IMMEDIATE)
    assert raw == IMMEDIATELY == 1


def test_decode_hand_built_nested_bundle() -> None:
    at = 1_900_000_000.25
    data = bundle(ntp(at), brightness(700), bundle(IMMEDIATE, msg("/led/preset/recall", "i",
                                                                  i32(2))))
    packet = decode_datagram(data)
    assert isinstance(packet, OscBundle)
    assert ntp_to_unix(packet.timetag) == pytest.approx(at, abs=1e-6)
    first, inner = packet.elements
    assert first == OscMessage("/led/brightness", (700.0,), "f")
    assert isinstance(inner, OscBundle) and inner.timetag == IMMEDIATELY
    assert inner.elements == (OscMessage("/led/preset/recall", (2,), "i"),)


@pytest.mark.parametrize("data,why", [
    (b"#bundle\x00" + IMMEDIATE + i32(6) + b"/a\x00\x00,\x00\x00\x00", "multiple of 4"),
    (b"#bundle\x00" + IMMEDIATE + i32(64) + brightness(1), "within"),
    (b"#bundle\x00" + IMMEDIATE + i32(0), "positive"),
    (b"#bundle\x00" + b"\x00" * 4, "no time tag"),
    (msg("/led/brightness", "f"), "needs 4 bytes"),
    (msg("/led/brightness", "f", f32(1), f32(2)), "need"),
    (b"/led/brightness\x00,f\x00x" + f32(1), "padding"),
    (msg("/led/test_pattern", "N"), "unsupported OSC type tag"),
])
def test_decode_refuses_what_the_layout_forbids(data: bytes, why: str) -> None:
    with pytest.raises(OscDecodeError, match=why):
        decode_datagram(data)


def test_decode_error_names_the_address_or_bundle() -> None:
    with pytest.raises(OscDecodeError) as info:
        decode_datagram(msg("/led/test_pattern", "N"))
    assert info.value.address == "/led/test_pattern"
    with pytest.raises(OscDecodeError) as info:
        decode_datagram(bundle(IMMEDIATE, msg("/led/test_pattern", "N")))
    assert info.value.address == "#bundle"


def test_schedule_immediate_past_future_and_too_far() -> None:
    now = 1_900_000_000.0
    (due,) = schedule(decode_datagram(bundle(IMMEDIATE, gamma(2.2))), now, 60)
    assert due.at_unix_s is None
    (due,) = schedule(decode_datagram(bundle(ntp(now - 10), gamma(2.2))), now, 60)
    assert due.at_unix_s is None
    (due,) = schedule(decode_datagram(bundle(ntp(now + 0.3), gamma(2.2))), now, 60)
    assert due.at_unix_s == pytest.approx(now + 0.3, abs=1e-6)
    with pytest.raises(OscTimingError, match="75.0 s ahead"):
        schedule(decode_datagram(bundle(ntp(now + 75), gamma(2.2))), now, 60)


def test_schedule_nested_bundles() -> None:
    now = 1_900_000_000.0
    data = bundle(ntp(now + 1), gamma(2.2), bundle(ntp(now + 2), gamma(2.6)),
                  bundle(IMMEDIATE, gamma(3.0)), gamma(1.8))
    parts = schedule(decode_datagram(data), now, 60)
    assert [(round(p.at_unix_s - now, 3) if p.at_unix_s else None,
             [m.args[0] for m in p.messages]) for p in parts] == [
        (1.0, [pytest.approx(2.2)]), (2.0, [pytest.approx(2.6)]),
        (1.0, [3.0]), (1.0, [pytest.approx(1.8)])]
    # An enclosed bundle earlier than its enclosing one breaks OSC 1.0's rule: refused whole.
    with pytest.raises(OscTimingError, match="earlier than its enclosing"):
        schedule(decode_datagram(bundle(ntp(now + 2), gamma(2.2),
                                        bundle(ntp(now + 1), gamma(2.6)))), now, 60)
    # Far ahead inside: the whole datagram is refused, the outer part included.
    with pytest.raises(OscTimingError, match="ahead"):
        schedule(decode_datagram(bundle(IMMEDIATE, gamma(2.2),
                                        bundle(ntp(now + 90), gamma(2.6)))), now, 60)


# ---- the simulator over loopback UDP ----------------------------------------------------------


class Client(asyncio.DatagramProtocol):
    """A plain UDP peer: sends bytes, keeps every decoded reply."""

    def __init__(self) -> None:
        self.replies: list[OscMessage] = []
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        packet = decode_datagram(data)
        assert isinstance(packet, OscMessage)
        self.replies.append(packet)

    def errors(self) -> list[tuple[object, ...]]:
        return [m.args for m in self.replies if m.address == "/led/error"]

    def pushes(self, address: str) -> list[tuple[object, ...]]:
        return [m.args for m in self.replies if m.address == address]


async def until(predicate: Callable[[], bool], timeout: float = 2.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"condition not met within {timeout} s"
        await asyncio.sleep(0.01)


@pytest.fixture
async def sim() -> AsyncIterator[LedSimulator]:
    s = LedSimulator(LedSimSettings(port=0, latency_ms=0.0, max_held_bundles=4))
    await s.start()
    yield s
    await s.stop()


@pytest.fixture
async def client(sim: LedSimulator) -> AsyncIterator[Client]:
    loop = asyncio.get_running_loop()
    transport, proto = await loop.create_datagram_endpoint(
        Client, local_addr=("127.0.0.1", 0), remote_addr=sim.address)
    yield proto
    transport.close()


def send(client: Client, data: bytes) -> None:
    assert client.transport is not None
    client.transport.sendto(data)


def record_applies(sim: LedSimulator) -> list[tuple[float, str, object]]:
    """Observe the real simulator: (wall time, key, value) of every setting it applies."""
    applied: list[tuple[float, str, object]] = []
    apply = sim._apply

    def recording(key: str, value: object) -> None:
        applied.append((time.time(), key, value))
        apply(key, value)

    sim._apply = recording  # type: ignore[method-assign]
    return applied


async def test_future_bundle_applies_at_its_time_not_before(sim: LedSimulator,
                                                           client: Client) -> None:
    applied = record_applies(sim)
    sent = time.time()
    send(client, bundle(ntp(sent + 0.3), brightness(700), msg("/led/colour_temperature", "i",
                                                              i32(3200))))
    send(client, brightness(800))  # a plain message sent after the bundle: applies first
    await until(lambda: sim.values["brightness_nits"] == 800.0)
    await asyncio.sleep(max(0.0, sent + 0.1 - time.time()))
    # The simulator runs on this event loop: nothing is applied between these two reads.
    now, brightness_now = time.time(), sim.values["brightness_nits"]
    if now < sent + 0.3:  # false only if this machine stalled for 200 ms
        assert brightness_now == 800.0, "applied before its time tag"
        assert sim.values["colour_temperature_k"] == 6500
        assert sim.held_bundles == 1
    assert sim.counters.bundles_held == 1
    await until(lambda: sim.values["brightness_nits"] == 700.0, timeout=sent + 0.8 - time.time())
    assert [(k, v) for _, k, v in applied] == [
        ("brightness_nits", 800.0), ("brightness_nits", 700.0), ("colour_temperature_k", 3200)]
    at_800, at_700, at_3200 = (t for t, _, _ in applied)
    assert at_800 < at_700
    assert at_700 >= sent + 0.3 - 0.002  # not before its time tag (clock granularity only)
    assert at_3200 == pytest.approx(at_700, abs=0.05)  # the bundle's messages together
    assert sim.held_bundles == 0 and client.errors() == []


async def test_immediate_and_past_time_tags_apply_at_once(sim: LedSimulator,
                                                          client: Client) -> None:
    send(client, bundle(IMMEDIATE, gamma(2.2)))
    await until(lambda: sim.values["gamma"] == 2.2)
    send(client, bundle(ntp(time.time() - 10), gamma(2.6)))  # late: applied, not discarded
    await until(lambda: sim.values["gamma"] == 2.6)
    assert sim.counters.bundles_held == 0 and sim.held_bundles == 0
    assert client.errors() == []


async def test_too_far_ahead_refused_with_error_and_counter(sim: LedSimulator,
                                                            client: Client) -> None:
    send(client, bundle(ntp(time.time() + 75), gamma(2.2)))
    await until(lambda: bool(client.errors()))
    ((address, why),) = client.errors()
    assert address == "#bundle" and "75" in str(why) and "60 s" in str(why)
    assert sim.counters.bundles_refused == 1 and sim.counters.rejected == 1
    assert sim.held_bundles == 0 and sim.values["gamma"] == 2.4


async def test_nested_bundles_apply_in_time_order(sim: LedSimulator, client: Client) -> None:
    send(client, msg("/led/subscribe", ""))  # pushes show the order changes were applied in
    await until(lambda: bool(client.pushes("/led/dump/end")))
    now = time.time()
    send(client, bundle(ntp(now + 0.2), gamma(2.2), bundle(ntp(now + 0.4), gamma(2.6))))
    await asyncio.sleep(max(0.0, now + 0.1 - time.time()))
    if time.time() < now + 0.2:  # false only if this machine stalled for 100 ms
        assert sim.values["gamma"] == 2.4 and sim.held_bundles == 2
    await until(lambda: sim.values["gamma"] == 2.6, timeout=now + 1.2 - time.time())
    await until(lambda: len(client.pushes("/led/gamma")) == 3)  # the pushes are in flight
    assert [round(float(str(v)), 3) for (v,) in client.pushes("/led/gamma")] == [2.4, 2.2, 2.6]


async def test_nested_bundle_earlier_than_enclosing_refused_whole(sim: LedSimulator,
                                                                  client: Client) -> None:
    now = time.time()
    send(client, bundle(ntp(now + 0.2), gamma(2.2), bundle(ntp(now - 5), gamma(2.6))))
    await until(lambda: bool(client.errors()))
    ((address, why),) = client.errors()
    assert address == "#bundle" and "earlier than its enclosing" in str(why)
    await asyncio.sleep(0.3)
    assert sim.values["gamma"] == 2.4 and sim.held_bundles == 0


async def test_hold_is_bounded_and_dropped_on_stop(sim: LedSimulator, client: Client) -> None:
    later = time.time() + 30
    for _ in range(6):  # max_held_bundles=4 in the fixture
        send(client, bundle(ntp(later), gamma(2.2)))
    await until(lambda: len(client.errors()) == 2)
    assert sim.held_bundles == 4 and sim.counters.bundles_refused == 2
    assert all(a == "#bundle" and "already wait" in str(w) for a, w in client.errors())
    await sim.stop()
    assert sim.held_bundles == 0


async def test_driver_applies_processor_bundles_at_their_time() -> None:
    dev = OscLedProcessor("led-main", ("127.0.0.1", 9))
    dev._connected.set()
    sent = time.time()
    dev._datagram(bundle(ntp(sent + 0.3), brightness(700)))
    dev._datagram(bundle(ntp(sent + 75), brightness(900)))
    await asyncio.sleep(max(0.0, sent + 0.1 - time.time()))
    if time.time() < sent + 0.3:  # false only if this machine stalled for 200 ms
        assert "brightness_nits" not in dev.reported
    await until(lambda: dev.reported.get("brightness_nits") == 700.0,
                timeout=sent + 0.8 - time.time())
    assert dev.counters["held_bundles"] == 1 and dev.counters["refused_bundles"] == 1
    await dev._close()


# ---- type tags, sent by liblo -----------------------------------------------------------------


def liblo(*argv: str) -> bytes:
    """The datagram liblo's oscsend builds for ``argv`` (written to stdout, not our encoder)."""
    oscsend = require_tool("oscsend")
    return subprocess.run([oscsend, "-", *argv], check=True, capture_output=True,
                          timeout=10).stdout


@pytest.mark.parametrize("argv,key,value", [
    (("/led/brightness", "i", "800"), "brightness_nits", 800.0),  # i for f: tolerated
    (("/led/test_pattern", "S", "grid"), "test_pattern", "grid"),  # symbol for string
    (("/led/blackout", "T"), "blackout", True),
    (("/led/colour_temperature", "i", "3200"), "colour_temperature_k", 3200),
])
async def test_liblo_type_tags_accepted(sim: LedSimulator, client: Client,
                                        argv: tuple[str, ...], key: str, value: object) -> None:
    send(client, liblo(*argv))
    await until(lambda: sim.values[key] == value)
    assert client.errors() == [] and sim.counters.rejected == 0


@pytest.mark.parametrize("argv,why", [
    (("/led/colour_temperature", "f", "5600"), "OSC type 'i', got 'f'"),
    (("/led/preset/recall", "f", "2"), "OSC type 'i', got 'f'"),
    (("/led/preset/save", "ii", "2", "3"), "exactly one 'i' argument"),
    (("/led/brightness", "d", "800"), "got 'd'"),
    (("/led/brightness", "s", "800"), "got 's'"),
    (("/led/test_pattern", "N"), "unsupported OSC type tag"),
    (("/led/subscribe", "f", "120"), "0 < ttl <= 60 s"),
    (("/led/subscribe", "s", "10"), "got 's'"),
])
async def test_liblo_type_tags_refused_with_error(sim: LedSimulator, client: Client,
                                                  argv: tuple[str, ...], why: str) -> None:
    before = sim.values
    send(client, liblo(*argv))
    await until(lambda: bool(client.errors()))
    ((address, reason),) = client.errors()
    assert address == argv[0] and why in str(reason)
    assert sim.counters.rejected == 1
    assert sim.values == before and sim.subscribers == {}


async def test_subscribe_ttl_in_range_accepted(sim: LedSimulator, client: Client) -> None:
    send(client, liblo("/led/subscribe", "i", "10"))  # i for the f ttl
    await until(lambda: bool(client.pushes("/led/session")))
    (expires,) = sim.subscribers.values()
    assert 9 < expires - time.monotonic() <= 10


async def test_oscsend_over_udp_f_for_i_counted(sim: LedSimulator) -> None:
    oscsend = require_tool("oscsend")
    host, port = sim.address
    proc = await asyncio.create_subprocess_exec(oscsend, host, str(port),
                                                "/led/colour_temperature", "f", "5600")
    assert await proc.wait() == 0
    await until(lambda: sim.counters.wrong_type == 1)
    assert sim.values["colour_temperature_k"] == 6500 and sim.counters.rejected == 1


# ---- bundles and time tags built by liblo (the C library behind oscsend) ----------------------


class LoTimetag(ctypes.Structure):
    """liblo's ``lo_timetag``: NTP seconds since 1900 and a 1/2^32 s fraction."""

    _fields_ = [("sec", ctypes.c_uint32), ("frac", ctypes.c_uint32)]


def _liblo() -> ctypes.CDLL:
    name = ctypes.util.find_library("lo")
    if name is None:
        message = "liblo is not installed (Debian: apt-get install liblo7)"
        if IN_CI:
            pytest.fail(f"CI=true: {message}")
        pytest.skip(message)
    lib = ctypes.CDLL(name)
    lib.lo_timetag_now.argtypes = [ctypes.POINTER(LoTimetag)]
    lib.lo_bundle_new.argtypes = [LoTimetag]
    lib.lo_bundle_new.restype = ctypes.c_void_p
    lib.lo_message_new.restype = ctypes.c_void_p
    lib.lo_message_add_float.argtypes = [ctypes.c_void_p, ctypes.c_float]
    lib.lo_message_add_int32.argtypes = [ctypes.c_void_p, ctypes.c_int32]
    lib.lo_bundle_add_message.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p]
    lib.lo_bundle_add_bundle.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
    lib.lo_bundle_length.argtypes = [ctypes.c_void_p]
    lib.lo_bundle_length.restype = ctypes.c_size_t
    lib.lo_bundle_serialise.argtypes = [ctypes.c_void_p, ctypes.c_void_p,
                                        ctypes.POINTER(ctypes.c_size_t)]
    lib.lo_bundle_serialise.restype = ctypes.c_void_p
    lib.lo_bundle_free_recursive.argtypes = [ctypes.c_void_p]
    return lib


def liblo_in(lib: ctypes.CDLL, seconds: float) -> LoTimetag:
    """liblo's own "now" (lo_timetag_now) plus ``seconds``."""
    now = LoTimetag()
    lib.lo_timetag_now(ctypes.byref(now))
    total = (now.sec << 32 | now.frac) + int(seconds * 2**32)
    return LoTimetag(total >> 32, total & 0xFFFF_FFFF)


def liblo_bundle(lib: ctypes.CDLL, timetag: LoTimetag, floats: dict[str, float],
                 inner: tuple[LoTimetag, dict[str, float]] | None = None) -> bytes:
    """A bundle serialised by liblo: ``/address f value`` messages, optionally one inside."""

    def build(tt: LoTimetag, messages: dict[str, float]) -> int:
        b = lib.lo_bundle_new(tt)
        for address, value in messages.items():
            m = lib.lo_message_new()
            lib.lo_message_add_float(m, value)
            lib.lo_bundle_add_message(b, address.encode(), m)
        return int(b)

    outer = build(timetag, floats)
    if inner is not None:
        lib.lo_bundle_add_bundle(outer, build(*inner))
    try:
        size = ctypes.c_size_t(lib.lo_bundle_length(outer))
        buffer = ctypes.create_string_buffer(size.value)
        lib.lo_bundle_serialise(outer, buffer, ctypes.byref(size))
        return buffer.raw[:size.value]
    finally:
        lib.lo_bundle_free_recursive(outer)


async def test_liblo_bundle_in_the_future_applies_at_its_time(sim: LedSimulator,
                                                              client: Client) -> None:
    lib = _liblo()
    applied = record_applies(sim)
    sent = time.time()
    send(client, liblo_bundle(lib, liblo_in(lib, 0.3), {"/led/gamma": 2.2},
                              inner=(liblo_in(lib, 0.4), {"/led/brightness": 700.0})))
    await until(lambda: sim.counters.bundles_held == 2)
    await until(lambda: sim.values["brightness_nits"] == 700.0, timeout=sent + 1.2 - time.time())
    assert [(k, v) for _, k, v in applied] == [("gamma", 2.2), ("brightness_nits", 700.0)]
    assert applied[0][0] >= sent + 0.3 - 0.002 and applied[1][0] >= sent + 0.4 - 0.002
    assert client.errors() == []


async def test_liblo_immediate_bundle_applies_at_once(sim: LedSimulator, client: Client) -> None:
    lib = _liblo()
    send(client, liblo_bundle(lib, LoTimetag(0, 1), {"/led/gamma": 2.6}))  # LO_TT_IMMEDIATE
    await until(lambda: sim.values["gamma"] == 2.6)
    assert sim.counters.bundles_held == 0 and client.errors() == []
