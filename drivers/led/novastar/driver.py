"""NovaStar COEX processors (MX40 Pro and kin) over their HTTP API on port 8001.

What the driver sends and expects is ``docs/protocols/novastar-coex.md``; in short:

- every reply is the ``{code, data, message}`` envelope (:func:`parse.unwrap`); code 5 (busy)
  makes the next request wait 5 s and degrades the device with ``processor_busy``; a
  ``device locked`` answer, or ``device/hw/lock`` reading 1, degrades it with ``device_locked``;
- topology (screens, canvases, input sources, identity) is read at connect and every 60 s;
  ``randomPassword`` in ``device/hw`` is dropped on receipt (:func:`parse.parse_hw`);
- the fast tier (``displayparams``, ``display/state``, ``preset``) every ``poll_interval_s``;
  the status tier (``monitor/info``, ``cabinet/count``, ``hw/lock``, ``device/input`` for the
  test pattern, ``screen`` for the layers' input) every 10 s; one request at a time;
- brightness is written in percent (0..100) and read as a fraction (0..1) of the wall's
  ``max_brightness_nits``; a Success envelope does not prove a write happened, so every write
  is read back and a mismatch is refused as ``write not honoured``;
- blackout and freeze are one display-mode enum per canvas (blackout wins).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from drivers.device import Problem
from drivers.led import protocol as p
from drivers.led.driver import alert_message
from drivers.led.http import HttpLedProcessor, ReplyError, clip
from drivers.led.model import GROUP_BRIGHTNESS, GROUP_PREFIX, Capabilities, validate_group
from drivers.led.novastar import parse
from drivers.led.novastar.parse import CoexError

log = logging.getLogger(__name__)

API = "/api/v1"
STATUS_INTERVAL_S = 10.0
TOPOLOGY_INTERVAL_S = 60.0
BUSY_BACKOFF_S = 5.0
RESTART_SLACK_S = 1.0  # an uptime this much lower than the last read is a restart
READBACK_RETRY_S = 0.25
PARAM_KEYS: tuple[str, ...] = ("brightness_nits", "colour_temperature_k", "gamma")
TEST_PATTERNS = ("off", "white", "black", "red", "green", "blue", "grid", "ramp")
UNSUPPORTED: dict[str, str] = {
    "output_frame_rate_hz": "COEX only reports the output frame rate; no call sets it",
    "genlock_source": "the COEX sync-source call is not confirmed (the clients disagree on "
                      "its body)",
    "genlock_phase_deg": "COEX has no genlock phase",
    "preset_save": "no COEX call stores the current look into a preset",
    "brightness_output": "COEX reports the brightness setting, not the measured light",
}
NO_GROUPS = "COEX has no groups; configure group_cabinets to map a group to cabinet ids"


def _capabilities(groups: bool) -> Capabilities:
    unsupported = dict(UNSUPPORTED)
    if not groups:
        unsupported[GROUP_BRIGHTNESS] = NO_GROUPS
    return Capabilities("novastar", unsupported=unsupported, test_patterns=TEST_PATTERNS)


class NovastarProcessor(HttpLedProcessor):
    """A NovaStar COEX processor (see the module doc).

    Args:
        name: device name from the stage config.
        base_url: ``http://host:8001``.
        max_brightness_nits: the wall's nits at COEX 100 %.
        poll_interval_s: the fast tier's interval (at least 0.5 s, Companion's rate).
        timeout_s: no good reply for this long takes the device offline.
        request_timeout_s: limit on one request.
        credentials: unused (COEX has no authentication); accepted for a uniform constructor.
        auth: unused.
        screens: the COEX screen ids this wall is (default: every screen listed).
        brightness_write: ``"screen"`` (``PUT screen/brightness``, percent) or ``"cabinet"``
            (``PUT device/cabinet/brightness`` with every cabinet id, a 0..1 ratio).
        group_cabinets: stagectl group id -> COEX cabinet ids (as ``GET device/cabinet``
            lists them); enables ``group_brightness.<group>`` through cabinet brightness.
    """

    capabilities = _capabilities(groups=False)
    MIN_POLL_INTERVAL_S: float = 0.5

    def __init__(self, name: str, base_url: str, *, max_brightness_nits: float = 1500.0,
                 poll_interval_s: float = 1.0, timeout_s: float = 3.0,
                 request_timeout_s: float = 2.0, credentials: tuple[str, str] | None = None,
                 auth: str = "basic", screens: list[str] | None = None,
                 brightness_write: str = "screen",
                 group_cabinets: dict[str, list[int]] | None = None) -> None:
        if poll_interval_s < self.MIN_POLL_INTERVAL_S:
            raise ValueError(f"{name}: poll_interval_s {poll_interval_s:g} is below NovaStar's "
                             f"{self.MIN_POLL_INTERVAL_S:g} s (Companion's polling rate)")
        if brightness_write not in ("screen", "cabinet"):
            raise ValueError(f"{name}: brightness_write must be 'screen' or 'cabinet', "
                             f"not {brightness_write!r}")
        if screens is not None and (not screens or not all(
                isinstance(s, str) and s for s in screens)):
            raise ValueError(f"{name}: screens must be a non-empty list of COEX screen ids")
        groups: dict[str, tuple[int, ...]] = {}
        for group, ids in (group_cabinets or {}).items():
            validate_group(GROUP_PREFIX + str(group), name)
            if not ids or not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
                raise ValueError(f"{name}: group_cabinets[{group!r}] must be a non-empty list "
                                 "of cabinet ids")
            groups[str(group)] = tuple(ids)
        super().__init__(name, base_url, max_brightness_nits=max_brightness_nits,
                         poll_interval_s=poll_interval_s, timeout_s=timeout_s,
                         request_timeout_s=request_timeout_s, credentials=None, auth=auth)
        del credentials  # COEX has no authentication
        if groups:
            self.capabilities = _capabilities(groups=True)
        self.screens_wanted = list(screens) if screens else None
        self.brightness_write = brightness_write
        self.group_cabinets = groups
        self._screens: list[parse.Screen] = []
        self._sources: list[parse.Source] = []
        self._presets: dict[str, list[parse.Preset]] = {}
        self._cabinets: dict[int, float | None] = {}
        self.status_interval_s = STATUS_INTERVAL_S
        self.topology_interval_s = TOPOLOGY_INTERVAL_S
        self._absent: set[str] = set()
        self._busy_until = 0.0
        self._next_status = 0.0
        self._next_topology = 0.0
        self._uptimes: dict[str, float] = {}
        self._percent_logged = False
        self._panels_max = 0
        self._locked: str | None = None
        self._missing: list[str] = []
        self._not_honoured: dict[str, str] = {}
        self._monitor_alerts: list[str] = []
        self._temperature_alarm = False
        self._canvases_disagree = False
        self._last_mode = 0

    # ---- requests ---------------------------------------------------------------------

    async def call(self, method: str, path: str, body: Any = None, *,
                   params: Any = None, optional: bool = False) -> Any:
        """One COEX call: the envelope's ``data``, or :class:`ReplyError`.

        Waits out a busy back-off first. ``optional``: an absent endpoint (HTTP 404, an empty
        200, code 6) is remembered and answers ``None`` until the next reconnect.
        """
        wait = self._busy_until - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        if optional and path in self._absent:
            return None
        try:
            reply, _headers = await self.request(method, API + path, params=params, body=body,
                                                 allow_empty=True)
        except ReplyError as exc:
            if optional and exc.problem.code == "http_status" and \
                    exc.problem.params.get("status") == 404:
                self._absent.add(path)
                self.counters["absent_endpoints"] += 1
                return None
            raise
        if reply is None:  # an empty 200: "not there" on some units, never {}
            if optional:
                self._absent.add(path)
                self.counters["absent_endpoints"] += 1
                return None
            raise ReplyError(Problem(f"{self.base_url} answered {path} with an empty body "
                                     "(no such endpoint on this unit?)", "http_malformed",
                                     address=self.base_url))
        try:
            data = parse.unwrap(reply, path)
        except CoexError as exc:
            self.counters[f"coex_code_{exc.vendor_code}"] += 1
            if exc.busy:
                self._busy_until = time.monotonic() + BUSY_BACKOFF_S
                self.counters["busy_backoffs"] += 1
                self._update_vendor_problems()
            elif exc.locked:
                self._locked = self._locked or "unknown"
                self._update_vendor_problems()
                raise ReplyError(Problem(f"processor locked by VMP at {self._locked}",
                                         "device_locked", ip=self._locked),
                                 refusal=True) from None
            elif optional and exc.vendor_code == parse.NOT_SUPPORTED:
                self._absent.add(path)
                return None
            raise
        if method != "GET":
            self._locked = None  # a write went through: nobody holds the lock now
        if isinstance(reply, dict) and reply.get("code") == 200 and \
                not self.counters["code_200_seen"]:
            log.info("%s: the processor answers code 200 for success", self.name)
        if isinstance(reply, dict) and reply.get("code") == 200:
            self.counters["code_200_seen"] += 1
        return data

    def _busy(self) -> bool:
        return time.monotonic() < self._busy_until

    def _link_alive(self) -> bool:
        # a processor answering "busy" is there: its back-off does not take it offline
        return super()._link_alive() or self._busy()

    # ---- topology ---------------------------------------------------------------------

    async def _connect(self) -> None:
        if self._busy():
            raise ReplyError(Problem("processor busy; backing off", "processor_busy"))
        self._absent.clear()
        await self._topology()
        self._next_status = 0.0

    async def _read_screens(self) -> None:
        screens = parse.parse_screens(await self.call("GET", "/screen"))
        listed = {s.id: s for s in screens}
        if self.screens_wanted is None:
            self._screens = screens
            self._missing = []
        else:
            self._screens = [listed[s] for s in self.screens_wanted if s in listed]
            self._missing = [s for s in self.screens_wanted if s not in listed]
        self._report_input()

    async def _topology(self) -> None:
        await self._read_screens()
        sources = await self.call("GET", "/device/input/sources", optional=True)
        if sources is not None:
            self._sources = parse.parse_sources(sources)
        hw = await self.call("GET", "/device/hw", optional=True)
        if hw is not None:
            identity, uptime = parse.parse_hw(hw)  # randomPassword is dropped in there
            self.info = {k: v for k, v in identity.items()
                         if k in ("model", "serial", "firmware", "name")}
            self._report({"processor": dict(self.info)})
            self._check_uptime("device/hw uptime", uptime)
        if self.group_cabinets or self.brightness_write == "cabinet":
            await self._read_cabinets()
        self._report_input()
        self._next_topology = time.monotonic() + self.topology_interval_s
        self._update_vendor_problems()

    def _check_uptime(self, source: str, uptime: float | None) -> None:
        """A restart is an uptime going backwards (each source against itself)."""
        if uptime is None:
            return
        old = self._uptimes.get(source)
        self._uptimes[source] = uptime
        if old is not None and uptime + RESTART_SLACK_S < old:
            self._uptimes = {source: uptime}
            self._next_topology = 0.0
            self._restarted(f"up {old:.0f} s", f"up {uptime:.0f} s")

    def _report_input(self) -> None:
        if not self._screens or not self._screens[0].layers:
            return
        source = self._screens[0].layers[0][1]
        for src in self._sources:
            if src.group_id == source:
                self._report({"input": src.name})
                return

    @property
    def _screen_ids(self) -> list[str]:
        return [s.id for s in self._screens]

    @property
    def _canvas_ids(self) -> list[int]:
        return [c for s in self._screens for c in s.canvases]

    def _require_screens(self) -> None:
        if not self._screens:
            raise ReplyError(Problem("no configured screen is on the processor",
                                     "screen_missing",
                                     screen=", ".join(self.screens_wanted or ["(any)"])),
                             refusal=True)

    # ---- polling ----------------------------------------------------------------------

    async def _poll(self) -> None:
        if self._busy():
            return  # the processor said busy: no request until the back-off ends
        try:
            if time.monotonic() >= self._next_topology:
                await self._topology()
            await self._fast()
            if time.monotonic() >= self._next_status:
                await self._status()
        except CoexError as exc:
            if exc.busy:
                return  # answered, busy: backing off, not a failure of the link
            raise
        if not self._busy():
            self._update_vendor_problems()

    async def _fast(self) -> None:
        await self._read_params()
        await self._read_display()
        presets = parse.parse_presets(await self.call("GET", "/preset"))
        self._presets = presets
        number = 0
        if self._screens:
            for preset in presets.get(self._screens[0].id, []):
                if preset.active:
                    number = preset.number
        self._report({"preset": number if p.PRESET_MIN <= number <= p.PRESET_MAX else 0})

    async def _read_params(self) -> dict[str, Any]:
        params = parse.parse_displayparams(await self.call("GET", "/screen/displayparams"))
        if not self._screens:
            return {}
        entry = params.get(self._screens[0].id)
        if entry is None:
            return {}
        values: dict[str, Any] = {}
        if entry.fraction is not None:
            if entry.percent_seen and not self._percent_logged:
                self._percent_logged = True
                self.counters["brightness_read_as_percent"] += 1
                log.warning("%s: displayparams brightness read above 1.0; taking it as percent",
                            self.name)
            values["brightness_nits"] = round(entry.fraction * self.max_brightness_nits, 1)
        if entry.colour_temperature_k is not None:
            values["colour_temperature_k"] = entry.colour_temperature_k
        if entry.gamma is not None:
            values["gamma"] = entry.gamma
        self._report(values)
        return values

    async def _read_display(self) -> int | None:
        modes = parse.parse_display_state(await self.call("GET", "/screen/output/display/state"))
        mine = [modes[c] for c in self._canvas_ids if c in modes]
        if not mine:
            return None
        self._canvases_disagree = len(set(mine)) > 1
        mode = parse.severest(mine)
        if mode == 1:
            self._report({"blackout": True,
                          "freeze": bool(self.desired.get("freeze",
                                                          self.reported.get("freeze", False)))})
        else:
            self._report({"blackout": False, "freeze": mode == 2})
        return mode

    async def _read_cabinets(self) -> None:
        data = await self.call("GET", "/device/cabinet", optional=True)
        if data is None:
            return
        self._cabinets = parse.parse_cabinets(data)
        values: dict[str, Any] = {}
        for group, ids in self.group_cabinets.items():
            ratios = [r for r in (self._cabinets.get(i) for i in ids) if r is not None]
            if ratios:
                values[GROUP_PREFIX + group] = round(
                    sum(ratios) / len(ratios) * self.max_brightness_nits, 1)
        self._report(values)

    async def _status(self) -> None:
        self._next_status = time.monotonic() + self.status_interval_s
        await self._read_screens()  # small: the layers' input, and screens gone or back
        monitor = await self.call("GET", "/device/monitor/info",
                                  params={"isNeedCabinetInfo": "0"}, optional=True)
        if monitor is not None:
            info = parse.parse_monitor(monitor)
            if info.temperature_c is not None:
                self._report({"temperature_c": info.temperature_c})
            self._temperature_alarm = info.temperature_alarm
            self._monitor_alerts = info.alerts
            self._check_uptime("monitor/info runtime", info.runtime_s)
        counts = await self.call("GET", "/screen/cabinet/count", optional=True)
        if counts is not None:
            per_screen = parse.parse_cabinet_count(counts)
            mine = [per_screen[s] for s in self._screen_ids if s in per_screen]
            if mine:
                online = sum(mine)
                self._panels_max = max(self._panels_max, online)
                self._report({"panels_online": online, "panels_total": self._panels_max})
        lock = await self.call("GET", "/device/hw/lock", optional=True)
        if lock is not None:
            locked, ip = parse.parse_lock(lock)
            self._locked = ip if locked else None
        pattern = await self.call("GET", "/device/input", optional=True)
        if pattern is not None:
            name = parse.parse_pattern(pattern)
            if name is not None:
                self._report({"test_pattern": name})
        if self.group_cabinets:
            await self._read_cabinets()
        self._update_vendor_problems()

    # ---- health -----------------------------------------------------------------------

    def _alerts(self) -> list[str]:
        alerts = list(self._monitor_alerts)
        temp = self.reported.get("temperature_c")
        if self._temperature_alarm and isinstance(temp, float):
            alerts.append(f"over temperature: {temp:.1f} C")
        online, total = self.reported.get("panels_online"), self.reported.get("panels_total")
        if isinstance(online, int) and isinstance(total, int) and online < total:
            alerts.append(f"panels offline: {total - online}")
        if self._locked:
            alerts.append(f"locked by VMP at {self._locked}")
        alerts.extend(f"write not honoured: {key}" for key in sorted(self._not_honoured))
        if self._canvases_disagree:
            alerts.append("canvases disagree")
        return alerts

    def _update_vendor_problems(self) -> None:
        problems: list[Problem] = []
        for screen in self._missing:
            problems.append(Problem(f"screen {clip(screen, 64)} is not on the processor",
                                    "screen_missing", screen=clip(screen, 64)))
        if self._locked:
            problems.append(Problem(f"processor locked by VMP at {self._locked}",
                                    "device_locked", ip=self._locked))
        if self._busy():
            problems.append(Problem("processor busy; backing off", "processor_busy"))
        for key, why in sorted(self._not_honoured.items()):
            detail = f"write not honoured: {key} ({why})"
            problems.append(Problem(f"the processor answered an error: {detail}",
                                    "vendor_error", detail=detail))
        if self._monitor_alerts:
            text = ", ".join(self._monitor_alerts)
            problems.append(Problem(f"processor alerts: {text}", "processor_alerts",
                                    alerts=text))
        alerts = self._alerts()
        self._report({"alerts": alerts, "alert_problems": [alert_message(a) for a in alerts]})
        self.set_vendor_problems(problems)

    # ---- writes -----------------------------------------------------------------------

    def validate(self, key: str, value: object) -> Any:
        """The model's checks, then this processor's: a configured group, a listed input."""
        normalised = super().validate(key, value)
        if key.startswith(GROUP_PREFIX) and key[len(GROUP_PREFIX):] not in self.group_cabinets:
            raise p.ValidationError(key, value, "a group configured in group_cabinets ("
                                    + ", ".join(sorted(self.group_cabinets)) + ")", self.name)
        if key == "input" and self._sources and \
                normalised not in {s.name for s in self._sources}:
            raise p.ValidationError(key, value, "an input the processor lists ("
                                    + clip(", ".join(s.name for s in self._sources), 120) + ")",
                                    self.name)
        return normalised

    async def _write(self, values: dict[str, Any]) -> None:
        self._require_screens()
        refusals: list[tuple[str, Any, Any]] = []
        params: dict[str, Any] = {k: values[k] for k in PARAM_KEYS if k in values}
        for key, value in params.items():
            await self._write_param(key, value)
        if params:
            refusals += await self._read_back(params)
        if "blackout" in values or "freeze" in values:
            refusals += await self._write_display()
        if "test_pattern" in values:
            await self._write_pattern(str(values["test_pattern"]))
        if "input" in values:
            await self._write_input(str(values["input"]))
        groups = {k: v for k, v in values.items() if k.startswith(GROUP_PREFIX)}
        if groups:
            refusals += await self._write_groups(groups)
        self._update_vendor_problems()
        for what, sent, kept in refusals:
            self.refused(what, sent, kept, f"write not honoured: sent {sent!r}, the processor "
                         f"reads {kept!r}")

    async def _write_param(self, key: str, value: Any) -> None:
        ids = self._screen_ids
        if key == "brightness_nits":
            nits = float(value)
            if self.brightness_write == "cabinet":
                if not self._cabinets:
                    await self._read_cabinets()
                if not self._cabinets:
                    raise ReplyError(Problem("the processor lists no cabinets for a cabinet "
                                             "brightness write", "vendor_error",
                                             detail="no cabinets listed"), refusal=True)
                await self.call("PUT", "/device/cabinet/brightness",
                                {"idList": sorted(self._cabinets),
                                 "ratio": round(nits / self.max_brightness_nits, 4)})
                return
            pct = max(0.0, min(100.0, round(100.0 * nits / self.max_brightness_nits, 1)))
            await self.call("PUT", "/screen/brightness", {"screenIdList": ids,
                                                          "brightness": pct})
        elif key == "colour_temperature_k":
            await self.call("PUT", "/screen/colortemperature",
                            {"screenIdList": ids, "colorTemperature": int(value)})
        elif key == "gamma":
            await self.call("PUT", "/screen/gamma", {"screenIdList": ids, "gamma": float(value)})

    def _matches(self, key: str, sent: Any, got: Any) -> bool:
        if got is None:
            return False
        if key == "brightness_nits":
            return abs(float(got) - float(sent)) <= 0.005 * self.max_brightness_nits + 0.05
        if key == "gamma":
            return abs(float(got) - float(sent)) <= 0.01
        return bool(got == sent)

    async def _read_back(self, sent: dict[str, Any]) -> list[tuple[str, Any, Any]]:
        """Read ``displayparams`` after a write; a Success envelope proves nothing on COEX."""
        got = await self._read_params()
        if not all(self._matches(k, v, got.get(k)) for k, v in sent.items()):
            await asyncio.sleep(READBACK_RETRY_S)
            got = await self._read_params()
        refusals: list[tuple[str, Any, Any]] = []
        for key, value in sent.items():
            if self._matches(key, value, got.get(key)):
                self._not_honoured.pop(key, None)
                continue
            kept = got.get(key)
            self._not_honoured[key] = f"sent {value!r}, reads {kept!r}"
            self.counters["writes_not_honoured"] += 1
            refusals.append((key, value, kept))
        return refusals

    async def _write_display(self) -> list[tuple[str, Any, Any]]:
        blackout = bool(self.desired.get("blackout", self.reported.get("blackout", False)))
        freeze = bool(self.desired.get("freeze", self.reported.get("freeze", False)))
        value = parse.display_mode(blackout, freeze)
        await self.call("PUT", "/screen/output/displaymode",
                        {"value": value, "canvasIDs": self._canvas_ids})
        mode = await self._read_display()
        if mode is not None and mode != value:
            self._not_honoured["display_mode"] = f"sent {value}, reads {mode}"
            self.counters["writes_not_honoured"] += 1
            return [("display_mode", value, mode)]
        self._not_honoured.pop("display_mode", None)
        return []

    async def _write_pattern(self, name: str) -> None:
        body = parse.pattern_body(name, self._last_mode)
        if name != "off":
            self._last_mode = int(body["mode"])
        await self.call("PUT", "/device/input/pattern/test", body)
        data = await self.call("GET", "/device/input", optional=True)
        got = parse.parse_pattern(data) if data is not None else None
        self._report({"test_pattern": got if got is not None else name})

    async def _write_input(self, name: str) -> None:
        if not self._sources:
            data = await self.call("GET", "/device/input/sources", optional=True)
            if data is not None:
                self._sources = parse.parse_sources(data)
        source = next((s for s in self._sources if s.name == name), None)
        if source is None:
            known = ", ".join(s.name for s in self._sources) or "none listed"
            raise ReplyError(Problem(f"the processor answered an error: no input named "
                                     f"{name!r} (inputs: {clip(known, 120)})", "vendor_error",
                                     detail=f"no input named {name!r}"), refusal=True)
        for screen in self._screens:
            layer = screen.layers[0][0] if screen.layers else 0
            await self.call("PUT", "/screen/layer/input",
                            {"screenID": screen.id,
                             "layers": [{"id": layer, "source": source.group_id}]})
        await self._read_screens()

    async def _write_groups(self, groups: dict[str, Any]) -> list[tuple[str, Any, Any]]:
        for key, nits in groups.items():
            ids = self.group_cabinets.get(key[len(GROUP_PREFIX):])
            if ids is None:
                raise ReplyError(Problem(f"the processor answered an error: group "
                                         f"{key[len(GROUP_PREFIX):]} has no cabinets "
                                         "configured (group_cabinets)", "vendor_error",
                                         detail=f"{key}: no group_cabinets entry"),
                                 refusal=True)
            await self.call("PUT", "/device/cabinet/brightness",
                            {"idList": list(ids),
                             "ratio": round(float(nits) / self.max_brightness_nits, 4)})
        await self._read_cabinets()
        refusals: list[tuple[str, Any, Any]] = []
        for key, nits in groups.items():
            got = self.reported.get(key)
            if self._matches("brightness_nits", nits, got):
                self._not_honoured.pop(key, None)
            else:
                self._not_honoured[key] = f"sent {nits!r}, reads {got!r}"
                self.counters["writes_not_honoured"] += 1
                refusals.append((key, nits, got))
        return refusals

    # ---- presets ----------------------------------------------------------------------

    async def _recall(self, number: int) -> None:
        self._require_screens()
        if not self._presets:
            self._presets = parse.parse_presets(await self.call("GET", "/preset"))
        listed = {pr.number for s in self._screen_ids for pr in self._presets.get(s, [])}
        if number not in listed:
            raise ReplyError(Problem(f"the processor answered an error: empty preset {number}",
                                     "vendor_error", detail=f"empty preset {number}"),
                             refusal=True)
        for sid in self._screen_ids:
            await self.call("POST", "/preset/current/update",
                            {"screenID": sid, "sequenceNumber": number})
        await self._fast()
        data = await self.call("GET", "/device/input", optional=True)
        if data is not None:
            name = parse.parse_pattern(data)
            if name is not None:
                self._report({"test_pattern": name})
