"""A blocking request/reply client of the farm controller (CLI, tests, benchmarks)."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import zmq

from scheduler.dispatch.curve import client_keys
from scheduler.dispatch.protocol import decode, encode


class ControllerUnavailable(Exception):
    """No controller answered at the address in time."""


class ControllerError(Exception):
    """The controller refused a request; ``reply`` holds its answer."""

    def __init__(self, message: str, reply: dict[str, Any]) -> None:
        super().__init__(message)
        self.reply = reply


class FarmClient:
    """DEALER to the controller's ROUTER; one outstanding request at a time."""

    def __init__(self, address: str, timeout_s: float = 5.0, keys_dir: Path | None = None,
                 key_name: str = "client") -> None:
        self.address = address
        self.timeout_s = timeout_s
        self._ctx = zmq.Context()
        self._sock = self._ctx.socket(zmq.DEALER)
        self._sock.linger = 0
        if keys_dir is not None:
            client_keys(self._sock, keys_dir, key_name)
        self._sock.connect(address)
        self._ids = itertools.count(1)

    def request(self, kind: str, **fields: Any) -> dict[str, Any]:
        """Send one request and wait for its reply; raises on timeout or refusal."""
        req_id = next(self._ids)
        self._sock.send(encode({"type": kind, "req": req_id, **fields}))
        deadline_ms = int(self.timeout_s * 1000)
        while self._sock.poll(deadline_ms):
            reply = decode(self._sock.recv())
            if reply.get("req") != req_id:
                continue  # a late answer to an earlier request that timed out
            if not reply.get("ok", False):
                raise ControllerError(str(reply.get("error", "refused")), reply)
            return reply
        raise ControllerUnavailable(
            f"no farm controller answered at {self.address} within {self.timeout_s:g} s "
            "(is `stagectl farm controller` running? off loopback it needs CURVE keys: "
            "--keys-dir)")

    def close(self) -> None:
        """Close the socket and context."""
        self._sock.close(0)
        self._ctx.term()

    def __enter__(self) -> FarmClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
