"""NovaStar COEX: the driver against the simulator, third-party request forms, the quirks.

Sources cited in the docstrings are those of ``docs/protocols/novastar-coex.md`` ([S3]
FaintGhost/novastar-coex, [S5] bitfocus/companion-module-novastar-coex, [S7]
legofsalmon/novasun's observations of an MX40 Pro and an MX30).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from drivers.device import DeviceEvent, Health
from drivers.led.model import Unsupported
from drivers.led.novastar.driver import NovastarProcessor
from drivers.led.novastar.simulator import LOCK_HOLDER_IP, NovastarSimulator
from drivers.led.simhttp import VendorSimSettings
from tests.led_vendors.conftest import wait_for

API = "/api/v1"


def settings(**options: Any) -> VendorSimSettings:
    return VendorSimSettings(name="ns-sim", latency_ms=0.0, options=options)


class Harness:
    """A simulator, a driver on it, and every event the driver announced."""

    def __init__(self, sim: NovastarSimulator, driver: NovastarProcessor) -> None:
        self.sim = sim
        self.driver = driver
        self.events: list[DeviceEvent] = []
        driver.subscribe(self.events.append)

    def messages(self, code: str) -> list[dict[str, Any]]:
        return [e.data for e in self.events if e.kind == "event" and e.data.get("code") == code]

    def problem_codes(self) -> list[str]:
        return [p["code"] for p in self.driver.health.problems]

    async def api(self, method: str, route: str, body: Any = None) -> tuple[int, Any]:
        async with aiohttp.ClientSession() as s, s.request(
                method, self.sim.url + API + route,
                data=None if body is None else json.dumps(body),
                headers={"Content-Type": "application/json"}) as r:
            raw = await r.read()
            return r.status, json.loads(raw) if raw else None

    def routes(self, since: float = 0.0) -> list[tuple[str, str]]:
        return [(m, r) for t, m, r in self.sim.requests if t >= since]


async def start(sim_options: dict[str, Any] | None = None, *, sim_panels: int = 240,
                fast_status: bool = True, **driver_options: Any) -> Harness:
    sim = NovastarSimulator(VendorSimSettings(name="ns-sim", latency_ms=0.0,
                                              panels_total=sim_panels,
                                              options=sim_options or {}))
    await sim.start()
    driver_options.setdefault("poll_interval_s", 0.5)
    driver_options.setdefault("timeout_s", 1.2)
    driver_options.setdefault("request_timeout_s", 0.5)
    driver = NovastarProcessor("wall", sim.url, **driver_options)
    if fast_status:
        driver.status_interval_s = 0.5
    h = Harness(sim, driver)
    await driver.start()
    return h


async def stop(h: Harness) -> None:
    await h.driver.stop()
    await h.sim.stop()


@pytest.fixture
async def h() -> AsyncIterator[Harness]:
    harness = await start()
    try:
        assert await harness.driver.wait_online(3.0)
        assert await wait_for(lambda: "panels_online" in harness.driver.reported)
        yield harness
    finally:
        await stop(harness)


# ---- 1. the driver against the simulator -----------------------------------------------


async def test_every_supported_key_reaches_the_vendor_tree_and_comes_back(h: Harness) -> None:
    """Brightness (percent in, fraction out), colour temperature, gamma, display mode, pattern,
    input: each set lands in the simulator's COEX tree and is reported back from it."""
    d, sim = h.driver, h.sim
    await d.set("brightness_nits", 750.0)
    await d.set("colour_temperature_k", 5600)
    await d.set("gamma", 2.2)
    await d.set("test_pattern", "red")
    await d.set("input", "HDMI 2.0")
    assert await wait_for(lambda: d.reported.get("input") == "HDMI 2.0")
    with pytest.raises(ValueError, match="an input the processor lists"):
        await d.set("input", "SDI 9")
    _, params = await h.api("GET", "/screen/displayparams")
    entry = params["data"]["list"][0]
    assert entry["brightness"] == pytest.approx(0.5)  # 750 of 1500 nits, read as a fraction
    assert entry["colorTemperature"] == 5600 and entry["gamma"] == pytest.approx(2.2)
    _, inputs = await h.api("GET", "/device/input")
    assert inputs["data"]["testPattern"]["mode"] == 0
    assert inputs["data"]["testPattern"]["parameters"]["red"] == 4095
    assert inputs["data"]["testPattern"]["parameters"]["green"] == 0
    _, screens = await h.api("GET", "/screen")
    layer = screens["data"]["screens"][0]["layersInWorkingMode"][0]["layers"][0]
    assert layer["source"] == 73  # HDMI 2.0's groupId
    assert d.reported["brightness_nits"] == 750.0
    assert d.reported["colour_temperature_k"] == 5600
    assert d.reported["gamma"] == pytest.approx(2.2)
    assert d.reported["test_pattern"] == "red"
    sent = [r for m, r in h.routes() if m == "PUT"]
    assert "/screen/brightness" in sent and "/screen/layer/input" in sent

    await d.set("freeze", True)
    assert await wait_for(lambda: sim.canvas_modes == {45: 2})
    assert await wait_for(lambda: d.reported.get("freeze") is True)
    await d.set("blackout", True)  # blackout wins over freeze: one enum per canvas
    assert await wait_for(lambda: sim.canvas_modes == {45: 1})
    assert await wait_for(lambda: d.reported.get("blackout") is True)
    await d.set("blackout", False)
    assert await wait_for(lambda: sim.canvas_modes == {45: 2})  # back to the desired freeze
    await d.set("freeze", False)
    assert await wait_for(lambda: sim.canvas_modes == {45: 0})
    assert await wait_for(lambda: d.reported.get("freeze") is False
                          and d.reported.get("blackout") is False)
    for name, mode in (("grid", 20), ("ramp", 35), ("off", 35)):
        await d.set("test_pattern", name)
        assert await wait_for(lambda: d.reported.get("test_pattern") == name), name  # noqa: B023
        assert sim.pattern["mode"] == mode
    assert sim.pattern["parameters"]["state"] == 0  # off: the last mode, state 0
    assert d.health.state == Health.ONLINE


async def test_unsupported_features_are_refused_before_anything_is_sent(h: Harness) -> None:
    """Frame rate, genlock, colour bars, checkerboard and groups (unconfigured) are declared
    unsupported; a command for one sends nothing."""
    d = h.driver
    caps = d.snapshot()["capabilities"]
    for feature in ("output_frame_rate_hz", "genlock_source", "genlock_phase_deg",
                    "preset_save", "group_brightness", "brightness_output"):
        assert feature in caps["unsupported"], feature
    assert "colour_bars" not in caps["test_patterns"]
    assert "checkerboard" not in caps["test_patterns"]
    for key, value in (("output_frame_rate_hz", 50.0), ("genlock_source", "sdi"),
                       ("genlock_phase_deg", 10.0), ("test_pattern", "colour_bars"),
                       ("test_pattern", "checkerboard"), ("group_brightness.1", 100.0)):
        before, seen = d.counters["http_requests"], h.sim.counters.requests
        with pytest.raises(Unsupported):
            await d.set(key, value)
        assert d.counters["http_requests"] == before and h.sim.counters.requests == seen
        assert key not in d.desired or d.desired[key] != value
    with pytest.raises(ValueError):
        NovastarProcessor("w", h.sim.url, poll_interval_s=0.4)
    with pytest.raises(ValueError):
        NovastarProcessor("w", h.sim.url, brightness_write="nits")


async def test_presets_recall_whole_looks_and_unlisted_ones_are_refused_locally(
        h: Harness) -> None:
    """A COEX preset restores brightness, colour temperature and gamma and is listed with
    ``state: true`` ([S5] main.js); a number not in ``GET /preset`` is refused before sending
    (docs: Presets)."""
    d, sim = h.driver, h.sim
    assert await d.recall_preset(3) == 3
    assert d.reported["preset"] == 3
    assert d.reported["brightness_nits"] == 1200.0
    assert d.reported["colour_temperature_k"] == 5600
    assert d.reported["gamma"] == pytest.approx(2.2)
    _, presets = await h.api("GET", "/preset")
    active = [p["sequenceNumber"] for p in presets["data"]["screenPresets"][0]["presets"]
              if p["state"]]
    assert active == [3]
    assert await d.recall_preset(4) == 4  # preset 4 also shows the grid
    assert d.reported["test_pattern"] == "grid"
    since = time.monotonic()
    with pytest.raises(Exception, match="empty preset 9") as err:
        await d.recall_preset(9)
    assert getattr(err.value, "code", "") == "led_refused"
    assert ("POST", "/preset/current/update") not in h.routes(since)
    assert sim.wall.preset == 4


async def test_group_brightness_through_configured_cabinets() -> None:
    """COEX has no groups; ``group_cabinets`` maps a group to cabinet ids and the driver uses
    ``PUT device/cabinet/brightness {idList, ratio}`` ([S5] coexapi.js; took effect on an
    MX30 [S7])."""
    probe = NovastarSimulator(settings())
    cabinets = {"1": probe.group_cabinets("1"), "2": probe.group_cabinets("2")}
    h = await start(group_cabinets=cabinets)
    try:
        d = h.driver
        assert await d.wait_online(3.0)
        assert d.capabilities.supports("group_brightness")
        await d.set("group_brightness.1", 300.0)
        assert await wait_for(lambda: d.reported.get("group_brightness.1") == 300.0)
        assert h.sim.wall.values["group_brightness.1"] == 300.0
        assert h.sim.wall.values["group_brightness.2"] == 1000.0
        assert {h.sim.cabinet_ratio[c] for c in cabinets["1"]} == {0.2}
        with pytest.raises(ValueError, match="group_brightness"):
            await d.set("group_brightness.bad group", 10.0)
        before = d.counters["http_requests"]
        with pytest.raises(ValueError, match="configured in group_cabinets"):
            await d.set("group_brightness.7", 10.0)  # a group with no cabinets configured
        assert d.counters["http_requests"] == before
    finally:
        await stop(h)


async def test_cabinet_brightness_write_mode() -> None:
    """``brightness_write = "cabinet"`` writes every cabinet's ratio instead of the screen call
    whose effect on hardware nobody has shown (docs, "What we could not confirm" 1)."""
    h = await start({"screen_brightness_noop": True}, brightness_write="cabinet")
    try:
        d = h.driver
        assert await d.wait_online(3.0)
        await d.set("brightness_nits", 450.0)
        assert await wait_for(lambda: d.reported.get("brightness_nits") == 450.0)
        assert ("PUT", "/device/cabinet/brightness") in h.routes()
        assert ("PUT", "/screen/brightness") not in h.routes()
        assert not h.messages("led_refused")
    finally:
        await stop(h)


async def test_status_panels_temperature_alerts_and_identity(h: Harness) -> None:
    """Panels from ``screen/cabinet/count`` (tracks connected cabinets), never from
    ``monitor/info`` (stale on an MX30 after unplugging [S7]); temperature from
    ``mainBoardTemperature``; identity from ``device/hw``."""
    d, sim = h.driver, h.sim
    assert d.reported["panels_online"] == 240 and d.reported["panels_total"] == 240
    assert d.reported["processor"]["model"] == "MX40 Pro"
    assert d.reported["processor"]["serial"] == sim.serial
    sim.fault("panels_offline", 12)
    assert await wait_for(lambda: d.reported.get("panels_online") == 228)
    _, monitor = await h.api("GET", "/device/monitor/info?isNeedCabinetInfo=0")
    assert all(o["linkStatus"] for o in monitor["data"]["outputStatus"])  # stale, as observed
    assert await wait_for(lambda: d.health.state == Health.DEGRADED)
    assert "panels_offline" in h.problem_codes()
    assert "panels offline: 12" in d.reported["alerts"]
    assert {"code": "led_alert_panels_offline"}.items() <= d.reported["alert_problems"][0].items()
    sim.fault("panels_offline", 0)
    sim.fault("temperature_offset", 60)
    sim.wall.temperature_c = 90.0
    assert await wait_for(lambda: (d.reported.get("temperature_c") or 0) > 60)
    assert await wait_for(lambda: "processor_hot" in h.problem_codes())
    assert any(a.startswith("over temperature") for a in d.reported["alerts"])


async def test_vmp_lock_degrades_and_refuses_writes(h: Harness) -> None:
    """While VMP is connected the processor answers writes from other hosts ``device locked``
    ([S4] README, [S5] HELP.md); ``device/hw/lock`` reads ``{locked: 1, ip}`` [S7]."""
    d, sim = h.driver, h.sim
    sim.fault("locked", 1)
    assert await wait_for(lambda: "device_locked" in h.problem_codes())
    assert any(p["params"].get("ip") == LOCK_HOLDER_IP for p in d.health.problems)
    assert f"locked by VMP at {LOCK_HOLDER_IP}" in d.reported["alerts"]
    status, reply = await h.api("PUT", "/screen/gamma", {"screenIdList": [], "gamma": 3.0})
    assert status == 200 and reply["message"] == "device locked" and reply["code"] != 0
    await d.set("gamma", 3.0)
    assert await wait_for(lambda: h.messages("led_refused"))
    assert "locked by VMP" in h.messages("led_refused")[0]["message"]
    assert sim.wall.values["gamma"] == 2.4
    assert d.online
    sim.fault("locked", 0)
    assert await wait_for(lambda: "device_locked" not in h.problem_codes())
    await d.set("gamma", 2.8)
    assert await wait_for(lambda: sim.wall.values["gamma"] == 2.8)


async def test_code_5_busy_backs_off_five_seconds(h: Harness) -> None:
    """Code 5 (Busying, NovaStar's error table via [S7]): the next request waits 5 s ([S7]
    read-only-monitoring policy) and the device says ``processor_busy``, staying online."""
    d, sim = h.driver, h.sim
    sim.fault("busy", 1)
    assert await wait_for(lambda: "processor_busy" in h.problem_codes(), 3.0)
    first_busy = max(t for t, _m, _r in sim.requests)
    sim.fault("busy", 0)
    assert await wait_for(lambda: "processor_busy" not in h.problem_codes(), 8.0)
    after = [t for t, _m, _r in sim.requests if t > first_busy]
    assert after and min(after) - first_busy >= 4.9
    assert d.online and d.counters["busy_backoffs"] >= 1
    assert not d.counters["disconnects"]


@pytest.mark.parametrize("style", ["404", "empty"])
async def test_absent_status_endpoints_are_not_there_not_zero(style: str) -> None:
    """An absent endpoint is a bare 404 on an MX40 Pro and an empty 200 with no Content-Type on
    an MX30 [S7]: the driver reads it as "not there" (the leaf is not reported), never ``{}``."""
    h = await start({"absent": style, "missing": ["/device/monitor/info", "/device/hw/lock"]})
    try:
        d = h.driver
        assert await d.wait_online(3.0)
        assert await wait_for(lambda: "panels_online" in d.reported)
        await asyncio.sleep(0.6)
        assert "temperature_c" not in d.reported
        assert d.counters["absent_endpoints"] == 2
        assert d.health.state == Health.ONLINE
        async with aiohttp.ClientSession() as s, s.get(h.sim.url + API + "/device") as r:
            assert r.status == (404 if style == "404" else 200)
            assert await r.read() == b""
            if style == "empty":
                assert "Content-Type" not in r.headers
    finally:
        await stop(h)


@pytest.mark.parametrize(("style", "code"), [("404", "http_status"),
                                             ("empty", "http_malformed")])
async def test_absent_fast_tier_endpoint_takes_the_device_offline(style: str, code: str) -> None:
    """Without ``displayparams`` the wall cannot be read: offline with the reason."""
    h = await start({"absent": style, "missing": ["/screen/displayparams"]})
    try:
        assert await wait_for(lambda: code in h.problem_codes(), 3.0)
        assert not h.driver.online
    finally:
        await stop(h)


async def test_a_success_envelope_that_changes_nothing_is_a_refusal() -> None:
    """Two MX30 setters answered Success to a body they did not understand and changed nothing
    [S7]: the driver reads back after every write and reports ``write not honoured``."""
    h = await start({"screen_brightness_noop": True})
    try:
        d, sim = h.driver, h.sim
        assert await d.wait_online(3.0)
        await d.set("brightness_nits", 300.0)
        assert await wait_for(lambda: h.messages("led_refused"))
        refusal = h.messages("led_refused")[0]
        assert refusal["params"]["what"] == "brightness_nits"
        assert "write not honoured" in refusal["message"]
        assert d.reported["brightness_nits"] == 1000.0  # what the processor reads
        assert sim.wall.values["brightness_nits"] == 1000.0
        assert await wait_for(lambda: d.health.state == Health.DEGRADED)
        assert "write not honoured: brightness_nits" in d.reported["alerts"]
        assert d.counters["writes_not_honoured"] == 1
    finally:
        await stop(h)


async def test_brightness_read_above_one_is_taken_as_percent(
        caplog: pytest.LogCaptureFixture) -> None:
    """Brightness reads as a 0..1 fraction ([S5] main.js multiplies by 100); a firmware that
    read percent must not report 100x the nits: > 1.0 is percent, logged once (docs)."""
    caplog.set_level(logging.WARNING, logger="drivers.led.novastar.driver")
    h = await start({"brightness_read": "percent"})
    try:
        d = h.driver
        assert await d.wait_online(3.0)
        # 1000 of 1500 nits reads 66.67 %: the read's own resolution, not 100x
        assert await wait_for(lambda: abs(d.reported.get("brightness_nits", 0) - 1000) <= 0.5)
        await d.set("brightness_nits", 600.0)
        assert await wait_for(lambda: d.reported.get("brightness_nits") == 600.0)
        await asyncio.sleep(1.1)
        assert d.counters["brightness_read_as_percent"] == 1
        assert sum("as percent" in r.getMessage() for r in caplog.records) == 1
        assert not h.messages("led_refused")
    finally:
        await stop(h)


async def test_random_password_never_leaves_the_parser(caplog: pytest.LogCaptureFixture) -> None:
    """``/device/hw`` serves ``randomPassword`` to any unauthenticated GET [S7]: it must never
    reach the state, a snapshot, an event or a log line."""
    caplog.set_level(logging.DEBUG)
    h = await start()
    try:
        d = h.driver
        assert await d.wait_online(3.0)
        _, hw = await h.api("GET", "/device/hw")
        secret = hw["data"]["randomPassword"]
        assert secret == h.sim.password
        assert await wait_for(lambda: "processor" in d.reported)
        await d.set("gamma", 2.6)
        await wait_for(lambda: d.reported.get("gamma") == 2.6)
        dumped = json.dumps([d.snapshot(), d.info, [e.data for e in h.events]], default=str)
        assert secret not in dumped and "randomPassword" not in dumped
        assert secret not in caplog.text
    finally:
        await stop(h)


async def test_restart_is_seen_and_desired_state_reapplied() -> None:
    """Uptime (``monitor/info.runtime``, ``device/hw.uptime``) going backwards is a restart:
    ``led_restarted`` and the desired state goes back on the wall."""
    h = await start()
    try:
        d, sim = h.driver, h.sim
        assert await d.wait_online(3.0)
        await d.set("brightness_nits", 900.0)
        assert await wait_for(lambda: sim.wall.values["brightness_nits"] == 900.0)
        await asyncio.sleep(3.5)  # let uptime grow well past the 1 s slack
        sim.fault("restart", 1)
        assert await wait_for(lambda: h.messages("led_restarted"), 3.0)
        assert await wait_for(lambda: sim.wall.values["brightness_nits"] == 900.0)
    finally:
        await stop(h)


async def test_configured_screen_missing_degrades() -> None:
    """A configured screen id no longer listed degrades with ``screen <id> not on the
    processor`` (docs: Addressing rules)."""
    h = await start(screens=["{no-such-screen}"])
    try:
        assert await wait_for(lambda: "screen_missing" in h.problem_codes(), 3.0)
        assert h.driver.online
        await h.driver.set("gamma", 2.0)
        assert await wait_for(lambda: h.messages("led_refused"))
        assert h.sim.wall.values["gamma"] == 2.4
    finally:
        await stop(h)


async def test_two_screens_only_the_configured_one() -> None:
    """Writes carry the configured screen ids and canvases only (docs: Addressing rules)."""
    probe = NovastarSimulator(settings(screens=2))
    second = probe.screens[1]["id"]
    h = await start({"screens": 2}, screens=[second])
    try:
        d, sim = h.driver, h.sim
        assert await d.wait_online(3.0)
        await d.set("blackout", True)
        assert await wait_for(lambda: sim.canvas_modes == {45: 0, 46: 1})
        assert await wait_for(lambda: d.reported.get("blackout") is True)
        assert d.reported["panels_online"] == 120  # this screen's cabinets
    finally:
        await stop(h)


async def test_busy_at_connect_waits_out_the_back_off() -> None:
    """Code 5 on the very first request: offline as ``processor_busy`` and no request for 5 s
    (the back-off holds across reconnect attempts), then online."""
    sim = NovastarSimulator(settings())
    await sim.start()
    sim.fault("busy", 1)
    d = NovastarProcessor("wall", sim.url, poll_interval_s=0.5, timeout_s=1.2,
                          request_timeout_s=0.5)
    try:
        await d.start()
        assert await wait_for(lambda: d.health.problems
                              and d.health.problems[0]["code"] == "processor_busy", 3.0)
        assert not d.online
        first = min(t for t, _m, _r in sim.requests)
        sim.fault("busy", 0)
        assert await d.wait_online(8.0)
        later = sorted(t for t, _m, _r in sim.requests if t > first)
        assert later and later[0] - first >= 4.9
    finally:
        await d.stop()
        await sim.stop()


async def test_canvases_that_disagree_report_the_most_severe() -> None:
    """Display mode is per canvas; over several canvases the device reports the most severe
    (1 over 2 over 0) and a ``canvases disagree`` alert (docs: Blackout and freeze)."""
    h = await start({"screens": 2})
    try:
        d, sim = h.driver, h.sim
        assert await d.wait_online(3.0)
        status, reply = await h.api("PUT", "/screen/output/displaymode",
                                    {"value": 2, "canvasIDs": [46]})
        assert status == 200 and reply["code"] == 0
        assert await wait_for(lambda: d.reported.get("freeze") is True)
        assert await wait_for(lambda: "canvases disagree" in d.reported.get("alerts", []))
        await h.api("PUT", "/screen/output/displaymode", {"value": 1, "canvasIDs": [45]})
        assert await wait_for(lambda: d.reported.get("blackout") is True)
        await d.set("blackout", False)
        await d.set("freeze", False)
        assert await wait_for(lambda: sim.canvas_modes == {45: 0, 46: 0})
        assert await wait_for(lambda: "canvases disagree" not in d.reported["alerts"])
    finally:
        await stop(h)


async def test_a_vendor_pattern_reports_in_vendor_words_and_is_not_adopted(h: Harness) -> None:
    """A pattern with no model name (Companion's mode 16, stripes down [S5] actions.js) shows as
    ``novastar:stripes-down``; adopting the reported state leaves it out (the model cannot
    command it)."""
    d = h.driver
    status, reply = await h.api("PUT", "/device/input/pattern/test", {
        "mode": 16, "parameters": {"red": 4095, "green": 4095, "blue": 4095, "gray": 255,
                                   "gridWidth": 255, "moveSpeed": 100, "gradientStretch": 1,
                                   "state": 1}})
    assert status == 200 and reply["code"] == 0
    assert await wait_for(lambda: d.reported.get("test_pattern") == "novastar:stripes-down")
    adopted = d.adopt_reported()
    assert "test_pattern" not in adopted and adopted["brightness_nits"] == 1000.0
