"""Device health and state to MQTT (aiomqtt), for building-management and monitoring tools.

Topics (``<prefix>`` is ``stagectl`` by default; ``docs/protocols/mqtt.md`` is the contract)::

    <prefix>/<stage>/engine/online        "true"/"false", retained, last will "false"
    <prefix>/<stage>/engine/status        {"state", "session", "started", ...}, retained,
                                          last will {"state": "offline", "session", ...}
    <prefix>/<stage>/<device>/health      {"state", "reason", "since", "engine"}, retained
    <prefix>/<stage>/<device>/state       the whole reported state + "engine", retained
    <prefix>/<stage>/<device>/event       {"message", "level", "t", "engine"}, not retained

``"engine"`` in every device payload is ``{"session", "seq", "t"}``: the engine run that
published it, the engine's state sequence number of the value, and when it was produced. A
payload is live only while its session is the one ``engine/status`` names as ``online``.

A retained topic never goes backwards (decision 0056): the publisher keeps only the newest
value of each retained topic and a queue of which topics changed; on every (re)connect it
publishes the newest value of every topic (the snapshot) and afterwards nothing whose ``seq``
is not newer than what that topic last got. Events are queued in order, bounded (oldest
dropped and counted). A lost broker is retried with backoff while the stage runs on; telemetry
never slows the engine.

With ``broker = "embedded"`` an in-process amqtt broker is started on ``embedded_bind``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import uuid
from collections import Counter, deque
from dataclasses import dataclass
from typing import Any

import aiomqtt

from drivers.transport import parse_address
from stagectl.bus import DEVICE_TOPIC_PREFIX, dumps
from stagectl.config import MqttSection

log = logging.getLogger(__name__)

QUEUE_LIMIT = 2000  # queued events; retained topics are coalesced (one entry each at most)
STOP_WAIT_S = 1.5  # per step of stop(): the publishers, then the embedded broker
GOODBYE_S = 1.0  # the clean-stop "offline" publishes
KEEPALIVE_S = 10  # a hung or vanished engine's last will fires within 1.5 x this
BACKOFF_MIN_S = 0.2
BACKOFF_MAX_S = 5.0
QUIET_LOGGERS = ("amqtt", "transitions")  # the broker's INFO chatter, unless --verbose


def is_live(payload: dict[str, Any], status: dict[str, Any] | None) -> bool:
    """Whether a retained device payload describes the stage now (the consumer's rule).

    Args:
        payload: a decoded ``<device>/health``, ``<device>/state`` or ``<device>/event``
            payload.
        status: the decoded retained ``engine/status`` payload (None if none was seen).

    Returns:
        True when the engine named in ``payload`` is the one ``engine/status`` says is online.
    """
    meta = payload.get("engine")
    if not isinstance(meta, dict) or not isinstance(status, dict):
        return False
    return status.get("state") == "online" and meta.get("session") == status.get("session")


def backoff(delay_s: float) -> float:
    """The next reconnect delay after ``delay_s``: doubled, capped, with +-20 % jitter."""
    nominal = min(max(delay_s, BACKOFF_MIN_S) * 2, BACKOFF_MAX_S)
    return nominal * random.uniform(0.8, 1.2)


@dataclass
class _Value:
    """The newest value of one retained topic."""

    body: dict[str, Any]
    seq: int
    t: float


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
    """Publishes engine state messages to MQTT.

    Args:
        cfg: the ``[mqtt]`` section.
        stage: the stage name (second topic level).
        session: this engine run's id; a fresh random one by default (one per engine start).
    """

    def __init__(self, cfg: MqttSection, stage: str, session: str | None = None) -> None:
        self.cfg = cfg
        self.stage = stage
        self.session = session or uuid.uuid4().hex
        self.started = time.time()
        self.counters: Counter[str] = Counter()
        self.connected = False
        self._latest: dict[str, _Value] = {}  # retained topic -> newest value
        self._sent: dict[str, int] = {}  # retained topic -> seq last published to the broker
        # FIFO of ("retained", topic, None) markers (one per changed topic) and
        # ("event", topic, payload); a marker publishes the topic's newest value when reached
        self._queue: deque[tuple[str, str, bytes | None]] = deque()
        self._marked: set[str] = set()
        self._events = 0
        self._wake = asyncio.Event()
        self._last_seq = 0
        self._state: dict[str, dict[str, Any]] = {}
        self._broker: EmbeddedBroker | None = None
        self._tasks: list[asyncio.Task[None]] = []
        if cfg.broker == "embedded":
            self.host, self.port = parse_address(cfg.embedded_bind)
        else:
            self.host, self.port = parse_address(cfg.broker)
        base = f"{cfg.topic_prefix}/{stage}/engine"
        self.online_topic = f"{base}/online"
        self.status_topic = f"{base}/status"

    @property
    def idle(self) -> bool:
        """Connected with nothing left to publish."""
        return self.connected and not self._queue

    def topic(self, device: str, leaf: str) -> str:
        """Full topic for a device leaf."""
        return f"{self.cfg.topic_prefix}/{self.stage}/{device}/{leaf}"

    def status(self, state: str, reason: str = "") -> dict[str, Any]:
        """The ``engine/status`` payload for ``state`` (``online`` or ``offline``)."""
        body: dict[str, Any] = {"state": state, "session": self.session,
                                "started": self.started}
        if reason:
            body["reason"] = reason
        return body

    def seed(self, devices: list[dict[str, Any]]) -> None:
        """Start from a full snapshot (engine status) so retained topics are complete.

        Args:
            devices: device snapshots (``Device.snapshot()``), taken before any state message
                of this engine run: they get the run's current ``seq`` (0 at start).
        """
        t = time.time()
        for snap in devices:
            name = snap["name"]
            self._state[name] = dict(snap.get("state", {}))
            self._retain(self.topic(name, "state"), dict(self._state[name]), self._last_seq, t)
            self._retain(self.topic(name, "health"),
                         {"state": snap.get("health"), "reason": snap.get("health_reason", "")},
                         self._last_seq, t)

    def on_state(self, topic: str, message: dict[str, Any]) -> None:
        """Engine listener: map one state message to MQTT publishes (never blocks)."""
        if not topic.startswith(DEVICE_TOPIC_PREFIX):
            return
        device = topic[len(DEVICE_TOPIC_PREFIX):]
        kind, data = message.get("type"), message.get("data", {})
        seq = message.get("seq")
        if not isinstance(seq, int) or isinstance(seq, bool) or seq <= self._last_seq:
            seq = self._last_seq + 1  # the engine's seq always rises; anything else is ours
        t = message.get("t")
        if not isinstance(t, (int, float)) or isinstance(t, bool):
            t = time.time()
        if not isinstance(data, dict):
            self.counters["bad_messages"] += 1
            return
        self._last_seq = seq
        if kind == "delta":
            state = self._state.setdefault(device, {})
            state.update(data)
            self._retain(self.topic(device, "state"), dict(state), seq, t)
        elif kind == "health":
            self._retain(self.topic(device, "health"), dict(data), seq, t)
        elif kind == "event":
            body = {**data, "t": message.get("t"), "engine": self._meta(seq, t)}
            try:
                payload = dumps(body)
            except (TypeError, ValueError):
                self.counters["bad_messages"] += 1
                return
            self._push_event(self.topic(device, "event"), payload)

    def _meta(self, seq: int, t: float) -> dict[str, Any]:
        return {"session": self.session, "seq": seq, "t": t}

    def _retain(self, topic: str, body: dict[str, Any], seq: int, t: float) -> None:
        self._latest[topic] = _Value(body, seq, t)
        if topic not in self._marked:  # its marker, still queued, will publish this value
            self._marked.add(topic)
            self._queue.append(("retained", topic, None))
        self._wake.set()

    def _push_event(self, topic: str, payload: bytes) -> None:
        if self._events >= QUEUE_LIMIT:
            for i, (kind, _, _) in enumerate(self._queue):
                if kind == "event":
                    del self._queue[i]
                    self._events -= 1
                    break
            self.counters["dropped"] += 1
        self._queue.append(("event", topic, payload))
        self._events += 1
        self._wake.set()

    def _encode(self, topic: str) -> tuple[bytes, int] | None:
        value = self._latest[topic]
        try:
            return dumps({**value.body, "engine": self._meta(value.seq, value.t)}), value.seq
        except (TypeError, ValueError):
            self.counters["bad_messages"] += 1
            return None

    async def start(self) -> None:
        """Start the embedded broker if configured, then the publisher tasks."""
        if self.cfg.broker == "embedded":
            self._broker = EmbeddedBroker(self.cfg.embedded_bind)
            await self._broker.start()
        self._tasks = [asyncio.create_task(self._run(), name="mqtt-telemetry"),
                       asyncio.create_task(self._hold_online(), name="mqtt-online")]

    async def stop(self, drain_s: float = 1.0) -> None:
        """Flush what is queued (up to ``drain_s``), publish ``offline``, stop."""
        deadline = asyncio.get_running_loop().time() + drain_s
        while self.connected and self._queue:
            if asyncio.get_running_loop().time() > deadline:
                break
            await asyncio.sleep(0.02)
        if self._tasks:
            # the publishers' own goodbyes are bounded (1 s), the client's disconnect is not
            # always: a broker that stopped answering must not hold the engine's exit.
            for task in self._tasks:
                task.cancel()
            _, pending = await asyncio.wait(self._tasks, timeout=STOP_WAIT_S)
            if pending:
                log.warning("MQTT publisher did not stop within %g s; leaving it", STOP_WAIT_S)
            self._tasks = []
        if self._broker is not None:
            try:
                await asyncio.wait_for(self._broker.stop(), STOP_WAIT_S)
            except TimeoutError:
                log.warning("embedded MQTT broker did not stop within %g s", STOP_WAIT_S)

    def _client(self, identifier: str, will_topic: str, will: bytes) -> aiomqtt.Client:
        return aiomqtt.Client(self.host, self.port, identifier=identifier, timeout=5,
                              keepalive=KEEPALIVE_S,
                              will=aiomqtt.Will(will_topic, will, qos=1, retain=True))

    async def _run(self) -> None:
        """The publisher connection; its last will is ``engine/status`` offline."""
        delay = BACKOFF_MIN_S
        will = dumps(self.status("offline", "lost"))
        while True:
            try:
                async with self._client(f"stagectl-{self.stage}", self.status_topic,
                                        will) as client:
                    watch = asyncio.create_task(_until_disconnected(client))
                    try:
                        await client.publish(self.status_topic, dumps(self.status("online")),
                                             qos=1, retain=True)
                        await self._snapshot(client)
                        self.connected = True
                        delay = BACKOFF_MIN_S
                        await self._pump(client, watch)
                    except asyncio.CancelledError:  # stop(): say so, then disconnect cleanly
                        with contextlib.suppress(Exception):
                            await asyncio.wait_for(client.publish(
                                self.status_topic, dumps(self.status("offline", "stopped")),
                                qos=1, retain=True), GOODBYE_S)
                        raise
                    finally:
                        self.connected = False
                        watch.cancel()
                        if watch.done() and not watch.cancelled():
                            watch.exception()  # retrieved: the pump's error is the one raised
            except aiomqtt.MqttError as exc:
                delay = await self._retry("publisher", exc, delay)

    async def _hold_online(self) -> None:
        """A second connection holding ``engine/online`` (its own last will "false").

        MQTT gives one will per connection; ``engine/online`` (the older contract) and
        ``engine/status`` (naming the session) each need theirs.
        """
        delay = BACKOFF_MIN_S
        while True:
            try:
                async with self._client(f"stagectl-{self.stage}-online", self.online_topic,
                                        b"false") as client:
                    await client.publish(self.online_topic, b"true", qos=1, retain=True)
                    delay = BACKOFF_MIN_S
                    try:
                        await _until_disconnected(client)
                    except asyncio.CancelledError:
                        with contextlib.suppress(Exception):
                            await asyncio.wait_for(client.publish(
                                self.online_topic, b"false", qos=1, retain=True), GOODBYE_S)
                        raise
            except aiomqtt.MqttError as exc:
                delay = await self._retry("online", exc, delay)

    async def _retry(self, which: str, exc: Exception, delay: float) -> float:
        self.counters["connect_failures"] += 1
        log.warning("MQTT broker %s:%d (%s): %s; retrying in %.1f s", self.host, self.port,
                    which, exc, delay)
        await asyncio.sleep(delay)
        return backoff(delay)

    async def _snapshot(self, client: aiomqtt.Client) -> None:
        """Publish the newest value of every retained topic (a broker may have lost them)."""
        for topic in list(self._latest):
            encoded = self._encode(topic)
            if encoded is None:
                continue
            payload, seq = encoded
            await client.publish(topic, payload, qos=1, retain=True)
            self._sent[topic] = seq
            self.counters["published"] += 1

    async def _pump(self, client: aiomqtt.Client, watch: asyncio.Task[None]) -> None:
        """Publish queued entries in order until the connection drops (MqttError)."""
        while True:
            if not self._queue:
                self._wake.clear()
                waiter = asyncio.create_task(self._wake.wait())
                try:
                    await asyncio.wait({waiter, watch}, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    waiter.cancel()
                if watch.done():
                    watch.result()  # raises the MqttError of the lost connection
                continue
            kind, topic, payload = self._queue.popleft()
            if kind == "event":
                assert payload is not None
                self._events -= 1
                try:
                    await client.publish(topic, payload, qos=0, retain=False)
                except BaseException:
                    self._queue.appendleft((kind, topic, payload))  # not sent: still first
                    self._events += 1
                    raise
                self.counters["published"] += 1
                continue
            self._marked.discard(topic)  # before the await: a change meanwhile queues anew
            encoded = self._encode(topic)
            if encoded is None:
                continue
            if encoded[1] <= self._sent.get(topic, -1):
                # the snapshot (or an earlier marker) already gave the broker this value
                self.counters["skipped_not_newer"] += 1
                continue
            try:
                await client.publish(topic, encoded[0], qos=1, retain=True)
            except BaseException:
                if topic not in self._marked:  # not sent: keep its place in the queue
                    self._marked.add(topic)
                    self._queue.appendleft(("retained", topic, None))
                raise
            self._sent[topic] = encoded[1]
            self.counters["published"] += 1


async def _until_disconnected(client: aiomqtt.Client) -> None:
    """Return never; raise MqttError when ``client`` loses its connection."""
    try:
        async for _ in client.messages:  # nothing is subscribed: this only waits
            pass
    except aiomqtt.MqttError as exc:
        raise aiomqtt.MqttError(f"connection lost ({exc.__cause__ or exc})") from exc
