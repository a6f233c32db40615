"""SIGKILL mid-run: nothing the desk acknowledged is lost after a restart on the same file."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from tests.desk.conftest import Template

REPO = Path(__file__).resolve().parents[2]
FIRST_DAY = datetime(2031, 4, 1, 10, 0)
STAGES = ["HP-1", "HP-2", "HP-3", "HP-4", "NS-1", "NS-2", "NS-3", "SZ-1", "SZ-2", "SZ-3"]


def _serve(cfg: Path) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", "from stagectl.cli.desk import app; app()", "serve",
         "--config", str(cfg)], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env={**os.environ, "COLUMNS": "200"})
    assert proc.stdout is not None
    line = proc.stdout.readline()
    m = re.search(r"serving (http://127\.0\.0\.1:\d+)", line)
    if not m:
        proc.kill()
        raise AssertionError(line + proc.communicate(timeout=10)[1])
    return proc, m.group(1)


def test_acknowledged_changes_survive_sigkill(desk_template: Template, tmp_path: Path) -> None:
    db = desk_template.copy(tmp_path)
    cfg = tmp_path / "desk.toml"
    cfg.write_text(f'[desk]\nbind = "127.0.0.1:0"\ndb = "{db}"\n')
    auth = {"Authorization": f"Bearer {desk_template.tokens['producer']}"}
    acked: dict[str, str] = {}  # booking id -> the last state the desk acknowledged
    lock = threading.Lock()
    stop = threading.Event()
    proc, url = _serve(cfg)

    def client(n: int) -> None:
        day = 0
        with httpx.Client(base_url=url, headers=auth, timeout=10) as c:
            while not stop.is_set():
                day += 1
                try:
                    r = c.post("/api/v1/bookings", json={
                        "production": f"P{n}", "duration_minutes": 60, "priority": 1,
                        "earliest_start": "2031-03-01 00:00", "latest_end": "2031-12-31",
                        "stage": STAGES[n],  # one stage per client, one day per request
                        "start": (FIRST_DAY + timedelta(days=day)).strftime("%Y-%m-%d %H:%M")})
                    if r.status_code != 201:
                        continue
                    bid = r.json()["id"]
                    with lock:
                        acked[bid] = "requested"
                    for step, state in (("hold", "hold"), ("confirm", "confirmed")):
                        r = c.post(f"/api/v1/bookings/{bid}/{step}")
                        if r.status_code != 200:
                            break
                        with lock:
                            acked[bid] = state
                except httpx.HTTPError:
                    return  # the desk was killed

    threads = [threading.Thread(target=client, args=(n,)) for n in range(len(STAGES))]
    try:
        for t in threads:
            t.start()
        deadline = time.monotonic() + 20
        while len(acked) < 30 and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        stop.set()
        for t in threads:
            t.join(20)
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)
    assert len(acked) >= 30, acked
    order = ["requested", "hold", "confirmed"]
    proc, url = _serve(cfg)
    try:
        rows = httpx.get(url + "/api/v1/bookings", headers=auth, timeout=30).json()
        stored: dict[str, Any] = {r["id"]: r["status"] for r in rows}
        for bid, state in acked.items():
            assert bid in stored, f"{bid} acknowledged as {state} but lost"
            # a change may have been made but not acknowledged (killed before the reply)
            assert order.index(stored[bid]) >= order.index(state), (bid, state, stored[bid])
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)
