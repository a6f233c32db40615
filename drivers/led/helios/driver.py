"""Megapixel HELIOS over its Public API (REST at ``/api/v1/public`` plus the WebSocket JSON-RPC).

See ``docs/protocols/helios-http.md``. Reads are GETs with dotted paths in the query; writes
are nested JSON fragments by PATCH, whose echo holds the values now stored: the driver compares
each echoed leaf with what it sent within float32 precision, so a value the processor kept
unchanged (out of range) is announced as a refusal with the kept value, and a key missing from
the echo as not known to this firmware. Brightness is a percentage: the wall's
``max_brightness_nits`` is 100 % (:func:`drivers.led.helios.parse.percent_from_nits`).

Changes made by another controller arrive through the WebSocket JSON-RPC interface: ``state``
once, then the pushed ``update`` fragments are merged (and ``ping`` every 0.5 s keeps it
honest). While the WebSocket is up the HTTP poll only reads the alerts (it also keeps the link
alive and brings ``X-RD-Uptime``); without it (refused, or ``websocket=False``) the driver
polls the display, input, test pattern and alerts subset at ``poll_interval_s``. An uptime
lower than the last one seen is a processor restart: the desired state is re-applied.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import re
import time
from typing import Any

import aiohttp

from drivers.device import Backoff, Problem
from drivers.led import protocol as p
from drivers.led.driver import alert_message
from drivers.led.helios import parse as hp
from drivers.led.http import HttpLedProcessor, ReplyError, clip
from drivers.led.model import (
    BRIGHTNESS_OUTPUT,
    GROUP_BRIGHTNESS,
    INPUT,
    PRESET_RECALL,
    TEMPERATURE,
    Capabilities,
)

PING_S = 0.5
MAX_WS_BYTES = 4 * 1024 * 1024
PRESET_ID_MAX = 2**31 - 1
LOOK_KEYS = ("brightness_nits", "colour_temperature_k", "gamma", "blackout", "freeze",
             "test_pattern", "input")
_INPUT_FORM = re.compile(r"^[A-Za-z0-9_-]{1,48}$")

class HeliosProcessor(HttpLedProcessor):
    """A Megapixel HELIOS processor (see the module doc).

    Args:
        name: device name from the stage config.
        base_url: ``http://host:port`` (no path).
        max_brightness_nits: the wall's limit, and the nits at 100 % HELIOS brightness.
        poll_interval_s: HTTP poll interval (at least :attr:`MIN_POLL_INTERVAL_S`).
        timeout_s: no good reply (or no WebSocket message) for this long: link lost.
        request_timeout_s: limit on one request.
        credentials: ``(user, password)`` when the processor has authentication on.
        auth: ``basic`` or ``digest`` (RFC 2617, realm ``M8 Processor``).
        websocket: follow other controllers' changes through the JSON-RPC WebSocket (else
            poll the subset over HTTP).

    Raises:
        ValueError: ``poll_interval_s`` below :attr:`MIN_POLL_INTERVAL_S`, or an unknown auth.
    """

    capabilities = Capabilities("helios", unsupported={
        "output_frame_rate_hz": "no output frame rate in the HELIOS public API",
        "genlock_source": "no genlock source in the HELIOS public API",
        "genlock_phase_deg": "no genlock phase in the HELIOS public API",
        GROUP_BRIGHTNESS: "HELIOS groups have RGBI gains, not a brightness in nits",
        TEMPERATURE: "HELIOS reports over-temperature only as an alert, without degrees",
        BRIGHTNESS_OUTPUT: "HELIOS reports the brightness setting, not the light output",
    }, test_patterns=("off", "white", "black", "red", "green", "blue", "grid", "ramp",
                      "colour_bars"))
    MIN_POLL_INTERVAL_S: float = 0.5

    def __init__(self, name: str, base_url: str, *, max_brightness_nits: float = 1500.0,
                 poll_interval_s: float = 1.0, timeout_s: float = 3.0,
                 request_timeout_s: float = 2.0, credentials: tuple[str, str] | None = None,
                 auth: str = "basic", websocket: bool = True,
                 backoff: Backoff | None = None) -> None:
        if poll_interval_s < self.MIN_POLL_INTERVAL_S:
            raise ValueError(f"{name}: poll_interval_s {poll_interval_s:g} is below HELIOS's "
                             f"{self.MIN_POLL_INTERVAL_S:g} s")
        if auth not in ("basic", "digest"):
            raise ValueError(f"{name}: auth must be 'basic' or 'digest', not {auth!r}")
        if not max_brightness_nits > 0:
            raise ValueError(f"{name}: max_brightness_nits must be above 0")
        super().__init__(name, base_url, max_brightness_nits=max_brightness_nits,
                         poll_interval_s=poll_interval_s, timeout_s=timeout_s,
                         request_timeout_s=request_timeout_s, credentials=credentials,
                         auth=auth, backoff=backoff)
        self.websocket = websocket
        self._tree: dict[str, Any] = {}
        self._uptime: float | None = None
        self._inputs: list[str] = []
        self._ws_task: asyncio.Task[None] | None = None
        self._ws_live = False
        self._rpc_id = 0
        self._preset = 0
        self._preset_look: dict[str, Any] = {}

    # ---- validation -------------------------------------------------------------------

    def validate(self, key: str, value: object) -> Any:
        """The model's checks, plus HELIOS's input names (those the processor lists)."""
        normalised = super().validate(key, value)
        if key == INPUT:
            if not _INPUT_FORM.match(normalised):
                raise p.ValidationError(INPUT, value, "a HELIOS input name such as sdi1, "
                                        "hdmi or dp1 (letters, digits, '_', '-')", self.name)
            if self._inputs and normalised not in self._inputs:
                raise p.ValidationError(INPUT, value, "one of this processor's inputs: "
                                        + ", ".join(self._inputs[:32]), self.name)
        return normalised

    def validate_preset(self, number: object) -> int:
        """A HELIOS preset record id: a positive integer (ids are database ids, not slots)."""
        self.require(PRESET_RECALL)
        if isinstance(number, float) and number.is_integer():
            number = int(number)
        if isinstance(number, bool) or not isinstance(number, int) or \
                not 1 <= number <= PRESET_ID_MAX:
            raise p.ValidationError("preset", number, "a HELIOS preset id (a positive "
                                    "integer)", self.name)
        return number

    # ---- lifecycle --------------------------------------------------------------------

    async def _open(self) -> None:
        await super()._open()
        if self.websocket:
            self._ws_task = asyncio.create_task(self._ws_loop(), name=f"led-ws-{self.name}")

    async def _close(self) -> None:
        if self._ws_task is not None:
            self._ws_task.cancel()
            done, _ = await asyncio.wait([self._ws_task], timeout=2.0)
            if not done:  # never expected; the session is closed below either way
                self.counters["ws_stop_late"] += 1
            self._ws_task = None
        self._ws_live = False
        await super()._close()

    # ---- HTTP -------------------------------------------------------------------------

    async def _call(self, method: str, path: str, *, body: Any = None,
                    allow_empty: bool = False) -> Any:
        data, headers = await self.request(method, path, body=body, allow_empty=allow_empty)
        self._check_uptime(headers.get("x-rd-uptime"))
        return data

    def _check_uptime(self, header: str | None) -> None:
        uptime = hp.parse_uptime(header)
        if uptime is None:
            self.counters["uptime_missing"] += 1
            return
        old = self._uptime
        self._uptime = uptime
        if old is not None and uptime + 0.05 < old:  # never goes down but on a reboot
            self._restarted(f"uptime {old:.1f} s", f"uptime {uptime:.1f} s")

    @staticmethod
    def _query(paths: tuple[str, ...]) -> str:
        return hp.API + "?" + "&".join(paths)

    async def _connect(self) -> None:
        tree = await self._call("GET", self._query(
            ("dev.ingest.inputs", "dev.ingest.info", "sys.info", "sys.description",
             "dev.display.tilesCount")))
        if not isinstance(tree, dict):
            raise hp.bad(self.base_url, f"a {type(tree).__name__} where the tree should be")
        ingest = hp.get_path(tree, "dev.ingest")
        self._inputs = hp.parse_inputs(ingest, self.base_url)
        identity = hp.parse_identity(tree, self.base_url)
        self.info.update(identity)
        if self.info:
            self._report({"processor": dict(self.info)})

    async def _poll(self) -> None:
        paths = hp.ALERT_PATHS if self._ws_live else hp.POLL_PATHS
        tree = await self._call("GET", self._query(paths))
        if not isinstance(tree, dict):
            raise hp.bad(self.base_url, f"a {type(tree).__name__} where the tree should be")
        self._absorb(tree, replace=paths)

    async def _write(self, values: dict[str, Any]) -> None:
        fragment = hp.fragment_for(values, self.max_brightness_nits)
        before = copy.deepcopy(self._tree)
        echo = await self._call("PATCH", hp.API, body=fragment)
        if not isinstance(echo, dict):
            raise hp.bad(self.base_url, f"a {type(echo).__name__} where the echo should be")
        echoed = hp.parse_tree(echo, self.max_brightness_nits, self.base_url)
        for key, value in values.items():
            for path, sent in hp.sent_leaves(key, fragment).items():
                got = hp.get_path(echo, path)
                if got is None:
                    self.refused(key, value, None, f"the processor did not echo {path} "
                                 "(not known to this firmware)")
                    break
                if hp.leaf_matches(sent, got):
                    continue
                old = hp.get_path(before, path)
                kept = echoed.get(key, got)
                if old is not None and hp.leaf_matches(old, got):
                    self.refused(key, value, kept, f"kept {kept!r} instead of {value!r} "
                                 "(out of range for this processor?)")
                else:
                    self.counters["values_rounded"] += 1
                break
        self._absorb(echo)

    async def _recall(self, number: int) -> None:
        try:
            reply = await self._call("POST", f"/api/v1/presets/{number}/apply",
                                     allow_empty=True)
        except ReplyError as exc:
            if exc.problem.code == "http_status" and exc.problem.params.get("status") == 404:
                raise ReplyError(Problem(f"{self.base_url} has no preset with id {number}",
                                         "vendor_error", detail=f"no preset with id {number}"),
                                 refusal=True) from None
            raise
        if isinstance(reply, dict):
            self._absorb(reply)
        self._preset = number
        self._preset_look = {k: self.reported[k] for k in LOOK_KEYS if k in self.reported}
        self._report({"preset": number})

    # ---- the mirror -------------------------------------------------------------------

    def _absorb(self, fragment: dict[str, Any], replace: tuple[str, ...] = ()) -> None:
        """Merge a reply or update into the mirror and report it (ReplyError: left as was)."""
        hp.parse_tree(fragment, self.max_brightness_nits, self.base_url)  # its shape, whole
        subset = hp.POLL_PATHS
        candidate = copy.deepcopy(self._tree)
        picked: dict[str, Any] = {}
        for path in subset:
            value = hp.get_path(fragment, path)
            if value is not None:
                hp.merge(picked, hp.nest(path, value))
        for path in (*replace, "sys.alerts"):
            if path in replace or hp.get_path(picked, path) is not None:
                _remove(candidate, path)
        hp.merge(candidate, picked)
        parsed = hp.parse_tree(candidate, self.max_brightness_nits, self.base_url)
        self._tree = candidate
        self._report_parsed(parsed)

    def _report_parsed(self, parsed: dict[str, Any]) -> None:
        out = {k: parsed[k] for k in (*LOOK_KEYS, "panels_total") if k in parsed}
        if self._preset and any(self._preset_look.get(k) != v for k, v in out.items()
                                if k in LOOK_KEYS):
            self._preset = 0  # the look has changed since our recall: not that preset now
        out["preset"] = self._preset
        if "alerts" in parsed:
            texts: list[str] = parsed["alerts"]
            out["alerts"] = texts
            out["alert_problems"] = [alert_message(t) for t in texts]
        if "processor" in parsed:
            self.info.update(parsed["processor"])
            out["processor"] = dict(self.info)
        self._report(out)
        severity = parsed.get("alert_severity")
        texts = list(self.reported.get("alerts") or [])
        if isinstance(severity, int) and 0 <= severity <= hp.DEGRADING_SEVERITY and texts:
            self.set_vendor_problems([Problem(
                "processor alerts: " + "; ".join(texts), "processor_alerts",
                alerts="; ".join(texts))])
        elif isinstance(severity, int) and 0 <= severity <= hp.DEGRADING_SEVERITY:
            self.set_vendor_problems([Problem(
                f"processor alerts (severity {severity})", "processor_alerts",
                alerts=hp.SEVERITY_NAMES.get(severity, str(severity)))])
        elif severity is not None or "alerts" in parsed:
            self.set_vendor_problems([])

    # ---- WebSocket JSON-RPC -----------------------------------------------------------

    def _rpc(self, method: str) -> tuple[int, str]:
        self._rpc_id = (self._rpc_id + 1) % PRESET_ID_MAX
        return self._rpc_id, json.dumps({"jsonrpc": "2.0", "id": self._rpc_id,
                                         "method": method})

    async def _ws_loop(self) -> None:
        delay = 0.5
        while True:
            await self._connected.wait()
            started = time.monotonic()
            try:
                await self._ws_session()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # refused, 404, auth, a reset: poll HTTP instead
                self.counters["ws_failures"] += 1
                self.counters["ws_" + type(exc).__name__] += 1
            finally:
                if self._ws_live:
                    self.counters["ws_disconnects"] += 1
                self._ws_live = False
            if time.monotonic() - started > 5.0:
                delay = 0.5
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)

    async def _ws_session(self) -> None:
        session = self._session
        if session is None or session.closed:
            return
        # ws://host/api/v1/public/rpc/websocket on the wire; asked for by its http:// form,
        # because aiohttp's Digest middleware answers a challenge only for http(s) URLs
        url = self.base_url + hp.RPC
        async with asyncio.timeout(self.request_timeout_s):
            ws = await session.ws_connect(url, autoping=True, heartbeat=None,
                                          max_msg_size=MAX_WS_BYTES,
                                          timeout=aiohttp.ClientWSTimeout(ws_close=1.0))
        try:
            state_id, text = self._rpc("state")
            await ws.send_str(text)
            pinger = asyncio.create_task(self._ws_pinger(ws), name=f"led-ws-ping-{self.name}")
            try:
                await self._ws_read(ws, state_id)
            finally:
                pinger.cancel()
                # gather: the pinger's own end is a result, but a cancel of *this* task
                # (the driver stopping) still propagates instead of being swallowed here
                await asyncio.gather(pinger, return_exceptions=True)
        finally:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(1.0):
                    await ws.close()

    async def _ws_pinger(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        while not ws.closed:
            await asyncio.sleep(PING_S)
            _, text = self._rpc("ping")
            await ws.send_str(text)

    async def _ws_read(self, ws: aiohttp.ClientWebSocketResponse, state_id: int) -> None:
        while True:
            # aiohttp's own receive timeout: asyncio.wait_for on 3.11 can swallow a cancel
            # that lands as a message arrives, and the driver could then never stop
            msg = await ws.receive(timeout=self.timeout_s)
            if msg.type != aiohttp.WSMsgType.TEXT:
                if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING,
                                aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                    return
                self.counters["ws_unexpected"] += 1
                continue
            self.counters["ws_messages"] += 1
            try:
                kind, msg_id, payload = hp.parse_rpc(json.loads(msg.data), self.base_url)
                if kind == "result" and msg_id == state_id:
                    if not isinstance(payload, dict):
                        raise hp.bad(self.base_url, "a JSON-RPC state that is not a tree")
                    self._absorb(payload, replace=hp.POLL_PATHS)
                    if not self._ws_live:
                        self._ws_live = True
                        self.counters["ws_connects"] += 1
                elif kind == "update" and self._ws_live:
                    self._absorb(payload)
                    self.counters["ws_updates"] += 1
                elif kind == "error":
                    self.counters["ws_errors"] += 1
            except (ValueError, RecursionError, ReplyError) as exc:
                self.counters["ws_bad_messages"] += 1
                if isinstance(exc, ReplyError):
                    self.counters[exc.problem.code] += 1
                else:
                    self.counters["ws_" + clip(type(exc).__name__, 40)] += 1


def _remove(tree: dict[str, Any], path: str) -> None:
    parts = path.split(".")
    node: Any = tree
    for part in parts[:-1]:
        if not isinstance(node, dict) or part not in node:
            return
        node = node[part]
    if isinstance(node, dict):
        node.pop(parts[-1], None)
