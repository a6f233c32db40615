"""``stagectl farm demo``: a real controller, three local agents and an 8K plate job set.

Every piece is the production one started as its own process on loopback; the frames are
rendered for real (at 8K / ``scale``) and checked at the end. Ctrl-C, an error or the
timeout stop every process the demo started. The farm's file and frames stay in the demo
folder (default ``var/farm/demo``): ``stagectl farm status --db var/farm/demo/farm.sqlite``
shows them afterwards.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType
from typing import Any
from zoneinfo import ZoneInfo

from rich.console import Console
from rich.live import Live
from rich.table import Table

from scheduler.dispatch.client import ControllerError, ControllerUnavailable, FarmClient
from scheduler.dispatch.jobfile import JobSpec, chunk_tasks
from scheduler.dispatch.render import UHD_8K
from scheduler.dispatch.runner import declared_outputs

AGENTS = (
    ("rtx4090-01", 2, 24.0, 1.0),
    ("a6000-01", 1, 48.0, 1.4),
    ("h100-01", 1, 80.0, 2.2),
)
"""Declared capacities (node id, slots, VRAM GB, speed): the demo machine has no GPUs."""


def demo_jobs(out: Path, width: int, height: int, now_utc: float) -> list[JobSpec]:
    """Two background plates and a look-dev pass that waits for the first plate."""
    argv = ("{python}", "-m", "scheduler.dispatch.render", "--width", str(width),
            "--height", str(height), "--frame", "{frame_start}", "--to-frame", "{frame_end}",
            "--out", "{output}")

    def job(job_id: str, first: int, last: int, chunk: int, vram: float, deadline_s: float,
            priority: float, after: tuple[str, ...] = ()) -> JobSpec:
        return JobSpec(id=job_id, frame_start=first, frame_end=last, chunk_size=chunk,
                       argv=argv, output=str(out / job_id / f"{job_id}.####.png"),
                       estimate_s=1.0, vram_gb=vram, deadline_utc=now_utc + deadline_s,
                       priority=priority, after=after,
                       tasks=chunk_tasks(job_id, first, last, chunk))

    return [
        job("sh010-plate", 1001, 1012, 2, 16, 40, 2),
        job("sh020-plate", 1001, 1008, 2, 40, 40, 1),
        job("sh010-lookdev", 1, 4, 2, 64, 50, 1, ("sh010-plate",)),
    ]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _stop_all(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    deadline = time.monotonic() + 5
    for proc in procs:
        try:
            proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


DB_NAME = "farm.sqlite"


def run_demo(out: Path, scale: int, timeout_s: float,
             zone: ZoneInfo | None = None) -> int:
    """Run the demo; returns the exit code (0 when every frame was rendered).

    ``out`` keeps the farm's file, frames and logs for ``farm status --db``; what an earlier
    demo left there (its file, its jobs' frames, its logs) is replaced.
    """
    console = Console()
    out.mkdir(parents=True, exist_ok=True)
    _clear_previous(out)
    return _run(console, out.resolve(), scale, timeout_s, zone or ZoneInfo("Asia/Shanghai"))


def _clear_previous(out: Path) -> None:
    """Remove only what an earlier demo wrote into ``out`` (its job ids would clash)."""
    for suffix in ("", "-wal", "-shm", "-journal"):
        (out / f"{DB_NAME}{suffix}").unlink(missing_ok=True)
    for job_id in ("sh010-plate", "sh020-plate", "sh010-lookdev"):
        shutil.rmtree(out / "frames" / job_id, ignore_errors=True)


def _run(console: Console, out: Path, scale: int, timeout_s: float, zone: ZoneInfo) -> int:
    width, height = max(UHD_8K[0] // scale, 1), max(UHD_8K[1] // scale, 1)
    address = f"tcp://127.0.0.1:{_free_port()}"
    py = [sys.executable, "-m", "stagectl", "farm"]
    procs: list[subprocess.Popen[bytes]] = []
    logs = out / "logs"
    logs.mkdir(exist_ok=True)

    def spawn(name: str, args: list[str]) -> None:
        with open(logs / f"{name}.log", "wb") as f:
            procs.append(subprocess.Popen([*py, *args], stdout=f, stderr=subprocess.STDOUT,
                                          stdin=subprocess.DEVNULL))

    interrupted = False

    def on_signal(signum: int, frame: FrameType | None) -> None:
        nonlocal interrupted
        interrupted = True

    old = signal.signal(signal.SIGINT, on_signal)
    old_term = signal.signal(signal.SIGTERM, on_signal)
    t0 = time.monotonic()
    try:
        spawn("controller", ["controller", "--db", str(out / DB_NAME), "--bind", address,
                             "--heartbeat-s", "0.5", "--node-timeout-s", "3"])
        for node_id, slots, vram, speed in AGENTS:
            spawn(node_id, ["agent", "--controller", address, "--node-id", node_id,
                            "--slots", str(slots), "--vram-gb", str(vram),
                            "--speed", str(speed)])
        console.print(f"[bold]farm demo[/]: controller {address}, agents "
                      + ", ".join(f"{n} ({s}x {v:g} GB)" for n, s, v, _ in AGENTS)
                      + f"; 8K plates at {width}x{height} into {out}", highlight=False)
        jobs = demo_jobs(out / "frames", width, height, time.time())
        with FarmClient(address, timeout_s=2.0) as client:
            deadline = time.monotonic() + 20
            while True:
                try:
                    client.request("ping")
                    break
                except ControllerUnavailable:
                    if interrupted or time.monotonic() > deadline:
                        raise
            client.request("submit", jobs=[j.to_wire() for j in jobs])
            status = _watch(console, client, timeout_s, lambda: interrupted, zone)
            nodes = client.request("nodes")["nodes"]
            events = client.request("events", limit=1000)["events"]
    except (ControllerUnavailable, ControllerError) as exc:
        console.print(f"[bold red]error:[/] {exc} (logs in {logs})", highlight=False)
        return 1
    finally:
        _stop_all(procs)
        signal.signal(signal.SIGINT, old)
        signal.signal(signal.SIGTERM, old_term)
    if interrupted:
        console.print("interrupted: every demo process stopped")
        return 130
    return _summary(console, out, jobs, status, nodes, events, time.monotonic() - t0)


def _watch(console: Console, client: FarmClient, timeout_s: float,
           interrupted: Any, zone: ZoneInfo) -> list[dict[str, Any]]:
    from stagectl.cli.farm import status_view

    deadline = time.monotonic() + timeout_s
    jobs: list[dict[str, Any]] = []
    with Live(console=console, refresh_per_second=8, transient=False) as live:
        while time.monotonic() < deadline and not interrupted():
            reply = client.request("status")
            jobs = reply["jobs"]
            nodes = client.request("nodes")["nodes"]
            live.update(status_view(jobs, nodes, reply["plan"], zone, time.time()))
            if jobs and all(j["state"] in ("done", "cancelled", "stalled") for j in jobs):
                break
            time.sleep(0.25)
    console.print()
    return jobs


def _summary(console: Console, out: Path, jobs: list[JobSpec], status: list[dict[str, Any]],
             nodes: list[dict[str, Any]], events: list[dict[str, Any]], wall_s: float) -> int:
    from stagectl.cli.farm import plural

    table = Table(title="farm demo summary")
    for col in ("job", "state", "frames on disk", "deadline met"):
        table.add_column(col, overflow="fold")
    ok = True
    by_id = {s["id"]: s for s in status}
    for job in jobs:
        st = by_id.get(job.id, {})
        files = [Path(f) for t in job.tasks
                 for f in declared_outputs(job.output, t.frame_start, t.frame_end)]
        on_disk = sum(1 for f in files if f.is_file() and f.stat().st_size > 0)
        met = st.get("state") == "done" and not st.get("late")
        ok = ok and on_disk == len(files) and st.get("state") == "done"
        table.add_row(job.id, str(st.get("state", "?")), f"{on_disk}/{len(files)}",
                      "yes" if met else "no")
    console.print(table)
    plans = sum(1 for e in events if e["kind"] == "planned")
    console.print(f"{plural(len(nodes), 'agent')}; {plural(plans, 'plan')}; "
                  f"wall time {wall_s:.1f} s", highlight=False)
    console.print("[green]all frames rendered[/]" if ok else "[red]some frames missing[/]")
    db = _shown(out / DB_NAME)
    console.print(f"kept in {_shown(out)}: the farm's file, frames/ and logs/\n"
                  f"next: stagectl farm status --db {db}\n"
                  f"to serve it again: stagectl farm controller --db {db}", highlight=False)
    return 0 if ok else 1


def _shown(path: Path) -> str:
    """``path`` relative to the working folder when inside it (shorter to type)."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)
