"""Hypothesis: the Tessera reply parsers and the Tessera simulator's request handling.

The parsers (``drivers.led.tessera.parse``) return model values in range or raise
``ReplyError``, never anything else, for arbitrary JSON and for near-valid trees (the right
keys, the wrong types). The simulator answers anything a real client can send with an HTTP
answer, never a 500 from a crash (counted refusals instead).
"""

from __future__ import annotations

import asyncio
import math
import re
from typing import Any
from urllib.parse import quote

import aiohttp
from hypothesis import given, settings
from hypothesis import strategies as st
from yarl import URL

from drivers.led import protocol as p
from drivers.led.http import ReplyError
from drivers.led.simhttp import VendorSimSettings
from drivers.led.tessera import parse as tp
from drivers.led.tessera.simulator import TesseraSimulator

scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70),
                    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12))
json_values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=24)
KNOWN = [tp.BRIGHTNESS, tp.COLOUR_TEMPERATURE, tp.GAMMA, tp.BLACKOUT, tp.FREEZE,
         tp.PATTERN_ENABLED, tp.PATTERN_TYPE, tp.PORT_TYPE, tp.PORT_NUMBER, tp.PRESET_NUMBER,
         tp.PRESET_NAME, tp.PANELS_TOTAL, tp.PANELS_ONLINE, tp.PANELS_ERRORS, tp.UPTIME,
         tp.PROCESSOR_TYPE, tp.SERIAL, tp.FIRMWARE, tp.PROCESSOR_NAME, tp.FAILOVER_ACTIVE,
         (*tp.GROUP_ITEMS, "1", "brightness"), (*tp.GROUP_ITEMS, "2", "brightness"),
         (*tp.TEMPERATURE, "fpga"), (*tp.TEMPERATURE, "ethernet", "copper", "a"),
         (*tp.CABLE_LOOPS, "1", "state"), tp.GROUP_ITEMS, tp.TEMPERATURE, tp.CABLE_LOOPS]
near_values = st.one_of(scalars, st.sampled_from([0, 1, -1, 60, 2.2, 6500, 10000, 1e9, "3",
                                                  "", "sdi", "grid", "00d 01h 02m 03s",
                                                  True, False]), json_values)


def _tree(pairs: dict[tuple[str, ...], Any]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for path, value in sorted(pairs.items(), key=lambda kv: len(kv[0])):
        try:
            tp.nest(path, value, tree)
        except (TypeError, AttributeError):
            pass
    return tree


near_trees = st.dictionaries(st.sampled_from(KNOWN), near_values, max_size=len(KNOWN)).map(_tree)


def check_model_values(values: dict[str, Any]) -> None:
    """Every reported key is a model value in its documented range."""
    for key, value in values.items():
        if key == "brightness_nits":
            assert isinstance(value, float) and -1.0 <= value <= 10000.0
        elif key.startswith("group_brightness."):
            assert re.fullmatch(r"group_brightness\.[0-9]{1,10}", key)
            assert isinstance(value, float) and 0.0 <= value <= 10000.0
        elif key == "colour_temperature_k":
            assert type(value) is int and 2000 <= value <= 11000
        elif key == "gamma":
            assert isinstance(value, float) and 0.2 <= value <= 4.0
        elif key in ("blackout", "freeze"):
            assert isinstance(value, bool)
        elif key == "test_pattern":
            assert value in p.TEST_PATTERNS or (value.startswith("tessera:")
                                                and len(value) <= 60 and value.isprintable())
        elif key == "input":
            assert re.fullmatch(r"[a-z0-9][a-z0-9-]{0,31}:[0-9]{1,2}", value)
        elif key == "preset":
            assert type(value) is int and 0 <= value <= 32767
        elif key in ("panels_online", "panels_total"):
            assert type(value) is int and 0 <= value <= 65535
        elif key == "temperature_c":
            assert isinstance(value, float) and math.isfinite(value) and -60 <= value <= 200
        elif key == "alerts":
            assert isinstance(value, list) and len(value) <= tp.MAX_ALERTS
            assert all(isinstance(a, str) and a.isprintable() for a in value)
        elif key == "processor":
            assert set(value) <= {"model", "serial", "firmware", "name"}
            assert all(isinstance(v, str) and len(v) <= 64 for v in value.values())
        else:
            raise AssertionError(f"unexpected key {key}")
    if "panels_online" in values:
        assert values["panels_online"] <= values["panels_total"]


@settings(max_examples=400)
@given(st.one_of(json_values, near_trees))
def test_tree_parser_gives_model_values_or_reply_error(tree: Any) -> None:
    try:
        state = tp.parse_tree(tree)
    except ReplyError as exc:
        assert exc.problem.code in ("http_malformed", "vendor_error")
        return
    check_model_values(state.values)
    assert state.uptime_s is None or 0 <= state.uptime_s < 100000 * 86400


@settings(max_examples=300)
@given(json_values, st.sampled_from(["api", "brightness", "enabled", "number", "source"]))
def test_leaf_unwrap_gives_the_value_or_reply_error(reply: Any, name: str) -> None:
    try:
        tp.unwrap(reply, name, "x")
    except ReplyError as exc:
        assert exc.problem.code in ("http_malformed", "vendor_error", "no_project_loaded")


@settings(max_examples=300)
@given(st.text(max_size=300), st.one_of(st.text(max_size=40), json_values))
def test_vendor_errors_and_uptime_never_escape(text: str, anything: Any) -> None:
    err = tp.vendor_error(text)
    assert err.problem.code in ("vendor_error", "no_project_loaded")
    assert len(str(err.problem)) < 200
    try:
        assert tp.uptime_s(anything) >= 0
    except ReplyError:
        pass
    for leafy in (tp.brightness, tp.colour_temperature, tp.gamma, tp.preset_number,
                  tp.pattern_type, tp.port_type, tp.port_number):
        try:
            leafy(anything)
        except ReplyError:
            pass


@given(st.integers(0, 99999 * 86400))
def test_uptime_round_trips(seconds: int) -> None:
    assert tp.uptime_s(tp.format_uptime(seconds)) == seconds


SEGMENTS = sorted({seg for path in TesseraSimulator(VendorSimSettings()).leaves()
                   for seg in path if not seg.startswith("P0")})
segments = st.one_of(st.sampled_from(SEGMENTS), st.sampled_from([s.upper() for s in SEGMENTS]),
                     st.text(max_size=10))
queries = st.lists(st.tuples(st.sampled_from(["set", "list", "help", "port-type", "x", "SET"]),
                             st.text(max_size=12)), max_size=3)
bodies = st.one_of(st.none(), st.binary(max_size=64),
                   json_values.map(lambda v: {"data": v}), json_values)
requests = st.tuples(st.sampled_from(["GET", "GET", "PUT", "PUT", "POST", "DELETE", "PATCH",
                                      "HEAD", "OPTIONS"]),
                     st.booleans(), st.lists(segments, max_size=6), queries, bodies)


def _target(api: bool, segs: list[str], query: list[tuple[str, str]]) -> str:
    path = "/" + "/".join(["api" if api else "x", *(quote(s, safe="") for s in segs)])
    if query:
        path += "?" + "&".join(f"{k}={quote(v, safe='')}" for k, v in query)
    return path


@settings(max_examples=80)
@given(st.lists(requests, min_size=1, max_size=6))
def test_simulator_answers_anything_without_crashing(batch: list[Any]) -> None:
    async def scenario() -> None:
        sim = TesseraSimulator(VendorSimSettings(port=0, latency_ms=0, panels_total=8))
        await sim.start()
        try:
            async with aiohttp.ClientSession() as session:
                for method, api, segs, query, body in batch:
                    url = URL(sim.url + _target(api, segs, query), encoded=True)
                    kwargs: dict[str, Any] = {}
                    if isinstance(body, bytes):
                        kwargs["data"] = body
                    elif body is not None:
                        kwargs["json"] = body
                    async with session.request(method, url, **kwargs) as resp:
                        raw = await resp.read()
                        assert resp.status != 500, raw[:200]
                        assert resp.status in (200, 400, 404, 405, 409, 413, 501), resp.status
            assert "internal" not in sim.counters.by_reason
            assert sim.counters.requests == len(batch)
            values = sim.wall.values
            assert 0.0 <= values["brightness_nits"] <= 10000.0
            assert 2000 <= values["colour_temperature_k"] <= 11000
            assert 0.2 <= values["gamma"] <= 4.0
        finally:
            await sim.stop()

    asyncio.run(scenario())
