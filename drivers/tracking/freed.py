"""FreeD D1 codec (Vinten free-d manual v1.4.4, appendices A and B).

A D1 message is 29 bytes::

    0      0xD1 (message type)
    1      camera id
    2..4   pan       signed 24-bit big-endian, 1/32768 degree
    5..7   tilt      signed 24-bit big-endian, 1/32768 degree
    8..10  roll      signed 24-bit big-endian, 1/32768 degree
    11..13 X         signed 24-bit big-endian, 1/64 mm
    14..16 Y         signed 24-bit big-endian, 1/64 mm
    17..19 Z         signed 24-bit big-endian, 1/64 mm
    20..22 zoom      unsigned 24-bit, lens encoder counts
    23..25 focus     unsigned 24-bit, lens encoder counts
    26..27 spare     unsigned 16-bit, vendor-defined
    28     checksum  (0x40 - sum(bytes 0..27)) mod 256

Negative values are sign-extended by subtracting 2**24 (not 0xFFFFFF, which is one
unit off). FreeD axes: right-handed, Z up, pan 0 looks along +Y, positive pan turns
right (clockwise from above), positive tilt looks up, positive roll is clockwise seen
from behind the camera. :mod:`drivers.tracking.sample` maps these to the stage frame.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final, NamedTuple

import numpy as np
import numpy.typing as npt

PACKET_LEN: Final = 29
MESSAGE_TYPE_D1: Final = 0xD1
ANGLE_UNITS_PER_DEG: Final = 32768.0
POSITION_UNITS_PER_MM: Final = 64.0
CHECKSUM_SEED: Final = 0x40
_S24_MIN: Final = -(1 << 23)
_S24_MAX: Final = (1 << 23) - 1
_U24_MAX: Final = (1 << 24) - 1


class FreeDError(ValueError):
    """A FreeD packet could not be encoded or decoded; the message says why."""


class FreeDLengthError(FreeDError):
    """The datagram is not 29 bytes long."""


class FreeDTypeError(FreeDError):
    """The first byte is not the D1 message type."""


class FreeDChecksumError(FreeDError):
    """The checksum does not match; ``packet`` still holds the decoded fields."""

    def __init__(self, message: str, packet: FreeDPacket, expected: int, actual: int) -> None:
        super().__init__(message)
        self.packet = packet
        self.expected = expected
        self.actual = actual


class FreeDPacket(NamedTuple):
    """One D1 message in FreeD units (degrees, millimetres, raw lens counts).

    A named tuple rather than a dataclass: decoding runs per datagram at up to 240 Hz
    per source, and a frozen dataclass costs several times more to construct.
    """

    camera_id: int
    pan_deg: float
    tilt_deg: float
    roll_deg: float
    x_mm: float
    y_mm: float
    z_mm: float
    zoom: int
    focus: int
    spare: int = 0


def checksum(data: bytes | bytearray | memoryview) -> int:
    """Checksum of the first 28 bytes of a D1 message."""
    return (CHECKSUM_SEED - sum(data[:28])) & 0xFF


def checksum_ok(data: bytes | bytearray | memoryview) -> bool:
    """Whether a 29-byte message carries the right checksum (False for other lengths)."""
    return len(data) == PACKET_LEN and checksum(data) == data[28]


def _s24_bytes(field: str, value: float, scale: float) -> bytes:
    raw = round(value * scale)
    if not _S24_MIN <= raw <= _S24_MAX:
        lo, hi = _S24_MIN / scale, _S24_MAX / scale
        raise FreeDError(f"FreeD {field}={value!r} is outside [{lo}, {hi}]")
    return (raw & _U24_MAX).to_bytes(3, "big")


def _u_bytes(field: str, value: int, nbytes: int) -> bytes:
    top = (1 << (8 * nbytes)) - 1
    if not isinstance(value, int) or not 0 <= value <= top:
        raise FreeDError(f"FreeD {field}={value!r} is not an integer in [0, {top}]")
    return value.to_bytes(nbytes, "big")


def encode(packet: FreeDPacket) -> bytes:
    """Encode a packet to its 29 wire bytes, rounding to the nearest wire unit.

    Raises:
        FreeDError: a field is out of its wire range (the message names field and value).
    """
    body = b"".join(
        (
            bytes((MESSAGE_TYPE_D1,)),
            _u_bytes("camera_id", packet.camera_id, 1),
            _s24_bytes("pan_deg", packet.pan_deg, ANGLE_UNITS_PER_DEG),
            _s24_bytes("tilt_deg", packet.tilt_deg, ANGLE_UNITS_PER_DEG),
            _s24_bytes("roll_deg", packet.roll_deg, ANGLE_UNITS_PER_DEG),
            _s24_bytes("x_mm", packet.x_mm, POSITION_UNITS_PER_MM),
            _s24_bytes("y_mm", packet.y_mm, POSITION_UNITS_PER_MM),
            _s24_bytes("z_mm", packet.z_mm, POSITION_UNITS_PER_MM),
            _u_bytes("zoom", packet.zoom, 3),
            _u_bytes("focus", packet.focus, 3),
            _u_bytes("spare", packet.spare, 2),
        )
    )
    return body + bytes((checksum(body),))


# Signed 24-bit big-endian = signed high 16 bits * 256 + unsigned low byte, which a
# single struct call can unpack (struct has no 24-bit code).
_D1: Final = struct.Struct(">BB" + "hB" * 6 + "HBHBHB")


def decode(data: bytes | bytearray | memoryview, *, verify: bool = True) -> FreeDPacket:
    """Decode one D1 message.

    Args:
        data: the datagram.
        verify: check the checksum (set False to inspect a damaged packet).

    Raises:
        FreeDLengthError: not 29 bytes.
        FreeDTypeError: not a D1 message.
        FreeDChecksumError: checksum mismatch (the error carries the decoded packet).
    """
    if len(data) != PACKET_LEN:
        raise FreeDLengthError(f"FreeD D1 is {PACKET_LEN} bytes, got {len(data)}")
    if data[0] != MESSAGE_TYPE_D1:
        raise FreeDTypeError(f"FreeD message type 0x{data[0]:02X} is not D1 (0xD1)")
    f = _D1.unpack(data)
    packet = FreeDPacket(
        f[1],
        (f[2] * 256 + f[3]) / ANGLE_UNITS_PER_DEG,
        (f[4] * 256 + f[5]) / ANGLE_UNITS_PER_DEG,
        (f[6] * 256 + f[7]) / ANGLE_UNITS_PER_DEG,
        (f[8] * 256 + f[9]) / POSITION_UNITS_PER_MM,
        (f[10] * 256 + f[11]) / POSITION_UNITS_PER_MM,
        (f[12] * 256 + f[13]) / POSITION_UNITS_PER_MM,
        f[14] * 256 + f[15],
        f[16] * 256 + f[17],
        f[18],
    )
    if verify:
        expected = (CHECKSUM_SEED - sum(data) + f[19]) & 0xFF
        if expected != f[19]:
            raise FreeDChecksumError(
                f"FreeD checksum 0x{data[28]:02X} does not match 0x{expected:02X}",
                packet,
                expected,
                data[28],
            )
    return packet


# --- vendor profiles ---------------------------------------------------------------


class LensReading(NamedTuple):
    """What a vendor profile can say about the lens from zoom, focus and spare.

    A named tuple (made per datagram), like :class:`FreeDPacket`.
    """

    zoom_raw: int
    focus_raw: int
    focal_length_mm: float | None = None
    focus_distance_m: float | None = None
    iris_raw: int | None = None
    sequence: int | None = None


@dataclass(frozen=True, slots=True)
class FreeDProfile:
    """How one vendor fills zoom, focus and spare, and where it sends by default.

    Attributes:
        name: profile key (``generic``, ``panasonic``, ``sony``, ``mosys``, ``stype``,
            ``ncam``, ``zcam``).
        default_port: UDP port the vendor's devices send to out of the box.
        zoom_per_mm: zoom counts per millimetre of focal length, when zoom is a focal
            length; None when it is an uncalibrated encoder count.
        focus_per_mm: focus counts per millimetre of focus distance, likewise.
        spare_iris_sequence: spare high byte is iris, low byte an 8-bit sequence.
    """

    name: str
    default_port: int
    zoom_per_mm: float | None = None
    focus_per_mm: float | None = None
    spare_iris_sequence: bool = False

    @property
    def sequence_bits(self) -> int | None:
        """Bits of the packet sequence counter this profile carries (None: none)."""
        return 8 if self.spare_iris_sequence else None

    def lens(self, packet: FreeDPacket) -> LensReading:
        """Interpret zoom, focus and spare of a packet under this profile."""
        return LensReading(
            zoom_raw=packet.zoom,
            focus_raw=packet.focus,
            focal_length_mm=packet.zoom / self.zoom_per_mm if self.zoom_per_mm else None,
            focus_distance_m=(
                packet.focus / self.focus_per_mm / 1000.0 if self.focus_per_mm else None
            ),
            iris_raw=packet.spare >> 8 if self.spare_iris_sequence else None,
            sequence=packet.spare & 0xFF if self.spare_iris_sequence else None,
        )


PROFILES: Final[dict[str, FreeDProfile]] = {
    p.name: p
    for p in (
        FreeDProfile("generic", 40000),
        FreeDProfile("panasonic", 1111),
        FreeDProfile("sony", 52380),
        FreeDProfile("mosys", 8001),
        FreeDProfile("stype", 6301),
        FreeDProfile("ncam", 6301),
        FreeDProfile("zcam", 40000, zoom_per_mm=100.0, focus_per_mm=10.0, spare_iris_sequence=True),
    )
}


def profile(name: str) -> FreeDProfile:
    """Look up a vendor profile by name.

    Raises:
        KeyError: unknown name (the message lists the known ones).
    """
    try:
        return PROFILES[name]
    except KeyError:
        raise KeyError(f"unknown FreeD profile {name!r}; known: {sorted(PROFILES)}") from None


# --- numpy batch decoder -----------------------------------------------------------

BATCH_DTYPE: Final = np.dtype(
    [
        ("camera_id", np.uint8),
        ("pan_deg", np.float64),
        ("tilt_deg", np.float64),
        ("roll_deg", np.float64),
        ("x_mm", np.float64),
        ("y_mm", np.float64),
        ("z_mm", np.float64),
        ("zoom", np.uint32),
        ("focus", np.uint32),
        ("spare", np.uint16),
    ]
)


@dataclass(frozen=True, slots=True)
class FreeDBatch:
    """Result of :func:`decode_batch`.

    Attributes:
        packets: accepted packets, structured array of :data:`BATCH_DTYPE`.
        rejected: one flag per input packet slot, True where it was rejected.
        type_errors: slots whose first byte is not 0xD1.
        checksum_errors: D1 slots whose checksum does not match.
    """

    packets: npt.NDArray[np.void]
    rejected: npt.NDArray[np.bool_]
    type_errors: int
    checksum_errors: int

    @property
    def rejected_count(self) -> int:
        """Number of rejected packet slots."""
        return self.type_errors + self.checksum_errors


def _s24_cols(rows: npt.NDArray[np.uint8], col: int) -> npt.NDArray[np.int32]:
    b = rows[:, col : col + 3].astype(np.int32)
    raw = (b[:, 0] << 16) | (b[:, 1] << 8) | b[:, 2]
    out: npt.NDArray[np.int32] = raw - ((raw & 0x800000) << 1)
    return out


def decode_batch(
    buf: bytes | bytearray | memoryview | npt.NDArray[np.uint8], *, verify: bool = True
) -> FreeDBatch:
    """Decode back-to-back D1 messages (a capture or a recorded take) in one pass.

    Args:
        buf: concatenated 29-byte messages, as bytes or a uint8 array (flat or
            ``(n, 29)``).
        verify: reject slots whose checksum does not match.

    Raises:
        FreeDLengthError: the buffer is not a whole number of messages.
    """
    arr = np.frombuffer(buf, dtype=np.uint8) if not isinstance(buf, np.ndarray) else buf
    if arr.dtype != np.uint8:
        raise FreeDError(f"FreeD batch must be uint8, got {arr.dtype}")
    if arr.size % PACKET_LEN:
        raise FreeDLengthError(f"FreeD batch of {arr.size} bytes is not a multiple of {PACKET_LEN}")
    rows = arr.reshape(-1, PACKET_LEN)
    bad_type = rows[:, 0] != MESSAGE_TYPE_D1
    if verify:
        sums = rows[:, :28].sum(axis=1, dtype=np.int64)
        bad_sum = ((CHECKSUM_SEED - sums) & 0xFF) != rows[:, 28]
        bad_sum &= ~bad_type
    else:
        bad_sum = np.zeros(len(rows), dtype=np.bool_)
    rejected = bad_type | bad_sum
    good = rows[~rejected]
    out = np.empty(len(good), dtype=BATCH_DTYPE)
    out["camera_id"] = good[:, 1]
    for name, col in (("pan_deg", 2), ("tilt_deg", 5), ("roll_deg", 8)):
        out[name] = _s24_cols(good, col) / ANGLE_UNITS_PER_DEG
    for name, col in (("x_mm", 11), ("y_mm", 14), ("z_mm", 17)):
        out[name] = _s24_cols(good, col) / POSITION_UNITS_PER_MM
    for name, col in (("zoom", 20), ("focus", 23)):
        b = good[:, col : col + 3].astype(np.uint32)
        out[name] = (b[:, 0] << 16) | (b[:, 1] << 8) | b[:, 2]
    out["spare"] = (good[:, 26].astype(np.uint16) << 8) | good[:, 27]
    return FreeDBatch(
        packets=out,
        rejected=rejected,
        type_errors=int(bad_type.sum()),
        checksum_errors=int(bad_sum.sum()),
    )
