"""Megapixel HELIOS: bad input and fuzzing (issue 14 "Bad input").

A processor (or whatever answers in its place) that errors, sends malformed JSON, HTML, a
redirect, wrong types in the right places, or nothing: the device goes offline with the right
problem code, nothing crashes, and the desired state is re-applied when it answers properly
again. The reply parsers and the simulator's request handling are fuzzed with hypothesis.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import math
import threading
import urllib.parse
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from drivers.device import Backoff, DeviceEvent, Health
from drivers.led import protocol as p
from drivers.led.helios import parse as hp
from drivers.led.helios.driver import HeliosProcessor
from drivers.led.helios.simulator import HeliosSimulator
from drivers.led.http import ReplyError
from drivers.led.simhttp import VendorSimSettings, float32
from tests.led_vendors.conftest import wait_for

GOOD_TREE: dict[str, Any] = {
    "dev": {"display": {"brightness": 50.0, "cct": 6500, "gamma": 2.4, "blackout": False,
                        "freeze": False, "tilesCount": 12},
            "ingest": {"input": "sdi1", "testPattern": {"enabled": False, "type": "grid"}}},
    "sys": {"alerts": {}, "alertsCount": 0, "alertsSeverity": -1, "description": "hostile"},
}


class Hostile:
    """A small aiohttp server that answers whatever the test tells it to (no WebSocket)."""

    def __init__(self) -> None:
        self.body: bytes = json.dumps(GOOD_TREE).encode()
        self.ctype = "application/json"
        self.status = 200
        self.echo: bytes | None = None  # PATCH reply; None: echo the request body
        self.patches: list[Any] = []
        self.uptime = 100.0
        self._runner: web.AppRunner | None = None
        self.url = ""

    def good(self) -> None:
        self.body, self.ctype, self.status = json.dumps(GOOD_TREE).encode(), \
            "application/json", 200

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.uptime += 0.5
        headers = {"X-RD-Uptime": f"{self.uptime:.1f}"}
        if request.path.endswith("/rpc/websocket"):
            return web.Response(status=404, text="Not Found", headers=headers)
        if request.method == "PATCH" and self.status == 200 and \
                self.ctype == "application/json" and self.body == json.dumps(GOOD_TREE).encode():
            raw = await request.read()
            self.patches.append(json.loads(raw))
            return web.Response(body=self.echo if self.echo is not None else raw,
                                content_type="application/json", headers=headers)
        return web.Response(body=self.body, status=self.status, content_type=self.ctype,
                            headers=headers)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


@pytest.fixture
async def hostile() -> AsyncIterator[tuple[Hostile, HeliosProcessor, list[DeviceEvent]]]:
    server = Hostile()
    await server.start()
    driver = HeliosProcessor("wall", server.url, poll_interval_s=0.5, timeout_s=1.0,
                             request_timeout_s=0.4, backoff=Backoff(initial_s=0.1, max_s=0.2))
    events: list[DeviceEvent] = []
    driver.subscribe(events.append)
    await driver.start()
    try:
        assert await driver.wait_online(3.0)
        yield server, driver, events
    finally:
        await driver.stop()
        await server.stop()


def codes(driver: HeliosProcessor) -> list[str]:
    return [pr["code"] for pr in driver.health.problems]


def offline_with(driver: HeliosProcessor, code: str) -> Callable[[], bool]:
    return lambda: not driver.online and code in codes(driver)


@pytest.mark.parametrize(("fault", "value", "code"), [
    ("html", 1, "http_html"), ("redirect", 1, "http_redirect"),
    ("malformed", 1, "http_malformed"), ("http_error", 500, "http_status"),
    ("mute", 1, "http_timeout"),
])
async def test_simulator_faults_take_it_offline_and_desired_state_comes_back(
        fault: str, value: float, code: str) -> None:
    """Each shared fault: offline with its code; on recovery the desired state is re-applied."""
    sim = HeliosSimulator(VendorSimSettings(name="helios-sim", latency_ms=0.0))
    await sim.start()
    driver = HeliosProcessor("wall", sim.url, poll_interval_s=0.5, timeout_s=1.0,
                             request_timeout_s=0.4)
    await driver.start()
    try:
        assert await driver.wait_online(3.0)
        await driver.set("brightness_nits", 700.0)
        assert await wait_for(lambda: driver.reported.get("brightness_nits") == 700.0)
        sim.fault(fault, value)
        assert await wait_for(offline_with(driver, code), 4.0), \
            driver.health
        sim.wall.set({"brightness_nits": 1000.0})  # someone changed it while we were away
        sim.fault(fault, 0)
        assert await wait_for(lambda: driver.health.state == Health.ONLINE, 6.0)
        assert await wait_for(lambda: sim.tree()["dev"]["display"]["brightness"]
                              == float32(hp.percent_from_nits(700.0, 1500.0)), 3.0)
        assert driver.counters["reapplies"] >= 1
        assert driver.counters["parser_errors"] == 0
    finally:
        await driver.stop()
        await sim.stop()


HOSTILE_BODIES: list[tuple[bytes, str, str]] = [
    (b"[1, 2, 3]", "application/json", "http_malformed"),  # a list, not an object
    (b'{"dev": {"display": {"brightness": "50"}}}', "application/json", "http_malformed"),
    (b'{"dev": {"display": {"brightness": 1e400}}}', "application/json", "http_malformed"),
    (b'{"dev": {"display": {"gamma": NaN}}}', "application/json", "http_malformed"),
    (b'{"dev": {"display": {"cct": "NaN"}}}', "application/json", "http_malformed"),
    (b'{"dev": {"display": {"brightness": 1' + b"0" * 400 + b"}}}", "application/json",
     "http_malformed"),
    (b"[" * 50000 + b"]" * 50000, "application/json", "http_malformed"),
    (b'{"dev": 5}', "application/json", "http_malformed"),
    (b'{"sys": {"alerts": [1, 2]}}', "application/json", "http_malformed"),
    (b'{"sys": {"alertsSeverity": "bad"}}', "application/json", "http_malformed"),
    (b'{"dev": {"ingest": {"testPattern": {"enabled": "yes"}}}}', "application/json",
     "http_malformed"),
    (b"", "application/json", "http_malformed"),
    (b"<html><body>login</body></html>", "text/html", "http_html"),
]


async def test_hostile_replies_go_offline_with_the_reason_and_recover(
        hostile: tuple[Hostile, HeliosProcessor, list[DeviceEvent]]) -> None:
    """Wrong types in the right places, huge numbers, NaN, deep nesting, a list for an object:
    offline with ``http_malformed`` (or ``http_html``), never a crash; good again -> online."""
    server, driver, _ = hostile
    await driver.set("gamma", 2.2)
    assert await wait_for(lambda: any(b.get("dev", {}).get("display", {}).get("gamma") == 2.2
                                      for b in server.patches))
    for body, ctype, code in HOSTILE_BODIES:
        server.body, server.ctype = body, ctype
        assert await wait_for(offline_with(driver, code), 4.0), \
            (body[:60], driver.health)
        server.patches.clear()
        server.good()
        assert await wait_for(lambda: driver.online, 4.0), body[:60]
        assert await wait_for(lambda: bool(server.patches), 3.0), "desired state re-applied"
    assert driver.counters["parser_errors"] == 0


async def test_an_echo_without_the_key_is_unsupported(
        hostile: tuple[Hostile, HeliosProcessor, list[DeviceEvent]]) -> None:
    """A key missing from the echo is not known to this firmware (page: proposal)."""
    server, driver, events = hostile
    server.echo = b'{"dev": {"display": {}}}'
    await driver.set("freeze", True)
    assert await wait_for(lambda: any(e.data.get("code") == "led_refused" for e in events))
    refusal = next(e.data for e in events if e.data.get("code") == "led_refused")
    assert refusal["params"]["what"] == "freeze"
    assert "not known to this firmware" in refusal["params"]["why"]
    assert driver.online
    server.echo = b"[]"  # an echo that is not a tree: a protocol failure, not a refusal
    await driver.set("freeze", False)
    assert await wait_for(lambda: driver.counters["write_failures"] >= 1)


async def test_rounded_echo_is_reported_as_stored(
        hostile: tuple[Hostile, HeliosProcessor, list[DeviceEvent]]) -> None:
    """A third value in the echo is the processor's rounding: reported, not a refusal."""
    server, driver, events = hostile
    server.echo = b'{"dev": {"display": {"gamma": 2.25}}}'
    await driver.set("gamma", 2.21)
    assert await wait_for(lambda: driver.reported.get("gamma") == 2.25)
    assert driver.counters["values_rounded"] == 1
    assert not any(e.data.get("code") == "led_refused" for e in events)


# ---- hypothesis: the parsers ---------------------------------------------------------------

JSON_LEAVES = (st.none() | st.booleans() | st.integers(min_value=-10**30, max_value=10**30)
               | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=12))
JSON = st.recursive(JSON_LEAVES, lambda children: st.lists(children, max_size=4)
                    | st.dictionaries(st.text(max_size=8), children, max_size=4),
                    max_leaves=25)


def _subtree(keys: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    return st.dictionaries(st.sampled_from(keys), JSON, max_size=len(keys))


NEAR_VALID = st.fixed_dictionaries({}, optional={
    "dev": st.fixed_dictionaries({}, optional={
        "display": _subtree(["brightness", "cct", "gamma", "blackout", "freeze", "tilesCount"])
        | JSON,
        "ingest": st.fixed_dictionaries({}, optional={
            "input": JSON, "inputs": JSON,
            "testPattern": _subtree(["enabled", "type", "motion"]) | JSON,
            "info": JSON}),
    }) | JSON,
    "sys": st.fixed_dictionaries({}, optional={
        "alerts": st.dictionaries(st.text(max_size=8),
                                  _subtree(["brief", "desc", "severity", "count"]) | JSON,
                                  max_size=4) | JSON,
        "alertsSeverity": JSON, "alertsCount": JSON, "description": JSON,
        "info": _subtree(["type", "serialNumber", "version", "name"]) | JSON}) | JSON,
})


def check_model_values(out: dict[str, Any]) -> None:
    """What a parser returned is in the model's units and ranges."""
    for key, value in out.items():
        if key == "brightness_nits":
            assert isinstance(value, float) and 0.0 <= value <= p.MAX_BRIGHTNESS_NITS
        elif key == "colour_temperature_k":
            assert isinstance(value, int) and 0 <= value <= hp.MAX_CCT_K
        elif key == "gamma":
            assert isinstance(value, float) and math.isfinite(value) and 0.0 <= value <= 10.0
        elif key in ("blackout", "freeze"):
            assert isinstance(value, bool)
        elif key == "test_pattern":
            assert value in p.TEST_PATTERNS or (isinstance(value, str)
                                                and value.startswith("helios:"))
        elif key == "input":
            assert isinstance(value, str) and len(value) <= 48
        elif key == "panels_total":
            assert isinstance(value, int) and value >= 0
        elif key in ("alerts", "alert_keys"):
            assert isinstance(value, list) and len(value) <= hp.MAX_ALERTS
            assert all(isinstance(t, str) and len(t) <= hp.ALERT_CHARS for t in value)
        elif key == "alert_severity":
            assert isinstance(value, int) and -1 <= value <= 7
        elif key == "processor":
            assert all(isinstance(v, str) and len(v) <= 64 for v in value.values())
        else:
            raise AssertionError(f"unexpected key {key}")


@given(JSON | NEAR_VALID, st.sampled_from([100.0, 1500.0, 10000.0]))
def test_parse_tree_returns_model_values_or_reply_error(tree: Any, max_nits: float) -> None:
    """Arbitrary JSON and near-valid trees: model values in range, or ReplyError."""
    try:
        out = hp.parse_tree(tree, max_nits)
    except ReplyError as exc:
        assert exc.problem.code == "http_malformed"
        return
    check_model_values(out)


@given(JSON | NEAR_VALID, NEAR_VALID)
def test_merge_and_rpc_parsers_never_raise_anything_else(first: Any, second: Any) -> None:
    """The mirror merge and the JSON-RPC parser: ReplyError or a result, nothing else."""
    mirror: dict[str, Any] = {}
    for fragment in (first, second):
        try:
            if isinstance(fragment, dict):
                hp.merge(mirror, fragment)
            hp.parse_rpc(fragment, "processor")
            hp.parse_rpc({"jsonrpc": "2.0", "method": "update", "params": fragment}, "p")
        except ReplyError:
            pass
    try:
        check_model_values(hp.parse_tree(mirror, 1500.0))
    except ReplyError:
        pass
    hp.parse_uptime(str(first)[:40])


@given(JSON | NEAR_VALID)
def test_simulator_write_and_rpc_take_anything(fragment: Any) -> None:
    """The simulator's fragment walk and JSON-RPC handler answer whatever arrives."""
    sim = HeliosSimulator(VendorSimSettings(name="fuzz", latency_ms=0.0))
    if isinstance(fragment, dict):
        echo = sim.write(fragment)
        assert isinstance(echo, dict)
    for text in (json.dumps(fragment), json.dumps({"jsonrpc": "2.0", "id": 1, "method": "set",
                                                   "params": fragment}),
                 json.dumps({"jsonrpc": "2.0", "id": fragment, "method": "ping"})):
        reply = sim._rpc(text)
        assert reply is None or isinstance(json.loads(reply), dict)
    hp.parse_tree(sim.tree(), 1500.0)  # the simulator's own tree always parses


# ---- hypothesis: the simulator over a real socket -------------------------------------------


class SimThread:
    """A HELIOS simulator on its own event loop thread (hypothesis tests are synchronous)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="helios-fuzz-sim",
                                       daemon=True)
        self.sim = HeliosSimulator(VendorSimSettings(name="fuzz", latency_ms=0.0))

    def start(self) -> None:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.sim.start(), self.loop).result(5)

    def stop(self) -> None:
        try:
            asyncio.run_coroutine_threadsafe(self.sim.stop(), self.loop).result(5)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(5)
            self.loop.close()


@pytest.fixture(scope="module")
def sim_thread() -> Iterator[SimThread]:
    runner = SimThread()
    runner.start()
    try:
        yield runner
    finally:
        runner.stop()


PATHS = st.one_of(
    st.sampled_from(["/api/v1/public", "/api/v1/public/", "/api/v1/presets/list",
                     "/api/v1/presets", "/api/v1/presets/1/apply", "/api/v1/presets/apply",
                     "/api/v1/presets/x/apply", "/api/v1/media", "/", "/api/v1/public/rpc/"
                     "websocket"]),
    st.text(max_size=40).map(lambda t: "/" + t))
QUERIES = st.one_of(st.just(""), st.text(max_size=60),
                    st.lists(st.sampled_from(["dev.display", "dev", "sys.alerts", "_=1", "",
                                              "dev.display.brightness", "x.y.z", "dev..",
                                              "=", "dev.groups.0.gains.i"]), max_size=8)
                    .map("&".join))
BODIES = st.one_of(st.binary(max_size=300), JSON.map(lambda v: json.dumps(v).encode()),
                   NEAR_VALID.map(lambda v: json.dumps(v).encode()))


@settings(max_examples=120, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(method=st.sampled_from(["GET", "POST", "PATCH", "PUT", "DELETE", "HEAD", "OPTIONS",
                               "PROPFIND"]),
       path=PATHS, query=QUERIES, body=BODIES,
       ctype=st.sampled_from(["application/json", "text/plain", "", "application/json; x=1"]))
def test_simulator_answers_any_request_without_a_crash(
        sim_thread: SimThread, method: str, path: str, query: str, body: bytes,
        ctype: str) -> None:
    """Any method, path, query and body: an HTTP answer, never a 500 from a crash."""
    host, port = sim_thread.sim.address
    target = urllib.parse.quote(path, safe="/._-~") + (
        "?" + urllib.parse.quote(query, safe="&=._-~") if query else "")
    conn = http.client.HTTPConnection(host, port, timeout=5)
    try:
        headers = {"Content-Type": ctype} if ctype else {}
        conn.request(method, target, body=body if method not in ("GET", "HEAD") else None,
                     headers=headers)
        resp = conn.getresponse()
        resp.read()
        assert resp.status < 500 or resp.status == 503, (method, target, resp.status)
        if resp.status != 101:
            assert resp.getheader("X-RD-Uptime") is not None
    finally:
        conn.close()
    assert sim_thread.sim.counters.by_reason.get("internal", 0) == 0


async def _ws_exchange(url: str, frames: list[str | bytes]) -> dict[str, Any]:
    import aiohttp

    async with aiohttp.ClientSession() as s, s.ws_connect(url + hp.RPC) as ws:
        for frame in frames:
            if isinstance(frame, bytes):
                await ws.send_bytes(frame)
            else:
                await ws.send_str(frame)
        await ws.send_str(json.dumps({"jsonrpc": "2.0", "id": "last", "method": "ping"}))
        while True:
            msg = await ws.receive(timeout=5)
            assert msg.type == aiohttp.WSMsgType.TEXT, msg
            data = json.loads(msg.data)
            assert isinstance(data, dict) and data.get("jsonrpc") == "2.0"
            if data.get("id") == "last":
                result: dict[str, Any] = data
                return result


RPC_FRAMES = st.lists(st.one_of(
    st.text(max_size=80), st.binary(max_size=40),
    JSON.map(json.dumps),
    st.fixed_dictionaries({"jsonrpc": st.sampled_from(["2.0", "1.0"]),
                           "method": st.sampled_from(["state", "set", "ping", "update", "x"])
                           | JSON,
                           "params": NEAR_VALID | JSON},
                          optional={"id": JSON}).map(json.dumps)), max_size=4)


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(frames=RPC_FRAMES)
def test_simulator_websocket_answers_any_frames(sim_thread: SimThread,
                                                frames: list[str | bytes]) -> None:
    """Any JSON-RPC frames over a real WebSocket: answers or errors, and it still pongs."""
    reply = asyncio.run(_ws_exchange(sim_thread.sim.url, frames))
    assert reply["result"] == "pong"
    assert sim_thread.sim.counters.by_reason.get("internal", 0) == 0
