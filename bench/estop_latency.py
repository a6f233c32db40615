"""E-stop latency: client ``estop`` to the simulated arm reporting zero velocity.

The path: client -> engine -> arm driver -> simulated controller -> telemetry sample with
state ESTOP and every velocity zero.

Floor in the same run: a raw ZeroMQ DEALER/ROUTER round trip on loopback (the least any
command path can cost). Each trial arms the stage, starts a move, waits until the arm is
moving, then times from the client's send to the first telemetry sample (read straight off the
controller's PUB socket) with state ESTOP and zero velocity; then resets.

The simulator and engine run in this process on a background loop (``StageHarness``); the
client and the telemetry subscriber are on the main thread. Goal: p99 < 5 ms on loopback.
Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import threading
import time
from typing import Any

import zmq
from _stage import percentile

from drivers.arm import protocol as p
from stagectl.client import ClientIdentity, EngineClient
from stagectl.config import ArmDeviceConfig
from stagectl.harness import StageHarness, free_port, free_port_config


def raw_round_trips(n: int) -> list[float]:
    ctx = zmq.Context()
    router, dealer = ctx.socket(zmq.ROUTER), ctx.socket(zmq.DEALER)
    port = free_port()
    router.bind(f"tcp://127.0.0.1:{port}")
    dealer.connect(f"tcp://127.0.0.1:{port}")
    stop = threading.Event()

    def echo() -> None:
        while not stop.is_set():
            if router.poll(50):
                router.send_multipart(router.recv_multipart())

    thread = threading.Thread(target=echo, daemon=True)
    thread.start()
    out = []
    try:
        for _ in range(20):  # warm up
            dealer.send(b'{"id":"w","cmd":"heartbeat"}')
            dealer.recv()
        for i in range(n):
            start = time.perf_counter()
            dealer.send(p.encode_request(str(i), "estop"))
            dealer.recv()
            out.append((time.perf_counter() - start) * 1000)
    finally:
        stop.set()
        thread.join(2)
        dealer.close(0)
        router.close(0)
        ctx.term()
    return out


def estop_trials(n: int) -> list[float]:
    config = free_port_config(stage="bench-estop", devices=0, arms=1)
    arm_cfg = config.devices[0]
    harness = StageHarness(config).start()
    ctx = zmq.Context()
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.SUBSCRIBE, p.TELEMETRY_TOPIC)
    assert isinstance(arm_cfg, ArmDeviceConfig)
    sub.connect(arm_cfg.telemetry)
    out: list[float] = []
    try:
        with EngineClient(config, ClientIdentity("bench", "operator"), timeout_s=3.0) as c:
            c.call("safety.arm")
            time.sleep(0.3)
            for i in range(n):
                target = 60.0 if i % 2 == 0 else -60.0
                c.call("arm.move_joints", {"joints_deg": [target, -40, 60, 0, 0, 0]})
                while True:  # wait until really moving
                    sample = p.decode_telemetry(sub.recv_multipart()[1])
                    if sample.state == "MOVING" and abs(sample.velocities_deg_s[0]) > 5:
                        break
                while sub.poll(0):  # drop what is queued: time only what follows the send
                    sub.recv_multipart()
                start = time.perf_counter()
                c.send("estop", {"reason": "bench"})
                while True:
                    sample = p.decode_telemetry(sub.recv_multipart()[1])
                    if sample.state == "ESTOP" and sample.at_rest:
                        out.append((time.perf_counter() - start) * 1000)
                        break
                _drain_replies(c)
                c.call("arm.reset")
                c.call("safety.arm")
                while p.decode_telemetry(sub.recv_multipart()[1]).state != "IDLE":
                    pass
                time.sleep(0.01)  # the engine's driver sees IDLE too
    finally:
        sub.close(0)
        ctx.term()
        harness.stop()
    return out


def _drain_replies(client: EngineClient) -> None:
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline and client.socket.poll(100):
        client.socket.recv()
        return


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=200)
    ns = parser.parse_args()
    raw = raw_round_trips(max(200, ns.trials))
    ours = estop_trials(ns.trials)
    result: dict[str, Any] = {
        "estop_ms": {"p50": round(statistics.median(ours), 3),
                     "p99": round(percentile(ours, 99), 3), "max": round(max(ours), 3),
                     "n": len(ours)},
        "raw_zmq_round_trip_ms": {"p50": round(statistics.median(raw), 3),
                                  "p99": round(percentile(raw, 99), 3), "n": len(raw)}}
    print(json.dumps(result, indent=2))
    p99, floor = percentile(ours, 99), percentile(raw, 99)
    print(json.dumps({"bench": "estop_latency", "metric": "p99 client e-stop -> simulator "
                      "reports zero velocity", "unit": "ms", "value": round(p99, 3),
                      "baseline": round(floor, 3), "ratio": round(p99 / floor, 2),
                      "goal": "p99 < 5 ms on loopback"}))


if __name__ == "__main__":
    main()
