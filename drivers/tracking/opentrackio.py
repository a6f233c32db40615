"""OpenTrackIO 1.0.1 transport codec, segmentation, reassembly and sample builders.

Every datagram starts with a 16-byte header (big-endian)::

    0..3   identifier      ASCII "OTrk"
    4      reserved        0
    5      encoding        0x01 JSON, 0x02 CBOR
    6..7   sequence        u16, "the OpenTrackIO packet's unique sequence number":
                           one per datagram, so every segment has its own, wrapping
                           at 2^16
    8..11  segment offset  u32, byte offset of this segment in the sample payload
    12..13 last + length   bit 15: last segment; bits 14..0: payload length
    14..15 checksum        Fletcher-16 mod 256 over bytes 0..13 and the payload,
                           as ``sum2 << 8 | sum1``

A sample larger than what fits in one datagram under the MTU is split into segments at
offsets 0, step, 2 step... numbered with consecutive sequence numbers, the last one
flagged (this is what SMPTE's reference sender, camdkit, does). :class:`Segmenter` numbers
a stream of samples; :class:`Reassembler` joins segments per sender by sequence and offset
and drops a sample whole when one is missing (see decision 0036).
"""

from __future__ import annotations

import json
import math
import struct
import uuid
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Final, Literal, NamedTuple

import cbor2
import numpy as np
import orjson

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


# Fletcher-16 as one uint8 matrix product: sum1 is the sum of the bytes and sum2 the sum of
# the running sums, i.e. byte i weighted by (n - i); uint8 arithmetic wraps, which is the
# spec's mod 256. Row 0 holds the weights ..., 3, 2, 1 (mod 256), row 1 ones: the product
# with the last n columns gives (sum2, sum1). A Python loop over a 1,400-byte payload costs
# more than the rest of the ingest (decision 0065).
_FLETCHER_MAX: Final = HEADER_LEN + MAX_SEGMENT_PAYLOAD + 1
_FLETCHER_WEIGHTS: Final = np.stack(
    [(np.arange(_FLETCHER_MAX, 0, -1) & 0xFF), np.ones(_FLETCHER_MAX, dtype=np.int64)]
).astype(np.uint8)


def fletcher16(data: bytes | bytearray | memoryview) -> int:
    """Fletcher-16 with both sums taken mod 256, returned as ``sum2 << 8 | sum1``."""
    n = len(data)
    if n > _FLETCHER_MAX:  # longer than any datagram: the plain definition
        sum1 = sum2 = 0
        for byte in bytes(data):
            sum1 = (sum1 + byte) & 0xFF
            sum2 = (sum2 + sum1) & 0xFF
        return (sum2 << 8) | sum1
    if n == 0:
        return 0
    weights = _FLETCHER_WEIGHTS[:, _FLETCHER_MAX - n:]
    sum2, sum1 = np.dot(weights, np.frombuffer(data, np.uint8)).tolist()
    return (sum2 << 8) | sum1  # type: ignore[no-any-return]


class Packet(NamedTuple):
    """One OpenTrackIO datagram: header fields and its payload segment.

    Named tuples, not frozen dataclasses, for what is made per datagram (this, the
    reassembler's records, :class:`Reassembled`): a frozen dataclass costs several times
    more to construct (decision 0065).
    """

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
            # orjson: strict RFC 8259 (NaN, Infinity and invalid UTF-8 are refused), and
            # several times faster than json on a sample
            doc = orjson.loads(payload)
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
    """Serialise a sample and cut it into datagrams that fit the MTU.

    Every datagram gets its own sequence number: ``sequence``, ``sequence + 1``... (mod
    2^16), so the next sample of the stream starts at ``sequence + len(result)``.
    :class:`Segmenter` keeps that count for a stream.

    Args:
        sample: the sample document.
        sequence: sequence number of the first datagram (taken mod 2^16).
        encoding: ``json`` or ``cbor``.
        mtu: link MTU; each datagram with IPv4 and UDP headers fits in it.
    """
    payload = encode_payload(sample, encoding)
    code = ENCODING_JSON if encoding == "json" else ENCODING_CBOR
    step = max_segment_payload(mtu)
    offsets = range(0, max(len(payload), 1), step)
    return [
        encode_packet(
            payload[off : off + step],
            encoding=code,
            sequence=(sequence + index) & 0xFFFF,
            segment_offset=off,
            last_segment=off + step >= len(payload),
        )
        for index, off in enumerate(offsets)
    ]


class Segmenter:
    """The sending side of one stream: numbers every datagram, wrapping at 2^16.

    Args:
        encoding: ``json`` or ``cbor``.
        mtu: link MTU for segmentation.
        first_sequence: sequence number of the first datagram.
    """

    def __init__(
        self, *, encoding: Encoding = "json", mtu: int = DEFAULT_MTU, first_sequence: int = 0
    ) -> None:
        max_segment_payload(mtu)  # raises on an MTU with no room
        self.encoding: Encoding = encoding
        self.mtu = mtu
        self.next_sequence = first_sequence & 0xFFFF

    def encode(self, sample: Mapping[str, Any]) -> list[bytes]:
        """The datagrams of one sample; advances the sequence by their count."""
        datagrams = encode_sample(
            sample, sequence=self.next_sequence, encoding=self.encoding, mtu=self.mtu
        )
        self.next_sequence = (self.next_sequence + len(datagrams)) & 0xFFFF
        return datagrams


SEQUENCE_MOD: Final = 1 << 16
DEFAULT_REASSEMBLY_TIMEOUT_S: Final = 0.1
DEFAULT_MAX_SAMPLE_BYTES: Final = 1 << 20
DEFAULT_MAX_SEGMENTS_PER_SENDER: Final = 64
DEFAULT_MAX_SENDERS: Final = 16
DEFAULT_MAX_PENDING_BYTES: Final = 4 << 20
DEFAULT_DUPLICATE_WINDOW_S: Final = 1.0
_DUPLICATE_WINDOW_MAX: Final = 4096


class _Segment(NamedTuple):
    sequence: int
    offset: int
    payload: bytes
    last: bool
    encoding: int
    checksum: int
    arrival_s: float

    @property
    def end(self) -> int:
        return self.offset + len(self.payload)

    @property
    def fingerprint(self) -> tuple[int, int, bool, int, int]:
        return (self.offset, len(self.payload), self.last, self.encoding, self.checksum)


def _same_sample(a: _Segment, b: _Segment) -> bool:
    """Whether ``b`` (later in sequence order than ``a``) can continue ``a``'s sample."""
    return not a.last and b.offset != 0 and b.offset >= a.end and b.encoding == a.encoding


class _Recent(NamedTuple):
    fingerprint: tuple[int, int, bool, int, int] | None
    at_s: float
    starts: bool = False  # a given-up slot that held the sample's offset-0 segment
    ends: bool = False  # a given-up slot that held the sample's last segment


@dataclass(slots=True)
class _Sender:
    segments: dict[int, _Segment] = field(default_factory=dict)
    bytes_held: int = 0
    newest: int | None = None  # highest sequence seen (serial order)
    last_active_s: float = 0.0
    # sequence numbers recently done with: a delivered datagram's fingerprint (a copy is a
    # duplicate), or None for a slot of a sample given up (a segment for it is late)
    recent: OrderedDict[int, _Recent] = field(default_factory=OrderedDict)


class Reassembled(NamedTuple):
    """A complete sample payload out of the :class:`Reassembler`.

    Attributes:
        sequence: sequence number of the sample's first datagram (offset 0).
        encoding: encoding byte.
        payload: the joined payload.
        segments: how many datagrams it came in.
    """

    sequence: int
    encoding: int
    payload: bytes
    segments: int = 1


class Reassembler:
    """Joins the segments of each sample, per sender; a sample missing one is dropped whole.

    Every datagram carries its own sequence number, so the segments of one sample are a
    run of consecutive sequence numbers (mod 2^16) from the segment at offset 0 to the
    one with the last-segment flag, each starting where the previous ends. Segments of
    a sender are held by sequence number and a sample is delivered as soon as such a run
    is complete, whatever order its segments came in. Senders are kept apart by the
    ``sender`` key (the source address), so interleaved streams never mix.

    Bad input stays cheap and bounded, and is counted:

    * ``duplicates``: a datagram identical (sequence, offset, length, flag, encoding,
      checksum) to one held, or to one delivered in the last ``duplicate_window_s``;
      it is dropped (the spec: process only one instance);
    * ``late``: a segment of a sample already given up (its sequence number lies in that
      sample's span, or next to it and continuing it); dropped, so a straggler never
      starts a partial sample of its own;
    * ``malformed``: a segment that cannot belong to any sample (past ``max_sample_bytes``,
      empty and not last, or a different datagram reusing a held sequence number);
    * ``incomplete``: samples given up, because a segment did not come within
      ``timeout_s`` of the first, or to keep within the bounds: ``max_segments_per_sender``
      segments per sender, ``max_pending_bytes`` in all (the oldest sample goes first),
      ``max_senders`` senders (the one quiet longest is forgotten).

    Args:
        timeout_s: how long to wait for the rest of a sample.
        max_sample_bytes: largest payload a sample may have.
        max_segments_per_sender: segments held per sender.
        max_senders: senders tracked at once.
        max_pending_bytes: payload bytes held for all senders together.
        duplicate_window_s: how long a delivered datagram is remembered for duplicates.
    """

    def __init__(
        self,
        *,
        timeout_s: float = DEFAULT_REASSEMBLY_TIMEOUT_S,
        max_sample_bytes: int = DEFAULT_MAX_SAMPLE_BYTES,
        max_segments_per_sender: int = DEFAULT_MAX_SEGMENTS_PER_SENDER,
        max_senders: int = DEFAULT_MAX_SENDERS,
        max_pending_bytes: int = DEFAULT_MAX_PENDING_BYTES,
        duplicate_window_s: float = DEFAULT_DUPLICATE_WINDOW_S,
    ) -> None:
        if not timeout_s > 0:
            raise ValueError(f"Reassembler timeout_s={timeout_s!r} must be > 0")
        for name, value in (
            ("max_sample_bytes", max_sample_bytes),
            ("max_segments_per_sender", max_segments_per_sender),
            ("max_senders", max_senders),
            ("max_pending_bytes", max_pending_bytes),
        ):
            if value < 1:
                raise ValueError(f"Reassembler {name}={value!r} must be >= 1")
        self.timeout_s = timeout_s
        self.max_sample_bytes = max_sample_bytes
        self.max_segments_per_sender = max_segments_per_sender
        self.max_senders = max_senders
        self.max_pending_bytes = max_pending_bytes
        self.duplicate_window_s = duplicate_window_s
        self.completed = 0
        self.incomplete = 0
        self.duplicates = 0
        self.malformed = 0
        self.late = 0
        self._senders: dict[Any, _Sender] = {}
        self._bytes_held = 0

    @property
    def dropped(self) -> int:
        """Samples given up (same as :attr:`incomplete`)."""
        return self.incomplete

    @property
    def pending(self) -> int:
        """Incomplete samples held, all senders together."""
        return sum(len(self._groups(st)) for st in self._senders.values())

    @property
    def pending_segments(self) -> int:
        """Segments held, all senders together."""
        return sum(len(st.segments) for st in self._senders.values())

    @property
    def pending_bytes(self) -> int:
        """Payload bytes held, all senders together."""
        return self._bytes_held

    @property
    def senders(self) -> int:
        """Senders tracked."""
        return len(self._senders)

    def feed(self, packet: Packet, now_s: float, sender: Any = None) -> Reassembled | None:
        """Add one datagram; returns the sample when it completes one, else None.

        Args:
            packet: a decoded, checksum-verified datagram.
            now_s: monotonic time of arrival.
            sender: key that tells senders apart (the source address).
        """
        self.expire(now_s)
        st = self._sender(sender, now_s)
        seg = _Segment(
            packet.sequence & 0xFFFF,
            packet.segment_offset,
            packet.payload,
            packet.last_segment,
            packet.encoding,
            packet.checksum,
            now_s,
        )
        verdict = self._check_recent(st, seg, now_s)
        if verdict == "duplicate":
            self.duplicates += 1
            return None
        if verdict == "late":
            self.late += 1
            return None
        self._advance(st, seg.sequence)
        if seg.offset == 0 and seg.last:
            self._remember(st, [seg], now_s)
            self.completed += 1
            return Reassembled(seg.sequence, seg.encoding, seg.payload)
        if seg.end > self.max_sample_bytes or (not seg.payload and not seg.last):
            self.malformed += 1
            return None
        if seg.sequence in st.segments:  # another datagram with a held number
            self.malformed += 1
            return None
        st.segments[seg.sequence] = seg
        st.bytes_held += len(seg.payload)
        self._bytes_held += len(seg.payload)
        run = self._complete_run(st, seg)
        if run is not None:
            self._remove(st, run)
            self._remember(st, run, now_s)
            self.completed += 1
            return Reassembled(
                run[0].sequence, run[0].encoding, b"".join(s.payload for s in run), len(run)
            )
        self._enforce_bounds(st, now_s)
        return None

    # -- joining --------------------------------------------------------------------

    def _complete_run(self, st: _Sender, seg: _Segment) -> list[_Segment] | None:
        """The whole sample ``seg`` belongs to, when every segment of it is held."""
        back: list[_Segment] = []
        cur = seg
        while cur.offset != 0:
            prev = st.segments.get((cur.sequence - 1) % SEQUENCE_MOD)
            if prev is None or prev.last or prev.end != cur.offset:
                return None
            if prev.encoding != cur.encoding or len(back) >= self.max_segments_per_sender:
                return None
            back.append(prev)
            cur = prev
        run = [*reversed(back), seg]
        cur = seg
        while not cur.last:
            nxt = st.segments.get((cur.sequence + 1) % SEQUENCE_MOD)
            if nxt is None or nxt.offset != cur.end or nxt.offset == 0:
                return None
            if nxt.encoding != cur.encoding or len(run) >= self.max_segments_per_sender:
                return None
            run.append(nxt)
            cur = nxt
        return run

    def _groups(self, st: _Sender) -> list[list[_Segment]]:
        """Held segments of a sender, grouped into the samples they seem to belong to.

        In sequence order (relative to the newest), a segment continues the previous
        one's sample unless that one was last or this one starts at offset 0; so a sample
        that lost a middle segment still counts once.
        """
        if not st.segments:
            return []
        newest = st.newest if st.newest is not None else 0
        ordered = sorted(
            st.segments.values(), key=lambda s: (s.sequence - newest - 1) % SEQUENCE_MOD
        )
        groups: list[list[_Segment]] = [[ordered[0]]]
        for seg in ordered[1:]:
            prev = groups[-1][-1]
            if _same_sample(prev, seg) and (seg.sequence - prev.sequence) % SEQUENCE_MOD <= (
                self.max_segments_per_sender
            ):
                groups[-1].append(seg)
            else:
                groups.append([seg])
        return groups

    # -- bookkeeping ----------------------------------------------------------------

    def _sender(self, key: Any, now_s: float) -> _Sender:
        st = self._senders.get(key)
        if st is None:
            while len(self._senders) >= self.max_senders:
                quiet = min(self._senders, key=lambda k: self._senders[k].last_active_s)
                self._forget(quiet)
            st = self._senders[key] = _Sender()
        st.last_active_s = now_s
        return st

    def _forget(self, key: Any) -> None:
        st = self._senders.pop(key)
        self.incomplete += len(self._groups(st))
        self._bytes_held -= st.bytes_held

    def _advance(self, st: _Sender, sequence: int) -> None:
        if st.newest is None or 0 < (sequence - st.newest) % SEQUENCE_MOD < SEQUENCE_MOD // 2:
            st.newest = sequence

    def _check_recent(self, st: _Sender, seg: _Segment, now_s: float) -> str | None:
        """``duplicate``, ``late`` or None (a new datagram) for an arriving segment."""
        held = st.segments.get(seg.sequence)
        if held is not None and held.fingerprint == seg.fingerprint:
            return "duplicate"
        horizon = now_s - self.duplicate_window_s
        seen = st.recent.get(seg.sequence)
        if seen is not None:
            if seen.at_s >= horizon:
                if seen.fingerprint is None:
                    return "late"
                if seen.fingerprint == seg.fingerprint:
                    return "duplicate"
            del st.recent[seg.sequence]  # the number came round again: a new datagram
        prev = st.recent.get((seg.sequence - 1) % SEQUENCE_MOD)
        nxt = st.recent.get((seg.sequence + 1) % SEQUENCE_MOD)
        continues = (
            seg.offset != 0
            and prev is not None
            and prev.fingerprint is None
            and not prev.ends
            and prev.at_s >= horizon
        )
        precedes = (
            not seg.last
            and nxt is not None
            and nxt.fingerprint is None
            and not nxt.starts
            and nxt.at_s >= horizon
        )
        if continues or precedes:
            st.recent[seg.sequence] = _Recent(None, now_s, seg.offset == 0, seg.last)
            return "late"
        return None

    def _remember(self, st: _Sender, run: list[_Segment], now_s: float) -> None:
        for seg in run:
            st.recent.pop(seg.sequence, None)
            st.recent[seg.sequence] = _Recent(seg.fingerprint, now_s)
        self._prune_recent(st, now_s)

    def _remember_given_up(self, st: _Sender, group: list[_Segment], now_s: float) -> None:
        first, last = group[0], group[-1]
        span = (last.sequence - first.sequence) % SEQUENCE_MOD
        for k in range(span + 1):
            seq = (first.sequence + k) % SEQUENCE_MOD
            st.recent.pop(seq, None)
            st.recent[seq] = _Recent(
                None, now_s, k == 0 and first.offset == 0, k == span and last.last
            )
        self._prune_recent(st, now_s)

    def _prune_recent(self, st: _Sender, now_s: float) -> None:
        horizon = now_s - self.duplicate_window_s
        while st.recent:
            first = next(iter(st.recent))
            if len(st.recent) <= _DUPLICATE_WINDOW_MAX and st.recent[first].at_s >= horizon:
                break
            st.recent.popitem(last=False)

    def _remove(self, st: _Sender, segments: list[_Segment]) -> None:
        for seg in segments:
            del st.segments[seg.sequence]
            st.bytes_held -= len(seg.payload)
            self._bytes_held -= len(seg.payload)

    def _give_up(self, st: _Sender, group: list[_Segment], now_s: float) -> None:
        self._remove(st, group)
        self._remember_given_up(st, group, now_s)
        self.incomplete += 1

    def _drop_oldest_group(self, st: _Sender, now_s: float) -> None:
        groups = self._groups(st)
        if groups:
            oldest = min(groups, key=lambda g: min(s.arrival_s for s in g))
            self._give_up(st, oldest, now_s)

    def _enforce_bounds(self, st: _Sender, now_s: float) -> None:
        while len(st.segments) > self.max_segments_per_sender:
            self._drop_oldest_group(st, now_s)
        while self._bytes_held > self.max_pending_bytes:
            held = [s for s in self._senders.values() if s.segments]
            oldest = min(held, key=lambda s: min(seg.arrival_s for seg in s.segments.values()))
            self._drop_oldest_group(oldest, now_s)

    def expire(self, now_s: float) -> int:
        """Give up samples whose first segment came more than the timeout ago.

        Returns:
            How many samples were given up.
        """
        given_up = 0
        for st in self._senders.values():
            if not st.segments:
                continue
            if now_s - min(s.arrival_s for s in st.segments.values()) <= self.timeout_s:
                continue
            for group in self._groups(st):
                if now_s - min(s.arrival_s for s in group) > self.timeout_s:
                    self._give_up(st, group, now_s)
                    given_up += 1
        return given_up


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
    """What goes in the static block: slow-changing facts about camera, lens, tracker.

    The tracker defaults name our simulator; anything describing a real device (a take
    export, a relay) passes that device's make and model, or None to leave them out.
    """

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
    tracker_serial_number: str | None = None
    tracker_firmware_version: str | None = None

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
            k: v
            for k, v in (
                ("make", self.tracker_make),
                ("model", self.tracker_model),
                ("serialNumber", self.tracker_serial_number),
                ("firmwareVersion", self.tracker_firmware_version),
            )
            if v
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
        zoom_raw: int | None = None,
        focus_raw: int | None = None,
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
            zoom_raw: raw zoom encoder count (``lens.rawEncoders.zoom``, a u32), e.g.
                FreeD's zoom field.
            focus_raw: raw focus encoder count (``lens.rawEncoders.focus``).
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
        raw_encoders = {}
        for key, count in (("focus", focus_raw), ("zoom", zoom_raw)):
            if count is not None:
                if isinstance(count, bool) or not isinstance(count, int):
                    raise ValueError(f"OpenTrackIO lens.rawEncoders.{key}={count!r} is not an int")
                if not 0 <= count <= 0xFFFFFFFF:
                    raise ValueError(f"OpenTrackIO lens.rawEncoders.{key}={count!r} not a u32")
                raw_encoders[key] = count
        if raw_encoders:
            lens["rawEncoders"] = raw_encoders
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
