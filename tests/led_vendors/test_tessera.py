"""Brompton Tessera: the driver against the simulator on loopback, and third-party wire forms.

"API 3.1" is Brompton's *Tessera Processing IP Control API* 3.1.0 Beta 4 (the PDF in
bitfocus/companion-module-brompton-tessera ``docs/``); "Companion" is that module's
``index.js``. ``docs/protocols/tessera-http.md`` cites both in full.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest

from drivers.device import CommandError, Health
from drivers.led import protocol as p
from drivers.led.model import Unsupported
from drivers.led.simhttp import VendorSimSettings
from drivers.led.tessera.driver import TESSERA_CAPABILITIES, TesseraProcessor
from drivers.led.tessera.simulator import TesseraSimulator
from tests.led_vendors.conftest import wait_for


class FastTessera(TesseraProcessor):
    """The real driver with its 1 s poll floor lowered, for tests that wait for failures."""

    MIN_POLL_INTERVAL_S = 0.2


def settings(**options: Any) -> VendorSimSettings:
    extra = {k: options.pop(k) for k in list(options) if k in (
        "firmware", "uptime_offset_s", "processor_type")}
    return VendorSimSettings(name="tessera-sim", port=0, latency_ms=0.5,
                             thermal_tau_s=0.2, options=extra, **options)


@contextlib.asynccontextmanager
async def simulator(**options: Any) -> AsyncIterator[TesseraSimulator]:
    sim = TesseraSimulator(settings(**options))
    await sim.start()
    try:
        yield sim
    finally:
        await sim.stop()


@contextlib.asynccontextmanager
async def driver(url: str, cls: type[TesseraProcessor] = TesseraProcessor,
                 **kwargs: Any) -> AsyncIterator[TesseraProcessor]:
    dev = cls("wall-t", url, **kwargs)
    await dev.start()
    try:
        assert await dev.wait_online(5.0), dev.health
        yield dev
    finally:
        await dev.stop()


def events(dev: TesseraProcessor) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    dev.subscribe(lambda e: seen.append(e.data) if e.kind == "event" else None)
    return seen


def shows(dev: TesseraProcessor, key: str, value: Any) -> Callable[[], bool]:
    return lambda: dev.reported.get(key) == value


def puts(sim: TesseraSimulator) -> list[str]:
    return [path for method, path in sim.log if method == "PUT"]


def leaf(sim: TesseraSimulator, path: str) -> Any:
    """A value as the simulator's own tree holds it (not through the driver)."""
    return sim.leaves()[tuple(path.split("/"))].get()


def raw_get(sim: TesseraSimulator, target: str) -> tuple[int, Any]:
    """One GET with exactly this request target, as Companion's ``request`` sends it."""
    host, port = sim.address
    conn = http.client.HTTPConnection(host, port, timeout=3)
    try:
        conn.request("GET", target, headers={"Host": f"{host}:80"})
        resp = conn.getresponse()
        body = resp.read()
    finally:
        conn.close()
    try:
        return resp.status, json.loads(body)
    except ValueError:
        return resp.status, body


async def companion_get(sim: TesseraSimulator, target: str) -> tuple[int, Any]:
    return await asyncio.to_thread(raw_get, sim, target)


# ---- 1. the driver against the simulator -----------------------------------------------

async def test_every_supported_key_reaches_the_processor_and_comes_back() -> None:
    """Each key is PUT as ``{"data": v}`` and its echo is reported (API 3.1 p.13)."""
    async with simulator() as sim, driver(sim.url) as dev:
        await wait_for(lambda: "brightness_nits" in dev.reported)
        assert dev.reported["processor"] == {"model": "sx40", "serial": "SX40-0001234",
                                             "firmware": "3.5.2", "name": "tessera-sim"}
        wanted = {"brightness_nits": 812.5, "colour_temperature_k": 4300, "gamma": 2.2,
                  "blackout": True, "freeze": True, "input": "hdmi:2",
                  "group_brightness.3": 640.0}
        for key, value in wanted.items():
            await dev.set(key, value)
        assert await wait_for(lambda: all(dev.reported.get(k) == v for k, v in wanted.items()))
        assert leaf(sim, "output/global-colour/brightness") == 812.5
        assert leaf(sim, "output/global-colour/colour-temperature") == 4300.0
        assert leaf(sim, "output/global-colour/gamma") == 2.2
        assert leaf(sim, "override/blackout/enabled") is True
        assert leaf(sim, "override/freeze/enabled") is True
        assert leaf(sim, "input/active/source/port-type") == "hdmi"
        assert leaf(sim, "input/active/source/port-number") == 2
        assert leaf(sim, "groups/items/3/brightness") == 640.0
        assert "/api/output/global-colour/brightness" in puts(sim)
        for pattern, tessera in (("grid", "grid"), ("colour_bars", "colour-bars"),
                                 ("ramp", "gradient"), ("checkerboard", "checkerboard"),
                                 ("red", "red")):
            await dev.set("test_pattern", pattern)
            assert await wait_for(shows(dev, "test_pattern", pattern))
            assert leaf(sim, "override/test-pattern/type") == tessera
            assert leaf(sim, "override/test-pattern/enabled") is True
        await dev.set("test_pattern", "off")
        assert await wait_for(lambda: dev.reported["test_pattern"] == "off")
        assert leaf(sim, "override/test-pattern/enabled") is False
        assert dev.health.state == Health.ONLINE


async def test_unsupported_keys_are_refused_before_anything_is_sent() -> None:
    """No output frame rate or genlock in API 3.1: refused without a request."""
    async with simulator() as sim, driver(sim.url) as dev:
        before = len(puts(sim))
        for key, value in (("output_frame_rate_hz", 50.0), ("genlock_source", "sdi"),
                           ("genlock_phase_deg", 10.0)):
            with pytest.raises(Unsupported) as err:
                await dev.set(key, value)
            assert err.value.code == "unsupported" and "Tessera" in str(err.value)
            assert key not in dev.desired
        await asyncio.sleep(0.1)
        assert len(puts(sim)) == before
        caps = dev.snapshot()["capabilities"]
        assert caps["protocol"] == "tessera" and caps["vendor"] == "Brompton Tessera"
        assert set(caps["unsupported"]) == {"output_frame_rate_hz", "genlock_source",
                                            "genlock_phase_deg", "brightness_output"}
        assert set(caps["test_patterns"]) == set(p.TEST_PATTERNS)
        assert "input" in caps["supported"] and "group_brightness" in caps["supported"]


async def test_input_and_group_are_checked_in_tessera_form() -> None:
    """Input is ``<port-type>:<port-number>`` (API 3.1 p.7); groups are the project's."""
    async with simulator() as sim, driver(sim.url) as dev:
        await wait_for(lambda: dev.groups is not None)
        for bad in ("hdmi1", "sdi:0", "usb:1", "sdi:x"):
            with pytest.raises(p.ValidationError):
                await dev.set("input", bad)
        with pytest.raises(p.ValidationError):
            await dev.set("group_brightness.9", 100.0)  # not in the project (groups 1..4)
        with pytest.raises(p.ValidationError):
            await dev.set("group_brightness.main", 100.0)
        with pytest.raises(p.ValidationError):
            await dev.set("brightness_nits", 1600.0)  # above this wall's maximum
        assert await dev.set("input", "SDI:2") == "sdi:2"
        assert await wait_for(lambda: leaf(sim, "input/active/source/port-number") == 2)
        seen = events(dev)
        await dev.set("input", "dvi:7")  # the model allows it; this processor has ports 1..2
        assert await wait_for(lambda: any(e["code"] == "led_refused" for e in seen))
        refusal = next(e for e in seen if e["code"] == "led_refused")
        assert refusal["params"]["what"] == "input"
        assert "Bad input parameter value" in refusal["params"]["why"]


async def test_presets_recall_whole_looks() -> None:
    """Recall = write the number to ``presets/active/number`` (API 3.1 p.11)."""
    async with simulator() as sim, driver(sim.url) as dev:
        await dev.set("brightness_nits", 900.0)
        assert await wait_for(lambda: dev.reported.get("brightness_nits") == 900.0)
        assert await dev.recall_preset(4) == 4
        look = {"brightness_nits": 300.0, "colour_temperature_k": 4300, "gamma": 2.6,
                "test_pattern": "grid", "blackout": False, "preset": 4}
        assert all(dev.reported[k] == v for k, v in look.items()), dev.reported
        assert leaf(sim, "presets/active/number") == "4"
        assert leaf(sim, "presets/active/name") == "Grid check"
        assert dev.snapshot()["detail"]["preset_name"] == "Grid check"
        assert "preset" not in dev.desired  # an action, not desired state
        with pytest.raises(CommandError) as err:
            await dev.recall_preset(9)  # an empty slot: Object not found
        assert err.value.code == "led_refused" and "Object not found" in str(err.value)
        with pytest.raises(p.ValidationError):
            await dev.recall_preset(129)
        assert dev.online


async def test_status_panels_temperature_alerts_and_degraded_reasons() -> None:
    """``panels/statistics`` (API 3.1 p.11) and 3.5's ``system/temperature`` (Companion)."""
    async with simulator() as sim, driver(sim.url) as dev:
        assert await wait_for(lambda: dev.reported.get("panels_total") == 240)
        assert dev.reported["alerts"] == [] and dev.reported["panels_online"] == 240
        sim.fault("panels_offline", 12)
        sim.fault("panel_errors", 3)
        assert await wait_for(lambda: dev.reported.get("panels_online") == 228, 3.0)
        assert dev.reported["alerts"] == ["panels offline: 12", "panels reporting errors: 3"]
        codes = [m["code"] for m in dev.reported["alert_problems"]]
        assert codes == ["led_alert_panels_offline", "led_alert"]
        assert dev.health.state == Health.DEGRADED
        assert [x["code"] for x in dev.health.problems] == ["panels_offline"]
        sim.fault("panels_offline", 0)
        sim.fault("panel_errors", 0)
        temp0 = dev.reported["temperature_c"]
        assert 20.0 < temp0 < 70.0
        sim.fault("temperature_offset", 40)
        assert await wait_for(lambda: dev.reported.get("temperature_c", 0) >= 55.0, 4.0)
        assert await wait_for(lambda: dev.health.state == Health.DEGRADED, 2.0)
        assert "processor_hot" in [x["code"] for x in dev.health.problems]
        # the reported temperature is the hottest sensor, as the simulator's tree holds it
        assert dev.reported["temperature_c"] <= leaf(sim, "system/temperature/fpga") + 5


async def test_processor_temperature_follows_the_light_output() -> None:
    """3.5's ``system/temperature/*`` (Companion ``apiKeys.js``) in the simulator follows the
    wall's thermal model: black is cool, full brightness runs hot (degraded at 55 C)."""
    async with simulator() as sim, driver(sim.url) as dev:
        await dev.set("blackout", True)
        assert await wait_for(lambda: dev.reported.get("temperature_c", 99) < 30.0, 4.0)
        assert dev.health.state == Health.ONLINE
        await dev.set("brightness_nits", 1500.0)
        await dev.set("blackout", False)
        assert await wait_for(lambda: dev.reported.get("temperature_c", 0) >= 55.0, 4.0)
        assert await wait_for(lambda: dev.health.state == Health.DEGRADED, 2.0)
        assert [x["code"] for x in dev.health.problems] == ["processor_hot"]
        sensors = {k: leaf(sim, f"system/temperature/{k}") for k in ("ambient", "fpga", "psu")}
        assert sensors["ambient"] < sensors["psu"] < sensors["fpga"]


async def test_firmware_31_reports_no_temperature_rather_than_zero() -> None:
    """API 3.1 has no ``system/temperature``: a missing leaf is "not reported", never 0."""
    async with simulator(firmware="3.1.0") as sim, driver(sim.url) as dev:
        assert await wait_for(lambda: "panels_total" in dev.reported)
        assert "temperature_c" not in dev.reported
        assert dev.reported["processor"] == {"model": "sx40", "firmware": "3.1.0"}


# ---- 2. another controller -----------------------------------------------------------

async def test_another_controllers_change_shows_within_a_second() -> None:
    """At the default 1 s poll (Companion's interval). Deadline 1.5 s: one interval plus the
    round trip and this test's own polling step."""
    async with simulator() as sim, driver(sim.url) as dev:
        assert dev.poll_interval_s == 1.0
        await wait_for(lambda: "brightness_nits" in dev.reported)
        companion_polls: list[int] = []

        async def companion() -> None:  # Companion polls GET /api/ every 1000 ms beside us
            while True:
                companion_polls.append((await companion_get(sim, "/api/"))[0])
                await asyncio.sleep(1.0)

        poller = asyncio.create_task(companion())
        try:
            await asyncio.sleep(0.2)
            sim.wall.set({"brightness_nits": 444.0, "freeze": True})  # the front panel
            assert await wait_for(lambda: dev.reported.get("brightness_nits") == 444.0
                                  and dev.reported.get("freeze") is True, 1.5)
            status, _ = await companion_get(sim, "/api/groups/items/2/brightness?set=321")
            assert status == 200
            assert await wait_for(lambda: dev.reported.get("group_brightness.2") == 321.0,
                                  1.5)
        finally:
            poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await poller
        assert companion_polls and set(companion_polls) == {200}


# ---- 3. Companion's exact wire forms --------------------------------------------------

async def test_companion_polls_the_whole_tree_and_writes_with_set() -> None:
    """Companion ``poll()``: ``GET http://ip:80/api/`` every 1000 ms, variables read by path
    (``['api','override','blackout','enabled']``); ``setProcessorProperty()``: ``GET`` of
    ``'http://' + ip + ':80/' + apiKey.join('/') + '?set=' + data``, not URL-encoded."""
    async with simulator() as sim, driver(sim.url) as dev:
        for _ in range(2):
            status, tree = await companion_get(sim, "/api/")
            assert status == 200
            api = tree["api"]
            assert isinstance(api["override"]["blackout"]["enabled"], bool)
            assert isinstance(api["output"]["global-colour"]["brightness"], float)
            assert sorted(int(g) for g in api["groups"]["items"]) == [1, 2, 3, 4]
            assert isinstance(api["presets"]["active"]["number"], str)
            assert api["input"]["active"]["source"]["port-type"] == "sdi"
            await asyncio.sleep(1.0)
        # Companion's toggle: read the polled value, write its negation
        blackout = tree["api"]["override"]["blackout"]["enabled"]
        word = "false" if blackout else "true"
        assert await companion_get(sim, f"/api/override/blackout/enabled?set={word}") == \
            (200, {"enabled": not blackout})
        assert await wait_for(lambda: dev.reported.get("blackout") is (not blackout), 1.5)
        # brightness step: polled value + 100, clamped 0..10000
        level = int(tree["api"]["output"]["global-colour"]["brightness"]) + 100
        assert (await companion_get(
            sim, f"/api/output/global-colour/brightness?set={level}"))[0] == 200
        assert await wait_for(lambda: dev.reported.get("brightness_nits") == float(level), 1.5)
        # -1: the calculated common maximum for available fixtures (API 3.1 p.7)
        status, echo = await companion_get(sim, "/api/output/global-colour/brightness?set=-1")
        assert status == 200 and echo == {"brightness": 1500.0}
        assert await wait_for(lambda: dev.reported.get("brightness_nits") == 1500.0, 1.5)
        assert (await companion_get(sim, "/api/presets/active/number?set=3"))[0] == 200
        assert await wait_for(lambda: dev.reported.get("preset") == 3
                              and dev.reported.get("colour_temperature_k") == 5600, 1.5)
        assert (await companion_get(sim, "/api/input/active/source/port-type?set=hdmi"))[0] \
            == 200
        assert (await companion_get(sim, "/api/input/active/source/port-number?set=2"))[0] \
            == 200
        assert await wait_for(lambda: dev.reported.get("input") == "hdmi:2", 1.5)
        # a Tessera-only pattern (Companion's list) is reported in the vendor's words
        assert (await companion_get(sim, "/api/override/test-pattern/type?set=smpte-bars"))[0] \
            == 200
        assert (await companion_get(sim, "/api/override/test-pattern/enabled?set=true"))[0] \
            == 200
        assert await wait_for(lambda: dev.reported.get("test_pattern") == "tessera:smpte-bars",
                              1.5)
        assert dev.adopt_reported().get("test_pattern") is None  # the model cannot command it
        # the colour temperature step Companion sends from its default 6504
        assert (await companion_get(
            sim, "/api/output/global-colour/colour-temperature?set=6504"))[0] == 200
        assert await wait_for(lambda: dev.reported.get("colour_temperature_k") == 6504, 1.5)


# ---- 4. quirks, against API 3.1 ------------------------------------------------------

async def test_paths_are_case_insensitive() -> None:
    """"All paths, tags and commands are case-insensitive for all protocols" (API 3.1 p.2).
    The reply key is the canonical lower-case name (our choice; the document is silent)."""
    async with simulator() as sim:
        assert await companion_get(sim, "/API/Override/Blackout/ENABLED") == \
            (200, {"enabled": False})
        assert await companion_get(sim, "/Api/OVERRIDE/Freeze/Enabled?SET=TRUE") == \
            (200, {"enabled": True})
        async with aiohttp.ClientSession() as s:
            async with s.put(sim.url + "/api/Output/Global-Colour/GAMMA",
                             json={"data": 2.6}) as r:
                assert r.status == 200 and await r.json() == {"gamma": 2.6}
            async with s.put(sim.url + "/api/override/test-pattern/type",
                             json={"data": "SMPTE-Bars"}) as r:
                assert await r.json() == {"type": "smpte-bars"}  # enums are lower case


async def test_set_values_arrive_as_text_and_are_converted_by_type() -> None:
    """``?set=`` (API 3.1 p.13, "for older clients"): the value is text, converted by the
    endpoint's type and then checked against its range (API 3.1 p.3 errors)."""
    async with simulator() as sim:
        assert await companion_get(sim, "/api/override/freeze/enabled?set=true") == \
            (200, {"enabled": True})
        assert await companion_get(sim, "/api/output/global-colour/gamma?set=2.2") == \
            (200, {"gamma": 2.2})
        assert await companion_get(sim, "/api/input/active/source/port-number?set=2") == \
            (200, {"port-number": 2})
        assert await companion_get(sim, "/api/override/freeze/enabled?set=1") == \
            (400, {"response-code": "Bad input parameter type"})
        assert await companion_get(sim, "/api/output/global-colour/brightness?set=bright") == \
            (400, {"response-code": "Bad input parameter type"})
        assert await companion_get(sim, "/api/output/global-colour/brightness?set=20000") == \
            (400, {"response-code": "Bad input parameter value"})
        assert await companion_get(sim, "/api/input/active/source/port-number?set=1.5") == \
            (400, {"response-code": "Bad input parameter type"})
        assert await companion_get(sim, "/api/system/uptime?set=1") == \
            (405, {"response-code": "Bad operation"})  # R/O
        # the directory form of API 3.1 p.13, in the reference's leaf names
        status, echo = await companion_get(
            sim, "/api/input/active/source?set=1&port-type=HDMI&port-number=1")
        assert (status, echo) == (200, {"source": {"port-type": "hdmi", "port-number": 1}})
        assert sim.counters.by_reason["badinputparametertype"] == 3


async def test_reply_shapes_list_and_help() -> None:
    """A read is ``{"<leaf>": value}`` (API 3.1 p.13: ``{"refresh-rate": 60}``), a directory a
    nested object; ``?list=1`` gives summaries and ``?help=1`` the five fields (p.13-14)."""
    async with simulator() as sim:
        assert await companion_get(sim, "/api/input/active/refresh-rate") == \
            (200, {"refresh-rate": 60.0})
        status, override = await companion_get(sim, "/api/override")
        assert status == 200 and set(override["override"]) == {"blackout", "freeze",
                                                               "test-pattern"}
        assert override["override"]["test-pattern"]["type"] == "smpte-bars"  # the default
        _, listed = await companion_get(sim, "/api/override?list=1")
        assert listed["override"]["blackout"] == {
            "enabled": "Enable blackout",
            "fade-time": "Time taken to fade to black when blackout enabled"}
        _, helped = await companion_get(sim, "/api/override/blackout?help=1")
        assert set(helped["blackout"]["enabled"]) == {"Access Specifier", "Details", "Name",
                                                      "Summary", "Type"}
        assert helped["blackout"]["enabled"]["Type"] == "Boolean"
        assert helped["blackout"]["fade-time"]["Type"] == "Float (range: 0 - 10)"
        _, uptime = await companion_get(sim, "/api/system/uptime")
        assert uptime["uptime"] == "00d 00h 00m 00s" or uptime["uptime"].endswith("s")
        async with aiohttp.ClientSession() as s:
            async with s.put(sim.url + "/api/override/blackout/enabled", data=b"") as r:
                assert r.status == 400  # "Missing input parameter" (API 3.1 p.13)
                assert await r.json() == {"response-code": "Missing input parameter"}
            async with s.put(sim.url + "/api/override/blackout/enabled",
                             json={"data": 1}) as r:
                assert await r.json() == {"response-code": "Bad input parameter type"}
            async with s.put(sim.url + "/api/nowhere", json={"data": 1}) as r:
                assert r.status == 404
                assert await r.json() == {"response-code": "Path not found"}
            async with s.post(sim.url + "/api/override/blackout/enabled",
                              json={"data": True}) as r:
                assert await r.json() == {"response-code": "Bad operation"}
            async with s.put(sim.url + "/api/override/blackout",
                             json={"data": {"enabled": True, "fade-time": 2.5}}) as r:
                assert await r.json() == {"blackout": {"enabled": True, "fade-time": 2.5}}


async def test_ip_control_disabled_then_enabled_reapplies_desired_state() -> None:
    """IP control is off unless Live Control enables it (API 3.1 p.2). What the processor
    answers then is undocumented; our simulator answers ``Access denied`` (p.3), which on a
    plain read the driver takes as IP control off (offline, ``ip_control_disabled``)."""
    async with simulator() as sim, driver(sim.url, FastTessera, poll_interval_s=0.3,
                                           timeout_s=1.0) as dev:
        await dev.set("brightness_nits", 700.0)
        assert await wait_for(lambda: leaf(sim, "output/global-colour/brightness") == 700.0)
        sim.fault("ip_control_disabled", 1)
        assert await wait_for(lambda: dev.health.state == Health.OFFLINE, 3.0)
        assert dev.health.problems[0]["code"] == "ip_control_disabled"
        assert sim.counters.by_reason["ip_control_disabled"] >= 2
        sim.wall.set({"brightness_nits": 100.0})  # someone at the processor
        sim.fault("ip_control_disabled", 0)
        assert await wait_for(lambda: dev.health.state == Health.ONLINE, 6.0)
        assert await wait_for(lambda: leaf(sim, "output/global-colour/brightness") == 700.0)


async def test_no_project_loaded_degrades_and_reapplies_when_loaded() -> None:
    """``No project loaded`` (API 3.1 p.3): degraded, polling goes on (``system`` still
    answers), commands are held as desired state, and the look is applied once a project is
    loaded."""
    async with simulator() as sim, driver(sim.url, FastTessera, poll_interval_s=0.3) as dev:
        await dev.set("gamma", 2.6)
        assert await wait_for(lambda: dev.reported.get("gamma") == 2.6)
        sim.fault("no_project", 1)
        assert await wait_for(lambda: dev.health.state == Health.DEGRADED)
        assert dev.health.problems[0]["code"] == "no_project_loaded"
        assert dev.online
        sent = len(puts(sim))
        await dev.set("brightness_nits", 333.0)
        await asyncio.sleep(0.4)
        assert len(puts(sim)) == sent and dev.counters["held_no_project"] == 1
        assert dev.desired["brightness_nits"] == 333.0
        sim.wall.set({"gamma": 2.2, "brightness_nits": 1000.0})  # the project loads another look
        sim.fault("no_project", 0)
        assert await wait_for(lambda: dev.health.state == Health.ONLINE)
        assert await wait_for(lambda: leaf(sim, "output/global-colour/gamma") == 2.6
                              and leaf(sim, "output/global-colour/brightness") == 333.0)


@pytest.mark.parametrize("errors_as_200", [False, True])
async def test_errors_in_either_form_are_the_processors_refusals(errors_as_200: bool) -> None:
    """API 3.1 names errors but shows no reply; a third-party 3.5.2 client expects ``200`` with
    ``{"response-code": ...}``. The driver takes both forms."""
    async with simulator() as sim, driver(sim.url, FastTessera, poll_interval_s=0.3) as dev:
        sim.fault("errors_as_200", 1 if errors_as_200 else 0)
        seen = events(dev)
        await dev.set("input", "sdi:5")
        assert await wait_for(lambda: any(e["code"] == "led_refused" for e in seen))
        assert "Bad input parameter value" in seen[-1]["params"]["why"]
        with pytest.raises(CommandError) as err:
            await dev.recall_preset(7)
        assert "Object not found" in str(err.value)
        sim.fault("no_project", 1)
        assert await wait_for(lambda: dev.health.state == Health.DEGRADED)
        assert dev.health.problems[0]["code"] == "no_project_loaded"
        assert dev.reported["processor"]["model"] == "sx40"  # system/ still answers
        sim.fault("no_project", 0)
        assert await wait_for(lambda: dev.health.state == Health.ONLINE)
        assert dev.counters["vendor_errors"] >= 3


async def test_restart_seen_as_uptime_going_backwards_reapplies() -> None:
    """No session id in API 3.1: a restart shows as ``system/uptime`` (``DDd HHh MMm SSs``,
    p.12) going backwards."""
    async with simulator(uptime_offset_s=3 * 86400 + 3600) as sim, \
            driver(sim.url, FastTessera, poll_interval_s=0.3) as dev:
        assert dev.snapshot()["detail"]["uptime"].startswith("03d 01h")
        await dev.set("colour_temperature_k", 3200)
        assert await wait_for(lambda: leaf(sim, "output/global-colour/colour-temperature")
                              == 3200.0)
        seen = events(dev)
        sim.fault("restart", 1)
        assert leaf(sim, "output/global-colour/colour-temperature") == 6500.0
        assert await wait_for(lambda: any(e["code"] == "led_restarted" for e in seen))
        restart = next(e for e in seen if e["code"] == "led_restarted")
        assert restart["params"]["old"].startswith("03d") and \
            restart["params"]["new"].startswith("00d 00h 00m")
        assert await wait_for(lambda: leaf(sim, "output/global-colour/colour-temperature")
                              == 3200.0)
        assert dev.counters["restarts_seen"] == 1


async def test_a_large_project_is_polled_by_subtree() -> None:
    """More than 500 leaves (2,000 panels each add ``panels/items/{serial}/type``, API 3.1
    p.11): the driver reads only the subtrees it maps, one after another."""
    async with simulator(panels_total=2000) as sim, driver(sim.url) as dev:
        assert dev.whole_tree is False and dev.tree_leaves > 2000
        assert dev.snapshot()["detail"]["poll"] == "subtrees"
        await wait_for(lambda: "panels_total" in dev.reported)
        sim.log.clear()
        sim.wall.set({"blackout": True})
        # a 2,000-panel project is a large reply; on a loaded 2-core runner one round of
        # subtree reads has taken over 1.5 s, and this test is about what is read, not how fast
        assert await wait_for(lambda: dev.reported.get("blackout") is True, 5.0)
        gets = [path for method, path in sim.log if method == "GET"]
        assert "/api/" not in gets and "/api/override" in gets
        assert "/api/panels/statistics" in gets and "/api/system" in gets
        assert dev.reported["panels_total"] == 2000


async def test_a_project_that_grows_switches_to_subtree_polling() -> None:
    """The size is re-counted on every whole-tree poll (a larger project loaded later)."""
    async with simulator() as sim, driver(sim.url) as dev:
        assert dev.whole_tree is True and dev.tree_leaves < 500
        sim.settings.panels_total = 1500
        assert await wait_for(lambda: dev.whole_tree is False, 2.5)
        assert await wait_for(lambda: dev.reported.get("panels_total") == 1500, 2.5)


# ---- 5. bad input ------------------------------------------------------------------

@pytest.mark.parametrize(("fault", "value", "code"), [
    ("html", 1, "http_html"), ("redirect", 1, "http_redirect"),
    ("malformed", 1, "http_malformed"), ("http_error", 500, "http_status"),
    ("mute", 1, "http_timeout|no_reply"),
])
async def test_a_broken_answer_takes_it_offline_and_recovery_reapplies(
        fault: str, value: int, code: str) -> None:
    """A processor that answers HTML (a captive login page), a redirect, malformed JSON, an
    HTTP error or nothing: offline with the reason; re-applied once it answers properly.
    (Silence is ``http_timeout`` or ``no_reply``: whichever of the request timeout and the
    link timeout comes first.)"""
    async with simulator() as sim, driver(sim.url, FastTessera, poll_interval_s=0.2,
                                           timeout_s=0.8) as dev:
        await dev.set("brightness_nits", 555.0)
        assert await wait_for(lambda: leaf(sim, "output/global-colour/brightness") == 555.0)
        sim.fault(fault, value)
        assert await wait_for(lambda: dev.health.state == Health.OFFLINE, 4.0)
        assert dev.health.problems[0]["code"] in code.split("|"), dev.health
        sim.wall.set({"brightness_nits": 50.0})
        sim.fault(fault, 0)
        assert await wait_for(lambda: dev.health.state == Health.ONLINE, 6.0)
        assert await wait_for(lambda: leaf(sim, "output/global-colour/brightness") == 555.0)
        assert dev.counters["parser_errors"] == 0


HOSTILE: dict[str, Any] = {
    "list": [1, 2, 3],
    "no_api_key": {"tree": {}},
    "wrong_types": {"api": {"output": {"global-colour": {"brightness": "bright"}}}},
    "huge_number": {"api": {"output": {"global-colour": {"brightness": 1e308}}}},
    "nan_string": {"api": {"override": {"blackout": {"enabled": "NaN"}}}},
    "bool_for_number": {"api": {"panels": {"statistics": {"associated-count": True,
                                                          "online-count": 1}}}},
    "bad_uptime": {"api": {"system": {"uptime": "yesterday"}}},
    "unknown_error": {"response-code": "Flux capacitor overheated"},
    "groups_list": {"api": {"groups": {"items": [1, 2]}}},
}


async def test_hostile_replies_are_named_problems_never_crashes() -> None:
    """Shapes the simulator never sends: the right JSON in the wrong places."""
    shape = {"name": "list"}

    async def answer(request: aiohttp.web.Request) -> aiohttp.web.StreamResponse:
        name = shape["name"]
        if name == "deep":
            return aiohttp.web.Response(body=b'{"api":' + b'{"a":' * 5000 + b"1" + b"}" * 5001,
                                        content_type="application/json")
        if name == "nan_literal":
            return aiohttp.web.Response(body=b'{"api": {"override": {"freeze": {"enabled": '
                                        b'NaN}}}}', content_type="application/json")
        if name == "good":
            return aiohttp.web.json_response({"api": {"output": {"global-colour": {
                "brightness": 200.0}}}})
        return aiohttp.web.json_response(HOSTILE[name])

    app = aiohttp.web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    runner = aiohttp.web.AppRunner(app, access_log=None)
    await runner.setup()
    site = aiohttp.web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    dev = FastTessera("wall-x", f"http://127.0.0.1:{port}", poll_interval_s=0.2, timeout_s=0.8)
    await dev.start()
    try:
        for name in [*HOSTILE, "deep", "nan_literal"]:
            shape["name"] = name
            assert await wait_for(lambda: dev.health.state == Health.OFFLINE
                                  and dev.counters["poll_failures"] > 0, 4.0), name
            code = dev.health.problems[0]["code"]
            expected = "vendor_error" if name == "unknown_error" else "http_malformed"
            assert code == expected, (name, dev.health)
            shape["name"] = "good"
            assert await wait_for(lambda: dev.health.state == Health.ONLINE, 5.0), name
            assert dev.reported["brightness_nits"] == 200.0
        assert dev.counters["parser_errors"] == 0
    finally:
        await dev.stop()
        await runner.cleanup()


async def test_a_path_the_firmware_lacks_becomes_unsupported_on_that_device() -> None:
    """``Path not found`` / ``Not supported`` (API 3.1 p.3) on a write: the feature is not on
    this processor or firmware; it is shown as unsupported, and not sent again."""
    freeze_puts: list[str] = []
    level = {"brightness": 200.0}

    async def answer(request: aiohttp.web.Request) -> aiohttp.web.StreamResponse:
        if request.method == "PUT" and request.path.endswith("/freeze/enabled"):
            freeze_puts.append(request.path)
            return aiohttp.web.json_response({"response-code": "PathNotFound"}, status=404)
        if request.method == "PUT" and request.path.endswith("/brightness"):
            level["brightness"] = (await request.json())["data"]
            return aiohttp.web.json_response(level)
        return aiohttp.web.json_response({"api": {"output": {"global-colour": level},
                                                  "system": {"uptime": "00d 00h 10m 00s"}}})

    app = aiohttp.web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    runner = aiohttp.web.AppRunner(app, access_log=None)
    await runner.setup()
    site = aiohttp.web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        async with driver(f"http://127.0.0.1:{port}") as dev:
            seen = events(dev)
            await dev.set("freeze", True)
            assert await wait_for(lambda: any(e["code"] == "led_refused" for e in seen))
            assert "PathNotFound" in seen[-1]["params"]["why"]
            assert "freeze" in dev.snapshot()["capabilities"]["unsupported"]
            assert TESSERA_CAPABILITIES.supports("freeze")  # the class keeps its declaration
            with pytest.raises(Unsupported):
                await dev.set("freeze", False)
            await dev.set("brightness_nits", 250.0)
            assert await wait_for(lambda: dev.reported["brightness_nits"] == 250.0)
            assert len(freeze_puts) == 1 and dev.online
    finally:
        await runner.cleanup()


def test_constructor_refuses_a_poll_faster_than_the_vendor_floor() -> None:
    with pytest.raises(ValueError, match="minimum of 1 s"):
        TesseraProcessor("t", "http://127.0.0.1:9", poll_interval_s=0.5)
    assert TesseraProcessor.MIN_POLL_INTERVAL_S == 1.0
    assert TesseraProcessor.capabilities is TESSERA_CAPABILITIES
