"""``stagectl farm ...``: render-farm planning and execution commands.

Thin wrappers over :mod:`scheduler.farm` (planning, docs/farm-json.md) and
:mod:`scheduler.dispatch` (controller, agents, jobs, docs/farm-dispatch.md).
Exit codes: 0 ok, 1 failure, 2 bad input (the message names the file and key path).
The planner (OR-Tools) is imported only by the commands that plan, so agents start fast.
"""

from __future__ import annotations

import json
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from scheduler.dbfile import DatabaseFileError, explain
from scheduler.farm.model import (
    FarmInputError,
    Plan,
    assignments_from_json,
    load_farm,
    parse_farm,
)

if TYPE_CHECKING:
    from scheduler.dispatch.client import FarmClient

OBJECTIVES = ("cost", "makespan")
app = typer.Typer(help="Plan and run render chunks on GPU nodes and compute-pool time.")
_err = Console(stderr=True)


@app.command("plan")
def plan_cmd(
    input_path: Annotated[Path, typer.Option("--input", help="Farm JSON (docs/farm-json.md).")],
    output: Annotated[
        Path | None, typer.Option("--output", help="Write the plan JSON here (default: stdout).")
    ] = None,
    time_limit: Annotated[
        float, typer.Option("--time-limit", min=0.1, help="Wall-clock budget in seconds.")
    ] = 10.0,
    objective: Annotated[
        str, typer.Option("--objective", help="cost (CNY) or makespan (seconds).")
    ] = "cost",
    previous: Annotated[
        Path | None,
        typer.Option("--previous", help="An earlier plan's output JSON: re-plan from it."),
    ] = None,
) -> None:
    """Plan every task of the farm and write the plan JSON."""
    from scheduler.farm.planner import PlanningError, plan_farm

    if objective not in OBJECTIVES:
        _fail(2, f"--objective: expected one of {list(OBJECTIVES)}, got {objective!r}")
    try:
        farm = load_farm(input_path)
    except FarmInputError as exc:
        _fail(2, f"{input_path}: {exc}")
    except OSError as exc:
        _fail(2, f"cannot read input: {exc}")
    prev = None
    if previous is not None:
        try:
            prev = assignments_from_json(_read_json(previous))
        except FarmInputError as exc:
            _fail(2, f"{previous}: {exc}")
        except OSError as exc:
            _fail(2, f"cannot read previous plan: {exc}")
    try:
        plan = plan_farm(farm, objective=objective, time_limit_s=time_limit, previous=prev)
    except PlanningError as exc:
        _fail(1, str(exc))
    text = json.dumps(plan.to_json(), indent=2)
    if output is None:
        sys.stdout.write(text + "\n")
    else:
        output.write_text(text + "\n", encoding="utf-8")
    _summary(plan)


@app.command("bench-fjsp")
def bench_fjsp_cmd(
    file: Annotated[Path, typer.Argument(help="Brandimarte .fjs instance.")],
    time_limit: Annotated[
        float, typer.Option("--time-limit", min=0.1, help="Wall-clock budget in seconds.")
    ] = 60.0,
) -> None:
    """Plan a flexible job-shop instance for makespan; print one JSON line."""
    from scheduler.farm.fjsp import read_fjs
    from scheduler.farm.planner import PlanningError, plan_farm

    try:
        farm = parse_farm(read_fjs(file))
    except FarmInputError as exc:
        _fail(2, str(exc))
    except OSError as exc:
        _fail(2, f"cannot read {file}: {exc}")
    try:
        plan = plan_farm(farm, objective="makespan", time_limit_s=time_limit)
    except PlanningError as exc:
        _fail(1, str(exc))
    line = {
        "instance": file.stem,
        "makespan": plan.makespan_s,
        "bound": plan.to_json()["bound"],
        "solve_seconds": round(plan.solve_seconds, 3),
    }
    sys.stdout.write(json.dumps(line) + "\n")


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise FarmInputError("", f"not valid JSON: {exc}") from exc


def _fail(code: int, message: str) -> NoReturn:
    _err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def _summary(plan: Plan) -> None:
    table = Table(title="farm plan", show_header=False)
    data = plan.to_json()
    for key in ("status", "objective", "bound", "greedy_objective", "makespan", "cost_cny"):
        table.add_row(key, str(data[key]))
    table.add_row("tasks", str(len(plan.assignments)))
    table.add_row("late jobs", str(sum(1 for j in plan.jobs if j.late_s > 0)))
    table.add_row("solve_seconds", str(data["solve_seconds"]))
    _err.print(table)


# --------------------------------------------------------------------------- execution

ControllerOpt = Annotated[str, typer.Option(
    "--controller", envvar="STAGECTL_FARM_CONTROLLER",
    help="The controller's ZeroMQ address.")]
KeysOpt = Annotated[Path | None, typer.Option(
    "--keys-dir", envvar="STAGECTL_FARM_KEYS",
    help="CURVE keys (server.key + your NAME.key_secret); needed off loopback.")]
KeyNameOpt = Annotated[str, typer.Option(
    "--key-name", help="Your certificate's name in --keys-dir.")]
JsonFlag = Annotated[bool, typer.Option("--json", help="Machine-readable JSON.")]
DEFAULT_ADDR = "tcp://127.0.0.1:5580"


def _client(controller: str, keys_dir: Path | None, key_name: str,
            timeout_s: float = 5.0) -> FarmClient:
    from scheduler.dispatch.client import FarmClient
    from scheduler.dispatch.curve import KeysMissing

    try:
        return FarmClient(controller, timeout_s=timeout_s, keys_dir=keys_dir, key_name=key_name)
    except KeysMissing as exc:
        _fail(2, str(exc))


def _call(controller: str, keys_dir: Path | None, key_name: str, kind: str,
          **fields: Any) -> dict[str, Any]:
    from scheduler.dispatch.client import ControllerError, ControllerUnavailable

    client = _client(controller, keys_dir, key_name)
    try:
        return client.request(kind, **fields)
    except ControllerUnavailable as exc:
        _fail(1, str(exc))
    except ControllerError as exc:
        _fail(2 if kind == "submit" else 1, str(exc))
    finally:
        client.close()


STOP_GRACE_S = 3.5
"""After SIGTERM/SIGINT a farm process stops cleanly; if anything still blocks it this long
later (a hung batch-system command, a stuck plan), it is aborted, so it always exits within
the 5 s a supervisor allows (the store's open transaction rolls back)."""


def _stop_on_signals(stop: Callable[[], None], grace_s: float) -> None:
    """SIGTERM and SIGINT call ``stop``; ``grace_s`` later the process is aborted regardless."""
    import os
    import signal

    def hard_exit(*_: object) -> None:
        os._exit(1)

    def abort(*_: object) -> None:
        signal.signal(signal.SIGALRM, hard_exit)
        signal.setitimer(signal.ITIMER_REAL, 0.8)  # if even the unwinding hangs
        _err.print(f"[bold red]error:[/] still busy {grace_s:g} s after the stop signal; "
                   "aborting", highlight=False)
        raise SystemExit(1)

    def on_signal(*_: object) -> None:
        stop()
        if signal.getitimer(signal.ITIMER_REAL)[0] == 0:
            signal.signal(signal.SIGALRM, abort)
            signal.setitimer(signal.ITIMER_REAL, grace_s)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)


DEFAULT_FARM_DB = Path("var/farm/farm.sqlite")


@app.command("controller")
def controller_cmd(
    db: Annotated[Path, typer.Option(
        "--db", help="SQLite file (created if missing, in an existing folder; the default's "
        "folder var/farm is created).")] = DEFAULT_FARM_DB,
    bind: Annotated[str | None, typer.Option("--bind", help="ROUTER address.")] = None,
    config: Annotated[Path | None, typer.Option(
        "--config", help="Farm TOML: [controller] settings and [[pools]].")] = None,
    keys_dir: KeysOpt = None,
    curve: Annotated[bool, typer.Option(
        "--curve", help="Require CURVE even on loopback (always on off loopback).")] = False,
    heartbeat_s: Annotated[float | None, typer.Option("--heartbeat-s", min=0.05)] = None,
    node_timeout_s: Annotated[float | None, typer.Option("--node-timeout-s", min=0.1)] = None,
) -> None:
    """Run the farm controller until Ctrl-C (tasks survive a kill: they are in --db)."""
    import dataclasses
    import logging

    from scheduler.dispatch.config import ControllerConfig, FarmConfigError, load_farm_config
    from scheduler.dispatch.controller import Controller
    from scheduler.dispatch.curve import KeysMissing
    from scheduler.dispatch.store import FILE as FARM_FILE

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        cfg = load_farm_config(config) if config is not None else ControllerConfig()
    except FarmConfigError as exc:
        _fail(2, str(exc))
    overrides: dict[str, Any] = {}
    if bind is not None:
        overrides["bind"] = bind
    if keys_dir is not None:
        overrides["keys_dir"] = str(keys_dir)
    if curve:
        overrides["curve"] = True
    if heartbeat_s is not None:
        overrides["heartbeat_s"] = heartbeat_s
    if node_timeout_s is not None:
        overrides["node_timeout_s"] = node_timeout_s
    cfg = dataclasses.replace(cfg, **overrides)
    new_db = not db.exists()
    if db == DEFAULT_FARM_DB and not db.parent.exists():
        # the project's own run-time folder (var/, not in git); a folder missing from a path
        # the user typed is still refused (a typo, an unmounted share)
        db.parent.mkdir(parents=True)
        typer.echo(f"created folder {db.parent}/")
    try:
        ctl = Controller(db, cfg)
    except DatabaseFileError as exc:
        _fail(1, str(exc))
    except sqlite3.DatabaseError as exc:
        _fail(1, str(explain(db, exc, FARM_FILE)))
    except (KeysMissing, ValueError) as exc:
        _fail(2, str(exc))
    _stop_on_signals(ctl.stop, STOP_GRACE_S)
    _err.print(f"farm controller on {ctl.endpoint}{' (CURVE)' if ctl.curve else ''}, "
               f"db {db}{' (new)' if new_db else ''}", highlight=False)
    try:
        ctl.serve()
    except sqlite3.DatabaseError as exc:  # damage SQLite noticed only when it read the page
        _fail(1, str(explain(db, exc, FARM_FILE)))


@app.command("agent")
def agent_cmd(
    controller: ControllerOpt = DEFAULT_ADDR,
    slots: Annotated[int | None, typer.Option(
        "--slots", min=1, help="Tasks at once (default: one per GPU, 1 without GPUs).")] = None,
    vram_gb: Annotated[float | None, typer.Option(
        "--vram-gb", min=0, help="VRAM per slot (default: the smallest GPU's).")] = None,
    node_id: Annotated[str | None, typer.Option("--node-id", help="Default: host name.")] = None,
    speed: Annotated[float, typer.Option("--speed", min=0.01,
                                         help="Relative to the reference GPU.")] = 1.0,
    keys_dir: KeysOpt = None,
    key_name: Annotated[str | None, typer.Option(
        "--key-name", help="Certificate name in --keys-dir (default: the node id).")] = None,
    register_timeout_s: Annotated[float, typer.Option("--register-timeout-s", min=0.1)] = 10.0,
) -> None:
    """Run a worker agent: register this node's GPUs and run the tasks assigned to it."""
    import logging

    from scheduler.dispatch.agent import Agent, AgentError, describe_node
    from scheduler.dispatch.curve import KeysMissing

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        spec = describe_node(node_id, slots, vram_gb, speed)
        agent = Agent(controller, spec, keys_dir=keys_dir, key_name=key_name,
                      register_timeout_s=register_timeout_s)
    except (AgentError, KeysMissing) as exc:
        _fail(2, str(exc))
    _stop_on_signals(agent.stop, STOP_GRACE_S)
    gpus = ", ".join(f"{g.model} {g.vram_gb:g} GB" for g in spec.gpus) or "no GPUs (CPU work)"
    _err.print(f"farm agent {spec.node_id}: {spec.slots} slots, {spec.vram_gb:g} GB, {gpus}",
               highlight=False)
    try:
        agent.serve()
    except AgentError as exc:
        _fail(1, str(exc))


@app.command("render-plate")
def render_plate_cmd(
    out: Annotated[Path, typer.Option("--out", help="PNG file ('#' runs: frame number).")],
    frame: Annotated[int, typer.Option("--frame", min=0)],
    width: Annotated[int, typer.Option("--width", min=1)] = 7680,
    height: Annotated[int, typer.Option("--height", min=1)] = 4320,
    to_frame: Annotated[int | None, typer.Option("--to-frame", min=0,
                                                 help="Render a chunk up to this frame.")] = None,
) -> None:
    """Render a procedural LED-wall background plate (deterministic per frame) to PNG."""
    from scheduler.dispatch.render import main as render_main

    args = ["--width", str(width), "--height", str(height), "--frame", str(frame),
            "--out", str(out)]
    if to_frame is not None:
        if to_frame < frame:
            _fail(2, f"--to-frame: got {to_frame}; expected a frame >= --frame ({frame})")
        args += ["--to-frame", str(to_frame)]
    raise typer.Exit(render_main(args))


@app.command("submit")
def submit_cmd(
    job_file: Annotated[Path, typer.Argument(help="Job TOML ([[jobs]] tables).")],
    controller: ControllerOpt = DEFAULT_ADDR,
    keys_dir: KeysOpt = None,
    key_name: KeyNameOpt = "client",
    output_root: Annotated[Path | None, typer.Option(
        "--output-root", help="Folder every output must stay inside; relative outputs are "
        "taken from it (default: the job file's folder).")] = None,
) -> None:
    """Submit the jobs of a TOML job file (checked here first: exit 2 names the bad key)."""
    from scheduler.dispatch.jobfile import JobFileError, load_job_file

    try:
        jobs = load_job_file(job_file, output_root=output_root)
    except JobFileError as exc:
        _fail(2, str(exc))
    reply = _call(controller, keys_dir, key_name, "submit", jobs=[j.to_wire() for j in jobs])
    _err.print(f"submitted {', '.join(reply['jobs'])}: {reply['tasks']} tasks", highlight=False)


@app.command("status")
def status_cmd(
    controller: ControllerOpt = DEFAULT_ADDR,
    keys_dir: KeysOpt = None,
    key_name: KeyNameOpt = "client",
    as_json: JsonFlag = False,
) -> None:
    """Jobs with progress bars and predicted finish against the deadline."""
    reply = _call(controller, keys_dir, key_name, "status")
    if as_json:
        sys.stdout.write(json.dumps({"jobs": reply["jobs"], "plan": reply["plan"]}) + "\n")
        return
    Console().print(status_table(reply["jobs"]))


def status_table(jobs: list[dict[str, Any]]) -> Table:
    """The job table of ``farm status`` and the demo."""
    from rich.progress_bar import ProgressBar

    table = Table(title="farm jobs")
    for col in ("job", "state", "progress", "frames", "run", "fail", "deadline", "predicted"):
        table.add_column(col)
    for j in jobs:
        c = j["counts"]
        late = j["late"]
        predicted = _clock(j["predicted_finish_utc"])
        if j["deadline_utc"] is not None and j["predicted_finish_utc"] is not None:
            predicted = f"[red]{predicted} LATE[/]" if late else f"[green]{predicted}[/]"
        table.add_row(
            j["id"], j["state"],
            ProgressBar(total=1.0, completed=j["progress"], width=24),
            f"{j['frames_done']}/{j['frames']}", str(c["RUNNING"]),
            str(c["FAILED"] + c["BLOCKED"]), _clock(j["deadline_utc"]), predicted)
    return table


def _clock(t: float | None) -> str:
    """A UTC timestamp as studio wall-clock time (``STAGECTL_TZ``, default Asia/Shanghai)."""
    if t is None:
        return "-"
    import datetime as dt
    import os
    from zoneinfo import ZoneInfo

    tz = ZoneInfo(os.environ.get("STAGECTL_TZ", "Asia/Shanghai"))
    return dt.datetime.fromtimestamp(t, tz).strftime("%m-%d %H:%M:%S")


@app.command("nodes")
def nodes_cmd(
    controller: ControllerOpt = DEFAULT_ADDR,
    keys_dir: KeysOpt = None,
    key_name: KeyNameOpt = "client",
    as_json: JsonFlag = False,
) -> None:
    """Registered agents and compute pools with their slots in use."""
    reply = _call(controller, keys_dir, key_name, "nodes")
    if as_json:
        sys.stdout.write(json.dumps(reply["nodes"]) + "\n")
        return
    table = Table(title="farm nodes")
    for col in ("node", "kind", "busy/slots", "VRAM GB", "speed", "GPUs", "running", "blocklisted"):
        table.add_column(col)
    for n in reply["nodes"]:
        gpus = ", ".join(g["model"] for g in n.get("gpus", [])) or "-"
        running = ", ".join(r["task"] for r in n.get("running", [])) or "-"
        table.add_row(n["id"], f"pool ({n['backend']})" if n.get("pool") else "agent",
                      f"{n['busy']}/{n['slots']}", f"{n['vram_gb']:g}", f"{n['speed']:g}",
                      gpus if not n.get("pool") else "-", running if not n.get("pool") else "-",
                      ", ".join(n.get("blocklisted_for", [])) or "-")
    Console().print(table)


@app.command("cancel")
def cancel_cmd(
    job: Annotated[str, typer.Argument(help="Job id.")],
    controller: ControllerOpt = DEFAULT_ADDR,
    keys_dir: KeysOpt = None,
    key_name: KeyNameOpt = "client",
) -> None:
    """Cancel a job: running attempts are stopped, the rest will not run."""
    reply = _call(controller, keys_dir, key_name, "cancel_job", job=job)
    _err.print(f"cancelled {reply['job']} ({reply['stopped']} running attempts stopped)",
               highlight=False)


@app.command("retry")
def retry_cmd(
    job: Annotated[str, typer.Argument(help="Job id.")],
    controller: ControllerOpt = DEFAULT_ADDR,
    keys_dir: KeysOpt = None,
    key_name: KeyNameOpt = "client",
) -> None:
    """Requeue a job's failed and blocked tasks and forget its node blocklist."""
    reply = _call(controller, keys_dir, key_name, "retry_job", job=job)
    _err.print(f"{reply['job']}: {reply['requeued']} tasks requeued", highlight=False)


@app.command("cost")
def cost_cmd(
    controller: ControllerOpt = DEFAULT_ADDR,
    keys_dir: KeysOpt = None,
    key_name: KeyNameOpt = "client",
    as_json: JsonFlag = False,
) -> None:
    """Compute-pool rent: CNY spent so far and forecast to the end of the plan."""
    reply = _call(controller, keys_dir, key_name, "cost")
    if as_json:
        sys.stdout.write(json.dumps({k: reply[k] for k in ("pools", "spent_cny",
                                                           "forecast_cny")}) + "\n")
        return
    table = Table(title="compute-pool cost (CNY)")
    for col in ("pool", "CNY / GPU-hour", "spent", "forecast"):
        table.add_column(col)
    for row in reply["pools"]:
        table.add_row(row["pool"], f"{row['cost_per_gpu_hour_cny']:g}",
                      f"{row['spent_cny']:.2f}", f"{row['forecast_cny']:.2f}")
    table.add_row("total", "", f"{reply['spent_cny']:.2f}", f"{reply['forecast_cny']:.2f}")
    Console().print(table)


@app.command("demo")
def demo_cmd(
    out: Annotated[Path | None, typer.Option(
        "--out", help="Folder for the db and frames (default: a temporary folder).")] = None,
    scale: Annotated[int, typer.Option(
        "--scale", min=1, help="Render 8K divided by this (8: 960x540).")] = 8,
    timeout_s: Annotated[float, typer.Option("--timeout-s", min=1)] = 50.0,
) -> None:
    """A controller, three local agents and a small 8K job set rendered for real, with progress."""
    from stagectl.cli.farm_demo import run_demo

    raise typer.Exit(run_demo(out, scale, timeout_s))
