"""The stagectl LED-processor OSC address space (see ``docs/protocols/led-osc.md``).

One table, :data:`PARAMS`, names every settable parameter with its OSC address, type tag,
unit and validator. The driver validates with it before any byte is sent; the simulator
validates with it again on receipt (a third-party client may send anything).

What the wire accepts is stricter than what the driver's API accepts: ``set("colour_temperature_k",
5600.0)`` from a JSON console is fine (it is normalised before encoding as ``i``), but a datagram
carrying ``f 5600.0`` for an ``i`` parameter is refused (:data:`WIRE_TAGS`): a sender that sends
floats for an integer parameter has the parameter wrong, and a preset ``1.5`` or ``5600.5`` K
must not be guessed at.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from drivers.osc import OscArg, OscMessage, encode_message

TEST_PATTERNS: tuple[str, ...] = (
    "off",
    "white",
    "black",
    "red",
    "green",
    "blue",
    "grid",
    "ramp",
    "colour_bars",
    "checkerboard",
)
GENLOCK_SOURCES: tuple[str, ...] = ("internal", "reference", "sdi", "st2110")
OUTPUT_FRAME_RATES: tuple[float, ...] = (
    23.976, 24.0, 25.0, 29.97, 30.0, 47.952, 48.0, 50.0, 59.94, 60.0, 71.928, 72.0,
    96.0, 100.0, 119.88, 120.0,
)
PRESET_MIN, PRESET_MAX = 1, 128
MAX_BRIGHTNESS_NITS = 10000.0
SUBSCRIPTION_TTL_DEFAULT_S, SUBSCRIPTION_TTL_MAX_S = 5.0, 60.0

WIRE_TAGS: dict[str, str] = {"f": "fi", "i": "i", "s": "sS"}
"""OSC type tags a receiver accepts for each declared tag.

``i`` for ``f``: what a tolerant receiver does (``oscsend ... i 800``, osc.js sending a whole
number). ``S`` (OSC 1.0 non-standard "symbol", encoded exactly like a string; ``oscsend ... S
grid``) for ``s``. Never ``f`` for ``i``. The 0/1 flags also accept ``T``/``F``
(:data:`FLAG_WIRE_TAGS`).
"""
FLAG_WIRE_TAGS = "iTF"


class ValidationError(ValueError):
    """A command value outside its parameter's range or type; nothing was sent."""

    def __init__(self, param: str, value: object, expected: str, device: str | None = None):
        self.param = param
        self.value = value
        self.expected = expected
        self.device = device
        where = f"{device}: " if device else ""
        super().__init__(f"{where}setting {param} to {value!r}: expected {expected}")


class WireTypeError(ValidationError):
    """A received message whose argument count or OSC type tags do not fit its address."""


def _number(lo: float, hi: float, unit: str) -> Callable[[object], float]:
    def check(value: object) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"a number in {unit}")
        v = float(value)
        if not math.isfinite(v) or not lo <= v <= hi:
            raise ValueError(f"{lo:g}..{hi:g} {unit}")
        return v

    return check


def _integer(lo: int, hi: int, unit: str) -> Callable[[object], int]:
    def check(value: object) -> int:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"an integer {lo}..{hi} {unit}".rstrip())
        if not lo <= value <= hi:
            raise ValueError(f"{lo}..{hi} {unit}".rstrip())
        return value

    return check


def _flag(value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.lower() in ("on", "off", "true", "false", "1", "0"):
        return value.lower() in ("on", "true", "1")
    raise ValueError("0/1 (off/on)")


def _choice(options: tuple[str, ...]) -> Callable[[object], str]:
    def check(value: object) -> str:
        if not isinstance(value, str) or value not in options:
            raise ValueError("one of " + ", ".join(options))
        return value

    return check


def _frame_rate(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError("a frame rate in fps")
    for rate in OUTPUT_FRAME_RATES:
        if abs(float(value) - rate) < 0.005:
            return rate
    raise ValueError("one of " + ", ".join(f"{r:g}" for r in OUTPUT_FRAME_RATES) + " fps")


@dataclass(frozen=True, slots=True)
class Param:
    """One settable LED-processor parameter.

    Attributes:
        key: state key, with its unit in the name (``brightness_nits``).
        address: OSC address it is set and reported on.
        tag: OSC type tag of its single argument.
        unit: human unit for messages and docs.
        check: validator returning the normalised value or raising ``ValueError(expected)``.
        accepts: OSC type tags accepted on receipt; empty for :data:`WIRE_TAGS` of ``tag``.
    """

    key: str
    address: str
    tag: str
    unit: str
    check: Callable[[object], Any]
    accepts: str = ""

    @property
    def wire_tags(self) -> str:
        """The OSC type tags a received set/report may carry for this parameter."""
        return self.accepts or WIRE_TAGS[self.tag]

    def validate(self, value: object, device: str | None = None) -> Any:
        """Return the normalised value or raise :class:`ValidationError`."""
        try:
            return self.check(value)
        except ValueError as exc:
            raise ValidationError(self.key, value, str(exc), device) from None

    def encode(self, value: Any) -> bytes:
        """Encode an already validated value as the OSC set message."""
        wire: OscArg = int(value) if self.tag == "i" else value
        return encode_message(self.address, ((self.tag, wire),))


PARAMS: dict[str, Param] = {
    p.key: p
    for p in (
        Param("brightness_nits", "/led/brightness", "f", "nits",
              _number(0.0, MAX_BRIGHTNESS_NITS, "nits")),
        Param("colour_temperature_k", "/led/colour_temperature", "i", "K",
              _integer(2000, 11000, "K")),
        Param("gamma", "/led/gamma", "f", "", _number(1.0, 4.0, "(gamma exponent)")),
        Param("blackout", "/led/blackout", "i", "0/1", _flag, FLAG_WIRE_TAGS),
        Param("freeze", "/led/freeze", "i", "0/1", _flag, FLAG_WIRE_TAGS),
        Param("test_pattern", "/led/test_pattern", "s", "", _choice(TEST_PATTERNS)),
        Param("output_frame_rate_hz", "/led/output/frame_rate", "f", "fps", _frame_rate),
        Param("genlock_source", "/led/genlock/source", "s", "", _choice(GENLOCK_SOURCES)),
        Param("genlock_phase_deg", "/led/genlock/phase", "f", "deg",
              _number(-360.0, 360.0, "deg")),
    )
}
BY_ADDRESS: dict[str, Param] = {p.address: p for p in PARAMS.values()}

# Actions and status (not part of the desired state).
PRESET_RECALL = "/led/preset/recall"
PRESET_SAVE = "/led/preset/save"
SUBSCRIBE = "/led/subscribe"
UNSUBSCRIBE = "/led/unsubscribe"
DUMP = "/led/dump"
SESSION = "/led/session"
ERROR = "/led/error"
STATUS_TEMPERATURE = "/led/status/temperature"
STATUS_PANELS = "/led/status/panels"
STATUS_ALERTS = "/led/status/alerts"
STATUS_PRESET = "/led/status/preset"
STATUS_OUTPUT = "/led/status/brightness_output"

check_preset = _integer(PRESET_MIN, PRESET_MAX, "")


def validate_preset(value: object, device: str | None = None) -> int:
    """Validate a preset number (1..128) or raise :class:`ValidationError`."""
    try:
        return check_preset(value)
    except ValueError as exc:
        raise ValidationError("preset", value, str(exc), device) from None


def _tag_list(tags: str) -> str:
    return " or ".join(f"'{t}'" for t in tags)


def coerce_wire(param: Param, msg: OscMessage) -> Any:
    """Validate the single argument of a received set/report message for ``param``.

    Accepts the type tags of :attr:`Param.wire_tags`: an ``i`` for an ``f`` parameter
    (``oscsend ... i 800``), ``S`` for ``s``, ``T``/``F`` for a 0/1 flag; never ``f`` for ``i``.

    Args:
        param: the parameter the message's address names.
        msg: the received message.

    Returns:
        The normalised value.

    Raises:
        ValidationError: wrong argument count, type tag or range.
    """
    if len(msg.args) != 1:
        raise WireTypeError(param.key, msg.args, f"exactly one '{param.tag}' argument")
    value = msg.args[0]
    tag = msg.type_tags[:1]
    if tag not in param.wire_tags:
        raise WireTypeError(param.key, value,
                            f"OSC type {_tag_list(param.wire_tags)}, got '{tag}'")
    if param.tag == "f" and isinstance(value, float):
        value = round(value, 4)  # OSC floats are float32: drop the binary noise
    return param.validate(value)


def coerce_wire_preset(msg: OscMessage) -> int:
    """Validate a received ``/led/preset/recall`` or ``/led/preset/save``: one ``i`` 1..128.

    Raises:
        ValidationError: not exactly one ``i`` argument (an ``f`` is refused), or out of range.
    """
    if len(msg.args) != 1:
        raise WireTypeError("preset", msg.args, "exactly one 'i' argument")
    if msg.type_tags != "i":
        raise WireTypeError("preset", msg.args[0], f"OSC type 'i', got '{msg.type_tags}'")
    return validate_preset(msg.args[0])


def coerce_wire_ttl(msg: OscMessage, default_s: float = SUBSCRIPTION_TTL_DEFAULT_S) -> float:
    """The ttl of a received ``/led/subscribe``, in seconds.

    No argument means ``default_s``; else one ``f`` (or ``i``), 0 < ttl <= 60.

    Raises:
        ValidationError: more than one argument, another type, or out of range (a ttl is
            never silently replaced: the subscriber would renew too late).
    """
    if not msg.args:
        return default_s
    if len(msg.args) != 1:
        raise WireTypeError("ttl_s", msg.args, "at most one 'f' argument (seconds)")
    value = msg.args[0]
    tag = msg.type_tags[:1]
    if tag not in WIRE_TAGS["f"]:
        raise WireTypeError("ttl_s", value, f"OSC type {_tag_list(WIRE_TAGS['f'])}, got '{tag}'")
    ttl = float(value)
    if not math.isfinite(ttl) or not 0 < ttl <= SUBSCRIPTION_TTL_MAX_S:
        raise ValidationError("ttl_s", value, f"0 < ttl <= {SUBSCRIPTION_TTL_MAX_S:g} s")
    return ttl
