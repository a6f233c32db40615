"""Shared helpers for benchmarks that run a real engine process."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from stagectl.client import EngineClient
from stagectl.config import StageConfig, load_config


def start_engine(config_path: Path, wait_for: Any = None,
                 timeout_s: float = 30.0) -> tuple[subprocess.Popen[bytes], StageConfig]:
    """Start ``stagectl serve`` on ``config_path`` and wait until it answers."""
    log = config_path.with_suffix(".log").open("w+b")
    proc = subprocess.Popen([sys.executable, "-m", "stagectl", "serve", "--config",
                             str(config_path)], stderr=log)
    cfg = load_config(config_path)
    deadline = time.monotonic() + timeout_s
    with EngineClient(cfg, timeout_s=0.5) as client:
        while True:
            try:
                status = client.call("status")
                if wait_for is None or wait_for(status):
                    return proc, cfg
            except Exception:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                proc.wait()
                log.seek(0)
                tail = log.read().decode(errors="replace")[-2000:]
                raise SystemExit(f"the engine did not come up:\n{tail}")
            time.sleep(0.2)


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGINT, then wait; kill if it hangs."""
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def percentile(samples: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def led_round_trips(config_path: Path, n: int, device: str = "led-main",
                    timeout_s: float = 2.0) -> list[float]:
    """``led.set colour_temperature_k`` through the engine until its delta is on the PUB socket.

    Returns the round trips in ms. The engine's replies are read (and an error raised) as they
    come, so a refused command cannot pass for a slow one.
    """
    import json

    from stagectl.client import ClientIdentity, StateSubscriber

    config = load_config(config_path)
    sub = StateSubscriber(config, topics=(f"device.{device}",))
    out = []
    with EngineClient(config, ClientIdentity("bench", "operator")) as client:
        time.sleep(0.3)
        for i in range(n):
            value = 3000 + (i % 2) * 2000 + i % 7 + 1
            start = time.perf_counter()
            rid = client.send("led.set", {"device": device, "key": "colour_temperature_k",
                                          "value": value})
            while True:
                got = sub.recv(timeout_s)
                if got is None:
                    raise RuntimeError(f"{device}: no state change came back within "
                                       f"{timeout_s:g} s")
                body = got[1]
                if body["type"] == "delta" and body["data"].get("colour_temperature_k") == value:
                    break
            out.append((time.perf_counter() - start) * 1000)
            while client.socket.poll(0):  # consume the command reply
                reply = json.loads(client.socket.recv())
                if reply["id"] == rid and not reply["ok"]:
                    raise RuntimeError(reply["error"])
    sub.close()
    return out
