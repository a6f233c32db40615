"""Benchmark: task assignments per second from the farm controller to 200 simulated agents.

The production controller runs as its own process (``stagectl farm controller``, SQLite in a
temp folder, planner on) on loopback. This process plays 200 one-slot agents: each registers,
heartbeats, and answers every assignment at once with a successful ``finished``, so the
controller's own path is what is measured: receive, record the completion, pick the next
task, record the attempt, commit, send. Measured from the first assignment to the last.

Ceiling in the same run: a bare ZeroMQ ROUTER process that answers each of the same 200
DEALERs with an assignment-sized message (no logic, no disk): raw round trips per second.

Goal: at least 2,000 assignments/s (OpenCue's published scheduler run booked 975 frames/s).
The last stdout line is the summary JSON object.
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
from typing import Any

import orjson
import zmq

from scheduler.dispatch.client import ControllerUnavailable, FarmClient
from scheduler.dispatch.jobfile import JobSpec, chunk_tasks

ECHO = """
import sys, zmq
ctx = zmq.Context(); r = ctx.socket(zmq.ROUTER); r.rcvhwm = r.sndhwm = 100000
r.bind(sys.argv[1]); print("ready", flush=True)
payload = sys.argv[2].encode()
while True:
    rid, msg = r.recv_multipart()
    if msg == b"stop": break
    r.send_multipart([rid, payload])
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def dealers(ctx: zmq.Context[Any], address: str, n: int) -> list[zmq.Socket[Any]]:
    out = []
    for _ in range(n):
        s = ctx.socket(zmq.DEALER)
        s.linger = 0
        s.connect(address)
        out.append(s)
    return out


def raw_round_trips(agents: int, total: int) -> float:
    """Round trips per second through a bare ROUTER process with the same fan-out."""
    address = f"tcp://127.0.0.1:{free_port()}"
    assign = orjson.dumps({"type": "assign", "attempt": 123456, "task": "bench:1-1",
                           "job": "bench", "slot": 0, "argv": ["true"], "frame_start": 1,
                           "frame_end": 1, "output": None}).decode()
    proc = subprocess.Popen([sys.executable, "-c", ECHO, address, assign],
                            stdout=subprocess.PIPE, text=True)
    ctx = zmq.Context()
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        socks = dealers(ctx, address, agents)
        poller = zmq.Poller()
        for s in socks:
            poller.register(s, zmq.POLLIN)
        finished = orjson.dumps({"type": "finished", "node_id": "sim-000", "attempt": 123456,
                                 "ok": True, "exit_code": 0, "error": "", "elapsed_s": 0.0,
                                 "lines": []})
        for s in socks:
            s.send(finished)
        done = 0
        t0 = time.perf_counter()
        while done < total:
            for s, _ in poller.poll(1000):
                while True:
                    try:
                        s.recv(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    done += 1
                    s.send(finished)
        rate = done / (time.perf_counter() - t0)
        socks[0].send(b"stop")
        proc.wait(timeout=10)
        return rate
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        ctx.destroy(0)


def controller_rate(agents: int, total: int, tmp: Path) -> tuple[float, dict[str, Any]]:
    """Assignments per second from the real controller process."""
    address = f"tcp://127.0.0.1:{free_port()}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "stagectl", "farm", "controller", "--db", str(tmp / "f.sqlite"),
         "--bind", address, "--heartbeat-s", "1", "--node-timeout-s", "30"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    ctx = zmq.Context()
    try:
        with FarmClient(address, timeout_s=1.0) as client:
            deadline = time.monotonic() + 30
            while True:
                try:
                    client.request("ping")
                    break
                except ControllerUnavailable:
                    if time.monotonic() > deadline or proc.poll() is not None:
                        raise
            socks = dealers(ctx, address, agents)
            poller = zmq.Poller()
            for i, s in enumerate(socks):
                poller.register(s, zmq.POLLIN)
                s.send(orjson.dumps({"type": "register", "node_id": f"sim-{i:03d}", "slots": 1,
                                     "vram_gb": 24, "speed": 1.0, "gpus": [], "running": [],
                                     "finished": []}))
            welcomed: set[int] = set()
            index = {s: i for i, s in enumerate(socks)}
            while len(welcomed) < agents:
                for s, _ in poller.poll(5000):
                    msg = orjson.loads(s.recv())
                    if msg["type"] == "welcome":
                        welcomed.add(index[s])
            job = JobSpec(id="bench", frame_start=1, frame_end=total, chunk_size=1,
                          argv=("true",), output=None, estimate_s=0.001,
                          tasks=chunk_tasks("bench", 1, total, 1))
            client.request("submit", jobs=[job.to_wire()])
            assigned = 0
            t0 = t_last = 0.0
            last_beat = time.monotonic()
            while assigned < total:
                events = poller.poll(2000)
                if not events:
                    raise RuntimeError(f"controller went quiet after {assigned} assignments")
                for s, _ in events:
                    while True:
                        try:
                            msg = orjson.loads(s.recv(zmq.NOBLOCK))
                        except zmq.Again:
                            break
                        if msg["type"] != "assign":
                            continue
                        if assigned == 0:
                            t0 = time.perf_counter()
                        assigned += 1
                        t_last = time.perf_counter()
                        s.send(orjson.dumps({
                            "type": "finished", "node_id": f"sim-{index[s]:03d}",
                            "attempt": msg["attempt"], "ok": True, "exit_code": 0,
                            "error": "", "elapsed_s": 0.0, "lines": []}))
                if time.monotonic() - last_beat > 0.5:
                    last_beat = time.monotonic()
                    for i, s in enumerate(socks):
                        s.send(orjson.dumps({"type": "heartbeat", "node_id": f"sim-{i:03d}",
                                             "running": []}))
            rate = (assigned - 1) / (t_last - t0) if t_last > t0 else 0.0
            time.sleep(0.3)
            status = client.request("status")["jobs"][0]
            return rate, {"assigned": assigned, "done_at_end": status["counts"]["DONE"]}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        ctx.destroy(0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=200)
    parser.add_argument("--tasks", type=int, default=20000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="farm-dispatch-bench-") as tmp:
        rate, info = controller_rate(args.agents, args.tasks, Path(tmp))
    raw = raw_round_trips(args.agents, args.tasks)
    print(json.dumps({"agents": args.agents, "tasks": args.tasks,
                      "assignments_per_s": round(rate), "raw_zmq_round_trips_per_s": round(raw),
                      **info}), flush=True)
    print(json.dumps({
        "bench": "farm_dispatch", "metric": "assignments_per_s", "unit": "assignments/s",
        "value": round(rate), "baseline": round(raw),
        "ratio": round(rate / raw, 3) if raw else None, "goal": ">= 2000 assignments/s",
    }))


if __name__ == "__main__":
    main()
