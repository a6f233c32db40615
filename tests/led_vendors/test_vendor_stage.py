"""A stage with one wall of each kind (OSC, Tessera, HELIOS, NovaStar), driven through the engine.

Real parts throughout: the vendor simulators are HTTP servers on loopback, the engine is the
real engine with its ZeroMQ sockets, clients talk to it as the CLI and the console do, and the
"other controller" changes go to the simulators in the raw request forms Companion sends.
"""

from __future__ import annotations

import base64
import json
import logging
import socket
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from stagectl.client import ClientIdentity, EngineClient, EngineError, StateSubscriber
from stagectl.config import StageConfig, parse_config
from stagectl.harness import StageHarness, free_port

SECRET = "zebra-lantern-41"  # the HELIOS password: must never leave the credentials variable
VENDORS = ("tessera", "helios", "novastar")


def vendor_config(estop_led_action: str = "freeze") -> StageConfig:
    udp = free_port(socket.SOCK_DGRAM)
    data: dict[str, Any] = {
        "stage": {"name": "vendors", "site": "Nansha", "timezone": "Asia/Shanghai"},
        "engine": {"command": f"tcp://127.0.0.1:{free_port()}",
                   "state": f"tcp://127.0.0.1:{free_port()}"},
        "mqtt": {"enabled": False},
        "safety": {"audit_db": ":memory:", "estop_led_action": estop_led_action},
        "devices": [{"name": "led-osc", "kind": "led", "driver": "osc",
                     "address": f"127.0.0.1:{udp}", "max_brightness_nits": 1500}],
        "simulators": [{"name": "led-osc-sim", "kind": "led", "listen": f"127.0.0.1:{udp}",
                        "latency_ms": 1}],
    }
    for vendor in VENDORS:
        port = free_port()
        device: dict[str, Any] = {"name": f"led-{vendor}", "kind": "led", "driver": vendor,
                                  "address": f"127.0.0.1:{port}", "max_brightness_nits": 1500}
        sim: dict[str, Any] = {"name": f"led-{vendor}-sim", "kind": "led", "protocol": vendor,
                               "listen": f"127.0.0.1:{port}", "max_brightness_nits": 1500,
                               "latency_ms": 1}
        if vendor == "helios":
            device["credentials_env"] = sim["credentials_env"] = "STAGECTL_TEST_HELIOS"
        data["devices"].append(device)
        data["simulators"].append(sim)
    return parse_config(data)


@pytest.fixture
def stage(monkeypatch: pytest.MonkeyPatch) -> Iterator[StageHarness]:
    monkeypatch.setenv("STAGECTL_TEST_HELIOS", f"operator:{SECRET}")
    harness = StageHarness(vendor_config())
    harness.start(wait_online_s=8)
    try:
        yield harness
    finally:
        harness.stop()


def _sim(stage: StageHarness, vendor: str) -> Any:
    assert stage.sims is not None
    (found,) = [s for s in stage.sims.simulators if s.name == f"led-{vendor}-sim"]
    return found


def _http(url: str, method: str = "GET", body: Any = None,
          auth: tuple[str, str] | None = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        request.add_header("Content-type", "application/json")
    if auth is not None:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    with urllib.request.urlopen(request, timeout=3) as resp:
        raw = resp.read()
        return resp.status, json.loads(raw) if raw.strip() else None


def _wait_state(sub: StateSubscriber, device: str, key: str, expect: Any,
                timeout: float) -> float:
    """Seconds until ``device``'s reported ``key`` equals ``expect`` on the PUB socket."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        got = sub.recv(0.1)
        if got is None:
            continue
        topic, body = got
        if topic == f"device.{device}" and body.get("type") == "delta":
            value = body["data"].get(key)
            if value == expect or (isinstance(expect, float) and isinstance(value, float)
                                   and abs(value - expect) < 1.0):
                return time.monotonic() - start
    raise AssertionError(f"{device}.{key} never reached {expect!r} within {timeout} s")


def _status(client: EngineClient) -> dict[str, Any]:
    return {d["name"]: d for d in client.call("status")["devices"]}


def test_every_wall_comes_up_and_takes_the_same_commands(stage: StageHarness) -> None:
    cfg = stage.config
    sub = StateSubscriber(cfg, topics=("device.",))
    try:
        with EngineClient(cfg, ClientIdentity("op", "operator")) as client:
            devices = _status(client)
            for name in ("led-osc", *(f"led-{v}" for v in VENDORS)):
                assert devices[name]["health"] == "online", devices[name]["health_reason"]
                caps = devices[name]["capabilities"]
                assert caps["protocol"] == name.removeprefix("led-")
                assert "brightness_nits" in caps["supported"]
            time.sleep(0.3)  # the subscriber is connected
            for i, name in enumerate(("led-osc", *(f"led-{v}" for v in VENDORS))):
                nits = 700.0 + 10 * i
                reply = client.call("led.set", {"device": name, "key": "brightness_nits",
                                                "value": nits})
                assert reply["applied"] is True
                _wait_state(sub, name, "brightness_nits", nits, 3.0)
                client.call("led.set", {"device": name, "key": "colour_temperature_k",
                                        "value": 4300})
                _wait_state(sub, name, "colour_temperature_k", 4300, 3.0)
                client.call("led.preset", {"device": name, "number": 2})
            for vendor in VENDORS:
                wall = _sim(stage, vendor).wall
                assert wall.values["colour_temperature_k"] == 3200  # preset 2's whole look
                assert abs(wall.values["brightness_nits"] - 600.0) < 1.0
    finally:
        sub.close()


def test_unsupported_features_are_refused_as_unsupported(stage: StageHarness) -> None:
    with EngineClient(stage.config, ClientIdentity("op", "operator")) as client:
        devices = _status(client)
        for name, device in devices.items():
            for feature, why in device["capabilities"]["unsupported"].items():
                assert why, f"{name}: {feature} is unsupported without a reason"
        with pytest.raises(EngineError) as err:
            client.call("led.set", {"device": "led-osc", "key": "input", "value": "sdi:1"})
        assert err.value.code == "unsupported"
        assert "stagectl OSC" in str(err.value)
        for name, device in devices.items():
            caps = device["capabilities"]
            missing = [p for p in ("colour_bars", "checkerboard", "ramp", "grid")
                       if p not in caps["test_patterns"]]
            for pattern in missing:
                with pytest.raises(EngineError) as err:
                    client.call("led.set", {"device": name, "key": "test_pattern",
                                            "value": pattern})
                assert err.value.code == "unsupported", (name, pattern)


def test_other_controllers_changes_show_within_a_second(stage: StageHarness) -> None:
    """Companion's request forms, straight to the simulators; the engine reports the change."""
    cfg = stage.config
    sub = StateSubscriber(cfg, topics=("device.",))
    try:
        time.sleep(0.3)
        tessera, helios, novastar = (_sim(stage, v) for v in VENDORS)
        # Tessera: Companion writes with GET ...?set=value (unencoded)
        status, _ = _http(f"{tessera.url}/api/output/global-colour/brightness?set=450")
        assert status == 200
        took = _wait_state(sub, "led-tessera", "brightness_nits", 450.0, 2.0)
        assert took < 1.5  # default 1 s poll, plus a round trip and slack for a busy machine
        # HELIOS: Companion POSTs a fragment; brightness is percent of max_brightness_nits
        status, _ = _http(f"{helios.url}/api/v1/public", "POST",
                          {"dev": {"display": {"brightness": 30}}}, auth=("operator", SECRET))
        assert status == 200
        took = _wait_state(sub, "led-helios", "brightness_nits", 450.0, 2.0)  # 30 % of 1500
        assert took < 1.5
        # NovaStar: the brightness write Companion's module sends (percent)
        _, screens = _http(f"{novastar.url}/api/v1/screen")
        screen = screens["data"]["screens"][0]["screenID"]
        status, _ = _http(f"{novastar.url}/api/v1/screen/brightness", "PUT",
                          {"screenIdList": [screen], "brightness": 40})
        assert status == 200
        took = _wait_state(sub, "led-novastar", "brightness_nits", 600.0, 2.0)  # 40 % of 1500
        assert took < 1.5
    finally:
        sub.close()


def test_a_broken_processor_degrades_with_the_reason_and_recovers(stage: StageHarness) -> None:
    with EngineClient(stage.config, ClientIdentity("eng", "engineer")) as client:
        client.call("led.set", {"device": "led-tessera", "key": "gamma", "value": 2.2})
        for fault, code in (("html", "http_html"), ("redirect", "http_redirect"),
                            ("malformed", "http_malformed")):
            client.call("sim.fault", {"device": "led-tessera", "fault": fault, "value": 1})
            deadline = time.monotonic() + 6
            while time.monotonic() < deadline:
                device = _status(client)["led-tessera"]
                if device["health"] == "offline" and device["health_problems"]:
                    break
                time.sleep(0.1)
            assert device["health"] == "offline", fault
            assert device["health_problems"][0]["code"] == code
            tessera = _sim(stage, "tessera")
            tessera.fault(fault, 0)  # straight to the simulator: the link is down
            tessera.wall.set({"gamma": 2.6})  # someone changed it while we could not see
            deadline = time.monotonic() + 8
            while time.monotonic() < deadline:
                if _status(client)["led-tessera"]["health"] == "online" and \
                        tessera.wall.values["gamma"] == 2.2:
                    break
                time.sleep(0.1)
            assert tessera.wall.values["gamma"] == 2.2, "desired state not re-applied"
        with pytest.raises(EngineError) as err:
            client.call("sim.fault", {"device": "led-osc", "fault": "html", "value": 1})
        assert err.value.code == "invalid_value"


def test_estop_freezes_every_wall(stage: StageHarness) -> None:
    with EngineClient(stage.config, ClientIdentity("op", "operator")) as client:
        client.call("estop", {"reason": "test"})
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if all(_sim(stage, v).wall.values["freeze"] for v in VENDORS):
                break
            time.sleep(0.05)
        assert all(_sim(stage, v).wall.values["freeze"] for v in VENDORS)


def test_credentials_never_reach_status_events_or_logs(stage: StageHarness,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    cfg = stage.config
    sub = StateSubscriber(cfg, topics=("",))
    seen: list[str] = []
    try:
        with EngineClient(cfg, ClientIdentity("op", "operator")) as client:
            time.sleep(0.2)
            client.call("led.set", {"device": "led-helios", "key": "blackout", "value": True})
            seen.append(json.dumps(client.call("status")))
            seen.append(json.dumps(client.call("engine.counters")))
            deadline = time.monotonic() + 1.5
            while time.monotonic() < deadline:
                got = sub.recv(0.1)
                if got is not None:
                    seen.append(json.dumps(got[1]))
    finally:
        sub.close()
    seen += [r.getMessage() for r in caplog.records]
    blob = "\n".join(seen)
    assert SECRET not in blob
    assert base64.b64encode(f"operator:{SECRET}".encode()).decode() not in blob
