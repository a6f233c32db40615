"""Producer desk: request -> hold -> confirmed through HTTP with 50 clients, vs the store directly.

The desk runs as its own process (``stagectl desk serve``, uvicorn) on a fresh SQLite store
seeded with ``configs/booking/stages.json``. 50 concurrent clients (one keep-alive connection
each, Bearer tokens) each book slots one after another: ``POST /bookings`` (a request wishing
for a stage and start), ``POST /bookings/{id}/hold``, ``POST /bookings/{id}/confirm``; one
cycle's latency is from the request's send to the confirm's reply. In the same run, the
baseline: the same three calls on ``BookingStore`` directly from 50 threads (one connection
each) on another fresh store with the same slots. A tenth of the cycles aim at a slot another
client also wants, so refusals (explained, not lost) are part of the load.

Both backends in one run (``--backend both``, the default): SQLite files, and fresh databases
on the PostgreSQL that ``STAGECTL_TEST_POSTGRES`` names or ``scripts/postgres-up.sh`` starts.

``--profile PREFIX`` attaches py-spy (``pip install py-spy``) to the desk once it serves,
samples the thread holding the GIL during the HTTP load, writes the collapsed stacks to
``PREFIX-BACKEND.txt`` (for flamegraph tools) and prints the frames seen most, with the
desk's CPU seconds during the load.

Goal (issue 15): HTTP p99 within 5x of the direct p99, and at least 200 confirmations/s on
PostgreSQL on 2 cores. Last line: one JSON object; ``value``/``baseline``/``ratio`` are the
PostgreSQL p99s when PostgreSQL was measured, each backend's figures beside them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
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


def seed(db: Path | str) -> BookingStore:
    store = BookingStore(db)
    store.setup(STAGES)
    return store


# ---- through HTTP ---------------------------------------------------------------------------

class _Reply:
    """What the bench reads of a reply: the status and the JSON body."""

    def __init__(self, status_code: int, body: bytes) -> None:
        self.status_code = status_code
        self.content = body

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.content)


class RawClient:
    """A bare HTTP/1.1 keep-alive client: one connection, one request at a time.

    The load generator shares the 2 cores with the desk and PostgreSQL. httpx's AsyncClient
    costs about 2 ms of CPU per request here (measured: 2.5 s of the bench's CPU for 1160
    requests), as much as a third of what the desk itself spends, so the figures would say
    more about the client library than about the desk. This client writes the request line,
    four headers and the body, and reads the status line, the headers and a Content-Length
    (or chunked) body: about what any client must do. ``--client httpx`` keeps the old one.
    """

    def __init__(self, url: str, token: str, timeout_s: float = 30.0) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.head = (f"Host: {self.host}:{self.port}\r\nAuthorization: Bearer {token}\r\n"
                     "Content-Type: application/json\r\nAccept: application/json\r\n")
        self.timeout_s = timeout_s
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def __aenter__(self) -> RawClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.writer is not None:
            self.writer.close()

    async def post(self, path: str, json: Any) -> _Reply:  # (httpx's argument name)
        body = _json_bytes(json)
        for attempt in (1, 2):  # a keep-alive connection the server closed: once more
            if self.writer is None:
                self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
            assert self.reader is not None
            self.writer.write(f"POST {path} HTTP/1.1\r\n{self.head}Content-Length: "
                              f"{len(body)}\r\n\r\n".encode("latin-1") + body)
            try:
                return await asyncio.wait_for(self._read(self.reader), self.timeout_s)
            except (ConnectionError, asyncio.IncompleteReadError):
                self.writer.close()
                self.reader = self.writer = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    async def _read(self, reader: asyncio.StreamReader) -> _Reply:
        line = await reader.readline()
        if not line:
            raise ConnectionError("closed")
        status = int(line.split(b" ", 2)[1])
        length, chunked, close = 0, False, False
        while True:
            line = await reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
            elif name == b"connection":
                close = b"close" in value.lower()
        if chunked:
            data = bytearray()
            while True:
                size = int((await reader.readline()).split(b";")[0], 16)
                if size == 0:
                    await reader.readline()
                    break
                data += await reader.readexactly(size)
                await reader.readline()
            body = bytes(data)
        else:
            body = await reader.readexactly(length)
        if close and self.writer is not None:
            self.writer.close()
            self.reader = self.writer = None
        return _Reply(status, body)


def _json_bytes(doc: Any) -> bytes:
    return json.dumps(doc, separators=(",", ":")).encode()


CLIENT = "raw"  # or "httpx" (--client)


async def _client(url: str, token: str, mine: list[tuple[str, datetime]], who: str,
                  lat: list[float], refused: list[int], errors: list[str]) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    client: Any = RawClient(url, token) if CLIENT == "raw" else \
        httpx.AsyncClient(base_url=url, headers=headers, timeout=30.0)
    async with client:
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


class Profile:
    """py-spy on the desk's process for the duration of the load (``--profile``)."""

    def __init__(self, pid: int, out: Path) -> None:
        spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
        if not Path(spy).exists():
            raise SystemExit("--profile needs py-spy (pip install py-spy)")
        self.pid = pid
        self.out = out
        self.cpu_s = self._cpu()
        self.proc = subprocess.Popen([spy, "record", "--pid", str(pid), "--gil", "-r", "200",
                                      "--nonblocking", "-f", "raw", "-o", str(out)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)  # py-spy attaches

    def _cpu(self) -> float:
        try:
            fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return float("nan")
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self, requests: int) -> None:
        cpu_s = self._cpu() - self.cpu_s
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait(60)
        print(f"desk CPU during the load: {cpu_s:.2f} s, {1000 * cpu_s / max(1, requests):.2f} ms"
              f" a request; GIL samples in {self.out}")
        inclusive: dict[str, int] = {}
        leaf: dict[str, int] = {}
        total = 0
        if self.out.exists():
            for line in self.out.read_text().splitlines():
                stack, _, count = line.rpartition(" ")
                n = int(count)
                total += n
                frames = [re.sub(r":\d+\)$", ")", f) for f in stack.split(";")[1:]]
                if frames:
                    leaf[frames[-1]] = leaf.get(frames[-1], 0) + n
                for f in dict.fromkeys(frames):  # the project's own frames, each once a stack
                    if "(stagectl/" in f or "(scheduler/" in f:
                        inclusive[f] = inclusive.get(f, 0) + n
        for title, table in (("project frames, inclusive", inclusive), ("self", leaf)):
            print(f"  {title} (% of {total} GIL samples):")
            for f, n in sorted(table.items(), key=lambda x: -x[1])[:15]:
                print(f"  {100 * n / max(1, total):5.1f}%  {f}")


def run_http(folder: Path, plan: list[list[tuple[str, datetime]]],
             db: Path | str, profile: Path | None = None) -> dict[str, Any]:
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
        spy = Profile(proc.pid, profile) if profile is not None else None
        cpu = time.process_time()
        lat, refused, errors, wall = asyncio.run(_http(url, tokens, plan))
        client_cpu_s = time.process_time() - cpu
        if spy is not None:
            spy.stop(3 * len(lat) + 2 * refused)
    finally:
        proc.terminate()
        proc.wait(15)
    check = BookingStore(db)
    try:
        confirmed = [r for r in check.records() if r.status.value == "confirmed"]
    finally:
        check.close()
    return {"lat": lat, "refused": refused, "errors": errors, "wall": wall,
            "client_cpu_s": client_cpu_s,
            "stored_confirmed": len(confirmed)}


# ---- directly on the store ------------------------------------------------------------------

def run_direct(plan: list[list[tuple[str, datetime]]], db: Path | str) -> dict[str, Any]:
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


def postgres_server() -> str:
    """The PostgreSQL to measure on: $STAGECTL_TEST_POSTGRES, else scripts/postgres-up.sh."""
    url = os.environ.get("STAGECTL_TEST_POSTGRES", "").strip()
    if url:
        return url
    out = subprocess.run(["bash", str(ROOT / "scripts" / "postgres-up.sh")], check=True,
                         capture_output=True, text=True, timeout=300)
    return out.stdout.strip().splitlines()[-1]


def fresh_database(server: str) -> str:
    import secrets
    from urllib.parse import urlsplit, urlunsplit

    import psycopg

    name = "bench_" + secrets.token_hex(5)
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")  # type: ignore[arg-type]
    return urlunsplit(urlsplit(server)._replace(path="/" + name))


def drop_database(server: str, url: str) -> None:
    from urllib.parse import urlsplit

    import psycopg

    name = urlsplit(url).path.lstrip("/")
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")  # type: ignore[arg-type]


def measure(backend: str, plan: list[list[tuple[str, datetime]]],
            profile: str | None = None) -> dict[str, Any]:
    """Direct and HTTP runs on fresh stores of one backend."""
    spy = Path(f"{profile}-{backend}.txt").resolve() if profile else None
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if backend == "sqlite":
            direct = run_direct(plan, folder / "direct.sqlite")
            http = run_http(folder, plan, folder / "desk.sqlite", spy)
        else:
            server = postgres_server()
            dbs = [fresh_database(server), fresh_database(server)]
            try:
                direct = run_direct(plan, dbs[0])
                http = run_http(folder, plan, dbs[1], spy)
            finally:
                for db in dbs:
                    drop_database(server, db)
    if http["errors"]:
        print(f"{backend} errors:", *http["errors"][:5], sep="\n  ")
    for name, res in (("direct store", direct), ("HTTP desk", http)):
        lat = res["lat"]
        print(f"{backend:10s} {name:13s} confirmed {len(lat):4d}  refused {res['refused']:3d}  "
              f"p50 {statistics.median(lat):7.2f} ms  p99 {percentile(lat, 99):7.2f} ms  "
              f"{len(lat) / res['wall']:7.1f} confirmations/s")
    print(f"{backend}: stored confirmed after the HTTP run: {http['stored_confirmed']} "
          f"(acknowledged {len(http['lat'])}); the load generator ({CLIENT} client) used "
          f"{http['client_cpu_s']:.2f} s of CPU in {http['wall']:.2f} s")
    return {
        "http_p99_ms": round(percentile(http["lat"], 99), 2),
        "direct_p99_ms": round(percentile(direct["lat"], 99), 2),
        "ratio": round(percentile(http["lat"], 99) / percentile(direct["lat"], 99), 2),
        "http_p50_ms": round(statistics.median(http["lat"]), 2),
        "direct_p50_ms": round(statistics.median(direct["lat"]), 2),
        "http_confirmations_per_s": round(len(http["lat"]) / http["wall"], 1),
        "direct_confirmations_per_s": round(len(direct["lat"]) / direct["wall"], 1),
        "refused_http": http["refused"], "refused_direct": direct["refused"],
        "errors": len(http["errors"]),
        "lost": len(http["lat"]) - http["stored_confirmed"],
        "client_cpu_s": round(http["client_cpu_s"], 2), "http_wall_s": round(http["wall"], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--cycles", type=int, default=8, help="bookings per client")
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--profile", metavar="PREFIX",
                        help="py-spy the desk during the HTTP load (PREFIX-BACKEND.txt)")
    parser.add_argument("--client", choices=("raw", "httpx"), default="raw",
                        help="the load generator's HTTP client (see RawClient)")
    args = parser.parse_args()
    global CLIENT
    CLIENT = args.client
    load_before = os.getloadavg()[0]
    plan = slots(args.clients, args.cycles)
    backends = ("sqlite", "postgresql") if args.backend == "both" else (args.backend,)
    results = {b: measure(b, plan, args.profile) for b in backends}
    load_after = os.getloadavg()[0]
    print(f"load average before {load_before:.2f}, after {load_after:.2f}")
    main_backend = "postgresql" if "postgresql" in results else "sqlite"
    r = results[main_backend]
    print(json.dumps({
        "bench": "desk_booking", "metric": f"p99 request->confirmed latency, {args.clients} "
        f"HTTP clients ({main_backend})", "unit": "ms", "value": r["http_p99_ms"],
        "baseline": r["direct_p99_ms"], "ratio": r["ratio"],
        "backends": results,
        "load_before": round(load_before, 2), "load_after": round(load_after, 2),
        "client": CLIENT,
        "goal": "ratio <= 5 and >= 200 confirmations/s on PostgreSQL (2 cores)"}))


if __name__ == "__main__":
    main()
