"""A simulated Megapixel HELIOS processor: its Public API over real HTTP and WebSocket.

Behaves as ``docs/protocols/helios-http.md`` describes the processor:

- ``GET /api/v1/public`` is the whole tree; ``GET /api/v1/public?dev.display.brightness&...``
  returns each path as a nested subtree from the root (objects as well as leaves; ``_`` and
  empty items ignored, ``=value`` tails ignored, unknown paths left out);
- ``PATCH`` (the document) or ``POST`` (its raw example, and Companion) of a nested fragment
  writes; the reply holds the values now stored for the keys sent: numbers as float32 widened
  to double (``2.2`` -> ``2.200000047683716``), an out-of-range value kept (the old value comes
  back), unknown keys dropped (their containers kept), read-only keys echoed unchanged;
- a body without a JSON ``Content-Type`` answers ``406`` ``text/plain`` "Expected
  application/json Content-Type"; malformed JSON (or a body that is not an object) ``400``;
  a write to another URL "Method not allowed" (405);
- every reply carries ``X-RD-Uptime`` (seconds) and ``Connection: close``;
- presets: ``GET /api/v1/presets/list``, ``GET /api/v1/presets``, ``POST
  /api/v1/presets/{id}/apply`` (404 for an unknown id) and ``POST /api/v1/presets/apply
  {"presetName"}`` (first match); ``GET /api/v1/media`` answers ``{"media": []}``;
- the WebSocket JSON-RPC 2.0 interface at ``/api/v1/public/rpc/websocket``: ``state``,
  ``set`` (as PATCH, empty containers pruned: ``{"dev": {"invalid": true}}`` -> ``{}``),
  ``ping`` -> ``"pong"``, and an ``update`` pushed to every client for every change from any
  client (REST, JSON-RPC, a preset, a restart, an alert), at most
  :data:`~drivers.led.simhttp.MAX_WS_CLIENTS` clients, messages up to :data:`WS_MAX_MSG`;
- optional Basic or Digest auth (realm ``M8 Processor``) on everything, the WebSocket
  upgrade included.

Faults beyond the shared ones (:mod:`drivers.led.simhttp`): ``websocket_off`` (1: the
WebSocket URL answers 404 and open ones are closed, as behind a proxy), ``alert`` (a syslog
severity 2..5 raises a ``fanSlow``-style alert of that severity; 0 clears). Panels that drop
out (``panels_offline``) show as a ``receiversLost`` alert of severity 3 (Error); over
temperature as ``tempHigh`` (Error). ``restart`` also drops every WebSocket client.

Run alone: ``python -m drivers.led.helios.simulator --listen 127.0.0.1:8080``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from drivers.led.helios import parse as hp
from drivers.led.simhttp import (
    MAX_WS_CLIENTS,
    VendorSimSettings,
    VendorSimulator,
    float32,
    run_forever,
    settings_from,
    simulator_parser,
)

log = logging.getLogger(__name__)

WS_MAX_MSG = 64 * 1024
WS_QUEUE = 256  # queued pushes per client; a client this far behind is dropped
MAX_QUERY_ITEMS = 64
MAX_NAME = 64
PUSH_CHECK_S = 0.1
INPUTS: tuple[str, ...] = ("hdmi1", "hdmi2", "dp1", "sdi1", "sdi2", "sdi3", "sdi4")
PRESET_NAMES: dict[int, str] = {1: "Daylight", 2: "Tungsten", 3: "Bright", 4: "Grid check"}
PRESET_TIMES = "2024-07-11T10:00:00.000Z"
JSON_HEADERS = {"Cache-Control": "private, no-cache, no-store, must-revalidate",
                "Pragma": "no-cache"}


class _NotAllowed(Exception):
    pass


def _num(lo: float, hi: float) -> Any:
    def check(value: object) -> float | None:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None
        try:
            v = float(value)
        except OverflowError:
            return None
        return v if math.isfinite(v) and lo <= v <= hi else None

    return check


def _flag(value: object) -> bool | None:
    return value if isinstance(value, bool) else None


def _name(value: object) -> str | None:
    return value if isinstance(value, str) and len(value) <= MAX_NAME else None


def _colour(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value if 0 <= value <= 0xFFFFFF else None


def _pattern(value: object) -> str | None:
    return value if isinstance(value, str) and value in hp.HELIOS_PATTERNS else None


# writable leaves (group indices as "*") -> checker returning the value to store or None (kept)
WRITABLE: dict[str, Any] = {
    "dev.display.brightness": _num(0.0, 100.0),
    "dev.display.cct": _num(1667.0, 10000.0),
    "dev.display.cctDuv": _num(-0.01, 0.01),
    "dev.display.gamma": _num(0.0, 4.0),
    "dev.display.blackout": _flag,
    "dev.display.freeze": _flag,
    "dev.ingest.input": lambda v: v if isinstance(v, str) and v in INPUTS else None,
    "dev.ingest.testPattern.enabled": _flag,
    "dev.ingest.testPattern.type": _pattern,
    "dev.ingest.testPattern.motion": _flag,
    "dev.ingest.testPattern.color": _colour,
    "dev.groups.*.name": _name,
    "dev.groups.*.blackout": _flag,
    "dev.groups.*.gains.r": _num(0.0, 2.0),
    "dev.groups.*.gains.g": _num(0.0, 2.0),
    "dev.groups.*.gains.b": _num(0.0, 2.0),
    "dev.groups.*.gains.i": _num(0.0, 2.0),
    "sys.description": _name,
}


def _pattern_key(path: list[str]) -> str:
    if len(path) >= 3 and path[0] == "dev" and path[1] == "groups":
        return ".".join(["dev", "groups", "*", *path[3:]])
    return ".".join(path)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _loads(body: bytes) -> Any:
    return json.loads(body.decode("utf-8"), parse_constant=_reject_constant)


def _prune(tree: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            inner = _prune(value)
            if inner:
                out[key] = inner
        else:
            out[key] = value
    return out


def _diff(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """What changed from ``old`` to ``new`` (``alerts`` objects go whole)."""
    out: dict[str, Any] = {}
    for key, value in new.items():
        before = old.get(key)
        if isinstance(value, dict) and isinstance(before, dict) and key != "alerts":
            inner = _diff(before, value)
            if inner:
                out[key] = inner
        elif before != value:
            out[key] = value
    return out


@dataclass(eq=False)
class _Client:
    ws: web.WebSocketResponse
    queue: asyncio.Queue[str] = field(default_factory=lambda: asyncio.Queue(WS_QUEUE))
    sender: asyncio.Task[None] | None = None


class HeliosSimulator(VendorSimulator):
    """The HELIOS Public API on loopback (see the module doc)."""

    protocol = "helios"

    def __init__(self, settings: VendorSimSettings) -> None:
        super().__init__(settings)
        self._clients: set[_Client] = set()
        self._closing: set[asyncio.Task[None]] = set()
        self._pushed: dict[str, Any] = {}
        self._push_scheduled = False
        self._ws_off = False
        self._alert_severity = 0
        self.writes = 0  # fragments applied (REST PATCH/POST and JSON-RPC set)
        self.recalls = 0  # presets applied
        self.wall.subscribe(self._wall_changed)
        self._power_on_extras()

    # ---- state ------------------------------------------------------------------------

    def _power_on_extras(self) -> None:
        self.wall.values["input"] = "sdi1"
        self._tp_type = "grid" if self.wall.values["test_pattern"] == "grid" else "colorBars"
        self._tp_motion = False
        self._tp_color = 0xFFFFFF
        self._cct_duv = 0.0
        self._description = self.settings.name
        indices = [i for i in range(self.settings.groups + 1) if i != 2][:self.settings.groups]
        self._groups: dict[str, dict[str, Any]] = {
            str(i): {"name": f"Group {i}", "blackout": False,
                     "gains": {"r": 1.0, "g": 1.0, "b": 1.0, "i": 1.0}} for i in indices}

    def _wall_changed(self, delta: dict[str, Any]) -> None:
        tp = delta.get("test_pattern")
        if isinstance(tp, str) and tp != "off":
            self._tp_type = hp.PATTERN_TO_HELIOS.get(tp) or tp.removeprefix("helios:")
        self._schedule_push()

    def _percent(self) -> float:
        return float32(100.0 * float(self.wall.values["brightness_nits"])
                       / self.settings.max_brightness_nits)

    def _alerts(self) -> dict[str, Any]:
        alerts: dict[str, Any] = {}
        since = round(max(0.0, self.wall.uptime_s - 1.0), 1)
        offline = self.wall.panels_offline
        if offline:
            receivers = {f"58:98:6f:00:{n // 256:02x}:{n % 256:02x}": ""
                         for n in range(min(offline, 16))}
            alerts["receiversLost"] = {
                "brief": "Receivers offline", "desc": f"{offline} receivers not responding",
                "count": offline, "severity": 3, "since": since,
                "devices": {"receivers": receivers}}
        if self.wall.temperature_c >= self.settings.over_temperature_c:
            alerts["tempHigh"] = {"brief": "Temperature high",
                                  "desc": "Processor temperature is above its limit",
                                  "count": 1, "severity": 3, "since": since,
                                  "devices": {"ingest": ""}}
        if self._alert_severity:
            alerts["fanSlow"] = {"brief": "Fan slow", "desc": "A processor fan is slow",
                                 "count": 1, "severity": self._alert_severity,
                                 "since": since, "devices": {"ingest": ""}}
        return alerts

    def tree(self) -> dict[str, Any]:
        """The whole HELIOS property tree, from the wall and the vendor extras."""
        w = self.wall.values
        alerts = self._alerts()
        severity = min((a["severity"] for a in alerts.values()), default=-1)
        tp_on = w["test_pattern"] != "off"
        host, _ = self.address
        return {
            "dev": {
                "display": {
                    "brightness": self._percent(), "cct": int(w["colour_temperature_k"]),
                    "cctDuv": float32(self._cct_duv), "gamma": float32(float(w["gamma"])),
                    "blackout": bool(w["blackout"]), "freeze": bool(w["freeze"]),
                    "redundancy": {"info": "None", "mode": "none", "role": "main",
                                   "state": "active", "processors": {}},
                    "tilesCount": self.settings.panels_total,
                    "width": 3840, "height": 2160, "x": 0, "y": 0,
                },
                "ingest": {
                    "input": w["input"],
                    "inputs": {name: {"valid": name in ("sdi1", "hdmi1", w["input"])}
                               for name in INPUTS},
                    "testPattern": {"enabled": tp_on, "type": self._tp_type,
                                    "motion": self._tp_motion, "color": self._tp_color},
                    "info": {"serialNumber": "MPX-SIM-0001", "version": "24.07.0.22791"},
                    "alerts": {}, "alertsCount": 0, "alertsSeverity": -1,
                },
                "groups": {k: {"name": g["name"], "blackout": g["blackout"],
                               "gains": {c: float32(v) for c, v in g["gains"].items()}}
                           for k, g in self._groups.items()},
            },
            "sys": {
                "alerts": alerts, "alertsCount": len(alerts), "alertsSeverity": severity,
                "description": self._description,
                "info": {"name": self._description, "type": "HELIOS",
                         "serialNumber": "MPX-SIM-0001", "version": "24.07.0.22791"},
                "ipAddress": host, "ipSubnet": "255.255.255.0", "ipGateway": "0.0.0.0",
                "ipDns": "0.0.0.0",
            },
        }

    # ---- writes -----------------------------------------------------------------------

    def _walk(self, fragment: dict[str, Any], node: dict[str, Any], path: list[str],
              changes: dict[str, Any], skeleton: dict[str, Any]) -> None:
        for key, value in fragment.items():
            if not isinstance(key, str) or key not in node:
                self.counters.refuse("unknown_key")
                continue
            current = node[key]
            if isinstance(current, dict):
                if not isinstance(value, dict):
                    self.counters.refuse("wrong_shape")
                    continue
                child: dict[str, Any] = {}
                skeleton[key] = child
                self._walk(value, current, [*path, key], changes, child)
                continue
            skeleton[key] = None  # filled from the stored tree afterwards
            checker = WRITABLE.get(_pattern_key([*path, key]))
            if checker is None:
                self.counters.refuse("read_only")
                continue
            stored = checker(value)
            if stored is None:
                self.counters.refuse("out_of_range")
                continue
            changes[".".join([*path, key])] = stored

    def _apply(self, changes: dict[str, Any]) -> None:
        model: dict[str, Any] = {}
        tp_enabled: bool | None = None
        tp_type: str | None = None
        for path, value in changes.items():
            parts = path.split(".")
            if path == "dev.display.brightness":
                model["brightness_nits"] = (self.settings.max_brightness_nits
                                            * float32(value) / 100.0)
            elif path == "dev.display.cct":
                model["colour_temperature_k"] = int(round(value))
            elif path == "dev.display.gamma":
                model["gamma"] = float32(value)
            elif path in ("dev.display.blackout", "dev.display.freeze"):
                model[parts[-1]] = value
            elif path == "dev.display.cctDuv":
                self._cct_duv = float(value)
            elif path == "dev.ingest.input":
                model["input"] = value
            elif path == "dev.ingest.testPattern.enabled":
                tp_enabled = value
            elif path == "dev.ingest.testPattern.type":
                tp_type = value
            elif path == "dev.ingest.testPattern.motion":
                self._tp_motion = value
            elif path == "dev.ingest.testPattern.color":
                self._tp_color = value
            elif path == "sys.description":
                self._description = value
            elif parts[:2] == ["dev", "groups"]:
                group = self._groups[parts[2]]
                if parts[3] == "gains":
                    group["gains"][parts[4]] = float(value)
                else:
                    group[parts[3]] = value
        if tp_enabled is not None or tp_type is not None:
            if tp_type is not None:
                self._tp_type = tp_type
            enabled = tp_enabled if tp_enabled is not None else \
                self.wall.values["test_pattern"] != "off"
            model["test_pattern"] = (hp.PATTERN_FROM_HELIOS.get(self._tp_type)
                                     or "helios:" + self._tp_type) if enabled else "off"
        if model:
            self.wall.set(model)
        self._push_changes()

    def write(self, fragment: dict[str, Any], prune: bool = False) -> dict[str, Any]:
        """Apply a fragment as the processor does; returns the echo of the stored values."""
        self.writes += 1
        changes: dict[str, Any] = {}
        skeleton: dict[str, Any] = {}
        self._walk(fragment, self.tree(), [], changes, skeleton)
        self._apply(changes)
        echo = self._fill(skeleton, self.tree())
        return _prune(echo) if prune else echo

    def _fill(self, skeleton: dict[str, Any], tree: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in skeleton.items():
            if key not in tree:
                continue  # gone meanwhile (an alert that cleared)
            if isinstance(value, dict):
                if isinstance(tree[key], dict):
                    out[key] = self._fill(value, tree[key])
            else:
                out[key] = tree[key]
        return out

    # ---- pushes -----------------------------------------------------------------------

    def _schedule_push(self) -> None:
        if self._push_scheduled:
            return
        with contextlib.suppress(RuntimeError):  # no running loop: the check loop catches up
            asyncio.get_running_loop().call_soon(self._push_changes)
            self._push_scheduled = True

    def _push_changes(self) -> None:
        self._push_scheduled = False
        tree = self.tree()
        diff = _diff(self._pushed, tree)
        self._pushed = tree
        if diff and self._clients:
            self._broadcast(json.dumps({"jsonrpc": "2.0", "method": "update", "params": diff}))

    def _broadcast(self, text: str) -> None:
        for client in list(self._clients):
            self._send(client, text)

    def _send(self, client: _Client, text: str) -> None:
        try:
            client.queue.put_nowait(text)
        except asyncio.QueueFull:
            self.counters.refuse("ws_slow_client")
            self._drop(client)

    def _drop(self, client: _Client) -> None:
        self._clients.discard(client)
        if client.sender is not None:
            client.sender.cancel()
        with contextlib.suppress(RuntimeError):
            task = asyncio.get_running_loop().create_task(self._close_ws(client.ws))
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    @staticmethod
    async def _close_ws(ws: web.WebSocketResponse) -> None:
        with contextlib.suppress(Exception):
            async with asyncio.timeout(1.0):
                await ws.close()

    async def _sender(self, client: _Client) -> None:
        with contextlib.suppress(ConnectionError, RuntimeError):
            while True:
                text = await client.queue.get()
                await client.ws.send_str(text)

    async def started(self) -> None:
        """Start the loop that pushes physics-driven changes (alerts) to WebSocket clients."""
        self._pushed = self.tree()
        self._tasks.append(asyncio.create_task(self._push_loop(),
                                               name=f"{self.settings.name}-push"))

    async def _push_loop(self) -> None:
        while True:
            await asyncio.sleep(PUSH_CHECK_S)
            self._push_changes()

    async def stopping(self) -> None:
        """Close every WebSocket before the server goes."""
        for client in list(self._clients):
            self._clients.discard(client)
            if client.sender is not None:
                client.sender.cancel()
            await self._close_ws(client.ws)
        for task in list(self._closing):
            task.cancel()
        await asyncio.gather(*self._closing, return_exceptions=True)

    # ---- faults -----------------------------------------------------------------------

    def vendor_fault(self, name: str, value: float) -> bool:
        """``websocket_off`` and ``alert`` (see the module doc)."""
        if name == "websocket_off":
            self._ws_off = bool(value)
            if value:
                for client in list(self._clients):
                    self._drop(client)
            return True
        if name == "alert":
            severity = int(value)
            self._alert_severity = severity if 2 <= severity <= 5 else 0
            self._schedule_push()
            return True
        return False

    def restart(self) -> None:
        """A reboot: uptime from zero, the power-on look, every WebSocket dropped."""
        super().restart()
        self._power_on_extras()
        for client in list(self._clients):
            self._drop(client)
        self._schedule_push()

    # ---- HTTP -------------------------------------------------------------------------

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        try:
            response = await super()._middleware(request, handler)
        except web.HTTPException as exc:
            exc.headers["X-RD-Uptime"] = f"{self.wall.uptime_s:.1f}"
            raise
        if not response.prepared:
            response.headers["X-RD-Uptime"] = f"{self.wall.uptime_s:.1f}"
            response.force_close()
        return response

    def _json(self, data: Any, status: int = 200) -> web.Response:
        return web.Response(text=json.dumps(data), status=status, headers=JSON_HEADERS,
                            content_type="application/json", charset="utf-8")

    def _text(self, reason: str, status: int, body: str) -> web.Response:
        self.counters.refuse(reason)
        return web.Response(text=body, status=status, content_type="text/plain")

    async def _body(self, request: web.Request, required: bool = True) -> Any:
        """The JSON body, or a ready error reply (406 / 400 / 413)."""
        try:
            raw = await request.read()
        except web.HTTPRequestEntityTooLarge:
            self.counters.refuse("too_large")
            raise
        if not raw.strip() and not required:
            return None
        if request.content_type != "application/json":
            return self._text("no_json_content_type", 406,
                              "Expected application/json Content-Type")
        try:
            data = _loads(raw)
        except (ValueError, UnicodeDecodeError, RecursionError):
            return self._text("malformed", 400, "Bad Request")
        if not isinstance(data, dict):
            return self._text("not_an_object", 400, "Bad Request")
        return data

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """The HELIOS API (see the module doc)."""
        path = request.path.rstrip("/") or "/"
        method = request.method
        if path == hp.RPC:
            return await self._websocket(request)
        if path == hp.API:
            if method in ("GET", "HEAD"):
                return self._get(request.rel_url.raw_query_string)
            if method in ("PATCH", "POST"):
                body = await self._body(request)
                if isinstance(body, web.StreamResponse):
                    return body
                return self._json(self.write(body))
            return self._text("method", 405, "Method not allowed")
        if path == "/api/v1/presets/list" and method == "GET":
            return self._json({"presets": self._preset_records()})
        if path == "/api/v1/presets" and method == "GET":
            return self._json({"presets": self._preset_records(full=True)})
        if path.startswith("/api/v1/presets/") and path.endswith("/apply") and method == "POST":
            return await self._apply_preset(request, path[len("/api/v1/presets/"):-6])
        if path == "/api/v1/media" and method == "GET":
            return self._json({"media": []})
        if method == "PATCH":
            return self._text("method", 405, "Method not allowed")
        return self._text("not_found", 404, "Not Found")

    def _get(self, query: str) -> web.Response:
        items = [i for i in query.split("&") if i][:MAX_QUERY_ITEMS + 1]
        if len(items) > MAX_QUERY_ITEMS:
            return self._text("too_many_paths", 400, "Bad Request")
        tree = self.tree()
        paths = []
        for item in items:
            name = urllib.parse.unquote(item.split("=", 1)[0])
            if name and name != "_":
                paths.append(name)
        if not paths:
            return self._json(tree)
        out: dict[str, Any] = {}
        for name in paths:
            value = hp.get_path(tree, name)
            if value is None:
                self.counters.refuse("unknown_path")
                continue
            hp.merge(out, hp.nest(name, value))
        return self._json(out)

    def _preset_records(self, full: bool = False) -> list[dict[str, Any]]:
        records: list[dict[str, Any]] = []
        for pid, look in sorted(self.wall.presets.items()):
            record: dict[str, Any] = {"id": pid,
                                      "presetName": PRESET_NAMES.get(pid, f"Preset {pid}"),
                                      "createdAt": PRESET_TIMES, "updatedAt": PRESET_TIMES}
            if full:
                record["filterSettings"] = json.dumps(
                    ["brightness", "cct", "gamma", "test-pattern", "blackout"])
                record["settings"] = json.dumps({"look": look})
            records.append(record)
        return records

    async def _apply_preset(self, request: web.Request, which: str) -> web.Response:
        if which == "":
            body = await self._body(request)
            if isinstance(body, web.Response):
                return body
            name = body.get("presetName")
            pid = next((i for i, _ in sorted(self.wall.presets.items())
                        if PRESET_NAMES.get(i, f"Preset {i}") == name), None)
        else:
            await request.read()
            pid = int(which) if which.isdigit() and len(which) <= 10 else None
        if pid is None or pid not in self.wall.presets:
            return self._text("no_such_preset", 404, "Not Found")
        self.recalls += 1
        self.wall.recall(pid)
        self._push_changes()
        tree = self.tree()
        display = tree["dev"]["display"]
        return self._json({"dev": {
            "display": {k: display[k] for k in ("brightness", "cct", "gamma", "blackout",
                                                "freeze")},
            "ingest": {"testPattern": {k: tree["dev"]["ingest"]["testPattern"][k]
                                       for k in ("enabled", "type")}}}})

    # ---- WebSocket JSON-RPC -----------------------------------------------------------

    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        if self._ws_off or self.faults.get("mute"):
            return self._text("websocket_off", 404, "Not Found")
        if len(self._clients) >= MAX_WS_CLIENTS:
            return self._text("ws_too_many_clients", 503, "Service Unavailable")
        ws = web.WebSocketResponse(max_msg_size=WS_MAX_MSG, heartbeat=None, autoping=True,
                                   timeout=1.0)
        if not ws.can_prepare(request).ok:
            return self._text("ws_not_upgrade", 400, "Bad Request")
        await ws.prepare(request)
        client = _Client(ws)
        client.sender = asyncio.create_task(self._sender(client))
        self._clients.add(client)
        try:
            async for msg in ws:
                self.counters.ws_messages += 1
                if self.faults.get("mute"):
                    continue
                if msg.type == WSMsgType.TEXT:
                    reply = self._rpc(msg.data)
                    if reply is not None and client in self._clients:
                        self._send(client, reply)
                elif msg.type == WSMsgType.BINARY:
                    self.counters.refuse("ws_binary")
                    self._send(client, self._rpc_error(None, -32700, "Parse error"))
                else:
                    break
        finally:
            self._clients.discard(client)
            if client.sender is not None:
                client.sender.cancel()
                await asyncio.gather(client.sender, return_exceptions=True)
            if ws.exception() is not None:
                self.counters.refuse("ws_error")
        return ws

    @staticmethod
    def _rpc_error(msg_id: Any, code: int, text: str) -> str:
        return json.dumps({"jsonrpc": "2.0", "id": msg_id,
                           "error": {"code": code, "message": text}})

    def _rpc(self, text: str) -> str | None:
        try:
            request = _loads(text.encode("utf-8", "replace"))
        except (ValueError, UnicodeDecodeError, RecursionError):
            self.counters.refuse("ws_malformed")
            return self._rpc_error(None, -32700, "Parse error")
        if not isinstance(request, dict) or request.get("jsonrpc") != "2.0" or \
                not isinstance(request.get("method"), str):
            self.counters.refuse("ws_invalid")
            return self._rpc_error(None, -32600, "Invalid Request")
        msg_id = request.get("id")
        if isinstance(msg_id, (dict, list)):
            self.counters.refuse("ws_invalid")
            return self._rpc_error(None, -32600, "Invalid Request")
        method = request["method"]
        result: Any
        if method == "state":
            result = self.tree()
        elif method == "ping":
            result = "pong"
        elif method == "set":
            params = request.get("params")
            if not isinstance(params, dict):
                self.counters.refuse("ws_invalid_params")
                return self._rpc_error(msg_id, -32602, "Invalid params")
            result = self.write(params, prune=True)
        else:
            self.counters.refuse("ws_unknown_method")
            return self._rpc_error(msg_id, -32601, "Method not found")
        if "id" not in request:
            return None  # a notification: no reply
        return json.dumps({"jsonrpc": "2.0", "id": msg_id, "result": result})


def main() -> None:
    """Run one HELIOS simulator from the command line."""
    parser = simulator_parser("Simulated Megapixel HELIOS processor", "127.0.0.1:8080")
    parser.add_argument("--max-nits", type=float, default=1500.0,
                        help="nits at 100 %% brightness")
    parser.add_argument("--auth", choices=("basic", "digest"), default="basic")
    parser.add_argument("--credentials-env", default=None,
                        help="environment variable holding user:password (auth on)")
    args = parser.parse_args()
    credentials = None
    if args.credentials_env:
        user, _, password = os.environ.get(args.credentials_env, "").partition(":")
        if not user:
            parser.error(f"{args.credentials_env} must hold user:password")
        credentials = (user, password)
    run_forever(HeliosSimulator, settings_from(
        args, "helios-sim", max_brightness_nits=args.max_nits, credentials=credentials,
        auth=args.auth), "/api/v1/public")


if __name__ == "__main__":
    main()
