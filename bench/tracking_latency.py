"""Tracking latency: UDP datagram sent -> sample received by a bus subscriber.

Ours: the datagram goes to the engine's tracking ingest (a separate ``stagectl serve``
process), which decodes and validates it (FreeD, or OpenTrackIO with ``--protocol``),
stamps timecode, updates the source's statistics and publishes the sample on its PUB
socket; a SUB socket here receives it.

Floor, in the same run: the minimal shape of that design, written here (:data:`FLOOR`): a
bare asyncio process whose datagram endpoint publishes each datagram unchanged on a ZeroMQ
PUB socket, to a SUB socket here. Same sender, same packets, same rate, same count: the two
paths take turns, one sample each (the order alternating), so both see the same machine.

Latency is taken from just before ``sendto`` to just after the SUB's ``recv_multipart``
returns (the message is checked after the clock stops, so our JSON costs nothing here).
Figures are the median over ``--runs`` independent runs (fresh processes each). Goal: our
p99 within 2x of the floor's p99 on a quiet machine; the load average before and after says
how quiet it was. Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import zmq
from _stage import percentile, start_engine, stop

from drivers.tracking import freed, opentrackio
from stagectl.config import TrackingDeviceConfig
from stagectl.harness import free_port

# The floor: receive a datagram, publish it unchanged. Nothing else runs on its loop.
FLOOR = """
import asyncio, sys, zmq
async def main(port, address):
    pub = zmq.Context().socket(zmq.PUB)
    pub.setsockopt(zmq.LINGER, 0)
    pub.bind(address)
    topic = b"tracking.floor"
    class Floor(asyncio.DatagramProtocol):
        def datagram_received(self, data, addr):
            pub.send_multipart([topic, data], flags=zmq.NOBLOCK)
    await asyncio.get_running_loop().create_datagram_endpoint(
        Floor, local_addr=("127.0.0.1", port))
    await asyncio.Event().wait()
asyncio.run(main(int(sys.argv[1]), sys.argv[2]))
"""

SOURCE = "cam-a"
WARMUP = 100


class Packets:
    """The datagrams both paths get; sample ``i`` carries ``i`` as its zoom encoder count."""

    def __init__(self, protocol: str) -> None:
        self.protocol = protocol
        self.builder = opentrackio.SampleBuilder(sample_rate=240)
        self.segmenter = opentrackio.Segmenter()

    def __call__(self, i: int) -> bytes:
        if self.protocol == "freed":
            return freed.encode(freed.FreeDPacket(1, 10.0, -5.0, 0.0, 1000.0, 2000.0, 1500.0,
                                                  i & 0xFFFFFF, 1000, 0))
        doc = self.builder.build(position_m=(1.0, -0.5, 1.5), rotation_deg=(10.0, -5.0, 0.0),
                                 sample_time_s=time.time(), zoom_raw=i, focus_raw=1000,
                                 focal_length_mm=35.0)
        datagrams = self.segmenter.encode(doc)
        if len(datagrams) != 1:  # one datagram per sample, so both paths get one each
            raise SystemExit(f"an OpenTrackIO sample took {len(datagrams)} datagrams")
        return datagrams[0]


class Route:
    """One path: where to send, what to subscribe to, and how to know its sample came."""

    def __init__(self, name: str, port: int, sub: zmq.Socket[Any],
                 matches: Callable[[bytes, bytes, int], bool]) -> None:
        self.name = name
        self.address = ("127.0.0.1", port)
        self.sub = sub
        self.matches = matches
        self.samples: list[float] = []

    def drain(self) -> None:
        while self.sub.poll(0):
            self.sub.recv_multipart()

    def once(self, sock: socket.socket, data: bytes, i: int, timeout_s: float = 2.0) -> float:
        """Send one datagram; ms until its message is on the SUB socket."""
        sub, deadline = self.sub, time.monotonic() + timeout_s
        start = time.perf_counter()
        sock.sendto(data, self.address)
        while True:
            if not sub.poll(max(1, int((deadline - time.monotonic()) * 1000))):
                raise SystemExit(f"{self.name}: sample {i} never came back")
            _topic, payload = sub.recv_multipart()
            took = (time.perf_counter() - start) * 1000
            if self.matches(payload, data, i):
                return took


def _ours_match(payload: bytes, data: bytes, i: int) -> bool:
    body = json.loads(payload)
    return bool(body["type"] == "sample" and body["data"]["zoom_raw"] == i)


def _floor_match(payload: bytes, data: bytes, i: int) -> bool:
    return payload == data


def _subscriber(ctx: zmq.Context[Any], address: str, topic: str) -> zmq.Socket[Any]:
    sub: zmq.Socket[Any] = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    sub.setsockopt(zmq.SUBSCRIBE, topic.encode())
    sub.connect(address)
    return sub


def _stage_config(path: Path, protocol: str, rate_hz: float) -> None:
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
name = "{SOURCE}"
kind = "tracking"
driver = "{protocol}"
host = "127.0.0.1"
port = {free_port(socket.SOCK_DGRAM)}
rate_hz = {rate_hz}
""")


def measure(protocol: str, n: int, rate_hz: float) -> tuple[list[float], list[float]]:
    """(ours, floor) latencies in ms, ``n`` each, taking turns at ``rate_hz`` per path."""
    packet = Packets(protocol)
    ctx: zmq.Context[Any] = zmq.Context()
    floor_port, floor_pub = free_port(socket.SOCK_DGRAM), f"tcp://127.0.0.1:{free_port()}"
    floor = subprocess.Popen([sys.executable, "-c", FLOOR, str(floor_port), floor_pub])
    with tempfile.TemporaryDirectory() as tmp:
        cfg_path = Path(tmp) / "stage.toml"
        _stage_config(cfg_path, protocol, rate_hz)
        engine, cfg = start_engine(cfg_path)
        try:
            device = cfg.devices[0]
            assert isinstance(device, TrackingDeviceConfig) and device.port is not None
            port = device.port
            paths = [
                Route("ours", port, _subscriber(ctx, cfg.engine.state, f"tracking.{SOURCE}"),
                      _ours_match),
                Route("floor", floor_port, _subscriber(ctx, floor_pub, "tracking.floor"),
                      _floor_match),
            ]
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                time.sleep(0.3)
                for p in paths:  # the subscription is live and the source online
                    for i in range(WARMUP):
                        data = packet(i)
                        while True:
                            try:
                                p.once(sock, data, i, timeout_s=0.5)
                                break
                            except SystemExit:
                                p.drain()
                        time.sleep(1 / rate_hz)
                    p.drain()
                slot = 1 / (2 * rate_hz)  # each path gets one sample per 1/rate_hz
                due = time.perf_counter()
                for i in range(WARMUP, WARMUP + n):
                    data = packet(i)  # the same bytes to both
                    for p in (paths if i % 2 else paths[::-1]):
                        delay = due - time.perf_counter()
                        if delay > 0:
                            time.sleep(delay)
                        p.samples.append(p.once(sock, data, i))
                        due = max(due + slot, time.perf_counter())
            for p in paths:
                p.sub.close()
        finally:
            stop(engine)
            floor.kill()
            floor.wait()
            ctx.term()
    return paths[0].samples, paths[1].samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=2000, help="samples per path and run")
    parser.add_argument("--runs", type=int, default=3,
                        help="independent runs (fresh processes); figures are their median")
    parser.add_argument("--protocol", choices=("freed", "opentrackio"), default="freed")
    parser.add_argument("--rate", type=float, default=240.0, help="samples/s per path")
    args = parser.parse_args()
    load_before = os.getloadavg()
    runs = []  # (ours p50, ours p99, floor p50, floor p99) per run
    for run in range(args.runs):
        ours, floor = measure(args.protocol, args.n, args.rate)
        row = (statistics.median(ours), percentile(ours, 99),
               statistics.median(floor), percentile(floor, 99))
        runs.append(row)
        print(f"run {run + 1}: floor asyncio UDP->PUB p50={row[2]:.3f} p99={row[3]:.3f} ms; "
              f"ours {args.protocol} p50={row[0]:.3f} p99={row[1]:.3f} ms; "
              f"p99 ratio {row[1] / row[3]:.2f} (n={args.n} each, max {max(ours):.2f} vs "
              f"{max(floor):.2f} ms)")
    load_after = os.getloadavg()
    loaded = load_before[0] >= 1.0 or load_after[0] >= 1.0
    print(f"load average before {' '.join(f'{v:.2f}' for v in load_before)}, after "
          f"{' '.join(f'{v:.2f}' for v in load_after)} on {os.cpu_count()} CPUs "
          f"({'LOADED: not a quiet-machine figure' if loaded else 'quiet'})")
    p50, p99, floor_p50, floor_p99 = (statistics.median(col) for col in zip(*runs, strict=True))
    print(f"median of {args.runs}: floor p50={floor_p50:.3f} p99={floor_p99:.3f} ms; ours "
          f"p50={p50:.3f} p99={p99:.3f} ms; p99 ratio {p99 / floor_p99:.2f}, p50 ratio "
          f"{p50 / floor_p50:.2f}")
    print(json.dumps({"bench": "tracking_latency", "metric": "p99_latency", "unit": "ms",
                      "value": round(p99, 3), "baseline": round(floor_p99, 3),
                      "ratio": round(p99 / floor_p99, 2), "goal": "<= 2.0",
                      "p50_ms": round(p50, 3), "baseline_p50_ms": round(floor_p50, 3),
                      "run_ratios": [round(r[1] / r[3], 2) for r in runs],
                      "protocol": args.protocol, "n": args.n, "runs": args.runs,
                      "rate_hz": args.rate,
                      "loadavg_before": [round(v, 2) for v in load_before],
                      "loadavg_after": [round(v, 2) for v in load_after],
                      "loaded": loaded}))


if __name__ == "__main__":
    main()
