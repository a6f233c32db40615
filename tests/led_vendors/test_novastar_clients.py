"""NovaStar COEX: third-party clients' wire forms, another controller, bad and hostile replies.

The request forms are copied from the public clients named in
``docs/protocols/novastar-coex.md``: [S5] bitfocus/companion-module-novastar-coex
``coexapi.js`` (what Companion sends; ``screenIdList``, ``colorTemperature``, display mode by
``screenIdList``, 500 ms polling of three GETs in parallel, brightness read x 100) and [S3]
FaintGhost/novastar-coex ``src/api/screen.ts``/``preset.ts`` (``screenIds``, ``colorTemp``,
display mode by ``canvasIDs``, ``POST preset/current/update``, ``screenId`` on layer input).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from drivers.device import Health
from drivers.led.novastar.driver import NovastarProcessor
from tests.led_vendors.conftest import wait_for
from tests.led_vendors.test_novastar import API, Harness, start, stop


async def coex(session: aiohttp.ClientSession, base: str, method: str, path: str,
               body: Any = None) -> dict[str, Any]:
    """One request the way the JS clients send it: JSON body, Content-Type only with a body."""
    headers = {"Content-Type": "application/json"} if body is not None else {}
    data = None if body is None else json.dumps(body)
    async with session.request(method, base + path, data=data, headers=headers) as r:
        assert r.status == 200, (method, path, r.status)
        reply: dict[str, Any] = await r.json(content_type=None)
        return reply


@pytest.fixture
async def h() -> AsyncIterator[Harness]:
    harness = await start()
    try:
        assert await harness.driver.wait_online(3.0)
        yield harness
    finally:
        await stop(harness)


# ---- 3. third-party clients ---------------------------------------------------------------


async def test_companion_module_requests_drive_the_simulator(h: Harness) -> None:
    """Companion's ``coexapi.js`` bodies, verbatim, change the wall; the change shows in a
    running driver's reported state."""
    d, base = h.driver, h.sim.url
    async with aiohttp.ClientSession() as s:
        screens = (await coex(s, base, "GET", "/api/v1/screen"))["data"]["screens"]
        sid = screens[0]["screenID"]
        sources = (await coex(s, base, "GET", "/api/v1/device/input/sources"))["data"]
        dp = next(src for src in sources if src["name"] == "DP 1.2")
        for path, body in (
                ("/api/v1/screen/brightness", {"screenIdList": [sid], "brightness": 40}),
                ("/api/v1/screen/colortemperature", {"screenIdList": [sid],
                                                     "colorTemperature": 4300}),
                ("/api/v1/screen/gamma", {"screenIdList": [sid], "gamma": 2.6}),
                ("/api/v1/screen/output/displaymode", {"value": 2, "screenIdList": []}),
                ("/api/v1/screen/layer/input", {"screenID": sid,
                                                "layers": [{"id": 0, "source": dp["groupId"]}]}),
                ("/api/v1/device/input/pattern/test", {"mode": 20, "parameters": {
                    "red": 4095, "green": 4095, "blue": 4095, "gray": 255, "gridWidth": 255,
                    "moveSpeed": 100, "gradientStretch": 1, "state": 1}})):
            reply = await coex(s, base, "PUT", path, body)
            assert reply == {"code": 0, "data": "", "message": "Success"}, path
        # Companion's read: displayparams' fraction x 100
        params = (await coex(s, base, "GET", "/api/v1/screen/displayparams"))["data"]["list"]
        assert round(params[0]["brightness"] * 100) == 40
    assert await wait_for(lambda: d.reported.get("brightness_nits") == 600.0
                          and d.reported.get("colour_temperature_k") == 4300
                          and d.reported.get("gamma") == 2.6
                          and d.reported.get("freeze") is True)
    assert await wait_for(lambda: d.reported.get("test_pattern") == "grid")
    assert await wait_for(lambda: d.reported.get("input") == "DP 1.2")


async def test_novastar_coex_library_requests_drive_the_simulator(h: Harness) -> None:
    """``@novastar-dev/coex`` (FaintGhost) sends other key names: ``screenIds`` (omitted when
    undefined), ``colorTemp``, display mode by ``canvasIDs``, preset apply by POST, layer input
    with ``screenId``. All of them reach the wall."""
    d, base, sim = h.driver, h.sim.url, h.sim
    async with aiohttp.ClientSession() as s:
        screens = (await coex(s, base, "GET", "/api/v1/screen"))["data"]["screens"]
        sid, canvas = screens[0]["screenID"], screens[0]["canvases"][0]["canvasID"]
        await coex(s, base, "PUT", "/api/v1/screen/brightness", {"brightness": 20})
        await coex(s, base, "PUT", "/api/v1/screen/colortemperature",
                   {"colorTemp": 3200, "screenIds": [sid]})
        await coex(s, base, "PUT", "/api/v1/screen/gamma", {"gamma": 2.0, "screenIds": [sid]})
        await coex(s, base, "PUT", "/api/v1/screen/output/displaymode",
                   {"value": 1, "canvasIDs": [canvas]})
        assert await wait_for(lambda: d.reported.get("brightness_nits") == 300.0
                              and d.reported.get("colour_temperature_k") == 3200
                              and d.reported.get("gamma") == 2.0
                              and d.reported.get("blackout") is True)
        reply = await coex(s, base, "POST", "/api/v1/preset/current/update",
                           {"screenID": sid, "sequenceNumber": 2})
        assert reply["code"] == 0
        assert await wait_for(lambda: d.reported.get("preset") == 2
                              and d.reported.get("brightness_nits") == 600.0
                              and d.reported.get("blackout") is False)
        await coex(s, base, "PUT", "/api/v1/screen/layer/input",
                   {"screenId": sid, "layers": [{"id": 0, "source": 73}]})
        assert sim.wall.values["input"] == "HDMI 2.0"
        # S8's string ids
        await coex(s, base, "PUT", "/api/v1/screen/layer/input",
                   {"screenID": sid, "layers": [{"id": "0", "source": "74"}]})
        assert sim.wall.values["input"] == "DP 1.2"
        # validation the library does not do is the processor's: code 1
        bad = await coex(s, base, "PUT", "/api/v1/screen/gamma", {"gamma": 9, "screenIds": [sid]})
        assert bad["code"] == 1
        unknown = await coex(s, base, "POST", "/api/v1/preset/current/update",
                             {"screenID": sid, "sequenceNumber": 77})
        assert unknown["code"] == 1


async def test_legacy_client_paths_are_absent_on_current_firmware(h: Harness) -> None:
    """``novastar-coex`` 1.x's ``/api/v1/device/...`` paths answer 404 / empty on current
    units [S7]; the simulator has them absent the same way."""
    async with aiohttp.ClientSession() as s:
        async with s.put(h.sim.url + API + "/device/screen/displaymode",
                         json={"value": 1}) as r:
            assert r.status == 404
        async with s.get(h.sim.url + API + "/device/currentpreset") as r:
            assert r.status == 404
    assert h.sim.canvas_modes == {45: 0}


async def test_companion_polling_beside_the_driver(h: Harness) -> None:
    """Companion polls ``displayparams``, ``preset`` and ``display/state`` every 500 ms in
    parallel ([S5] main.js); with that running, the driver still works and sees its changes."""
    d = h.driver
    seen: list[int] = []

    async def companion() -> None:
        async with aiohttp.ClientSession() as s:
            for _ in range(6):
                replies = await asyncio.gather(*(
                    coex(s, h.sim.url, "GET", "/api/v1" + p) for p in (
                        "/screen/displayparams", "/preset", "/screen/output/display/state")))
                seen.extend(r["code"] for r in replies)
                await asyncio.sleep(0.5)

    task = asyncio.create_task(companion())
    try:
        await d.set("brightness_nits", 1500.0)
        assert await wait_for(lambda: d.reported.get("brightness_nits") == 1500.0)
        await task
    finally:
        task.cancel()
    assert seen == [0] * 18
    assert d.health.state == Health.ONLINE and not h.messages("led_refused")


async def test_another_controller_shows_within_one_second_at_the_default_interval() -> None:
    """A change made by another controller (Companion's brightness PUT) shows in the driver's
    reported state within 1 s at the default ``poll_interval_s = 1.0``. The deadline allowed
    is 1.5 s: 1 s interval + round trips + this test's own 20 ms polling."""
    h = await start(poll_interval_s=1.0, fast_status=False)
    try:
        d = h.driver
        assert d.poll_interval_s == 1.0
        assert await d.wait_online(3.0)
        assert await wait_for(lambda: d.reported.get("brightness_nits") == 1000.0)
        for pct, nits in ((30, 450.0), (90, 1350.0)):
            async with aiohttp.ClientSession() as s:
                sid = h.sim.screens[0]["id"]
                started = time.monotonic()
                await coex(s, h.sim.url, "PUT", "/api/v1/screen/brightness",
                           {"screenIdList": [sid], "brightness": pct})
            assert await wait_for(
                lambda: d.reported.get("brightness_nits") == nits, 1.5)  # noqa: B023
            assert time.monotonic() - started <= 1.5
    finally:
        await stop(h)


# ---- 5. bad input ---------------------------------------------------------------------


@pytest.mark.parametrize(("fault", "value", "code"), [
    ("html", 1, "http_html"),
    ("redirect", 1, "http_redirect"),
    ("malformed", 1, "http_malformed"),
    ("http_error", 500, "http_status"),
    ("mute", 1, "http_timeout"),
])
async def test_bad_answers_take_it_offline_and_desired_state_is_reapplied(
        fault: str, value: int, code: str) -> None:
    """An error, malformed JSON, a login page, a redirect or silence: offline with the reason;
    when it answers properly again the desired state goes back on the wall."""
    h = await start()
    try:
        d, sim = h.driver, h.sim
        assert await d.wait_online(3.0)
        await d.set("brightness_nits", 750.0)
        assert await wait_for(lambda: sim.wall.values["brightness_nits"] == 750.0)
        sim.fault(fault, value)
        assert await wait_for(lambda: not d.online, 4.0)
        assert await wait_for(lambda: code in h.problem_codes(), 2.0), h.problem_codes()
        sim.wall.set({"brightness_nits": 150.0})  # someone else, while we cannot see
        sim.fault(fault, 0)
        assert await wait_for(lambda: d.online, 6.0)
        assert await wait_for(lambda: sim.wall.values["brightness_nits"] == 750.0)
        assert d.counters["reapplies"] >= 1
        assert d.counters["parser_errors"] == 0
    finally:
        await stop(h)


SID = "{11111111-2222-3333-4444-555555555555}"
GOOD: dict[str, Any] = {
    "/screen": {"screens": [{"screenID": SID, "screenName": "S", "workingMode": 0,
                             "canvases": [{"canvasID": 1}],
                             "layersInWorkingMode": [{"workingMode": 0,
                                                      "layers": [{"id": 0, "source": 72}]}]}]},
    "/screen/displayparams": {"list": [{"screenId": SID, "brightness": 0.5,
                                        "colorTemperature": 6500, "gamma": 2.2}]},
    "/screen/output/display/state": {"displayState": [{"canvasID": 1, "displayMode": 0}]},
    "/preset": {"screenPresets": [{"screenID": SID, "presets": []}]},
}
DEEP = "[" * 5000 + "]" * 5000
HOSTILE: list[tuple[str, str]] = [
    ("/screen/displayparams", '{"code": 0, "data": {"list": [{"screenId": "@SID", '
                              '"brightness": "NaN"}]}}'.replace("@SID", SID)),
    ("/screen/displayparams", '{"code": 0, "data": {"list": [{"screenId": "@SID", '
                              '"brightness": NaN}]}}'.replace("@SID", SID)),
    ("/screen/displayparams", '{"code": 0, "data": {"list": [{"screenId": "@SID", '
                              '"brightness": 1e400}]}}'.replace("@SID", SID)),
    ("/screen/displayparams", '{"code": 0, "data": {"list": [{"screenId": "@SID", '
                              '"brightness": 1@0}]}}'.replace("@SID", SID).replace("@0", "0" * 99)),
    ("/screen/displayparams", '{"code": 0, "data": {"list": [{"screenId": "@SID", '
                              '"gamma": {"a": 1}}]}}'.replace("@SID", SID)),
    ("/screen/displayparams", '{"code": 0, "data": {"list": {"screenId": 1}}}'),
    ("/screen/displayparams", '[1, 2, 3]'),
    ("/screen/displayparams", '{"code": "0", "data": {}}'),
    ("/screen/displayparams", '{"code": true, "data": {}}'),
    ("/screen/displayparams", '{"data": {}}'),
    ("/screen/displayparams", DEEP),
    ("/screen/output/display/state", '{"code": 0, "data": {"displayState": '
                                     '[{"canvasID": 1, "displayMode": 7}]}}'),
    ("/screen/output/display/state", '{"code": 0, "data": null}'),
    ("/preset", '{"code": 0, "data": {"screenPresets": [{"screenID": "@SID", "presets": '
                '[{"sequenceNumber": -5}]}]}}'.replace("@SID", SID)),
    ("/screen", '{"code": 0, "data": {"screens": [{"screenID": 12}]}}'),
    ("/screen", '{"code": 0, "data": {"screens": "@SID"}}'.replace("@SID", "x" * 100_000)),
]


@pytest.mark.parametrize(("path", "body"), HOSTILE, ids=range(len(HOSTILE)))
async def test_hostile_replies_are_refused_cleanly(path: str, body: str) -> None:
    """Wrong JSON types in the right places, huge numbers, NaN, deep nesting, a list for an
    object: the device goes offline as ``http_malformed``; no parser raises anything else."""
    async def handler(request: web.Request) -> web.Response:
        route = request.path[len(API):]
        if route == path:
            return web.Response(text=body, content_type="application/json")
        if route in GOOD:
            return web.json_response({"code": 0, "data": GOOD[route], "message": "Success"})
        return web.Response(status=404)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    d = NovastarProcessor("wall", f"http://127.0.0.1:{port}", poll_interval_s=0.5,
                          timeout_s=1.0, request_timeout_s=0.5)
    await d.start()
    try:
        assert await wait_for(lambda: d.counters["poll_failures"] >= 2, 4.0)
        assert not d.online
        assert d.health.problems[0]["code"] == "http_malformed", d.health
        assert d.counters["parser_errors"] == 0
    finally:
        await d.stop()
        await runner.cleanup()


@pytest.mark.parametrize(("code", "text", "problem"), [
    (1, "InvalidParam", "vendor_error"),
    (4, "AnalysisFailed", "vendor_error"),
    (6, "NotSupport", "vendor_error"),
    (2, "SendFailed", "vendor_error"),
    (3, "InternalErr", "vendor_error"),
])
async def test_envelope_error_codes_on_writes(code: int, text: str, problem: str) -> None:
    """NovaStar's error table (via [S7]): 1, 4, 6 are refusals (announced, the link stays up);
    2 and 3 are transient failures (counted against the link)."""
    async def handler(request: web.Request) -> web.Response:
        route = request.path[len(API):]
        if request.method == "PUT":
            return web.json_response({"code": code, "data": "", "message": text})
        if route in GOOD:
            return web.json_response({"code": 200 if route == "/preset" else 0,
                                      "data": GOOD[route], "message": "Success"})
        return web.Response(status=404)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    d = NovastarProcessor("wall", f"http://127.0.0.1:{port}", poll_interval_s=0.5,
                          timeout_s=2.0, request_timeout_s=0.5)
    events: list[dict[str, Any]] = []
    d.subscribe(lambda e: events.append(e.data) if e.kind == "event" else None)
    await d.start()
    try:
        assert await d.wait_online(3.0)
        assert d.counters["code_200_seen"] >= 1  # code 200 taken as success
        await d.set("gamma", 2.4)
        if code in (1, 4, 6):
            assert await wait_for(lambda: any(e.get("code") == "led_refused" for e in events))
            refusal = next(e for e in events if e.get("code") == "led_refused")
            assert f"code {code} ({text})" in refusal["message"]
            assert d.counters["write_failures"] == 0
        else:
            assert await wait_for(lambda: d.counters["write_failures"] >= 1)
            assert d.counters[problem] >= 1
            assert not any(e.get("code") == "led_refused" for e in events)
        assert d.counters[f"coex_code_{code}"] >= 1
    finally:
        await d.stop()
        await runner.cleanup()
