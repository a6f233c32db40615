"""Issue 13: retained MQTT topics never go backwards, and a crashed engine's payloads read stale.

Real mosquitto brokers (restarted mid-run, with and without persistence), real engines
(stopped and started again, one killed with SIGKILL), read by an aiomqtt subscriber and by
``mosquitto_sub`` as a third-party client. The rule checked is the one
``docs/protocols/mqtt.md`` gives consumers, not our publisher's internals.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from stagectl.client import ClientIdentity, EngineClient
from stagectl.config import MqttSection, StageConfig
from stagectl.engine import telemetry as telemetry_module
from stagectl.engine.telemetry import MqttTelemetry, is_live
from stagectl.harness import LoopThread, StageHarness, free_port_config
from tests.conftest import REPO, require_tool
from tests.core.test_mqtt import Mosquitto, stop_process

Message = tuple[str, bool, bytes]  # topic, retained flag, payload


def wait_until(check: Callable[[], bool], what: str, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def telemetry_of(stage: StageHarness) -> MqttTelemetry:
    assert stage.engine is not None and stage.engine.telemetry is not None
    return stage.engine.telemetry


def wait_idle(telemetry: MqttTelemetry, timeout_s: float = 10.0) -> None:
    wait_until(lambda: telemetry.idle, "the MQTT publisher to connect and drain", timeout_s)
    time.sleep(0.2)  # the last publish is in flight


class Recorder:
    """An aiomqtt subscriber that reconnects (backoff 0.1 s) and records every message."""

    def __init__(self, port: int, topic: str) -> None:
        self.port, self.topic = port, topic
        self.messages: list[Message] = []
        self.connects = 0
        self._loop = LoopThread("mqtt-recorder")

    def __enter__(self) -> Recorder:
        self._loop.submit(self._listen())
        wait_until(lambda: self.connects > 0, "the recorder to subscribe")
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.close()

    async def _listen(self) -> None:
        while True:
            try:
                async with aiomqtt.Client("127.0.0.1", self.port, timeout=2) as client:
                    await client.subscribe(self.topic, qos=1)
                    self.connects += 1
                    async for message in client.messages:
                        payload = message.payload
                        assert isinstance(payload, bytes)
                        self.messages.append((str(message.topic), bool(message.retain),
                                              payload))
            except aiomqtt.MqttError:
                await asyncio.sleep(0.1)


class MosquittoSub:
    """``mosquitto_sub`` (it reconnects by itself) writing ``retain topic payload`` lines."""

    def __init__(self, tmp_path: Path, port: int, topic: str) -> None:
        self.out = tmp_path / f"mosquitto_sub-{port}.txt"
        binary = require_tool("mosquitto_sub", ("/usr/bin",))
        self._file = self.out.open("wb")
        self.proc = subprocess.Popen([binary, "-h", "127.0.0.1", "-p", str(port), "-t", topic,
                                      "-q", "1", "-k", "5", "-F", "%r %t %p"],
                                     stdout=self._file, stderr=subprocess.DEVNULL)

    def __enter__(self) -> MosquittoSub:
        return self

    def __exit__(self, *exc: object) -> None:
        stop_process(self.proc)
        self._file.close()

    @property
    def messages(self) -> list[Message]:
        found = []
        for line in self.out.read_bytes().splitlines():
            retain, topic, payload = line.split(b" ", 2)
            found.append((topic.decode(), retain == b"1", payload))
        return found


def check_never_backwards(messages: list[Message], sessions: list[str]) -> dict[str, int]:
    """Assert the consumer's ordering rule over one subscriber's stream.

    Every device health/state payload names a known session; per topic, (session in start
    order, seq) never decreases, and an equal pair is the same payload. Within a session a
    health topic that was ``online`` is never ``not started`` again (the issue's symptom).

    Returns:
        Device payloads seen per session.
    """
    order = {session: i for i, session in enumerate(sessions)}
    last: dict[str, tuple[tuple[int, int], dict[str, Any]]] = {}
    online_in: set[tuple[str, str]] = set()
    per_session = dict.fromkeys(sessions, 0)
    for topic, _, payload in messages:
        leaf = topic.rsplit("/", 1)[1]
        if topic.split("/")[2] == "engine" or leaf not in ("health", "state"):
            continue
        body = json.loads(payload)
        meta = body["engine"]
        assert meta["session"] in order, f"{topic}: unknown session {meta}"
        key = (order[meta["session"]], meta["seq"])
        per_session[meta["session"]] += 1
        if topic in last:
            before, old = last[topic]
            assert key >= before, f"{topic} went backwards: {old} then {body}"
            if key == before:
                assert body == old, f"{topic}: one seq, two values: {old} / {body}"
        last[topic] = key, body
        if leaf == "health":
            if body["state"] == "online":
                online_in.add((topic, meta["session"]))
            elif (topic, meta["session"]) in online_in:
                assert body.get("reason") != "not started", f"{topic}: stale seed {body}"
    return per_session


def set_brightness(config: StageConfig, nits: float) -> None:
    with EngineClient(config, ClientIdentity("t", "operator")) as client:
        client.call("led.set", {"key": "brightness_nits", "value": nits})


def engine_run(config: StageConfig, broker: Mosquitto, recorder: Recorder, run: int) -> str:
    """Start an engine, restart the broker under it with changes queued, stop; its session."""
    with StageHarness(config) as stage:
        telemetry = telemetry_of(stage)
        wait_idle(telemetry)
        set_brightness(config, 400 + run)
        wait_idle(telemetry)
        connects = recorder.connects
        broker.stop()
        wait_until(lambda: not telemetry.connected, "the publisher to notice")
        for nits in (100, 200, 300):  # queued while the broker is away
            set_brightness(config, nits + run)
        broker.start()
        wait_idle(telemetry)
        wait_until(lambda: recorder.connects > connects, "the recorder to reconnect")
        set_brightness(config, 500 + run)
        wait_idle(telemetry)
        return telemetry.session


@pytest.mark.parametrize("persistence", [False, True], ids=["memory", "persistent"])
def test_retained_topics_never_go_backwards(tmp_path: Path, persistence: bool) -> None:
    broker = Mosquitto(tmp_path, persistence=persistence).start()
    config = free_port_config(stage="mono", mqtt=True, mqtt_broker=f"127.0.0.1:{broker.port}")
    try:
        with Recorder(broker.port, "stagectl/mono/#") as recorder, \
                MosquittoSub(tmp_path, broker.port, "stagectl/mono/#") as third_party:
            # the second run is an engine restart
            sessions = [engine_run(config, broker, recorder, run) for run in range(2)]
            assert len(set(sessions)) == 2, "each engine start is a new session"

            def saw_last_stop() -> bool:
                return any(t == "stagectl/mono/engine/status" and json.loads(p)["state"] ==
                           "offline" and json.loads(p)["session"] == sessions[1]
                           for t, _, p in recorder.messages)

            wait_until(saw_last_stop, "the second engine's clean-stop status")
            time.sleep(0.3)  # mosquitto_sub writes the same messages
        for name, messages in (("aiomqtt", recorder.messages),
                               ("mosquitto_sub", third_party.messages)):
            per_session = check_never_backwards(messages, sessions)
            assert all(per_session.values()), f"{name} saw both sessions: {per_session}"
        # the newest value reached the broker last: brightness after the restart, then 501
        states = [json.loads(p) for t, _, p in recorder.messages
                  if t == "stagectl/mono/led-main/state"]
        assert states[-1]["brightness_nits"] == 501
        first_run = [s for s in states if s["engine"]["session"] == sessions[0]]
        values = [s["brightness_nits"] for s in first_run if "brightness_nits" in s]
        # after 300 (the last while the broker was away) only 300 again and then 500
        after = values[values.index(300):]
        assert set(after) <= {300, 500} and after == sorted(after), values
    finally:
        broker.stop()


def retained(port: int, topic: str, want: set[str], timeout_s: float = 10.0
             ) -> dict[str, Any]:
    """The retained payloads under ``topic`` once every topic in ``want`` is there."""

    async def read() -> dict[str, Any]:
        found: dict[str, Any] = {}
        async with aiomqtt.Client("127.0.0.1", port) as client:
            await client.subscribe(topic, qos=1)
            async with asyncio.timeout(timeout_s):
                async for message in client.messages:
                    if message.retain:
                        payload = message.payload
                        assert isinstance(payload, bytes)
                        found[str(message.topic)] = (payload.decode() if payload in
                                                     (b"true", b"false") else json.loads(payload))
                    if want <= found.keys():
                        return found
        raise AssertionError("unreachable")

    return asyncio.run(read())


CHILD = """
import json, sys, time
from stagectl.config import parse_config
from stagectl.harness import StageHarness
stage = StageHarness(parse_config(json.loads(sys.argv[1]))).start()
telemetry = stage.engine.telemetry
while not telemetry.idle:
    time.sleep(0.05)
time.sleep(0.3)
print(telemetry.session, flush=True)
time.sleep(120)
"""


def test_killed_engine_leaves_payloads_that_read_stale(tmp_path: Path) -> None:
    broker = Mosquitto(tmp_path).start()
    config = free_port_config(stage="crash", mqtt=True, mqtt_broker=f"127.0.0.1:{broker.port}")
    base = "stagectl/crash"
    topics = {f"{base}/engine/status", f"{base}/engine/online", f"{base}/led-main/health"}
    child = subprocess.Popen([sys.executable, "-c", CHILD,
                              json.dumps(config.model_dump(mode="json"))],
                             cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        assert child.stdout is not None
        crashed = child.stdout.readline().decode().strip()
        assert crashed, "the engine process did not start"
        child.kill()  # no goodbye: only the broker's last wills say it is gone
        child.wait(5)

        def gone() -> bool:
            found = retained(broker.port, f"{base}/#", topics)
            return bool(found[f"{base}/engine/status"]["state"] == "offline")

        wait_until(gone, "the last will on engine/status")
        found = retained(broker.port, f"{base}/#", topics)
        status, health = found[f"{base}/engine/status"], found[f"{base}/led-main/health"]
        assert status == {"state": "offline", "reason": "lost", "session": crashed,
                          "started": status["started"]}
        assert found[f"{base}/engine/online"] == "false"
        assert health["state"] == "online"  # what the dead engine last said ...
        assert health["engine"]["session"] == crashed
        assert not is_live(health, status)  # ... which a consumer reads as stale
        with StageHarness(config) as stage:  # the engine is back: a new session, live again
            telemetry = telemetry_of(stage)
            assert telemetry.session != crashed
            wait_idle(telemetry)
            wait_until(lambda: retained(broker.port, f"{base}/#", topics)[
                f"{base}/engine/online"] == "true", "engine/online true again")
            found = retained(broker.port, f"{base}/#", topics)
            status, health = found[f"{base}/engine/status"], found[f"{base}/led-main/health"]
            assert status["state"] == "online" and status["session"] == telemetry.session
            assert health["engine"]["session"] == telemetry.session
            assert is_live(health, status)
    finally:
        child.kill()
        child.wait(5)
        if child.stdout:
            child.stdout.close()
        broker.stop()


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    made = Mosquitto(tmp_path)
    try:
        yield made
    finally:
        made.stop()


def test_values_queued_before_connect_never_follow_the_snapshot(
        broker: Mosquitto, monkeypatch: pytest.MonkeyPatch) -> None:
    """The issue's sequence without an engine: seed, changes, then the broker appears."""
    limit = 20
    monkeypatch.setattr(telemetry_module, "QUEUE_LIMIT", limit)
    telemetry = MqttTelemetry(MqttSection(broker=f"127.0.0.1:{broker.port}"), "seed")
    telemetry.seed([{"name": "wall", "health": "offline", "health_reason": "not started",
                     "state": {}}])
    for seq, nits in enumerate((100, 200, 300), start=1):
        telemetry.on_state("device.wall", {"type": "delta", "seq": seq, "t": 1.0 + seq,
                                           "data": {"brightness_nits": nits}})
    telemetry.on_state("device.wall", {"type": "health", "seq": 4, "t": 5.0,
                                       "data": {"state": "online", "reason": "", "since": 5.0}})
    for i in range(limit + 50):  # more events than the queue holds
        telemetry.on_state("device.wall", {"type": "event", "seq": 5 + i, "t": 6.0,
                                           "data": {"message": f"e{i}", "level": "info"}})
    broker.start()
    seen: list[Message] = []

    async def run() -> None:
        async with aiomqtt.Client("127.0.0.1", broker.port) as client:
            await client.subscribe("stagectl/seed/#", qos=1)
            await telemetry.start()
            try:
                async with asyncio.timeout(10):
                    async for message in client.messages:
                        assert isinstance(message.payload, bytes)
                        seen.append((str(message.topic), bool(message.retain),
                                     message.payload))
                        if message.topic.matches("+/+/+/event") and json.loads(
                                message.payload)["message"] == f"e{limit + 49}":
                            break
            finally:
                await telemetry.stop()

    asyncio.run(run())
    health = [json.loads(p) for t, _, p in seen if t == "stagectl/seed/wall/health"]
    state = [json.loads(p) for t, _, p in seen if t == "stagectl/seed/wall/state"]
    assert [h["state"] for h in health] == ["online"], health  # never "not started" after it
    assert [s["brightness_nits"] for s in state] == [300], state
    assert state[0]["engine"] == {"session": telemetry.session, "seq": 3, "t": 4.0}
    events = [json.loads(p)["message"] for t, _, p in seen if t.endswith("/event")]
    assert events == [f"e{i}" for i in range(50, limit + 50)]  # the oldest 50 dropped
    assert telemetry.counters["dropped"] == 50
    check_never_backwards(seen, [telemetry.session])


def test_a_publisher_that_never_reaches_a_broker_backs_off_and_stops(
        broker: Mosquitto) -> None:
    """No broker (the port is free): the stage runs on, retries are spaced, stop is bounded."""
    telemetry = MqttTelemetry(MqttSection(broker=f"127.0.0.1:{broker.port}"), "none")

    async def run() -> None:
        await telemetry.start()
        for seq in range(1, 20):
            telemetry.on_state("device.wall", {"type": "health", "seq": seq, "t": 1.0,
                                               "data": {"state": "online", "reason": ""}})
            telemetry.on_state("device.wall", {"type": "delta", "data": "not a dict"})
        await asyncio.sleep(1.5)
        await telemetry.stop()

    asyncio.run(run())
    failures = telemetry.counters["connect_failures"]
    # two connections; 0.2 + 0.4 + 0.8 s (+-20 %) fit at most four tries each in 1.5 s
    assert 2 <= failures <= 8, failures
    assert telemetry.counters["bad_messages"] == 19
    assert not telemetry.connected


def test_a_frozen_broker_holds_nothing_and_ends_with_the_newest_values(
        broker: Mosquitto) -> None:
    """SIGSTOP the broker: the engine answers, the publisher gives up and, resumed, catches up."""
    broker.start()
    assert broker.proc is not None
    config = free_port_config(stage="frozen", mqtt=True, mqtt_broker=f"127.0.0.1:{broker.port}")
    base = "stagectl/frozen"
    topics = {f"{base}/engine/status", f"{base}/led-main/state", f"{base}/led-main/health"}
    with StageHarness(config) as stage:
        telemetry = telemetry_of(stage)
        wait_idle(telemetry)
        broker.proc.send_signal(signal.SIGSTOP)
        try:
            set_brightness(config, 250)  # answered: nothing in the engine waits for MQTT
            # a publish times out (5 s) or the keepalive (10 s) does
            wait_until(lambda: not telemetry.connected, "the publisher to give up", 40)
            set_brightness(config, 260)
        finally:
            broker.proc.send_signal(signal.SIGCONT)
        wait_idle(telemetry, 30)
        found = retained(broker.port, f"{base}/#", topics)
        status, state = found[f"{base}/engine/status"], found[f"{base}/led-main/state"]
        assert state["brightness_nits"] == 260
        assert is_live(state, status) and is_live(found[f"{base}/led-main/health"], status)
        assert telemetry.counters["connect_failures"] >= 1
