"""Tracking latency: UDP datagram sent -> sample received by a bus subscriber.

Our path: a FreeD datagram to the engine's tracking ingest (a separate ``stagectl serve``
process), decoded, timecode-stamped, published on the PUB socket and received here. Floor in
the same run: a raw UDP echo through another Python process (send, echo, receive). Both paths
cross two processes once each way, so the ratio is our processing cost.

Goal: p99 within 2x of the raw UDP echo p99. Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _stage import percentile, start_engine, stop

from drivers.tracking import freed
from stagectl.client import StateSubscriber
from stagectl.harness import free_port

ECHO = ("import socket,sys\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
        "s.bind(('127.0.0.1',int(sys.argv[1])))\n"
        "while True:\n d,a=s.recvfrom(2048)\n s.sendto(d,a)\n")


def packet(i: int) -> bytes:
    return freed.encode(freed.FreeDPacket(1, 10.0, -5.0, 0.0, 1000.0, 2000.0, 1500.0,
                                          i & 0xFFFFFF, 1000, 0))


def echo_round_trips(n: int) -> list[float]:
    port = free_port(socket.SOCK_DGRAM)
    proc = subprocess.Popen([sys.executable, "-c", ECHO, str(port)])
    out: list[float] = []
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(1.0)
            while True:  # wait for the echo server
                try:
                    sock.sendto(b"ping", ("127.0.0.1", port))
                    sock.recv(64)
                    break
                except (TimeoutError, ConnectionRefusedError):
                    continue
            for i in range(n):
                data = packet(i)
                start = time.perf_counter()
                sock.sendto(data, ("127.0.0.1", port))
                while sock.recv(2048) != data:
                    pass
                out.append((time.perf_counter() - start) * 1000)
                time.sleep(0.004)
    finally:
        proc.kill()
        proc.wait()
    return out


def engine_latencies(cfg_path: Path, n: int) -> list[float]:
    proc, cfg = start_engine(cfg_path)
    port = cfg.devices[0].port  # type: ignore[union-attr]
    sub = StateSubscriber(cfg, topics=("tracking.cam-a",))
    out: list[float] = []
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            time.sleep(0.5)
            for i in range(50):  # warm up: the source comes online
                sock.sendto(packet(i), ("127.0.0.1", port))
                time.sleep(0.004)
            while sub.recv(0.2) is not None:
                pass
            for i in range(1000, 1000 + n):
                start = time.perf_counter()
                sock.sendto(packet(i), ("127.0.0.1", port))
                while True:
                    got = sub.recv(2.0)
                    if got is None:
                        raise SystemExit("a sample never came back")
                    if got[1]["data"]["zoom_raw"] == i:
                        break
                out.append((time.perf_counter() - start) * 1000)
                time.sleep(0.004)
    finally:
        sub.close()
        stop(proc)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "stage.toml"
        path.write_text(f"""
[stage]
name = "bench-trk"
frame_rate = 25
[engine]
command = "tcp://127.0.0.1:{free_port()}"
state = "tcp://127.0.0.1:{free_port()}"
[mqtt]
enabled = false
[[devices]]
name = "cam-a"
kind = "tracking"
driver = "freed"
host = "127.0.0.1"
port = {free_port(socket.SOCK_DGRAM)}
rate_hz = 240
""")
        raw = echo_round_trips(args.n)
        ours = engine_latencies(path, args.n)
    for name, samples in (("raw UDP echo", raw), ("engine ingest->PUB", ours)):
        print(f"{name:20s} n={len(samples)} p50={statistics.median(samples):.3f} ms "
              f"p99={percentile(samples, 99):.3f} ms")
    value, baseline = percentile(ours, 99), percentile(raw, 99)
    print(json.dumps({"bench": "tracking_latency", "metric": "p99 UDP->bus sample latency",
                      "unit": "ms", "value": round(value, 3), "baseline": round(baseline, 3),
                      "ratio": round(value / baseline, 2),
                      "p50_ms": round(statistics.median(ours), 3),
                      "baseline_p50_ms": round(statistics.median(raw), 3),
                      "goal": "ratio <= 2 (p99 within 2x of a raw UDP echo)"}))


if __name__ == "__main__":
    main()
