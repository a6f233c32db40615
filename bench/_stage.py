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
