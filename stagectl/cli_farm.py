"""``stagectl farm ...``: render-farm planning commands.

Thin wrappers over :mod:`scheduler.farm`; the JSON contract is in docs/farm-json.md.
Exit codes: 0 ok, 1 failure (no plan), 2 bad input (the message names the JSON path).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from scheduler.farm.fjsp import read_fjs
from scheduler.farm.model import (
    FarmInputError,
    Plan,
    assignments_from_json,
    load_farm,
    parse_farm,
)
from scheduler.farm.planner import OBJECTIVES, PlanningError, plan_farm

app = typer.Typer(help="Plan render chunks onto GPU nodes and compute-pool time.")
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
    _err.print(f"[bold red]error:[/] {message}", highlight=False)
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
