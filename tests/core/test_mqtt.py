"""Telemetry to a real MQTT broker: mosquitto (as in CI) and the embedded amqtt default."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from stagectl.client import ClientIdentity, EngineClient
from stagectl.harness import StageHarness, free_port, free_port_config
from tests.conftest import require_tool


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL after 5 s; waits for the process either way."""
    proc.terminate()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


class Mosquitto:
    """A mosquitto on a fixed free loopback port that a test can stop and start again.

    Args:
        tmp_path: where its config (and, with ``persistence``, its database) lives.
        persistence: keep retained messages across a restart (saved on SIGTERM).
    """

    def __init__(self, tmp_path: Path, persistence: bool = False) -> None:
        self.binary = require_tool("mosquitto")
        self.port = free_port()
        self.conf = tmp_path / "mosquitto.conf"
        lines = [f"listener {self.port} 127.0.0.1", "allow_anonymous true",
                 f"persistence {'true' if persistence else 'false'}"]
        if persistence:
            lines.append(f"persistence_location {tmp_path}/")
        if os.geteuid() == 0:  # as root it would switch to user mosquitto: tmp_path is 0700
            lines.append("user root")
        self.conf.write_text("\n".join(lines) + "\n")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Mosquitto:
        """Start it and wait until it accepts connections."""
        proc = self.proc = subprocess.Popen([self.binary, "-c", str(self.conf)],
                                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return self
            except OSError:
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                assert time.monotonic() < deadline, "mosquitto did not start"
                time.sleep(0.05)

    def stop(self) -> None:
        """SIGTERM (it saves its database, if any) and wait."""
        if self.proc is None:
            return
        stop_process(self.proc)
        if self.proc.stderr:
            self.proc.stderr.close()
        self.proc = None


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[int]:
    broker = Mosquitto(tmp_path).start()
    try:
        yield broker.port
    finally:
        broker.stop()


async def collect(port: int, topic: str, want: int, timeout: float = 5.0
                  ) -> dict[str, list[tuple[Any, bool]]]:
    found: dict[str, list[tuple[Any, bool]]] = {}
    async with aiomqtt.Client("127.0.0.1", port) as client:
        await client.subscribe(topic, qos=1)
        async with asyncio.timeout(timeout):
            async for message in client.messages:
                found.setdefault(str(message.topic), []).append(
                    (json.loads(message.payload) if message.payload not in (b"true", b"false")
                     else message.payload.decode(), bool(message.retain)))
                if len(found) >= want:
                    break
    return found


def wait_mqtt(harness: StageHarness) -> None:
    assert harness.engine is not None and harness.engine.telemetry is not None
    deadline = time.monotonic() + 5
    while not harness.engine.telemetry.idle:
        assert time.monotonic() < deadline, "telemetry never connected"
        time.sleep(0.05)
    time.sleep(0.2)  # the last publish is in flight


def test_mosquitto_gets_retained_health_and_state(mosquitto: int) -> None:
    config = free_port_config(stage="mq", mqtt=True, mqtt_broker=f"127.0.0.1:{mosquitto}")
    with StageHarness(config) as stage:
        wait_mqtt(stage)
        with EngineClient(config, ClientIdentity("t", "operator")) as client:
            client.call("led.set", {"key": "colour_temperature_k", "value": 3200})
        time.sleep(0.5)
        # a late subscriber gets the retained picture of the stage
        found = asyncio.run(collect(mosquitto, "stagectl/mq/#", want=4))
        health, retained = found["stagectl/mq/led-main/health"][-1]
        assert retained and health["state"] == "online"
        state, retained = found["stagectl/mq/led-main/state"][-1]
        assert retained and state["colour_temperature_k"] == 3200
        assert found["stagectl/mq/engine/online"][-1] == ("true", True)
        status, retained = found["stagectl/mq/engine/status"][-1]
        assert retained and status["state"] == "online"
        assert status["session"] == stage.engine.telemetry.session  # type: ignore[union-attr]
        assert health["engine"]["session"] == status["session"]
        assert state["engine"]["seq"] > 0 and health["engine"]["seq"] > 0
    # after a clean stop the engine says it is gone
    found = asyncio.run(collect(mosquitto, "stagectl/mq/engine/#", want=2))
    assert found["stagectl/mq/engine/online"][-1][0] == "false"
    assert found["stagectl/mq/engine/status"][-1][0]["state"] == "offline"
    assert found["stagectl/mq/engine/status"][-1][0]["reason"] == "stopped"


def test_health_change_is_published(mosquitto: int) -> None:
    config = free_port_config(stage="mq2", mqtt=True, mqtt_broker=f"127.0.0.1:{mosquitto}")
    with StageHarness(config) as stage:
        wait_mqtt(stage)

        async def watch() -> dict[str, Any]:
            async with aiomqtt.Client("127.0.0.1", mosquitto) as client:
                await client.subscribe("stagectl/mq2/led-main/health", qos=1)
                with EngineClient(config, ClientIdentity("e", "engineer")) as c:
                    c.call("sim.fault", {"fault": "panels_offline", "value": 5})
                async with asyncio.timeout(5):
                    async for message in client.messages:
                        body: dict[str, Any] = json.loads(message.payload)
                        if body["state"] == "degraded":
                            return body
            raise AssertionError("unreachable")

        body = asyncio.run(watch())
        assert "5 of 240 panels offline" in body["reason"]


def test_engine_survives_broker_loss(mosquitto: int) -> None:
    config = free_port_config(stage="mq3", mqtt=True, mqtt_broker="127.0.0.1:1")  # no broker
    with StageHarness(config) as stage:
        with EngineClient(config, ClientIdentity("t", "operator")) as client:
            client.call("led.set", {"key": "gamma", "value": 2.2})
            assert client.call("status")["devices"][0]["health"] == "online"
        time.sleep(0.5)
        assert stage.engine is not None and stage.engine.telemetry is not None
        assert stage.engine.telemetry.counters["connect_failures"] >= 1


def test_embedded_broker_is_the_default() -> None:
    config = free_port_config(stage="emb", mqtt=True)  # broker = "embedded"
    with StageHarness(config) as stage:
        wait_mqtt(stage)
        port = int(config.mqtt.embedded_bind.rsplit(":", 1)[1])
        found = asyncio.run(collect(port, "stagectl/emb/led-main/#", want=2))
        assert found["stagectl/emb/led-main/health"][-1][0]["state"] == "online"
        assert "brightness_nits" in found["stagectl/emb/led-main/state"][-1][0]
