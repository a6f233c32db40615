"""Tracking capacity: how many 240 Hz sources one engine ingests on this machine, zero loss.

An engine process (``stagectl serve``) gets N tracking sources (FreeD, Z CAM profile, whose
spare bytes carry an 8-bit sequence so loss is counted exactly). A sender process sends N
streams at 240 Hz for a few seconds; the engine's own per-source counters must show every
sample received. N grows until a run loses samples. Baseline in the same run: the same
streams into a bare UDP counter process (the floor: what the kernel and Python deliver with
no decoding or publishing).

Goal: at least 16 sources at 240 Hz with zero loss on 2 cores. Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _stage import start_engine, stop

from stagectl.client import EngineClient
from stagectl.harness import free_port

RATE_HZ = 240

SENDER = """
import socket, sys, time
from drivers.tracking import freed
ports = [int(p) for p in sys.argv[1].split(',')]
seconds = float(sys.argv[2])
packets = [[freed.encode(freed.FreeDPacket(1, 1.0, 2.0, 0.0, 10.0, 20.0, 30.0, 100, 200,
            (0x40 << 8) | (i & 0xFF))) for i in range(256)] for _ in ports]
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
period = 1.0 / 240
n = int(seconds * 240)
t0 = time.monotonic() + 0.2
for k in range(n):
    delay = t0 + k * period - time.monotonic()
    if delay > 0:
        time.sleep(delay)
    for j, port in enumerate(ports):
        sock.sendto(packets[j][k & 0xFF], ('127.0.0.1', port))
print(n)
"""

COUNTER = """
import socket, sys, selectors, time
ports = [int(p) for p in sys.argv[1].split(',')]
sel = selectors.DefaultSelector()
socks = []
for p in ports:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    s.bind(('127.0.0.1', p)); s.setblocking(False); sel.register(s, selectors.EVENT_READ)
    socks.append(s)
print('ready', flush=True)
counts = {p: 0 for p in ports}
deadline = time.monotonic() + float(sys.argv[2])
while time.monotonic() < deadline:
    for key, _ in sel.select(0.05):
        s = key.fileobj
        try:
            while True:
                s.recv(64); counts[s.getsockname()[1]] += 1
        except BlockingIOError:
            pass
print(min(counts.values()), flush=True)
"""


def run_sender(ports: list[int], seconds: float) -> int:
    out = subprocess.run([sys.executable, "-c", SENDER, ",".join(map(str, ports)),
                          str(seconds)], capture_output=True, text=True, check=True)
    return int(out.stdout.strip())


def floor_run(n: int, seconds: float) -> bool:
    ports = [free_port(socket.SOCK_DGRAM) for _ in range(n)]
    counter = subprocess.Popen([sys.executable, "-c", COUNTER, ",".join(map(str, ports)),
                                str(seconds + 3)], stdout=subprocess.PIPE, text=True)
    assert counter.stdout is not None
    counter.stdout.readline()
    sent = run_sender(ports, seconds)
    received = int(counter.stdout.readline())
    counter.wait()
    return received >= sent


def engine_run(n: int, seconds: float, folder: Path) -> tuple[bool, dict[str, int], int]:
    ports = [free_port(socket.SOCK_DGRAM) for _ in range(n)]
    devices = "".join(f"""
[[devices]]
name = "cam-{i}"
kind = "tracking"
driver = "freed"
freed_profile = "zcam"
host = "127.0.0.1"
port = {port}
rate_hz = {RATE_HZ}
""" for i, port in enumerate(ports))
    path = folder / f"capacity-{n}.toml"
    path.write_text(f"""
[stage]
name = "capacity"
frame_rate = 25
[engine]
command = "tcp://127.0.0.1:{free_port()}"
state = "tcp://127.0.0.1:{free_port()}"
[mqtt]
enabled = false
{devices}""")
    proc, cfg = start_engine(path)
    try:
        sent = run_sender(ports, seconds)
        time.sleep(1.0)
        with EngineClient(cfg) as client:
            sources = client.call("tracking.sources")
        received = {d["name"]: d["counters"].get("samples", 0) or
                    d["state"].get("received", 0) for d in sources}
        ok = all(v >= sent for v in received.values())
        return ok, received, sent
    finally:
        stop(proc)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--max", type=int, default=48)
    args = parser.parse_args()
    best = best_floor = 0
    with tempfile.TemporaryDirectory() as tmp:
        for n in (4, 8, 12, 16, 20, 24, 32, 40, 48):
            if n > args.max:
                break
            floor_ok = floor_run(n, args.seconds)
            ok, received, sent = engine_run(n, args.seconds, Path(tmp))
            print(f"{n:3d} sources x {RATE_HZ} Hz: sent {sent} each; engine "
                  f"{'zero loss' if ok else 'LOSS'} (min received {min(received.values())}); "
                  f"bare UDP floor {'zero loss' if floor_ok else 'LOSS'}", flush=True)
            if floor_ok:
                best_floor = n
            if ok:
                best = n
            else:
                break
    print(json.dumps({"bench": "tracking_capacity",
                      "metric": f"sources at {RATE_HZ} Hz ingested with zero loss",
                      "unit": "sources", "value": best, "baseline": best_floor,
                      "ratio": round(best / best_floor, 2) if best_floor else None,
                      "goal": "value >= 16"}))


if __name__ == "__main__":
    main()
