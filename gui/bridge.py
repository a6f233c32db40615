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
from stagectl.client import ClientIdentity, EngineClient, StateSubscriber, unwrap
from stagectl.config import StageConfig

log = logging.getLogger(__name__)

POLL_MS = 50
RESYNC_S = 5.0
HEARTBEAT_TIMEOUT_S = 3.0
REPLY_TIMEOUT_S = 3.0
STATUS_CMD = "status"


@dataclass(frozen=True, slots=True)
class _Pending:
    """A request sent to the engine and not yet answered."""

    cmd: str
    sent_at: float


class _Listener(QThread):
    """The thread that owns the sockets; signals are emitted from it (queued to the GUI)."""

    status_received = Signal(dict)
    device_delta = Signal(str, dict)
    desired_changed = Signal(str, dict)
    health_changed = Signal(str, dict)
    event_received = Signal(str, dict)
    command_succeeded = Signal(str, object)
    command_failed = Signal(str, str)
    connection_changed = Signal(bool)
    tracking_samples = Signal(str, list)

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
        self._samples: dict[str, list[dict[str, Any]]] = {}

    def submit(self, cmd: str, args: dict[str, Any]) -> None:
        """Queue a request (any thread)."""
        self._requests.put((cmd, args))

    def request_stop(self) -> None:
        """Ask the loop to end after its current poll (any thread)."""
        self._stop.set()

    # ---- the listener thread ----------------------------------------------------------

    def run(self) -> None:
        """Poll the state and command sockets until asked to stop; always closes them."""
        ctx: zmq.Context[Any] = zmq.Context()
        sub: StateSubscriber | None = None
        client: EngineClient | None = None
        pending: dict[str, _Pending] = {}
        connected = False
        last_heard = 0.0
        next_resync = 0.0  # resync at once
        try:
            sub = StateSubscriber(self._config, base_dir=self._base_dir, context=ctx)
            client = self._new_client(ctx)
            poller = zmq.Poller()
            poller.register(sub.socket, zmq.POLLIN)
            poller.register(client.socket, zmq.POLLIN)
            while not self._stop.is_set():
                now = time.monotonic()
                if now >= next_resync:
                    self._send(client, STATUS_CMD, {}, pending)
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
                    status_pending = any(p.cmd == STATUS_CMD for p in pending.values())
                    if alive and not status_pending:
                        next_resync = now  # whatever we missed while away
                if self._expire(pending, now):
                    poller.unregister(client.socket)
                    client.close()
                    client = self._new_client(ctx)
                    poller.register(client.socket, zmq.POLLIN)
        except Exception as exc:  # a dead listener must say so, not vanish
            log.exception("console listener stopped on an error")
            self.command_failed.emit("listener", f"the console's engine listener stopped: "
                                     f"{type(exc).__name__}: {exc}; restart the console")
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

    def _send(self, client: EngineClient, cmd: str, args: dict[str, Any],
              pending: dict[str, _Pending]) -> None:
        try:
            rid = client.send(cmd, args)
        except (zmq.ZMQError, TypeError, ValueError) as exc:
            self.command_failed.emit(cmd, f"{cmd} not sent: {exc}")
            return
        pending[rid] = _Pending(cmd, time.monotonic())

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
            self._dispatch(topic_b.decode(errors="replace"), message)

    def _dispatch(self, topic: str, message: dict[str, Any]) -> None:
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
            except Exception as exc:  # EngineError: the message says what and why
                self.command_failed.emit(request.cmd, str(exc))
                continue
            if request.cmd == STATUS_CMD and isinstance(result, dict):
                self.status_received.emit(result)
            else:
                self.command_succeeded.emit(request.cmd, result)

    def _expire(self, pending: dict[str, _Pending], now: float) -> bool:
        """Report requests past their timeout; True if any (the DEALER is then rebuilt)."""
        late = [rid for rid, p in pending.items() if now - p.sent_at > self._reply_timeout_s]
        for rid in late:
            request = pending.pop(rid)
            if request.cmd != STATUS_CMD:  # status is retried; the status bar says the rest
                self.command_failed.emit(
                    request.cmd, f"no reply from the engine at {self._config.engine.command} "
                    f"within {self._reply_timeout_s:g} s; the command was dropped")
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
        heartbeat_timeout_s: silence after which the engine counts as disconnected.
        reply_timeout_s: how long a command may wait for its reply.

    Signals:
        status_received(dict): a full ``status`` result (on start, every ``resync_s``, after
            a reconnect).
        device_delta(str, dict): device name, reported keys that changed.
        desired_changed(str, dict): device name, desired keys that changed.
        health_changed(str, dict): device name, ``{"state", "reason", "since"}``.
        event_received(str, dict): device name or ``engine``, ``{"message", "level", "t"}``.
        command_succeeded(str, object): command name, its result.
        command_failed(str, str): command name, the engine's message.
        connection_changed(bool): whether the engine was heard from within the timeout.
        tracking_samples(str, list): source name, the samples that arrived since the last
            poll (batched: tracking runs at up to 240 Hz per source).
    """

    status_received = Signal(dict)
    device_delta = Signal(str, dict)
    desired_changed = Signal(str, dict)
    health_changed = Signal(str, dict)
    event_received = Signal(str, dict)
    command_succeeded = Signal(str, object)
    command_failed = Signal(str, str)
    connection_changed = Signal(bool)
    tracking_samples = Signal(str, list)

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
                     "event_received", "command_succeeded", "command_failed",
                     "tracking_samples"):
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

    def request_status(self) -> None:
        """Ask for a full resync now."""
        self.command(STATUS_CMD)
