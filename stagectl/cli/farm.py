"""``stagectl farm ...``: render-farm planning and execution commands.

Thin wrappers over :mod:`scheduler.farm` (planning, docs/farm-json.md) and
:mod:`scheduler.dispatch` (controller, agents, jobs, docs/farm-dispatch.md).
Exit codes: 0 ok, 1 failure, 2 bad input (the message names the file and key path).
The planner (OR-Tools) is imported only by the commands that plan, so agents start fast.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import typer
from rich.console import Console, Group
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
from stagectl.cli import timefmt
from stagectl.cli.desk_remote import FarmServerOpt as ServerOpt

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
    unit = _cny if plan.objective_name == "cost" else _seconds
    table.add_row("status", str(data["status"]))
    for key in ("objective", "bound", "greedy_objective"):
        value = data[key]
        table.add_row(key, unit(value) if isinstance(value, (int, float)) else str(value))
    table.add_row("makespan", _seconds(data["makespan"]))
    table.add_row("cost_cny", _cny(data["cost_cny"]) + " of rented compute")
    table.add_row("tasks", str(len(plan.assignments)))
    late = [j for j in plan.jobs if j.late_s > 0]
    table.add_row("late jobs", ", ".join(f"{j.id} by {span(j.late_s)}" for j in late) or "0")
    table.add_row("solve_seconds", str(data["solve_seconds"]))
    _err.print(table)


def _seconds(value: float) -> str:
    return f"{span(value)} ({value:g} s)" if value >= 90 else f"{value:g} s"


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
        "--config", help="Farm TOML: \\[controller] settings and \\[\\[pools]].")] = None,
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
    job_file: Annotated[Path, typer.Argument(help="Job TOML (\\[\\[jobs]] tables).")],
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
    _err.print(f"submitted {', '.join(reply['jobs'])}: {plural(reply['tasks'], 'task')}",
               highlight=False)


TzOpt = Annotated[str | None, typer.Option(
    "--tz", envvar="STAGECTL_TZ",
    help="Time zone for times shown: an IANA zone (Asia/Hong_Kong) or a site name (Huangpu, "
    "Hong Kong); default: the stage config's \\[stage] timezone, else Asia/Shanghai.")]


@app.command("status")
def status_cmd(
    controller: ControllerOpt = DEFAULT_ADDR,
    keys_dir: KeysOpt = None,
    key_name: KeyNameOpt = "client",
    as_json: JsonFlag = False,
    tz: TzOpt = None,
    db: Annotated[Path | None, typer.Option(
        "--db", help="Read a farm's SQLite file instead of asking a controller (a stopped "
        "farm, or what `farm demo` left).")] = None,
    server: ServerOpt = None,
) -> None:
    """Jobs with progress, deadline, predicted or actual finish, and why a job cannot run."""
    zone = _zone(tz)
    plan: dict[str, Any]
    if db is not None:
        jobs, nodes, plan = _offline_status(db), None, {}
    elif server:
        reply = _desk_call(server, "jobs")
        jobs, plan = reply["jobs"], reply.get("plan") or {}
        nodes = _desk_call(server, "nodes")["nodes"]
    else:
        reply = _status_call(controller, keys_dir, key_name, "status")
        jobs, plan = reply["jobs"], reply["plan"]
        nodes = _status_call(controller, keys_dir, key_name, "nodes")["nodes"]
    now = time.time()
    if as_json:
        sys.stdout.write(json.dumps(status_json(jobs, plan, nodes, zone, now)) + "\n")
        return
    Console().print(status_view(jobs, nodes, plan, zone, now, source=db))


def _as_controller(value: Any) -> Any:
    """A desk reply as the controller sent it: the ISO twins of ``*_utc`` times dropped."""
    if isinstance(value, list):
        return [_as_controller(v) for v in value]
    if not isinstance(value, dict):
        return value
    return {k: _as_controller(v) for k, v in value.items()
            if not (isinstance(k, str) and f"{k}_utc" in value)}


def _desk_call(server: str, what: str) -> dict[str, Any]:
    """``GET /api/v1/farm/{what}`` of the desk at ``server``, shaped as the controller's reply.

    Failures are one line and exit 1 (2 for a bad ``--server`` or no token).
    """
    from stagectl.cli.desk_remote import DeskCallFailed, open_desk

    try:
        with open_desk(server) as desk:
            reply = desk.get(f"/farm/{what}")
    except DeskCallFailed as exc:
        for line in exc.lines[1:]:
            _err.print(escape(line), highlight=False, soft_wrap=True)
        _fail(exc.exit_code, exc.lines[0])
    if not isinstance(reply, dict):
        _fail(1, f"the desk at {server} answered /farm/{what} with {type(reply).__name__}, "
              "not an object; are both the same version?")
    reply.pop("timezone", None)
    out: dict[str, Any] = _as_controller(reply)
    return out


def _status_call(controller: str, keys_dir: Path | None, key_name: str,
                 kind: str) -> dict[str, Any]:
    """``_call`` for ``farm status``: an absent controller points to ``--db``."""
    from scheduler.dispatch.client import ControllerError, ControllerUnavailable

    client = _client(controller, keys_dir, key_name)
    try:
        return client.request(kind)
    except ControllerUnavailable as exc:
        files = [p for p in (DEFAULT_FARM_DB, DEFAULT_DEMO_DIR / "farm.sqlite") if p.is_file()]
        hint = ("; to read a stopped farm's file: stagectl farm status --db "
                + (" or --db ".join(str(p) for p in files) if files else "FILE"))
        _fail(1, str(exc) + hint)
    except ControllerError as exc:
        _fail(1, str(exc))
    finally:
        client.close()


# --------------------------------------------------------------------------- producer view

SITE_ZONES = {
    "hong kong": "Asia/Hong_Kong", "hongkong": "Asia/Hong_Kong", "hk": "Asia/Hong_Kong",
    "香港": "Asia/Hong_Kong",
    **dict.fromkeys(("huangpu", "nansha", "shenzhen", "guangzhou", "panyu", "黄埔", "南沙",
                     "深圳", "广州", "番禺"), "Asia/Shanghai"),
}
"""Site names ``--tz`` and ``[stage] site`` accept, and their zones."""
DEFAULT_ZONE = "Asia/Shanghai"
DEFAULT_DEMO_DIR = Path("var/farm/demo")


def _zone(name: str | None) -> ZoneInfo:
    """The zone times are shown in.

    ``--tz``/``STAGECTL_TZ`` (a zone or a site name), else the stage config's ``[stage]``
    timezone (or its site's zone), else Asia/Shanghai.
    """
    if name is None:
        name = _stage_zone()
    key = name.strip()
    if key.lower() in SITE_ZONES:
        return ZoneInfo(SITE_ZONES[key.lower()])
    try:
        return ZoneInfo(key)
    except (ZoneInfoNotFoundError, ValueError):
        _fail(2, f"--tz: got {name!r}; expected an IANA time zone such as Asia/Shanghai or "
              "Asia/Hong_Kong, or a site: " + ", ".join(s.title() for s in SITE_ZONES
                                                         if s.isascii() and len(s) > 2))


def _stage_zone() -> str:
    """``[stage] timezone`` (or the zone of ``[stage] site``) of the stage config in use."""
    import os
    import tomllib

    path = Path(os.environ.get("STAGECTL_CONFIG") or "configs/sim-stage.toml")
    try:
        stage = tomllib.loads(path.read_text(encoding="utf-8")).get("stage", {})
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
        return DEFAULT_ZONE
    if not isinstance(stage, dict):
        return DEFAULT_ZONE
    zone, site = stage.get("timezone"), stage.get("site")
    if isinstance(zone, str) and zone:
        try:
            ZoneInfo(zone)
            return zone
        except (ZoneInfoNotFoundError, ValueError):
            return DEFAULT_ZONE  # `stagectl check` names a bad stage config
    if isinstance(site, str) and site.strip().lower() in SITE_ZONES:
        return SITE_ZONES[site.strip().lower()]
    return DEFAULT_ZONE


def _utc(t: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(t, dt.UTC)


def zone_label(zone: ZoneInfo, t: float) -> str:
    """``times in Asia/Shanghai (CST, UTC+08:00)`` (:func:`stagectl.cli.timefmt.legend`)."""
    return timefmt.legend([zone], _utc(t), labelled=False)


def when(t: float, zone: ZoneInfo) -> str:
    """A UTC timestamp as local date and time, ``2026-12-02 09:22`` (the zone in the legend)."""
    return timefmt.fmt_time(_utc(t), zone, label=False)


def iso(t: float | None, zone: ZoneInfo) -> str | None:
    """ISO 8601 with the zone's offset (``2026-12-02T09:22:56.5+08:00``), for ``--json``."""
    return None if t is None else timefmt.iso(_utc(t), zone)


def span(seconds: float) -> str:
    """A duration a producer reads: ``45 s``, ``12 min``, ``3 h 5 min``, ``2 d 4 h``."""
    s = round(abs(seconds))
    if s < 90:
        return f"{s} s"
    m = round(s / 60)
    if m < 60:
        return f"{m} min"
    h, m = divmod(m, 60)
    if h < 48:
        return f"{h} h {m} min" if m else f"{h} h"
    d, h = divmod(h, 24)
    return f"{d} days" if d >= 14 or not h else f"{d} d {h} h"


def plural(n: int, word: str, many: str | None = None) -> str:
    """``1 plan``, ``2 plans`` (``many`` for irregular plurals)."""
    return f"{n} {word if n == 1 else (many or word + 's')}"


def _cny(value: float) -> str:
    return f"{value:,.2f} CNY"


def job_outlook(job: dict[str, Any], jobs: list[dict[str, Any]],
                nodes: list[dict[str, Any]] | None, zone: ZoneInfo,
                now: float) -> tuple[str, str | None, str]:
    """What a producer wants to know about a job: (finish cell, warning or None, style).

    The warning is a whole sentence printed under the table; ``nodes`` None: read from a
    file, no controller running.
    """
    deadline = job.get("deadline_utc")
    predicted = job.get("predicted_finish_utc")
    state = job["state"]

    def at(t: float) -> str:
        ref = deadline if deadline is not None else now
        full = when(t, zone)
        return full[11:] if full[:10] == when(ref, zone)[:10] else full

    def versus(t: float, spare: str) -> tuple[str, str]:
        if deadline is None:
            return "no deadline", ""
        if t > deadline:
            return f"late by {span(t - deadline)}", "red"
        return f"on time, {span(deadline - t)} {spare}", "green"

    if state == "done":
        if predicted is None:
            return "finished", None, "green"
        text, style = versus(predicted, "early")
        return f"finished {at(predicted)}\n{text}", None, style or "green"
    if state == "cancelled":
        return "cancelled", None, "dim"
    if state == "stalled":
        why = "; ".join(job.get("reasons") or []) or "tasks failed"
        return ("stalled: needs a retry", f"stalled: {why} (to run it again: stagectl farm "
                f"retry {job['id']})", "red")
    blocked = _cannot_run(job, jobs, nodes)
    if blocked is None:
        if predicted is not None and predicted < now - 1:
            # the last plan's finish has passed and no newer plan has moved it
            text, style = versus(now, "to spare")
            return (f"overdue: planned for {at(predicted)}\n"
                    + (text if deadline is None or now > deadline else "not late yet"),
                    None, "yellow" if style != "red" else style)
        if predicted is not None:
            text, style = versus(predicted, "to spare")
            return f"predicted {at(predicted)}\n{text}", None, style
        waits = [d for d in job.get("after", []) if _state_of(jobs, d) != "done"]
        if waits:
            return "after " + ", ".join(waits), None, "yellow"
        return "not planned yet", None, "yellow"
    short, warning = blocked
    if deadline is not None and now > deadline:
        short += f"\ndeadline passed {span(now - deadline)} ago"
    return short, warning, "bold yellow"


def _state_of(jobs: list[dict[str, Any]], job_id: str) -> str | None:
    return next((j["state"] for j in jobs if j["id"] == job_id), None)


def _cannot_run(job: dict[str, Any], jobs: list[dict[str, Any]],
                nodes: list[dict[str, Any]] | None,
                seen: frozenset[str] = frozenset()) -> tuple[str, str] | None:
    """Why an active job's remaining work will not run as things are: (short, sentence)."""
    if nodes is None:
        return ("not running", "not running: no controller has this farm (start `stagectl "
                "farm controller --db FILE` to render the rest)")
    if not nodes:
        return "no agents", "waiting: no agents connected (start one: stagectl farm agent)"
    need = job.get("vram_gb")
    fits = [n for n in nodes if need is None or n["vram_gb"] >= need]
    if not fits:
        big = max(nodes, key=lambda n: n["vram_gb"])
        return ("no agent fits", f"no agent can run it: it needs {need:g} GB VRAM; the "
                f"largest connected is {big['id']} with {big['vram_gb']:g} GB")
    usable = [n for n in fits if job["id"] not in n.get("blocklisted_for", [])]
    if not usable:
        return ("blocklisted", "no agent can run it: blocklisted after repeated failures "
                "on " + ", ".join(n["id"] for n in fits)
                + f" (to try again: stagectl farm retry {job['id']})")
    for dep in job.get("after", []):
        dep_job = next((j for j in jobs if j["id"] == dep), None)
        if dep_job is None:
            return f"after {dep}", f"waits for job {dep}, which the farm does not have"
        if dep_job["state"] in ("cancelled", "stalled"):
            return (f"after {dep}", f"waits for job {dep}, which is {dep_job['state']}: it "
                    "will not start until that one is done")
        if dep_job["state"] == "active" and dep not in seen and \
                _cannot_run(dep_job, jobs, nodes, seen | {job["id"]}) is not None:
            return f"after {dep}", f"waits for job {dep}, which cannot run either"
    return None


def _bar(fraction: float, width: int = 10) -> str:
    full = round(min(max(fraction, 0.0), 1.0) * width)
    return "█" * full + "░" * (width - full)


def status_table(jobs: list[dict[str, Any]], nodes: list[dict[str, Any]] | None,
                 zone: ZoneInfo, now: float) -> Table:
    """The job table of ``farm status`` and the demo (fits 80 columns: cells wrap)."""
    from rich import box
    from rich.text import Text

    table = Table(title="farm jobs", box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True,
                  show_edge=False,
                  title_justify="left")
    longest = max((len(j["id"]) for j in jobs), default=8)
    table.add_column("job", overflow="fold", min_width=min(longest, 21))
    table.add_column("state", overflow="fold", min_width=7, max_width=9)
    table.add_column("progress", no_wrap=True, min_width=13)
    table.add_column("deadline", overflow="fold", min_width=10, max_width=10)
    table.add_column("finish", overflow="fold", min_width=18)
    for j in jobs:
        c = j["counts"]
        extra = [f"{c[k]} {k.lower()}" for k in ("RUNNING", "FAILED", "BLOCKED") if c.get(k)]
        finish, _, style = job_outlook(j, jobs, nodes, zone, now)
        progress = (f"{_bar(j['progress'], 8)} {j['progress'] * 100:3.0f}%\n"
                    f"{j['frames_done']}/{plural(j['frames'], 'frame')}")
        deadline = "-" if j.get("deadline_utc") is None else when(j["deadline_utc"], zone)
        table.add_row(Text(j["id"]), Text("\n".join([j["state"], *extra])), progress,
                      deadline, Text(finish, style=style))
    return table


def status_view(jobs: list[dict[str, Any]], nodes: list[dict[str, Any]] | None,
                plan: dict[str, Any], zone: ZoneInfo, now: float,
                source: Path | None = None) -> Group:
    """``farm status``: the table, what stops a job, the zone and clock, capacity, plan."""
    from rich.text import Text

    lines: list[Any] = []
    if not jobs:
        lines.append(Text("no jobs" + (f" in {source}" if source else "")
                          + " (submit some: stagectl farm submit JOBS.toml)"))
    else:
        lines.append(status_table(jobs, nodes, zone, now))
    for j in jobs:
        warning = job_outlook(j, jobs, nodes, zone, now)[1]
        if warning is not None:
            line = Text("! ", style="bold yellow")
            line.append(j["id"], style="bold")
            line.append(f": {warning}", style="yellow")
            lines.append(line)
    lines.append(Text(f"{zone_label(zone, now)}; now {when(now, zone)}"))
    if source is not None:
        lines.append(Text(f"read from {source} (no controller asked: nothing is running)"))
    elif nodes is not None:
        agents = [n for n in nodes if not n.get("pool")]
        pools = [n for n in nodes if n.get("pool")]
        busy = sum(n["busy"] for n in nodes)
        slots = sum(n["slots"] for n in nodes)
        if not nodes:
            lines.append(Text("no agents connected and no compute pools: nothing can render "
                              "(start one: stagectl farm agent)", style="bold yellow"))
        else:
            lines.append(Text(f"{plural(len(agents), 'agent')}"
                              + (f" and {plural(len(pools), 'compute pool')}" if pools else "")
                              + f": {busy} of {plural(slots, 'slot')} busy"))
    if plan.get("at_utc") is not None:
        lines.append(Text(
            f"last plan {when(plan['at_utc'], zone)} ({plan.get('reason', '?')}): "
            f"{plural(int(plan.get('tasks', 0)), 'task')}, "
            f"{_cny(float(plan.get('cost_cny', 0.0)))} of rented compute"))
    return Group(*lines)


def status_json(jobs: list[dict[str, Any]], plan: dict[str, Any],
                nodes: list[dict[str, Any]] | None, zone: ZoneInfo,
                now: float) -> dict[str, Any]:
    """``farm status --json``: the controller's keys, plus ISO local times and the outlook."""
    out = []
    for j in jobs:
        finish, warning, _ = job_outlook(j, jobs, nodes, zone, now)
        finished = j.get("predicted_finish_utc") if j["state"] == "done" else None
        predicted = None if j["state"] == "done" else j.get("predicted_finish_utc")
        out.append({**j, "deadline": iso(j.get("deadline_utc"), zone),
                    "predicted_finish": iso(predicted, zone),
                    "finished_utc": finished, "finished": iso(finished, zone),
                    "outlook": " ".join(finish.split()), "warning": warning})
    plan_out = dict(plan)
    if plan.get("at_utc") is not None:
        plan_out["at"] = iso(plan["at_utc"], zone)
    return {"jobs": out, "plan": plan_out, "timezone": zone.key, "now": iso(now, zone)}


def _offline_status(db: Path) -> list[dict[str, Any]]:
    """The controller's job status, read from its file (no attempt is running)."""
    from scheduler.dispatch.store import FILE as FARM_FILE
    from scheduler.dispatch.store import FarmStore

    try:
        store = FarmStore(db, create=False)
    except DatabaseFileError as exc:
        _fail(1, str(exc))
    try:
        rows, task_rows = store.jobs(), store.tasks()
    except sqlite3.DatabaseError as exc:
        _fail(1, str(explain(db, exc, FARM_FILE)))
    finally:
        store.close()
    tasks: dict[str, list[Any]] = {}
    for t in task_rows:
        tasks.setdefault(t["job_id"], []).append(t)
    out = []
    for row in rows:
        try:
            spec = json.loads(row["spec"])
        except (json.JSONDecodeError, TypeError):
            spec = {}
        counts = dict.fromkeys(("QUEUED", "PLANNED", "RUNNING", "DONE", "FAILED", "BLOCKED"), 0)
        frames = done_frames = 0
        finish = None
        for t in tasks.get(row["id"], []):
            counts[t["state"]] = counts.get(t["state"], 0) + 1
            n = t["frame_end"] - t["frame_start"] + 1
            frames += n
            if t["state"] == "DONE":
                done_frames += n
                finish = max(finish or 0.0, t["done_utc"] or 0.0) or None
        n_tasks = sum(counts.values())
        if row["state"] == "cancelled":
            state = "cancelled"
        elif counts["DONE"] == n_tasks:
            state = "done"
        elif counts["FAILED"] or counts["BLOCKED"]:
            state = "stalled"
        else:
            state = "active"
        predicted = finish if state == "done" else None
        deadline = spec.get("deadline_utc")
        reasons = sorted({t["reason"] for t in tasks.get(row["id"], [])
                          if t["state"] in ("FAILED", "BLOCKED") and t["reason"]})
        out.append({
            "id": row["id"], "state": state, "priority": spec.get("priority"),
            "tasks": n_tasks, "counts": counts, "frames": frames, "frames_done": done_frames,
            "progress": round(done_frames / frames, 4) if frames else 1.0,
            "deadline_utc": deadline, "predicted_finish_utc": predicted,
            "late": bool(predicted and deadline and predicted > deadline),
            "after": list(spec.get("after", [])), "reasons": reasons[:3],
            "vram_gb": spec.get("vram_gb"),
        })
    return out


@app.command("nodes")
def nodes_cmd(
    controller: ControllerOpt = DEFAULT_ADDR,
    keys_dir: KeysOpt = None,
    key_name: KeyNameOpt = "client",
    as_json: JsonFlag = False,
    server: ServerOpt = None,
) -> None:
    """Registered agents and compute pools with their slots in use."""
    reply = (_desk_call(server, "nodes") if server
             else _call(controller, keys_dir, key_name, "nodes"))
    if as_json:
        sys.stdout.write(json.dumps(reply["nodes"]) + "\n")
        return
    nodes = reply["nodes"]
    if not nodes:
        Console().print("no agents connected and no compute pools: nothing can render "
                        "(start one: stagectl farm agent --controller ADDRESS)",
                        style="bold yellow", highlight=False)
        return
    from rich import box

    table = Table(title="farm nodes", title_justify="left", box=box.SIMPLE_HEAD,
                  show_edge=False, pad_edge=False, collapse_padding=True)
    longest = max(len(n["id"]) for n in nodes)
    table.add_column("node", overflow="fold", min_width=min(longest, 20))
    for col in ("kind", "busy", "VRAM", "speed", "GPUs", "running", "blocklist"):
        table.add_column(col, overflow="fold")
    for n in nodes:
        pool = bool(n.get("pool"))
        models = Counter(str(g.get("model", "?")) for g in n.get("gpus", []))
        gpus = ", ".join(f"{c}x {m}" for m, c in models.items()) or "-"
        running = ", ".join(r["task"] for r in n.get("running", [])) or "-"
        table.add_row(n["id"], f"pool ({n['backend']})" if pool else "agent",
                      f"{n['busy']}/{plural(n['slots'], 'slot')}", f"{n['vram_gb']:g} GB",
                      f"{n['speed']:g}x", "-" if pool else gpus, "-" if pool else running,
                      ", ".join(n.get("blocklisted_for", [])) or "-")
    Console().print(table)
    Console().print("speed: relative to the reference GPU; busy: tasks running of its slots; "
                    "blocklist: jobs that failed there too often", highlight=False)


@app.command("cancel")
def cancel_cmd(
    job: Annotated[str, typer.Argument(help="Job id.")],
    controller: ControllerOpt = DEFAULT_ADDR,
    keys_dir: KeysOpt = None,
    key_name: KeyNameOpt = "client",
) -> None:
    """Cancel a job: running attempts are stopped, the rest will not run."""
    reply = _call(controller, keys_dir, key_name, "cancel_job", job=job)
    _err.print(f"cancelled {reply['job']} ({plural(reply['stopped'], 'running attempt')} "
               "stopped)", highlight=False)


@app.command("retry")
def retry_cmd(
    job: Annotated[str, typer.Argument(help="Job id.")],
    controller: ControllerOpt = DEFAULT_ADDR,
    keys_dir: KeysOpt = None,
    key_name: KeyNameOpt = "client",
) -> None:
    """Requeue a job's failed and blocked tasks and forget its node blocklist."""
    reply = _call(controller, keys_dir, key_name, "retry_job", job=job)
    _err.print(f"{reply['job']}: {plural(reply['requeued'], 'task')} requeued", highlight=False)


@app.command("cost")
def cost_cmd(
    controller: ControllerOpt = DEFAULT_ADDR,
    keys_dir: KeysOpt = None,
    key_name: KeyNameOpt = "client",
    as_json: JsonFlag = False,
    server: ServerOpt = None,
) -> None:
    """Compute-pool rent: CNY spent so far and forecast to the end of the plan."""
    reply = (_desk_call(server, "cost") if server
             else _call(controller, keys_dir, key_name, "cost"))
    if as_json:
        sys.stdout.write(json.dumps({k: reply[k] for k in ("pools", "spent_cny",
                                                           "forecast_cny")}) + "\n")
        return
    out = Console()
    if not reply["pools"]:
        out.print("no compute pools configured ([[pools]] in the controller's --config): "
                  "nothing is rented, nothing spent", highlight=False, markup=False)
        return
    from rich import box

    table = Table(title="rented compute (CNY)", title_justify="left", box=box.SIMPLE_HEAD,
                  show_edge=False, pad_edge=False, collapse_padding=True)
    table.add_column("pool", overflow="fold")
    table.add_column("price per GPU-hour", justify="right", overflow="fold")
    table.add_column("spent so far", justify="right", overflow="fold")
    table.add_column("still to spend", justify="right", overflow="fold")
    table.add_column("forecast total", justify="right", overflow="fold")
    for row in reply["pools"]:
        table.add_row(row["pool"], _cny(row["cost_per_gpu_hour_cny"]), _cny(row["spent_cny"]),
                      _cny(row["forecast_cny"] - row["spent_cny"]), _cny(row["forecast_cny"]))
    if len(reply["pools"]) > 1:
        table.add_row("total", "", _cny(reply["spent_cny"]),
                      _cny(reply["forecast_cny"] - reply["spent_cny"]),
                      _cny(reply["forecast_cny"]), style="bold")
    out.print(table)
    out.print("spent: what finished and running pool tasks have cost; forecast: that plus the "
              "rest of the current plan", highlight=False)


@app.command("demo")
def demo_cmd(
    out: Annotated[Path, typer.Option(
        "--out", help="Folder for the db, frames and logs, kept afterwards for `farm status "
        "--db` (an earlier demo's are replaced).")] = DEFAULT_DEMO_DIR,
    scale: Annotated[int, typer.Option(
        "--scale", min=1, help="Render 8K divided by this (8: 960x540).")] = 8,
    timeout_s: Annotated[float, typer.Option("--timeout-s", min=1)] = 50.0,
    tz: TzOpt = None,
) -> None:
    """A controller, three local agents and a small 8K job set rendered for real, with progress."""
    from stagectl.cli.farm_demo import run_demo

    raise typer.Exit(run_demo(out, scale, timeout_s, _zone(tz)))
