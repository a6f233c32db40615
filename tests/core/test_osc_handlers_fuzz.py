"""Hypothesis fuzz of the OSC handlers on both ends: anything in, counted, never a crash."""

from __future__ import annotations

import asyncio
import struct
import time

from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.led import protocol as p
from drivers.led.driver import OscLedProcessor
from drivers.led.simulator import LedSimSettings, LedSimulator
from drivers.osc import encode_message

addresses = st.one_of(st.sampled_from(sorted(p.BY_ADDRESS) + [
    p.PRESET_RECALL, p.PRESET_SAVE, p.SUBSCRIBE, p.UNSUBSCRIBE, p.DUMP, p.SESSION,
    p.STATUS_PANELS, p.STATUS_TEMPERATURE, p.STATUS_ALERTS, p.STATUS_OUTPUT, p.STATUS_PRESET,
    p.ERROR, "/sim/fault/panels_offline", "/sim/fault/mute", "/sim/fault/nope"]),
    st.text(min_size=1, max_size=12).filter(lambda s: "\x00" not in s).map(lambda s: "/" + s))
args = st.lists(st.one_of(
    st.integers(-(2**31), 2**31 - 1).map(lambda v: ("i", v)),
    st.floats(width=32, allow_nan=False).map(lambda v: ("f", v)),
    st.text(max_size=12).filter(lambda s: "\x00" not in s).map(lambda v: ("s", v))),
    max_size=3)
messages = st.tuples(addresses, args).map(lambda m: encode_message(m[0], tuple(m[1])))


def _bundle(timetag: int, elements: list[bytes]) -> bytes:
    """OSC 1.0 layout: "#bundle", 64-bit NTP time tag, int32-sized elements."""
    return b"#bundle\x00" + struct.pack(">Q", timetag) + b"".join(
        struct.pack(">i", len(e)) + e for e in elements)


def _ntp_in(offset_s: float) -> int:
    t = time.time() + offset_s + 2_208_988_800
    return (int(t) << 32) | int((t % 1) * 2**32)


timetags = st.one_of(st.just(1), st.integers(0, 2**64 - 1),
                     st.floats(-100, 100).map(_ntp_in))  # immediate, anything, near now
bundles = st.recursive(
    st.tuples(timetags, st.lists(messages, max_size=3)).map(lambda b: _bundle(*b)),
    lambda inner: st.tuples(timetags, st.lists(st.one_of(messages, inner), max_size=3))
    .map(lambda b: _bundle(*b)), max_leaves=6)
packets = st.one_of(messages, bundles, st.binary(max_size=64))


@settings(max_examples=300, deadline=None)
@given(st.lists(packets, min_size=1, max_size=8))
def test_simulator_survives_anything(datagrams: list[bytes]) -> None:
    async def scenario() -> None:
        sim = LedSimulator(LedSimSettings(port=0, latency_ms=0))
        await sim.start()
        try:
            for data in datagrams:
                sim._datagram(data, ("127.0.0.1", 9))
            assert sim.counters.received == len(datagrams)
            assert sim.held_bundles <= sim.settings.max_held_bundles
            for key, value in sim.values.items():  # state stays valid whatever came in
                assert p.PARAMS[key].validate(value) == value
            assert sim.values["brightness_nits"] <= sim.settings.max_brightness_nits
        finally:
            await sim.stop()

    asyncio.run(scenario())


@settings(max_examples=300, deadline=None)
@given(st.lists(packets, min_size=1, max_size=8))
def test_driver_survives_anything(datagrams: list[bytes]) -> None:
    async def scenario() -> None:
        dev = OscLedProcessor("led-main", ("127.0.0.1", 9))
        dev._connected.set()  # as if subscribed, so every handler path is reachable
        for data in datagrams:
            dev._datagram(data)
        for key in p.PARAMS:
            if key in dev.reported:
                p.PARAMS[key].validate(dev.reported[key])
        await dev._close()  # held bundles are dropped with the link

    asyncio.run(scenario())
