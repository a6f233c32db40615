"""A simulated Brompton Tessera processor: its HTTP IP-control API on loopback.

What it serves is ``docs/protocols/tessera-http.md`` (API 3.1, Companion's requests):

- ``GET /api/`` the whole tree under ``api``; ``GET /api/<path>`` a leaf as ``{"<leaf>": v}``
  or a directory as a nested object; paths are case-insensitive (API 3.1 p.2), reply keys
  are the canonical lower-case names (our choice);
- ``PUT /api/<path>`` ``{"data": v}`` writes and echoes the stored value; a directory takes
  an object of its leaves (checked whole before anything is applied);
- ``GET ...?set=v`` writes with a text value converted by the leaf's type (the form Companion
  sends, unencoded: ``?set=true``, ``?set=-1``, ``?set=3``), and
  ``GET <dir>?set=1&<leaf>=<v>...`` the directory form; ``%XX`` is decoded, ``+`` is not;
- ``?list=1`` (one-line summaries) and ``?help=1`` (``Access Specifier``, ``Details``, ``Name``,
  ``Summary``, ``Type``);
- the named errors of API 3.1 p.3 as ``{"response-code": "<error>"}`` with an HTTP status
  (404 ``Path not found``/``Object not found``, 405 ``Bad operation``, 400 the input errors and
  ``Access denied``, 409 ``No project loaded``, 500 ``Operation failed``, 501 ``Not supported``,
  413 an oversized body), or, with the ``errors_as_200`` fault, as ``200`` with the same body
  (the form a third-party 3.5.2 client expects). The statuses are ours: the document gives
  none.

The look lives in the shared :class:`~drivers.led.simhttp.Wall` (model units): ``brightness``
−1 means the panels' common maximum (stored as that value; reads show it), presets 1..4 recall
whole looks, ``system/uptime`` is ``DDd HHh MMm SSs`` and goes back to zero on a restart,
``panels/statistics`` follows the panel dropouts, and on 3.5 firmware (the default; set
``options["firmware"] = "3.1.0"`` for none) ``system/temperature/*`` follows the wall's thermal
model (``fpga`` is the hottest).

Faults beyond the shared ones (``POST /__sim__/fault``):

========================  ===================================================================
``ip_control_disabled``   1: Live Control off: every request answered ``Access denied``
``no_project``            1: no project loaded: everything outside ``system`` answers
                          ``No project loaded``
``errors_as_200``         1: errors come as ``200`` + ``{"response-code": ...}``
``panel_errors``          how many online panels report an error (``error-count``)
``failover``              1: network failover active
========================  ===================================================================
"""

from __future__ import annotations

import collections
import json
import logging
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from aiohttp import web

from drivers.led.model import group_key
from drivers.led.simhttp import (
    VendorSimSettings,
    VendorSimulator,
    Wall,
    run_forever,
    settings_from,
    simulator_parser,
)
from drivers.led.tessera import parse as tp

log = logging.getLogger(__name__)

PATTERN_TYPES: tuple[str, ...] = (
    "brompton", "brompton-overlay", "red", "green", "blue", "cyan", "magenta", "yellow",
    "white", "black", "grid", "scrolling-grid", "checkerboard", "scrolling-checkerboard",
    "colour-bars", "scrolling-colour-bars", "gamma", "gradient", "scrolling-gradient", "strobe",
    "smpte-bars", "scrolling-smpte-bars", "custom", "custom-colour", "custom-gradient",
    "scrolling-custom-gradient", "forty-five-degree-grid", "scrolling-forty-five-degree-grid",
)  # API 3.1 p.10 plus Companion's 2024 additions
PATTERN_FORMATS = ("from-input", "standard-dynamic-range", "perceptual-quantiser",
                   "hybrid-log-gamma")
PROCESSOR_TYPES = ("m2", "s4", "s8", "t1", "t8", "sx40")
PRESET_NAMES = {1: "Daylight", 2: "Tungsten", 3: "Show", 4: "Grid check"}
STATUS = {
    "Path not found": 404, "Object not found": 404, "Bad operation": 405,
    "Not supported": 501, "Missing input parameter": 400, "Bad input parameter type": 400,
    "Bad input parameter value": 400, "Access denied": 400, "No project loaded": 409,
    "Operation failed": 500,
}
MAX_SEGMENTS, MAX_SEGMENT_CHARS, MAX_QUERY_PAIRS = 16, 64, 16
LOG_REQUESTS = 512


class TesseraError(Exception):
    """A named Tessera error (API 3.1 p.3) to answer with."""

    def __init__(self, name: str, status: int | None = None) -> None:
        self.name = name
        self.status = status or STATUS.get(name, 400)
        super().__init__(name)


@dataclass
class Leaf:
    """One endpoint of the simulated tree."""

    kind: str  # bool, int, float, enum, string
    summary: str
    get: Callable[[], Any]
    put: Callable[[Any], object] | None = None  # None: R/O
    lo: float = 0.0
    hi: float = 0.0
    choices: tuple[str, ...] = ()

    @property
    def access(self) -> str:
        """``R/W`` or ``R/O``."""
        return "R/O" if self.put is None else "R/W"

    def type_text(self) -> str:
        """The ``Type`` line of ``?help=1``."""
        if self.kind == "bool":
            return "Boolean"
        if self.kind in ("int", "float"):
            return f"{'Integer' if self.kind == 'int' else 'Float'} " \
                   f"(range: {self.lo:g} - {self.hi:g})"
        if self.kind == "enum":
            return "Enum (" + ", ".join(self.choices) + ")"
        return "String"

    def coerce(self, value: Any, text: bool) -> Any:
        """A written value checked by the leaf's type and range (text from ``?set=``)."""
        if self.kind == "bool":
            if text:
                if not isinstance(value, str) or value.lower() not in ("true", "false"):
                    raise TesseraError("Bad input parameter type")
                return value.lower() == "true"
            if not isinstance(value, bool):
                raise TesseraError("Bad input parameter type")
            return value
        if self.kind in ("int", "float"):
            number = _number(value, text, self.kind == "int")
            if not self.lo <= number <= self.hi:
                raise TesseraError("Bad input parameter value")
            return int(number) if self.kind == "int" else number
        if not isinstance(value, str):
            if self.kind == "string" and isinstance(value, int) and \
                    not isinstance(value, bool):
                value = str(value)  # presets/active/number: Companion's form is a number
            else:
                raise TesseraError("Bad input parameter type")
        if self.kind == "enum":
            word = value.lower()
            if word not in self.choices:
                raise TesseraError("Bad input parameter value")
            return word
        if len(value) > 128:
            raise TesseraError("Bad input parameter value")
        return value


def _number(value: Any, text: bool, whole: bool) -> float:
    if text:
        if not isinstance(value, str) or not re.fullmatch(
                r"-?[0-9]{1,7}" if whole else r"-?[0-9]{1,7}(\.[0-9]{0,9})?", value.strip()):
            raise TesseraError("Bad input parameter type")
        return float(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TesseraError("Bad input parameter type")
    try:
        number = float(value)
    except OverflowError:
        raise TesseraError("Bad input parameter value") from None
    if not math.isfinite(number):
        raise TesseraError("Bad input parameter value")
    if whole and not number.is_integer():
        raise TesseraError("Bad input parameter type")
    return number


class TesseraWall(Wall):
    """The shared wall with Tessera's brightness.

    Up to 10000 nits may be set; the panels give at most their own maximum.
    """

    def target_output(self) -> float:
        """The light the wall heads for: the setting, capped at what the panels can give."""
        return min(super().target_output(), self.settings.max_brightness_nits)


Node = dict[str, Any]  # name -> Node | Leaf


class TesseraSimulator(VendorSimulator):
    """A Tessera processor's HTTP API (see the module doc)."""

    protocol = "tessera"

    def __init__(self, settings: VendorSimSettings) -> None:
        super().__init__(settings)
        self.wall = TesseraWall(settings)
        opts = settings.options
        self.firmware = str(opts.get("firmware", "3.5.2"))
        self.processor_type = str(opts.get("processor_type", "sx40"))
        self.serial = str(opts.get("serial", "SX40-0001234"))
        self._uptime_offset_s = float(opts.get("uptime_offset_s", 0.0))
        self.log: collections.deque[tuple[str, str]] = collections.deque(maxlen=LOG_REQUESTS)
        self.project = True
        self._power_on_extras()

    def _power_on_extras(self) -> None:
        self._ct_raw: float | None = None
        self._pattern_type = "smpte-bars"  # "defaults to SMPTE bars" (API 3.1 p.10)
        self._pattern_format = "from-input"
        self._fade_time = 0.0
        self._gains = {"red": 100.0, "green": 100.0, "blue": 100.0, "intensity": 100.0}
        self.group_names = {g: f"Group {g}" for g in self.wall.groups}
        self.preset_names = dict(PRESET_NAMES)

    # ---- faults -----------------------------------------------------------------------

    def vendor_fault(self, name: str, value: float) -> bool:
        """The Tessera faults (see the module doc).

        ``ip_control_disabled``, ``no_project``, ``errors_as_200``, ``panel_errors``,
        ``failover``.
        """
        if name == "no_project":
            self.project = not value
        elif name in ("ip_control_disabled", "errors_as_200", "failover"):
            self.faults[name] = 1.0 if value else 0.0
        elif name == "panel_errors":
            self.faults[name] = float(max(0, min(self.wall.panels_online, int(value))))
        else:
            return False
        return True

    def restart(self) -> None:
        """Restart: uptime from zero, the power-on look, Tessera's own defaults."""
        super().restart()
        self._uptime_offset_s = 0.0
        self._power_on_extras()

    def disabled_reply(self) -> web.StreamResponse | None:
        """Live Control off: ``Access denied`` to everything (our choice; undocumented)."""
        if not self.faults.get("ip_control_disabled"):
            return None
        self.counters.refuse("ip_control_disabled")
        return self._error(TesseraError("Access denied"))

    # ---- the tree ---------------------------------------------------------------------

    @property
    def uptime(self) -> str:
        """``system/uptime`` as the processor shows it."""
        return tp.format_uptime(self.wall.uptime_s + self._uptime_offset_s)

    def _set_wall(self, key: str) -> Callable[[Any], object]:
        return lambda v: self.wall.set({key: v})

    def _set_brightness(self, value: float) -> None:
        nits = self.settings.max_brightness_nits if value == -1 else value
        self.wall.set({"brightness_nits": float(nits)})

    def _get_ct(self) -> float:
        kelvin = int(self.wall.values["colour_temperature_k"])
        raw = self._ct_raw
        return raw if raw is not None and round(raw) == kelvin else float(kelvin)

    def _set_ct(self, value: float) -> None:
        self.wall.set({"colour_temperature_k": int(round(value))})
        self._ct_raw = value

    def _get_pattern_type(self) -> str:
        shown = str(self.wall.values["test_pattern"])
        if shown == "off":
            return self._pattern_type
        if shown.startswith(tp.VENDOR_PATTERN_PREFIX):
            return shown[len(tp.VENDOR_PATTERN_PREFIX):]
        return tp.PATTERN_TO_TESSERA.get(shown, self._pattern_type)

    @staticmethod
    def model_pattern(kind: str) -> str:
        """The wall's (model) name for a Tessera pattern type."""
        return tp.TESSERA_TO_PATTERN.get(kind, tp.VENDOR_PATTERN_PREFIX + kind)

    def _set_pattern_type(self, kind: str) -> None:
        self._pattern_type = kind
        if self.wall.values["test_pattern"] != "off":
            self.wall.set({"test_pattern": self.model_pattern(kind)})

    def _set_pattern_enabled(self, enabled: bool) -> None:
        if enabled:
            self._pattern_type = self._get_pattern_type()
            self.wall.set({"test_pattern": self.model_pattern(self._pattern_type)})
        else:
            self._pattern_type = self._get_pattern_type()
            self.wall.set({"test_pattern": "off"})

    def _port(self) -> tuple[str, int]:
        kind, _, number = str(self.wall.values["input"]).partition(":")
        return kind, int(number) if number.isdigit() else 1

    def _set_port(self, kind: str | None = None, number: int | None = None) -> None:
        old_kind, old_number = self._port()
        self.wall.set({"input": f"{kind or old_kind}:{number or old_number}"})

    def _recall(self, value: str) -> None:
        text = value.strip()
        number = int(text) if re.fullmatch(r"[0-9]{1,4}", text) else -1
        if number not in self.wall.presets:
            raise TesseraError("Object not found")
        self.wall.recall(number)
        self._ct_raw = None

    def _temperatures(self) -> dict[str, float]:
        hot = self.wall.temperature_c
        ambient = self.settings.ambient_c + self.wall.temperature_offset_c
        rise = hot - ambient
        return {"ambient": round(ambient, 1), "cpu": round(ambient + 0.85 * rise, 1),
                "fpga": round(hot, 1), "main": round(ambient + 0.9 * rise, 1),
                "psu": round(ambient + 0.7 * rise, 1), "front": round(ambient + 0.3 * rise, 1),
                "rear": round(ambient + 0.8 * rise, 1)}

    def leaves(self, panels: bool = True) -> dict[tuple[str, ...], Leaf]:
        """Every endpoint, for the current project and firmware (canonical lower case).

        Args:
            panels: include ``panels/items/{serial}/type`` (one per panel; a request for
                another subtree leaves them out).
        """
        w = self.wall.values
        out: dict[tuple[str, ...], Leaf] = {}
        new_firmware = tp.firmware_at_least(self.firmware, 3, 5)

        def add(path: str, leaf: Leaf) -> None:
            out[tuple(path.split("/"))] = leaf

        add("system/processor-type", Leaf("enum", "Processor type",
                                          lambda: self.processor_type, choices=PROCESSOR_TYPES))
        add("system/software-version", Leaf("string", "Software version x.y.z",
                                            lambda: self.firmware))
        add("system/uptime", Leaf("string", "Time since the processor started "
                                  "(DDd HHh MMm SSs)", lambda: self.uptime))
        add("system/current-date-time", Leaf("string", "Current date and time",
                                             lambda: time.strftime("%Y-%m-%d %H:%M:%S")))
        if new_firmware:
            add("system/serial-number", Leaf("string", "Serial number", lambda: self.serial))
            add("system/processor-name", Leaf("string", "Processor name",
                                              lambda: self.settings.name))
            temps = self._temperatures()
            for sensor in temps:
                add(f"system/temperature/{sensor}",
                    Leaf("float", f"{sensor} temperature (C)",
                         _item(self._temperatures, sensor), lo=-60, hi=200))
            for port in ("a", "b"):
                add(f"system/temperature/ethernet/copper/{port}",
                    Leaf("float", f"Ethernet copper port {port} temperature (C)",
                         lambda: self._temperatures()["main"], lo=-60, hi=200))
        add("input/active/source/port-type",
            Leaf("enum", "Active input port type", lambda: self._port()[0],
                 lambda v: self._set_port(kind=v), choices=tp.PORT_TYPES))
        add("input/active/source/port-number",
            Leaf("int", "Active input port number", lambda: self._port()[1],
                 lambda v: self._set_port(number=v), lo=1, hi=2))
        add("input/active/refresh-rate", Leaf("float", "Input refresh rate", lambda: 60.0,
                                              lo=23.5, hi=241.0))
        add("input/active/resolution/width", Leaf("int", "Input width", lambda: 3840,
                                                  lo=32, hi=4096))
        add("input/active/resolution/height", Leaf("int", "Input height", lambda: 2160,
                                                   lo=32, hi=4096))
        add("output/global-colour/brightness",
            Leaf("float", "Output brightness (-1 resets to the calculated common maximum for "
                 "available fixtures)", lambda: float(w["brightness_nits"]),
                 self._set_brightness, lo=-1, hi=10000))
        add("output/global-colour/colour-temperature",
            Leaf("float", "Output colour temperature", self._get_ct, self._set_ct,
                 lo=2000, hi=11000))
        add("output/global-colour/gamma", Leaf("float", "Output gamma",
                                               lambda: float(w["gamma"]),
                                               self._set_wall("gamma"), lo=0.2, hi=4.0))
        for gain in self._gains:
            add(f"output/global-colour/gains/{gain}",
                Leaf("float", f"Output {gain} gain", _item(lambda: self._gains, gain),
                     _store(self._gains, gain), lo=0, hi=100))
        add("output/network/failover/state/is-active",
            Leaf("bool", "Failover active", lambda: bool(self.faults.get("failover"))))
        add("output/network/failover/state/is-partner-present",
            Leaf("bool", "Failover partner present", lambda: True))
        add("override/blackout/enabled", Leaf("bool", "Enable blackout",
                                              lambda: bool(w["blackout"]),
                                              self._set_wall("blackout")))
        add("override/blackout/fade-time",
            Leaf("float", "Time taken to fade to black when blackout enabled",
                 lambda: self._fade_time, lambda v: setattr(self, "_fade_time", v), lo=0,
                 hi=10))
        add("override/freeze/enabled", Leaf("bool", "Enable freeze", lambda: bool(w["freeze"]),
                                            self._set_wall("freeze")))
        add("override/test-pattern/enabled",
            Leaf("bool", "Enable test pattern", lambda: w["test_pattern"] != "off",
                 self._set_pattern_enabled))
        add("override/test-pattern/format",
            Leaf("enum", "Test pattern format", lambda: self._pattern_format,
                 lambda v: setattr(self, "_pattern_format", v), choices=PATTERN_FORMATS))
        add("override/test-pattern/type",
            Leaf("enum", "Test pattern type (defaults to SMPTE bars)", self._get_pattern_type,
                 self._set_pattern_type, choices=PATTERN_TYPES))
        if not self.project:
            return out
        for g in self.wall.groups:
            add(f"groups/items/{g}/name",
                Leaf("string", "Group name", _item(lambda: self.group_names, g, ""),
                     _store(self.group_names, g)))
            add(f"groups/items/{g}/brightness",
                Leaf("float", "Group brightness", _item(lambda: w, group_key(g)),
                     self._set_wall(group_key(g)), lo=0, hi=10000))
        add("presets/active/number", Leaf("string", "Set to activate a preset",
                                          lambda: str(self.wall.preset), self._recall))
        add("presets/active/name",
            Leaf("string", "Name of the active preset",
                 lambda: self.preset_names.get(self.wall.preset, "")))
        for n in sorted(self.wall.presets):
            add(f"presets/items/{n}/name",
                Leaf("string", "Preset name", _item(lambda: self.preset_names, n, ""),
                     _store(self.preset_names, n)))
            add(f"presets/items/{n}/status",
                Leaf("bool", "Preset active", _is_preset(self.wall, n)))
        add("panels/statistics/associated-count",
            Leaf("int", "Associated panels", lambda: self.settings.panels_total, lo=0, hi=2200))
        add("panels/statistics/online-count",
            Leaf("int", "Online panels", lambda: self.wall.panels_online, lo=0, hi=2048))
        add("panels/statistics/error-count",
            Leaf("int", "Online panels reporting an error",
                 lambda: int(self.faults.get("panel_errors", 0)), lo=0, hi=2048))
        model = {"m2": "cb5", "s4": "cb3", "s8": "cb5", "sx40": "cb8"}.get(
            self.processor_type, "cb5")
        for i in range(self.settings.panels_total if panels else 0):
            add(f"panels/items/P{i + 1:06d}/type", Leaf("string", "Panel type",
                                                       lambda: model))
        return out

    def _index(self, panels: bool) -> Node:
        root: Node = {}
        for path, leaf in self.leaves(panels).items():
            node = root
            for name in path[:-1]:
                node = node.setdefault(name, {})
            node[path[-1]] = leaf
        return root

    @staticmethod
    def _render(node: Node | Leaf, how: str, name: str) -> Any:
        if isinstance(node, Leaf):
            if how == "list":
                return node.summary
            if how == "help":
                return {"Access Specifier": node.access, "Details": node.summary,
                        "Name": name, "Summary": node.summary, "Type": node.type_text()}
            return node.get()
        return {k: TesseraSimulator._render(v, how, k) for k, v in node.items()}

    # ---- requests ---------------------------------------------------------------------

    def _error(self, error: TesseraError) -> web.Response:
        status = 200 if self.faults.get("errors_as_200") else error.status
        return web.json_response({"response-code": error.name}, status=status)

    def _ok(self, name: str, value: Any) -> web.Response:
        return web.json_response({name: value},
                                 dumps=lambda o: json.dumps(o, separators=(",", ":")))

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Every request that got past the shared faults (see the module doc)."""
        self.log.append((request.method, request.path_qs[:200]))
        try:
            return await self._handle(request)
        except TesseraError as exc:
            self.counters.refuse(tp.squeeze(exc.name) or "error")
            return self._error(exc)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        segments = [s for s in request.path.split("/") if s]
        if not segments or segments[0].lower() != tp.ROOT or len(segments) > MAX_SEGMENTS or \
                any(len(s) > MAX_SEGMENT_CHARS for s in segments):
            raise TesseraError("Path not found")
        path = tuple(s.lower() for s in segments[1:])
        query = _query(request.rel_url.raw_query_string)
        if request.method == "GET":
            if "set" in query:
                return self._write(path, query, text=True)
            how = "list" if "list" in query else "help" if "help" in query else "value"
            return self._read(path, how)
        if request.method == "PUT":
            try:
                raw = await request.read()
            except web.HTTPRequestEntityTooLarge:
                raise TesseraError("Bad input parameter value", 413) from None
            try:
                body = json.loads(raw)
            except (ValueError, RecursionError):
                raise TesseraError("Missing input parameter") from None
            if not isinstance(body, dict) or "data" not in body:
                raise TesseraError("Missing input parameter")
            return self._write(path, {"set": body["data"]}, text=False)
        raise TesseraError("Bad operation")

    def _project_check(self, path: tuple[str, ...]) -> None:
        if not self.project and (not path or path[0] != "system"):
            raise TesseraError("No project loaded")

    def _find(self, path: tuple[str, ...]) -> Node | Leaf:
        self._project_check(path)
        node: Node | Leaf = self._index(panels=not path or path[0] == "panels")
        for name in path:
            if not isinstance(node, dict) or name not in node:
                raise TesseraError("Path not found")
            node = node[name]
        return node

    def _read(self, path: tuple[str, ...], how: str) -> web.Response:
        node = self._find(path)
        name = path[-1] if path else tp.ROOT
        return self._ok(name, self._render(node, how, name))

    def _write(self, path: tuple[str, ...], query: dict[str, Any], text: bool) -> web.Response:
        node = self._find(path)
        name = path[-1] if path else tp.ROOT
        if not path:
            raise TesseraError("Bad operation")
        if isinstance(node, Leaf):
            self._apply([(node, node.coerce(query["set"], text))])
            return self._ok(name, node.get())
        if text:  # GET <dir>?set=1&<leaf>=<value>...
            changes = {k: v for k, v in query.items() if k != "set"}
        else:
            if not isinstance(query["set"], dict):
                raise TesseraError("Bad input parameter type")
            changes = query["set"]
        if not changes:
            raise TesseraError("Missing input parameter")
        plan: list[tuple[Leaf, Any]] = []
        for key, value in list(changes.items())[:MAX_QUERY_PAIRS * 4]:
            leaf = node.get(str(key).lower())
            if not isinstance(leaf, Leaf):
                raise TesseraError("Path not found")
            plan.append((leaf, leaf.coerce(value, text)))
        self._apply(plan)
        return self._ok(name, self._render(node, "value", name))

    @staticmethod
    def _apply(plan: list[tuple[Leaf, Any]]) -> None:
        if any(leaf.put is None for leaf, _ in plan):
            raise TesseraError("Bad operation")
        for leaf, value in plan:
            assert leaf.put is not None
            leaf.put(value)


def _item(source: Callable[[], Any], key: Any, default: Any = None) -> Callable[[], Any]:
    """A getter for ``source()[key]``."""
    return lambda: source().get(key, default)


def _store(target: dict[Any, Any], key: Any) -> Callable[[Any], object]:
    """A setter for ``target[key]``."""
    return lambda value: target.__setitem__(key, value)


def _is_preset(wall: Wall, number: int) -> Callable[[], bool]:
    return lambda: wall.preset == number


def _query(raw: str) -> dict[str, str]:
    """Query pairs as sent: ``%XX`` decoded, ``+`` kept (Companion does not encode)."""
    out: dict[str, str] = {}
    for pair in raw.split("&")[:MAX_QUERY_PAIRS]:
        if not pair:
            continue
        key, _, value = pair.partition("=")
        out.setdefault(unquote(key, errors="replace").lower(), unquote(value, errors="replace"))
    return out


def main() -> None:
    """Run one simulator from the command line."""
    parser = simulator_parser("A simulated Brompton Tessera processor (HTTP IP-control API)",
                              "127.0.0.1:8080")
    parser.add_argument("--firmware", default="3.5.2", help="3.5 or later has "
                        "system/temperature; 3.1.0 has none")
    args = parser.parse_args()
    run_forever(TesseraSimulator, settings_from(args, "tessera-sim",
                                                options={"firmware": args.firmware}), "/api/")


if __name__ == "__main__":
    main()
