"""Pure parsers for Brompton Tessera HTTP replies (``docs/protocols/tessera-http.md``).

Every function here turns what a processor (or anything pretending to be one) sent into
stagectl model values, or raises :class:`~drivers.led.http.ReplyError`; nothing else escapes.
No I/O, so hypothesis can fuzz them directly.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from drivers.device import Problem
from drivers.led.http import ReplyError, clip

ROOT = "api"
TREE_PATH = "/api/"
SMALL_TREE_LEAVES = 500  # whole-tree polling up to this many leaves (our rule, see the page)
MAX_GROUPS = 256  # groups read from one reply (bounded)
MAX_DEPTH = 24  # deeper than any Tessera tree: refused as malformed
MAX_ALERTS = 32

BRIGHTNESS = ("output", "global-colour", "brightness")
COLOUR_TEMPERATURE = ("output", "global-colour", "colour-temperature")
GAMMA = ("output", "global-colour", "gamma")
BLACKOUT = ("override", "blackout", "enabled")
FREEZE = ("override", "freeze", "enabled")
PATTERN_ENABLED = ("override", "test-pattern", "enabled")
PATTERN_TYPE = ("override", "test-pattern", "type")
PORT_TYPE = ("input", "active", "source", "port-type")
PORT_NUMBER = ("input", "active", "source", "port-number")
PRESET_NUMBER = ("presets", "active", "number")
PRESET_NAME = ("presets", "active", "name")
GROUP_ITEMS = ("groups", "items")
PANELS_TOTAL = ("panels", "statistics", "associated-count")
PANELS_ONLINE = ("panels", "statistics", "online-count")
PANELS_ERRORS = ("panels", "statistics", "error-count")
TEMPERATURE = ("system", "temperature")
UPTIME = ("system", "uptime")
PROCESSOR_TYPE = ("system", "processor-type")
SERIAL = ("system", "serial-number")
FIRMWARE = ("system", "software-version")
PROCESSOR_NAME = ("system", "processor-name")
FAILOVER_ACTIVE = ("output", "network", "failover", "state", "is-active")
CABLE_LOOPS = ("output", "network", "cable-redundancy", "loops")

# Subtrees polled one by one when the whole tree is large (the page's "Polling" table).
SUBTREES: tuple[tuple[str, ...], ...] = (
    ("output", "global-colour"), ("override",), ("presets", "active"),
    ("input", "active", "source"), ("groups",), ("panels", "statistics"), ("system",),
    ("output", "network", "failover", "state"),
)

# model test pattern -> Tessera override/test-pattern/type
PATTERN_TO_TESSERA: dict[str, str] = {
    "white": "white", "black": "black", "red": "red", "green": "green", "blue": "blue",
    "grid": "grid", "checkerboard": "checkerboard", "colour_bars": "colour-bars",
    "ramp": "gradient",
}
TESSERA_TO_PATTERN: dict[str, str] = {v: k for k, v in PATTERN_TO_TESSERA.items()}
VENDOR_PATTERN_PREFIX = "tessera:"
PORT_TYPES: tuple[str, ...] = ("dvi", "hdmi", "sdi")
_WORD = re.compile(r"^[a-z0-9][a-z0-9-]{0,47}$")
_UPTIME = re.compile(r"^\s*(\d{1,5})d\s*(\d{1,2})h\s*(\d{1,2})m\s*(\d{1,2})s\s*$", re.IGNORECASE)
_GROUP_ID = re.compile(r"^[0-9]{1,10}$")

# The named errors of API 3.1 p.3, by their squeezed form (``Path not found`` and
# ``PathNotFound`` alike): (problem code, refusal).
ERRORS: dict[str, tuple[str, bool]] = {
    "pathnotfound": ("vendor_error", True),
    "badoperation": ("vendor_error", True),
    "notsupported": ("vendor_error", True),
    "missinginputparameter": ("vendor_error", True),
    "missinginputparam": ("vendor_error", True),
    "badinputparametertype": ("vendor_error", True),
    "badinputparametervalue": ("vendor_error", True),
    "accessdenied": ("vendor_error", True),
    "noprojectloaded": ("no_project_loaded", True),
    "objectnotfound": ("vendor_error", True),
    "operationfailed": ("vendor_error", False),
}
UNSUPPORTED_ERRORS = ("pathnotfound", "notsupported")


def squeeze(name: str) -> str:
    """An error name without case or spaces (``Path not found`` -> ``pathnotfound``)."""
    return re.sub(r"[^a-z]", "", name.lower())


class VendorError(ReplyError):
    """A named Tessera error (``Path not found``, ``No project loaded``, ...).

    Attributes:
        name: the squeezed error name (``pathnotfound``), or ``""`` when unnamed.
    """

    def __init__(self, problem: Problem, refusal: bool, name: str) -> None:
        self.name = name
        super().__init__(problem, refusal)

    @property
    def unsupported(self) -> bool:
        """The path or feature does not exist on this processor/firmware."""
        return self.name in UNSUPPORTED_ERRORS


def vendor_error(text: object, where: str = "") -> VendorError:
    """The :class:`VendorError` for a processor's error text (mapped as the page's table)."""
    shown = clip(text, 120) or "?"
    name = squeeze(shown)
    code, refusal = ERRORS.get(name, ("vendor_error", True))
    prefix = f"{where}: " if where else ""
    if code == "no_project_loaded":
        problem = Problem("processor has no project loaded", code)
    else:
        problem = Problem(f"{prefix}the processor answered an error: {shown}", "vendor_error",
                          detail=shown)
    return VendorError(problem, refusal, name)


def malformed(where: str, what: str) -> ReplyError:
    """A reply with the wrong shape (``http_malformed``)."""
    return ReplyError(Problem(f"{where} answered an unexpected reply ({clip(what, 100)})",
                              "http_malformed", address=where))


def error_in(reply: Any) -> str | None:
    """The error text of a ``{"response-code": ...}`` reply (any key case), or None."""
    if isinstance(reply, dict):
        for key, value in reply.items():
            if isinstance(key, str) and key.lower() == "response-code":
                return clip(value, 120) or "?"
    return None


def unwrap(reply: Any, name: str, where: str) -> Any:
    """The value under ``name`` in a ``{"<leaf>": value}`` reply.

    A reply counts only when it is an object with that key (compared case-insensitively,
    since the processor's key case is not documented). A ``response-code`` is the processor's
    error, whatever the HTTP status.

    Raises:
        ReplyError: a named error (:class:`VendorError`) or the wrong shape.
    """
    text = error_in(reply)
    if text is not None:
        raise vendor_error(text, where)
    if not isinstance(reply, dict):
        raise malformed(where, f"a JSON {type(reply).__name__}, expected an object")
    if name in reply:
        return reply[name]
    lowered = name.lower()
    for key, value in reply.items():
        if isinstance(key, str) and key.lower() == lowered:
            return value
    raise malformed(where, f"no {name!r} in the reply")


def child(node: Any, *path: str) -> Any:
    """The value at ``path`` below ``node`` (keys compared case-insensitively), or None."""
    for name in path:
        if not isinstance(node, dict):
            return None
        if name in node:
            node = node[name]
            continue
        lowered = name.lower()
        for key, value in node.items():
            if isinstance(key, str) and key.lower() == lowered:
                node = value
                break
        else:
            return None
    return node


def _where(path: tuple[str, ...]) -> str:
    return "/".join(path)


def as_number(value: Any, path: tuple[str, ...], lo: float, hi: float) -> float:
    """A finite JSON number in ``lo..hi`` (not a bool), or :class:`ReplyError`."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise malformed(_where(path), f"{_where(path)} is {type(value).__name__}, not a number")
    try:
        number = float(value)
    except OverflowError:
        raise malformed(_where(path), f"{_where(path)} is out of range") from None
    if not math.isfinite(number) or not lo <= number <= hi:
        raise malformed(_where(path), f"{_where(path)} = {clip(value, 40)} is outside "
                        f"{lo:g}..{hi:g}")
    return number


def as_int(value: Any, path: tuple[str, ...], lo: int, hi: int) -> int:
    """A whole JSON number in ``lo..hi`` (``3.0`` accepted), or :class:`ReplyError`."""
    number = as_number(value, path, lo, hi)
    if not number.is_integer():
        raise malformed(_where(path), f"{_where(path)} = {number:g} is not a whole number")
    return int(number)


def as_bool(value: Any, path: tuple[str, ...]) -> bool:
    """A JSON boolean, or :class:`ReplyError`."""
    if not isinstance(value, bool):
        raise malformed(_where(path), f"{_where(path)} is {type(value).__name__}, not a bool")
    return value


def as_text(value: Any, path: tuple[str, ...], limit: int = 128) -> str:
    """A JSON string (at most the API's 128 characters), made printable, or :class:`ReplyError`."""
    if not isinstance(value, str):
        raise malformed(_where(path), f"{_where(path)} is {type(value).__name__}, not a string")
    return clip(value, limit)


def brightness(value: Any, path: tuple[str, ...] = BRIGHTNESS) -> float:
    """Nits, 0.1-nit resolution, as the processor holds them (−1..10000, API 3.1 p.7)."""
    return round(as_number(value, path, -1.0, 10000.0), 1)


def colour_temperature(value: Any) -> int:
    """Kelvin, whole (the API's float 2000..11000 rounded)."""
    return int(round(as_number(value, COLOUR_TEMPERATURE, 2000.0, 11000.0)))


def gamma(value: Any) -> float:
    """The gamma exponent (0.2..4.0, API 3.1 p.8), 4 decimals."""
    return round(as_number(value, GAMMA, 0.2, 4.0), 4)


def pattern_type(value: Any) -> str:
    """A test-pattern type as the model names it (``tessera:<type>`` for Tessera-only ones).

    A frame-store number (3.5.1, companion#3096) may come back as a number or a string.
    """
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        frame = as_int(value, PATTERN_TYPE, 0, 32767)
        return f"{VENDOR_PATTERN_PREFIX}{frame}"
    word = as_text(value, PATTERN_TYPE, 48).lower()
    if not _WORD.match(word):
        raise malformed(_where(PATTERN_TYPE), f"test-pattern type {word!r}")
    return TESSERA_TO_PATTERN.get(word, VENDOR_PATTERN_PREFIX + word)


def test_pattern(enabled: Any, kind: Any) -> str:
    """The model's ``test_pattern`` from ``enabled`` and ``type`` (``off`` when disabled)."""
    if not as_bool(enabled, PATTERN_ENABLED):
        return "off"
    if kind is None:
        raise malformed(_where(PATTERN_TYPE), "test pattern enabled without a type")
    return pattern_type(kind)


def port_type(value: Any) -> str:
    """An input port type, lower case (``sdi``)."""
    word = as_text(value, PORT_TYPE, 32).lower()
    if not _WORD.match(word):
        raise malformed(_where(PORT_TYPE), f"port type {word!r}")
    return word


def port_number(value: Any) -> int:
    """An input port number (1..2 documented; up to 99 taken)."""
    return as_int(value, PORT_NUMBER, 0, 99)


def preset_number(value: Any) -> int:
    """``presets/active/number`` (documented as a string): 0 when none or empty."""
    if value is None:
        return 0
    if isinstance(value, str):
        text = value.strip()
        if not text or text.lower() in ("none", "-"):
            return 0
        if not re.fullmatch(r"-?[0-9]{1,6}", text):
            raise malformed(_where(PRESET_NUMBER), f"preset number {clip(text, 20)!r}")
        value = int(text)
    number = as_int(value, PRESET_NUMBER, -1, 32767)
    return max(0, number)


def count(value: Any, path: tuple[str, ...]) -> int:
    """A panel count (0..65535)."""
    return as_int(value, path, 0, 65535)


def uptime_s(value: Any) -> float:
    """``system/uptime`` (``DDd HHh MMm SSs``, API 3.1 p.12) in seconds."""
    text = as_text(value, UPTIME, 40)
    found = _UPTIME.match(text)
    if not found:
        raise malformed(_where(UPTIME), f"uptime {text!r}, expected 'DDd HHh MMm SSs'")
    days, hours, minutes, seconds = (int(g) for g in found.groups())
    if hours > 23 or minutes > 59 or seconds > 59:
        raise malformed(_where(UPTIME), f"uptime {text!r}")
    return float(((days * 24 + hours) * 60 + minutes) * 60 + seconds)


def format_uptime(seconds: float) -> str:
    """Seconds as ``DDd HHh MMm SSs`` (what the processor shows)."""
    total = max(0, int(seconds))
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{days:02d}d {hours:02d}h {minutes:02d}m {secs:02d}s"


def hottest(node: Any, depth: int = 0) -> float | None:
    """The highest reading in a ``system/temperature`` subtree (°C), None when there is none.

    Nested sensors (``ethernet/copper/a``) are walked; ``null`` is a missing sensor.
    """
    if depth > 4:
        raise malformed(_where(TEMPERATURE), "temperature subtree nested too deep")
    if node is None:
        return None
    if isinstance(node, dict):
        readings = [hottest(v, depth + 1) for v in list(node.values())[:64]]
        found = [r for r in readings if r is not None]
        return max(found) if found else None
    return as_number(node, TEMPERATURE, -60.0, 200.0)


def count_leaves(node: Any, limit: int = 100000) -> int:
    """How many leaves a tree holds (stops counting at ``limit``)."""
    total = 0
    stack: list[tuple[Any, int]] = [(node, 0)]
    while stack and total < limit:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise malformed(ROOT, "tree nested too deep")
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        else:
            total += 1
    return total


@dataclass
class TreeState:
    """What one poll learned.

    Attributes:
        values: reported keys in model units (only those the processor gave).
        uptime_s: seconds since the processor started, when given.
        uptime: the processor's own uptime text.
        groups: the group ids present (when the tree has ``groups/items``).
        detail: vendor detail for the device snapshot (raw colour temperature, preset name).
    """

    values: dict[str, Any] = field(default_factory=dict)
    uptime_s: float | None = None
    uptime: str = ""
    groups: list[str] | None = None
    detail: dict[str, Any] = field(default_factory=dict)


def parse_tree(tree: Any) -> TreeState:
    """The model's view of a Tessera tree (the value under ``api`` of ``GET /api/``).

    Also takes a partial tree (subtrees assembled under their paths). A missing leaf is "not
    reported", never zero.

    Raises:
        ReplyError: not an object, a known leaf of the wrong type or out of range.
    """
    if not isinstance(tree, dict):
        raise malformed(ROOT, f"the tree is a JSON {type(tree).__name__}, not an object")
    state = TreeState()
    out = state.values
    value = child(tree, *BRIGHTNESS)
    if value is not None:
        out["brightness_nits"] = brightness(value)
    value = child(tree, *COLOUR_TEMPERATURE)
    if value is not None:
        out["colour_temperature_k"] = colour_temperature(value)
        state.detail["colour_temperature_raw"] = as_number(value, COLOUR_TEMPERATURE,
                                                           2000.0, 11000.0)
    value = child(tree, *GAMMA)
    if value is not None:
        out["gamma"] = gamma(value)
    value = child(tree, *BLACKOUT)
    if value is not None:
        out["blackout"] = as_bool(value, BLACKOUT)
    value = child(tree, *FREEZE)
    if value is not None:
        out["freeze"] = as_bool(value, FREEZE)
    value = child(tree, *PATTERN_ENABLED)
    if value is not None:
        out["test_pattern"] = test_pattern(value, child(tree, *PATTERN_TYPE))
    kind, number = child(tree, *PORT_TYPE), child(tree, *PORT_NUMBER)
    if kind is not None and number is not None:
        out["input"] = f"{port_type(kind)}:{port_number(number)}"
    items = child(tree, *GROUP_ITEMS)
    if isinstance(items, dict):
        state.groups = []
        for gid, group in list(items.items())[:MAX_GROUPS]:
            if not isinstance(gid, str) or not _GROUP_ID.match(gid):
                raise malformed(_where(GROUP_ITEMS), f"group id {clip(gid, 20)!r}")
            state.groups.append(gid)
            level = child(group, "brightness")
            if level is not None:
                out[f"group_brightness.{gid}"] = round(as_number(
                    level, (*GROUP_ITEMS, gid, "brightness"), 0.0, 10000.0), 1)
    elif items is not None:
        raise malformed(_where(GROUP_ITEMS), "groups/items is not an object")
    value = child(tree, *PRESET_NUMBER)
    if child(tree, "presets", "active") is not None:
        out["preset"] = preset_number(value)
    name = child(tree, *PRESET_NAME)
    if name is not None:
        state.detail["preset_name"] = as_text(name, PRESET_NAME)
    _panels(tree, state)
    temp = child(tree, *TEMPERATURE)
    if temp is not None:
        reading = hottest(temp)
        if reading is not None:
            out["temperature_c"] = round(reading, 1)
    _identity(tree, state)
    return state


def _panels(tree: Any, state: TreeState) -> None:
    out = state.values
    alerts: list[str] = []
    seen = False
    total, online = child(tree, *PANELS_TOTAL), child(tree, *PANELS_ONLINE)
    if total is not None and online is not None:
        seen = True
        out["panels_total"] = count(total, PANELS_TOTAL)
        out["panels_online"] = min(count(online, PANELS_ONLINE), out["panels_total"])
        if out["panels_online"] < out["panels_total"]:
            alerts.append(f"panels offline: {out['panels_total'] - out['panels_online']}")
    errors = child(tree, *PANELS_ERRORS)
    if errors is not None:
        seen = True
        if count(errors, PANELS_ERRORS):
            alerts.append(f"panels reporting errors: {count(errors, PANELS_ERRORS)}")
    failover = child(tree, *FAILOVER_ACTIVE)
    if failover is not None:
        seen = True
        if as_bool(failover, FAILOVER_ACTIVE):
            alerts.append("network failover active")
    loops = child(tree, *CABLE_LOOPS)
    if isinstance(loops, dict):
        seen = True
        for number, loop in list(loops.items())[:MAX_ALERTS]:
            loop_state = child(loop, "state")
            if loop_state is None:
                continue
            word = as_text(loop_state, (*CABLE_LOOPS, str(number), "state"), 40).lower()
            if word != "loop-found":
                alerts.append(f"cable loop {clip(number, 12)}: {word}")
    if seen:
        out["alerts"] = alerts[:MAX_ALERTS]


def _identity(tree: Any, state: TreeState) -> None:
    info: dict[str, str] = {}
    for key, path in (("model", PROCESSOR_TYPE), ("serial", SERIAL), ("firmware", FIRMWARE),
                      ("name", PROCESSOR_NAME)):
        value = child(tree, *path)
        if value is not None:
            info[key] = as_text(value, path, 64)
    if info:
        state.values["processor"] = info
    value = child(tree, *UPTIME)
    if value is not None:
        state.uptime_s = uptime_s(value)
        state.uptime = as_text(value, UPTIME, 40)


def nest(path: tuple[str, ...], value: Any, into: dict[str, Any]) -> None:
    """Put ``value`` at ``path`` inside ``into`` (assembling subtrees into one tree)."""
    node = into
    for name in path[:-1]:
        nxt = node.get(name)
        if not isinstance(nxt, dict):
            nxt = {}
            node[name] = nxt
        node = nxt
    node[path[-1]] = value


def firmware_at_least(version: str, major: int, minor: int) -> bool:
    """Whether an ``x.y.z`` software version is at least ``major.minor``."""
    found = re.match(r"^\s*(\d+)\.(\d+)", version)
    if not found:
        return False
    return (int(found.group(1)), int(found.group(2))) >= (major, minor)
