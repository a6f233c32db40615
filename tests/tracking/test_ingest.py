from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.tracking import freed, opentrackio, osc_pose
from drivers.tracking.freed import FreeDPacket
from drivers.tracking.ingest import TrackingIngest, open_udp_socket
from drivers.tracking.sample import TrackingSample

from .conftest import assert_no_stray_tasks

pytestmark = pytest.mark.usefixtures("no_leaks")


@pytest.fixture
def sender() -> Iterator[socket.socket]:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton("127.0.0.1"))
    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)
    yield s
    s.close()


async def wait_for(predicate, timeout: float = 2.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.005)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_freed_unicast_counts_bad_packets(sender: socket.socket) -> None:
    got: list[TrackingSample] = []
    async with TrackingIngest(
        "cam-a", "freed", got.append, port=0, host="127.0.0.1", nominal_rate_hz=50
    ) as ing:
        addr = ing.local_address
        good = [
            freed.encode(FreeDPacket(9, 30.0 + i, 0, 0, 1000.0 * i, 0, 0, i, i)) for i in range(3)
        ]
        bad_sum = bytearray(good[0])
        bad_sum[28] ^= 0xFF
        for d in (good[0], good[1][:20], b"\xd2" + good[1][1:], bytes(bad_sum), good[1], good[2]):
            sender.sendto(d, addr)
        await wait_for(lambda: len(got) == 3 and ing.stats.snapshot(0).error_count == 3)
        snap = ing.snapshot()
    assert snap.errors == {"length": 1, "type": 1, "checksum": 1}
    assert snap.received == 3
    assert [s.rotation_deg[0] for s in got] == [-30.0, -31.0, -32.0]
    assert got[2].position_m == (2.0, 0.0, 0.0) and got[0].camera_id == 9
    assert all(s.source == "cam-a" and s.protocol == "freed" for s in got)
    await assert_no_stray_tasks()


async def test_opentrackio_segmented_with_a_lost_segment(sender: socket.socket) -> None:
    got: list[TrackingSample] = []
    raw: list[bytes] = []
    ing = TrackingIngest(
        "ot",
        "opentrackio",
        got.append,
        port=0,
        host="127.0.0.1",
        reassembly_timeout_s=0.05,
        on_datagram=lambda d, a, t: raw.append(d),
    )
    await ing.start()
    try:
        builder = opentrackio.SampleBuilder(source_number=2)
        docs = [
            builder.build(position_m=(i, 0, 1), rotation_deg=(0, 0, 0), sample_time_s=1e9 + i)
            for i in range(3)
        ]
        for d in docs:
            d["custom"] = {"pad": "z" * 2500}
        grams = [
            opentrackio.encode_sample(d, sequence=3 * i, encoding="cbor", mtu=1200)  # 3 packets
            for i, d in enumerate(docs)
        ]
        assert all(len(g) == 3 for g in grams)
        del grams[1][1]  # sample 1 loses its middle segment
        for g in grams:
            for d in g:
                sender.sendto(d, ing.local_address)
        await wait_for(lambda: len(got) == 2)
        await asyncio.sleep(0.08)
        snap = ing.snapshot()
    finally:
        await ing.close()
    assert [s.sequence for s in got] == [0, 2] and got[1].position_m == (2.0, 0.0, 1.0)
    assert snap.errors == {"incomplete": 1} and snap.lost == 1
    assert len(raw) == 8
    await ing.close()  # idempotent


async def test_multicast_join_on_loopback_separates_groups(sender: socket.socket) -> None:
    port = free_port()
    got1: list[TrackingSample] = []
    got2: list[TrackingSample] = []
    g1, g2 = opentrackio.multicast_group(7), opentrackio.multicast_group(8)
    async with (
        TrackingIngest(
            "s7", "opentrackio", got1.append, port=port, multicast_group=g1, interface="127.0.0.1"
        ),
        TrackingIngest(
            "s8", "opentrackio", got2.append, port=port, multicast_group=g2, interface="127.0.0.1"
        ),
    ):
        b = opentrackio.SampleBuilder()
        for seq, group in ((0, g1), (1, g2), (2, g1)):
            doc = b.build(position_m=(seq, 0, 0), rotation_deg=(0, 0, 0), sample_time_s=5.0)
            for d in opentrackio.encode_sample(doc, sequence=seq):
                sender.sendto(d, (group, port))
        await wait_for(lambda: len(got1) == 2 and len(got2) == 1)
        await asyncio.sleep(0.02)
    assert [s.sequence for s in got1] == [0, 2] and [s.sequence for s in got2] == [1]


async def test_osc_and_callback_errors_never_escape(sender: socket.socket) -> None:
    calls: list[TrackingSample] = []

    def flaky(sample: TrackingSample) -> None:
        calls.append(sample)
        if len(calls) == 1:
            raise RuntimeError("subscriber bug")

    async with TrackingIngest("vive", "osc", flaky, port=0, host="127.0.0.1") as ing:
        for i in range(3):
            sender.sendto(
                osc_pose.encode(osc_pose.OscPose("any", i, 0, 0, 0, 0, 0)), ing.local_address
            )
        sender.sendto(b"garbage", ing.local_address)
        await wait_for(lambda: len(calls) == 3 and ing.stats.errors["payload"] == 1)
    assert ing.callback_errors == 1
    assert calls[2].source == "vive" and calls[2].position_m == (2.0, 0.0, 0.0)


def test_multicast_join_error_names_group() -> None:
    with pytest.raises(OSError, match="239.135.1.9"):
        open_udp_socket(free_port(), group="239.135.1.9", interface="192.0.2.123")


@pytest.mark.parametrize("protocol", ["freed", "opentrackio", "osc"])
@settings(max_examples=150, deadline=None)
@given(data=st.binary(max_size=64))
def test_fuzz_handle_datagram_never_raises(protocol: str, data: bytes) -> None:
    ing = TrackingIngest("f", protocol, lambda s: None)  # type: ignore[arg-type]
    prefix = {"freed": b"\xd1", "opentrackio": b"OTrk\x00\x01", "osc": b"/tracking/f/pose\x00"}
    for candidate in (data, prefix[protocol] + data):
        n = ing.handle_datagram(candidate, ("127.0.0.1", 1), 0.0)
        assert n in (0, 1)
    assert ing.stats.errors.get("internal", 0) == 0
