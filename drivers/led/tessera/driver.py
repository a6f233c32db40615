"""Brompton Tessera processors over their HTTP IP-control API (``driver = "tessera"``).

The wire is ``docs/protocols/tessera-http.md``: ``GET /api/<path>`` reads ``{"<leaf>": value}``,
``PUT /api/<path>`` with ``{"data": value}`` writes and echoes the stored value. Tessera pushes
nothing, so another controller's changes are seen by polling: the whole tree (``GET /api/``,
as Companion does) while the project is small, the subtrees stagectl maps when it is large
(more than :data:`~drivers.led.tessera.parse.SMALL_TREE_LEAVES` leaves, counted at connect).

A processor restart shows as ``system/uptime`` going backwards; it is handled like a
reconnection (desired state re-applied). The named errors map as the page's table says:
``No project loaded`` degrades the device (commands are held as desired state meanwhile,
and all of it is applied once a project is loaded), ``Access denied`` on a plain read
means IP control (Live Control) is off (offline, ``ip_control_disabled``), ``Path not
found``/``Not supported`` on a write marks that feature unsupported on this processor, the
others refuse the command. An error counts whether it
comes as an HTTP error status or as ``200`` with ``{"response-code": ...}``.
"""

from __future__ import annotations

import re
from typing import Any

from drivers.device import Problem
from drivers.led import protocol as p
from drivers.led.driver import alert_message
from drivers.led.http import HttpLedProcessor, ReplyError
from drivers.led.model import GROUP_PREFIX, INPUT, Capabilities, validate_group
from drivers.led.tessera import parse as tp

TESSERA_CAPABILITIES = Capabilities("tessera", unsupported={
    "output_frame_rate_hz": "the Tessera API has no settable output frame rate "
                            "(input/active/refresh-rate is the input's, read-only)",
    "genlock_source": "the Tessera IP Control API 3.1 has no genlock source",
    "genlock_phase_deg": "the Tessera IP Control API 3.1 has no genlock phase (newer "
                         "firmware's phase offset is unconfirmed)",
    "brightness_output": "Tessera reports no measured light output, only the setting",
}, test_patterns=("off", *tp.PATTERN_TO_TESSERA))

_INPUT = re.compile(r"^(" + "|".join(tp.PORT_TYPES) + r"):([1-9][0-9]?)$", re.IGNORECASE)
_RESPONSE_CODE = re.compile(r'"response-code"\s*:\s*"([^"]{0,120})"', re.IGNORECASE)
_MAX_GROUP_ID = 2**32 - 1  # Companion's maxGroupNumber


def ip_control_problem() -> Problem:
    """The health reason while the processor's IP control (Live Control) is off."""
    return Problem("IP control is switched off on the processor (Live Control)",
                   "ip_control_disabled")


class TesseraProcessor(HttpLedProcessor):
    """A Brompton Tessera processor (SX40, S8, M2, ...) on ``http://host:80``.

    Args:
        name: device name from the stage config.
        base_url: ``http://host:port`` (the API is under ``/api``).
        max_brightness_nits: the wall's limit (Tessera speaks nits; no conversion).
        poll_interval_s: time between polls; at least :attr:`MIN_POLL_INTERVAL_S`.
        timeout_s: no good reply for this long takes the device offline.
        request_timeout_s: limit on one request (Companion uses 2 s).
        credentials: unused by Tessera (no authentication in API 3.1); accepted for the
            shared constructor.
        auth: as ``credentials``.

    Raises:
        ValueError: ``poll_interval_s`` below :attr:`MIN_POLL_INTERVAL_S`.
    """

    capabilities = TESSERA_CAPABILITIES
    MIN_POLL_INTERVAL_S: float = 1.0

    def __init__(self, name: str, base_url: str, *, max_brightness_nits: float = 1500.0,
                 poll_interval_s: float = 1.0, timeout_s: float = 3.0,
                 request_timeout_s: float = 2.0, credentials: tuple[str, str] | None = None,
                 auth: str = "basic") -> None:
        if not poll_interval_s >= self.MIN_POLL_INTERVAL_S:
            raise ValueError(f"{name}: poll_interval_s {poll_interval_s!r} is below the "
                             f"Tessera minimum of {self.MIN_POLL_INTERVAL_S:g} s")
        super().__init__(name, base_url, max_brightness_nits=max_brightness_nits,
                         poll_interval_s=poll_interval_s, timeout_s=timeout_s,
                         request_timeout_s=request_timeout_s, credentials=credentials,
                         auth=auth)
        self.whole_tree = True
        self.tree_leaves = 0
        self.groups: list[str] | None = None
        self.no_project = False
        self._connect_tree: Any = None
        self._uptime: float | None = None
        self._uptime_text = ""

    def snapshot(self) -> dict[str, Any]:
        """The LED snapshot plus ``detail`` (uptime, poll mode, raw colour temperature, ...)."""
        snap = super().snapshot()
        snap["detail"] = dict(self.info)
        return snap

    # ---- validation -------------------------------------------------------------------

    def validate(self, key: str, value: object) -> Any:
        """The model's checks, then Tessera's: ``<port-type>:<port-number>``, numeric groups."""
        normalised = super().validate(key, value)
        if key == INPUT:
            found = _INPUT.match(str(normalised))
            if not found:
                raise p.ValidationError(key, value, "<port-type>:<port-number> with port type "
                                        + "/".join(tp.PORT_TYPES) + " (e.g. sdi:1)", self.name)
            return f"{found.group(1).lower()}:{int(found.group(2))}"
        if key.startswith(GROUP_PREFIX):
            group = validate_group(key, self.name)
            if not group.isdigit() or not 1 <= int(group) <= _MAX_GROUP_ID:
                raise p.ValidationError(key, value, "a Tessera group number "
                                        "(group_brightness.<1..4294967295>)", self.name)
            if self.groups is not None and group not in self.groups:
                known = ", ".join(self.groups) or "none"
                raise p.ValidationError(key, value, f"a group in the processor's project "
                                        f"(it has: {known})", self.name)
        return normalised

    # ---- requests ---------------------------------------------------------------------

    async def _call(self, method: str, path: tuple[str, ...], body: Any = None) -> Any:
        """One API request; the value under the leaf's name, or :class:`ReplyError`."""
        url = "/api/" + "/".join(path)
        where = "/".join(path) or "api"
        try:
            reply, _headers = await self.request(method, url, body=body)
        except ReplyError as exc:
            if exc.problem.code == "http_status":
                found = _RESPONSE_CODE.search(str(exc.problem.params.get("body", "")))
                if found:
                    self.counters["vendor_errors"] += 1
                    raise tp.vendor_error(found.group(1), where) from None
            raise
        if tp.error_in(reply) is not None:
            self.counters["vendor_errors"] += 1
        return tp.unwrap(reply, path[-1] if path else tp.ROOT, where)

    async def _read(self, path: tuple[str, ...]) -> Any:
        """GET a leaf or directory. ``Access denied`` on a read means IP control is off."""
        try:
            return await self._call("GET", path)
        except tp.VendorError as exc:
            if exc.name == "accessdenied":
                raise ReplyError(ip_control_problem()) from None
            raise

    async def _put(self, path: tuple[str, ...], value: Any) -> Any:
        """PUT ``{"data": value}``; returns the echoed value."""
        return await self._call("PUT", path, body={"data": value})

    # ---- polling ----------------------------------------------------------------------

    async def _connect(self) -> None:
        """Read the whole tree once: its size decides how to poll."""
        self._connect_tree = None
        try:
            tree = await self._read(())
        except tp.VendorError as exc:
            if exc.problem.code == "no_project_loaded":
                return  # polled as a small tree until a project is loaded
            raise
        self._size_up(tree)
        self._connect_tree = tree

    def _size_up(self, tree: Any) -> None:
        """Choose whole-tree or subtree polling from the tree's size."""
        self.tree_leaves = tp.count_leaves(tree)
        self.whole_tree = self.tree_leaves <= tp.SMALL_TREE_LEAVES
        self.info["poll"] = "whole tree" if self.whole_tree else "subtrees"
        self.info["tree_leaves"] = self.tree_leaves

    async def _poll(self) -> None:
        tree: Any
        project = True
        try:
            if self._connect_tree is not None:
                tree, self._connect_tree = self._connect_tree, None
            elif self.whole_tree:
                tree = await self._read(())
                self._size_up(tree)  # a project loaded since may be large
            else:
                tree = await self._subtrees()
        except tp.VendorError as exc:
            if exc.problem.code != "no_project_loaded":
                raise
            project = False
            tree = {"system": await self._read(("system",))}
        state = tp.parse_tree(tree)
        self._absorb(state)
        self._set_no_project(not project)

    async def _subtrees(self) -> dict[str, Any]:
        tree: dict[str, Any] = {}
        for path in tp.SUBTREES:
            try:
                value = await self._read(path)
            except tp.VendorError as exc:
                if exc.unsupported:
                    continue  # this model or firmware has no such subtree
                raise
            tp.nest(path, value, tree)
        return tree

    def _absorb(self, state: tp.TreeState) -> None:
        values = dict(state.values)
        if "alerts" in values:
            values["alert_problems"] = [alert_message(a) for a in values["alerts"]]
        if state.groups is not None:
            self.groups = state.groups
        if "processor" in values:
            self.info.update(values["processor"])
        self.info.update(state.detail)
        self._report(values)
        if state.uptime_s is not None:
            old, old_text = self._uptime, self._uptime_text
            self._uptime, self._uptime_text = state.uptime_s, state.uptime
            self.info["uptime"] = state.uptime
            if old is not None and state.uptime_s < old and self._connected.is_set():
                self._restarted(old_text, state.uptime)

    def _send_desired(self, values: dict[str, Any]) -> None:
        """Queue values for the writer; held while no project is loaded (sent once it is)."""
        if self.no_project:
            self.counters["held_no_project"] += len(values)
            return
        super()._send_desired(values)

    def _set_no_project(self, missing: bool) -> None:
        if missing == self.no_project:
            return
        self.no_project = missing
        if missing:
            self.counters["no_project"] += 1
            self.set_vendor_problems([Problem("processor has no project loaded",
                                              "no_project_loaded")])
            return
        self.set_vendor_problems([])
        if self._connected.is_set() and self.desired:
            self.counters["reapplies"] += 1  # a project was loaded: our look goes back on
            self._send_desired(dict(self.desired))

    # ---- writes -----------------------------------------------------------------------

    async def _write(self, values: dict[str, Any]) -> None:
        order = sorted(values, key=lambda k: (k != INPUT, k == "test_pattern", k))
        for key in order:
            try:
                await self._write_one(key, values[key])
            except tp.VendorError as exc:
                if not exc.refusal:
                    raise
                if exc.problem.code == "no_project_loaded":
                    self._set_no_project(True)
                elif exc.unsupported and key in p.PARAMS:
                    self._mark_unsupported(key, str(exc.problem))
                self.refused(key, values[key], None, why=str(exc.problem))

    def _mark_unsupported(self, key: str, why: str) -> None:
        """This processor/firmware lacks ``key`` (``Path not found`` / ``Not supported``)."""
        unsupported = dict(self.capabilities.unsupported)
        unsupported[key] = f"not on this processor or firmware ({why})"
        self.capabilities = Capabilities("tessera", unsupported=unsupported,
                                         test_patterns=self.capabilities.test_patterns)

    def _check_echo(self, key: str, sent: Any, echo: Any, close: bool) -> None:
        self._report({key: echo})
        if not close:
            self.refused(key, sent, echo)

    async def _write_one(self, key: str, value: Any) -> None:
        if key == "brightness_nits":
            echo = tp.brightness(await self._put(tp.BRIGHTNESS, value))
            self._check_echo(key, value, echo, abs(echo - value) < 0.05)
        elif key == "colour_temperature_k":
            raw = await self._put(tp.COLOUR_TEMPERATURE, int(value))
            kelvin = tp.colour_temperature(raw)
            self._check_echo(key, value, kelvin, kelvin == value)
        elif key == "gamma":
            echoed = tp.gamma(await self._put(tp.GAMMA, value))
            self._check_echo(key, value, echoed, abs(echoed - value) < 1e-3)
        elif key in ("blackout", "freeze"):
            path = tp.BLACKOUT if key == "blackout" else tp.FREEZE
            flag = tp.as_bool(await self._put(path, bool(value)), path)
            self._check_echo(key, value, flag, flag == bool(value))
        elif key == "test_pattern":
            await self._write_pattern(value)
        elif key == INPUT:
            port, _, number = str(value).partition(":")
            kind = tp.port_type(await self._put(tp.PORT_TYPE, port))
            num = tp.port_number(await self._put(tp.PORT_NUMBER, int(number)))
            port_echo = f"{kind}:{num}"
            self._check_echo(key, value, port_echo, port_echo == value)
        elif key.startswith(GROUP_PREFIX):
            group = key[len(GROUP_PREFIX):]
            leaf = (*tp.GROUP_ITEMS, group, "brightness")
            level = round(tp.as_number(await self._put(leaf, value), leaf, 0.0, 10000.0), 1)
            self._check_echo(key, value, level, abs(level - value) < 0.05)
        else:  # validate() lets nothing else through
            raise ReplyError(Problem(f"{key} has no Tessera path", "vendor_error",
                                     detail=f"{key} has no Tessera path"), refusal=True)

    async def _write_pattern(self, pattern: str) -> None:
        if pattern == "off":
            enabled = tp.as_bool(await self._put(tp.PATTERN_ENABLED, False), tp.PATTERN_ENABLED)
            shown = self.reported.get("test_pattern", "off") if enabled else "off"
            self._check_echo("test_pattern", pattern, shown, not enabled)
            return
        # type first, so the old pattern never flashes up
        kind = tp.pattern_type(await self._put(tp.PATTERN_TYPE, tp.PATTERN_TO_TESSERA[pattern]))
        enabled = tp.as_bool(await self._put(tp.PATTERN_ENABLED, True), tp.PATTERN_ENABLED)
        shown = kind if enabled else "off"
        self._check_echo("test_pattern", pattern, shown, shown == pattern)

    # ---- actions ----------------------------------------------------------------------

    async def _recall(self, number: int) -> None:
        """Write the number to ``presets/active/number``, then read back the whole look."""
        try:
            echoed = tp.preset_number(await self._put(tp.PRESET_NUMBER, number))
        except tp.VendorError as exc:
            if exc.problem.code == "no_project_loaded":
                self._set_no_project(True)
            raise
        if echoed != number:
            raise ReplyError(Problem(f"preset {number} not recalled (the processor shows "
                                     f"{echoed})", "vendor_error",
                                     detail=f"preset {number} not recalled"), refusal=True)
        self._report({"preset": number})
        await self._poll()  # a preset is a whole look: report all of it now
