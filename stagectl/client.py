"""Clients of the engine: a blocking command client and a state subscriber.

Used by the CLI, the dashboard, the console's listener thread and the benchmarks. Both speak
the protocol in :mod:`stagectl.bus`; with CURVE on they load keys from the stage's keys dir.
"""

from __future__ import annotations

import itertools
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import zmq

from stagectl import bus
from stagectl.config import StageConfig
from stagectl.keys import load_pair, load_server_public


class EngineUnavailable(Exception):
    """No engine answered at the configured address in time."""


class EngineError(Exception):
    """The engine refused or failed a command; ``code`` and ``details`` come from the reply."""

    def __init__(self, code: str, message: str, details: dict[str, Any]) -> None:
        self.code = code
        self.details = details
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class ClientIdentity:
    """Who the client says it is (ignored by the engine when CURVE supplies it)."""

    user: str
    role: str

    @classmethod
    def from_env(cls, role: str | None = None, user: str | None = None) -> ClientIdentity:
        """From arguments, else ``STAGECTL_ROLE`` / ``STAGECTL_USER``, else operator / $USER."""
        return cls(user=user or os.environ.get("STAGECTL_USER") or os.environ.get("USER")
                   or "operator",
                   role=role or os.environ.get("STAGECTL_ROLE") or "operator")


def _apply_curve(sock: zmq.Socket[Any], config: StageConfig, base_dir: Path,
                 key_name: str | None) -> None:
    if not config.engine.needs_curve:
        return
    keys_dir = base_dir / config.engine.keys_dir
    name = key_name or os.environ.get("STAGECTL_KEY") or os.environ.get("USER") or "operator"
    public, secret = load_pair(keys_dir, name)
    sock.curve_serverkey = load_server_public(keys_dir)
    sock.curve_publickey = public
    sock.curve_secretkey = secret


class EngineClient:
    """A blocking request/reply client (DEALER) with timeouts.

    Args:
        config: the stage whose engine to reach.
        identity: user and role to declare.
        timeout_s: how long to wait for each reply.
    """

    def __init__(self, config: StageConfig, identity: ClientIdentity | None = None,
                 timeout_s: float = 3.0, base_dir: Path | None = None,
                 key_name: str | None = None, context: zmq.Context[Any] | None = None) -> None:
        self.config = config
        self.identity = identity or ClientIdentity.from_env()
        self.timeout_s = timeout_s
        self._own_ctx = context is None
        self._ctx = context or zmq.Context()
        self._sock = self._ctx.socket(zmq.DEALER)
        self._sock.setsockopt(zmq.LINGER, 0)
        _apply_curve(self._sock, config, base_dir or Path.cwd(), key_name)
        self._sock.connect(config.engine.command)
        self._ids = itertools.count(1)
        self._prefix = f"{os.getpid()}-{id(self) & 0xFFFF:x}-"

    def close(self) -> None:
        """Close the socket (and the context if this client made it)."""
        self._sock.close(linger=0)
        if self._own_ctx:
            self._ctx.term()

    def __enter__(self) -> EngineClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def socket(self) -> zmq.Socket[Any]:
        """The DEALER socket (for pollers that multiplex it)."""
        return self._sock

    def send(self, cmd: str, args: dict[str, Any] | None = None) -> str:
        """Send a request without waiting; returns its id.

        Raises:
            EngineError: ``too_large``: over the engine's ``max_message_bytes`` (the engine
                would drop the connection instead of answering); nothing sent.
        """
        rid = self._prefix + str(next(self._ids))
        payload = bus.dumps({"id": rid, "cmd": cmd, "args": args or {},
                             "role": self.identity.role, "user": self.identity.user})
        limit = self.config.engine.max_message_bytes
        if len(payload) > limit:
            raise EngineError("too_large", f"{cmd} request is {len(payload)} bytes; the "
                              f"engine takes at most {limit} ([engine] max_message_bytes); "
                              "split it or raise the limit", {"bytes": len(payload),
                                                               "limit": limit})
        self._sock.send(payload)
        return rid

    def call(self, cmd: str, args: dict[str, Any] | None = None,
             timeout_s: float | None = None) -> Any:
        """Send a request and wait for its reply.

        Raises:
            EngineUnavailable: no reply in time.
            EngineError: the engine answered with an error.
        """
        rid = self.send(cmd, args)
        deadline = time.monotonic() + (timeout_s if timeout_s is not None else self.timeout_s)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self._sock.poll(int(remaining * 1000)):
                raise EngineUnavailable(
                    f"no reply from the engine at {self.config.engine.command} within "
                    f"{self.timeout_s:g} s; is `stagectl serve` running for stage "
                    f"{self.config.stage.name!r}?")
            reply = json.loads(self._sock.recv())
            if reply.get("id") != rid:
                continue  # a late reply to an earlier, timed-out request
            return unwrap(reply)


def unwrap(reply: dict[str, Any]) -> Any:
    """Return a reply's result or raise :class:`EngineError`."""
    if reply.get("ok"):
        return reply.get("result")
    error = reply.get("error") or {}
    raise EngineError(str(error.get("code", "error")), str(error.get("message", "")),
                      {k: v for k, v in error.items() if k not in ("code", "message")})


class StateSubscriber:
    """A SUB socket on the engine's state stream."""

    def __init__(self, config: StageConfig, topics: tuple[str, ...] = ("",),
                 base_dir: Path | None = None, key_name: str | None = None,
                 context: zmq.Context[Any] | None = None) -> None:
        self._own_ctx = context is None
        self._ctx = context or zmq.Context()
        self._sock = self._ctx.socket(zmq.SUB)
        self._sock.setsockopt(zmq.LINGER, 0)
        _apply_curve(self._sock, config, base_dir or Path.cwd(), key_name)
        for topic in topics:
            self._sock.setsockopt(zmq.SUBSCRIBE, topic.encode())
        self._sock.connect(config.engine.state)

    @property
    def socket(self) -> zmq.Socket[Any]:
        """The SUB socket (for pollers)."""
        return self._sock

    def recv(self, timeout_s: float) -> tuple[str, dict[str, Any]] | None:
        """Next (topic, message), or None after ``timeout_s``."""
        if not self._sock.poll(int(timeout_s * 1000)):
            return None
        topic, payload = self._sock.recv_multipart()
        return topic.decode(), json.loads(payload)

    def close(self) -> None:
        """Close the socket."""
        self._sock.close(linger=0)
        if self._own_ctx:
            self._ctx.term()
