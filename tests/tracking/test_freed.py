from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.tracking import freed
from drivers.tracking.freed import FreeDPacket


def _packet_with(offset: int, raw3: bytes) -> bytes:
    body = bytearray(28)
    body[0] = 0xD1
    body[offset : offset + 3] = raw3
    return bytes(body) + bytes([freed.checksum(body)])


@pytest.mark.parametrize(
    ("offset", "raw", "field", "expected"),
    [
        (2, "A60000", "pan_deg", -180.0),
        (2, "5A0000", "pan_deg", 180.0),
        (5, "D30000", "tilt_deg", -90.0),
        (5, "2D0000", "tilt_deg", 90.0),
        (8, "A60000", "roll_deg", -180.0),
        (11, "800000", "x_mm", -131072.0),
        (14, "7FFFFF", "y_mm", 8388607 / 64),
        (17, "FFFFFF", "z_mm", -1 / 64),  # 2^24 sign extension: -1 unit, not 0
        (2, "FFFFFF", "pan_deg", -1 / 32768),
        (20, "FFFFFF", "zoom", 0xFFFFFF),  # zoom is unsigned
        (23, "800000", "focus", 0x800000),
    ],
)
def test_spec_vectors(offset: int, raw: str, field: str, expected: float) -> None:
    pkt = freed.decode(_packet_with(offset, bytes.fromhex(raw)))
    assert getattr(pkt, field) == expected


def test_known_full_packet() -> None:
    # Built by hand from the spec: camera 7, pan +90, tilt -10.5, roll 0,
    # x 1000 mm, y -2500.5 mm, z 1500 mm, zoom 0x001234, focus 0x00ABCD, spare 0x0102.
    wire = bytes.fromhex(
        "D1 07 2D0000 FAC000 000000 00FA00 FD8EE0 017700 001234 00ABCD 0102".replace(" ", "")
    )
    wire += bytes([(0x40 - sum(wire)) % 256])
    pkt = freed.decode(wire)
    assert pkt == FreeDPacket(7, 90.0, -10.5, 0.0, 1000.0, -2500.5, 1500.0, 0x1234, 0xABCD, 0x0102)
    assert freed.encode(pkt) == wire


def test_checksum_formula() -> None:
    body = bytes([0xD1]) + bytes(27)
    assert freed.checksum(body) == (0x40 - 0xD1) % 256 == 0x6F


def test_errors_are_specific() -> None:
    good = freed.encode(FreeDPacket(1, 1, 2, 3, 4, 5, 6, 7, 8, 9))
    with pytest.raises(freed.FreeDLengthError):
        freed.decode(good[:-1])
    with pytest.raises(freed.FreeDLengthError):
        freed.decode(good + b"\x00")
    with pytest.raises(freed.FreeDTypeError):
        freed.decode(b"\xd0" + good[1:])
    bad = good[:-1] + bytes([good[-1] ^ 1])
    with pytest.raises(freed.FreeDChecksumError) as info:
        freed.decode(bad)
    assert info.value.packet.pan_deg == 1.0  # still inspectable
    assert info.value.expected == good[-1]
    assert freed.decode(bad, verify=False).camera_id == 1
    assert not freed.checksum_ok(bad) and freed.checksum_ok(good)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("pan_deg", 256.0),
        ("x_mm", -131072.1),
        ("zoom", -1),
        ("zoom", 1 << 24),
        ("camera_id", 256),
        ("spare", 1 << 16),
    ],
)
def test_encode_rejects_out_of_range(field: str, value: float) -> None:
    kwargs = dict(
        camera_id=1,
        pan_deg=0.0,
        tilt_deg=0.0,
        roll_deg=0.0,
        x_mm=0.0,
        y_mm=0.0,
        z_mm=0.0,
        zoom=0,
        focus=0,
        spare=0,
    )
    kwargs[field] = value
    with pytest.raises(freed.FreeDError, match=field):
        freed.encode(FreeDPacket(**kwargs))  # type: ignore[arg-type]


angles = st.integers(-(1 << 23), (1 << 23) - 1)
u24 = st.integers(0, (1 << 24) - 1)


@given(
    st.integers(0, 255),
    angles,
    angles,
    angles,
    angles,
    angles,
    angles,
    u24,
    u24,
    st.integers(0, 0xFFFF),
)
def test_round_trip_exact_on_wire_units(cam, p, t, r, x, y, z, zoom, focus, spare) -> None:
    pkt = FreeDPacket(
        cam, p / 32768, t / 32768, r / 32768, x / 64, y / 64, z / 64, zoom, focus, spare
    )
    wire = freed.encode(pkt)
    assert len(wire) == 29 and freed.checksum_ok(wire)
    assert freed.decode(wire) == pkt
    # an independent reading of the same bytes with struct
    fields = struct.unpack(">BB" + "3s" * 8 + "HB", wire)
    raw_pan = int.from_bytes(fields[2], "big", signed=True)
    assert raw_pan == p


@settings(max_examples=300)
@given(st.binary(max_size=64))
def test_fuzz_any_bytes_clean_rejection(data: bytes) -> None:
    try:
        pkt = freed.decode(data)
    except freed.FreeDError:
        return
    assert freed.encode(pkt) == data


@settings(max_examples=200)
@given(st.binary(min_size=29, max_size=29))
def test_fuzz_29_bytes_agrees_with_batch(data: bytes) -> None:
    batch = freed.decode_batch(data)
    try:
        pkt = freed.decode(data)
    except freed.FreeDError:
        assert batch.rejected.tolist() == [True] and len(batch.packets) == 0
        return
    assert batch.rejected.tolist() == [False]
    row = batch.packets[0]
    assert (row["pan_deg"], row["x_mm"], row["zoom"], row["spare"]) == (
        pkt.pan_deg,
        pkt.x_mm,
        pkt.zoom,
        pkt.spare,
    )


def test_batch_matches_scalar_and_counts_rejects() -> None:
    rng = np.random.default_rng(3)
    pkts = [
        FreeDPacket(
            int(rng.integers(256)),
            *(rng.uniform(-179, 179, 3)),
            *(rng.uniform(-1e5, 1e5, 3)),
            int(rng.integers(1 << 24)),
            int(rng.integers(1 << 24)),
            int(rng.integers(1 << 16)),
        )
        for _ in range(50)
    ]
    wires = [bytearray(freed.encode(p)) for p in pkts]
    wires[3][28] ^= 0xFF  # checksum
    wires[10][0] = 0xD2  # type
    wires[11][5] ^= 0x01  # payload bit flip -> checksum
    batch = freed.decode_batch(b"".join(wires))
    assert batch.checksum_errors == 2 and batch.type_errors == 1 and batch.rejected_count == 3
    assert np.flatnonzero(batch.rejected).tolist() == [3, 10, 11]
    kept = [freed.decode(bytes(w)) for i, w in enumerate(wires) if i not in (3, 10, 11)]
    assert len(batch.packets) == len(kept)
    for row, pkt in zip(batch.packets, kept, strict=True):
        assert row["camera_id"] == pkt.camera_id
        assert row["tilt_deg"] == pkt.tilt_deg and row["z_mm"] == pkt.z_mm
        assert row["focus"] == pkt.focus
    as_array = freed.decode_batch(np.frombuffer(b"".join(wires), dtype=np.uint8).reshape(-1, 29))
    assert np.array_equal(as_array.packets, batch.packets)
    unverified = freed.decode_batch(b"".join(wires), verify=False)
    assert unverified.rejected_count == 1


def test_batch_rejects_partial_buffer() -> None:
    with pytest.raises(freed.FreeDLengthError):
        freed.decode_batch(b"\xd1" * 30)
    assert len(freed.decode_batch(b"").packets) == 0


def test_vendor_profiles() -> None:
    ports = {name: p.default_port for name, p in freed.PROFILES.items()}
    assert ports == {
        "generic": 40000,
        "panasonic": 1111,
        "sony": 52380,
        "mosys": 8001,
        "stype": 6301,
        "ncam": 6301,
        "zcam": 40000,
    }
    zcam = freed.profile("zcam")
    lens = zcam.lens(FreeDPacket(1, 0, 0, 0, 0, 0, 0, zoom=3500, focus=25000, spare=0x2A07))
    assert lens.focal_length_mm == 35.0 and lens.focus_distance_m == 2.5
    assert (lens.iris_raw, lens.sequence) == (0x2A, 7)
    assert zcam.sequence_bits == 8
    generic = freed.profile("generic").lens(FreeDPacket(1, 0, 0, 0, 0, 0, 0, 3500, 25000, 9))
    assert generic.focal_length_mm is None and generic.sequence is None
    with pytest.raises(KeyError, match="known"):
        freed.profile("nope")
