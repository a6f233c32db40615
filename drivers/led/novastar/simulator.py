"""A simulated NovaStar COEX processor: the HTTP API on port 8001 under ``/api/v1``.

It behaves as ``docs/protocols/novastar-coex.md`` says the processors do, quirks included:

- every API reply is the ``{code, data, message}`` envelope; a wrong value is code 1
  (InvalidParam), an unparsable body code 4 (AnalysisFailed);
- ``/screen`` spells ``screenID``, ``displayparams`` spells ``screenId``, ``cabinet/count``
  spells ``ScreenID``;
- brightness is written in percent (0..100) and read as a fraction (0..1);
- blackout and freeze are one display mode per canvas (0 normal, 1 blackout, 2 freeze);
- a body the processor does not understand on a setter (``{"idList", "ratio"}`` on
  ``screen/brightness``) answers Success and changes nothing;
- an absent endpoint answers a bare HTTP 404 (MX40 Pro) or, with the option
  ``absent = "empty"``, an HTTP 200 with an empty body and no Content-Type (MX30);
- ``screen/cabinet/count`` follows ``panels_offline`` while ``monitor/info`` stays stale
  (every card still linked);
- presets restore brightness, colour temperature and gamma (the whole look) and are listed with
  ``state: true``;
- ``device/hw`` serves a ``randomPassword`` field to anyone, like the real unit.

Faults beyond the shared ones (``POST /__sim__/fault``):

============  ==========================================================================
``locked``    1: VMP holds the lock (``device/hw/lock`` reads 1; writes answer
              ``device locked``); 0 releases it
``busy``      1: every API request answers code 5 (Busying); 0 clears
============  ==========================================================================

Options (``VendorSimSettings.options``): ``screens`` (how many screens, default 1),
``absent`` (``"404"`` or ``"empty"``), ``missing`` (API routes this unit lacks, e.g.
``["/device/hw/lock"]``), ``brightness_read`` (``"fraction"``, or ``"percent"`` for a firmware
that reads back 0..100), ``screen_brightness_noop`` (True: ``PUT screen/brightness`` answers
Success and changes nothing, the write nobody has seen work on hardware), ``model`` (default
``MX40 Pro``).

:attr:`NovastarSimulator.requests` keeps the last 512 ``(monotonic time, method, route)`` it
answered under ``/api/v1`` (for tests: which calls a client made, and when).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import secrets
import time
import uuid
from collections import deque
from typing import Any

from aiohttp import web

from drivers.led.model import GROUP_PREFIX, group_key
from drivers.led.novastar import parse
from drivers.led.simhttp import (
    VendorSimSettings,
    VendorSimulator,
    run_forever,
    settings_from,
    simulator_parser,
)

log = logging.getLogger(__name__)

API = "/api/v1"
ALL_CABINETS = 16777215  # the legacy client's "every cabinet" id
LOCK_HOLDER_IP = "192.168.0.10"
LOCKED_CODE = 17  # the numeric code of "device locked" is recorded nowhere: ours
SOURCES: tuple[tuple[int, int, str, int], ...] = (
    (0, 9, "12G-SDI", 72), (1, 3, "HDMI 2.0", 73), (2, 5, "DP 1.2", 74),
    (3, 13, "Internal", 75),
)
MAX_BODY_DEPTH = 32


class SimError(Exception):
    """A request the simulated processor refuses (code, message, counter reason)."""

    def __init__(self, code: int, text: str, reason: str) -> None:
        self.code = code
        self.text = text
        self.reason = reason
        super().__init__(text)


def envelope(data: Any = "", code: int = 0, message: str = "Success") -> web.Response:
    """The COEX reply envelope."""
    return web.json_response({"code": code, "data": data, "message": message})


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    v = float(value)
    return v if math.isfinite(v) else None


def _depth(value: Any, limit: int = MAX_BODY_DEPTH) -> int:
    stack: list[tuple[Any, int]] = [(value, 1)]
    deepest = 0
    while stack:
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        if deepest > limit:
            return deepest
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return deepest


class NovastarSimulator(VendorSimulator):
    """A NovaStar COEX processor on loopback (see the module doc)."""

    protocol = "novastar"

    def __init__(self, settings: VendorSimSettings) -> None:
        super().__init__(settings)
        opts = settings.options
        count = int(opts.get("screens", 1))
        if not 1 <= count <= 8:
            raise ValueError("screens must be 1..8")
        self.absent_style = str(opts.get("absent", "404"))
        if self.absent_style not in ("404", "empty"):
            raise ValueError("absent must be '404' or 'empty'")
        self.brightness_read = str(opts.get("brightness_read", "fraction"))
        self.missing = {str(r).rstrip("/") for r in opts.get("missing", ())}
        self.screen_brightness_noop = bool(opts.get("screen_brightness_noop", False))
        self.requests: deque[tuple[float, str, str]] = deque(maxlen=512)
        self.model = str(opts.get("model", "MX40 Pro"))
        seed = uuid.uuid5(uuid.NAMESPACE_DNS, f"{settings.name}.novastar.sim")
        self.screens: list[dict[str, Any]] = []
        for n in range(count):
            sid = "{" + str(uuid.UUID(int=(seed.int + n) % (1 << 128))) + "}"
            self.screens.append({"id": sid, "name": f"Screen{n + 1}", "canvases": [45 + n],
                                 "layer": 0, "working_mode": 0})
        self.canvas_modes: dict[int, int] = {c: 0 for s in self.screens for c in s["canvases"]}
        base = 2238902278684672
        self.cabinet_ids = [base + i for i in range(settings.panels_total)]
        self.cabinet_ratio: dict[int, float] = {}
        self.pattern: dict[str, Any] = parse.pattern_body("off")
        self.lock_ip: str | None = None
        self.serial = "NS" + seed.hex[:12].upper()
        self._applying = False
        self.password = secrets.token_hex(4)
        self.wall.subscribe(self._wall_changed)
        self._power_on_extras()

    # ---- the look ---------------------------------------------------------------------

    def _power_on_extras(self) -> None:
        self._applying = True
        try:
            self.wall.values["input"] = SOURCES[0][2]
            self.canvas_modes = dict.fromkeys(self.canvas_modes, 0)
            ratio = self.wall.values["brightness_nits"] / self.settings.max_brightness_nits
            self.cabinet_ratio = dict.fromkeys(self.cabinet_ids, round(ratio, 4))
            self._sync_groups_from_cabinets()
            self.pattern = parse.pattern_body("off")
        finally:
            self._applying = False

    def restart(self) -> None:
        """Restart: uptime back to zero, the power-on look, the lock released."""
        super().restart()
        self.lock_ip = None
        self._power_on_extras()

    def group_of(self, index: int) -> str:
        """The wall group (``"1"``...) a cabinet index belongs to (cabinets split evenly)."""
        groups = max(1, self.settings.groups)
        per = max(1, math.ceil(len(self.cabinet_ids) / groups))
        return str(min(groups, index // per + 1))

    def group_cabinets(self, group: str) -> list[int]:
        """The cabinet ids of one wall group."""
        return [cid for i, cid in enumerate(self.cabinet_ids) if self.group_of(i) == group]

    def _sync_groups_from_cabinets(self) -> None:
        changes: dict[str, Any] = {}
        for group in self.wall.groups:
            ratios = {self.cabinet_ratio[c] for c in self.group_cabinets(group)}
            if len(ratios) == 1:
                changes[group_key(group)] = round(ratios.pop() * self.settings.max_brightness_nits,
                                                  1)
        self.wall.set(changes)

    def _wall_changed(self, delta: dict[str, Any]) -> None:
        """A change from anywhere (a preset, a third party, a test) shows in the vendor tree."""
        if self._applying:
            return
        if "blackout" in delta or "freeze" in delta:
            mode = parse.display_mode(bool(self.wall.values["blackout"]),
                                      bool(self.wall.values["freeze"]))
            self.canvas_modes = dict.fromkeys(self.canvas_modes, mode)
        if "test_pattern" in delta:
            name = delta["test_pattern"]
            if name in parse.PATTERN_MODES or name == "off":
                self.pattern = parse.pattern_body(str(name), int(self.pattern["mode"]))
        for key, value in delta.items():
            if key.startswith(GROUP_PREFIX) and isinstance(value, (int, float)):
                ratio = round(float(value) / self.settings.max_brightness_nits, 4)
                for cid in self.group_cabinets(key[len(GROUP_PREFIX):]):
                    self.cabinet_ratio[cid] = ratio

    def _set_modes(self, canvases: list[int], value: int) -> None:
        for c in canvases:
            self.canvas_modes[c] = value
        modes = list(self.canvas_modes.values())
        worst = parse.severest(modes)
        self._applying = True
        try:
            self.wall.set({"blackout": worst == 1, "freeze": worst == 2})
        finally:
            self._applying = False

    # ---- faults -----------------------------------------------------------------------

    def vendor_fault(self, name: str, value: float) -> bool:
        """``locked`` (VMP lock, value 1) and ``busy`` (code 5, value 1)."""
        if name == "locked":
            self.lock_ip = LOCK_HOLDER_IP if value else None
            return True
        if name == "busy":
            self.faults["busy"] = float(value)
            return True
        return False

    # ---- request path -----------------------------------------------------------------

    def absent(self, reason: str = "absent") -> web.Response:
        """An endpoint this unit does not have: a bare 404, or an empty 200 (MX30)."""
        self.counters.refuse(reason)
        if self.absent_style == "empty":
            resp = web.Response(status=200, body=b"")
            resp.headers.pop("Content-Type", None)
            return resp
        return web.Response(status=404, body=b"")

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Route one request (anything at all) to the COEX API, or answer its error form."""
        path = request.path
        if not path.startswith(API + "/"):
            return self.absent("outside_api")
        route = path[len(API):].rstrip("/")
        method = request.method
        self.requests.append((time.monotonic(), method, route[:120]))
        if self.faults.get("busy"):
            self.counters.refuse("busy")
            return envelope("", parse.BUSY, "Busying")
        if route in self.missing:
            return self.absent("missing")
        try:
            if method == "GET":
                data = self._get(route)
                if data is None:
                    return self.absent("unknown_path")
                return envelope(data)
            if method in ("PUT", "POST"):
                setter = self._setter(method, route)
                if setter is None:
                    return self.absent("unknown_path")
                body = await self._body(request)
                if self.lock_ip is not None:
                    raise SimError(LOCKED_CODE, parse.LOCKED_MESSAGE, "locked")
                setter(body)
                return envelope("")
        except SimError as exc:
            self.counters.refuse(exc.reason)
            return envelope("", exc.code, exc.text)
        return self.absent("method")

    async def _body(self, request: web.Request) -> dict[str, Any]:
        try:
            raw = await request.read()
        except web.HTTPException:
            self.counters.refuse("too_large")
            raise
        try:
            body = json.loads(raw)
        except (UnicodeDecodeError, ValueError, RecursionError):
            raise SimError(4, "AnalysisFailed", "unparsable_body") from None
        if not isinstance(body, dict) or _depth(body) > MAX_BODY_DEPTH:
            raise SimError(4, "AnalysisFailed", "body_not_object")
        return body

    # ---- reads ------------------------------------------------------------------------

    def _get(self, route: str) -> Any:
        w = self.wall.values
        if route == "/screen":
            source = self._group_id(str(w.get("input", "")))
            return {"screens": [
                {"screenID": s["id"], "screenName": s["name"], "workingMode": s["working_mode"],
                 "lowLatency": False, "masterFrameRate": 60,
                 "canvases": [{"canvasID": c, "width": 3840, "height": 2160}
                              for c in s["canvases"]],
                 "layersInWorkingMode": [{"workingMode": 0,
                                          "layers": [{"id": s["layer"], "source": source}]}]}
                for s in self.screens]}
        if route == "/screen/displayparams":
            fraction = round(float(w["brightness_nits"]) / self.settings.max_brightness_nits, 4)
            brightness = round(fraction * 100, 2) if self.brightness_read == "percent" \
                else fraction
            return {"list": [{"screenId": s["id"], "brightness": brightness,
                              "colorTemperature": w["colour_temperature_k"],
                              "gamma": w["gamma"]} for s in self.screens]}
        if route == "/screen/output/display/state":
            return {"mappingState": [{"canvasID": c, "enable": False} for c in self.canvas_modes],
                    "displayState": [{"canvasID": c, "displayMode": m}
                                     for c, m in self.canvas_modes.items()]}
        if route == "/preset":
            return {"screenPresets": [{"screenID": s["id"], "presets": [
                {"sequenceNumber": n, "name": f"Preset {n}", "state": n == self.wall.preset,
                 "sourceData": False, "processingData": True, "outputData": True,
                 "screenData": False, "effectSwitch": 0, "time": "2026.01.01 00:00:00.000 Thu"}
                for n in sorted(self.wall.presets)]} for s in self.screens]}
        if route == "/device/input/sources":
            return [{"id": i, "type": t, "name": name, "groupId": g,
                     "sourceStatus": 1 if name == w.get("input") else 0,
                     "actualResolution": {"width": 3840, "height": 2160},
                     "actualRefreshRate": 60} for i, t, name, g in SOURCES]
        if route == "/device/input":
            return {"testPattern": self.pattern,
                    "inputs": [{"id": i, "name": name} for i, _t, name, _g in SOURCES]}
        if route == "/device/hw":
            return {"name": self.model, "modelID": 4101, "hwVersion": "V1.5.1",
                    "sn": self.serial, "customName": self.settings.name,
                    "uptime": round(self.wall.uptime_s, 1), "randomPassword": self.password}
        if route == "/device/hw/lock":
            return {"locked": 1 if self.lock_ip else 0, "ip": self.lock_ip or ""}
        if route == "/device/monitor/info":
            temp = round(self.wall.temperature_c, 1)
            hot = temp >= self.settings.over_temperature_c
            return {"mainBoardTemperature": {"value": temp, "status": 1 if hot else 0},
                    "mainBoardVoltage": {"value": 5.1, "status": 0},
                    "fanInfos": [{"fanType": 0, "fanSpeed": 3200, "status": 0}],
                    "outputStatus": [{"outputID": n, "status": 0, "linkStatus": True}
                                     for n in range(1, 5)],  # stale: never follows dropouts
                    "cardMonitorInfo": [], "runtime": round(self.wall.uptime_s, 1),
                    "backupStatus": 0}
        if route == "/screen/cabinet/count":
            online = self.wall.panels_online
            counts = [online // len(self.screens)] * len(self.screens)
            counts[0] += online - sum(counts)
            return {"list": [{"ScreenID": s["id"], "CabinetCount": n,
                              "CabinetCountInBlackList": 0}
                             for s, n in zip(self.screens, counts, strict=True)]}
        if route == "/device/cabinet":
            return [{"id": cid, "brightness": self.cabinet_ratio[cid],
                     "colorTemperature": w["colour_temperature_k"], "gamma": w["gamma"]}
                    for cid in self.cabinet_ids[:self.wall.panels_online]]
        return None

    def _group_id(self, name: str) -> int:
        for _i, _t, src, gid in SOURCES:
            if src == name:
                return gid
        return SOURCES[0][3]

    # ---- writes -----------------------------------------------------------------------

    def _setter(self, method: str, route: str) -> Any:
        table: dict[tuple[str, str], Any] = {
            ("PUT", "/screen/brightness"): self._set_brightness,
            ("PUT", "/screen/colortemperature"): self._set_colour_temperature,
            ("PUT", "/screen/gamma"): self._set_gamma,
            ("PUT", "/screen/output/displaymode"): self._set_display_mode,
            ("POST", "/preset/current/update"): self._apply_preset,
            ("PUT", "/preset/current/update"): self._apply_preset,
            ("PUT", "/screen/layer/input"): self._set_layer_input,
            ("PUT", "/device/input/pattern/test"): self._set_pattern,
            ("PUT", "/device/cabinet/brightness"): self._set_cabinet_brightness,
        }
        return table.get((method, route))

    def _screens_of(self, body: dict[str, Any]) -> list[dict[str, Any]] | None:
        """The screens a setter names (``screenIdList`` or ``screenIds``; none: every one)."""
        ids = body.get("screenIdList", body.get("screenIds"))
        if ids is None or ids == []:
            return list(self.screens)
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise SimError(1, "InvalidParam", "bad_screen_list")
        known = {s["id"]: s for s in self.screens}
        if any(i not in known for i in ids):
            raise SimError(1, "InvalidParam", "unknown_screen")
        return [known[i] for i in ids]

    def _set_brightness(self, body: dict[str, Any]) -> None:
        self._screens_of(body)
        if "brightness" not in body or self.screen_brightness_noop:
            self.counters.refuse("ignored_body")  # Success, and nothing changes (MX30)
            return
        pct = _number(body["brightness"])
        if pct is None or not 0.0 <= pct <= 100.0:
            raise SimError(1, "InvalidParam", "brightness_range")
        self.wall.set({"brightness_nits": round(pct / 100.0 * self.settings.max_brightness_nits,
                                                1)})

    def _set_colour_temperature(self, body: dict[str, Any]) -> None:
        self._screens_of(body)
        key = "colorTemperature" if "colorTemperature" in body else "colorTemp"
        if key not in body:
            self.counters.refuse("ignored_body")
            return
        value = _number(body[key])
        if value is None or not value.is_integer() or not 1700 <= value <= 15000:
            raise SimError(1, "InvalidParam", "colour_temperature_range")
        self.wall.set({"colour_temperature_k": int(value)})

    def _set_gamma(self, body: dict[str, Any]) -> None:
        self._screens_of(body)
        if "gamma" not in body:
            self.counters.refuse("ignored_body")
            return
        value = _number(body["gamma"])
        if value is None or not 1.0 <= value <= 4.0:
            raise SimError(1, "InvalidParam", "gamma_range")
        self.wall.set({"gamma": round(value, 3)})

    def _set_display_mode(self, body: dict[str, Any]) -> None:
        value = body.get("value")
        if isinstance(value, bool) or value not in (0, 1, 2):
            raise SimError(1, "InvalidParam", "display_mode_value")
        canvases: list[int]
        if "canvasIDs" in body and body["canvasIDs"] not in (None, []):
            given = body["canvasIDs"]
            if not isinstance(given, list) or any(
                    isinstance(c, bool) or not isinstance(c, int) or c not in self.canvas_modes
                    for c in given):
                raise SimError(1, "InvalidParam", "unknown_canvas")
            canvases = [int(c) for c in given]
        else:
            screens = self._screens_of(body) or []
            canvases = [c for s in screens for c in s["canvases"]]
        self._set_modes([int(c) for c in canvases], int(value))

    def _apply_preset(self, body: dict[str, Any]) -> None:
        sid = body.get("screenID", body.get("screenId"))
        if sid is not None and not any(s["id"] == sid for s in self.screens):
            raise SimError(1, "InvalidParam", "unknown_screen")
        number = body.get("sequenceNumber")
        if isinstance(number, bool) or not isinstance(number, int) or \
                number not in self.wall.presets:
            raise SimError(1, "InvalidParam", "unknown_preset")
        self.wall.recall(number)

    def _set_layer_input(self, body: dict[str, Any]) -> None:
        sid = body.get("screenID", body.get("screenId"))
        screen = next((s for s in self.screens if s["id"] == sid), None)
        layers = body.get("layers")
        if screen is None:
            raise SimError(1, "InvalidParam", "unknown_screen")
        if not isinstance(layers, list) or not layers or not isinstance(layers[0], dict):
            raise SimError(1, "InvalidParam", "bad_layers")
        for layer in layers:
            if not isinstance(layer, dict):
                raise SimError(1, "InvalidParam", "bad_layers")
            lid, source = layer.get("id"), layer.get("source")
            with contextlib.suppress(ValueError):  # S8 sends ids as strings
                lid = int(lid) if isinstance(lid, str) else lid
                source = int(source) if isinstance(source, str) else source
            if lid != screen["layer"] or isinstance(source, bool):
                raise SimError(1, "InvalidParam", "unknown_layer")
            name = next((n for _i, _t, n, g in SOURCES if g == source), None)
            if name is None:
                raise SimError(1, "InvalidParam", "unknown_source")
            self.wall.set({"input": name})

    def _set_pattern(self, body: dict[str, Any]) -> None:
        mode, params = body.get("mode"), body.get("parameters")
        if isinstance(mode, bool) or not isinstance(mode, int) or \
                not (mode == 0 or mode in parse.VENDOR_PATTERNS):
            raise SimError(1, "InvalidParam", "pattern_mode")
        if not isinstance(params, dict):
            raise SimError(1, "InvalidParam", "pattern_parameters")
        clean: dict[str, Any] = {}
        for key, lo, hi, default in (("red", 0, 4095, 4095), ("green", 0, 4095, 4095),
                                     ("blue", 0, 4095, 4095), ("gray", 0, 255, 255),
                                     ("gridWidth", 0, 255, 255), ("moveSpeed", 0, 100, 100),
                                     ("gradientStretch", 1, 20, 1), ("state", 0, 1, 1)):
            value = params.get(key, default)
            if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
                raise SimError(1, "InvalidParam", "pattern_parameters")
            clean[key] = value
        self.pattern = {"mode": mode, "parameters": clean}
        name = parse.parse_pattern({"testPattern": self.pattern})
        self._applying = True
        try:
            self.wall.set({"test_pattern": name})
        finally:
            self._applying = False

    def _set_cabinet_brightness(self, body: dict[str, Any]) -> None:
        ids, ratio = body.get("idList"), _number(body.get("ratio"))
        if not isinstance(ids, list) or not ids or ratio is None or not 0.0 <= ratio <= 1.0 \
                or not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
            raise SimError(1, "InvalidParam", "cabinet_brightness")
        chosen = set(self.cabinet_ids) if ALL_CABINETS in ids else set(ids)
        if not chosen <= set(self.cabinet_ids):
            raise SimError(1, "InvalidParam", "unknown_cabinet")
        for cid in chosen:
            self.cabinet_ratio[cid] = round(ratio, 4)
        self._applying = True
        try:
            self._sync_groups_from_cabinets()
            if chosen == set(self.cabinet_ids):
                self.wall.set({"brightness_nits": round(
                    ratio * self.settings.max_brightness_nits, 1)})
        finally:
            self._applying = False


def main() -> None:
    """Run one simulator from the command line."""
    parser = simulator_parser("Simulated NovaStar COEX processor", "127.0.0.1:8001")
    parser.add_argument("--screens", type=int, default=1)
    parser.add_argument("--absent", choices=("404", "empty"), default="404")
    args = parser.parse_args()
    run_forever(NovastarSimulator, settings_from(
        args, "novastar-sim", options={"screens": args.screens, "absent": args.absent}),
        "/api/v1")


if __name__ == "__main__":
    main()
