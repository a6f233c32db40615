"""Control round trip: client -> engine -> LED simulator -> state back on the PUB socket.

Baseline in the same run: a raw python-osc round trip to the same simulator (send the set,
wait for the processor's pushed change). The simulator and the engine run as separate
processes (``stagectl sim`` / ``stagectl serve``) like on a stage; the simulator's processing
latency is set to 0 so the ratio shows our overhead, not the simulated processor's.

Goal: engine p99 within 3x of the raw p99. Last line: one JSON object.
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

from _stage import led_round_trips, percentile, start_engine, stop
from pythonosc.osc_message import OscMessage
from pythonosc.udp_client import SimpleUDPClient

from stagectl.harness import free_port


def write_config(folder: Path, mqtt: bool) -> Path:
    udp = free_port(socket.SOCK_DGRAM)
    path = folder / "bench-stage.toml"
    path.write_text(f"""
[stage]
name = "bench"
[engine]
command = "tcp://127.0.0.1:{free_port()}"
state = "tcp://127.0.0.1:{free_port()}"
[mqtt]
enabled = {str(mqtt).lower()}
embedded_bind = "127.0.0.1:{free_port()}"
[[devices]]
name = "led-main"
kind = "led"
address = "127.0.0.1:{udp}"
[[simulators]]
name = "led-main-sim"
kind = "led"
listen = "127.0.0.1:{udp}"
latency_ms = 0
""")
    return path


def raw_round_trips(host: str, port: int, n: int) -> list[float]:
    client = SimpleUDPClient(host, port)
    sock = client._sock
    sock.settimeout(2.0)
    client.send_message("/led/subscribe", [])
    time.sleep(0.2)
    sock.setblocking(False)
    while True:  # drain the dump
        try:
            sock.recv(4096)
        except BlockingIOError:
            break
    sock.settimeout(2.0)
    out = []
    for i in range(n):
        value = 3000 + (i % 2) * 2000 + i % 7
        start = time.perf_counter()
        client.send_message("/led/colour_temperature", value)
        while True:
            msg = OscMessage(sock.recv(4096))
            if msg.address == "/led/colour_temperature" and msg.params == [value]:
                break
        out.append((time.perf_counter() - start) * 1000)
        if i % 50 == 0:
            client.send_message("/led/subscribe", [])
    client.send_message("/led/unsubscribe", [])
    return out


def engine_round_trips(config_path: Path, n: int) -> list[float]:
    return led_round_trips(config_path, n)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=400, help="round trips per block")
    parser.add_argument("--blocks", type=int, default=3)
    parser.add_argument("--mqtt", action="store_true", help="also run the embedded broker")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = write_config(Path(tmp), args.mqtt)
        sim = subprocess.Popen([sys.executable, "-m", "stagectl", "sim", "--config", str(path)],
                               stderr=subprocess.DEVNULL)
        engine = None
        try:
            engine, cfg = start_engine(
                path, wait_for=lambda status: status["devices"][0]["health"] == "online")
            host, port = cfg.simulators[0].listen.rsplit(":", 1)
            raw: list[float] = []
            ours: list[float] = []
            for _ in range(args.blocks):  # interleave so drift hits both equally
                raw += raw_round_trips(host, int(port), args.n)
                ours += engine_round_trips(path, args.n)
        finally:
            if engine is not None:
                stop(engine)
            stop(sim)
    for name, samples in (("raw python-osc", raw), ("engine path", ours)):
        print(f"{name:15s} n={len(samples)} p50={statistics.median(samples):.3f} ms "
              f"p99={percentile(samples, 99):.3f} ms")
    value, baseline = percentile(ours, 99), percentile(raw, 99)
    print(json.dumps({"bench": "control_roundtrip", "metric": "p99 command-to-state latency",
                      "unit": "ms", "value": round(value, 3), "baseline": round(baseline, 3),
                      "ratio": round(value / baseline, 2),
                      "p50_ms": round(statistics.median(ours), 3),
                      "baseline_p50_ms": round(statistics.median(raw), 3),
                      "goal": "ratio <= 3 (engine p99 within 3x of a raw python-osc round trip)"}))


if __name__ == "__main__":
    main()
