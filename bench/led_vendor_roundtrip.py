"""Vendor LED round trip: client -> engine -> vendor simulator -> state back on the PUB socket.

For each vendor driver (Tessera, HELIOS, NovaStar COEX): ``led.set colour_temperature_k`` through
the engine, timed until the new value comes back as a delta on the engine's PUB socket. In the
same run, the floor: a bare HTTP round trip with the same client library (aiohttp, one
keep-alive session) to the same simulator, sending the request the driver sends for that key
and waiting for its reply. The simulators and the engine run as separate processes
(``stagectl sim`` / ``stagectl serve``) like on a stage, with the simulated processing latency
set to 0 so the ratio shows our overhead, not the processor's.

Goal: for every driver, engine p99 within 3x of the bare HTTP p99. Last line: one JSON object
(``value``/``baseline``/``ratio`` for the worst driver; ``drivers`` holds each one).
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
import time
from pathlib import Path
from typing import Any

import aiohttp
from _stage import led_round_trips, percentile, start_engine, stop

from stagectl.harness import free_port

VENDORS = ("tessera", "helios", "novastar")


def write_config(folder: Path) -> tuple[Path, dict[str, int]]:
    ports = {v: free_port() for v in VENDORS}
    blocks = []
    for vendor, port in ports.items():
        blocks.append(f"""
[[devices]]
name = "led-{vendor}"
kind = "led"
driver = "{vendor}"
address = "127.0.0.1:{port}"
max_brightness_nits = 1500
[[simulators]]
name = "led-{vendor}-sim"
kind = "led"
protocol = "{vendor}"
listen = "127.0.0.1:{port}"
max_brightness_nits = 1500
latency_ms = 0
""")
    path = folder / "bench-vendors.toml"
    path.write_text(f"""
[stage]
name = "bench-vendors"
[engine]
command = "tcp://127.0.0.1:{free_port()}"
state = "tcp://127.0.0.1:{free_port()}"
[mqtt]
enabled = false
""" + "".join(blocks))
    return path, ports


async def _screen_id(session: aiohttp.ClientSession, base: str) -> str:
    async with session.get(base + "/api/v1/screen") as resp:
        body = await resp.json(content_type=None)
    return str(body["data"]["screens"][0]["screenID"])


async def _bare(vendor: str, port: int, n: int, single: bool) -> list[float]:
    """The HTTP exchange that sets a colour temperature and learns what the processor holds.

    Tessera and HELIOS echo the stored value in the write's reply: one request. A COEX reply is
    an envelope without the value, and a Success envelope does not prove the change happened
    (docs/protocols/novastar-coex.md), so the driver reads ``displayparams`` back: the floor is
    the same two requests. ``single`` times only the write (reported beside it).
    """
    base = f"http://127.0.0.1:{port}"
    out: list[float] = []
    async with aiohttp.ClientSession() as session:
        screen = await _screen_id(session, base) if vendor == "novastar" else ""
        for i in range(n):
            value = 3000 + (i % 2) * 2000 + i % 7
            if vendor == "tessera":
                method, url = "PUT", base + "/api/output/global-colour/colour-temperature"
                body: Any = {"data": value}
            elif vendor == "helios":
                method, url = "PATCH", base + "/api/v1/public"
                body = {"dev": {"display": {"cct": value}}}
            else:
                method, url = "PUT", base + "/api/v1/screen/colortemperature"
                body = {"screenIdList": [screen], "colorTemperature": value}
            start = time.perf_counter()
            async with session.request(method, url, json=body) as resp:
                await resp.read()
                if resp.status != 200:
                    raise RuntimeError(f"{vendor}: bare request answered {resp.status}")
            if vendor == "novastar" and not single:
                async with session.get(base + "/api/v1/screen/displayparams") as resp:
                    await resp.read()
            out.append((time.perf_counter() - start) * 1000)
    return out


def bare_round_trips(vendor: str, port: int, n: int, single: bool = False) -> list[float]:
    return asyncio.run(_bare(vendor, port, n, single))


def engine_round_trips(config_path: Path, vendor: str, n: int) -> list[float]:
    return led_round_trips(config_path, n, f"led-{vendor}", 3.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=200, help="round trips per block and driver")
    parser.add_argument("--blocks", type=int, default=3)
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        path, ports = write_config(Path(tmp))
        sim = subprocess.Popen([sys.executable, "-m", "stagectl", "sim", "--config", str(path)],
                               stderr=subprocess.DEVNULL)
        engine = None
        try:
            engine, _ = start_engine(path, wait_for=lambda status: all(
                d["health"] != "offline" for d in status["devices"]))
            raw: dict[str, list[float]] = {v: [] for v in VENDORS}
            one: dict[str, list[float]] = {v: [] for v in VENDORS}
            ours: dict[str, list[float]] = {v: [] for v in VENDORS}
            for _ in range(args.blocks):  # interleave so drift hits both equally
                for vendor in VENDORS:
                    raw[vendor] += bare_round_trips(vendor, ports[vendor], args.n)
                    one[vendor] += bare_round_trips(vendor, ports[vendor], args.n, True)
                    ours[vendor] += engine_round_trips(path, vendor, args.n)
        finally:
            if engine is not None:
                stop(engine)
            stop(sim)
    for vendor in VENDORS:
        r, o = raw[vendor], ours[vendor]
        results[vendor] = {
            "p50_ms": round(statistics.median(o), 3), "p99_ms": round(percentile(o, 99), 3),
            "bare_p50_ms": round(statistics.median(r), 3),
            "bare_p99_ms": round(percentile(r, 99), 3),
            "ratio": round(percentile(o, 99) / percentile(r, 99), 2),
            "single_request_p99_ms": round(percentile(one[vendor], 99), 3),
            "ratio_to_single_request": round(percentile(o, 99) / percentile(one[vendor], 99),
                                             2)}
        print(f"{vendor:9s} engine p50={results[vendor]['p50_ms']:.3f} "
              f"p99={results[vendor]['p99_ms']:.3f} ms   bare HTTP "
              f"p50={results[vendor]['bare_p50_ms']:.3f} p99={results[vendor]['bare_p99_ms']:.3f}"
              f" ms   ratio {results[vendor]['ratio']:.2f}")
    worst = max(VENDORS, key=lambda v: results[v]["ratio"])
    print(f"load average before {load_before:.2f}, after {os.getloadavg()[0]:.2f}")
    print(json.dumps({"bench": "led_vendor_roundtrip",
                      "metric": f"p99 command-to-state latency (worst driver: {worst})",
                      "unit": "ms", "value": results[worst]["p99_ms"],
                      "baseline": results[worst]["bare_p99_ms"],
                      "ratio": results[worst]["ratio"], "drivers": results,
                      "load_before": round(load_before, 2),
                      "goal": "ratio <= 3 for every driver (engine p99 within 3x of a bare "
                              "aiohttp exchange to the same simulator: the write, plus the "
                              "read-back where the API echoes nothing)"}))


if __name__ == "__main__":
    main()
