"""Helpers for the farm trust tests: a raw ZeroMQ peer that can send anything, and the farm."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import orjson
import zmq

from tests.dispatch.conftest import farm

__all__ = ["RawPeer", "alive", "farm", "kill_quietly", "rss_mb"]


class RawPeer:
    """A DEALER that sends whatever a hostile or broken peer would (optionally with CURVE)."""

    def __init__(self, address: str, keys: Path | None = None, name: str = "",
                 rcvhwm: int = 1000) -> None:
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.DEALER)
        self.sock.linger = 0
        self.sock.rcvhwm = rcvhwm
        if keys is not None:
            from scheduler.dispatch.curve import client_keys

            client_keys(self.sock, keys, name)
        self.sock.connect(address)

    def send(self, msg: dict[str, Any]) -> None:
        self.sock.send(orjson.dumps(msg))

    def send_raw(self, *frames: bytes) -> None:
        self.sock.send_multipart(list(frames))

    def recv(self, timeout_s: float = 5.0) -> dict[str, Any]:
        if not self.sock.poll(int(timeout_s * 1000)):
            raise AssertionError(f"no message within {timeout_s} s")
        out: dict[str, Any] = orjson.loads(self.sock.recv())
        return out

    def recv_type(self, kind: str, timeout_s: float = 5.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while True:
            msg = self.recv(max(deadline - time.monotonic(), 0.01))
            if msg.get("type") == kind:
                return msg

    def close(self) -> None:
        self.sock.close(0)
        self.ctx.term()

    def __enter__(self) -> RawPeer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def alive(pid: int) -> bool:
    """Whether a process exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state != "Z"


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def kill_quietly(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass
