from __future__ import annotations

import json
from fractions import Fraction
from typing import Any

import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.tracking import opentrackio as ot
from drivers.tracking.sample import sample_from_opentrackio
from drivers.tracking.timecode import RATES, frames_to_timecode

from .conftest import example


def naive_fletcher(data: bytes) -> int:
    s1 = s2 = 0
    for b in data:
        s1 = (s1 + b) % 256
        s2 = (s2 + s1) % 256
    return s2 << 8 | s1


def test_fletcher_vectors() -> None:
    assert ot.fletcher16(b"abcde") == 0xC3EF  # mod 256 (mod 255 would give 0xC8F0)
    assert ot.fletcher16(b"") == 0
    blob = bytes(range(256)) * 7
    assert ot.fletcher16(blob) == naive_fletcher(blob)


@settings(max_examples=200)
@given(st.binary(max_size=2000), st.sampled_from([bytes, bytearray, memoryview]))
def test_fletcher_matches_the_definition(data: bytes, kind: Any) -> None:
    assert ot.fletcher16(kind(data)) == naive_fletcher(data)


@pytest.mark.parametrize("extra", [-1, 0, 1, 300])
def test_fletcher_at_and_past_the_largest_datagram(extra: int) -> None:
    # the weights table covers header + largest payload; past it the plain loop takes over
    size = ot.HEADER_LEN + ot.MAX_SEGMENT_PAYLOAD + 1 + extra
    data = bytes((i * 7 + 3) & 0xFF for i in range(size))
    assert ot.fletcher16(data) == naive_fletcher(data)


def test_header_layout() -> None:
    wire = ot.encode_packet(
        b"{}",
        encoding=ot.ENCODING_JSON,
        sequence=0x1234,
        segment_offset=0x01020304,
        last_segment=True,
    )
    assert wire[:4] == b"OTrk" and wire[4] == 0 and wire[5] == 0x01
    assert wire[6:8] == b"\x12\x34" and wire[8:12] == b"\x01\x02\x03\x04"
    assert wire[12:14] == b"\x80\x02"  # last-segment bit + length 2
    assert int.from_bytes(wire[14:16], "big") == naive_fletcher(wire[:14] + b"{}")
    pkt = ot.decode_packet(wire)
    assert (pkt.encoding, pkt.sequence, pkt.segment_offset, pkt.last_segment, pkt.payload) == (
        1,
        0x1234,
        0x01020304,
        True,
        b"{}",
    )
    not_last = ot.encode_packet(b"x", encoding=ot.ENCODING_CBOR, sequence=1, last_segment=False)
    assert not_last[12:14] == b"\x00\x01" and not_last[5] == 0x02


def test_decode_errors() -> None:
    good = ot.encode_packet(b'{"a":1}', encoding=1, sequence=5)
    with pytest.raises(ot.OpenTrackIOLengthError):
        ot.decode_packet(good[:15])
    with pytest.raises(ot.OpenTrackIOLengthError):
        ot.decode_packet(good + b"x")
    with pytest.raises(ot.OpenTrackIOMagicError):
        ot.decode_packet(b"OTrx" + good[4:])
    with pytest.raises(ot.OpenTrackIOEncodingError):
        ot.decode_packet(good[:5] + b"\x03" + good[6:])
    bad = bytearray(good)
    bad[-1] ^= 0x10
    with pytest.raises(ot.OpenTrackIOChecksumError) as info:
        ot.decode_packet(bytes(bad))
    assert info.value.packet.sequence == 5
    with pytest.raises(ot.OpenTrackIOPayloadError):
        ot.decode_payload(b"[1,2]", ot.ENCODING_JSON)
    with pytest.raises(ot.OpenTrackIOPayloadError):
        ot.decode_payload(b"\xff\xfe", ot.ENCODING_CBOR)


@pytest.mark.parametrize(
    "payload",
    [b'{"a":NaN}', b'{"a":Infinity}', b'{"a":-Infinity}', b'{"a":"\xff"}', b'{"a":1', b""],
)
def test_json_payload_outside_rfc8259_is_refused(payload: bytes) -> None:
    # NaN/Infinity are not JSON (RFC 8259, which OpenTrackIO's JSON encoding is); nor is
    # text that is not UTF-8
    with pytest.raises(ot.OpenTrackIOPayloadError):
        ot.decode_payload(payload, ot.ENCODING_JSON)


@settings(max_examples=300)
@given(st.binary(max_size=80))
def test_fuzz_packet_and_payload(data: bytes) -> None:
    for candidate in (data, b"OTrk\x00\x01" + data, b"OTrk\x00\x02" + data):
        try:
            pkt = ot.decode_packet(candidate, verify=False)
        except ot.OpenTrackIOError:
            continue
        try:
            ot.decode_payload(pkt.payload, pkt.encoding)
        except ot.OpenTrackIOError:
            pass


@settings(max_examples=100)
@given(st.binary(max_size=40))
def test_fuzz_valid_frame_garbage_payload(payload: bytes) -> None:
    for enc in (ot.ENCODING_JSON, ot.ENCODING_CBOR):
        pkt = ot.decode_packet(ot.encode_packet(payload, encoding=enc, sequence=1))
        try:
            doc = ot.decode_payload(pkt.payload, pkt.encoding)
        except ot.OpenTrackIOError:
            continue
        assert isinstance(doc, dict)


def test_multicast_group() -> None:
    assert ot.multicast_group(1) == "239.135.1.1"
    assert ot.multicast_group(200) == "239.135.1.200"
    for bad in (0, 201, True):
        with pytest.raises(ValueError, match="1..200"):
            ot.multicast_group(bad)
    assert ot.DEFAULT_PORT == 55555


def _builder(**kw: Any) -> ot.SampleBuilder:
    return ot.SampleBuilder(
        source_number=3,
        sample_rate=Fraction(24000, 1001),
        static=ot.StaticInfo(
            camera_label="A",
            sensor_width_mm=36.0,
            sensor_height_mm=24.0,
            capture_rate=Fraction(24000, 1001),
            lens_make="Cooke",
            lens_model="S7",
            nominal_focal_length_mm=50.0,
        ),
        **kw,
    )


def _build(b: ot.SampleBuilder, t: float, frame: int = 0) -> dict[str, Any]:
    return b.build(
        position_m=(1.0, -4.5, 1.7),
        rotation_deg=(12.5, -3.0, 0.25),
        sample_time_s=t,
        timecode=frames_to_timecode(frame, RATES["29.97"]),
        focal_length_mm=35.0,
        focus_distance_m=2.5,
        zoom_norm=0.3,
        focus_norm=0.6,
        f_stop=2.8,
    )


def test_examples_validate_and_convert(validator: Any) -> None:
    for name in (
        "recommended_static_example",
        "recommended_dynamic_example",
        "complete_static_example",
        "complete_dynamic_example",
    ):
        doc = example(name)
        validator.validate(doc)
        s = sample_from_opentrackio(doc, source="ex", arrival_s=0.0)
        assert s.camera_id == 1
    simple = sample_from_opentrackio(
        example("recommended_dynamic_example"), source="ex", arrival_s=1.0
    )
    assert simple.position_m == (1.0, 2.0, 3.0) and simple.rotation_deg == (180.0, 90.0, 45.0)
    assert simple.focal_length_mm == 24.305 and simple.focus_distance_m == 10.0
    assert simple.zoom_norm == 0.3 and simple.focus_norm == 0.1
    assert simple.timecode == "01:02:03:04"
    full = sample_from_opentrackio(example("complete_dynamic_example"), source="ex", arrival_s=1.0)
    assert full.sequence == 0 and full.zoom_raw == 3000 and full.timecode == "01:02:03;04"


def test_every_sample_we_emit_validates(validator: Any) -> None:
    b = _builder()
    docs = [_build(b, 1_700_000_000.0 + i / 29.97, i) for i in range(130)]
    for doc in docs:
        validator.validate(doc)
        validator.validate(cbor2.loads(ot.encode_payload(doc, "cbor")))
    with_static = [i for i, d in enumerate(docs) if "static" in d]
    # ~every 2 s at 29.97: samples 0, 60, 120
    assert with_static == [0, 60, 120]
    assert docs[0]["static"]["camera"]["activeSensorPhysicalDimensions"] == {
        "height": 24.0,
        "width": 36.0,
    }
    assert docs[5]["timing"]["sampleRate"] == {"num": 24000, "denom": 1001}
    assert docs[5]["timing"]["timecode"]["dropFrame"] is True
    assert docs[5]["timing"]["sequenceNumber"] == 5
    assert docs[0]["sampleId"] != docs[1]["sampleId"]
    assert docs[0]["sourceId"] == docs[1]["sourceId"]
    minimal = ot.SampleBuilder().build(
        position_m=(0, 0, 0), rotation_deg=(0, 0, 0), sample_time_s=0.0
    )
    validator.validate(minimal)


def test_validator_catches_a_broken_sample(validator: Any) -> None:
    doc = _build(_builder(), 10.0)
    doc["lens"]["encoders"]["zoom"] = 1.5
    assert not validator.is_valid(doc)
    doc2 = _build(_builder(), 10.0)
    doc2["transform"] = doc2.pop("transforms")  # typo at top level: strict copy catches it
    assert not validator.is_valid(doc2)


def test_builder_rejects_invalid_values() -> None:
    b = _builder()
    with pytest.raises(ValueError, match="translation.x"):
        b.build(position_m=(float("nan"), 0, 0), rotation_deg=(0, 0, 0), sample_time_s=1.0)
    with pytest.raises(ValueError, match="encoders.zoom"):
        b.build(position_m=(0, 0, 0), rotation_deg=(0, 0, 0), sample_time_s=1.0, zoom_norm=2)
    with pytest.raises(ValueError, match="focusDistance"):
        b.build(
            position_m=(0, 0, 0), rotation_deg=(0, 0, 0), sample_time_s=1.0, focus_distance_m=0.0
        )


@pytest.mark.parametrize("encoding", ["json", "cbor"])
def test_segmentation_round_trip(encoding: ot.Encoding) -> None:
    doc = example("complete_dynamic_example")
    doc["custom"] = {"blob": "x" * 3000}  # forces several segments at MTU 1500
    datagrams = ot.encode_sample(doc, sequence=70000, encoding=encoding)
    assert len(datagrams) >= 3
    assert all(len(d) + ot.IPV4_UDP_OVERHEAD <= ot.DEFAULT_MTU for d in datagrams)
    pkts = [ot.decode_packet(d) for d in datagrams]
    assert [p.last_segment for p in pkts] == [False] * (len(pkts) - 1) + [True]
    # one sequence number per datagram (the spec: "the packet's unique sequence number")
    assert [p.sequence for p in pkts] == [(70000 + i) & 0xFFFF for i in range(len(pkts))]
    r = ot.Reassembler()
    results = [r.feed(p, 0.0) for p in reversed(pkts)]  # any order
    done = results[-1]
    assert done is not None and all(x is None for x in results[:-1])
    assert done.sequence == 70000 & 0xFFFF and done.segments == len(pkts)
    assert ot.decode_payload(done.payload, done.encoding) == doc
    assert r.completed == 1 and r.dropped == 0 and r.pending == 0


def test_lost_segment_drops_sample_whole() -> None:
    doc = {"custom": {"blob": "y" * 4000}}
    r = ot.Reassembler(timeout_s=0.05)
    sender = ot.Segmenter(mtu=1000)
    seg1 = [ot.decode_packet(d) for d in sender.encode(doc)]
    seg2 = [ot.decode_packet(d) for d in sender.encode(doc)]
    assert seg2[0].sequence == seg1[-1].sequence + 1
    for p in seg1[:1] + seg1[2:]:  # segment 1 of sample 1 lost
        assert r.feed(p, 0.0) is None
    assert r.pending == 1
    out = [r.feed(p, 0.01) for p in seg2]
    assert out[-1] is not None and out[-1].sequence == seg2[0].sequence
    assert r.dropped == 0
    assert r.expire(0.04) == 0 and r.expire(0.06) == 1
    assert r.dropped == 1 and r.pending == 0
    # the missing segment arriving after the drop does not resurrect the sample
    assert r.feed(seg1[1], 0.07) is None
    assert r.late == 1 and r.pending == 0


def test_reassembler_bounds_pending() -> None:
    r = ot.Reassembler(timeout_s=10.0, max_segments_per_sender=4)
    for seq in range(0, 20, 2):  # ten lone first segments of ten samples
        r.feed(ot.Packet(1, seq, 0, False, b"x"), 0.0)
    assert r.pending_segments == 4 and r.pending == 4 and r.dropped == 6
    with pytest.raises(ValueError, match="timeout_s"):
        ot.Reassembler(timeout_s=0)
    with pytest.raises(ValueError, match="max_senders"):
        ot.Reassembler(max_senders=0)


def test_builder_writes_raw_encoders(validator: Any) -> None:
    doc = ot.SampleBuilder().build(
        position_m=(0, 0, 0), rotation_deg=(0, 0, 0), sample_time_s=1.0,
        zoom_raw=0xFFFFFF, focus_raw=0,
    )
    assert doc["lens"]["rawEncoders"] == {"focus": 0, "zoom": 0xFFFFFF}
    validator.validate(doc)
    bads: list[Any] = [-1, 1 << 32, 1.5, True]
    for bad in bads:
        with pytest.raises(ValueError, match="rawEncoders.zoom"):
            ot.SampleBuilder().build(
                position_m=(0, 0, 0), rotation_deg=(0, 0, 0), sample_time_s=1.0, zoom_raw=bad
            )


def test_json_payload_is_compact_utf8() -> None:
    payload = ot.encode_payload({"a": [1, 2]}, "json")
    assert payload == b'{"a":[1,2]}'
    assert json.loads(payload) == {"a": [1, 2]}
    with pytest.raises(ValueError):
        ot.encode_payload({"a": float("nan")}, "json")
