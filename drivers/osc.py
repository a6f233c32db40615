"""OSC 1.0 wire codec: pure functions over python-osc's builder and parser.

Drivers and simulators never parse datagrams inline; they call :func:`decode_packet` and
:func:`encode_message`. Every malformed datagram becomes an :class:`OscDecodeError`, so a caller
can count it and carry on.
"""

from __future__ import annotations

from dataclasses import dataclass

from pythonosc.osc_message_builder import BuildError, OscMessageBuilder
from pythonosc.osc_packet import OscPacket, ParseError

OscArg = int | float | str | bool | bytes


class OscDecodeError(ValueError):
    """A datagram that is not a valid OSC message or bundle."""


class OscEncodeError(ValueError):
    """A message that cannot be encoded (bad address or argument type)."""


@dataclass(frozen=True, slots=True)
class OscMessage:
    """One decoded OSC message: its address and its arguments in order."""

    address: str
    args: tuple[OscArg, ...]


def encode_message(address: str, args: tuple[tuple[str, OscArg], ...] = ()) -> bytes:
    """Encode one OSC message.

    Args:
        address: OSC address, must start with ``/``.
        args: ``(type tag, value)`` pairs; the type tag is explicit (``"f"``, ``"i"``, ``"s"``,
            ``"T"``/``"F"``) so a float parameter is never sent as an int by accident.

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


_KNOWN_TAGS = frozenset("ifsbhdtTFNIcrm[]")


def _type_tags(dgram: bytes) -> str:
    end = dgram.find(b"\x00")
    start = (end // 4 + 1) * 4
    if start >= len(dgram):
        return ""
    if dgram[start:start + 1] != b",":
        raise OscDecodeError("missing type tag string")
    stop = dgram.find(b"\x00", start)
    if stop < 0:
        raise OscDecodeError("unterminated type tag string")
    return dgram[start + 1:stop].decode("ascii", errors="replace")


def _check_strict(dgram: bytes, address: str, params: tuple[object, ...]) -> None:
    """python-osc skips unknown tags and pads short data; a stage controller must not."""
    tags = _type_tags(dgram)
    unknown = set(tags) - _KNOWN_TAGS
    if unknown:
        raise OscDecodeError(f"{address}: unknown OSC type tag(s) {''.join(sorted(unknown))!r}")
    if tags and set(tags) <= set("ifs") and len(tags) == len(params):
        expected = len(encode_message(address, tuple(zip(tags, params, strict=True))))  # type: ignore[arg-type]
        if expected != len(dgram):
            raise OscDecodeError(f"{address}: datagram is {len(dgram)} bytes, its type tags "
                                 f"',{tags}' need {expected}")


def decode_packet(dgram: bytes) -> list[OscMessage]:
    """Decode one datagram (a message or a bundle) into its messages.

    Raises:
        OscDecodeError: for any malformed datagram; no other exception escapes.
    """
    if not dgram:
        raise OscDecodeError("empty datagram")
    try:
        packet = OscPacket(dgram)
        out: list[OscMessage] = []
        for timed in packet.messages:
            msg = timed.message
            address = msg.address
            if not isinstance(address, str) or not address.startswith("/"):
                raise OscDecodeError(f"bad OSC address {address!r}")
            params = tuple(msg.params)
            _check_strict(bytes(msg.dgram), address, params)
            out.append(OscMessage(address=address, args=params))
        return out
    except OscDecodeError:
        raise
    except (ParseError, ValueError, TypeError, IndexError, KeyError, OverflowError) as exc:
        raise OscDecodeError(f"malformed OSC datagram ({len(dgram)} bytes): {exc}") from exc
    except Exception as exc:  # python-osc may raise anything on hostile input
        raise OscDecodeError(f"malformed OSC datagram ({len(dgram)} bytes): {exc!r}") from exc
