"""OSC 1.0 wire codec: pure functions, plus the bounded hold for bundles with a future time tag.

Drivers and simulators never parse datagrams inline; they call :func:`decode_datagram` (a
message or a bundle, with its time tags and every message's type tags as received) or
:func:`decode_packet` (just the messages, flattened), and :func:`encode_message`. Every
malformed datagram becomes an :class:`OscDecodeError`, so a caller can count it, answer it and
carry on.

The decoder follows the OSC 1.0 byte layout itself (python-osc skips unknown type tags and pads
short data; a stage controller must not): big-endian, every item padded to 4 bytes with NULs,
a type tag string that names every argument. It reads the standard tags ``i f s b`` and the
non-standard ``h t d S c r m T F``. A message with any other tag (``N I [ ]`` or an unknown one)
is refused, as OSC 1.0 says to discard such messages.

Time tags (OSC 1.0, "Temporal Semantics and OSC Time Tags") are NTP timestamps: 32 bits of
seconds since 1900-01-01 UTC and 32 bits of fraction. The value 1 means "immediately". A bundle
whose time has come (or passed) is applied at once; a later one is held by a
:class:`BundleHold` until its time. An enclosed bundle's time tag must be >= its enclosing
bundle's; a datagram breaking that is refused whole (:class:`OscTimingError`).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from pythonosc.osc_message_builder import BuildError, OscMessageBuilder

OscArg = int | float | str | bool | bytes

IMMEDIATELY = 1
"""The raw time tag that means "immediately" (63 zero bits, then a one)."""
NTP_UNIX_OFFSET_S = 2_208_988_800
"""Seconds from 1900-01-01 (NTP epoch) to 1970-01-01 (Unix epoch)."""
BUNDLE_TAG = b"#bundle\x00"
BUNDLE = "#bundle"
"""What an error names as the refused address when the whole bundle is refused."""
MAX_NESTING = 8  # bundles within bundles, deeper is refused (bounds recursion on hostile input)
MAX_DATAGRAM_BYTES = 65_536

# Non-standard tags read besides the standard i f s b (OSC 1.0 "Nonstandard Types").
DECODED_TAGS = frozenset("ifsbhtdScrmTF")


class OscDecodeError(ValueError):
    """A datagram that is not a valid OSC message or bundle.

    Attributes:
        address: the message's address when it could be read, :data:`BUNDLE` for a bundle,
            None when not even that could be read. A receiver names it in its error reply.
        reason: why, without the address.
    """

    def __init__(self, reason: str, address: str | None = None) -> None:
        self.reason = reason
        self.address = address
        super().__init__(f"{address}: {reason}" if address else reason)


class OscEncodeError(ValueError):
    """A message that cannot be encoded (bad address or argument type)."""


class OscTimingError(ValueError):
    """A bundle refused for its time tags (nested out of order, too far ahead, hold full)."""


@dataclass(frozen=True, slots=True)
class OscMessage:
    """One decoded OSC message.

    Attributes:
        address: the OSC address.
        args: the arguments in order.
        tags: the type tags as received (``"fi"``); empty for a message built in code, where
            :attr:`type_tags` derives them from the Python values.
    """

    address: str
    args: tuple[OscArg, ...]
    tags: str = ""

    @property
    def type_tags(self) -> str:
        """The type tag of each argument: as received, else derived from the values."""
        if self.tags or not self.args:
            return self.tags
        return "".join(_tag_of(v) for v in self.args)


@dataclass(frozen=True, slots=True)
class OscBundle:
    """One decoded OSC bundle.

    Attributes:
        timetag: raw 64-bit NTP time tag (:data:`IMMEDIATELY` is 1).
        elements: messages and enclosed bundles, in wire order.
    """

    timetag: int
    elements: tuple[OscMessage | OscBundle, ...]


def _tag_of(value: object) -> str:
    if isinstance(value, bool):
        return "T" if value else "F"
    if isinstance(value, int):
        return "i"
    if isinstance(value, float):
        return "f"
    if isinstance(value, str):
        return "s"
    if isinstance(value, bytes):
        return "b"
    return "?"


def ntp_to_unix(timetag: int) -> float:
    """Unix seconds of a raw NTP time tag (NTP era 0: until 2036-02-07)."""
    return (timetag >> 32) - NTP_UNIX_OFFSET_S + (timetag & 0xFFFF_FFFF) / 2**32


def unix_to_ntp(unix_s: float) -> int:
    """Raw NTP time tag of Unix seconds.

    Raises:
        ValueError: a time before 1900 or after NTP era 0.
    """
    seconds = math.floor(unix_s)
    ntp_seconds = seconds + NTP_UNIX_OFFSET_S
    if not 0 <= ntp_seconds < 2**32:
        raise ValueError(f"time {unix_s!r} is outside NTP era 0")
    fraction = min(int((unix_s - seconds) * 2**32), 2**32 - 1)
    return (ntp_seconds << 32) | fraction


def encode_message(address: str, args: tuple[tuple[str, OscArg], ...] = ()) -> bytes:
    """Encode one OSC message.

    Args:
        address: OSC address, must start with ``/``.
        args: ``(type tag, value)`` pairs; the type tag is explicit (``"f"``, ``"i"``, ``"s"``,
            ``"T"``/``"F"``) so a float parameter is never sent as an int by accident.

    Returns:
        The datagram.

    Raises:
        OscEncodeError: if the address or an argument is invalid.
    """
    if not address.startswith("/"):
        raise OscEncodeError(f"OSC address must start with '/', got {address!r}")
    builder = OscMessageBuilder(address=address)
    for tag, value in args:
        if tag == "f" and not isinstance(value, (int, float)):
            raise OscEncodeError(f"{address}: float argument expected, got {value!r}")
        if tag == "i" and (not isinstance(value, int) or isinstance(value, bool)):
            raise OscEncodeError(f"{address}: int argument expected, got {value!r}")
        if tag == "i" and not -(2**31) <= value < 2**31:  # type: ignore[operator]
            raise OscEncodeError(f"{address}: int32 out of range: {value!r}")
        if tag == "s" and not isinstance(value, str):
            raise OscEncodeError(f"{address}: string argument expected, got {value!r}")
        builder.add_arg(float(value) if tag == "f" else value, tag)
    try:
        return bytes(builder.build().dgram)
    except (BuildError, ValueError, TypeError) as exc:
        raise OscEncodeError(f"{address}: {exc}") from exc


# ---- decoding (OSC 1.0 byte layout) ---------------------------------------------------------


def _string(data: bytes, pos: int, what: str, address: str | None) -> tuple[str, int]:
    """An OSC-string at ``pos``: bytes, a NUL, NULs up to a multiple of 4."""
    end = data.find(b"\x00", pos)
    if end < 0:
        raise OscDecodeError(f"{what} has no terminating NUL", address)
    stop = (end // 4 + 1) * 4
    if stop > len(data):
        raise OscDecodeError(f"{what} is not padded to 4 bytes", address)
    if data[end:stop].strip(b"\x00"):
        raise OscDecodeError(f"{what} has non-NUL padding", address)
    try:
        return data[pos:end].decode("utf-8"), stop
    except UnicodeDecodeError:
        raise OscDecodeError(f"{what} is not UTF-8", address) from None


def _need(data: bytes, pos: int, size: int, tag: str, address: str) -> None:
    if pos + size > len(data):
        raise OscDecodeError(f"argument '{tag}' needs {size} bytes at offset {pos}, datagram is "
                             f"{len(data)} bytes", address)


def _message(data: bytes) -> OscMessage:
    if not data.startswith(b"/"):
        raise OscDecodeError(f"not an OSC message: starts with {data[:8]!r}")
    address, pos = _string(data, 0, "address", None)
    if pos == len(data):  # OSC 1.0: be robust to old senders that omit the type tag string
        return OscMessage(address, (), "")
    if data[pos:pos + 1] != b",":
        raise OscDecodeError("missing type tag string", address)
    tagstr, pos = _string(data, pos, "type tag string", address)
    tags = tagstr[1:]
    bad = sorted(set(tags) - DECODED_TAGS)
    if bad:
        raise OscDecodeError(f"unsupported OSC type tag(s) {''.join(bad)!r} in ',{tags}'",
                             address)
    args: list[OscArg] = []
    for tag in tags:
        if tag in "ifrc":
            _need(data, pos, 4, tag, address)
            raw = data[pos:pos + 4]
            pos += 4
            if tag == "i":
                args.append(struct.unpack(">i", raw)[0])
            elif tag == "f":
                args.append(struct.unpack(">f", raw)[0])
            elif tag == "r":
                args.append(struct.unpack(">I", raw)[0])
            else:
                code = struct.unpack(">I", raw)[0]
                if code > 0x10FFFF:
                    raise OscDecodeError(f"char argument {code:#x} is not a character", address)
                args.append(chr(code))
        elif tag in "htd":
            _need(data, pos, 8, tag, address)
            fmt = {"h": ">q", "t": ">Q", "d": ">d"}[tag]
            args.append(struct.unpack(fmt, data[pos:pos + 8])[0])
            pos += 8
        elif tag == "m":
            _need(data, pos, 4, tag, address)
            args.append(bytes(data[pos:pos + 4]))
            pos += 4
        elif tag in "sS":
            value, pos = _string(data, pos, f"argument '{tag}'", address)
            args.append(value)
        elif tag == "b":
            _need(data, pos, 4, tag, address)
            size = struct.unpack(">i", data[pos:pos + 4])[0]
            pos += 4
            padded = (size + 3) // 4 * 4
            if size < 0 or pos + padded > len(data):
                raise OscDecodeError(f"blob of {size} bytes does not fit", address)
            args.append(bytes(data[pos:pos + size]))
            pos += padded
        else:  # T F carry no bytes
            args.append(tag == "T")
    if pos != len(data):
        raise OscDecodeError(f"datagram is {len(data)} bytes, its type tags ',{tags}' need "
                             f"{pos}", address)
    return OscMessage(address, tuple(args), tags)


def _bundle(data: bytes, depth: int) -> OscBundle:
    if depth > MAX_NESTING:
        raise OscDecodeError(f"bundles nested more than {MAX_NESTING} deep", BUNDLE)
    if len(data) < 16:
        raise OscDecodeError(f"bundle of {len(data)} bytes has no time tag", BUNDLE)
    (timetag,) = struct.unpack(">Q", data[8:16])
    pos, elements = 16, []
    while pos < len(data):
        if pos + 4 > len(data):
            raise OscDecodeError(f"bundle element size cut short at offset {pos}", BUNDLE)
        (size,) = struct.unpack(">i", data[pos:pos + 4])
        pos += 4
        if size <= 0 or size % 4 or pos + size > len(data):
            raise OscDecodeError(f"bundle element size {size} at offset {pos - 4} is not a "
                                 f"positive multiple of 4 within the {len(data)} bytes", BUNDLE)
        content = data[pos:pos + size]
        pos += size
        try:
            elements.append(_element(content, depth + 1))
        except OscDecodeError as exc:
            raise OscDecodeError(f"element {len(elements) + 1}: {exc}", BUNDLE) from None
    return OscBundle(timetag, tuple(elements))


def _element(data: bytes, depth: int) -> OscMessage | OscBundle:
    if data.startswith(BUNDLE_TAG):
        return _bundle(data, depth)
    return _message(data)


def _peek_address(data: bytes) -> str | None:
    """The address of a datagram too broken to decode, when it can still be read."""
    if data.startswith(BUNDLE_TAG):
        return BUNDLE
    end = data.find(b"\x00")
    if not data.startswith(b"/") or end < 0:
        return None
    try:
        return data[:end].decode("utf-8")
    except UnicodeDecodeError:
        return None


def decode_datagram(dgram: bytes) -> OscMessage | OscBundle:
    """Decode one datagram into a message or a bundle, keeping time tags and type tags.

    Args:
        dgram: the UDP payload.

    Returns:
        The message, or the bundle with its elements.

    Raises:
        OscDecodeError: for any malformed datagram; no other exception escapes.
    """
    if not dgram:
        raise OscDecodeError("empty datagram")
    if len(dgram) > MAX_DATAGRAM_BYTES:
        raise OscDecodeError(f"datagram of {len(dgram)} bytes is larger than UDP allows")
    data = bytes(dgram)
    if len(data) % 4:
        raise OscDecodeError(f"datagram of {len(data)} bytes is not a multiple of 4",
                             _peek_address(data))
    try:
        if data.startswith(b"#"):
            if not data.startswith(BUNDLE_TAG):
                raise OscDecodeError(f"not an OSC bundle: starts with {data[:8]!r}")
            return _bundle(data, 1)
        return _message(data)
    except OscDecodeError:
        raise
    except (ValueError, struct.error, IndexError, OverflowError) as exc:  # defensive
        raise OscDecodeError(f"malformed OSC datagram ({len(data)} bytes): {exc}") from exc


def flatten(packet: OscMessage | OscBundle) -> list[OscMessage]:
    """Every message of a message or bundle, in wire order, time tags ignored."""
    if isinstance(packet, OscMessage):
        return [packet]
    out: list[OscMessage] = []
    for element in packet.elements:
        out.extend(flatten(element))
    return out


def decode_packet(dgram: bytes) -> list[OscMessage]:
    """Decode one datagram (a message or a bundle) into its messages, time tags ignored.

    Use :func:`decode_datagram` where bundles must be applied at their time.

    Raises:
        OscDecodeError: for any malformed datagram; no other exception escapes.
    """
    return flatten(decode_datagram(dgram))


# ---- time tags ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Due:
    """Messages of one bundle that take effect together.

    Attributes:
        at_unix_s: when, in Unix seconds; None for now (immediately, or a time already past).
        messages: the bundle's own messages in wire order (enclosed bundles are their own
            :class:`Due`, not atomic with this one, as OSC 1.0 says).
    """

    at_unix_s: float | None
    messages: tuple[OscMessage, ...]


def schedule(packet: OscMessage | OscBundle, now_unix_s: float,
             max_ahead_s: float) -> list[Due]:
    """When each part of a datagram takes effect (pure: the caller applies or holds).

    A message is due now. A bundle is due at its time tag: now when it is
    :data:`IMMEDIATELY` or not later than ``now_unix_s``. An enclosed bundle whose time tag is
    :data:`IMMEDIATELY` takes its enclosing bundle's time. The result keeps wire order.

    Args:
        packet: a decoded datagram.
        now_unix_s: the receiver's clock, Unix seconds.
        max_ahead_s: the latest time accepted, as seconds after ``now_unix_s``.

    Returns:
        One :class:`Due` per run of messages, in wire order; bundles with no message give none.

    Raises:
        OscTimingError: an enclosed bundle earlier than its enclosing one (OSC 1.0: must be >=),
            or a time more than ``max_ahead_s`` ahead. Nothing of the datagram may be applied.
    """
    if isinstance(packet, OscMessage):
        return [Due(None, (packet,))]
    out: list[Due] = []

    def walk(bundle: OscBundle, outer: int | None) -> None:
        tag = bundle.timetag
        if outer is not None and tag == IMMEDIATELY:
            tag = outer
        elif outer is not None and outer != IMMEDIATELY and tag < outer:
            raise OscTimingError(
                f"enclosed bundle time tag {_describe(tag, now_unix_s)} is earlier than its "
                f"enclosing bundle's {_describe(outer, now_unix_s)} (OSC 1.0: must be >=)")
        at: float | None = None
        if tag != IMMEDIATELY:
            at = ntp_to_unix(tag)
            if at - now_unix_s > max_ahead_s:
                raise OscTimingError(f"time tag {at - now_unix_s:.1f} s ahead; at most "
                                     f"{max_ahead_s:g} s ahead is accepted")
            if at <= now_unix_s:
                at = None
        run: list[OscMessage] = []
        for element in bundle.elements:
            if isinstance(element, OscMessage):
                run.append(element)
                continue
            if run:
                out.append(Due(at, tuple(run)))
                run = []
            walk(element, tag)
        if run:
            out.append(Due(at, tuple(run)))

    walk(packet, None)
    return out


def _describe(tag: int, now_unix_s: float) -> str:
    if tag == IMMEDIATELY:
        return "immediately"
    return f"{ntp_to_unix(tag) - now_unix_s:+.3f} s"


T = TypeVar("T")
_EARLY_S = 0.001  # the loop may wake this much before a timer's time; that counts as on time


class BundleHold(Generic[T]):
    """Holds the parts of received bundles whose time has not come, and applies them on time.

    Bounded against a hostile peer: at most ``max_bundles`` parts and ``max_messages``
    messages held at once (whatever the number of senders), nothing more than ``max_ahead_s``
    ahead. A datagram that does not fit is refused whole; nothing of it is applied.

    Args:
        apply: called with the messages of one part and the context given to :meth:`receive`
            (the sender's address, for instance), on the event loop, in due order; parts due at
            the same time keep their arrival order.
        max_ahead_s: latest accepted time tag, in seconds after now.
        max_bundles: parts held at once.
        max_messages: messages held at once.
        clock: wall clock in Unix seconds (time tags are wall-clock times).
    """

    def __init__(self, apply: Callable[[tuple[OscMessage, ...], T], None], *,
                 max_ahead_s: float = 60.0, max_bundles: int = 64, max_messages: int = 1024,
                 clock: Callable[[], float] = time.time) -> None:
        self._apply = apply
        self.max_ahead_s = max_ahead_s
        self.max_bundles = max_bundles
        self.max_messages = max_messages
        self._clock = clock
        self._heap: list[tuple[float, int, tuple[OscMessage, ...], T]] = []
        self._order = itertools.count()
        self._messages = 0
        self._timer: asyncio.TimerHandle | None = None

    @property
    def held_bundles(self) -> int:
        """Parts of bundles waiting for their time."""
        return len(self._heap)

    @property
    def held_messages(self) -> int:
        """Messages waiting for their time."""
        return self._messages

    def receive(self, packet: OscMessage | OscBundle, context: T) -> int:
        """Apply what is due now, hold the rest.

        Must run on the event loop when anything is to be held.

        Args:
            packet: a decoded datagram.
            context: passed back to ``apply``.

        Returns:
            How many parts were held for later.

        Raises:
            OscTimingError: out-of-order nesting, too far ahead, or the hold is full; then
                nothing of the datagram was applied or held.
        """
        parts = schedule(packet, self._clock(), self.max_ahead_s)
        later = [d for d in parts if d.at_unix_s is not None]
        if later:
            count = sum(len(d.messages) for d in later)
            if len(self._heap) + len(later) > self.max_bundles or \
                    self._messages + count > self.max_messages:
                raise OscTimingError(
                    f"{len(self._heap)} bundles ({self._messages} messages) already wait for "
                    f"their time; at most {self.max_bundles} ({self.max_messages} messages)")
            loop = asyncio.get_running_loop()
            offset = loop.time() - self._clock()
            for d in later:
                assert d.at_unix_s is not None
                heapq.heappush(self._heap, (d.at_unix_s + offset, next(self._order),
                                            d.messages, context))
                self._messages += len(d.messages)
            self._arm(loop)
        for d in parts:
            if d.at_unix_s is None:
                self._apply(d.messages, context)
        return len(later)

    def _arm(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._heap:
            self._timer = loop.call_at(self._heap[0][0], self._fire)

    def _fire(self) -> None:
        self._timer = None
        loop = asyncio.get_running_loop()
        now = loop.time() + _EARLY_S
        try:
            while self._heap and self._heap[0][0] <= now:
                _, _, messages, context = heapq.heappop(self._heap)
                self._messages -= len(messages)
                self._apply(messages, context)
        finally:
            self._arm(loop)

    def clear(self) -> None:
        """Drop everything held (on stop or close): held bundles never apply after that."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._heap.clear()
        self._messages = 0
