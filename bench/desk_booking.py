"""Producer desk: request -> hold -> confirmed through HTTP with 50 clients, vs the store directly.

The desk runs as its own process (``stagectl desk serve``, uvicorn) on a fresh SQLite store
seeded with ``configs/booking/stages.json``. 50 concurrent clients (one keep-alive connection
each, Bearer tokens) each book slots one after another: ``POST /bookings`` (a request wishing
for a stage and start), ``POST /bookings/{id}/hold``, ``POST /bookings/{id}/confirm``; one
cycle's latency is from the request's send to the confirm's reply. In the same run, the
baseline: the same three calls on ``BookingStore`` directly from 50 threads (one connection
each) on another fresh store with the same slots. A tenth of the cycles aim at a slot another
client also wants, so refusals (explained, not lost) are part of the load.

Goal (issue 15): HTTP p99 within 5x of the direct p99, and at least 200 confirmations/s on
PostgreSQL on 2 cores. PostgreSQL is not a desk backend yet: this run measures SQLite and says
so. Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from _stage import percentile

from scheduler.booking.store import BookingRefused, BookingStore
from stagectl.desk import auth
from stagectl.harness import free_port

ROOT = Path(__file__).resolve().parents[1]
STAGES = json.loads((ROOT / "configs/booking/stages.json").read_text())
BASE = datetime(2031, 6, 2, 0, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
HOURS = 4


def slots(clients: int, cycles: int) -> list[list[tuple[str, datetime]]]:
    """Per client, the (stage, start) of each cycle; every tenth wants a slot already taken."""
    stages = [s["id"] for s in STAGES["stages"] if not s.get("open")]
    out: list[list[tuple[str, datetime]]] = []
    for c in range(clients):
        mine = []
        for k in range(cycles):
            n = c * cycles + k
            if n % 10 == 9 and n >= cycles:  # contend with client c-1's slot of this cycle
                n -= cycles
            stage = stages[n % len(stages)]
            start = BASE + timedelta(hours=6 * (n // len(stages)))
            mine.append((stage, start))
        out.append(mine)
    return out


def spec(stage: str, start: datetime, who: str) -> dict[str, Any]:
    return {"production": f"Bench {who}", "priority": 3, "duration_minutes": HOURS * 60,
            "earliest_start": start.isoformat(),
            "latest_end": (start + timedelta(hours=HOURS)).isoformat(),
            "stage": stage, "start": start.isoformat(), "stages": [stage]}


def seed(db: Path) -> BookingStore:
    store = BookingStore(db)
    store.setup(STAGES)
    return store


# ---- through HTTP ---------------------------------------------------------------------------

async def _client(url: str, token: str, mine: list[tuple[str, datetime]], who: str,
                  lat: list[float], refused: list[int], errors: list[str]) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30.0) as client:
        for stage, start in mine:
            t0 = time.perf_counter()
            r = await client.post("/api/v1/bookings", json=spec(stage, start, who))
            if r.status_code != 201:
                errors.append(f"request {r.status_code}: {r.text[:200]}")
                continue
            bid = r.json()["id"]
            r = await client.post(f"/api/v1/bookings/{bid}/hold", json={})
            if r.status_code == 200:
                r = await client.post(f"/api/v1/bookings/{bid}/confirm", json={})
            if r.status_code == 200:
                lat.append((time.perf_counter() - t0) * 1000)
            elif r.status_code == 409 and r.json()["error"].get("details", {}).get(
                    "explanation") is not None:
                refused.append(1)
            elif r.status_code == 409:
                refused.append(1)
                errors.append("a refusal without an explanation")
            else:
                errors.append(f"{r.status_code}: {r.text[:200]}")


async def _http(url: str, tokens: list[str], plan: list[list[tuple[str, datetime]]]
                ) -> tuple[list[float], int, list[str], float]:
    lat: list[float] = []
    refused: list[int] = []
    errors: list[str] = []
    t0 = time.perf_counter()
    await asyncio.gather(*(_client(url, tokens[c], plan[c], f"c{c}", lat, refused, errors)
                           for c in range(len(plan))))
    return lat, len(refused), errors, time.perf_counter() - t0


def run_http(folder: Path, plan: list[list[tuple[str, datetime]]]) -> dict[str, Any]:
    db = folder / "desk.sqlite"
    store = seed(db)
    auth.ensure_schema(store.conn)
    tokens = []
    for c in range(len(plan)):
        auth.add_user(store.conn, f"bench{c}", "producer", "bench-password")
        tokens.append(auth.create_token(store.conn, f"bench{c}"))
    store.close()
    port = free_port()
    config = folder / "desk.toml"
    config.write_text(f'[desk]\nbind = "127.0.0.1:{port}"\ndb = "{db}"\n'
                      f'max_body_bytes = 65536\n')
    proc = subprocess.Popen([sys.executable, "-m", "stagectl", "desk", "serve", "--config",
                             str(config)], stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(url + "/api/v1/me", timeout=1,
                             headers={"Authorization": f"Bearer {tokens[0]}"}).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise SystemExit("the desk did not come up")
            time.sleep(0.2)
        lat, refused, errors, wall = asyncio.run(_http(url, tokens, plan))
    finally:
        proc.terminate()
        proc.wait(15)
    check = BookingStore(db)
    try:
        confirmed = [r for r in check.records() if r.status.value == "confirmed"]
    finally:
        check.close()
    return {"lat": lat, "refused": refused, "errors": errors, "wall": wall,
            "stored_confirmed": len(confirmed)}


# ---- directly on the store ------------------------------------------------------------------

def run_direct(folder: Path, plan: list[list[tuple[str, datetime]]]) -> dict[str, Any]:
    db = folder / "direct.sqlite"
    seed(db).close()
    lat: list[float] = []
    refused: list[int] = []
    lock = threading.Lock()

    def worker(c: int) -> None:
        store = BookingStore(db)
        try:
            for stage, start in plan[c]:
                t0 = time.perf_counter()
                try:
                    rec = store.request(spec(stage, start, f"c{c}"), f"bench{c}")
                    store.hold(rec.id, f"bench{c}")
                    store.confirm(rec.id, f"bench{c}")
                except BookingRefused:
                    with lock:
                        refused.append(1)
                    continue
                with lock:
                    lat.append((time.perf_counter() - t0) * 1000)
        finally:
            store.close()

    threads = [threading.Thread(target=worker, args=(c,)) for c in range(len(plan))]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {"lat": lat, "refused": len(refused), "wall": time.perf_counter() - t0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--cycles", type=int, default=8, help="bookings per client")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    plan = slots(args.clients, args.cycles)
    with tempfile.TemporaryDirectory() as tmp:
        direct = run_direct(Path(tmp), plan)
        http = run_http(Path(tmp), plan)
    if http["errors"]:
        print("errors:", *http["errors"][:5], sep="\n  ")
    for name, res in (("direct store", direct), ("HTTP desk", http)):
        lat = res["lat"]
        print(f"{name:13s} confirmed {len(lat):4d}  refused {res['refused']:3d}  "
              f"p50 {statistics.median(lat):7.2f} ms  p99 {percentile(lat, 99):7.2f} ms  "
              f"{len(lat) / res['wall']:7.1f} confirmations/s")
    print(f"stored confirmed after the HTTP run: {http['stored_confirmed']} "
          f"(acknowledged {len(http['lat'])})")
    value, baseline = percentile(http["lat"], 99), percentile(direct["lat"], 99)
    print(f"load average before {load_before:.2f}, after {os.getloadavg()[0]:.2f}")
    print(json.dumps({
        "bench": "desk_booking", "metric": f"p99 request->confirmed latency, {args.clients} "
        "HTTP clients (SQLite)", "unit": "ms", "value": round(value, 2),
        "baseline": round(baseline, 2),
        "ratio": round(value / baseline, 2),
        "http_p50_ms": round(statistics.median(http["lat"]), 2),
        "direct_p50_ms": round(statistics.median(direct["lat"]), 2),
        "http_confirmations_per_s": round(len(http["lat"]) / http["wall"], 1),
        "direct_confirmations_per_s": round(len(direct["lat"]) / direct["wall"], 1),
        "refused_http": http["refused"], "refused_direct": direct["refused"],
        "errors": len(http["errors"]), "backend": "sqlite",
        "postgresql": "not measured: PostgreSQL is not a desk backend yet",
        "load_before": round(load_before, 2),
        "goal": "ratio <= 5 and >= 200 confirmations/s on PostgreSQL (2 cores)"}))


if __name__ == "__main__":
    main()
