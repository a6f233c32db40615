"""``stagectl book ...``: stage booking commands.

Thin: every command parses its options, calls :mod:`scheduler.booking` and renders the answer
as a rich table, or as JSON with ``--json``. Exit codes: 0 ok, 1 failure (refused, planner
error), 2 bad input.
"""

from __future__ import annotations

import getpass
import json
import os
import signal
import sqlite3
import threading
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from scheduler.booking.ics import build_calendar
from scheduler.booking.model import DEFAULT_TIMEZONE, Booking, Problem, Stage, Status
from scheduler.booking.parse import BookingInputError, load_problem
from scheduler.booking.report import UtilisationRow, utilisation
from scheduler.booking.solve import PlanCheckFailed, SolveInterrupted, solve
from scheduler.booking.store import FILE as BOOKING_FILE
from scheduler.booking.store import BookingRefused, BookingStore, OutageReport, Record
from scheduler.dbfile import DatabaseFileError, explain
from scheduler.sql import is_postgres_url, redact
from stagectl.cli.desk_remote import (
    Desk,
    DeskCallFailed,
    ServerOpt,
    bad_reply,
    open_desk,
    record_from_json,
    stages_of,
)
from stagectl.cli.timefmt import TimeInputError, fmt_span, fmt_time, iso, legend, parse_time

app = typer.Typer(help="Book stage time: requests, holds, confirmations, solve, outages, ICS.",
                  no_args_is_help=True)

DEFAULT_DB = "var/booking.sqlite"
EXAMPLE_CONFIG = "configs/booking/stages.json"
DbOpt = Annotated[str, typer.Option(
    "--db", envvar="STAGECTL_BOOKING_DB",
    help="Booking database: an SQLite file (only `book setup` creates one, in an existing "
         "folder), or a PostgreSQL URL postgresql://user@host/dbname (password from "
         "PGPASSWORD or ~/.pgpass; `book setup` migrates its schema).")]


def _target(db: str) -> Path | str:
    """The store a --db value names: a PostgreSQL URL as is, else an SQLite file path."""
    return db if is_postgres_url(db) else Path(db)
JsonOpt = Annotated[bool, typer.Option(
    "--json", help="Print JSON instead of a table (times ISO 8601 with the site's offset).")]
ActorOpt = Annotated[str, typer.Option("--actor", help="Who makes the change (audit history).")]
ReasonOpt = Annotated[str, typer.Option("--reason", help="Why (kept in the audit history).")]
TIME_HELP = ("a date or time in the site's time zone (2031-03-04 08:00), or ISO 8601 with an "
             "offset (2031-03-04T08:00+08:00)")


def _out() -> Console:
    # made per call: the width follows COLUMNS (or the terminal) at the time of printing
    return Console(highlight=False)


def _err() -> Console:
    return Console(stderr=True, highlight=False)


def _default_actor() -> str:
    try:
        return os.environ.get("STAGECTL_ACTOR") or getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _fail(message: str, code: int) -> NoReturn:
    _err().print(f"[red]error:[/red] {escape(message)}", soft_wrap=True)
    raise typer.Exit(code)


def _note(message: str) -> None:
    """Say how an input was read (stderr, so ``--json`` output stays machine-readable)."""
    _err().print(f"note: {escape(message)}", soft_wrap=True)


# --- time zones ---------------------------------------------------------------------------


def _zones(stages: Iterable[Stage]) -> list[str]:
    """The stages' zones, the most common first (the one a time without offset is read in)."""
    count = Counter(s.timezone for s in stages)
    return sorted(count, key=lambda z: (-count[z], z)) or [DEFAULT_TIMEZONE]


def _read_time(value: str, zones: Sequence[str], option: str, *,
               end_of_day: bool = False) -> datetime:
    """A typed time; one without an offset is read in the site's zone and a note says so."""
    try:
        parsed = parse_time(value, zones, option, end_of_day=end_of_day)
    except TimeInputError as exc:
        _fail(str(exc), 2)
    if parsed.note:
        _note(parsed.note)
    return parsed.value


def _booking_zone(rec: Record, stages: dict[str, Stage]) -> str:
    """The zone a booking's times are shown in: its stage's, else its possible stages'."""
    b = rec.booking
    if b.stage in stages:
        return stages[b.stage].timezone
    allowed = [stages[s] for s in b.stages if s in stages]
    capable = [s for s in allowed or stages.values() if b.requires <= s.capabilities]
    return _zones(capable or allowed or stages.values())[0]


def _table(title: str, columns: Sequence[str], caption: str = "",
           right: Sequence[str] = ()) -> Table:
    """A table that wraps (never cuts) to fit the terminal, 80 columns included."""
    table = Table(title=title, caption=caption or None, caption_justify="left")
    for col in columns:
        table.add_column(col, overflow="fold", no_wrap=False,
                         justify="right" if col in right else "left")
    return table


# --- the store ----------------------------------------------------------------------------


@contextmanager
def _store(db: str, create: bool = False, need_stages: bool = True) -> Iterator[BookingStore]:
    """Open the store and turn booking errors into exit codes.

    Only ``setup`` creates a database (``create``); every other command refuses a missing
    one, and one without stages (``need_stages``) with the ``book setup`` command to run. A
    damaged database is one line and exit 1, wherever SQLite notices the damage.
    """
    try:
        with BookingStore(_target(db), create=create) as store:
            if need_stages:
                n = store.conn.execute("SELECT COUNT(*) FROM stages").fetchone()[0]
                if not n:
                    _fail(f"{redact(db)} has no stages yet: load them first with `stagectl "
                          f"book setup {EXAMPLE_CONFIG} --db {redact(db)}` (a JSON file with "
                          "slot_minutes, stages and pools)", 1)
            yield store
    except DatabaseFileError as exc:
        _fail(str(exc), 1)
    except sqlite3.ProgrammingError:
        raise  # misuse of the connection: a bug to see in full, not a damaged file
    except sqlite3.DatabaseError as exc:
        target = _target(db)
        if isinstance(target, Path):
            _fail(str(explain(target, exc, BOOKING_FILE)), 1)
        _fail(f"{redact(db)}: {exc}", 1)
    except BookingInputError as exc:
        err = _err()
        for line in exc.errors:
            err.print(f"[red]error:[/red] {escape(line)}", soft_wrap=True)
        raise typer.Exit(2) from exc
    except BookingRefused as exc:
        _fail(str(exc), 1)
    except PlanCheckFailed as exc:
        _fail(str(exc), 1)


def _stages(store: BookingStore) -> dict[str, Stage]:
    return store.configuration().stage_by_id()


def _check_stage(option: str, sid: str, stages: dict[str, Stage]) -> None:
    if sid not in stages:
        _fail(f"{option}: unknown stage {sid!r} (stages: {', '.join(sorted(stages))})", 2)


# --- the desk (--server) ------------------------------------------------------------------


@contextmanager
def _desk(server: str, actor: str = "") -> Iterator[Desk]:
    """A desk client for ``--server``; its failures become one line each and an exit code.

    The desk records the token's user as the actor, so ``--actor`` is refused with it.
    """
    if actor:
        _fail("--actor: with --server the desk records the user of $STAGECTL_DESK_TOKEN as "
              "the actor; leave --actor out", 2)
    try:
        with open_desk(server) as desk:
            try:
                yield desk
            except (KeyError, ValueError, TypeError, AttributeError) as exc:
                raise bad_reply(server, "a request", exc) from exc
    except DeskCallFailed as exc:
        err = _err()
        err.print(f"[red]error:[/red] {escape(exc.lines[0])}", soft_wrap=True)
        for line in exc.lines[1:]:
            err.print(escape(line), soft_wrap=True)
        raise typer.Exit(exc.exit_code) from exc


def _path(*parts: str) -> str:
    """``/bookings/BK%2F1/hold``: each part quoted, so an id cannot change the path."""
    from urllib.parse import quote

    return "".join("/" + quote(p, safe="") for p in parts)


def _remote_records(docs: Any) -> tuple[list[Record], dict[str, str]]:
    """Desk bookings as records, with the zone the desk gave each."""
    records = [record_from_json(d) for d in docs]
    zones = {str(d["id"]): str(d["timezone"]) for d in docs if d.get("timezone")}
    return records, zones


# --- output -------------------------------------------------------------------------------


def _print_json(doc: Any) -> None:
    typer.echo(json.dumps(doc, indent=2, ensure_ascii=False))


def _record_json(rec: Record, stages: dict[str, Stage], tz: str | None = None) -> dict[str, Any]:
    b = rec.booking
    tz = tz or _booking_zone(rec, stages)
    return {
        "id": b.id,
        "status": rec.status.value,
        "production": b.production,
        "contact": b.contact,
        "priority": b.priority,
        "duration_minutes": b.duration_minutes,
        "stage": b.stage,
        "start": iso(b.start, tz),
        "end": iso(b.end, tz),
        "hold_rank": b.hold_rank,
        "sequence": rec.sequence,
        "challenged_by": rec.challenged_by,
        "challenge_deadline": iso(rec.challenge_deadline, tz),
        "timezone": tz,
        "earliest_start": iso(b.earliest_start, tz),
        "latest_end": iso(b.latest_end, tz),
        "hold_expires": iso(rec.hold_expires, tz),
        "requires": sorted(b.requires),
    }


def _state(rec: Record) -> str:
    """``hold #2``, ``confirmed``..."""
    text = rec.status.value
    if rec.status is Status.HOLD and rec.booking.hold_rank:
        text += f" #{rec.booking.hold_rank}"
    return text


def _status_cell(rec: Record, tz: str, label: bool) -> str:
    text = _state(rec)
    if rec.challenged_by:
        text += f", challenged by {rec.challenged_by}"
        if rec.challenge_deadline:
            text += f" until {fmt_time(rec.challenge_deadline, tz, label=label)}"
    if rec.hold_expires and rec.status is Status.HOLD:
        text += f", expires {fmt_time(rec.hold_expires, tz, label=label)}"
    return text


def _show_records(records: list[Record], stages: dict[str, Stage], as_json: bool,
                  title: str, zone_of: Mapping[str, str] | None = None) -> None:
    """The bookings table (or ``--json``); ``zone_of``: zones the desk gave, by booking id."""
    zones = [(zone_of or {}).get(r.id) or _booking_zone(r, stages) for r in records]
    if as_json:
        _print_json([_record_json(r, stages, tz) for r, tz in zip(records, zones, strict=True)])
        return
    label = len(set(zones)) > 1  # one zone: named once, in the caption
    when = min((r.booking.earliest_start for r in records), default=None)
    table = _table(title, ("id", "status", "production", "prio", "stage", "slot", "window"),
                   caption=legend(zones, when, labelled=label) if records else "",
                   right=("prio",))
    for r, tz in zip(records, zones, strict=True):
        b = r.booking
        slot = fmt_span(b.start, b.end, tz, label=label) if b.start else "—"
        if b.start and r.status is Status.REQUESTED:
            slot += " (wished)"
        window = f"{b.duration_minutes / 60:g} h in " + fmt_span(b.earliest_start,
                                                                 b.latest_end, tz, label=label)
        table.add_row(b.id, _status_cell(r, tz, label), b.production, str(b.priority),
                      b.stage or "—", slot, window)
    _out().print(table)


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
    if not isinstance(doc, dict) or not doc.get("stages"):
        _fail(f"{config}: lists no stages (expected an object with slot_minutes, stages and "
              f"pools, like {EXAMPLE_CONFIG})", 2)
    target = _target(db)
    new = isinstance(target, Path) and not target.exists()
    if db == DEFAULT_DB and isinstance(target, Path) and not target.parent.exists():
        # the project's own run-time folder (var/, not in git): a fresh checkout has none;
        # a folder missing from a path the user typed is still refused (a typo, a share)
        target.parent.mkdir()
        typer.echo(f"created folder {target.parent}/")
    with _store(db, create=True, need_stages=False) as store:
        store.setup(doc, actor=_default_actor())
        stages = store.problem().stages
    zones = ", ".join(_zones(stages))
    typer.echo(f"loaded {len(stages)} stages into {redact(db)}"
               f"{' (new database)' if new else ''}; "
               f"times without an offset are read in {zones}")


def _request_zones(stages: dict[str, Stage], stage: str | None, allowed: list[str],
                   requires: list[str]) -> list[str]:
    """The zones a request's times are read in: its stage's, else its possible stages'."""
    if stage is not None:
        return [stages[stage].timezone]
    pool = [stages[s] for s in allowed] or list(stages.values())
    capable = [s for s in pool if set(requires) <= s.capabilities]
    return _zones(capable or pool)


@app.command()
def request(
    production: Annotated[str, typer.Option(help="Production name.")],
    duration_minutes: Annotated[int, typer.Option(help="Stage time needed, minutes.")],
    earliest_start: Annotated[str, typer.Option(
        help=f"Earliest start: {TIME_HELP}; a date alone is its start.")],
    latest_end: Annotated[str, typer.Option(
        help=f"Latest end: {TIME_HELP}; a date alone means the end of that day.")],
    priority: Annotated[int, typer.Option(help="Higher is more important.")] = 1,
    booking_id: Annotated[str | None, typer.Option("--id", help="Booking id (generated).")] = None,
    contact: Annotated[str, typer.Option(help="Who to call.")] = "",
    requires: Annotated[list[str] | None, typer.Option(
        help="Required capability (repeat for several; see the stages' capabilities).")] = None,
    allow_stage: Annotated[list[str] | None, typer.Option(help="Allowed stage.")] = None,
    pool: Annotated[list[str] | None, typer.Option(help="Pool need, POOL=AMOUNT.")] = None,
    stage: Annotated[str | None, typer.Option(help="Wished-for stage (with --start).")] = None,
    start: Annotated[str | None, typer.Option(
        help=f"Wished-for start (with --stage): {TIME_HELP}.")] = None,
    db: DbOpt = DEFAULT_DB,
    as_json: JsonOpt = False,
    actor: ActorOpt = "",
    reason: ReasonOpt = "",
    server: ServerOpt = None,
) -> None:
    """Request stage time (status REQUESTED)."""
    if (stage is None) != (start is None):
        _fail("--stage and --start go together (the wished-for placement): give both or "
              "neither", 2)
    needs: dict[str, int] = {}
    for item in pool or []:
        name, _, amount = item.partition("=")
        if not amount.isdigit():
            _fail(f"--pool: expected POOL=AMOUNT, got {item!r}", 2)
        needs[name] = int(amount)
    args = _RequestArgs(production, duration_minutes, earliest_start, latest_end, priority,
                        booking_id, contact, list(requires or []), list(allow_stage or []),
                        needs, stage, start)
    if server:
        with _desk(server, actor) as desk:
            stages = stages_of(desk)
            spec = _request_spec(args, stages)
            docs = [desk.post("/bookings", dict(spec, reason=reason) if reason else spec)]
            records, zones = _remote_records(docs)
        _show_records(records, stages, as_json, "requested", zones)
        return
    with _store(db) as store:
        stages = _stages(store)
        rec = store.request(_request_spec(args, stages), actor or _default_actor(), reason)
    _show_records([rec], stages, as_json, "requested")


@dataclass(frozen=True)
class _RequestArgs:
    production: str
    duration_minutes: int
    earliest_start: str
    latest_end: str
    priority: int
    booking_id: str | None
    contact: str
    requires: list[str]
    allow_stage: list[str]
    pools: dict[str, int]
    stage: str | None
    start: str | None


def _request_spec(a: _RequestArgs, stages: dict[str, Stage]) -> dict[str, Any]:
    """A request's booking spec (the input contract), its options checked against ``stages``.

    Times without an offset are read in the zone of the stages it may use (a note says so).
    """
    for sid in a.allow_stage:
        _check_stage("--allow-stage", sid, stages)
    if a.stage is not None:
        _check_stage("--stage", a.stage, stages)
    known = sorted(set().union(*(s.capabilities for s in stages.values())))
    unknown = [c for c in a.requires if c not in known]
    if unknown:
        _fail(f"--requires: unknown capability {', '.join(map(repr, unknown))} (no stage "
              f"has it; known: {', '.join(known) or 'none'})", 2)
    zones = _request_zones(stages, a.stage, a.allow_stage, a.requires)
    first = _read_time(a.earliest_start, zones, "--earliest-start")
    last = _read_time(a.latest_end, zones, "--latest-end", end_of_day=True)
    if a.duration_minutes > 0 and last - first < timedelta(minutes=a.duration_minutes):
        _fail(f"the window {fmt_span(first, last, zones[0])} ({zones[0]}) is shorter than "
              f"--duration-minutes {a.duration_minutes}: widen --earliest-start/--latest-end "
              "or ask for less time", 2)
    spec: dict[str, Any] = {
        "production": a.production,
        "priority": a.priority,
        "duration_minutes": a.duration_minutes,
        "earliest_start": first.isoformat(),
        "latest_end": last.isoformat(),
        "requires": a.requires,
        "pools": a.pools,
    }
    if a.booking_id:
        spec["id"] = a.booking_id
    if a.contact:
        spec["contact"] = a.contact
    if a.allow_stage:
        spec["stages"] = a.allow_stage
    if a.stage is not None and a.start is not None:
        spec["stage"] = a.stage
        spec["start"] = _read_time(a.start, zones, "--start").isoformat()
    return spec


def _history_rows(store: BookingStore, booking_id: str,
                  stages: dict[str, Stage]) -> tuple[str, list[dict[str, Any]]]:
    tz = _booking_zone(store.get(booking_id), stages)
    rows = []
    for e in store.history(booking_id):
        rows.append({"seq": e.seq, "at": iso(e.at, tz), "actor": e.actor, "action": e.action,
                     "from": e.from_status, "to": e.to_status, "reason": e.reason,
                     "details": e.details, "_at": e.at})
    return tz, rows


def _history_detail(row: dict[str, Any], stages: dict[str, Stage], tz: str) -> str:
    """A placement in a history entry (``SZ-3 2031-03-04 08:00 CST``), else ""."""
    d = row["details"]
    if not isinstance(d, dict) or not d.get("start"):
        return ""
    try:
        at = datetime.fromisoformat(str(d["start"]))
    except ValueError:
        return ""
    sid = str(d.get("stage") or "")
    zone = stages[sid].timezone if sid in stages else tz
    return f"{sid} {fmt_time(at, zone)}".strip()


@app.command("list")
def list_(
    status: Annotated[list[str] | None, typer.Option(help="Only these statuses.")] = None,
    stage: Annotated[str | None, typer.Option(help="Only this stage.")] = None,
    production: Annotated[str | None, typer.Option(help="Only this production.")] = None,
    history: Annotated[str | None, typer.Option(help="Show the audit history of a booking.")]
    = None,
    db: DbOpt = DEFAULT_DB,
    as_json: JsonOpt = False,
    server: ServerOpt = None,
) -> None:
    """List bookings (or one booking's audit history), times in each site's zone."""
    statuses = None
    if status:
        try:
            statuses = frozenset(Status(s) for s in status)
        except ValueError:
            _fail(f"--status: expected one of {[s.value for s in Status]}, got {status}", 2)
    if server:
        with _desk(server) as desk:
            stages = stages_of(desk)
            if history is not None:
                records, zones = _remote_records([desk.get(_path("bookings", history))])
                tz = zones.get(history) or _booking_zone(records[0], stages)
                rows = []
                for r in desk.get(_path("bookings", history, "history")):
                    at = datetime.fromisoformat(str(r["at"]))
                    rows.append({"seq": r["seq"], "at": iso(at, tz), "actor": r["actor"],
                                 "action": r["action"], "from": r.get("from"),
                                 "to": r.get("to"), "reason": r.get("reason") or "",
                                 "details": r.get("details") or {}, "_at": at})
                _show_history(history, tz, rows, stages, as_json)
                return
            wanted = ",".join(sorted(x.value for x in statuses)) if statuses else None
            if stage is not None and stage not in stages:
                records, zones = [], {}  # as the local store: no bookings on it
            else:
                records, zones = _remote_records(desk.get("/bookings", stage=stage,
                                                          production=production,
                                                          status=wanted))
        records = [r for r in records
                   if (statuses is None or r.status in statuses)
                   and (stage is None or r.booking.stage == stage)
                   and (production is None or r.booking.production == production)]
        _show_records(records, stages, as_json, "bookings", zones)
        return
    with _store(db) as store:
        store.sweep()
        stages = _stages(store)
        if history is not None:
            tz, rows = _history_rows(store, history, stages)
            _show_history(history, tz, rows, stages, as_json)
            return
        records = store.records(statuses, stage, production)
    _show_records(records, stages, as_json, "bookings")


def _show_history(booking_id: str, tz: str, rows: list[dict[str, Any]],
                  stages: dict[str, Stage], as_json: bool) -> None:
    """A booking's audit history (``rows`` from :func:`_history_rows`)."""
    if as_json:
        _print_json([{k: v for k, v in r.items() if k != "_at"} for r in rows])
        return
    table = _table(f"history of {booking_id}",
                   ("seq", "at", "actor", "action", "status", "reason"),
                   caption=legend([tz], rows[0]["_at"] if rows else None, labelled=False),
                   right=("seq",))
    for row in rows:
        change = " → ".join(x for x in (row["from"], row["to"]) if x)
        if row["from"] == row["to"]:
            change = row["to"] or ""
        why = "; ".join(x for x in (row["reason"], _history_detail(row, stages, tz)) if x)
        table.add_row(str(row["seq"]), fmt_time(row["_at"], tz, seconds=True, label=False),
                      row["actor"], row["action"], change, why)
    _out().print(table)


@app.command()
def hold(
    booking_id: Annotated[str, typer.Argument(help="Booking id.")],
    stage: Annotated[str | None, typer.Option(help="Stage (default: wished-for or earliest).")]
    = None,
    start: Annotated[str | None, typer.Option(help=f"Start: {TIME_HELP}.")] = None,
    expires: Annotated[str | None, typer.Option(help=f"Hold expires at: {TIME_HELP}.")] = None,
    db: DbOpt = DEFAULT_DB,
    as_json: JsonOpt = False,
    actor: ActorOpt = "",
    reason: ReasonOpt = "",
    server: ServerOpt = None,
) -> None:
    """Put a ranked hold on a slot."""
    if server:
        with _desk(server, actor) as desk:
            stages = stages_of(desk)
            if stage is not None:
                _check_stage("--stage", stage, stages)
            records, zone_of = _remote_records([desk.get(_path("bookings", booking_id))])
            zones = ([stages[stage].timezone] if stage
                     else [zone_of.get(booking_id) or _booking_zone(records[0], stages)])
            body: dict[str, Any] = {}
            if stage is not None:
                body["stage"] = stage
            if start:
                body["start"] = _read_time(start, zones, "--start").isoformat()
            if expires:
                body["expires"] = _read_time(expires, zones, "--expires").isoformat()
            if reason:
                body["reason"] = reason
            records, zone_of = _remote_records([desk.post(_path("bookings", booking_id,
                                                                "hold"), body)])
        _show_records(records, stages, as_json, "held", zone_of)
        return
    with _store(db) as store:
        stages = _stages(store)
        if stage is not None:
            _check_stage("--stage", stage, stages)
        rec = store.get(booking_id)
        zones = [stages[stage].timezone] if stage else [_booking_zone(rec, stages)]
        start_dt = _read_time(start, zones, "--start") if start else None
        expires_dt = _read_time(expires, zones, "--expires") if expires else None
        tried = rec.booking
        if stage is not None and start_dt is not None:
            tried = replace(tried, stage=stage, start=start_dt)
        with _explained(store, booking_id, tried):
            rec = store.hold(booking_id, actor or _default_actor(), stage, start_dt,
                             expires_dt, reason)
    _show_records([rec], stages, as_json, "held")


@contextmanager
def _explained(store: BookingStore, booking_id: str, tried: Booking | None) -> Iterator[None]:
    """A refused placement in the plain sentences the desk gives (who, when, what is missing).

    Other refusals (a first hold ahead, a wrong status) pass through to :func:`_store`.

    The store's own message names checker kinds and ISO times (``overlap: A and B overlap on
    SZ-3``); a producer reads which booking is in the way, when, in the site's zone, and
    what to do. A placement outside the booking's window is bad input (exit 2), said the
    same way rather than as the input contract's ``bookings[0].start``.
    """
    from stagectl.desk.bookings import placement_explanation

    try:
        yield
    except BookingRefused as exc:
        if " cannot go on " not in str(exc) or tried is None:
            raise  # the store's other refusals already say what to do, with the CLI command
        _fail_lines([en for en, _ in placement_explanation(store, tried)] or [str(exc)], 1)
    except BookingInputError:
        sentences = placement_explanation(store, tried) if tried is not None else []
        if not sentences:
            raise
        _fail_lines([en for en, _ in sentences], 2)


def _fail_lines(lines: list[str], code: int) -> NoReturn:
    err = _err()
    for line in lines:
        err.print(f"[red]error:[/red] {escape(line)}", soft_wrap=True)
    raise typer.Exit(code)


def _change(name: str, booking_id: str, db: str, as_json: bool, actor: str,
            reason: str, server: str | None = None) -> None:
    titles = {"confirm": "confirmed", "release": "released", "cancel": "cancelled"}
    if server:
        with _desk(server, actor) as desk:
            stages = stages_of(desk)
            doc = desk.post(_path("bookings", booking_id, name),
                            {"reason": reason} if reason else {})
            records, zones = _remote_records([doc])
        _show_records(records, stages, as_json, titles[name], zones)
        return
    with _store(db) as store:
        stages = _stages(store)
        tried = store.get(booking_id).booking if name == "confirm" else None
        with _explained(store, booking_id, tried):
            rec = getattr(store, name)(booking_id, actor or _default_actor(), reason)
    _show_records([rec], stages, as_json, titles[name])


@app.command()
def confirm(
    booking_id: Annotated[str, typer.Argument(help="Booking id.")],
    db: DbOpt = DEFAULT_DB,
    as_json: JsonOpt = False,
    actor: ActorOpt = "",
    reason: ReasonOpt = "",
    server: ServerOpt = None,
) -> None:
    """Confirm a first hold; never double-books."""
    _change("confirm", booking_id, db, as_json, actor, reason, server)


@app.command()
def release(
    booking_id: Annotated[str, typer.Argument(help="Booking id.")],
    db: DbOpt = DEFAULT_DB,
    as_json: JsonOpt = False,
    actor: ActorOpt = "",
    reason: ReasonOpt = "",
    server: ServerOpt = None,
) -> None:
    """Release a hold; the holds behind it move up."""
    _change("release", booking_id, db, as_json, actor, reason, server)


@app.command()
def cancel(
    booking_id: Annotated[str, typer.Argument(help="Booking id.")],
    db: DbOpt = DEFAULT_DB,
    as_json: JsonOpt = False,
    actor: ActorOpt = "",
    reason: ReasonOpt = "",
    server: ServerOpt = None,
) -> None:
    """Cancel a request, hold or confirmed booking."""
    _change("cancel", booking_id, db, as_json, actor, reason, server)


@app.command()
def challenge(
    booking_id: Annotated[str, typer.Argument(help="The lower hold that challenges.")],
    hours: Annotated[float, typer.Option(help="Hours the first hold has to answer.")] = 24.0,
    db: DbOpt = DEFAULT_DB,
    as_json: JsonOpt = False,
    actor: ActorOpt = "",
    reason: ReasonOpt = "",
    server: ServerOpt = None,
) -> None:
    """Challenge the first hold: it must confirm or release by the deadline."""
    deadline = datetime.now(UTC) + timedelta(hours=hours)
    if server:
        with _desk(server, actor) as desk:
            stages = stages_of(desk)
            body = {"deadline": deadline.isoformat()} | ({"reason": reason} if reason else {})
            reply = desk.post(_path("bookings", booking_id, "challenge"), body)
            records, zones = _remote_records([reply["challenged"]])
        _show_records(records, stages, as_json, "challenged", zones)
        return
    with _store(db) as store:
        stages = _stages(store)
        rec = store.challenge(booking_id, actor or _default_actor(), deadline, reason)
    _show_records([rec], stages, as_json, "challenged")


def _show_plan(doc: dict[str, Any], productions: dict[str, str], stages: dict[str, Stage],
               title: str, now: dict[str, str] | None = None) -> None:
    """Who got which stage when first, then what was not placed, then the solver's figures.

    ``now``: each booking's status as stored after the plan was applied (shown, so the table
    says what the store holds rather than what the plan hoped).
    """
    out = _out()
    zones = [stages[a["stage"]].timezone for a in doc["assignments"] if a["stage"] in stages]
    label = len(set(zones)) > 1
    first = doc["assignments"][0]["start"] if doc["assignments"] else None
    cols = ("booking", "production", "stage", "when") + (("status",) if now else ())
    plan = _table(title, cols,
                  caption=legend(zones, datetime.fromisoformat(first), labelled=label)
                  if first else "")
    for a in doc["assignments"]:
        tz = stages[a["stage"]].timezone if a["stage"] in stages else DEFAULT_TIMEZONE
        row = [a["id"], productions.get(a["id"], ""), a["stage"],
               fmt_span(datetime.fromisoformat(a["start"]),
                        datetime.fromisoformat(a["end"]), tz, label=label)]
        if now:
            row.append(now.get(a["id"], ""))
        plan.add_row(*row)
    if doc["assignments"]:
        out.print(plan)
    else:
        out.print(f"{title}: nothing placed")
    if doc["rejected"]:
        rej = _table("not placed", ("booking", "production", "why"))
        for r in doc["rejected"]:
            rej.add_row(r["id"], productions.get(r["id"], ""), r["reason"])
        out.print(rej)
    stats = _table("solver", ("placed", "rejected", "objective", "bound", "greedy",
                              "status", "by", "seconds"),
                   right=("placed", "rejected", "objective", "bound", "greedy", "seconds"))
    stats.add_row(str(len(doc["assignments"])), str(len(doc["rejected"])),
                  f"{doc['objective']:.2f}", f"{doc['bound']:.2f}",
                  f"{doc['greedy_objective']:.2f}", doc["status"], doc["source"],
                  f"{doc['solve_seconds']:.2f}")
    out.print(stats)


INTERRUPTED_EXIT = 130  # 128 + SIGINT, what a shell reports for a Ctrl-C'd command


@contextmanager
def _ctrl_c(at_once: str = "", first: str = "Ctrl-C: stopping the search (press again to "
            "leave at once)") -> Iterator[threading.Event]:
    """While entered, Ctrl-C (SIGINT) sets the event instead of raising KeyboardInterrupt.

    The first Ctrl-C says ``first`` on stderr; a second one leaves at once (exit 130). With
    ``at_once`` (a message), the first one does: for a wait that cannot be cut short
    cleanly, such as an HTTP reply.
    """
    stop = threading.Event()

    def on_sigint(signum: int, frame: object) -> None:
        if stop.is_set() or at_once:
            os.write(2, ((at_once or "interrupted again: leaving now") + "\n").encode())
            raise typer.Exit(INTERRUPTED_EXIT)
        stop.set()
        os.write(2, (first + "\n").encode())

    try:
        previous = signal.signal(signal.SIGINT, on_sigint)
    except ValueError:  # not the main thread (an embedding caller): no handler, no event
        yield stop
        return
    try:
        yield stop
    finally:
        signal.signal(signal.SIGINT, previous)


def _solving(problem: Problem, time_limit: float) -> None:
    """Say on stderr that the search runs and how to stop it (table output only)."""
    n = sum(1 for b in problem.bookings if b.status is not Status.CONFIRMED)
    _err().print(f"solving: {n} booking{'s' if n != 1 else ''} to place, up to "
                 f"{time_limit:g} s (Ctrl-C stops the search and shows the best plan so far)",
                 soft_wrap=True)


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
    server: ServerOpt = None,
) -> None:
    """Optimise a JSON input file (--input/--output), or the bookings in the database.

    Ctrl-C stops the search at once: the best plan found so far is printed,
    marked interrupted ("interrupted": true with --json), nothing is stored
    or written (not with --apply either, nor --output), and the exit code is
    130. A second Ctrl-C leaves without printing. With --server, Ctrl-C
    stops waiting for the desk at once (exit 130).
    """
    if time_limit <= 0:
        _fail(f"--time-limit: must be > 0, got {time_limit}", 2)
    now: dict[str, str] | None = None
    if server and input_path is None:  # (--input never uses a store: it runs here)
        left = ("interrupted: stopped waiting for the desk"
                + ("; it may still store the plan (see `book list`)" if apply else
                   "; nothing was stored"))
        with _desk(server, actor) as desk, _ctrl_c(at_once=left):
            stages = stages_of(desk)
            reply = desk.post("/solve", {"time_limit_s": time_limit, "apply": apply},
                              wait_s=time_limit)
            doc, productions = _plan_doc(reply, stages)
            if apply:
                records, _ = _remote_records(desk.get("/bookings"))
                now = {r.id: _state(r) for r in records}
        if as_json:
            _print_json(doc)
            return
        title = ("plan (stored)" if apply
                 else "plan (preview: nothing stored; add --apply to hold these)")
        _show_plan(doc, productions, stages, title, now)
        return
    interrupted: SolveInterrupted | None = None
    if input_path is not None:
        try:
            problem = load_problem(input_path)
            with _ctrl_c() as stop:
                if output is not None and not as_json:
                    _solving(problem, time_limit)
                plan = solve(problem, time_limit, interrupt=stop)
        except BookingInputError as exc:
            err = _err()
            for line in exc.errors:
                err.print(f"[red]error:[/red] {escape(f'{input_path}: {line}')}",
                          soft_wrap=True)
            raise typer.Exit(2) from exc
        except PlanCheckFailed as exc:
            _fail(str(exc), 1)
        except SolveInterrupted as exc:
            interrupted, plan = exc, exc.plan
        doc = plan.to_json(problem)
        if output is not None and interrupted is None:
            output.parent.mkdir(parents=True, exist_ok=True)
            output.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n",
                              encoding="utf-8")
        title = f"plan (written to {output})"
    else:
        with _store(db) as store:
            # store.solve's steps, with the search interruptible: an interrupted plan is
            # never applied
            store.sweep()
            version = store.version()
            problem = store.problem()
            try:
                with _ctrl_c() as stop:
                    if not as_json:
                        _solving(problem, time_limit)
                    plan = solve(problem, time_limit, interrupt=stop)
            except SolveInterrupted as exc:
                interrupted, plan = exc, exc.plan
            if apply and interrupted is None:
                store.apply_plan(problem, plan, actor or _default_actor(), "solve", version)
                now = {r.id: _state(r) for r in store.records()}
        doc = plan.to_json(problem)
        title = ("plan (stored)" if apply
                 else "plan (preview: nothing stored; add --apply to hold these)")
    if interrupted is not None:
        doc["interrupted"] = True
        title = "plan so far (interrupted by Ctrl-C: nothing stored or written)"
    if as_json or (output is None and input_path is not None):
        _print_json(doc)
    else:
        productions = {b.id: b.production for b in problem.bookings}
        _show_plan(doc, productions, problem.stage_by_id(), title, now)
    if interrupted is not None:
        _err().print(f"interrupted: {escape(str(interrupted))}; nothing was stored or "
                     "written (run it again to finish, or give a shorter --time-limit)",
                     soft_wrap=True)
        raise typer.Exit(INTERRUPTED_EXIT)


def _plan_doc(reply: dict[str, Any], stages: dict[str, Stage]) -> tuple[dict[str, Any],
                                                                        dict[str, str]]:
    """A desk ``POST /solve`` reply as ``Plan.to_json``'s document, and productions by id."""
    def local(text: str, sid: str) -> str:
        at = datetime.fromisoformat(text)
        return at.astimezone(stages[sid].tz).isoformat() if sid in stages else at.isoformat()

    stats = reply["stats"]
    assignments = sorted(reply["assignments"],
                         key=lambda a: (datetime.fromisoformat(a["start"]), a["stage"],
                                        a["booking"]))
    doc = {
        "status": stats["status"],
        "objective": stats["objective"],
        "bound": stats["bound"],
        "greedy_objective": stats["greedy_objective"],
        "solve_seconds": stats["solve_seconds"],
        "source": stats["source"],
        "assignments": [{"id": a["booking"], "stage": a["stage"],
                         "start": local(a["start"], a["stage"]),
                         "end": local(a["end"], a["stage"])} for a in assignments],
        "rejected": [{"id": r["booking"], "reason": " ".join(map(str, r["explanation"]))}
                     for r in reply["rejected"]],
    }
    productions = {str(x["booking"]): str(x.get("production") or "")
                   for x in [*reply["assignments"], *reply["rejected"]]}
    return doc, productions


@app.command()
def outage(
    stage: Annotated[str, typer.Argument(help="Stage that goes down.")],
    start: Annotated[str, typer.Option("--from", help=f"Outage start: {TIME_HELP}.")],
    end: Annotated[str, typer.Option(
        "--to", help=f"Outage end: {TIME_HELP}; a date alone means the end of that day.")],
    time_limit: Annotated[float, typer.Option("--time-limit", help="Seconds for CP-SAT.")] = 5.0,
    db: DbOpt = DEFAULT_DB,
    as_json: JsonOpt = False,
    actor: ActorOpt = "",
    reason: ReasonOpt = "",
    server: ServerOpt = None,
    preview: Annotated[bool, typer.Option(
        "--preview", help="Only show what would move; nothing is stored (through the desk a "
                          "producer may preview; recording needs the engineer role).")] = False,
) -> None:
    """Record an outage and move the bookings it hits, with the fewest changes."""
    if server:
        with _desk(server, actor) as desk:
            stages = stages_of(desk)
            _check_stage("stage", stage, stages)
            tz = stages[stage].timezone
            start_dt = _read_time(start, [tz], "--from")
            end_dt = _read_time(end, [tz], "--to", end_of_day=True)
            reply = desk.post("/outages", {"stage": stage, "start": start_dt.isoformat(),
                                           "end": end_dt.isoformat(), "reason": reason,
                                           "apply": not preview, "time_limit_s": time_limit},
                              wait_s=time_limit)
            rep = _outage_report(reply, stage, start_dt, end_dt)
            productions = {str(m["booking"]): str(m.get("production") or "")
                           for m in [*reply["moved"], *reply["unplaced"]]}
    else:
        with _store(db) as store:
            stages = _stages(store)
            _check_stage("stage", stage, stages)
            tz = stages[stage].timezone
            start_dt = _read_time(start, [tz], "--from")
            end_dt = _read_time(end, [tz], "--to", end_of_day=True)
            if preview:
                rep = store.outage_plan(stage, start_dt, end_dt, time_limit)
            else:
                # the outage is recorded, then its bookings re-planned and moved: a Ctrl-C
                # between the two would leave it recorded with nothing moved, so it waits
                with _ctrl_c(first="Ctrl-C: finishing first: the outage is stored with the "
                             "moves it needs (press again to leave at once)"):
                    rep = store.outage(stage, start_dt, end_dt, actor or _default_actor(),
                                       reason, time_limit)
            hit = {m["id"] for m in rep.moved} | {u["id"] for u in rep.unplaced}
            productions = {i: store.get(i).booking.production or "" for i in hit}

    def zone_of(sid: str) -> str:
        return stages[sid].timezone if sid in stages else tz

    def at(text: str) -> datetime | None:
        return datetime.fromisoformat(text) if text else None

    if as_json:
        moved = [dict(m, from_start=iso(at(m["from_start"]), zone_of(m["from_stage"])) or "",
                      to_start=iso(at(m["to_start"]), zone_of(m["to_stage"])) or "")
                 for m in rep.moved]
        _print_json({"stage": rep.stage, "from": iso(rep.start, tz), "to": iso(rep.end, tz),
                     "timezone": tz, "moved": moved, "unplaced": rep.unplaced,
                     "kept": rep.kept, "solve_seconds": round(rep.solve_seconds, 3),
                     "source": rep.source} | ({"applied": False} if preview else {}))
        return
    out = _out()
    zones = [tz] + [zone_of(m["to_stage"]) for m in rep.moved]
    table = _table(f"outage on {stage} {fmt_span(rep.start, rep.end, tz)}: "
                   + ("would move (preview: nothing stored)" if preview else "moved"),
                   ("booking", "production", "from", "to"), caption=legend(zones, rep.start))
    for m in rep.moved:
        table.add_row(
            m["id"], productions.get(m["id"], ""),
            f"{m['from_stage']} {fmt_time(at(m['from_start']), zone_of(m['from_stage']))}",
            f"{m['to_stage']} {fmt_time(at(m['to_start']), zone_of(m['to_stage']))}")
    if rep.moved:
        out.print(table)
    if rep.unplaced:
        t2 = _table("could not be moved (" + ("would be rejected)" if preview
                                              else "now rejected)"),
                    ("booking", "production", "why"))
        for u in rep.unplaced:
            t2.add_row(u["id"], productions.get(u["id"], ""), u["reason"])
        out.print(t2)
    if preview:
        typer.echo(f"preview, nothing stored: would keep {rep.kept}, move {len(rep.moved)}, "
                   f"fail to move {len(rep.unplaced)} (run it again without --preview to "
                   "record the outage)")
    else:
        typer.echo(f"kept {rep.kept}, moved {len(rep.moved)}, could not move "
                   f"{len(rep.unplaced)}")


def _outage_report(reply: dict[str, Any], stage: str, start: datetime,
                   end: datetime) -> OutageReport:
    """A desk ``POST /outages`` reply as the store's ``OutageReport``."""
    def utc(text: Any) -> str:
        return datetime.fromisoformat(str(text)).astimezone(UTC).isoformat() if text else ""

    moved = [{"id": str(m["booking"]), "from_stage": str(m["from_stage"]),
              "from_start": utc(m.get("from_start")), "to_stage": str(m["to_stage"]),
              "to_start": utc(m["to_start"])} for m in reply["moved"]]
    unplaced = [{"id": str(u["booking"]), "reason": " ".join(map(str, u["explanation"]))}
                for u in reply["unplaced"]]
    return OutageReport(stage=stage, start=start, end=end, moved=moved, unplaced=unplaced,
                        kept=int(reply["kept"]),
                        solve_seconds=float(reply.get("solve_seconds") or 0.0),
                        source=str(reply.get("source") or ""))


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


def _report_span(start: str | None, end: str | None,
                 zones: list[str]) -> tuple[datetime, datetime]:
    """``--from``/``--to`` read in the main zone (default: today and 30 days on)."""
    tz = zones[0]
    if start:
        start_dt = _read_time(start, zones, "--from")
    else:
        now = datetime.now(UTC).astimezone(Stage("today", timezone=tz).tz)
        start_dt = now.replace(hour=0, minute=0, second=0, microsecond=0)
    end_dt = (_read_time(end, zones, "--to", end_of_day=True) if end
              else start_dt + timedelta(days=30))
    if end_dt <= start_dt:
        _fail(f"--to ({fmt_time(end_dt, tz)}) must be after --from "
              f"({fmt_time(start_dt, tz)})", 2)
    return start_dt, end_dt


@app.command()
def report(
    start: Annotated[str | None, typer.Option(
        "--from", help=f"Report from: {TIME_HELP}; a date alone is its start (default: today).")]
    = None,
    end: Annotated[str | None, typer.Option(
        "--to", help=f"Report to: {TIME_HELP}; a date alone means the end of that day "
                     "(default: 30 days after --from).")]
    = None,
    db: DbOpt = DEFAULT_DB,
    as_json: JsonOpt = False,
    server: ServerOpt = None,
) -> None:
    """Utilisation per stage and per site."""
    if server:
        with _desk(server) as desk:
            zones = _zones(stages_of(desk).values())
            tz = zones[0]
            start_dt, end_dt = _report_span(start, end, zones)
            reply = desk.get("/reports", **{"from": start_dt.isoformat(),
                                            "to": end_dt.isoformat()})
            rows = [UtilisationRow(**r) for r in reply["stages"]]
            sites = [UtilisationRow(**r) for r in reply["sites"]]
    else:
        with _store(db) as store:
            store.sweep()
            stage_list = store.problem().stages
            zones = _zones(stage_list)
            tz = zones[0]
            start_dt, end_dt = _report_span(start, end, zones)
            rows, sites = utilisation(stage_list, store.records(), start_dt, end_dt)
    if as_json:
        _print_json({"from": iso(start_dt, tz), "to": iso(end_dt, tz), "timezone": tz,
                     "stages": [r.to_json() for r in rows],
                     "sites": [s.to_json() for s in sites]})
        return
    span = fmt_span(start_dt, end_dt, tz)
    cols = ("site", "stage", "available h", "booked h", "held h", "util %", "CNY")
    for title, data in ((f"utilisation per stage, {span}", rows),
                        (f"utilisation per site, {span}", sites)):
        table = _table(title, cols, caption=legend([tz], start_dt),
                       right=cols[2:])
        for r in data:
            table.add_row(r.site, r.stage, f"{r.available_hours:.1f}", f"{r.booked_hours:.1f}",
                          f"{r.held_hours:.1f}", f"{r.utilisation_pct:.1f}",
                          f"{r.revenue_cny:,.0f}")
        _out().print(table)
