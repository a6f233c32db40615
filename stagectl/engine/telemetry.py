"""Device health and state to MQTT (aiomqtt), for building-management and monitoring tools.

Topics (``<prefix>`` is ``stagectl`` by default)::

    <prefix>/<stage>/engine/online        "true"/"false", retained, last will "false"
    <prefix>/<stage>/<device>/health      {"state", "reason", "since"}, retained
    <prefix>/<stage>/<device>/state       the whole reported state (JSON), retained
    <prefix>/<stage>/<device>/event       {"message", "level", "t"}, not retained

With ``broker = "embedded"`` an in-process amqtt broker is started on ``embedded_bind``.
Telemetry never slows the engine: messages go through a bounded queue (oldest dropped and
counted), and a lost broker is retried with backoff while the stage runs on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from typing import Any

import aiomqtt

from drivers.transport import parse_address
from stagectl.bus import DEVICE_TOPIC_PREFIX, dumps
from stagectl.config import MqttSection

log = logging.getLogger(__name__)

QUEUE_LIMIT = 2000
STOP_WAIT_S = 1.5  # per step of stop(): the publisher, then the embedded broker
QUIET_LOGGERS = ("amqtt", "transitions")  # the broker's INFO chatter, unless --verbose


class EmbeddedBroker:
    """An amqtt broker in this process (the default when no broker is configured)."""

    def __init__(self, bind: str) -> None:
        self.bind = bind
        self._broker: Any = None

    async def start(self) -> None:
        """Start listening on ``bind``."""
        from amqtt.broker import Broker  # imported late: heavy, and only for embedded use

        for name in QUIET_LOGGERS:  # unless the CLI already chose (--verbose)
            if logging.getLogger(name).level == logging.NOTSET:
                logging.getLogger(name).setLevel(logging.WARNING)
        self._broker = Broker({
            "listeners": {"default": {"type": "tcp", "bind": self.bind}},
            "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin":
                        {"allow_anonymous": True}},
        })
        await self._broker.start()

    async def stop(self) -> None:
        """Shut the broker down."""
        if self._broker is not None:
            with contextlib.suppress(Exception):
                await self._broker.shutdown()
            self._broker = None


class MqttTelemetry:
    """Publishes engine state messages to MQTT."""

    def __init__(self, cfg: MqttSection, stage: str) -> None:
        self.cfg = cfg
        self.stage = stage
        self.counters: Counter[str] = Counter()
        self.connected = False
        self._queue: asyncio.Queue[tuple[str, bytes, bool]] = asyncio.Queue(QUEUE_LIMIT)
        self._state: dict[str, dict[str, Any]] = {}
        self._health: dict[str, dict[str, Any]] = {}
        self._broker: EmbeddedBroker | None = None
        self._task: asyncio.Task[None] | None = None
        if cfg.broker == "embedded":
            self.host, self.port = parse_address(cfg.embedded_bind)
        else:
            self.host, self.port = parse_address(cfg.broker)

    @property
    def idle(self) -> bool:
        """Connected with nothing left to publish."""
        return self.connected and self._queue.empty()

    def topic(self, device: str, leaf: str) -> str:
        """Full topic for a device leaf."""
        return f"{self.cfg.topic_prefix}/{self.stage}/{device}/{leaf}"

    def seed(self, devices: list[dict[str, Any]]) -> None:
        """Start from a full snapshot (engine status) so retained topics are complete."""
        for snap in devices:
            name = snap["name"]
            self._state[name] = dict(snap.get("state", {}))
            self._health[name] = {"state": snap.get("health"),
                                  "reason": snap.get("health_reason", "")}
            self._enqueue(self.topic(name, "state"), dumps(self._state[name]), True)
            self._enqueue(self.topic(name, "health"), dumps(self._health[name]), True)

    def on_state(self, topic: str, message: dict[str, Any]) -> None:
        """Engine listener: map one state message to MQTT publishes (never blocks)."""
        if not topic.startswith(DEVICE_TOPIC_PREFIX):
            return
        device = topic[len(DEVICE_TOPIC_PREFIX):]
        kind, data = message.get("type"), message.get("data", {})
        if kind == "delta":
            self._state.setdefault(device, {}).update(data)
            self._enqueue(self.topic(device, "state"), dumps(self._state[device]), True)
        elif kind == "health":
            self._health[device] = data
            self._enqueue(self.topic(device, "health"), dumps(data), True)
        elif kind == "event":
            self._enqueue(self.topic(device, "event"), dumps({**data, "t": message.get("t")}),
                          False)

    def _enqueue(self, topic: str, payload: bytes, retain: bool) -> None:
        if self._queue.full():
            with contextlib.suppress(asyncio.QueueEmpty):
                self._queue.get_nowait()
            self.counters["dropped"] += 1
        self._queue.put_nowait((topic, payload, retain))

    async def start(self) -> None:
        """Start the embedded broker if configured, then the publisher task."""
        if self.cfg.broker == "embedded":
            self._broker = EmbeddedBroker(self.cfg.embedded_bind)
            await self._broker.start()
        self._task = asyncio.create_task(self._run(), name="mqtt-telemetry")

    async def stop(self, drain_s: float = 1.0) -> None:
        """Flush what is queued (up to ``drain_s``), publish ``online=false``, stop."""
        deadline = asyncio.get_running_loop().time() + drain_s
        while self.connected and not self._queue.empty():
            if asyncio.get_running_loop().time() > deadline:
                break
            await asyncio.sleep(0.02)
        if self._task is not None:
            # the publisher's own goodbye is bounded (1 s), the client's disconnect is not
            # always: a broker that stopped answering must not hold the engine's exit.
            self._task.cancel()
            done, _ = await asyncio.wait({self._task}, timeout=STOP_WAIT_S)
            if not done:
                log.warning("MQTT publisher did not stop within %g s; leaving it", STOP_WAIT_S)
            self._task = None
        if self._broker is not None:
            try:
                await asyncio.wait_for(self._broker.stop(), STOP_WAIT_S)
            except TimeoutError:
                log.warning("embedded MQTT broker did not stop within %g s", STOP_WAIT_S)

    async def _run(self) -> None:
        online = f"{self.cfg.topic_prefix}/{self.stage}/engine/online"
        delay = 0.2
        while True:
            try:
                will = aiomqtt.Will(online, b"false", qos=1, retain=True)
                async with aiomqtt.Client(self.host, self.port, will=will,
                                          identifier=f"stagectl-{self.stage}",
                                          timeout=5) as client:
                    self.connected = True
                    delay = 0.2
                    await client.publish(online, b"true", qos=1, retain=True)
                    for name, state in self._state.items():
                        await client.publish(self.topic(name, "state"), dumps(state), qos=0,
                                             retain=True)
                    for name, health in self._health.items():
                        await client.publish(self.topic(name, "health"), dumps(health),
                                             qos=1, retain=True)
                    try:
                        while True:
                            topic, payload, retain = await self._queue.get()
                            await client.publish(topic, payload, qos=1 if retain else 0,
                                                 retain=retain)
                            self.counters["published"] += 1
                    finally:
                        with contextlib.suppress(Exception):
                            await asyncio.wait_for(
                                client.publish(online, b"false", qos=1, retain=True), 1.0)
            except aiomqtt.MqttError as exc:
                self.connected = False
                self.counters["connect_failures"] += 1
                log.warning("MQTT broker %s:%d: %s; retrying in %.1f s", self.host, self.port,
                            exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
