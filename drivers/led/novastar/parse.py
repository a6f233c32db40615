"""Pure parsers for NovaStar COEX replies (``docs/protocols/novastar-coex.md``).

Each function takes what the processor sent (already JSON-decoded) and returns values in
stagectl's units, or raises :class:`~drivers.led.http.ReplyError`: a processor (or anything
pretending to be one) can send any JSON at all, and nothing here raises anything else.

The envelope is ``{"code": 0, "data": ..., "message": "Success"}``; :func:`unwrap` checks it
and names the vendor error (:class:`CoexError`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from drivers.device import Problem
from drivers.led.http import ReplyError, clip

# NovaStar's error codes (as transcribed by legofsalmon/novasun from the "Error Code" page).
CODE_NAMES: dict[int, str] = {
    0: "Success", 1: "InvalidParam", 2: "SendFailed", 3: "InternalErr", 4: "AnalysisFailed",
    5: "Busying", 6: "NotSupport", 39: "CfgFileNotExist", 41: "NonStandardFileName",
}
BUSY, NOT_SUPPORTED = 5, 6
REFUSAL_CODES = frozenset({1, 4, 6, 39, 41})  # the processor understood and said no
LOCKED_MESSAGE = "device locked"
MAX_SCREENS, MAX_ITEMS, MAX_CANVASES = 64, 4096, 64
COLOUR_TEMPERATURE_RANGE = (1000, 20000)  # wider than any client's range: a reading, not a set
GAMMA_RANGE = (0.1, 10.0)
TEMPERATURE_RANGE = (-60.0, 200.0)

# Test patterns (sending card, ``device/input/pattern/test``): model name -> (mode, r, g, b).
FULL = 4095
PATTERN_MODES: dict[str, tuple[int, int, int, int]] = {
    "white": (0, FULL, FULL, FULL), "black": (0, 0, 0, 0),
    "red": (0, FULL, 0, 0), "green": (0, 0, FULL, 0), "blue": (0, 0, 0, FULL),
    "grid": (20, FULL, FULL, FULL), "ramp": (35, FULL, FULL, FULL),
}
VENDOR_PATTERNS: dict[int, str] = {
    16: "stripes-down", 17: "stripes-right", 18: "slashes", 19: "backslashes",
    20: "grid", 21: "grid-right", 32: "gradient-red", 33: "gradient-green",
    34: "gradient-blue", 35: "gradient-gray", 36: "gradient-red-vertical",
    37: "gradient-green-vertical", 38: "gradient-blue-vertical",
    39: "gradient-gray-vertical", 48: "lightning",
}


class CoexError(ReplyError):
    """A well-formed envelope whose ``code`` is not success.

    Attributes:
        vendor_code: the envelope's ``code``.
        text: its ``message`` (clipped).
        locked: the message says ``device locked`` (VMP holds the processor).
        busy: code 5 (Busying).
    """

    def __init__(self, where: str, vendor_code: int, text: str) -> None:
        self.vendor_code = vendor_code
        self.text = text
        self.locked = text.strip().lower() == LOCKED_MESSAGE
        self.busy = vendor_code == BUSY
        name = CODE_NAMES.get(vendor_code, "unknown")
        detail = f"{where}: code {vendor_code} ({name})" + (f": {text}" if text else "")
        if self.locked:
            problem = Problem("processor locked by VMP at unknown", "device_locked",
                              ip="unknown")
        elif self.busy:
            problem = Problem("processor busy; backing off", "processor_busy")
        else:
            problem = Problem(f"the processor answered an error: {detail}", "vendor_error",
                              detail=detail)
        super().__init__(problem, refusal=self.locked or vendor_code in REFUSAL_CODES)


def bad(where: str, what: str) -> ReplyError:
    """A reply that is JSON but not the shape the document gives (``http_malformed``)."""
    return ReplyError(Problem(f"{where} answered {clip(what, 120)}", "http_malformed",
                              address=where))


def unwrap(reply: Any, where: str) -> Any:
    """The ``data`` of a success envelope; :class:`CoexError` for a vendor error.

    ``code`` 200 is taken as success too (one client does so).
    """
    if not isinstance(reply, dict) or "code" not in reply:
        raise bad(where, "no {code, data, message} envelope")
    code = reply["code"]
    if isinstance(code, bool) or not isinstance(code, int):
        raise bad(where, f"a non-integer code {clip(repr(code), 40)}")
    text = reply.get("message", "")
    text = clip(text, 120) if isinstance(text, str) else ""
    if code not in (0, 200):
        raise CoexError(where, code, text)
    return reply.get("data")


def _dict(value: Any, where: str, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise bad(where, f"{what} that is not an object")
    return value


def _list(value: Any, where: str, what: str, limit: int = MAX_ITEMS) -> list[Any]:
    if not isinstance(value, list):
        raise bad(where, f"{what} that is not a list")
    if len(value) > limit:
        raise bad(where, f"more than {limit} {what}")
    return value


def _number(value: Any, where: str, what: str, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise bad(where, f"{what} that is not a number")
    try:
        v = float(value)
    except OverflowError:
        raise bad(where, f"{what} out of range") from None
    if not math.isfinite(v) or not lo <= v <= hi:
        raise bad(where, f"{what} {clip(repr(value), 30)} outside {lo:g}..{hi:g}")
    return v


def _int(value: Any, where: str, what: str, lo: int = -(2**63), hi: int = 2**63) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise bad(where, f"{what} that is not an integer {lo}..{hi}")
    return value


def _id(value: Any, where: str, what: str) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= 128:
        raise bad(where, f"{what} that is not an id string")
    return value


def _text(value: Any, limit: int = 64) -> str | None:
    return clip(value, limit) if isinstance(value, (str, int)) and \
        not isinstance(value, bool) else None


@dataclass(frozen=True)
class Screen:
    """One COEX screen: its id (opaque, sent back exactly), canvases and live layers."""

    id: str
    name: str
    canvases: tuple[int, ...]
    layers: tuple[tuple[int, int | None], ...] = ()  # (layer id, source groupId) live mode


def parse_screens(data: Any, where: str = "screen") -> list[Screen]:
    """``GET /api/v1/screen`` data -> screens (``screenID`` with a capital D)."""
    items = _list(_dict(data, where, "screen data").get("screens"), where, "screens",
                  MAX_SCREENS)
    out: list[Screen] = []
    for item in items:
        item = _dict(item, where, "a screen")
        sid = _id(item.get("screenID"), where, "a screenID")
        name = _text(item.get("screenName")) or sid
        canvases = tuple(_int(_dict(c, where, "a canvas").get("canvasID"), where, "a canvasID")
                         for c in _list(item.get("canvases", []), where, "canvases",
                                        MAX_CANVASES))
        mode = item.get("workingMode", 0)
        layers: tuple[tuple[int, int | None], ...] = ()
        for entry in _list(item.get("layersInWorkingMode", []), where, "working modes", 16):
            entry = _dict(entry, where, "a working mode")
            if entry.get("workingMode") != mode:
                continue
            found: list[tuple[int, int | None]] = []
            for layer in _list(entry.get("layers", []), where, "layers", 64):
                layer = _dict(layer, where, "a layer")
                source = layer.get("source")
                found.append((_int(layer.get("id"), where, "a layer id"),
                              None if source is None else _int(source, where, "a layer source")))
            layers = tuple(found)
        out.append(Screen(sid, name, canvases, layers))
    return out


@dataclass
class DisplayParams:
    """One screen's ``displayparams`` entry in stagectl units (None: not given)."""

    fraction: float | None = None  # brightness, 0..1
    percent_seen: bool = False  # the reply carried brightness > 1.0 (taken as percent)
    colour_temperature_k: int | None = None
    gamma: float | None = None


def parse_displayparams(data: Any, where: str = "screen/displayparams") -> dict[str,
                                                                              DisplayParams]:
    """``GET /api/v1/screen/displayparams`` data -> screenId (lower-case d) -> values.

    Brightness reads as a 0..1 fraction; a value above 1.0 is taken as percent (0..100).
    A bare list (one client accepts that form) is read like ``{"list": [...]}``.
    """
    items = data if isinstance(data, list) else _dict(data, where, "display data").get("list")
    out: dict[str, DisplayParams] = {}
    for item in _list(items, where, "display parameters", MAX_SCREENS):
        item = _dict(item, where, "a display parameter entry")
        sid = _id(item.get("screenId", item.get("screenID")), where, "a screenId")
        params = DisplayParams()
        if item.get("brightness") is not None:
            value = _number(item["brightness"], where, "a brightness", 0.0, 100.0)
            if value > 1.0:
                params.percent_seen = True
                value /= 100.0
            params.fraction = value
        if item.get("colorTemperature") is not None:
            params.colour_temperature_k = round(_number(
                item["colorTemperature"], where, "a colour temperature",
                *COLOUR_TEMPERATURE_RANGE))
        if item.get("gamma") is not None:
            params.gamma = round(_number(item["gamma"], where, "a gamma", *GAMMA_RANGE), 3)
        out[sid] = params
    return out


def parse_display_state(data: Any, where: str = "screen/output/display/state") -> dict[int,
                                                                                      int]:
    """``GET /api/v1/screen/output/display/state`` data -> canvasID -> display mode 0/1/2."""
    items = _list(_dict(data, where, "display state").get("displayState"), where,
                  "display states", MAX_CANVASES * MAX_SCREENS)
    out: dict[int, int] = {}
    for item in items:
        item = _dict(item, where, "a display state")
        out[_int(item.get("canvasID"), where, "a canvasID")] = _int(
            item.get("displayMode"), where, "a displayMode", 0, 2)
    return out


def severest(modes: list[int]) -> int:
    """The most severe display mode of several canvases: 1 (blackout) over 2 (freeze) over 0."""
    return 1 if 1 in modes else 2 if 2 in modes else 0


def display_mode(blackout: bool, freeze: bool) -> int:
    """The model's two flags as COEX's one enum (blackout wins: it is the safe state)."""
    return 1 if blackout else 2 if freeze else 0


@dataclass(frozen=True)
class Preset:
    """One listed preset."""

    number: int
    name: str
    active: bool


def parse_presets(data: Any, where: str = "preset") -> dict[str, list[Preset]]:
    """``GET /api/v1/preset`` data -> screenID -> presets (``state: true`` is the active one)."""
    items = _list(_dict(data, where, "preset data").get("screenPresets"), where,
                  "screen presets", MAX_SCREENS)
    out: dict[str, list[Preset]] = {}
    for item in items:
        item = _dict(item, where, "a screen's presets")
        sid = _id(item.get("screenID", item.get("screenId")), where, "a screenID")
        presets: list[Preset] = []
        for entry in _list(item.get("presets", []), where, "presets", 1024):
            entry = _dict(entry, where, "a preset")
            number = _int(entry.get("sequenceNumber"), where, "a sequenceNumber", 0, 1 << 20)
            presets.append(Preset(number, _text(entry.get("name")) or str(number),
                                  entry.get("state") is True))
        out[sid] = presets
    return out


@dataclass(frozen=True)
class Source:
    """One input source: its name (stagectl's ``input``) and the ``groupId`` a layer takes."""

    name: str
    group_id: int
    signal: bool


def parse_sources(data: Any, where: str = "device/input/sources") -> list[Source]:
    """``GET /api/v1/device/input/sources`` data (a list) -> sources."""
    out: list[Source] = []
    for item in _list(data, where, "input sources", 256):
        item = _dict(item, where, "an input source")
        name = item.get("name")
        if not isinstance(name, str) or not 0 < len(name) <= 48:
            raise bad(where, "an input source without a name")
        out.append(Source(name, _int(item.get("groupId"), where, "a groupId"),
                          item.get("sourceStatus") == 1))
    return out


IDENTITY_FIELDS = {"name": "model", "sn": "serial", "hwVersion": "firmware",
                   "customName": "name", "modelID": "model_id"}


def parse_hw(data: Any, where: str = "device/hw") -> tuple[dict[str, str], float | None]:
    """``GET /api/v1/device/hw`` data -> (identity, uptime in s or None).

    Only the named identity fields are read: everything else (``randomPassword`` above all,
    which the processor serves to anyone) is dropped here, on receipt.
    """
    item = _dict(data, where, "device data")
    identity: dict[str, str] = {}
    for key, ours in IDENTITY_FIELDS.items():
        text = _text(item.get(key))
        if text:
            identity[ours] = text
    uptime = item.get("uptime")
    up = None if uptime is None else _number(uptime, where, "an uptime", 0.0, 1e10)
    return identity, up


@dataclass
class Monitor:
    """``monitor/info`` in stagectl terms."""

    temperature_c: float | None = None
    temperature_alarm: bool = False
    runtime_s: float | None = None
    alerts: list[str] = field(default_factory=list)


def _status(item: dict[str, Any], where: str) -> int:
    value = item.get("status", 0)
    return 0 if value is None else _int(value, where, "a status", 0, 255)


def parse_monitor(data: Any, where: str = "device/monitor/info") -> Monitor:
    """``GET /api/v1/device/monitor/info?isNeedCabinetInfo=0`` data -> temperature, alerts.

    Status levels as Companion reads them: 0 OK, 1 alarm, 2 fault.
    """
    item = _dict(data, where, "monitor data")
    out = Monitor()
    board = item.get("mainBoardTemperature")
    if board is not None:
        board = _dict(board, where, "a mainBoardTemperature")
        if board.get("value") is not None:
            out.temperature_c = round(_number(board["value"], where, "a temperature",
                                              *TEMPERATURE_RANGE), 1)
        out.temperature_alarm = _status(board, where) > 0
    if item.get("runtime") is not None:
        out.runtime_s = _number(item["runtime"], where, "a runtime", 0.0, 1e10)
    words = {1: "alarm", 2: "fault"}
    for n, fan in enumerate(_list(item.get("fanInfos", []), where, "fans", 64), 1):
        level = _status(_dict(fan, where, "a fan"), where)
        if level:
            out.alerts.append(f"Fan {n} {words.get(level, 'fault')}")
    for out_item in _list(item.get("outputStatus", []), where, "outputs", 256):
        out_item = _dict(out_item, where, "an output")
        oid = _text(out_item.get("outputID")) or "?"
        level = _status(out_item, where)
        if level:
            out.alerts.append(f"Output {oid} {words.get(level, 'fault')}")
        if out_item.get("linkStatus") is False:
            out.alerts.append(f"Output {oid} link down")
    for card in _list(item.get("cardMonitorInfo", []), where, "cards", 1024):
        card = _dict(card, where, "a card")
        level = _status(card, where)
        if level:
            out.alerts.append(f"Card {_text(card.get('cardID')) or '?'} "
                              f"{words.get(level, 'fault')}")
    del out.alerts[32:]
    return out


def parse_cabinet_count(data: Any, where: str = "screen/cabinet/count") -> dict[str, int]:
    """``GET /api/v1/screen/cabinet/count`` data -> ScreenID -> connected cabinets."""
    items = _list(_dict(data, where, "cabinet count data").get("list"), where,
                  "cabinet counts", MAX_SCREENS)
    out: dict[str, int] = {}
    for item in items:
        item = _dict(item, where, "a cabinet count")
        sid = _id(item.get("ScreenID", item.get("screenID")), where, "a ScreenID")
        out[sid] = _int(item.get("CabinetCount"), where, "a CabinetCount", 0, 1_000_000)
    return out


def parse_cabinets(data: Any, where: str = "device/cabinet") -> dict[int, float | None]:
    """``GET /api/v1/device/cabinet`` data -> cabinet id -> brightness fraction (0..1)."""
    out: dict[int, float | None] = {}
    for item in _list(data, where, "cabinets", 100_000):
        item = _dict(item, where, "a cabinet")
        cid = _int(item.get("id"), where, "a cabinet id")
        value = item.get("brightness")
        out[cid] = None if value is None else _number(value, where, "a cabinet brightness",
                                                      0.0, 1.0)
    return out


def parse_lock(data: Any, where: str = "device/hw/lock") -> tuple[bool, str]:
    """``GET /api/v1/device/hw/lock`` data -> (locked, holder's ip)."""
    item = _dict(data, where, "lock data")
    locked = item.get("locked", 0)
    if isinstance(locked, bool):
        locked = int(locked)
    flag = _int(locked, where, "a lock flag", 0, 1)
    ip = _text(item.get("ip"), 64) or "unknown"
    return bool(flag), ip


def parse_pattern(data: Any, where: str = "device/input") -> str | None:
    """``GET /api/v1/device/input`` data -> the test pattern as a model name (None: absent).

    ``parameters.state`` 1 is on (Companion's reading); a pattern with no model name is
    ``novastar:<name>``.
    """
    item = _dict(data, where, "input data")
    pattern = item.get("testPattern")
    if pattern is None:
        return None
    pattern = _dict(pattern, where, "a testPattern")
    params = _dict(pattern.get("parameters", {}), where, "pattern parameters")
    if params.get("state", 0) != 1:
        return "off"
    mode = _int(pattern.get("mode"), where, "a pattern mode", 0, 255)
    if mode == 0:
        rgb = tuple(_int(params.get(c, 0), where, f"a {c} level", 0, 65535)
                    for c in ("red", "green", "blue"))
        for name, (m, r, g, b) in PATTERN_MODES.items():
            if m == 0 and (r, g, b) == rgb:
                return name
        return "novastar:colour-{}-{}-{}".format(*rgb)
    for name, (m, *_rgb) in PATTERN_MODES.items():
        if m == mode:
            return name
    return f"novastar:{VENDOR_PATTERNS.get(mode, f'mode-{mode}')}"


def pattern_body(name: str, last_mode: int = 0) -> dict[str, Any]:
    """The ``device/input/pattern/test`` body for a model pattern (``off``: ``state`` 0)."""
    if name == "off":
        mode, r, g, b = last_mode, FULL, FULL, FULL
        state = 0
    else:
        mode, r, g, b = PATTERN_MODES[name]
        state = 1
    return {"mode": mode, "parameters": {"red": r, "green": g, "blue": b, "gray": 255,
                                         "gridWidth": 255, "moveSpeed": 100,
                                         "gradientStretch": 1, "state": state}}
