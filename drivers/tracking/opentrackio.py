"""OpenTrackIO 1.0.1 transport codec, segmentation, reassembly and sample builders.

Every datagram starts with a 16-byte header (big-endian)::

    0..3   identifier      ASCII "OTrk"
    4      reserved        0
    5      encoding        0x01 JSON, 0x02 CBOR
    6..7   sequence        u16, one per sample (all its segments share it)
    8..11  segment offset  u32, byte offset of this segment in the sample payload
    12..13 last + length   bit 15: last segment; bits 14..0: payload length
    14..15 checksum        Fletcher-16 mod 256 over bytes 0..13 and the payload,
                           as ``sum2 << 8 | sum1``

A sample larger than what fits in one datagram under the MTU is split into segments;
:class:`Reassembler` joins them and drops a sample whole when one is missing.
"""

from __future__ import annotations

import json
import math
import struct
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from itertools import accumulate
from typing import Any, Final, Literal

import cbor2

from drivers.tracking.timecode import Timecode

MAGIC: Final = b"OTrk"
HEADER_LEN: Final = 16
ENCODING_JSON: Final = 0x01
ENCODING_CBOR: Final = 0x02
ENCODINGS: Final = {ENCODING_JSON: "json", ENCODING_CBOR: "cbor"}
DEFAULT_PORT: Final = 55555
DEFAULT_MTU: Final = 1500
IPV4_UDP_OVERHEAD: Final = 28
MAX_SEGMENT_PAYLOAD: Final = 0x7FFF
PROTOCOL_VERSION: Final = (1, 0, 1)
MULTICAST_PREFIX: Final = "239.135.1."
STATIC_INTERVAL_S: Final = 2.0
_HEADER: Final = struct.Struct(">4sBBHIHH")

Encoding = Literal["json", "cbor"]


class OpenTrackIOError(ValueError):
    """An OpenTrackIO datagram or payload could not be decoded; the message says why."""


class OpenTrackIOLengthError(OpenTrackIOError):
    """Datagram shorter than the header, or payload length field disagrees."""


class OpenTrackIOMagicError(OpenTrackIOError):
    """The datagram does not start with ``OTrk``."""


class OpenTrackIOEncodingError(OpenTrackIOError):
    """Unknown encoding byte."""


class OpenTrackIOPayloadError(OpenTrackIOError):
    """The reassembled payload is not a JSON/CBOR object."""


class OpenTrackIOChecksumError(OpenTrackIOError):
    """Checksum mismatch; ``packet`` still holds the parsed header and payload."""

    def __init__(self, message: str, packet: Packet, expected: int) -> None:
        super().__init__(message)
        self.packet = packet
        self.expected = expected


def multicast_group(source_number: int) -> str:
    """Multicast group of an OpenTrackIO source number (1..200).

    Raises:
        ValueError: source number outside 1..200.
    """
    if (
        isinstance(source_number, bool)
        or not isinstance(source_number, int)
        or not (1 <= source_number <= 200)
    ):
        raise ValueError(f"OpenTrackIO source number {source_number!r} is not in 1..200")
    return f"{MULTICAST_PREFIX}{source_number}"


def fletcher16(data: bytes | bytearray | memoryview) -> int:
    """Fletcher-16 with both sums taken mod 256, returned as ``sum2 << 8 | sum1``."""
    sum1 = sum(data) & 0xFF
    sum2 = sum(accumulate(data)) & 0xFF
    return (sum2 << 8) | sum1


@dataclass(frozen=True, slots=True)
class Packet:
    """One OpenTrackIO datagram: header fields and its payload segment."""

    encoding: int
    sequence: int
    segment_offset: int
    last_segment: bool
    payload: bytes
    checksum: int = 0

    @property
    def payload_length(self) -> int:
        """Length of this segment's payload in bytes."""
        return len(self.payload)


def encode_packet(
    payload: bytes,
    *,
    encoding: int,
    sequence: int,
    segment_offset: int = 0,
    last_segment: bool = True,
) -> bytes:
    """Build one datagram around a payload segment.

    Raises:
        OpenTrackIOError: a header field does not fit its width.
    """
    if encoding not in ENCODINGS:
        raise OpenTrackIOEncodingError(f"OpenTrackIO encoding 0x{encoding:02X} is unknown")
    if not 0 <= sequence <= 0xFFFF:
        raise OpenTrackIOError(f"OpenTrackIO sequence={sequence} is not a u16")
    if not 0 <= segment_offset <= 0xFFFFFFFF:
        raise OpenTrackIOError(f"OpenTrackIO segment_offset={segment_offset} is not a u32")
    if len(payload) > MAX_SEGMENT_PAYLOAD:
        raise OpenTrackIOLengthError(
            f"OpenTrackIO segment payload of {len(payload)} bytes exceeds {MAX_SEGMENT_PAYLOAD}"
        )
    length_field = (0x8000 if last_segment else 0) | len(payload)
    head = _HEADER.pack(MAGIC, 0, encoding, sequence, segment_offset, length_field, 0)[:14]
    return head + fletcher16(head + payload).to_bytes(2, "big") + payload


def decode_packet(data: bytes | bytearray | memoryview, *, verify: bool = True) -> Packet:
    """Parse one datagram.

    Raises:
        OpenTrackIOLengthError: shorter than the header or length field mismatch.
        OpenTrackIOMagicError: not ``OTrk``.
        OpenTrackIOEncodingError: encoding byte not 0x01 or 0x02.
        OpenTrackIOChecksumError: checksum mismatch (carries the parsed packet).
    """
    if len(data) < HEADER_LEN:
        raise OpenTrackIOLengthError(
            f"OpenTrackIO datagram of {len(data)} bytes is shorter than the {HEADER_LEN}-byte "
            "header"
        )
    magic, _reserved, encoding, sequence, offset, length_field, check = _HEADER.unpack_from(data)
    if magic != MAGIC:
        raise OpenTrackIOMagicError(f"OpenTrackIO identifier {bytes(magic)!r} is not b'OTrk'")
    if encoding not in ENCODINGS:
        raise OpenTrackIOEncodingError(f"OpenTrackIO encoding 0x{encoding:02X} is unknown")
    length = length_field & 0x7FFF
    if len(data) - HEADER_LEN != length:
        raise OpenTrackIOLengthError(
            f"OpenTrackIO payload length field {length} but {len(data) - HEADER_LEN} bytes "
            "follow the header"
        )
    payload = bytes(data[HEADER_LEN:])
    packet = Packet(encoding, sequence, offset, bool(length_field & 0x8000), payload, check)
    if verify:
        expected = fletcher16(bytes(data[:14]) + payload)
        if expected != check:
            raise OpenTrackIOChecksumError(
                f"OpenTrackIO checksum 0x{check:04X} does not match 0x{expected:04X}",
                packet,
                expected,
            )
    return packet


def max_segment_payload(mtu: int = DEFAULT_MTU) -> int:
    """Largest payload per datagram that keeps IPv4 + UDP + header within ``mtu``.

    Raises:
        ValueError: the MTU leaves no room for payload.
    """
    room = min(mtu - IPV4_UDP_OVERHEAD - HEADER_LEN, MAX_SEGMENT_PAYLOAD)
    if room < 1:
        raise ValueError(f"MTU {mtu} leaves no room for an OpenTrackIO payload")
    return room


def encode_payload(sample: Mapping[str, Any], encoding: Encoding = "json") -> bytes:
    """Serialise a sample document as JSON (compact UTF-8) or CBOR."""
    if encoding == "json":
        return json.dumps(sample, separators=(",", ":"), allow_nan=False).encode()
    return cbor2.dumps(sample)


def decode_payload(payload: bytes, encoding: int) -> dict[str, Any]:
    """Parse a reassembled payload into a sample document.

    Raises:
        OpenTrackIOPayloadError: not valid JSON/CBOR, or not an object.
    """
    try:
        if encoding == ENCODING_JSON:
            doc = json.loads(payload.decode("utf-8"))
        elif encoding == ENCODING_CBOR:
            doc = cbor2.loads(payload)
        else:
            raise OpenTrackIOEncodingError(f"OpenTrackIO encoding 0x{encoding:02X} is unknown")
    except OpenTrackIOError:
        raise
    except Exception as exc:  # cbor2 and json raise many types on garbage; all mean "bad"
        name = ENCODINGS.get(encoding, "?")
        raise OpenTrackIOPayloadError(f"OpenTrackIO {name} payload does not parse: {exc}") from exc
    if not isinstance(doc, dict):
        raise OpenTrackIOPayloadError(
            f"OpenTrackIO payload is a {type(doc).__name__}, expected an object"
        )
    return doc


def encode_sample(
    sample: Mapping[str, Any],
    *,
    sequence: int,
    encoding: Encoding = "json",
    mtu: int = DEFAULT_MTU,
) -> list[bytes]:
    """Serialise a sample and cut it into datagrams that fit the MTU."""
    payload = encode_payload(sample, encoding)
    code = ENCODING_JSON if encoding == "json" else ENCODING_CBOR
    step = max_segment_payload(mtu)
    offsets = range(0, max(len(payload), 1), step)
    return [
        encode_packet(
            payload[off : off + step],
            encoding=code,
            sequence=sequence & 0xFFFF,
            segment_offset=off,
            last_segment=off + step >= len(payload),
        )
        for off in offsets
    ]


@dataclass(slots=True)
class _Partial:
    first_seen_s: float
    encoding: int
    segments: dict[int, bytes] = field(default_factory=dict)
    total: int | None = None


@dataclass(frozen=True, slots=True)
class Reassembled:
    """A complete sample payload out of the :class:`Reassembler`."""

    sequence: int
    encoding: int
    payload: bytes


class Reassembler:
    """Joins the segments of each sample; a sample missing a segment is dropped whole.

    A partial sample is dropped (and counted in :attr:`dropped`) when it is older than
    ``timeout_s``, or when more than ``max_pending`` samples are incomplete at once
    (the oldest goes first). Segments arrive in any order; a duplicate is ignored.

    Args:
        timeout_s: how long to wait for the rest of a sample.
        max_pending: how many incomplete samples to hold.
    """

    def __init__(self, *, timeout_s: float = 0.1, max_pending: int = 8) -> None:
        self.timeout_s = timeout_s
        self.max_pending = max_pending
        self.dropped = 0
        self.completed = 0
        self.inconsistent = 0
        self._pending: dict[tuple[Any, int], _Partial] = {}

    @property
    def pending(self) -> int:
        """Number of incomplete samples held."""
        return len(self._pending)

    def feed(self, packet: Packet, now_s: float, sender: Any = None) -> Reassembled | None:
        """Add a segment; returns the sample when it completes, else None.

        Args:
            packet: a decoded, checksum-verified datagram.
            now_s: monotonic time of arrival.
            sender: key that tells interleaved senders apart (e.g. the address).
        """
        self.expire(now_s)
        if packet.segment_offset == 0 and packet.last_segment:
            self.completed += 1
            return Reassembled(packet.sequence, packet.encoding, packet.payload)
        key = (sender, packet.sequence)
        part = self._pending.get(key)
        if part is None:
            while len(self._pending) >= self.max_pending:
                self._pending.pop(next(iter(self._pending)))
                self.dropped += 1
            part = self._pending[key] = _Partial(now_s, packet.encoding)
        if packet.encoding != part.encoding:
            self._pending.pop(key)
            self.inconsistent += 1
            self.dropped += 1
            return None
        part.segments.setdefault(packet.segment_offset, packet.payload)
        if packet.last_segment:
            part.total = packet.segment_offset + len(packet.payload)
        if part.total is None:
            return None
        payload = self._join(part)
        if payload is None:
            return None
        del self._pending[key]
        self.completed += 1
        return Reassembled(packet.sequence, part.encoding, payload)

    def _join(self, part: _Partial) -> bytes | None:
        pos, chunks = 0, []
        for off in sorted(part.segments):
            chunk = part.segments[off]
            if off != pos:
                return None  # a gap (or an overlap): wait for more
            chunks.append(chunk)
            pos += len(chunk)
        return b"".join(chunks) if pos == part.total else None

    def expire(self, now_s: float) -> int:
        """Drop partial samples older than the timeout; returns how many were dropped."""
        stale = [k for k, p in self._pending.items() if now_s - p.first_seen_s > self.timeout_s]
        for k in stale:
            del self._pending[k]
        self.dropped += len(stale)
        return len(stale)


# --- sample builders ---------------------------------------------------------------


def _rational(value: Fraction | float | int) -> dict[str, int]:
    frac = value if isinstance(value, Fraction) else Fraction(value).limit_denominator(1001)
    return {"num": frac.numerator, "denom": frac.denominator}


def _finite(name: str, value: float) -> float:
    if not math.isfinite(value):
        raise ValueError(f"OpenTrackIO {name}={value!r} is not finite")
    return float(value)


def urn(value: uuid.UUID | None = None) -> str:
    """A ``urn:uuid:`` identifier (random when no UUID is given)."""
    return f"urn:uuid:{value or uuid.uuid4()}"


@dataclass(frozen=True, slots=True)
class StaticInfo:
    """What goes in the static block: slow-changing facts about camera, lens, tracker."""

    camera_label: str | None = None
    camera_make: str | None = None
    camera_model: str | None = None
    sensor_width_mm: float | None = None
    sensor_height_mm: float | None = None
    capture_rate: Fraction | None = None
    lens_make: str | None = None
    lens_model: str | None = None
    nominal_focal_length_mm: float | None = None
    tracker_make: str | None = "stagectl"
    tracker_model: str | None = "simulator"

    def to_json(self) -> dict[str, Any]:
        """The ``static`` object of a sample (only the fields that are set)."""
        camera: dict[str, Any] = {}
        if self.sensor_width_mm is not None and self.sensor_height_mm is not None:
            camera["activeSensorPhysicalDimensions"] = {
                "height": self.sensor_height_mm,
                "width": self.sensor_width_mm,
            }
        if self.capture_rate is not None:
            camera["captureFrameRate"] = _rational(self.capture_rate)
        for key, value in (
            ("label", self.camera_label),
            ("make", self.camera_make),
            ("model", self.camera_model),
        ):
            if value:
                camera[key] = value
        lens: dict[str, Any] = {}
        for key, value in (("make", self.lens_make), ("model", self.lens_model)):
            if value:
                lens[key] = value
        if self.nominal_focal_length_mm is not None:
            lens["nominalFocalLength"] = self.nominal_focal_length_mm
        tracker = {
            k: v for k, v in (("make", self.tracker_make), ("model", self.tracker_model)) if v
        }
        out: dict[str, Any] = {}
        for key, block in (("camera", camera), ("lens", lens), ("tracker", tracker)):
            if block:
                out[key] = block
        return out


class SampleBuilder:
    """Builds OpenTrackIO samples for one source; adds the static block every ~2 s.

    Args:
        source_number: OpenTrackIO source number (also picks the multicast group).
        sample_rate: samples per second (exact rational for 23.976 etc.).
        source_id: ``urn:uuid:`` of the source (random when omitted).
        static: static block content.
        static_interval_s: how often the static block is included.
    """

    def __init__(
        self,
        *,
        source_number: int = 1,
        sample_rate: Fraction | float = Fraction(25),
        source_id: str | None = None,
        static: StaticInfo | None = None,
        static_interval_s: float = STATIC_INTERVAL_S,
    ) -> None:
        self.source_number = source_number
        self.sample_rate = sample_rate
        self.source_id = source_id or urn()
        self.static = static or StaticInfo()
        self.static_interval_s = static_interval_s
        self._last_static_s: float | None = None
        self._sequence = 0

    def build(
        self,
        *,
        position_m: Sequence[float],
        rotation_deg: Sequence[float],
        sample_time_s: float,
        timecode: Timecode | None = None,
        focal_length_mm: float | None = None,
        focus_distance_m: float | None = None,
        zoom_norm: float | None = None,
        focus_norm: float | None = None,
        f_stop: float | None = None,
        status: str = "Optical Good",
    ) -> dict[str, Any]:
        """One dynamic sample (with the static block when it is due).

        Args:
            position_m: camera x, y, z in metres, stage frame.
            rotation_deg: pan, tilt, roll in degrees.
            sample_time_s: capture time, seconds since the Unix/PTP epoch.
            timecode: label of the frame, if known.
            focal_length_mm: pinhole focal length.
            focus_distance_m: focus distance.
            zoom_norm: zoom encoder, 0..1.
            focus_norm: focus encoder, 0..1.
            f_stop: aperture.
            status: tracker status text.

        Raises:
            ValueError: a value the schema would reject (non-finite, out of range).
        """
        x, y, z = (_finite(f"translation.{k}", v) for k, v in zip("xyz", position_m, strict=True))
        pan, tilt, roll = (
            _finite(f"rotation.{k}", v)
            for k, v in zip(("pan", "tilt", "roll"), rotation_deg, strict=True)
        )
        if sample_time_s < 0:
            raise ValueError(f"OpenTrackIO sample_time_s={sample_time_s!r} is before the epoch")
        seconds = math.floor(sample_time_s)
        nanos = min(round((sample_time_s - seconds) * 1e9), 999_999_999)
        timing: dict[str, Any] = {
            "mode": "internal",
            "sampleRate": _rational(self.sample_rate),
            "sampleTimestamp": {"seconds": seconds, "nanoseconds": nanos},
            "sequenceNumber": self._sequence & 0xFFFFFFFF,
        }
        if timecode is not None:
            timing["timecode"] = {
                "hours": timecode.hours,
                "minutes": timecode.minutes,
                "seconds": timecode.seconds,
                "frames": timecode.frames,
                "frameRate": _rational(timecode.rate.rate),
                "dropFrame": timecode.rate.drop_frame,
            }
        lens: dict[str, Any] = {}
        encoders = {}
        for key, value in (("zoom", zoom_norm), ("focus", focus_norm)):
            if value is not None:
                if not 0.0 <= value <= 1.0:
                    raise ValueError(f"OpenTrackIO lens.encoders.{key}={value!r} not in 0..1")
                encoders[key] = float(value)
        if encoders:
            lens["encoders"] = encoders
        for key, value in (
            ("pinholeFocalLength", focal_length_mm),
            ("focusDistance", focus_distance_m),
            ("fStop", f_stop),
        ):
            if value is not None:
                if not value > 0:
                    raise ValueError(f"OpenTrackIO lens.{key}={value!r} must be > 0")
                lens[key] = float(value)
        sample: dict[str, Any] = {
            "protocol": {"name": "OpenTrackIO", "version": list(PROTOCOL_VERSION)},
            "sampleId": urn(),
            "sourceId": self.source_id,
            "sourceNumber": self.source_number,
            "tracker": {"status": status, "recording": False},
            "timing": timing,
            "transforms": [
                {
                    "id": "Camera",
                    "translation": {"x": x, "y": y, "z": z},
                    "rotation": {"pan": pan, "tilt": tilt, "roll": roll},
                }
            ],
        }
        if lens:
            sample["lens"] = lens
        if self._last_static_s is None or (
            sample_time_s - self._last_static_s >= self.static_interval_s
            or sample_time_s < self._last_static_s
        ):
            sample["static"] = self.static.to_json()
            self._last_static_s = sample_time_s
        self._sequence += 1
        return sample
