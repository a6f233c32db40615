"""``stagectl book ...``: stage booking commands.

Thin: every command parses its options, calls :mod:`scheduler.booking` and renders the answer
as a rich table, or as JSON with ``--json``. Exit codes: 0 ok, 1 failure (refused, planner
error), 2 bad input.
"""

from __future__ import annotations

import getpass
import json
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from scheduler.booking.ics import build_calendar
from scheduler.booking.model import Status
from scheduler.booking.parse import BookingInputError, load_problem
from scheduler.booking.report import utilisation
from scheduler.booking.solve import PlanCheckFailed, solve
from scheduler.booking.store import FILE as BOOKING_FILE
from scheduler.booking.store import BookingRefused, BookingStore, Record
from scheduler.dbfile import DatabaseFileError, explain

app = typer.Typer(help="Book stage time: requests, holds, confirmations, solve, outages, ICS.",
                  no_args_is_help=True)

DEFAULT_DB = Path("var/booking.sqlite")
DbOpt = Annotated[Path, typer.Option(
    "--db", envvar="STAGECTL_BOOKING_DB",
    help="Booking database (SQLite file; only `book setup` creates one, in an existing "
         "folder).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
ActorOpt = Annotated[str, typer.Option("--actor", help="Who makes the change (audit history).")]
ReasonOpt = Annotated[str, typer.Option("--reason", help="Why (kept in the audit history).")]

_out = Console()
_err = Console(stderr=True)


def _default_actor() -> str:
    try:
        return os.environ.get("STAGECTL_ACTOR") or getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _fail(message: str, code: int) -> NoReturn:
    _err.print(f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def _time(value: str, option: str) -> datetime:
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        _fail(f"{option}: must be an ISO 8601 time with offset, got {value!r}", 2)
    if dt.tzinfo is None:
        _fail(f"{option}: must carry a UTC offset (e.g. +08:00), got {value!r}", 2)
    return dt


@contextmanager
def _store(db: Path, create: bool = False) -> Iterator[BookingStore]:
    """Open the store and turn booking errors into exit codes.

    Only ``setup`` creates a database (``create``); every other command refuses a missing
    one. A damaged database is one line and exit 1, wherever SQLite notices the damage.
    """
    try:
        with BookingStore(db, create=create) as store:
            yield store
    except DatabaseFileError as exc:
        _fail(str(exc), 1)
    except sqlite3.ProgrammingError:
        raise  # misuse of the connection: a bug to see in full, not a damaged file
    except sqlite3.DatabaseError as exc:
        _fail(str(explain(db, exc, BOOKING_FILE)), 1)
    except BookingInputError as exc:
        for line in exc.errors:
            _err.print(f"[red]error:[/red] {line}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from exc
    except BookingRefused as exc:
        _fail(str(exc), 1)
    except PlanCheckFailed as exc:
        _fail(str(exc), 1)


def _print_json(doc: Any) -> None:
    typer.echo(json.dumps(doc, indent=2, ensure_ascii=False))


def _record_json(rec: Record) -> dict[str, Any]:
    b = rec.booking
    return {
        "id": b.id,
        "status": rec.status.value,
        "production": b.production,
        "contact": b.contact,
        "priority": b.priority,
        "duration_minutes": b.duration_minutes,
        "stage": b.stage,
        "start": b.start.isoformat() if b.start else None,
        "end": b.end.isoformat() if b.end else None,
        "hold_rank": b.hold_rank,
        "sequence": rec.sequence,
        "challenged_by": rec.challenged_by,
        "challenge_deadline": rec.challenge_deadline.isoformat()
        if rec.challenge_deadline else None,
    }


def _show_records(records: list[Record], as_json: bool, title: str) -> None:
    if as_json:
        _print_json([_record_json(r) for r in records])
        return
    table = Table(title=title)
    for col in ("id", "status", "rank", "production", "prio", "stage", "start", "end"):
        table.add_column(col)
    for r in records:
        d = _record_json(r)
        table.add_row(d["id"], d["status"], str(d["hold_rank"] or ""), d["production"],
                      str(d["priority"]), d["stage"] or "", d["start"] or "", d["end"] or "")
    _out.print(table)


@app.command()
def setup(
    config: Annotated[Path, typer.Argument(help="JSON with slot_minutes, stages and pools.")],
    db: DbOpt = DEFAULT_DB,
) -> None:
    """Load stages, pools and the slot size into the booking database."""
    try:
        doc = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        _fail(f"{config}: {exc}", 2)
    new = not db.exists()
    if db == DEFAULT_DB and not db.parent.exists():
        # the project's own run-time folder (var/, not in git): a fresh checkout has none;
        # a folder missing from a path the user typed is still refused (a typo, a share)
        db.parent.mkdir()
        typer.echo(f"created folder {db.parent}/")
    with _store(db, create=True) as store:
        store.setup(doc, actor=_default_actor())
        n = len(store.problem().stages)
    typer.echo(f"loaded {n} stages into {db}{' (new database)' if new else ''}")


@app.command()
def request(
    production: Annotated[str, typer.Option(help="Production name.")],
    duration_minutes: Annotated[int, typer.Option(help="Stage time needed, minutes.")],
    earliest_start: Annotated[str, typer.Option(help="ISO 8601 with offset.")],
    latest_end: Annotated[str, typer.Option(help="ISO 8601 with offset.")],
    priority: Annotated[int, typer.Option(help="Higher is more important.")] = 1,
    booking_id: Annotated[str | None, typer.Option("--id", help="Booking id (generated).")] = None,
    contact: Annotated[str, typer.Option(help="Who to call.")] = "",
    requires: Annotated[list[str] | None, typer.Option(help="Required capability.")] = None,
    allow_stage: Annotated[list[str] | None, typer.Option(help="Allowed stage.")] = None,
    pool: Annotated[list[str] | None, typer.Option(help="Pool need, POOL=AMOUNT.")] = None,
    stage: Annotated[str | None, typer.Option(help="Wished-for stage.")] = None,
    start: Annotated[str | None, typer.Option(help="Wished-for start, ISO 8601.")] = None,
    db: DbOpt = DEFAULT_DB,
    as_json: JsonOpt = False,
    actor: ActorOpt = "",
    reason: ReasonOpt = "",
) -> None:
    """Request stage time (status REQUESTED)."""
    spec: dict[str, Any] = {
        "production": production,
        "priority": priority,
        "duration_minutes": duration_minutes,
        "earliest_start": earliest_start,
        "latest_end": latest_end,
        "requires": list(requires or []),
    }
    if booking_id:
        spec["id"] = booking_id
    if contact:
        spec["contact"] = contact
    if allow_stage:
        spec["stages"] = list(allow_stage)
    needs: dict[str, int] = {}
    for item in pool or []:
        name, _, amount = item.partition("=")
        if not amount.isdigit():
            _fail(f"--pool: expected POOL=AMOUNT, got {item!r}", 2)
        needs[name] = int(amount)
    spec["pools"] = needs
    if stage is not None:
        spec["stage"] = stage
    if start is not None:
        spec["start"] = start
    with _store(db) as store:
        rec = store.request(spec, actor or _default_actor(), reason)
    _show_records([rec], as_json, "requested")


@app.command("list")
def list_(
    status: Annotated[list[str] | None, typer.Option(help="Only these statuses.")] = None,
    stage: Annotated[str | None, typer.Option(help="Only this stage.")] = None,
    production: Annotated[str | None, typer.Option(help="Only this production.")] = None,
    history: Annotated[str | None, typer.Option(help="Show the audit history of a booking.")]
    = None,
    db: DbOpt = DEFAULT_DB,
    as_json: JsonOpt = False,
) -> None:
    """List bookings (or one booking's audit history)."""
    statuses = None
    if status:
        try:
            statuses = frozenset(Status(s) for s in status)
        except ValueError:
            _fail(f"--status: expected one of {[s.value for s in Status]}, got {status}", 2)
    with _store(db) as store:
        store.sweep()
        if history is not None:
            store.get(history)
            entries = store.history(history)
            rows = [
                {"seq": e.seq, "at": e.at.isoformat(), "actor": e.actor, "action": e.action,
                 "from": e.from_status, "to": e.to_status, "reason": e.reason}
                for e in entries
            ]
            if as_json:
                _print_json(rows)
                return
            table = Table(title=f"history of {history}")
            for col in ("seq", "at", "actor", "action", "from", "to", "reason"):
                table.add_column(col)
            for row in rows:
                table.add_row(*(str(row[c] or "") for c in
                                ("seq", "at", "actor", "action", "from", "to", "reason")))
            _out.print(table)
            return
        records = store.records(statuses, stage, production)
    _show_records(records, as_json, "bookings")


@app.command()
def hold(
    booking_id: Annotated[str, typer.Argument(help="Booking id.")],
    stage: Annotated[str | None, typer.Option(help="Stage (default: wished-for or earliest).")]
    = None,
    start: Annotated[str | None, typer.Option(help="Start, ISO 8601 with offset.")] = None,
    expires: Annotated[str | None, typer.Option(help="Hold expires at (ISO 8601).")] = None,
    db: DbOpt = DEFAULT_DB,
    as_json: JsonOpt = False,
    actor: ActorOpt = "",
    reason: ReasonOpt = "",
) -> None:
    """Put a ranked hold on a slot."""
    start_dt = _time(start, "--start") if start else None
    expires_dt = _time(expires, "--expires") if expires else None
    with _store(db) as store:
        rec = store.hold(booking_id, actor or _default_actor(), stage, start_dt, expires_dt,
                         reason)
    _show_records([rec], as_json, "held")


@app.command()
def confirm(
    booking_id: Annotated[str, typer.Argument(help="Booking id.")],
    db: DbOpt = DEFAULT_DB,
    as_json: JsonOpt = False,
    actor: ActorOpt = "",
    reason: ReasonOpt = "",
) -> None:
    """Confirm a first hold; never double-books."""
    with _store(db) as store:
        rec = store.confirm(booking_id, actor or _default_actor(), reason)
    _show_records([rec], as_json, "confirmed")


@app.command()
def release(
    booking_id: Annotated[str, typer.Argument(help="Booking id.")],
    db: DbOpt = DEFAULT_DB,
    as_json: JsonOpt = False,
    actor: ActorOpt = "",
    reason: ReasonOpt = "",
) -> None:
    """Release a hold; the holds behind it move up."""
    with _store(db) as store:
        rec = store.release(booking_id, actor or _default_actor(), reason)
    _show_records([rec], as_json, "released")


@app.command()
def cancel(
    booking_id: Annotated[str, typer.Argument(help="Booking id.")],
    db: DbOpt = DEFAULT_DB,
    as_json: JsonOpt = False,
    actor: ActorOpt = "",
    reason: ReasonOpt = "",
) -> None:
    """Cancel a request, hold or confirmed booking."""
    with _store(db) as store:
        rec = store.cancel(booking_id, actor or _default_actor(), reason)
    _show_records([rec], as_json, "cancelled")


@app.command()
def challenge(
    booking_id: Annotated[str, typer.Argument(help="The lower hold that challenges.")],
    hours: Annotated[float, typer.Option(help="Hours the first hold has to answer.")] = 24.0,
    db: DbOpt = DEFAULT_DB,
    as_json: JsonOpt = False,
    actor: ActorOpt = "",
    reason: ReasonOpt = "",
) -> None:
    """Challenge the first hold: it must confirm or release by the deadline."""
    deadline = datetime.now(UTC) + timedelta(hours=hours)
    with _store(db) as store:
        rec = store.challenge(booking_id, actor or _default_actor(), deadline, reason)
    _show_records([rec], as_json, "challenged")


@app.command("solve")
def solve_cmd(
    input_path: Annotated[Path | None, typer.Option("--input", help="Input JSON (contract).")]
    = None,
    output: Annotated[Path | None, typer.Option("--output", help="Output JSON file.")] = None,
    time_limit: Annotated[float, typer.Option("--time-limit", help="Seconds for CP-SAT.")]
    = 10.0,
    apply: Annotated[bool, typer.Option("--apply", help="Without --input: store the plan.")]
    = False,
    db: DbOpt = DEFAULT_DB,
    as_json: JsonOpt = False,
    actor: ActorOpt = "",
) -> None:
    """Optimise a JSON input file (--input/--output), or the bookings in the database."""
    if time_limit <= 0:
        _fail(f"--time-limit: must be > 0, got {time_limit}", 2)
    if input_path is not None:
        try:
            problem = load_problem(input_path)
            plan = solve(problem, time_limit)
        except BookingInputError as exc:
            for line in exc.errors:
                _err.print(f"[red]error:[/red] {input_path}: {line}", highlight=False,
                           soft_wrap=True)
            raise typer.Exit(2) from exc
        except PlanCheckFailed as exc:
            _fail(str(exc), 1)
        doc = plan.to_json(problem)
        if output is not None:
            output.parent.mkdir(parents=True, exist_ok=True)
            output.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n",
                              encoding="utf-8")
    else:
        with _store(db) as store:
            problem = store.problem()
            plan = store.solve(time_limit, actor or _default_actor(), apply=apply)
        doc = plan.to_json(problem)
    if as_json or (output is None and input_path is not None):
        _print_json(doc)
        return
    summary = Table(title="solve")
    for col in ("status", "source", "objective", "bound", "greedy", "placed", "rejected", "s"):
        summary.add_column(col)
    summary.add_row(doc["status"], doc["source"], f"{doc['objective']:.2f}",
                    f"{doc['bound']:.2f}", f"{doc['greedy_objective']:.2f}",
                    str(len(doc["assignments"])), str(len(doc["rejected"])),
                    f"{doc['solve_seconds']:.2f}")
    _out.print(summary)
    if doc["rejected"]:
        rej = Table(title="not placed")
        rej.add_column("id")
        rej.add_column("reason")
        for r in doc["rejected"]:
            rej.add_row(r["id"], r["reason"])
        _out.print(rej)


@app.command()
def outage(
    stage: Annotated[str, typer.Argument(help="Stage that goes down.")],
    start: Annotated[str, typer.Option("--from", help="ISO 8601 with offset.")],
    end: Annotated[str, typer.Option("--to", help="ISO 8601 with offset.")],
    time_limit: Annotated[float, typer.Option("--time-limit", help="Seconds for CP-SAT.")] = 5.0,
    db: DbOpt = DEFAULT_DB,
    as_json: JsonOpt = False,
    actor: ActorOpt = "",
    reason: ReasonOpt = "",
) -> None:
    """Record an outage and move the bookings it hits, with the fewest changes."""
    start_dt, end_dt = _time(start, "--from"), _time(end, "--to")
    with _store(db) as store:
        rep = store.outage(stage, start_dt, end_dt, actor or _default_actor(), reason,
                           time_limit)
    if as_json:
        _print_json({"stage": rep.stage, "from": rep.start.isoformat(),
                     "to": rep.end.isoformat(), "moved": rep.moved, "unplaced": rep.unplaced,
                     "kept": rep.kept, "solve_seconds": round(rep.solve_seconds, 3),
                     "source": rep.source})
        return
    table = Table(title=f"outage {stage} {start} .. {end}: moved")
    for col in ("id", "from stage", "from start", "to stage", "to start"):
        table.add_column(col)
    for m in rep.moved:
        table.add_row(m["id"], m["from_stage"], m["from_start"], m["to_stage"], m["to_start"])
    _out.print(table)
    if rep.unplaced:
        t2 = Table(title="could not be moved")
        t2.add_column("id")
        t2.add_column("reason")
        for u in rep.unplaced:
            t2.add_row(u["id"], u["reason"])
        _out.print(t2)
    typer.echo(f"kept {rep.kept}, moved {len(rep.moved)}, could not move {len(rep.unplaced)}")


@app.command()
def ics(
    stage: Annotated[str | None, typer.Option(help="Calendar of this stage.")] = None,
    production: Annotated[str | None, typer.Option(help="Calendar of this production.")] = None,
    output: Annotated[Path | None, typer.Option("--output", help="Write here (else stdout).")]
    = None,
    db: DbOpt = DEFAULT_DB,
) -> None:
    """Export an ICS calendar per stage or per production."""
    if (stage is None) == (production is None):
        _fail("give exactly one of --stage or --production", 2)
    with _store(db) as store:
        store.sweep()
        stages = store.problem().stage_by_id()
        if stage is not None and stage not in stages:
            _fail(f"--stage: unknown stage {stage!r}", 2)
        records = store.records(stage=stage, production=production)
    name = f"stage {stage}" if stage else f"production {production}"
    text = build_calendar(records, stages, name, datetime.now(UTC)).to_ical()
    if output is not None:
        output.write_bytes(text)
        typer.echo(f"wrote {len(records)} bookings to {output}")
    else:
        typer.echo(text.decode("utf-8"))


@app.command()
def report(
    start: Annotated[str | None, typer.Option("--from", help="ISO 8601 (default: today).")]
    = None,
    end: Annotated[str | None, typer.Option("--to", help="ISO 8601 (default: +30 days).")]
    = None,
    db: DbOpt = DEFAULT_DB,
    as_json: JsonOpt = False,
) -> None:
    """Utilisation per stage and per site."""
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    start_dt = _time(start, "--from") if start else today
    end_dt = _time(end, "--to") if end else start_dt + timedelta(days=30)
    if end_dt <= start_dt:
        _fail("--to must be after --from", 2)
    with _store(db) as store:
        store.sweep()
        stages = store.problem().stages
        rows, sites = utilisation(stages, store.records(), start_dt, end_dt)
    if as_json:
        _print_json({"from": start_dt.isoformat(), "to": end_dt.isoformat(),
                     "stages": [r.to_json() for r in rows],
                     "sites": [s.to_json() for s in sites]})
        return
    for title, data in (("utilisation per stage", rows), ("utilisation per site", sites)):
        table = Table(title=title)
        for col in ("site", "stage", "available h", "booked h", "held h", "util %", "CNY"):
            table.add_column(col, justify="right" if col not in ("site", "stage") else "left")
        for r in data:
            table.add_row(r.site, r.stage, f"{r.available_hours:.1f}", f"{r.booked_hours:.1f}",
                          f"{r.held_hours:.1f}", f"{r.utilisation_pct:.1f}",
                          f"{r.revenue_cny:,.0f}")
        _out.print(table)
