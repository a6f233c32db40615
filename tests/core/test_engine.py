"""Client -> engine -> simulator -> state back, over real ZeroMQ and UDP sockets."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import zmq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stagectl.client import ClientIdentity, EngineClient, EngineError, StateSubscriber
from stagectl.config import parse_config
from stagectl.harness import StageHarness, free_port_config
from stagectl.keys import generate


def wait_for(predicate: Callable[[], bool], timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


@pytest.fixture(scope="module")
def stage() -> Iterator[StageHarness]:
    harness = StageHarness(free_port_config()).start()
    yield harness
    harness.stop()


@pytest.fixture
def client(stage: StageHarness) -> Iterator[EngineClient]:
    c = EngineClient(stage.config, ClientIdentity("tester", "operator"))
    yield c
    c.close()


def sim_values(stage: StageHarness) -> dict[str, Any]:
    assert stage.sims is not None
    return stage.sims.simulators[0].values


def test_command_reaches_simulator_and_delta_comes_back(stage: StageHarness,
                                                        client: EngineClient) -> None:
    sub = StateSubscriber(stage.config, topics=("device.led-main",))
    try:
        time.sleep(0.2)  # slow-joiner: let the SUB connect
        result = client.call("led.set", {"key": "colour_temperature_k", "value": 4300})
        assert result == {"device": "led-main", "key": "colour_temperature_k", "value": 4300,
                          "applied": True, "note": ""}
        wait_for(lambda: sim_values(stage)["colour_temperature_k"] == 4300)
        seen: list[dict[str, Any]] = []
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            msg = sub.recv(0.5)
            if msg is None:
                continue
            topic, body = msg
            assert topic == "device.led-main"
            seen.append(body)
            if body["type"] == "delta" and body["data"].get("colour_temperature_k") == 4300:
                break
        else:
            pytest.fail(f"no delta with the new value; saw {seen}")
        assert {"type", "device", "seq", "t", "data"} <= set(body)
    finally:
        sub.close()


def test_status_shape(client: EngineClient) -> None:
    status = client.call("status")
    (dev,) = status["devices"]
    assert dev["name"] == "led-main" and dev["kind"] == "led"
    assert dev["health"] == "online"
    assert {"brightness_nits", "colour_temperature_k", "panels_online"} <= set(dev["state"])


def test_invalid_value_is_structured_and_nothing_sent(stage: StageHarness,
                                                      client: EngineClient) -> None:
    assert stage.engine is not None
    device = stage.engine.devices["led-main"]
    sent = device.counters["commands_sent"]
    with pytest.raises(EngineError) as info:
        client.call("led.set", {"key": "brightness_nits", "value": 20000})
    assert info.value.code == "invalid_value"
    assert info.value.details["device"] == "led-main"
    assert info.value.details["param"] == "brightness_nits"
    assert info.value.details["value"] == 20000
    assert "nits" in info.value.details["expected"]
    assert device.counters["commands_sent"] == sent


@pytest.mark.parametrize("role,allowed", [("operator", True), ("engineer", True),
                                          ("producer", False), ("viewer", False)])
def test_roles(stage: StageHarness, role: str, allowed: bool) -> None:
    with EngineClient(stage.config, ClientIdentity("someone", role)) as c:
        assert c.call("status")["devices"]
        if allowed:
            c.call("led.set", {"key": "gamma", "value": 2.2})
        else:
            with pytest.raises(EngineError) as info:
                c.call("led.set", {"key": "gamma", "value": 2.2})
            assert info.value.code == "forbidden"
            assert "may not run led.set" in str(info.value)


def test_only_engineers_inject_faults(stage: StageHarness) -> None:
    with EngineClient(stage.config, ClientIdentity("op", "operator")) as c:
        with pytest.raises(EngineError, match="may not run sim.fault"):
            c.call("sim.fault", {"fault": "panels_offline", "value": 3})
    with EngineClient(stage.config, ClientIdentity("eng", "engineer")) as c:
        c.call("sim.fault", {"fault": "panels_offline", "value": 3})
        wait_for(lambda: c.call("status")["devices"][0]["health"] == "degraded")
        c.call("sim.fault", {"fault": "panels_offline", "value": 0})
        wait_for(lambda: c.call("status")["devices"][0]["health"] == "online")


def test_unknown_device_and_command(client: EngineClient) -> None:
    with pytest.raises(EngineError) as info:
        client.call("led.set", {"device": "nope", "key": "gamma", "value": 2})
    assert info.value.code == "unknown_device"
    with pytest.raises(EngineError) as info:
        client.call("warp.engage")
    assert info.value.code == "unknown_command"


def raw_request(stage: StageHarness, payload: bytes) -> dict[str, Any]:
    ctx = zmq.Context.instance()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(stage.config.engine.command)
    try:
        sock.send(payload)
        assert sock.poll(3000), "engine did not reply"
        reply: dict[str, Any] = json.loads(sock.recv())
        return reply
    finally:
        sock.close()


@pytest.mark.parametrize("payload", [
    b"not json", b"[1,2]", b'{"cmd": "status"}', b'{"id": 1}', b'{"id": 1, "cmd": 5}',
    b'{"id": 1, "cmd": "status", "role": "admin"}', b"\xff\xfe", b'{"id": 1, "cmd": "status", '
    b'"args": []}', b'{"id": 1, "cmd": "led.set", "args": {"value": NaN}, "role": "operator"}',
])
def test_malformed_requests_get_errors_and_are_counted(stage: StageHarness,
                                                       payload: bytes) -> None:
    assert stage.engine is not None
    before = stage.engine.counters["bad_requests"] + stage.engine.counters["failed_bad_request"]
    reply = raw_request(stage, payload)
    assert reply["ok"] is False
    assert reply["error"]["code"] == "bad_request"
    after = stage.engine.counters["bad_requests"] + stage.engine.counters["failed_bad_request"]
    assert after == before + 1


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.dictionaries(st.sampled_from(["id", "cmd", "args", "role", "user", "x"]),
                       st.one_of(st.none(), st.integers(), st.text(max_size=12),
                                 st.sampled_from(["led.set", "status", "led.preset",
                                                  "operator", "sim.fault"]),
                                 st.dictionaries(st.sampled_from(["key", "value", "device",
                                                                  "number"]),
                                                 st.one_of(st.integers(), st.floats(
                                                     allow_nan=False), st.text(max_size=8)),
                                                 max_size=3)), max_size=5))
def test_fuzzed_requests_always_answered(stage: StageHarness, request_obj: dict) -> None:
    reply = raw_request(stage, json.dumps(request_obj).encode())
    assert isinstance(reply.get("ok"), bool)
    if not reply["ok"]:
        assert reply["error"]["code"] and reply["error"]["message"]


def test_external_change_reported_not_reverted_and_adopt(stage: StageHarness,
                                                         client: EngineClient) -> None:
    from pythonosc.udp_client import SimpleUDPClient

    client.call("led.set", {"key": "brightness_nits", "value": 1100.0})
    wait_for(lambda: sim_values(stage)["brightness_nits"] == 1100.0)
    host, port = stage.sims.simulators[0].address  # type: ignore[union-attr]
    SimpleUDPClient(host, port).send_message("/led/brightness", 500.0)  # a front panel
    wait_for(lambda: client.call("status")["devices"][0]["state"]["brightness_nits"] == 500.0,
             timeout=1.0)
    time.sleep(0.6)
    dev = client.call("status")["devices"][0]
    assert dev["state"]["brightness_nits"] == 500.0
    assert dev["desired"]["brightness_nits"] == 1100.0
    adopted = client.call("led.adopt")["desired"]
    assert adopted["brightness_nits"] == 500.0


def test_non_loopback_bind_requires_curve_keys(tmp_path: Path) -> None:
    import asyncio

    from stagectl.engine.engine import Engine

    cfg = parse_config({"stage": {"name": "s"},
                        "engine": {"command": "tcp://0.0.0.0:59997",
                                   "state": "tcp://0.0.0.0:59998",
                                   "keys_dir": str(tmp_path / "keys")},
                        "mqtt": {"enabled": False}})
    assert cfg.engine.needs_curve

    async def start() -> None:
        engine = Engine(cfg)
        try:
            await engine.start()
        finally:
            await engine.stop()

    with pytest.raises(Exception, match="stagectl keys generate --name server"):
        asyncio.run(start())


def test_curve_roles_come_from_keys(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    generate(keys, "server")
    generate(keys, "alice", "operator")
    generate(keys, "victor", "viewer")
    generate(keys, "mallory", "operator", authorize=False)
    base = free_port_config(extra_engine={"curve": True, "keys_dir": str(keys)})
    with StageHarness(base):
        # alice declares "viewer" but her certificate says operator: the key wins
        with EngineClient(base, ClientIdentity("x", "viewer"), key_name="alice") as c:
            c.call("led.set", {"key": "gamma", "value": 2.3})
        with EngineClient(base, ClientIdentity("x", "operator"), key_name="victor") as c:
            with pytest.raises(EngineError, match="role 'viewer' may not"):
                c.call("led.set", {"key": "gamma", "value": 2.3})
        with EngineClient(base, ClientIdentity("x", "operator"), key_name="mallory",
                          timeout_s=0.7) as c:
            from stagectl.client import EngineUnavailable

            with pytest.raises(EngineUnavailable):  # handshake refused: no reply at all
                c.call("status")


def test_changes_are_announced_queries_are_not(stage: StageHarness,
                                               client: EngineClient) -> None:
    sub = StateSubscriber(stage.config, topics=("engine",))
    try:
        time.sleep(0.2)
        client.call("status")
        client.call("led.set", {"key": "gamma", "value": 2.3})
        messages: list[str] = []
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            got = sub.recv(0.2)
            if got and got[1]["type"] == "event":
                messages.append(got[1]["data"]["message"])
                if "led.set" in messages[-1]:
                    break
        assert any("led.set key=gamma" in m for m in messages), messages
        assert not any(": status" in m for m in messages), messages
    finally:
        sub.close()
