"""Pure functions between the HELIOS property tree and stagectl's LED model.

No I/O here, so hypothesis can throw anything at them (``tests/led_vendors/test_helios*.py``).
Every parser either returns model values in range or raises
:class:`~drivers.led.http.ReplyError` (``http_malformed``); nothing else escapes.

The conversions are the ones ``docs/protocols/helios-http.md`` documents: brightness percent
<-> nits with the wall's ``max_brightness_nits`` as 100 %, float32 echoes compared with a
relative tolerance of 1e-6, test pattern names both ways.
"""

from __future__ import annotations

import math
from typing import Any

from drivers.device import Problem
from drivers.led import protocol as p
from drivers.led.http import ReplyError, clip

API = "/api/v1/public"
PRESETS_LIST = "/api/v1/presets/list"
RPC = "/api/v1/public/rpc/websocket"
FLOAT32_REL = 1e-6
MAX_DEPTH = 12  # a mirrored tree deeper than this is not a HELIOS tree
MAX_KEYS = 4096  # keys one mirrored container may hold (receivers are the big ones)
MAX_ALERTS = 32
ALERT_CHARS = 160
MAX_CCT_K = 40000

# model name -> HELIOS testPattern.type (the page's mapping table)
PATTERN_TO_HELIOS: dict[str, str] = {
    "white": "white", "black": "black", "red": "red", "green": "green", "blue": "blue",
    "grid": "grid", "colour_bars": "colorBars", "ramp": "horizontalGradient",
}
PATTERN_FROM_HELIOS: dict[str, str] = {v: k for k, v in PATTERN_TO_HELIOS.items()}
HELIOS_PATTERNS: tuple[str, ...] = (
    "black", "red", "green", "blue", "white", "aspectRatioTest", "colorBars", "diagonal",
    "diagonalColorBars", "diagonalGradient", "grid", "horizontalGradient", "horizontalGraySteps",
    "smallGrid", "verticalGradient", "verticalGraySteps", "customColor",
)
SEVERITY_NAMES: dict[int, str] = {0: "emergency", 1: "alert", 2: "critical", 3: "error",
                                  4: "warning", 5: "notice", 6: "info", 7: "debug"}
DEGRADING_SEVERITY = 3  # Critical (2) and Error (3) degrade; Warning/Notice are listed only
OVER_TEMPERATURE_KEYS = ("tempHigh", "overTemp")

POLL_PATHS: tuple[str, ...] = (
    "dev.display", "dev.ingest.input", "dev.ingest.testPattern", "sys.alerts",
    "sys.alertsCount", "sys.alertsSeverity", "sys.description", "sys.info",
)
"""What the driver polls when it has no WebSocket (a subset, not the 47 kB whole tree)."""
ALERT_PATHS: tuple[str, ...] = ("sys.alerts", "sys.alertsCount", "sys.alertsSeverity")
"""What the driver polls while the WebSocket brings the rest (liveness, uptime, alerts)."""


def bad(where: str, what: str) -> ReplyError:
    """A reply whose shape or values are not HELIOS's (``http_malformed``)."""
    return ReplyError(Problem(f"{where} answered an unexpected value: {clip(what, 120)}",
                              "http_malformed", address=where))


def same_float32(a: float, b: float) -> bool:
    """Whether two numbers are equal within float32 precision (relative 1e-6)."""
    return math.isclose(a, b, rel_tol=FLOAT32_REL, abs_tol=1e-9)


def percent_from_nits(nits: float, max_nits: float) -> float:
    """The percentage HELIOS is sent for ``nits`` (rounded to 4 decimals)."""
    return round(100.0 * nits / max_nits, 4)


def nits_from_percent(percent: float, max_nits: float) -> float:
    """The nits reported for a HELIOS percentage (rounded to 0.1 nit)."""
    return round(max_nits * percent / 100.0, 1)


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        out = float(value)
    except OverflowError:
        return None
    return out if math.isfinite(out) else None


def get_path(tree: object, path: str) -> Any:
    """The value at a dotted path (``dev.display.brightness``), or None when absent."""
    node = tree
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def nest(path: str, value: Any) -> dict[str, Any]:
    """A fragment from the root holding ``value`` at ``path``."""
    out: Any = value
    for part in reversed(path.split(".")):
        out = {part: out}
    result: dict[str, Any] = out
    return result


def merge(into: dict[str, Any], fragment: dict[str, Any], depth: int = 0) -> None:
    """Merge a tree fragment into a mirror (bounded depth and width; raises ReplyError)."""
    if depth > MAX_DEPTH:
        raise bad("processor", "a tree nested deeper than HELIOS's")
    for key, value in fragment.items():
        if isinstance(value, dict):
            child = into.get(key)
            if not isinstance(child, dict):
                if key not in into and len(into) >= MAX_KEYS:
                    raise bad("processor", "a tree wider than HELIOS's")
                child = into[key] = {}
            merge(child, value, depth + 1)
        else:
            if key not in into and len(into) >= MAX_KEYS:
                raise bad("processor", "a tree wider than HELIOS's")
            into[key] = value


def fragment_for(values: dict[str, Any], max_nits: float) -> dict[str, Any]:
    """The PATCH fragment for validated model values (``test_pattern`` ``off`` keeps the type)."""
    display: dict[str, Any] = {}
    ingest: dict[str, Any] = {}
    for key, value in values.items():
        if key == "brightness_nits":
            display["brightness"] = percent_from_nits(float(value), max_nits)
        elif key == "colour_temperature_k":
            display["cct"] = int(value)
        elif key == "gamma":
            display["gamma"] = float(value)
        elif key in ("blackout", "freeze"):
            display[key] = bool(value)
        elif key == "test_pattern":
            if value == "off":
                ingest["testPattern"] = {"enabled": False}
            else:
                ingest["testPattern"] = {"enabled": True, "type": PATTERN_TO_HELIOS[value],
                                         "motion": False}
        elif key == "input":
            ingest["input"] = str(value)
        else:
            raise KeyError(key)
    dev: dict[str, Any] = {}
    if display:
        dev["display"] = display
    if ingest:
        dev["ingest"] = ingest
    return {"dev": dev}


def sent_leaves(key: str, fragment: dict[str, Any]) -> dict[str, Any]:
    """The vendor leaves (dotted path -> value) a model key was sent as."""
    paths = {"brightness_nits": ("dev.display.brightness",),
             "colour_temperature_k": ("dev.display.cct",), "gamma": ("dev.display.gamma",),
             "blackout": ("dev.display.blackout",), "freeze": ("dev.display.freeze",),
             "input": ("dev.ingest.input",),
             "test_pattern": ("dev.ingest.testPattern.enabled", "dev.ingest.testPattern.type")}
    return {path: get_path(fragment, path) for path in paths[key]
            if get_path(fragment, path) is not None}


def leaf_matches(sent: object, echoed: object) -> bool:
    """Whether an echoed leaf is the value sent (numbers within float32 precision)."""
    a, b = _number(sent), _number(echoed)
    if a is not None and b is not None:
        return same_float32(a, b)
    return type(sent) is type(echoed) and sent == echoed


def _dict_or_none(value: object, where: str, what: str) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise bad(where, f"{what} is {type(value).__name__}, not an object")
    return value


def parse_display(display: object, max_nits: float, where: str) -> dict[str, Any]:
    """Model values from ``dev.display`` (missing leaves are not reported)."""
    d = _dict_or_none(display, where, "dev.display")
    out: dict[str, Any] = {}
    if d is None:
        return out
    if "brightness" in d:
        pct = _number(d["brightness"])
        if pct is None or not 0.0 <= pct <= 1000.0:
            raise bad(where, f"dev.display.brightness {d['brightness']!r}")
        nits = nits_from_percent(pct, max_nits)
        if nits > p.MAX_BRIGHTNESS_NITS:
            raise bad(where, f"dev.display.brightness {pct:g} % ({nits:g} nits)")
        out["brightness_nits"] = nits
    if "cct" in d:
        cct = _number(d["cct"])
        if cct is None or not 0 < cct <= MAX_CCT_K:
            raise bad(where, f"dev.display.cct {d['cct']!r}")
        out["colour_temperature_k"] = int(round(cct))
    if "gamma" in d:
        gamma = _number(d["gamma"])
        if gamma is None or not 0.0 <= gamma <= 10.0:
            raise bad(where, f"dev.display.gamma {d['gamma']!r}")
        out["gamma"] = round(gamma, 4)
    for flag in ("blackout", "freeze"):
        if flag in d:
            if not isinstance(d[flag], bool):
                raise bad(where, f"dev.display.{flag} {d[flag]!r}")
            out[flag] = d[flag]
    if "tilesCount" in d:
        tiles = _number(d["tilesCount"])
        if tiles is None or not 0 <= tiles <= 1_000_000 or not float(tiles).is_integer():
            raise bad(where, f"dev.display.tilesCount {d['tilesCount']!r}")
        out["panels_total"] = int(tiles)
    return out


def pattern_name(enabled: object, kind: object, where: str) -> str | None:
    """The model's test pattern for ``testPattern.enabled``/``type`` (None: not known yet)."""
    if enabled is None:
        return None
    if not isinstance(enabled, bool):
        raise bad(where, f"dev.ingest.testPattern.enabled {enabled!r}")
    if not enabled:
        return "off"
    if kind is None:
        return None
    if not isinstance(kind, str) or not kind:
        raise bad(where, f"dev.ingest.testPattern.type {kind!r}")
    name = PATTERN_FROM_HELIOS.get(kind)
    return name if name is not None else "helios:" + clip(kind, 48)


def parse_ingest(ingest: object, where: str) -> dict[str, Any]:
    """``input`` and ``test_pattern`` from ``dev.ingest``."""
    d = _dict_or_none(ingest, where, "dev.ingest")
    out: dict[str, Any] = {}
    if d is None:
        return out
    if "input" in d:
        if not isinstance(d["input"], str):
            raise bad(where, f"dev.ingest.input {d['input']!r}")
        out["input"] = clip(d["input"], 48)
    tp = _dict_or_none(d.get("testPattern"), where, "dev.ingest.testPattern")
    if tp is not None:
        name = pattern_name(tp.get("enabled"), tp.get("type"), where)
        if name is not None:
            out["test_pattern"] = name
    return out


def parse_inputs(ingest: object, where: str) -> list[str]:
    """Input names from the keys of ``dev.ingest.inputs`` (Companion's source; may be empty)."""
    d = _dict_or_none(ingest, where, "dev.ingest")
    inputs = _dict_or_none(d.get("inputs") if d else None, where, "dev.ingest.inputs")
    if inputs is None:
        return []
    return [clip(k, 48) for k in list(inputs)[:256] if isinstance(k, str) and k]


def parse_alerts(sys_tree: object, where: str) -> dict[str, Any]:
    """``alerts`` (texts), ``alert_severity`` (int or None) from ``sys``.

    Returns:
        ``{"alerts": [...], "keys": [...], "severity": int | None}`` for what was present
        (``alerts``/``keys`` only when ``sys.alerts`` was in the reply).
    """
    d = _dict_or_none(sys_tree, where, "sys")
    out: dict[str, Any] = {}
    if d is None:
        return out
    if "alerts" in d:
        alerts = _dict_or_none(d["alerts"], where, "sys.alerts") or {}
        texts: list[str] = []
        keys: list[str] = []
        worst: int | None = None
        for key, entry in list(alerts.items())[:MAX_ALERTS]:
            entry_d = _dict_or_none(entry, where, f"sys.alerts.{clip(key, 40)}") or {}
            brief = entry_d.get("brief")
            desc = entry_d.get("desc")
            text = brief if isinstance(brief, str) and brief.strip() else key
            if isinstance(desc, str) and desc.strip() and desc.strip() != text:
                text = f"{text}: {desc}"
            sev = _number(entry_d.get("severity"))
            if sev is not None and sev.is_integer() and 0 <= sev <= 7:
                name = SEVERITY_NAMES[int(sev)]
                text = f"{text} ({name})"
                worst = int(sev) if worst is None else min(worst, int(sev))
            texts.append(clip(text, ALERT_CHARS))
            keys.append(clip(key, 40))
        out["alerts"] = texts
        out["keys"] = keys
        out["worst"] = worst
    if "alertsSeverity" in d:
        sev = _number(d["alertsSeverity"])
        if sev is None or not sev.is_integer() or not -1 <= sev <= 7:
            raise bad(where, f"sys.alertsSeverity {d['alertsSeverity']!r}")
        out["severity"] = int(sev)
    return out


def parse_identity(tree: object, where: str) -> dict[str, str]:
    """``processor`` identity (``model``, ``serial``, ``firmware``, ``name``) as far as known.

    ``sys.info`` and ``dev.ingest.info`` fields are not listed in the vendor document, so a
    few likely spellings are tried; anything not a short string is ignored.
    """
    out: dict[str, str] = {}
    description = get_path(tree, "sys.description")
    if isinstance(description, str) and description.strip():
        out["name"] = clip(description, 64)
    candidates = {"model": ("type", "model", "product", "name"),
                  "serial": ("serialNumber", "serial", "sn"),
                  "firmware": ("version", "softwareVersion", "firmwareVersion", "firmware")}
    for info_path in ("sys.info", "dev.ingest.info"):
        info = get_path(tree, info_path)
        if not isinstance(info, dict):
            continue
        for field, names in candidates.items():
            if field in out:
                continue
            for name in names:
                value = info.get(name)
                if isinstance(value, (str, int)) and not isinstance(value, bool) and \
                        str(value).strip():
                    out[field] = clip(value, 64)
                    break
    return out


def parse_tree(tree: object, max_nits: float, where: str = "processor") -> dict[str, Any]:
    """Every model value a (mirrored) HELIOS tree gives; raises ReplyError on a wrong shape.

    Returns:
        Model keys (``brightness_nits`` ... ``input``, ``panels_total``) plus, when the tree
        has them, ``alerts`` (texts), ``alert_keys``, ``alert_severity`` and ``processor``.
    """
    if not isinstance(tree, dict):
        raise bad(where, f"a {type(tree).__name__} where the tree should be")
    dev = _dict_or_none(tree.get("dev"), where, "dev") or {}
    out = parse_display(dev.get("display"), max_nits, where)
    out.update(parse_ingest(dev.get("ingest"), where))
    alerts = parse_alerts(tree.get("sys"), where)
    if "alerts" in alerts:
        out["alerts"] = alerts["alerts"]
        out["alert_keys"] = alerts["keys"]
    if "severity" in alerts:
        out["alert_severity"] = alerts["severity"]
    elif alerts.get("worst") is not None:
        out["alert_severity"] = alerts["worst"]
    identity = parse_identity(tree, where)
    if identity:
        out["processor"] = identity
    return out


def parse_uptime(header: str | None) -> float | None:
    """``X-RD-Uptime`` in seconds, or None when absent or unreadable."""
    if header is None:
        return None
    try:
        value = float(header.strip())
    except ValueError:
        return None
    return value if math.isfinite(value) and value >= 0 else None


def parse_rpc(message: object, where: str) -> tuple[str, Any, Any]:
    """A JSON-RPC 2.0 message from the processor: ``(kind, id, payload)``.

    ``kind`` is ``result`` (payload: the result), ``update`` (payload: the fragment),
    ``error`` (payload: the error's message) or ``other`` (anything else, ignored).
    """
    if not isinstance(message, dict):
        raise bad(where, f"a JSON-RPC {type(message).__name__}, not an object")
    msg_id = message.get("id")
    if message.get("method") == "update":
        params = message.get("params")
        if not isinstance(params, dict):
            raise bad(where, "a JSON-RPC update without an object")
        return "update", None, params
    if "result" in message:
        return "result", msg_id, message["result"]
    if "error" in message:
        err = message["error"]
        text = err.get("message") if isinstance(err, dict) else err
        return "error", msg_id, clip(text, 120)
    return "other", msg_id, None
