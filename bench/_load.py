"""Load generators for the e-stop benchmarks and the engine flood tests, one process each.

``python bench/_load.py KIND --endpoint tcp://... [options]`` runs until its work is done
(``--bursts N``) or it gets SIGTERM, then prints one JSON object of what it sent and what
came back. Kinds:

* ``flood``: one DEALER (or ``--connections`` of them, in turn) sends ``--count`` requests
  (``status`` as a viewer by default) per burst as fast as the sockets take them, reading
  replies as they come; the summary counts replies by error code (``ok``, ``overloaded``...).
* ``upload``: an operator uploads a ``--keyframes`` path (``arm.run_path``) through the
  engine, again as soon as each reply is back.
* ``direct``: a raw DEALER sends ``--count`` messages of ``--size`` bytes per burst straight
  to the arm controller's command socket (a run_path-shaped upload, no lease), reading any
  replies.
"""

from __future__ import annotations

import argparse
import json
import math
import signal
import sys
import time
from collections import Counter
from typing import Any

import orjson
import zmq

_stop = False


def _on_term(signum: int, frame: Any) -> None:
    global _stop
    _stop = True


def path_keyframes(n: int, jump_at_end: bool = False) -> list[dict[str, Any]]:
    """A slow, smooth path of ``n`` keyframes 10 ms apart from home, inside every limit.

    ``jump_at_end``: the last keyframe jumps 3 deg on j1 (300 deg/s): the driver checks the
    whole trajectory before it finds that and refuses, so the upload costs its full planning
    but never runs (a running 100 s path would keep the benchmark's own moves from starting).
    """
    frames = []
    for i in range(n):
        t = 1.0 + i * 0.01
        w = 1.0 - math.cos(0.2 * (t - 1.0))  # starts at rest
        frames.append({"t_s": round(t, 3),
                       "joints_deg": [round(10 * w, 3), round(-40 + 5 * w, 3), 60.0, 0.0,
                                      round(-5 * w, 3), 0.0]})
    if jump_at_end and frames:
        frames[-1]["joints_deg"][0] = round(frames[-1]["joints_deg"][0] + 3.0, 3)
    return frames


def _reply_code(payload: bytes) -> str:
    try:
        reply = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return "undecodable"
    if not isinstance(reply, dict):
        return "undecodable"
    if reply.get("ok"):
        return "ok"
    error = reply.get("error") or {}
    return str(error.get("code", "error")) if isinstance(error, dict) else "error"


def _dealer(endpoint: str) -> tuple[zmq.Context[zmq.Socket[bytes]], zmq.Socket[bytes]]:
    """A new context and one DEALER (no linger) connected to ``endpoint``."""
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(endpoint)
    return ctx, sock


def flood(endpoint: str, count: int, cmd: str, role: str, bursts: int,
          connections: int = 1) -> dict[str, Any]:
    ctx = zmq.Context()
    socks = []
    for _ in range(connections):
        sock = ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.RCVHWM, 0)
        sock.setsockopt(zmq.SNDHWM, 0)
        sock.connect(endpoint)
        socks.append(sock)
    poller = zmq.Poller()
    for sock in socks:
        poller.register(sock, zmq.POLLIN)
    codes: Counter[str] = Counter()
    sent = received = 0
    started = time.monotonic()
    burst = 0

    def read(timeout_ms: int) -> None:
        nonlocal received
        for sock, _ in poller.poll(timeout_ms):
            while sock.poll(0):
                codes[_reply_code(sock.recv())] += 1
                received += 1

    try:
        while not _stop and (bursts <= 0 or burst < bursts):
            burst += 1
            for i in range(count):  # queue the whole burst: this is the flood
                socks[i % connections].send(
                    b'{"id":"f%d-%d","cmd":"%s","role":"%s","user":"flood"}'
                    % (burst, i, cmd.encode(), role.encode()))
                sent += 1
                if i % 16 == 0:
                    read(0)
            deadline = time.monotonic() + 30
            while received < sent and time.monotonic() < deadline and not _stop:
                read(100)
    finally:
        for sock in socks:
            sock.close(0)
        ctx.term()
    return {"kind": "flood", "sent": sent, "replies": received, "codes": dict(codes),
            "bursts": burst, "connections": connections,
            "seconds": round(time.monotonic() - started, 2)}


def upload(endpoint: str, keyframes: int, bursts: int) -> dict[str, Any]:
    ctx, sock = _dealer(endpoint)
    path = path_keyframes(keyframes, jump_at_end=True)
    codes: Counter[str] = Counter()
    sent = 0
    size = 0
    started = time.monotonic()
    try:
        while not _stop and (bursts <= 0 or sent < bursts):
            payload = orjson.dumps({"id": f"u{sent}", "cmd": "arm.run_path",
                                    "args": {"keyframes": path}, "role": "operator",
                                    "user": "uploader"})
            size = len(payload)
            sock.send(payload)
            sent += 1
            deadline = time.monotonic() + 10
            while not _stop and time.monotonic() < deadline:
                if sock.poll(100):
                    codes[_reply_code(sock.recv())] += 1
                    break
            else:
                if not _stop:
                    codes["no_reply"] += 1
    finally:
        sock.close(0)
        ctx.term()
    return {"kind": "upload", "sent": sent, "bytes_each": size, "codes": dict(codes),
            "seconds": round(time.monotonic() - started, 2)}


def direct(endpoint: str, count: int, size: int, bursts: int) -> dict[str, Any]:
    ctx, sock = _dealer(endpoint)
    frames = path_keyframes(max(1, size // 75))
    payload = orjson.dumps({"id": "d", "cmd": "run_path", "args": {"keyframes": frames}})
    payload = payload[:size] if len(payload) > size else payload
    codes: Counter[str] = Counter()
    sent = 0
    burst = 0
    started = time.monotonic()
    try:
        while not _stop and (bursts <= 0 or burst < bursts):
            burst += 1
            for _ in range(count):
                sock.send(payload, copy=False)
                sent += 1
            deadline = time.monotonic() + 0.5
            while not _stop and time.monotonic() < deadline:
                if sock.poll(50):
                    codes[_reply_code(sock.recv())] += 1
    finally:
        sock.close(0)
        ctx.term()
    return {"kind": "direct", "sent": sent, "bytes_each": len(payload), "codes": dict(codes),
            "bursts": burst, "seconds": round(time.monotonic() - started, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=("flood", "upload", "direct"))
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--count", type=int, default=20000)
    parser.add_argument("--cmd", default="status")
    parser.add_argument("--role", default="viewer")
    parser.add_argument("--keyframes", type=int, default=10000)
    parser.add_argument("--size", type=int, default=500_000)
    parser.add_argument("--connections", type=int, default=1, help="flood: DEALERs")
    parser.add_argument("--bursts", type=int, default=0, help="0: until SIGTERM")
    ns = parser.parse_args()
    signal.signal(signal.SIGTERM, _on_term)
    signal.signal(signal.SIGINT, _on_term)
    print("ready", flush=True)
    if ns.kind == "flood":
        result = flood(ns.endpoint, ns.count, ns.cmd, ns.role, ns.bursts, ns.connections)
    elif ns.kind == "upload":
        result = upload(ns.endpoint, ns.keyframes, ns.bursts)
    else:
        result = direct(ns.endpoint, ns.count, ns.size, ns.bursts)
    print(json.dumps(result), flush=True)
    sys.exit(0)


if __name__ == "__main__":
    main()
