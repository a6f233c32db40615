"""OpenTrackIO segmentation against the spec's text and SMPTE's reference sender (camdkit).

Issue 13. The datagrams here are built by hand from the spec's header table (OpenTrackIO
1.0.1, "Packet Header"), not with our encoder:

    bits 0-31    Identifier        ASCII "OTrk"
    bits 32-39   Reserved          1 byte
    bits 40-47   Encoding          JSON 0x01, CBOR 0x02
    bits 48-63   Sequence number   "the OpenTrackIO packet's unique sequence number"
    bits 64-95   Segment offset    byte offset of this payload segment; 0 when single
    bit  96      Last segment flag 1 on the only or the last segment
    bits 97-111  Payload length    15 bits, this packet's payload
    bits 112-127 Checksum          Fletcher-16 mod 256 over header (less checksum) + payload

and segmented the way camdkit's ``opentrackio_sender.py`` does: payload chunks of
``OTRK_MTU - OTRK_HEADER_LENGTH`` = 1484 bytes at offsets 0, 1484, 2968..., each packet
with the next sequence number (``_increment_sequence_number()`` per segment, wrapping at
65535), the last one flagged.
"""

from __future__ import annotations

import asyncio
import io
import itertools
import json
import random
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.tracking import opentrackio as ot
from drivers.tracking.ingest import TrackingIngest
from drivers.tracking.inspect import decode_any
from drivers.tracking.sample import TrackingSample
from stagectl.engine.takes import FORMAT, export_opentrackio

from .conftest import assert_no_stray_tasks, example

REFERENCE_CHUNK = 1500 - 16  # camdkit: OTRK_MAX_PAYLOAD_SIZE = OTRK_MTU - OTRK_HEADER_LENGTH


def spec_fletcher16(data: bytes) -> int:
    """The spec's Fletcher-16 reference code (uint8_t sums, so mod 256)."""
    sum1 = sum2 = 0
    for byte in data:
        sum1 = (sum1 + byte) & 0xFF
        sum2 = (sum2 + sum1) & 0xFF
    return (sum2 << 8) | sum1


def spec_datagram(
    payload: bytes, *, sequence: int, offset: int, last: bool, encoding: int = 0x01
) -> bytes:
    """One datagram laid out field by field from the spec's header table."""
    head = (
        b"OTrk"  # bits 0-31 identifier
        + bytes([0x00])  # bits 32-39 reserved
        + bytes([encoding])  # bits 40-47 encoding
        + sequence.to_bytes(2, "big")  # bits 48-63 sequence number
        + offset.to_bytes(4, "big")  # bits 64-95 segment offset
        + ((int(last) << 15) | len(payload)).to_bytes(2, "big")  # bit 96 L, 97-111 length
    )
    return head + spec_fletcher16(head + payload).to_bytes(2, "big") + payload  # 112-127


def reference_segments(
    payload: bytes, first_sequence: int, *, encoding: int = 0x01, chunk: int = REFERENCE_CHUNK
) -> list[bytes]:
    """A payload cut as camdkit's sender cuts it: every segment its own sequence number."""
    return [
        spec_datagram(
            payload[off : off + chunk],
            sequence=(first_sequence + index) & 0xFFFF,
            offset=off,
            last=off + chunk >= len(payload),
            encoding=encoding,
        )
        for index, off in enumerate(range(0, len(payload), chunk))
    ]


def parse_spec_header(datagram: bytes) -> dict[str, Any]:
    """The header fields read by hand, bit ranges as in the spec's table."""
    word = int.from_bytes(datagram[12:14], "big")
    return {
        "identifier": datagram[0:4],
        "reserved": datagram[4],
        "encoding": datagram[5],
        "sequence": int.from_bytes(datagram[6:8], "big"),
        "offset": int.from_bytes(datagram[8:12], "big"),
        "last": bool(word >> 15),
        "length": word & 0x7FFF,
        "checksum": int.from_bytes(datagram[14:16], "big"),
        "payload": datagram[16:],
    }


def feed_all(r: ot.Reassembler, datagrams: list[bytes], now_s: float = 0.0, sender: Any = None
             ) -> list[ot.Reassembled]:
    out = []
    for d in datagrams:
        done = r.feed(ot.decode_packet(d), now_s, sender)
        if done is not None:
            out.append(done)
    return out


def json_like_camdkit(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc).encode("utf-8")  # the reference sender: json.dumps(...).encode()


# -- the reference's own examples, segmented by the reference's rule ---------------------


@pytest.mark.parametrize("name,segments", [("complete_static_example", 3),
                                           ("complete_dynamic_example", 2)])
def test_camdkit_complete_examples_split_like_the_reference_sender(
    name: str, segments: int
) -> None:
    doc = example(name)
    payload = json_like_camdkit(doc)
    grams = reference_segments(payload, 4242)
    assert len(grams) == segments
    heads = [parse_spec_header(g) for g in grams]
    assert [h["sequence"] for h in heads] == list(range(4242, 4242 + segments))
    assert [h["offset"] for h in heads] == [REFERENCE_CHUNK * i for i in range(segments)]
    assert [h["last"] for h in heads] == [False] * (segments - 1) + [True]
    r = ot.Reassembler()
    (done,) = feed_all(r, grams)
    assert done.sequence == 4242 and done.segments == segments
    assert ot.decode_payload(done.payload, done.encoding) == doc
    assert (r.completed, r.incomplete, r.duplicates, r.malformed, r.pending) == (1, 0, 0, 0, 0)


def test_camdkit_examples_in_cbor_and_back_to_back() -> None:
    docs = [example("complete_static_example"), example("complete_dynamic_example"),
            example("recommended_dynamic_example")]
    grams: list[bytes] = []
    seq = 65530  # the stream wraps inside the second sample
    for doc in docs:
        more = reference_segments(cbor2.dumps(doc), seq, encoding=0x02, chunk=700)
        grams += more
        seq += len(more)
    r = ot.Reassembler()
    out = feed_all(r, grams)
    assert [ot.decode_payload(d.payload, d.encoding) for d in out] == docs
    assert [d.sequence for d in out][0] == 65530 and r.pending_segments == 0


# -- numbering, wrap-around, reordering ----------------------------------------------------


def test_consecutive_samples_of_one_stream() -> None:
    payloads = [bytes([65 + i]) * n for i, n in enumerate((3000, 1484, 10, 4000, 1))]
    grams: list[bytes] = []
    firsts = []
    seq = 100
    for p in payloads:
        firsts.append(seq)
        more = reference_segments(p, seq)
        grams += more
        seq += len(more)
    r = ot.Reassembler()
    out = feed_all(r, grams)
    assert [d.payload for d in out] == payloads
    assert [d.sequence for d in out] == firsts
    assert [d.segments for d in out] == [3, 1, 1, 3, 1]


def test_wrap_around_inside_one_sample() -> None:
    payload = bytes(range(256)) * 20  # 5120 bytes: 4 segments, 65534, 65535, 0, 1
    grams = reference_segments(payload, 65534)
    assert [parse_spec_header(g)["sequence"] for g in grams] == [65534, 65535, 0, 1]
    for order in (grams, grams[::-1], [grams[2], grams[0], grams[3], grams[1]]):
        r = ot.Reassembler()
        (done,) = feed_all(r, order)
        assert done.payload == payload and done.sequence == 65534 and done.segments == 4


def test_any_order_within_a_sample() -> None:
    payload = b"".join(i.to_bytes(2, "big") for i in range(2500))  # 5000 bytes: 4 segments
    grams = reference_segments(payload, 9)
    for order in itertools.permutations(grams):
        r = ot.Reassembler()
        results = [r.feed(ot.decode_packet(g), 0.0) for g in order]
        assert all(x is None for x in results[:-1])
        assert results[-1] is not None and results[-1].payload == payload
        assert r.pending_segments == 0 and r.pending_bytes == 0


def test_reordering_across_samples_delivers_each_once() -> None:
    a, b = b"a" * 3000, b"b" * 2000
    ga = reference_segments(a, 10)  # 10, 11, 12
    gb = reference_segments(b, 13)  # 13, 14
    r = ot.Reassembler()
    out = feed_all(r, [ga[0], gb[1], ga[2], gb[0], ga[1]])
    assert [d.payload for d in out] == [b, a]


# -- loss, timeouts, bounded memory ----------------------------------------------------


def test_lost_middle_segment_counts_one_incomplete_sample_after_the_timeout() -> None:
    a, b = b"x" * 4000, b"y" * 2000
    ga = reference_segments(a, 10)  # 10, 11, 12: 11 is lost
    gb = reference_segments(b, 13)
    r = ot.Reassembler(timeout_s=0.1)
    assert feed_all(r, [ga[0], ga[2]], now_s=0.0) == []
    (done,) = feed_all(r, gb, now_s=0.02)
    assert done.payload == b
    assert r.pending == 1 and r.incomplete == 0
    assert r.expire(0.09) == 0
    assert r.expire(0.11) == 1
    assert r.incomplete == 1 and r.pending == 0 and r.pending_segments == 0
    # the lost segment turning up late does not start a sample of its own
    assert r.feed(ot.decode_packet(ga[1]), 0.12) is None
    assert r.late == 1 and r.pending_segments == 0
    assert r.expire(1.0) == 0 and r.incomplete == 1


@pytest.mark.parametrize("lost", [0, 3])
def test_lost_first_or_last_segment(lost: int) -> None:
    grams = reference_segments(b"z" * 6000, 500)  # 500..504
    r = ot.Reassembler(timeout_s=0.05)
    kept = [g for i, g in enumerate(grams) if i != lost]
    assert feed_all(r, kept) == []
    assert r.expire(0.1) == 1 and r.incomplete == 1
    assert r.feed(ot.decode_packet(grams[lost]), 0.11) is None
    assert r.late == 1 and r.pending_segments == 0


def test_a_long_lossy_stream_stays_bounded() -> None:
    r = ot.Reassembler(timeout_s=0.1)
    seq, delivered, most = 0, 0, 0
    for i in range(1000):
        grams = reference_segments(bytes([i % 251]) * 4000, seq)  # 3 segments
        seq = (seq + len(grams)) & 0xFFFF
        if i % 2:
            del grams[1]  # every other sample loses its middle segment
        delivered += len(feed_all(r, grams, now_s=i / 50))
        most = max(most, r.pending_segments)
    r.expire(1000 / 50 + 1)
    assert delivered == 500 and r.incomplete == 500
    assert most <= 2 * 6  # at most a timeout's worth (5-6 samples) of two segments each
    assert r.pending_segments == 0 and r.pending_bytes == 0


def test_bounds_per_sender_in_total_and_on_senders() -> None:
    r = ot.Reassembler(timeout_s=60.0, max_segments_per_sender=8, max_senders=3,
                       max_pending_bytes=20_000)
    rng = random.Random(1)
    for i in range(2000):
        sender = ("10.0.0.1", 1000 + rng.randrange(6))
        seq = rng.randrange(1 << 16)
        d = spec_datagram(b"q" * 1000, sequence=seq, offset=1000 * rng.randrange(1, 9),
                          last=False)
        r.feed(ot.decode_packet(d), i * 1e-3, sender)
        assert r.senders <= 3
        assert r.pending_bytes <= 20_000
        assert all(len(s.segments) <= 8 for s in r._senders.values())
    assert r.incomplete > 0 and r.completed == 0


def test_malformed_segments_are_counted_and_never_held() -> None:
    r = ot.Reassembler(max_sample_bytes=10_000)
    too_far = spec_datagram(b"a" * 10, sequence=1, offset=9_995, last=True)
    empty = spec_datagram(b"", sequence=2, offset=0, last=False)
    first = spec_datagram(b"b" * 10, sequence=3, offset=0, last=False)
    clash = spec_datagram(b"c" * 10, sequence=3, offset=10, last=False)  # same number, new data
    assert feed_all(r, [too_far, empty, first, clash]) == []
    assert r.malformed == 3 and r.pending_segments == 1


# -- senders, duplicates ---------------------------------------------------------------


def test_two_senders_interleaving_with_the_same_sequence_numbers() -> None:
    a = json_like_camdkit(example("complete_static_example"))
    b = json_like_camdkit(example("complete_dynamic_example")) * 2
    ga, gb = reference_segments(a, 0), reference_segments(b, 0)
    assert len(ga) == 3 and len(gb) == 4
    r = ot.Reassembler()
    out: list[tuple[Any, bytes]] = []
    for da, db in itertools.zip_longest(ga, gb):
        for d, who in ((db, "B"), (da, "A")):
            if d is not None:
                done = r.feed(ot.decode_packet(d), 0.0, sender=who)
                if done is not None:
                    out.append((who, done.payload))
    assert out == [("A", a), ("B", b)]
    assert r.pending_segments == 0 and r.malformed == 0


def test_duplicates_are_processed_once() -> None:
    payloads = [b"d" * 3500, b"e" * 20, b"f" * 1500]
    grams: list[bytes] = []
    seq = 7
    for p in payloads:
        more = reference_segments(p, seq)
        grams += more
        seq += len(more)
    doubled = [g for g in grams for _ in range(2)] + grams  # each twice, then all again
    r = ot.Reassembler()
    out = feed_all(r, doubled)
    assert [d.payload for d in out] == payloads
    assert r.duplicates == 2 * len(grams) and r.completed == 3


def test_a_reused_sequence_number_with_new_content_is_not_a_duplicate() -> None:
    r = ot.Reassembler()
    one = spec_datagram(b'{"a":1}', sequence=0, offset=0, last=True)
    restarted = spec_datagram(b'{"a":2}', sequence=0, offset=0, last=True)
    assert [d.payload for d in feed_all(r, [one, one, restarted])] == [b'{"a":1}', b'{"a":2}']
    # long after the duplicate window the same datagram is new again (2^16 datagrams later)
    assert r.feed(ot.decode_packet(one), 10.0) is not None


@settings(max_examples=60, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 5000), min_size=1, max_size=6),
    first=st.integers(0, 0xFFFF),
    seed=st.integers(0, 2**32 - 1),
    drop_pct=st.integers(0, 40),
    dup_pct=st.integers(0, 40),
)
def test_fuzz_streams_never_deliver_a_wrong_payload(
    sizes: list[int], first: int, seed: int, drop_pct: int, dup_pct: int
) -> None:
    rng = random.Random(seed)
    payloads = [bytes(rng.randrange(256) for _ in range(n)) for n in sizes]
    stream: list[bytes] = []
    seq = first
    for p in payloads:
        grams = reference_segments(p, seq, chunk=900)
        seq += len(grams)
        rng.shuffle(grams)  # any order within a sample
        for g in grams:
            if rng.randrange(100) < drop_pct:
                continue
            stream.append(g)
            if rng.randrange(100) < dup_pct:
                stream.append(g)
    r = ot.Reassembler(timeout_s=0.5)
    out = feed_all(r, stream)
    assert all(d.payload in payloads for d in out)
    assert len({d.sequence for d in out}) == len(out)  # nothing delivered twice
    r.expire(10.0)
    assert r.pending_segments == 0
    assert r.completed + r.incomplete <= len(payloads) + r.late


# -- our sender, read back by the spec's table and by the reference receiver's rules ---------


def test_our_segmenter_numbers_every_packet_and_wraps() -> None:
    doc = example("complete_static_example")
    seg = ot.Segmenter(mtu=1200, first_sequence=65534)
    stream = seg.encode(doc) + seg.encode(doc)
    heads = [parse_spec_header(g) for g in stream]
    n = len(stream) // 2
    assert n >= 3
    assert [h["sequence"] for h in heads] == [(65534 + i) & 0xFFFF for i in range(2 * n)]
    assert seg.next_sequence == (65534 + 2 * n) & 0xFFFF
    payload = ot.encode_payload(doc, "json")
    for half in (heads[:n], heads[n:]):
        offsets = list(itertools.accumulate([0] + [h["length"] for h in half[:-1]]))
        assert [h["offset"] for h in half] == offsets
        assert [h["last"] for h in half] == [False] * (n - 1) + [True]
        assert b"".join(h["payload"] for h in half) == payload
    for g, h in zip(stream, heads, strict=True):
        assert h["identifier"] == b"OTrk" and h["reserved"] == 0 and h["encoding"] == 0x01
        assert h["length"] == len(h["payload"])
        assert h["checksum"] == spec_fletcher16(g[:14] + h["payload"])
        assert len(g) + 28 <= 1200


class ReferenceReceiver:
    """The packet rules of camdkit's ``opentrackio_receiver.py`` ``_parse_packet``.

    It drops a packet whose sequence number equals the previous packet's, appends a
    segment only at the offset where its buffer ends, and parses on the last segment.
    """

    def __init__(self) -> None:
        self.prev_sequence = 0
        self.buffer = bytearray()
        self.samples: list[bytes] = []

    def packet(self, data: bytes) -> None:
        h = parse_spec_header(data)
        if h["sequence"] == self.prev_sequence:
            return  # "Duplicate packet"
        self.prev_sequence = h["sequence"]
        if spec_fletcher16(data[:14] + h["payload"]) != h["checksum"]:
            return
        if len(self.buffer) != h["offset"]:
            self.buffer.clear()
            return
        self.buffer.extend(h["payload"])
        if h["last"]:
            self.samples.append(bytes(self.buffer))
            self.buffer.clear()


def test_the_reference_receiver_gets_every_segmented_sample_we_send() -> None:
    builder = ot.SampleBuilder(static_interval_s=0.0)  # the static block every time
    seg = ot.Segmenter(mtu=600, first_sequence=1)  # the reference receiver starts at prev 0
    receiver = ReferenceReceiver()
    docs = []
    for i in range(8):
        doc = builder.build(position_m=(i, 0, 0), rotation_deg=(0, 0, 0), sample_time_s=1e9 + i)
        docs.append(doc)
        grams = seg.encode(doc)
        assert len(grams) >= 2
        for g in grams:
            receiver.packet(g)
    assert [json.loads(s) for s in receiver.samples] == docs  # 8 of 8


# -- the live path: ingest over loopback, inspect ----------------------------------------


@pytest.fixture
def two_senders() -> Iterator[tuple[socket.socket, socket.socket]]:
    a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    yield a, b
    a.close()
    b.close()


async def _wait_for(predicate, timeout: float = 2.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.005)


@pytest.mark.usefixtures("no_leaks")
async def test_ingest_joins_reference_segments_from_two_interleaved_senders(
    two_senders: tuple[socket.socket, socket.socket],
) -> None:
    got: list[TrackingSample] = []
    static, dynamic = example("complete_static_example"), example("complete_dynamic_example")
    async with TrackingIngest("ot", "opentrackio", got.append, port=0, host="127.0.0.1",
                              reassembly_timeout_s=0.5) as ing:
        ga = reference_segments(json_like_camdkit(static), 65535)  # wraps: 65535, 0, 1
        gb = reference_segments(json_like_camdkit(dynamic), 0)  # 0, 1: same numbers as A
        a, b = two_senders
        for da, db in itertools.zip_longest(ga, gb):
            for sock, d in ((a, da), (b, db)):
                if d is not None:
                    sock.sendto(d, ing.local_address)
                    sock.sendto(d, ing.local_address)  # every packet twice
        await _wait_for(lambda: len(got) == 2 and ing.reassembler.duplicates == 5)
        snap = ing.snapshot()
    assert [s.sequence for s in got] == [0, 0]  # both examples' timing.sequenceNumber
    assert got[0].position_m == got[1].position_m  # the same transforms in both
    assert [s.zoom_raw for s in got] == [3000, 3000]
    assert snap.errors == {"duplicate": 5} and snap.received == 2
    await assert_no_stray_tasks()


def test_ingest_counts_incomplete_and_late_segments() -> None:
    got: list[TrackingSample] = []
    ing = TrackingIngest("ot", "opentrackio", got.append, reassembly_timeout_s=0.1)
    grams = reference_segments(json_like_camdkit(example("complete_static_example")), 40)
    addr = ("192.0.2.1", 5000)
    for g in (grams[0], grams[2]):
        assert ing.handle_datagram(g, addr, 1.0) == 0
    snap = ing.snapshot(1.2)
    assert snap.errors == {"incomplete": 1}
    assert ing.handle_datagram(grams[1], addr, 1.25) == 0
    assert ing.snapshot(1.3).errors == {"incomplete": 1, "late_segment": 1}
    assert got == []


def test_inspect_shows_a_segment_as_a_segment() -> None:
    grams = reference_segments(json_like_camdkit(example("complete_dynamic_example")), 77)
    first, last = decode_any(grams[0]), decode_any(grams[1])
    assert first["segmented"] and first["sample"] is None and first["sequence"] == 77
    assert last["segmented"] and last["last_segment"] and last["sequence"] == 78
    whole = decode_any(spec_datagram(b'{"sourceNumber": 1}', sequence=5, offset=0, last=True))
    assert not whole["segmented"] and whole["sample"] == {"sourceNumber": 1}


# -- take export: raw encoders and the tracker, not "simulator" ------------------------------


def _take(path: Path, sources: dict[str, Any], records: list[dict[str, Any]]) -> Path:
    header = {"type": "header", "format": FORMAT, "stage": "t", "slate": "A1", "take": 1,
              "started_utc": "2031-05-04T00:00:00+00:00", "frame_rate": 25,
              "timezone": "Asia/Shanghai", "mono_to_wall_s": 1.9e9, "sources": sources}
    path.write_text("".join(json.dumps(r) + "\n" for r in [header, *records]), encoding="utf-8")
    return path


def _sample(source: str, protocol: str, i: int, **lens: Any) -> dict[str, Any]:
    return {"type": "sample", "source": source, "protocol": protocol, "sequence": i,
            "arrival_s": 0.04 * i, "timecode": f"00:00:00:{i:02d}",
            "position_m": [1.0, 2.0, 3.0], "rotation_deg": [10.0, 5.0, 0.0], **lens}


def test_take_export_keeps_raw_encoders_and_the_configured_tracker(
    tmp_path: Path, validator: Any
) -> None:
    path = _take(tmp_path / "a.take.jsonl",
                 {"cam-a": {"protocol": "freed", "port": 8001, "freed_profile": "mosys"}},
                 [_sample("cam-a", "freed", i, zoom_raw=0x123456 + i, focus_raw=0xFFFFFF,
                          zoom_norm=None, focus_norm=None) for i in range(3)])
    buf = io.StringIO()
    assert export_opentrackio(path, buf) == 3
    docs = [json.loads(line) for line in buf.getvalue().splitlines()]
    for doc in docs:
        validator.validate(doc)
    assert [d["lens"]["rawEncoders"] for d in docs] == [
        {"zoom": 0x123456 + i, "focus": 0xFFFFFF} for i in range(3)]
    assert docs[0]["static"]["tracker"] == {"make": "Mo-Sys", "model": "FreeD D1 (mosys profile)"}
    assert "simulator" not in buf.getvalue()


def test_take_export_names_an_opentrackio_tracker_as_it_named_itself(
    tmp_path: Path, validator: Any
) -> None:
    static = example("complete_static_example")
    raws = [{"type": "raw", "source": "ot", "arrival_s": 0.001 * k, "hex": g.hex()}
            for k, g in enumerate(reference_segments(json_like_camdkit(static), 65535))]
    path = _take(tmp_path / "b.take.jsonl", {"ot": {"protocol": "opentrackio", "port": 55555},
                                             "old": {"protocol": "freed", "port": 40000}},
                 [*raws, _sample("ot", "opentrackio", 0, zoom_raw=3000, zoom_norm=0.5),
                  _sample("old", "freed", 0, zoom_raw=1, focus_raw=2)])
    buf = io.StringIO()
    assert export_opentrackio(path, buf) == 2
    ot_doc, old_doc = (json.loads(line) for line in buf.getvalue().splitlines())
    validator.validate(ot_doc)
    validator.validate(old_doc)
    assert ot_doc["static"]["tracker"] == static["static"]["tracker"]
    assert ot_doc["lens"]["rawEncoders"] == {"zoom": 3000}
    assert old_doc["static"]["tracker"] == {"model": "FreeD D1"}  # a header without a profile


def _bound(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def test_cli_tracking_inspect_shows_every_segmented_sample() -> None:
    import subprocess
    import sys

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    proc = subprocess.Popen(
        [sys.executable, "-m", "stagectl", "tracking", "inspect", "--port", str(port),
         "--protocol", "opentrackio", "--host", "127.0.0.1", "--json", "--duration", "4"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while not _bound(port):
            assert proc.poll() is None and time.monotonic() < deadline, "inspect did not start"
            time.sleep(0.05)
        doc = example("complete_static_example")
        seq = 65500  # the datagram counter wraps during the stream
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
            for i in range(48):
                doc["timing"]["sequenceNumber"] = 1000 + i
                grams = reference_segments(json_like_camdkit(doc), seq)
                seq += len(grams)
                for g in grams:
                    tx.sendto(g, ("127.0.0.1", port))
                time.sleep(0.002)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    seen = [json.loads(line)["sequence"] for line in out.splitlines() if line.strip()]
    assert sorted(seen) == list(range(1000, 1048))  # 48 of 48


def test_take_manager_records_the_freed_profile(tmp_path: Path) -> None:
    from drivers.tracking.device import TrackingSource
    from drivers.tracking.timecode import RATES, StageClock
    from stagectl.engine.takes import TakeManager, read_take

    clock = StageClock(RATES["25"])
    sources = [TrackingSource("cam-a", "freed", clock, port=0, freed_profile="stype"),
               TrackingSource("ot", "opentrackio", clock, port=0)]
    manager = TakeManager("t", "Asia/Shanghai", 25.0, tmp_path, sources)
    info = manager.start("A1", 1)
    manager.stop()
    header, _ = read_take(Path(info["path"]))
    assert header["sources"] == {
        "cam-a": {"protocol": "freed", "port": 0, "freed_profile": "stype"},
        "ot": {"protocol": "opentrackio", "port": 0},
    }
