"""Megapixel HELIOS: the driver against the simulator, third-party clients, the quirks.

Sources cited in the docstrings are those of ``docs/protocols/helios-http.md``: [API] the
Megapixel *HELIOS Processor - Public API* 24.07 (section numbers are its own), [Companion] the
``mvr-helios`` Companion module 2.2.1, [hc] the ``helios-controller`` PyPI package 0.1.0.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from drivers.device import CommandError, DeviceEvent, Health
from drivers.led import protocol as p
from drivers.led.helios.driver import HeliosProcessor
from drivers.led.helios.parse import nits_from_percent, percent_from_nits
from drivers.led.helios.simulator import HeliosSimulator
from drivers.led.model import Unsupported
from drivers.led.simhttp import MAX_WS_CLIENTS, VendorSimSettings, float32
from tests.led_vendors.conftest import wait_for

API = "/api/v1/public"
RPC = "/api/v1/public/rpc/websocket"
JSON = {"Content-type": "application/json"}  # the spelling both clients send


class Harness:
    """A simulator, a driver on it, and every event the driver announced."""

    def __init__(self, sim: HeliosSimulator, driver: HeliosProcessor) -> None:
        self.sim = sim
        self.driver = driver
        self.events: list[DeviceEvent] = []
        driver.subscribe(self.events.append)

    def messages(self, code: str) -> list[dict[str, Any]]:
        return [e.data for e in self.events if e.kind == "event" and e.data.get("code") == code]

    def problem_codes(self) -> list[str]:
        return [pr["code"] for pr in self.driver.health.problems]

    def display(self) -> dict[str, Any]:
        tree: dict[str, Any] = self.sim.tree()["dev"]["display"]
        return tree

    async def stop(self) -> None:
        try:
            await self.driver.stop()
        finally:
            await self.sim.stop()


async def start(sim_settings: VendorSimSettings | None = None, *, sim_ws_off: bool = False,
                **driver_options: Any) -> Harness:
    sim = HeliosSimulator(sim_settings or VendorSimSettings(name="helios-sim", latency_ms=0.0))
    await sim.start()
    if sim_ws_off:
        sim.fault("websocket_off", 1)
    driver_options.setdefault("poll_interval_s", 0.5)
    driver_options.setdefault("timeout_s", 1.2)
    driver_options.setdefault("request_timeout_s", 0.5)
    driver = HeliosProcessor("wall", sim.url, **driver_options)
    h = Harness(sim, driver)
    try:
        await driver.start()
    except Exception:
        await sim.stop()
        raise
    return h


@pytest.fixture
async def h() -> AsyncIterator[Harness]:
    harness = await start()
    try:
        assert await harness.driver.wait_online(3.0)
        assert await wait_for(lambda: harness.driver._ws_live, 3.0)
        yield harness
    finally:
        await harness.stop()


async def raw(sim: HeliosSimulator, method: str, path: str, body: Any = None, *,
              data: bytes | None = None, headers: dict[str, str] | None = None,
              auth: aiohttp.BasicAuth | None = None) -> tuple[int, str, dict[str, str]]:
    """One request exactly as given (no JSON content type unless the caller sends one)."""
    payload = data if data is not None else (None if body is None else json.dumps(body).encode())
    async with aiohttp.ClientSession(auth=auth) as s, s.request(
            method, sim.url + path, data=payload, headers=headers or {}) as r:
        return r.status, await r.text(), dict(r.headers)


# ---- 1. the driver against the simulator ---------------------------------------------------


async def test_every_supported_key_reaches_the_vendor_tree_and_comes_back(h: Harness) -> None:
    """Each model key lands on its HELIOS leaf [API §6.1.1, §6.1.3] and is reported back."""
    d = h.driver
    await d.set("brightness_nits", 800.0)
    await d.set("colour_temperature_k", 5600)
    await d.set("gamma", 2.2)
    await d.set("blackout", True)
    await d.set("freeze", True)
    await d.set("test_pattern", "colour_bars")
    await d.set("input", "sdi2")
    want = {"brightness_nits": 800.0, "colour_temperature_k": 5600, "gamma": 2.2,
            "blackout": True, "freeze": True, "test_pattern": "colour_bars", "input": "sdi2"}
    assert await wait_for(lambda: all(d.reported.get(k) == v for k, v in want.items()), 3.0), \
        d.reported
    display = h.display()
    assert display["brightness"] == float32(53.3333)  # 800 / 1500 nits, float32
    assert display["cct"] == 5600
    assert display["gamma"] == float32(2.2) == 2.200000047683716
    assert display["blackout"] is True and display["freeze"] is True
    tp = h.sim.tree()["dev"]["ingest"]["testPattern"]
    assert tp["enabled"] is True and tp["type"] == "colorBars" and tp["motion"] is False
    assert h.sim.tree()["dev"]["ingest"]["input"] == "sdi2"
    await d.set("test_pattern", "ramp")
    assert await wait_for(lambda: d.reported.get("test_pattern") == "ramp")
    assert h.sim.tree()["dev"]["ingest"]["testPattern"]["type"] == "horizontalGradient"
    await d.set("test_pattern", "off")
    assert await wait_for(lambda: d.reported.get("test_pattern") == "off")
    tp = h.sim.tree()["dev"]["ingest"]["testPattern"]
    assert tp["enabled"] is False and tp["type"] == "horizontalGradient"  # the type is kept
    assert d.reported["processor"] == {"name": "helios-sim", "model": "HELIOS",
                                       "serial": "MPX-SIM-0001", "firmware": "24.07.0.22791"}
    assert d.reported["panels_total"] == 240
    assert not h.messages("led_refused")
    snap = d.snapshot()
    assert snap["capabilities"]["protocol"] == "helios"
    assert "checkerboard" not in snap["capabilities"]["test_patterns"]


def test_percent_and_nits_round_trip_through_float32() -> None:
    """The page's conversion: every 0.1-nit value survives percent rounding and float32."""
    for max_nits in (100.0, 1500.0, 1800.0, 7777.7, 10000.0):
        for tenth in range(0, int(max_nits * 10) + 1, 7):
            nits = tenth / 10
            echoed = float32(percent_from_nits(nits, max_nits))
            assert nits_from_percent(echoed, max_nits) == nits
    assert percent_from_nits(800.0, 1500.0) == 53.3333
    assert nits_from_percent(28.200000762939453, 1500.0) == 423.0


async def test_unsupported_features_are_refused_before_anything_is_sent(h: Harness) -> None:
    """What HELIOS lacks (page: "What HELIOS cannot do") is refused without a request."""
    d = h.driver
    writes = h.sim.writes
    for key, value in (("output_frame_rate_hz", 50.0), ("genlock_source", "sdi"),
                       ("genlock_phase_deg", 10.0), ("group_brightness.1", 500.0),
                       ("test_pattern", "checkerboard")):
        with pytest.raises(Unsupported):
            await d.set(key, value)
    for key, value in (("brightness_nits", 1600.0), ("input", "sdi:1"), ("input", "sdi9"),
                       ("colour_temperature_k", 1800), ("gamma", 0.5)):
        with pytest.raises(p.ValidationError):
            await d.set(key, value)
    await asyncio.sleep(0.3)
    assert h.sim.writes == writes
    assert "output_frame_rate_hz" not in d.desired and "group_brightness.1" not in d.desired
    unsupported = d.snapshot()["capabilities"]["unsupported"]
    assert {"output_frame_rate_hz", "genlock_source", "group_brightness", "temperature",
            "brightness_output"} <= set(unsupported)


async def test_presets_recall_whole_looks_by_record_id(h: Harness) -> None:
    """``POST /api/v1/presets/{id}/apply`` applies a saved look; unknown ids 404 [API §3.3]."""
    d = h.driver
    await d.recall_preset(2)
    assert h.sim.recalls == 1
    assert await wait_for(lambda: d.reported.get("preset") == 2)
    assert d.reported["brightness_nits"] == 600.0
    assert d.reported["colour_temperature_k"] == 3200
    await d.recall_preset(4)
    assert await wait_for(lambda: d.reported.get("preset") == 4)
    assert d.reported["test_pattern"] == "grid" and d.reported["gamma"] == 2.6
    assert d.reported["brightness_nits"] == 300.0
    with pytest.raises(CommandError) as err:
        await d.recall_preset(99)
    assert err.value.code == "led_refused"
    assert d.online
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(p.ValidationError):
            await d.recall_preset(bad)
    assert d.validate_preset(4000) == 4000  # record ids are database ids, not slots 1..128
    # another controller changes the look: the preset we recalled is no longer on the wall
    await raw(h.sim, "POST", API, {"dev": {"display": {"gamma": 2.3}}}, headers=JSON)
    assert await wait_for(lambda: d.reported.get("preset") == 0)


async def test_alerts_degrade_by_severity() -> None:
    """``sys.alerts`` are listed; Critical/Error (2, 3) degrade, Warning/Notice do not [API §7]."""
    h = await start()
    try:
        d = h.driver
        assert await d.wait_online(3.0)
        assert await wait_for(lambda: d.reported.get("alerts") == [])
        h.sim.fault("alert", 4)  # a Warning
        assert await wait_for(lambda: any("Fan slow" in a for a in d.reported.get("alerts", [])))
        assert d.health.state == Health.ONLINE
        assert d.reported["alert_problems"][0]["code"] == "led_alert"
        h.sim.fault("alert", 0)
        h.sim.fault("panels_offline", 3)
        assert await wait_for(lambda: d.health.state == Health.DEGRADED, 3.0)
        assert h.problem_codes() == ["processor_alerts"]
        assert "Receivers offline" in d.health.reason
        assert "3 receivers not responding" in d.reported["alerts"][0]
        assert "panels_online" not in d.reported  # not documented: not reported, never zero
        h.sim.fault("panels_offline", 0)
        assert await wait_for(lambda: d.health.state == Health.ONLINE, 3.0)
        h.sim.fault("temperature_offset", 100)
        h.sim.wall.temperature_c = 99.0
        assert await wait_for(lambda: d.health.state == Health.DEGRADED, 3.0)
        assert "Temperature high" in d.health.reason
        assert "temperature_c" not in d.reported
    finally:
        await h.stop()


# ---- 2. another controller, within 1 s ------------------------------------------------------


async def test_another_controllers_change_shows_within_one_second_through_the_websocket(
        ) -> None:
    """Updates are pushed to every client for every change [API §4.4].

    Default ``poll_interval_s`` 1.0; while the WebSocket is up the HTTP poll reads only the
    alerts, so the display values can only have come through ``update``s. Deadline 1.5 s: 1 s
    plus slack for a loaded test machine.
    """
    h = await start(poll_interval_s=1.0, timeout_s=3.0, request_timeout_s=2.0)
    try:
        d = h.driver
        assert await d.wait_online(3.0)
        assert await wait_for(lambda: d._ws_live, 3.0)
        await raw(h.sim, "POST", API, {"dev": {"display": {"brightness": 28.2}}}, headers=JSON)
        assert await wait_for(lambda: d.reported.get("brightness_nits") == 423.0, 1.5)
        async with aiohttp.ClientSession() as s, s.ws_connect(h.sim.url + RPC) as ws:
            await ws.send_json({"jsonrpc": "2.0", "id": 7, "method": "set",
                                "params": {"dev": {"display": {"cct": 4300}}}})
            assert await wait_for(lambda: d.reported.get("colour_temperature_k") == 4300, 1.5)
        h.sim.wall.set({"blackout": True})  # the front panel
        assert await wait_for(lambda: d.reported.get("blackout") is True, 1.5)
        assert d.counters["ws_updates"] >= 3
    finally:
        await h.stop()


async def test_without_the_websocket_the_driver_polls_the_subset() -> None:
    """A refused WebSocket (behind a proxy) falls back to HTTP polling (page: proposal)."""
    h = await start(sim_ws_off=True, poll_interval_s=0.5)
    try:
        d = h.driver
        assert await d.wait_online(3.0)
        await raw(h.sim, "POST", API, {"dev": {"display": {"gamma": 2.6}}}, headers=JSON)
        assert await wait_for(lambda: d.reported.get("gamma") == 2.6, 2.0)
        assert d.counters["ws_failures"] >= 1 and d.counters["ws_connects"] == 0
        h.sim.fault("websocket_off", 0)  # it comes back: the driver goes back to updates
        assert await wait_for(lambda: d._ws_live, 15.0)
    finally:
        await h.stop()


async def test_websocket_option_off_polls_only() -> None:
    """``websocket=False``: no upgrade is ever asked for."""
    h = await start(websocket=False)
    try:
        assert await h.driver.wait_online(3.0)
        await asyncio.sleep(0.8)
        assert h.sim.counters.ws_messages == 0 and not h.driver._ws_live
        assert h.driver.reported["brightness_nits"] == 1000.0
    finally:
        await h.stop()


# ---- 3. third-party clients ----------------------------------------------------------------


async def test_helios_controller_package_drives_the_simulator(
        h: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    """[hc]: GET ``?`` on construction, ``PATCH /api/v1/public?<path>`` with the fragment."""
    from helios_controller import HeliosController

    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    host, port = h.sim.address
    hc = await asyncio.to_thread(HeliosController, f"{host}:{port}")
    assert hc.json["dev"]["display"]["cct"] == 6500  # the whole tree from the constructor
    await asyncio.to_thread(hc.patch, "dev.display.brightness", 28.2)
    assert await asyncio.to_thread(hc.get, "dev.display.brightness") == 28.200000762939453
    assert await wait_for(lambda: h.driver.reported.get("brightness_nits") == 423.0, 1.5)
    await asyncio.to_thread(hc.patch, "dev.ingest.testPattern.type", "customColor")
    await asyncio.to_thread(hc.patch, "dev.ingest.testPattern.enabled", True)
    assert await wait_for(lambda: h.driver.reported.get("test_pattern") == "helios:customColor")
    await asyncio.to_thread(hc.patch, "dev.display.blackout", True)
    assert await wait_for(lambda: h.driver.reported.get("blackout") is True, 1.5)
    assert await asyncio.to_thread(lambda: hc.brightness) == 28.200000762939453
    # adopting the other controller's look leaves out what the model cannot command
    adopted = h.driver.adopt_reported()
    assert adopted["brightness_nits"] == 423.0 and "test_pattern" not in adopted


async def test_companion_post_fragments_and_preset_by_name(h: Harness) -> None:
    """[Companion] 2.2.1: POST fragments, ``presets/apply {"presetName"}``, its poll rotation."""
    d = h.driver
    for fragment in ({"dev": {"display": {"brightness": 42.5}}},
                     {"dev": {"ingest": {"testPattern": {"type": "grid", "motion": False,
                                                         "color": 16777215}}}},
                     {"dev": {"groups": {"0": {"gains": {"i": 1, "r": 1, "g": 1, "b": 1}}}}},
                     {"dev": {"ingest": {"input": "sdi1"}}}):
        status, text, _ = await raw(h.sim, "POST", API, fragment, headers=JSON)
        assert status == 200, text
    assert await wait_for(lambda: d.reported.get("brightness_nits") == 637.5, 1.5)
    status, text, _ = await raw(h.sim, "POST", "/api/v1/public",
                                {"dev": {"ingest": {"testPattern": {"enabled": True}}}},
                                headers=JSON)
    assert await wait_for(lambda: d.reported.get("test_pattern") == "grid", 1.5)
    for path in (API, "/api/v1/presets/list", "/api/v1/media"):
        status, text, _ = await raw(h.sim, "GET", path)
        assert status == 200, path
    assert json.loads(text) == {"media": []}
    status, text, _ = await raw(h.sim, "GET", "/api/v1/presets/list")
    names = [r["presetName"] for r in json.loads(text)["presets"]]
    assert "Tungsten" in names
    status, text, _ = await raw(h.sim, "POST", "/api/v1/presets/apply",
                                {"presetName": "Tungsten"}, headers=JSON)
    assert status == 200 and json.loads(text)["dev"]["display"]["cct"] == 3200
    assert await wait_for(lambda: d.reported.get("colour_temperature_k") == 3200, 1.5)
    status, _, _ = await raw(h.sim, "POST", "/api/v1/presets/apply", {"presetName": "nope"},
                             headers=JSON)
    assert status == 404


# ---- 4. quirks ----------------------------------------------------------------------------


async def test_dotted_get_returns_nested_subtrees(h: Harness) -> None:
    """GET with dotted paths returns each as a subtree from the root; ``_`` is ignored
    [API §3.1.1.2, §3.1.1]."""
    status, text, headers = await raw(h.sim, "GET",
                                      API + "?dev.display.brightness&dev.display.gamma&_=148")
    assert status == 200
    assert json.loads(text) == {"dev": {"display": {"brightness": float32(100 * 1000 / 1500),
                                                    "gamma": float32(2.4)}}}
    assert headers["Content-Type"].startswith("application/json")
    assert headers["Cache-Control"].startswith("private, no-cache")
    status, text, _ = await raw(h.sim, "GET", API + "?dev.display")
    assert set(json.loads(text)["dev"]["display"]) >= {"brightness", "cct", "tilesCount"}
    status, text, _ = await raw(h.sim, "GET", API)
    assert set(json.loads(text)) == {"dev", "sys"}


async def test_float32_echo_out_of_range_kept_unknown_dropped(h: Harness) -> None:
    """Echoes are float32 [API §3.1.3]; out of range keeps the old value and unknown keys are
    dropped, containers kept [API §3.1.4]."""
    status, text, _ = await raw(h.sim, "PATCH", API, {"dev": {"display": {"gamma": 2.2}}},
                                headers=JSON)
    assert status == 200 and json.loads(text) == {"dev": {"display": {"gamma": 2.200000047683716}}}
    await raw(h.sim, "PATCH", API, {"dev": {"display": {"brightness": 42}}}, headers=JSON)
    status, text, _ = await raw(h.sim, "PATCH", API, {"dev": {"display": {"brightness": 1000}}},
                                headers=JSON)
    assert status == 200 and json.loads(text) == {"dev": {"display": {"brightness": 42}}}
    status, text, _ = await raw(h.sim, "PATCH", API, {"dev": {"display": {"invalid": True}}},
                                headers=JSON)
    assert json.loads(text) == {"dev": {"display": {}}}
    assert h.sim.counters.by_reason["unknown_key"] >= 1
    assert h.sim.counters.by_reason["out_of_range"] >= 1


async def test_driver_reports_the_processors_refusal_of_an_out_of_range_value(
        h: Harness) -> None:
    """A kept value in the echo is a refusal (page: proposal); 11000 K is valid in the model
    but above HELIOS's 10000 [Companion ``set_cct``]."""
    d = h.driver
    await d.set("colour_temperature_k", 11000)
    assert await wait_for(lambda: bool(h.messages("led_refused")), 2.0)
    refusal = h.messages("led_refused")[0]
    assert refusal["params"]["what"] == "colour_temperature_k"
    assert "6500" in refusal["params"]["why"]
    assert d.reported["colour_temperature_k"] == 6500 and d.online


async def test_406_without_json_content_type_and_400_on_malformed(h: Harness) -> None:
    """No JSON Content-Type: 406 text/plain "Expected application/json Content-Type" [API
    §2.1.4, §3.1.6]; a malformed request: 400 [API §2.1.3]."""
    body = json.dumps({"dev": {"display": {"blackout": True}}}).encode()
    status, text, headers = await raw(h.sim, "PATCH", API, data=body)
    assert status == 406 and text == "Expected application/json Content-Type"
    assert headers["Content-Type"].startswith("text/plain")
    status, _, _ = await raw(h.sim, "POST", API, data=body,
                             headers={"Content-Type": "text/plain"})
    assert status == 406
    assert h.sim.tree()["dev"]["display"]["blackout"] is False
    for bad in (b"{not json", b"[1, 2]", b'{"dev": NaN}', b"\xff\xfe", b'"text"'):
        status, _, _ = await raw(h.sim, "PATCH", API, data=bad, headers=JSON)
        assert status == 400, bad
    status, text, _ = await raw(h.sim, "PATCH", "/api/v1/other", {"a": 1}, headers=JSON)
    assert status == 405 and text == "Method not allowed"  # [API §3.1.5]
    status, text, _ = await raw(h.sim, "POST", "/api/v1/presets/77/apply")
    assert status == 404  # [API §3.3.5]


async def test_every_reply_carries_x_rd_uptime(h: Harness) -> None:
    """``X-RD-Uptime`` on every HTTP reply [API §2.1.1, §7.2.3]."""
    for method, path, hdrs in (("GET", API, {}), ("GET", "/nope", {}), ("PATCH", API, {}),
                               ("PATCH", API, JSON), ("DELETE", API, {})):
        _, _, headers = await raw(h.sim, method, path, data=b"{x", headers=hdrs)
        assert float(headers["X-RD-Uptime"]) >= 0.0, (method, path)
        assert headers.get("Connection", "").lower() == "close"


async def test_restart_seen_by_uptime_going_down_and_desired_state_reapplied(
        h: Harness) -> None:
    """An uptime lower than the last one is a restart (page: proposal): desired re-applied."""
    d = h.driver
    await d.set("brightness_nits", 700.0)
    assert await wait_for(lambda: d.reported.get("brightness_nits") == 700.0)
    await asyncio.sleep(1.0)  # uptime well above zero
    h.sim.fault("restart", 1)
    assert h.sim.wall.values["brightness_nits"] == 1000.0  # the power-on look
    assert await wait_for(lambda: bool(h.messages("led_restarted")), 3.0)
    assert await wait_for(lambda: h.sim.tree()["dev"]["display"]["brightness"]
                          == float32(percent_from_nits(700.0, 1500.0)), 3.0)
    assert d.counters["restarts_seen"] == 1 and d.counters["reapplies"] >= 1
    assert await wait_for(lambda: d._ws_live, 5.0)  # the WebSocket reconnects


@pytest.mark.parametrize("scheme", ["basic", "digest"])
async def test_basic_and_digest_auth(scheme: str, caplog: pytest.LogCaptureFixture) -> None:
    """Optional Basic or Digest (RFC 2617, realm "M8 Processor") on all access [API §5]."""
    caplog.set_level(logging.DEBUG)
    password = "s3cr3t-Helios-pw"
    settings = VendorSimSettings(name="helios-auth", latency_ms=0.0,
                                 credentials=("admin", password), auth=scheme)
    h = await start(settings, credentials=("admin", password), auth=scheme)
    try:
        d = h.driver
        assert await d.wait_online(3.0)
        assert await wait_for(lambda: d._ws_live, 3.0)  # the upgrade is authenticated too
        await d.set("gamma", 2.2)
        assert await wait_for(lambda: h.sim.tree()["dev"]["display"]["gamma"] == float32(2.2))
        status, _, headers = await raw(h.sim, "GET", API)
        assert status == 401 and "M8 Processor" in headers["WWW-Authenticate"]
        assert float(headers["X-RD-Uptime"]) >= 0
        wrong = HeliosProcessor("wall2", h.sim.url, credentials=("admin", "wrong-pw"),
                                auth=scheme, poll_interval_s=0.5, timeout_s=1.0,
                                request_timeout_s=0.5)
        events: list[DeviceEvent] = []
        wrong.subscribe(events.append)
        await wrong.start()
        try:
            assert await wait_for(lambda: [pr["code"] for pr in wrong.health.problems]
                                  == ["http_auth"], 3.0), wrong.health
            assert not wrong.online
        finally:
            await wrong.stop()
        everything = json.dumps([d.snapshot(), wrong.snapshot(),
                                 [e.data for e in (*h.events, *events)]], default=str)
        everything += "\n".join(r.getMessage() for r in caplog.records)
        for secret in (password, "wrong-pw"):
            assert secret not in everything
    finally:
        await h.stop()


async def test_websocket_json_rpc_state_set_ping_and_pushed_updates(h: Harness) -> None:
    """``state``, ``set`` (as PATCH, ``{"dev": {"invalid": true}}`` -> ``{}``), ``ping`` ->
    ``pong``, and ``update`` to every client for every change [API §4, §4.3.1, §8.4.2]."""
    async with aiohttp.ClientSession() as s, s.ws_connect(h.sim.url + RPC) as a, \
            s.ws_connect(h.sim.url + RPC) as b:
        await a.send_json({"jsonrpc": "2.0", "id": 1, "method": "state"})
        state = await a.receive_json(timeout=2)
        assert state["id"] == 1 and set(state["result"]) == {"dev", "sys"}
        await a.send_json({"jsonrpc": "2.0", "id": 2, "method": "ping"})
        assert (await a.receive_json(timeout=2)) == {"jsonrpc": "2.0", "id": 2, "result": "pong"}
        await a.send_json({"jsonrpc": "2.0", "id": 3, "method": "set",
                           "params": {"dev": {"display": {"gamma": 2.1}}}})
        got = [await a.receive_json(timeout=2), await a.receive_json(timeout=2)]
        reply = next(m for m in got if m.get("id") == 3)
        assert reply["result"] == {"dev": {"display": {"gamma": 2.0999999046325684}}}
        update = await b.receive_json(timeout=2)
        assert update == {"jsonrpc": "2.0", "method": "update",
                          "params": {"dev": {"display": {"gamma": 2.0999999046325684}}}}
        await a.send_json({"jsonrpc": "2.0", "id": 4, "method": "set",
                           "params": {"dev": {"invalid": True}}})
        assert (await a.receive_json(timeout=2))["result"] == {}
        await raw(h.sim, "POST", API, {"dev": {"display": {"freeze": True}}}, headers=JSON)
        update = await b.receive_json(timeout=2)
        assert update["params"] == {"dev": {"display": {"freeze": True}}}
        await a.send_json({"jsonrpc": "2.0", "id": 5, "method": "bogus"})
        errors = []
        for _ in range(3):
            msg = await a.receive_json(timeout=2)
            if "error" in msg:
                errors.append(msg["error"]["code"])
                break
        await a.send_str("{not json")
        msg = await a.receive_json(timeout=2)
        errors.append(msg["error"]["code"])
        assert errors == [-32601, -32700]
        await a.send_str("x" * (70 * 1024))  # over the simulator's message limit
        closing = await a.receive(timeout=2)
        assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED,
                                aiohttp.WSMsgType.ERROR)
    assert await wait_for(lambda: h.driver.reported.get("freeze") is True, 1.5)
    assert h.driver.online


async def test_websocket_clients_are_bounded(h: Harness) -> None:
    """At most MAX_WS_CLIENTS at once (the driver holds one); beyond that, 503."""
    async with aiohttp.ClientSession() as s:
        opened = []
        try:
            for _ in range(MAX_WS_CLIENTS - 1):
                opened.append(await s.ws_connect(h.sim.url + RPC))
            with pytest.raises(aiohttp.WSServerHandshakeError) as err:
                await s.ws_connect(h.sim.url + RPC)
            assert err.value.status == 503
        finally:
            for ws in opened:
                await ws.close()
    assert h.sim.counters.by_reason["ws_too_many_clients"] == 1


async def test_faults_through_the_driver_and_hostile_websocket_messages(h: Harness) -> None:
    """``stagectl led fault`` reaches the simulator's own faults; a client sending binary,
    batches, wrong params or notifications gets JSON-RPC errors (or nothing), never a crash."""
    await h.driver.inject_fault("alert", 2)  # Critical
    assert await wait_for(lambda: h.driver.health.state == Health.DEGRADED, 3.0)
    await h.driver.inject_fault("alert", 0)
    assert await wait_for(lambda: h.driver.health.state == Health.ONLINE, 3.0)
    with pytest.raises(CommandError):
        await h.driver.inject_fault("no_such_fault", 1)
    async with aiohttp.ClientSession() as s, s.ws_connect(h.sim.url + RPC) as ws:
        await ws.send_bytes(b"\x00\x01")
        assert (await ws.receive_json(timeout=2))["error"]["code"] == -32700
        for bad in ([{"jsonrpc": "2.0", "id": 1, "method": "ping"}],
                    {"jsonrpc": "1.0", "id": 1, "method": "ping"},
                    {"jsonrpc": "2.0", "id": {"x": 1}, "method": "ping"}):
            await ws.send_json(bad)
            assert (await ws.receive_json(timeout=2))["error"]["code"] == -32600
        await ws.send_json({"jsonrpc": "2.0", "id": 9, "method": "set", "params": [1]})
        assert (await ws.receive_json(timeout=2))["error"]["code"] == -32602
        await ws.send_json({"jsonrpc": "2.0", "method": "ping"})  # a notification: no reply
        await ws.send_json({"jsonrpc": "2.0", "id": 10, "method": "ping"})
        assert (await ws.receive_json(timeout=2))["id"] == 10
    h.sim.fault("websocket_off", 1)  # the driver's socket is dropped; HTTP polling takes over
    assert await wait_for(lambda: not h.driver._ws_live, 3.0)
    await raw(h.sim, "POST", API, {"dev": {"display": {"cct": 3900}}}, headers=JSON)
    assert await wait_for(lambda: h.driver.reported.get("colour_temperature_k") == 3900, 2.0)
    assert h.driver.online
