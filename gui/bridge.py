"""The console's only link to the engine: a listener thread that turns messages into signals.

The pattern is pymeasure's ``display/listeners.py``: one ``QThread`` owns the ZeroMQ sockets
(a SUB on the state stream and a DEALER for commands; ZeroMQ sockets must stay on the thread
that made them), polls both with a short timeout and re-emits what arrives as Qt signals.
The GUI thread never touches a socket and never waits: :meth:`EngineBridge.command` puts the
request on a thread-safe queue that the listener drains between polls, and the reply comes
back later as :attr:`EngineBridge.command_succeeded` or :attr:`EngineBridge.command_failed`.

A request with no reply within ``reply_timeout_s`` is reported as failed and the DEALER is
rebuilt (the "lazy pirate" pattern), so a command queued while the engine is away is dropped
rather than delivered minutes later to a wall that has moved on.

Liveness and gaps follow ``docs/protocols/console-state.md``: the engine is live while any
message (state, heartbeat or reply) was heard within :data:`LIVE_TIMEOUT_S`; every state
message carries ``seq``, and a gap or a ``seq`` going back (the engine restarted) makes the
listener fetch the full picture again (:data:`REFRESH_CMDS`), as it does at start and on
every reconnect.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import zmq
from PySide6.QtCore import QObject, QThread, Signal

from stagectl import bus
from stagectl.client import ClientIdentity, EngineClient, EngineError, StateSubscriber, unwrap
from stagectl.config import StageConfig

log = logging.getLogger(__name__)

POLL_MS = 50
RESYNC_S = 5.0
LIVE_TIMEOUT_S = 0.75  # three engine heartbeats (stagectl.engine.engine.HEARTBEAT_S = 0.25)
HEARTBEAT_TIMEOUT_S = LIVE_TIMEOUT_S  # the old name of the same limit
REPLY_TIMEOUT_S = 3.0
STATUS_CMD = "status"
SAFETY_STATUS_CMD = "safety.status"
CONTROLS_CMD = "controls"
CUE_LIST_CMD = "cue.list"
REFRESH_CMDS: tuple[str, ...] = (STATUS_CMD, SAFETY_STATUS_CMD, CONTROLS_CMD, CUE_LIST_CMD)
SAFETY_TOPIC = "stage.safety"  # stagectl.engine.safety.SAFETY_TOPIC
CUES_TOPIC = "stage.cues"  # stagectl.engine.cues.CUES_TOPIC
CONTROLS_TOPIC = "stage.controls"
# A snapshot reply older (by ``seq``) than the last message on its topic is not applied.
SNAPSHOT_TOPICS = {SAFETY_STATUS_CMD: SAFETY_TOPIC, CONTROLS_CMD: CONTROLS_TOPIC,
                   CUE_LIST_CMD: CUES_TOPIC}


@dataclass(frozen=True, slots=True)
class _Pending:
    """A request sent to the engine and not yet answered."""

    cmd: str
    sent_at: float
    quiet: bool = False  # a refresh the listener asked for itself: a timeout is not reported


class _Listener(QThread):
    """The thread that owns the sockets; signals are emitted from it (queued to the GUI)."""

    status_received = Signal(dict)
    device_delta = Signal(str, dict)
    desired_changed = Signal(str, dict)
    health_changed = Signal(str, dict)
    event_received = Signal(str, dict)
    command_succeeded = Signal(str, object)
    command_failed = Signal(str, str)
    command_error = Signal(str, dict)
    connection_changed = Signal(bool)
    tracking_samples = Signal(str, list)
    safety_changed = Signal(dict)
    controls_changed = Signal(dict)
    cues_changed = Signal(dict)

    def __init__(self, config: StageConfig, identity: ClientIdentity, base_dir: Path | None,
                 poll_ms: int, resync_s: float, heartbeat_timeout_s: float,
                 reply_timeout_s: float) -> None:
        super().__init__()
        self.setObjectName("stagectl-console-listener")
        self._config = config
        self._identity = identity
        self._base_dir = base_dir
        self._poll_ms = poll_ms
        self._resync_s = resync_s
        self._heartbeat_timeout_s = heartbeat_timeout_s
        self._reply_timeout_s = reply_timeout_s
        self._requests: queue.SimpleQueue[tuple[str, dict[str, Any]]] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._refresh = threading.Event()  # set: fetch every snapshot at the next poll
        self._samples: dict[str, list[dict[str, Any]]] = {}
        self._last_seq: int | None = None
        self._topic_seq: dict[str, int] = {}  # seq of the last message applied, per topic
        self.gaps = 0

    def submit(self, cmd: str, args: dict[str, Any]) -> None:
        """Queue a request (any thread)."""
        self._requests.put((cmd, args))

    def request_stop(self) -> None:
        """Ask the loop to end after its current poll (any thread)."""
        self._stop.set()

    def request_refresh(self) -> None:
        """Fetch every snapshot (:data:`REFRESH_CMDS`) at the next poll (any thread)."""
        self._refresh.set()

    # ---- the listener thread ----------------------------------------------------------

    def run(self) -> None:
        """Poll the state and command sockets until asked to stop; always closes them."""
        ctx: zmq.Context[Any] = zmq.Context()
        sub: StateSubscriber | None = None
        client: EngineClient | None = None
        pending: dict[str, _Pending] = {}
        connected = False
        last_heard = 0.0
        next_resync = 0.0  # status at once; the full refresh follows when the engine is heard
        try:
            sub = StateSubscriber(self._config, base_dir=self._base_dir, context=ctx)
            client = self._new_client(ctx)
            poller = zmq.Poller()
            poller.register(sub.socket, zmq.POLLIN)
            poller.register(client.socket, zmq.POLLIN)
            while not self._stop.is_set():
                now = time.monotonic()
                if self._refresh.is_set():
                    self._refresh.clear()
                    waiting = {p.cmd for p in pending.values()}
                    for cmd in REFRESH_CMDS:
                        if cmd not in waiting:
                            self._send(client, cmd, {}, pending, quiet=True)
                    next_resync = now + self._resync_s
                elif now >= next_resync:
                    if not any(p.cmd == STATUS_CMD for p in pending.values()):
                        self._send(client, STATUS_CMD, {}, pending, quiet=True)
                    next_resync = now + self._resync_s
                while True:
                    try:
                        cmd, args = self._requests.get_nowait()
                    except queue.Empty:
                        break
                    self._send(client, cmd, args, pending)

                ready = dict(poller.poll(self._poll_ms))
                heard = sub.socket in ready and self._drain_state(sub)
                if client.socket in ready and self._drain_replies(client, pending):
                    heard = True
                if heard:
                    last_heard = time.monotonic()

                now = time.monotonic()
                alive = last_heard > 0 and now - last_heard < self._heartbeat_timeout_s
                if alive != connected:
                    connected = alive
                    self.connection_changed.emit(alive)
                    if alive:  # whatever we missed while away, asked again on a live link
                        for rid in [r for r, p in pending.items() if p.quiet]:
                            del pending[rid]
                        self._refresh.set()
                if self._expire(pending, now):
                    poller.unregister(client.socket)
                    client.close()
                    client = self._new_client(ctx)
                    poller.register(client.socket, zmq.POLLIN)
        except Exception as exc:  # a dead listener must say so, not vanish
            log.exception("console listener stopped on an error")
            self._fail("listener", "listener", f"the console's engine listener stopped: "
                       f"{type(exc).__name__}: {exc}; restart the console",
                       error=f"{type(exc).__name__}: {exc}")
        finally:
            for sock in (client, sub):
                if sock is not None:
                    sock.close()
            ctx.term()
            if connected:
                self.connection_changed.emit(False)

    def _new_client(self, ctx: zmq.Context[Any]) -> EngineClient:
        return EngineClient(self._config, self._identity, timeout_s=self._reply_timeout_s,
                            base_dir=self._base_dir, context=ctx)

    def _fail(self, cmd: str, code: str, message: str, **details: Any) -> None:
        """Report a failed command both ways: the error object, then the sentence.

        In that order, so whoever waits for ``command_failed`` finds the window has already
        rendered ``command_error`` (queued signals arrive in the order sent).
        """
        self.command_error.emit(cmd, {"code": code, "message": message, **details})
        self.command_failed.emit(cmd, message)

    def _send(self, client: EngineClient, cmd: str, args: dict[str, Any],
              pending: dict[str, _Pending], quiet: bool = False) -> None:
        try:
            rid = client.send(cmd, args)
        except (zmq.ZMQError, TypeError, ValueError) as exc:
            self._fail(cmd, "not_sent", f"{cmd} not sent: {exc}", error=str(exc))
            return
        pending[rid] = _Pending(cmd, time.monotonic(), quiet)

    def _drain_state(self, sub: StateSubscriber) -> bool:
        """Re-emit every queued state message; True if the engine was heard from."""
        heard = False
        while True:
            try:
                topic_b, payload = sub.socket.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                for source, batch in self._samples.items():  # one signal per source per poll
                    self.tracking_samples.emit(source, batch)
                self._samples = {}
                return heard
            heard = True
            try:
                message = bus_json(payload)
            except ValueError:
                log.warning("state message on %r is not JSON; ignored", topic_b[:64])
                continue
            self.dispatch(topic_b.decode(errors="replace"), message)

    def note_seq(self, seq: object) -> bool:
        """Follow the engine's message counter; True (and a refresh requested) on a gap.

        A ``seq`` that is not the last one plus one means messages were missed, or (lower)
        that the engine restarted; either way the snapshots are fetched again.
        """
        if not isinstance(seq, int) or isinstance(seq, bool):
            return False
        last, self._last_seq = self._last_seq, seq
        if last is None or seq == last + 1:
            return False
        self.gaps += 1
        log.info("state stream gap: seq %d after %d; full refresh", seq, last)
        self._refresh.set()
        return True

    def _older_than_applied(self, cmd: str, seq: object) -> bool:
        """Whether a snapshot reply predates the last state message applied for its topic."""
        topic = SNAPSHOT_TOPICS.get(cmd)
        if topic is None or not isinstance(seq, int) or isinstance(seq, bool):
            return False
        applied = self._topic_seq.get(topic)
        return applied is not None and seq < applied

    def dispatch(self, topic: str, message: dict[str, Any]) -> None:
        """Turn one state message into signals (the listener thread; tests may call it)."""
        seq = message.get("seq")
        if self.note_seq(seq) and isinstance(self._last_seq, int) and any(
                s > self._last_seq for s in self._topic_seq.values()):
            self._topic_seq.clear()  # the engine restarted: its counter began again
        if topic in SNAPSHOT_TOPICS.values() and isinstance(seq, int):
            self._topic_seq[topic] = seq
        kind = message.get("type")
        data = message.get("data")
        if not isinstance(data, dict):
            data = {}
        if topic.startswith(bus.DEVICE_TOPIC_PREFIX):
            source = str(message.get("device") or topic[len(bus.DEVICE_TOPIC_PREFIX):])
        else:
            source = topic
        if kind == "sample":
            self._samples.setdefault(str(message.get("device")), []).append(data)
        elif topic == SAFETY_TOPIC:
            if kind == "delta":
                self.safety_changed.emit(data)
        elif topic == CONTROLS_TOPIC:
            if kind == "controls":
                self.controls_changed.emit(data)
        elif topic == CUES_TOPIC:
            if kind == "cues":
                self.cues_changed.emit(data)
            elif kind == "delta":  # an engine that only says "changed": ask for the list
                self.submit(CUE_LIST_CMD, {})
        elif kind == "delta":
            self.device_delta.emit(source, data)
        elif kind == "desired":
            self.desired_changed.emit(source, data)
        elif kind == "health":
            self.health_changed.emit(source, data)
        elif kind == "event":
            self.event_received.emit(source, {**data, "t": message.get("t")})
        # heartbeats only prove the engine is alive

    def _drain_replies(self, client: EngineClient, pending: dict[str, _Pending]) -> bool:
        heard = False
        while True:
            try:
                payload = client.socket.recv(zmq.NOBLOCK)
            except zmq.Again:
                return heard
            heard = True
            try:
                reply = bus_json(payload)
            except ValueError:
                log.warning("engine reply is not JSON; ignored")
                continue
            request = pending.pop(str(reply.get("id")), None)
            if request is None:
                continue  # a late reply to a request already reported as timed out
            try:
                result = unwrap(reply)
            except EngineError as exc:  # the message says what and why
                if request.quiet:  # a refresh the engine does not offer: nothing to tell
                    log.info("refresh %s refused: %s", request.cmd, exc)
                else:
                    self._fail(request.cmd, exc.code, str(exc), **exc.details)
                continue
            if request.cmd == STATUS_CMD and isinstance(result, dict):
                self.status_received.emit(result)
                continue
            if self._older_than_applied(request.cmd, reply.get("seq")):
                log.debug("%s reply older than the last %s message; ignored", request.cmd,
                          SNAPSHOT_TOPICS[request.cmd])
            elif isinstance(result, dict):
                if request.cmd == CONTROLS_CMD:
                    self.controls_changed.emit(result)
                elif request.cmd == CUE_LIST_CMD:
                    self.cues_changed.emit(result)
                elif request.cmd.startswith("safety.") and "armed" in result:
                    self.safety_changed.emit(result)
            if not request.quiet:
                self.command_succeeded.emit(request.cmd, result)

    def _expire(self, pending: dict[str, _Pending], now: float) -> bool:
        """Report requests past their timeout; True if any (the DEALER is then rebuilt)."""
        late = [rid for rid, p in pending.items() if now - p.sent_at > self._reply_timeout_s]
        for rid in late:
            request = pending.pop(rid)
            if request.quiet and request.cmd in REFRESH_CMDS:
                self._refresh.set()  # retried on the new DEALER
            if not request.quiet:  # refreshes are retried; the status bar says the rest
                self._fail(request.cmd, "timeout",
                           f"no reply from the engine at {self._config.engine.command} "
                           f"within {self._reply_timeout_s:g} s; the command was dropped",
                           address=self._config.engine.command,
                           timeout_s=self._reply_timeout_s)
        return bool(late)


def bus_json(payload: bytes) -> dict[str, Any]:
    """Decode one JSON object from the wire.

    Raises:
        ValueError: not UTF-8 JSON, or not an object.
    """
    obj = json.loads(payload)
    if not isinstance(obj, dict):
        raise ValueError("expected a JSON object")
    return obj


class EngineBridge(QObject):
    """The console's engine connection: call from the GUI thread, listen to the signals.

    Args:
        config: the stage whose engine to reach.
        identity: user and role to declare (default: from the environment).
        base_dir: where the config's keys dir is resolved (CURVE only).
        poll_ms: listener poll timeout.
        resync_s: how often a full ``status`` is requested.
        heartbeat_timeout_s: silence after which the engine is no longer live
            (:data:`LIVE_TIMEOUT_S`).
        reply_timeout_s: how long a command may wait for its reply.

    Signals:
        status_received(dict): a full ``status`` result (on start, every ``resync_s``, after
            a reconnect or a gap in ``seq``).
        device_delta(str, dict): device name, reported keys that changed.
        desired_changed(str, dict): device name, desired keys that changed.
        health_changed(str, dict): device name, ``{"state", "reason", "since"}``.
        event_received(str, dict): device name or ``engine``, ``{"message", "level", "t"}``.
        command_succeeded(str, object): command name, its result.
        command_failed(str, str): command name, the engine's message.
        command_error(str, dict): command name, the reply's error object ``{code, message,
            ...details}`` (beside ``command_failed``); code ``timeout`` when no reply came,
            ``listener`` when the listener itself stopped.
        connection_changed(bool): whether the engine is live (heard from within the timeout).
        tracking_samples(str, list): source name, the samples that arrived since the last
            poll (batched: tracking runs at up to 240 Hz per source).
        safety_changed(dict): ``stage.safety`` deltas and ``safety.*`` results (interlocks).
        controls_changed(dict): ``stage.controls`` data and the ``controls`` reply (with
            ``you``).
        cues_changed(dict): ``stage.cues`` data and the ``cue.list`` reply.
    """

    status_received = Signal(dict)
    device_delta = Signal(str, dict)
    desired_changed = Signal(str, dict)
    health_changed = Signal(str, dict)
    event_received = Signal(str, dict)
    command_succeeded = Signal(str, object)
    command_failed = Signal(str, str)
    command_error = Signal(str, dict)
    connection_changed = Signal(bool)
    tracking_samples = Signal(str, list)
    safety_changed = Signal(dict)
    controls_changed = Signal(dict)
    cues_changed = Signal(dict)

    def __init__(self, config: StageConfig, identity: ClientIdentity | None = None,
                 base_dir: Path | None = None, *, poll_ms: int = POLL_MS,
                 resync_s: float = RESYNC_S, heartbeat_timeout_s: float = HEARTBEAT_TIMEOUT_S,
                 reply_timeout_s: float = REPLY_TIMEOUT_S,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.config = config
        self.identity = identity or ClientIdentity.from_env()
        self.connected = False
        self._listener = _Listener(config, self.identity, base_dir, poll_ms, resync_s,
                                   heartbeat_timeout_s, reply_timeout_s)
        for name in ("status_received", "device_delta", "desired_changed", "health_changed",
                     "event_received", "command_succeeded", "command_failed", "command_error",
                     "tracking_samples", "safety_changed", "controls_changed", "cues_changed"):
            getattr(self._listener, name).connect(getattr(self, name))
        self._listener.connection_changed.connect(self._on_connection)

    def _on_connection(self, connected: bool) -> None:
        self.connected = connected
        self.connection_changed.emit(connected)

    def start(self) -> None:
        """Start the listener thread (it requests ``status`` at once)."""
        if not self._listener.isRunning():
            self._listener.start()

    def stop(self, timeout_s: float = 3.0) -> bool:
        """Stop the listener and close its sockets; True if the thread ended in time."""
        self._listener.request_stop()
        if self._listener.isRunning():
            return self._listener.wait(int(timeout_s * 1000))
        return True

    @property
    def running(self) -> bool:
        """Whether the listener thread is running."""
        return self._listener.isRunning()

    def command(self, cmd: str, args: dict[str, Any] | None = None) -> None:
        """Queue a command for the engine; the reply arrives as a signal (never blocks)."""
        self._listener.submit(cmd, dict(args or {}))

    @property
    def gaps(self) -> int:
        """How many gaps (or restarts) the listener has seen in the engine's ``seq``."""
        return self._listener.gaps

    def request_status(self) -> None:
        """Ask for a full ``status`` now."""
        self.command(STATUS_CMD)

    def request_refresh(self) -> None:
        """Ask for every snapshot again (``status``, safety, controls, cues)."""
        self._listener.request_refresh()
