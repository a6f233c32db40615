"""NovaStar COEX: hypothesis against the reply parsers and the simulator's request handling.

The parsers (``drivers/led/novastar/parse.py``) take whatever a processor sends: they return
values in range or raise ``ReplyError``, never anything else. The simulator answers anything a
client sends with an HTTP answer in the vendor's form, never a 500 from a crash.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Callable
from typing import Any

import aiohttp
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.led.http import ReplyError
from drivers.led.novastar import parse
from drivers.led.novastar.simulator import NovastarSimulator
from drivers.led.simhttp import VendorSimSettings

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=5)
    | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=30)
LEAF = JSON | st.sampled_from(["{a}", 0, 1, 2, -1, 1e308, 2**70, "NaN", True, [], {}])

PARSERS: list[Callable[[Any], Any]] = [
    parse.parse_screens, parse.parse_displayparams, parse.parse_display_state,
    parse.parse_presets, parse.parse_sources, parse.parse_hw, parse.parse_monitor,
    parse.parse_cabinet_count, parse.parse_cabinets, parse.parse_lock, parse.parse_pattern,
]


def check_values(fn: Callable[[Any], Any], out: Any) -> None:
    """What a parser returned is in stagectl's ranges."""
    if fn is parse.parse_displayparams:
        for entry in out.values():
            if entry.fraction is not None:
                assert 0.0 <= entry.fraction <= 1.0 and math.isfinite(entry.fraction)
            if entry.colour_temperature_k is not None:
                lo, hi = parse.COLOUR_TEMPERATURE_RANGE
                assert isinstance(entry.colour_temperature_k, int)
                assert lo <= entry.colour_temperature_k <= hi
            if entry.gamma is not None:
                assert parse.GAMMA_RANGE[0] <= entry.gamma <= parse.GAMMA_RANGE[1]
    elif fn is parse.parse_display_state:
        assert all(isinstance(c, int) and m in (0, 1, 2) for c, m in out.items())
    elif fn is parse.parse_monitor:
        if out.temperature_c is not None:
            assert math.isfinite(out.temperature_c)
        assert len(out.alerts) <= 32 and all(isinstance(a, str) for a in out.alerts)
    elif fn is parse.parse_hw:
        identity, uptime = out
        assert set(identity) <= set(parse.IDENTITY_FIELDS.values())
        assert uptime is None or (math.isfinite(uptime) and uptime >= 0)
    elif fn is parse.parse_cabinets:
        assert all(v is None or 0.0 <= v <= 1.0 for v in out.values())
    elif fn is parse.parse_pattern:
        assert out is None or isinstance(out, str)
    elif fn is parse.parse_lock:
        assert isinstance(out[0], bool) and isinstance(out[1], str)


def run(fn: Callable[[Any], Any], data: Any) -> None:
    try:
        out = fn(data)
    except ReplyError:
        return
    check_values(fn, out)


@settings(max_examples=300)
@given(st.sampled_from(PARSERS), JSON)
def test_parsers_take_arbitrary_json(fn: Callable[[Any], Any], data: Any) -> None:
    """Any JSON at all: values in range, or ReplyError."""
    run(fn, data)


@settings(max_examples=300)
@given(JSON)
def test_unwrap_takes_arbitrary_json(reply: Any) -> None:
    """The envelope check: data, or ReplyError (a CoexError for a vendor code)."""
    try:
        parse.unwrap(reply, "x")
    except ReplyError:
        pass


def near_valid() -> st.SearchStrategy[tuple[Callable[[Any], Any], Any]]:
    """The documented shapes with arbitrary leaves (right keys, wrong types)."""
    sid = LEAF
    screens = st.builds(lambda i, n, c, m, layer, src: {"screens": [
        {"screenID": i, "screenName": n, "workingMode": m, "canvases": [{"canvasID": c}],
         "layersInWorkingMode": [{"workingMode": m, "layers": [{"id": layer,
                                                                 "source": src}]}]}]},
        sid, LEAF, LEAF, LEAF, LEAF, LEAF)
    params = st.builds(lambda i, b, t, g: {"list": [{"screenId": i, "brightness": b,
                                                     "colorTemperature": t, "gamma": g}]},
                       sid, LEAF | st.floats(0, 150), LEAF | st.integers(500, 25000),
                       LEAF | st.floats(0, 12))
    state = st.builds(lambda c, m: {"displayState": [{"canvasID": c, "displayMode": m}]},
                      LEAF, LEAF | st.integers(-1, 3))
    presets = st.builds(lambda i, n, s: {"screenPresets": [{"screenID": i, "presets": [
        {"sequenceNumber": n, "name": "p", "state": s}]}]}, sid, LEAF, LEAF)
    sources = st.builds(lambda n, g, s: [{"name": n, "groupId": g, "sourceStatus": s}],
                        LEAF, LEAF, LEAF)
    hw = st.builds(lambda n, sn, up: {"name": n, "sn": sn, "uptime": up,
                                      "randomPassword": "x"}, LEAF, LEAF, LEAF)
    monitor = st.builds(lambda v, s, f, o: {"mainBoardTemperature": {"value": v, "status": s},
                                            "fanInfos": [f], "outputStatus": [o]},
                        LEAF | st.floats(-100, 300), LEAF, LEAF, LEAF)
    count = st.builds(lambda i, c: {"list": [{"ScreenID": i, "CabinetCount": c}]}, sid, LEAF)
    cabinets = st.builds(lambda i, b: [{"id": i, "brightness": b}], LEAF, LEAF)
    lock = st.builds(lambda locked, ip: {"locked": locked, "ip": ip}, LEAF, LEAF)
    pattern = st.builds(lambda m, r, s: {"testPattern": {"mode": m, "parameters": {
        "red": r, "green": 0, "blue": 0, "state": s}}}, LEAF, LEAF, LEAF | st.just(1))
    return st.one_of(
        st.tuples(st.just(parse.parse_screens), screens),
        st.tuples(st.just(parse.parse_displayparams), params),
        st.tuples(st.just(parse.parse_display_state), state),
        st.tuples(st.just(parse.parse_presets), presets),
        st.tuples(st.just(parse.parse_sources), sources),
        st.tuples(st.just(parse.parse_hw), hw),
        st.tuples(st.just(parse.parse_monitor), monitor),
        st.tuples(st.just(parse.parse_cabinet_count), count),
        st.tuples(st.just(parse.parse_cabinets), cabinets),
        st.tuples(st.just(parse.parse_lock), lock),
        st.tuples(st.just(parse.parse_pattern), pattern))


@settings(max_examples=500)
@given(near_valid())
def test_parsers_take_near_valid_trees(case: tuple[Callable[[Any], Any], Any]) -> None:
    """The right keys with wrong types, huge numbers, NaN: values in range, or ReplyError."""
    fn, data = case
    run(fn, data)


def test_parsers_accept_the_documented_examples() -> None:
    """The page's own example replies parse to the values it says (so the fuzzers above are
    not passing on a parser that refuses everything)."""
    sid = "{7e9cd858-780b-40d1-9f20-0fa0d53a06ce}"
    screens = parse.parse_screens({"screens": [
        {"screenID": sid, "screenName": "Screen1", "workingMode": 0,
         "canvases": [{"canvasID": 45, "width": 3840, "height": 2160}],
         "layersInWorkingMode": [{"workingMode": 0, "layers": [{"id": 0, "source": 72}]}]}]})
    assert screens == [parse.Screen(sid, "Screen1", (45,), ((0, 72),))]
    params = parse.parse_displayparams({"list": [{"screenId": sid, "brightness": 0.8,
                                                  "colorTemperature": 6500, "gamma": 2.8}]})
    assert params[sid].fraction == 0.8 and params[sid].colour_temperature_k == 6500
    assert parse.parse_display_state({"displayState": [{"canvasID": 45,
                                                        "displayMode": 2}]}) == {45: 2}
    assert parse.parse_lock({"locked": 1, "ip": "10.0.0.5"}) == (True, "10.0.0.5")
    identity, _ = parse.parse_hw({"name": "MX30", "sn": "X1", "hwVersion": "V1.5.1",
                                  "randomPassword": "hunter2"})
    assert identity == {"model": "MX30", "serial": "X1", "firmware": "V1.5.1"}
    assert parse.unwrap({"code": 0, "data": {"a": 1}, "message": "Success"}, "x") == {"a": 1}
    try:
        parse.unwrap({"code": 5, "data": "", "message": "Busying"}, "x")
    except parse.CoexError as exc:
        assert exc.busy and exc.problem.code == "processor_busy"
    else:
        raise AssertionError("code 5 accepted")


METHODS = st.sampled_from(["GET", "PUT", "POST", "DELETE", "PATCH", "OPTIONS", "HEAD"])
SEGMENTS = st.sampled_from(["api", "v1", "screen", "brightness", "preset", "current", "update",
                            "output", "displaymode", "device", "cabinet", "input", "pattern",
                            "test", "hw", "lock", "..", "%2e", "%00", "", "ü", "a" * 300])
ROUTES = st.sampled_from(["/screen/brightness", "/screen/gamma", "/screen/colortemperature",
                          "/screen/output/displaymode", "/preset/current/update",
                          "/screen/layer/input", "/device/input/pattern/test",
                          "/device/cabinet/brightness"])
BODIES = st.one_of(
    st.binary(max_size=200),
    JSON.map(lambda v: json.dumps(v).encode()),
    st.dictionaries(st.sampled_from(["screenIdList", "screenIds", "brightness", "gamma",
                                     "colorTemperature", "colorTemp", "value", "canvasIDs",
                                     "screenID", "screenId", "sequenceNumber", "layers", "mode",
                                     "parameters", "idList", "ratio"]),
                    LEAF, max_size=6).map(lambda v: json.dumps(v).encode()),
)
REQUEST = st.one_of(
    st.tuples(METHODS, st.lists(SEGMENTS, max_size=6).map(lambda s: "/" + "/".join(s)),
              st.text(max_size=30), BODIES),
    st.tuples(st.sampled_from(["PUT", "POST"]), ROUTES.map(lambda r: "/api/v1" + r),
              st.just(""), BODIES),
)


async def _send_all(requests: list[tuple[str, str, str, bytes]]) -> None:
    sim = NovastarSimulator(VendorSimSettings(name="fuzz", latency_ms=0.0, panels_total=8))
    await sim.start()
    try:
        async with aiohttp.ClientSession() as s:
            for method, path, query, body in requests:
                url = sim.url + path + ("?" + query if query else "")
                try:
                    async with s.request(method, url, data=body, skip_auto_headers=(
                            "Content-Type",)) as r:
                        await r.read()
                        assert r.status != 500, (method, path, body)
                except (aiohttp.InvalidURL, ValueError):
                    continue  # the client would not send it
        assert "internal" not in sim.counters.by_reason
        assert sim.counters.requests >= 1 or not requests
        # still answering properly
        async with aiohttp.ClientSession() as s, s.get(sim.url + "/api/v1/screen") as r:
            assert r.status == 200 and (await r.json())["code"] == 0
    finally:
        await sim.stop()


@settings(max_examples=60)
@given(st.lists(REQUEST, min_size=1, max_size=15))
def test_simulator_answers_anything_without_crashing(
        requests: list[tuple[str, str, str, bytes]]) -> None:
    """Any method, path, query and body through a real client: an HTTP answer (the COEX error
    envelope, a 404 or an empty 200), counted; never a 500; the wall stays consistent."""
    asyncio.run(_send_all(requests))
