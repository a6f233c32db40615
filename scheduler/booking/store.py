"""Booking storage and lifecycle on SQLite or PostgreSQL (docs/decisions/0013, 0066).

SQLite (the embedded default): one file in WAL mode with ``synchronous=FULL``; every change
runs inside ``BEGIN IMMEDIATE``: SQLite grants that write lock to one connection at a time,
across processes. PostgreSQL (a ``postgresql://`` URL, for a shared deployment): the schema is
Alembic's (:mod:`scheduler.booking.pg`); every change runs in a transaction that first takes
advisory locks: a change to one booking (hold, confirm, release, cancel, challenge) the locks
of its stage and of the pools it uses, under the store-wide lock taken shared; a new request
the store-wide lock shared only; everything else (setup, outages, plans, the deadline sweep)
the store-wide lock alone, which waits for all the others. Changes on different stages thus
run and commit at once (their commits share WAL flushes), and a confirmed booking's stage time
is also guarded by the database's own exclusion constraint. Either way the check "is this slot
still free?" and the write that takes it can never be interleaved with another producer's
(docs/decisions/0067). A change is acknowledged only after COMMIT returns, so a killed process
loses nothing it acknowledged. Every change writes a row to ``history``.

Lifecycle: REQUESTED -> HOLD (rank 1..n) -> CONFIRMED -> COMPLETED; exits RELEASED, EXPIRED,
CANCELLED, REJECTED.
"""

from __future__ import annotations

import functools
import hashlib
import json
import secrets
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from scheduler.booking.checker import check_plan
from scheduler.booking.greedy import greedy_plan
from scheduler.booking.model import (
    ACTIVE,
    Assignment,
    Booking,
    Plan,
    Problem,
    Status,
    Window,
)
from scheduler.booking.optimiser import optimise
from scheduler.booking.parse import (
    BookingInputError,
    booking_to_dict,
    bookings_for,
    problem_from_dict,
    stage_to_dict,
)
from scheduler.booking.solve import PlanCheckFailed, solve
from scheduler.dbfile import DatabaseKind, open_database
from scheduler.sql import Conn, DoubleBooking, Row, connect, is_postgres_url

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS stages (id TEXT PRIMARY KEY, spec TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS pools (
    id TEXT PRIMARY KEY, capacity INTEGER NOT NULL, kind TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS outages (
    id INTEGER PRIMARY KEY AUTOINCREMENT, stage TEXT NOT NULL, start TEXT NOT NULL,
    end TEXT NOT NULL, reason TEXT NOT NULL DEFAULT '', created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS bookings (
    id TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    spec TEXT NOT NULL,
    stage TEXT,
    start TEXT,
    hold_rank INTEGER,
    hold_expires TEXT,
    challenged_by TEXT,
    challenge_deadline TEXT,
    sequence INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS bookings_stage ON bookings (stage, status);
CREATE TABLE IF NOT EXISTS history (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    booking_id TEXT NOT NULL,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    from_status TEXT,
    to_status TEXT,
    reason TEXT NOT NULL DEFAULT '',
    details TEXT NOT NULL DEFAULT '{}');
INSERT OR IGNORE INTO meta (key, value) VALUES ('version', '0'), ('slot_minutes', '15');
"""

FILE = DatabaseKind(
    name="booking database",
    application_id=0x53544B42,  # "STKB"
    version=1,
    script=SCHEMA,
    create_command="`stagectl book setup CONFIG --db {path}`",
    path_setting="--db (or STAGECTL_BOOKING_DB)",
    row_checks=(("SELECT COUNT(*) = 2 FROM meta WHERE key IN ('version', 'slot_minutes')",
                 "its meta table has no version or slot_minutes row"),),
)


WRITE_LOCK = 0x53544B42  # pg_advisory_xact_lock key of the store's writers ("STKB")
VERSION_SHARDS = 16  # PostgreSQL: requests bump one of this many version rows, at random


def lock_key(kind: str, name: str) -> int:
    """The advisory lock key of one stage or pool (a signed 64-bit hash of its id)."""
    digest = hashlib.blake2b(f"stagectl:{kind}:{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class _Rescope(Exception):
    """The booking moved to another stage between reading it and locking: lock again."""


class BookingRefused(Exception):
    """A lifecycle change that is not allowed; the message says why and what to do."""


class UnknownBooking(BookingRefused):
    """No booking with that id."""


@dataclass(frozen=True)
class Record:
    """A stored booking with its bookkeeping fields."""

    booking: Booking
    sequence: int
    created_at: datetime
    updated_at: datetime
    hold_expires: datetime | None = None
    challenged_by: str | None = None
    challenge_deadline: datetime | None = None

    @property
    def id(self) -> str:
        """Booking id."""
        return self.booking.id

    @property
    def status(self) -> Status:
        """Lifecycle state."""
        return self.booking.status


@dataclass(frozen=True)
class HistoryEntry:
    """One audited change: who, when, what and why."""

    seq: int
    booking_id: str
    at: datetime
    actor: str
    action: str
    from_status: str | None
    to_status: str | None
    reason: str
    details: dict[str, Any]


@dataclass
class OutageReport:
    """What an outage re-plan did."""

    stage: str
    start: datetime
    end: datetime
    moved: list[dict[str, str]]
    unplaced: list[dict[str, str]]
    kept: int
    solve_seconds: float
    source: str
    version: int | None = None  # the store's version the re-plan was computed at (previews)


def _now() -> datetime:
    return datetime.now(UTC)


def _no_file() -> sqlite3.Connection:  # pragma: no cover - PostgreSQL stores open no file
    raise AssertionError("a PostgreSQL store opens no SQLite file")


_F = TypeVar("_F", bound=Callable[..., Any])


def _decodes(what: str) -> Callable[[_F], _F]:
    """Mark a method that decodes stored rows: a value that does not decode is damage.

    It is reported as ``sqlite3.DatabaseError``, like a page SQLite itself cannot read, so
    the CLI shows the same one-line "damaged" error instead of a traceback.
    """

    def wrap(fn: _F) -> _F:
        @functools.wraps(fn)
        def inner(*args: Any, **kwargs: Any) -> Any:
            try:
                return fn(*args, **kwargs)
            except BookingInputError as exc:
                raise sqlite3.DatabaseError(
                    f"stored {what} is invalid: {'; '.join(exc.errors)}") from exc
            except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
                raise sqlite3.DatabaseError(f"stored {what} cannot be read: {exc!r}") from exc

        return inner  # type: ignore[return-value]

    return wrap


def _iso(dt: datetime | None) -> str | None:
    return None if dt is None else dt.isoformat()


def _dt(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


CONFIG_COUNTER = "SELECT value FROM meta WHERE key = 'config'"  # see BookingStore._config


def _hold_due(c: Conn) -> str:
    """SQL: a hold whose expiry or challenge deadline is at or before the ``?`` instant."""
    at = c.instant
    return (f"status = '{Status.HOLD.value}' AND ({at('hold_expires')} <= {at('?')}"
            f" OR {at('challenge_deadline')} <= {at('?')})")


def _ended(c: Conn) -> str:
    """SQL: a confirmed booking whose end is at or before the ``?`` instant."""
    if c.postgres:
        ends = "end_at <= CAST(? AS timestamptz)"
    else:
        ends = (f"julianday(start) + {c.json_int('spec', 'duration_minutes')} / 1440.0"
                " <= julianday(?)")
    return f"status = '{Status.CONFIRMED.value}' AND start IS NOT NULL AND {ends}"


def _overlap(a: Booking, b: Booking, changeover_minutes: int) -> bool:
    """Whether two placed bookings clash on one stage, changeover included."""
    assert a.start is not None and b.start is not None and a.end is not None and b.end is not None
    co = timedelta(minutes=changeover_minutes)
    return a.start < b.end + co and b.start < a.end + co


class BookingStore:
    """Bookings in one SQLite file or PostgreSQL database, safe from several processes at once.

    Args:
        path: the database file, or a ``postgresql://`` URL.
        clock: returns "now" as an aware datetime; injectable for tests.
        create: make a new database when ``path`` does not exist (its folder must).

    Raises:
        scheduler.dbfile.DatabaseFileError: missing (and not ``create``), damaged, not a
            booking database, newer than this build, or not readable and writable; the
            file is left as it was. Later, a damaged page shows as ``sqlite3.DatabaseError``
            (see :func:`scheduler.dbfile.explain`).
    """

    def __init__(self, path: Path | str, clock: Callable[[], datetime] = _now, *,
                 create: bool = True) -> None:
        self.clock = clock
        self._cfg: tuple[str | None, dict[str, Any], Problem | None] | None = None
        self._cfg_fresh = False  # _cfg checked against meta in the current write transaction
        self._shard = "version"  # the meta row the current write transaction bumps
        self.path: Path | str
        if is_postgres_url(path):
            from scheduler.booking.pg import ensure_schema

            self.path = str(path)
            ensure_schema(self.path, create=create)
            self.conn: Conn = connect(self.path, _no_file)
        else:
            self.path = Path(path)
            file = self.path

            def open_file() -> sqlite3.Connection:
                # one thread at a time uses a store (the desk checks stores out of a pool), but
                # not always the thread that opened it
                raw = open_database(file, FILE, create=create, synchronous="FULL",
                                    timeout_s=30.0, check_same_thread=False)
                raw.execute("PRAGMA busy_timeout = 30000")
                return raw

            self.conn = connect(str(self.path), open_file)

    @property
    def postgres(self) -> bool:
        """Whether the store is a PostgreSQL database."""
        return self.conn.postgres

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()

    def __enter__(self) -> BookingStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _tx(self, scope: tuple[str, list[int]] | None = None) -> Iterator[Conn]:
        """A write transaction holding the store's writer lock from the first statement.

        Args:
            scope: None: the whole store (one writer at a time). Else ``(shard, keys)``:
                on PostgreSQL the store-wide lock shared plus the advisory locks ``keys``
                (the stages and pools the change may touch, see :meth:`_scope`), and the
                version row ``shard`` is the one bumped, so writers of different stages
                neither wait for each other nor for one counter row. SQLite has one writer
                whatever the scope.

        A double booking refused by PostgreSQL's exclusion constraint (only a writer that
        bypasses this store could get that far) is reported as :class:`BookingRefused`.
        """
        seen = CONFIG_COUNTER
        if scope is None or not self.postgres:
            rows = self.conn.begin_write(WRITE_LOCK, then=seen)
            self._shard = "version"
        else:
            rows = self.conn.begin_write(WRITE_LOCK, scope[1], then=seen)
            self._shard = "version:" + scope[0]
        cached = self._cfg
        # the cached configuration is this transaction's when its counter is unchanged: a
        # change to it takes the store-wide lock, which this transaction now holds (or shares)
        self._cfg_fresh = (cached is not None and cached[0] is not None and bool(rows)
                           and cached[0] == str(rows[0][0]))
        try:
            yield self.conn
        except DoubleBooking as exc:
            self.conn.rollback()
            raise BookingRefused(f"the database refuses a second confirmed booking on the same "
                                 f"stage time: {exc}") from exc
        except BaseException:
            self._cfg_fresh = False
            self.conn.rollback()
            raise
        self._cfg_fresh = False
        self.conn.commit()

    # --- configuration ------------------------------------------------------------------

    def setup(self, doc: dict[str, Any], actor: str = "setup") -> None:
        """Load (or replace) stages, pools and slot size from a ``solve``-style document.

        Raises:
            BookingInputError: the document is invalid.
        """
        problem = problem_from_dict(
            {k: doc[k] for k in ("slot_minutes", "stages", "pools") if k in doc}
        )
        with self._tx() as c:
            c.execute("UPDATE meta SET value = ? WHERE key = 'slot_minutes'",
                      (str(problem.slot_minutes),))
            for s in problem.stages:
                c.execute("INSERT INTO stages (id, spec) VALUES (?, ?) ON CONFLICT (id)"
                          " DO UPDATE SET spec = excluded.spec",
                          (s.id, json.dumps(stage_to_dict(s))))
                if c.postgres:  # re-derive the stage's guarded ranges (changeover may change)
                    c.execute("UPDATE bookings SET stage = stage WHERE stage = ?", (s.id,))
            for p in problem.pools:
                c.execute("INSERT INTO pools (id, capacity, kind) VALUES (?, ?, ?)"
                          " ON CONFLICT (id) DO UPDATE SET capacity = excluded.capacity,"
                          " kind = excluded.kind", (p.id, p.capacity, p.kind))
            self._bump_config(c)
            self._bump(c)

    def _config(self, c: Conn) -> dict[str, Any]:
        """Stages, pools, outages and slot size as a ``solve``-style document (a fresh copy).

        Parsed once per change of configuration: ``setup`` and ``outage`` bump the ``config``
        counter in ``meta`` and every read checks it (one indexed row), so a change made by
        another process is seen at once. A file whose counter was never bumped is read anew
        every time.
        """
        cached = self._cfg
        if cached is not None and self._cfg_fresh and cached[0] is not None:
            return dict(cached[1])  # checked already in this write transaction
        row = c.execute(CONFIG_COUNTER).fetchone()
        key = None if row is None else str(row[0])
        if key is None or cached is None or cached[0] != key:
            self._cfg = cached = (key, self._read_config(c), None)
        self._cfg_fresh = c.in_transaction
        return dict(cached[1])

    def _problem_config(self, c: Conn) -> Problem:
        """The stages and pools of the current configuration, parsed (cached like _config)."""
        self._config(c)
        assert self._cfg is not None
        key, doc, problem = self._cfg
        if problem is None:
            problem = problem_from_dict(doc)
            if key is not None:
                self._cfg = (key, doc, problem)
        return problem

    def _bump_config(self, c: Conn) -> None:
        self._cfg_fresh = False  # re-read at the next _config, in this transaction too
        c.execute("INSERT INTO meta (key, value) VALUES ('config', '1') ON CONFLICT (key)"
                  " DO UPDATE SET value = CAST(CAST(meta.value AS INTEGER) + 1 AS TEXT)")

    @_decodes("stages, pools or outages")
    def _read_config(self, c: Conn) -> dict[str, Any]:
        slot = int(c.execute("SELECT value FROM meta WHERE key='slot_minutes'").fetchone()[0])
        stages = [json.loads(r["spec"]) for r in c.execute("SELECT spec FROM stages ORDER BY id")]
        extra: dict[str, list[list[str]]] = {}
        for r in c.execute('SELECT stage, start, "end" FROM outages ORDER BY start'):
            extra.setdefault(r["stage"], []).append([r["start"], r["end"]])
        for s in stages:
            s["outages"] = list(s.get("outages", [])) + extra.get(s["id"], [])
        pools = [
            {"id": r["id"], "capacity": r["capacity"], "kind": r["kind"] or "pool"}
            for r in c.execute("SELECT * FROM pools ORDER BY id")
        ]
        return {"slot_minutes": slot, "stages": stages, "pools": pools}

    @_decodes("stages, pools or outages")
    def configuration(self) -> Problem:
        """The stored stages (outages included), pools and slot size, without bookings.

        Parsed once per change of configuration (one indexed read checks it is current).
        """
        return self._problem_config(self.conn)

    @_decodes("bookings")
    def around(self, booking: Booking) -> Problem:
        """The configuration with the confirmed bookings that could clash with ``booking``.

        Those on its stage near its time (changeover included) and, when it uses pools, those
        at its time anywhere: what a placement check needs, not the whole calendar.
        """
        config = self._problem_config(self.conn)
        if booking.start is None:
            return config
        near = [d for d in self._confirmed_near(self.conn, booking) if d.get("id") != booking.id]
        return replace(config, bookings=tuple(bookings_for(config, near)))

    @_decodes("bookings")
    def problem(self, statuses: frozenset[Status] = ACTIVE) -> Problem:
        """The stored stages, pools and bookings (in arrival order) as a planning problem."""
        c = self.conn
        doc = self._config(c)
        rows = c.execute("SELECT * FROM bookings ORDER BY created_at, rowid").fetchall()
        doc["bookings"] = [
            self._row_doc(r) for r in rows if Status(r["status"]) in statuses
        ]
        return problem_from_dict(doc)

    @staticmethod
    @_decodes("booking")
    def _row_doc(r: Row) -> dict[str, Any]:
        spec: dict[str, Any] = json.loads(r["spec"])
        status = Status(r["status"])
        spec["status"] = status.value if status in ACTIVE else Status.REQUESTED.value
        spec.pop("stage", None)
        spec.pop("start", None)
        spec.pop("hold_rank", None)
        if r["stage"] is not None and r["start"] is not None:
            spec["stage"] = r["stage"]
            spec["start"] = r["start"]
        if status is Status.HOLD:
            spec["hold_rank"] = r["hold_rank"] or 1
        return spec

    @_decodes("version counter")
    def version(self) -> int:
        """A counter bumped by every committed change (for optimistic re-plans)."""
        row = self.conn.execute(
            "SELECT SUM(CAST(value AS INTEGER)) FROM meta"
            " WHERE key = 'version' OR key LIKE 'version:%'").fetchone()
        return int(row[0])

    def _bump(self, c: Conn) -> None:
        """Count a change: the ``version`` row, or on PostgreSQL the transaction's shard.

        :meth:`version` is the sum of the rows, read in one statement: a change is counted
        in the same commit that makes it visible, so a plan read at one version can only be
        applied if nothing was committed since.
        """
        if self._shard == "version":
            c.execute("UPDATE meta SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT)"
                      " WHERE key = 'version'")
        else:
            c.execute("INSERT INTO meta (key, value) VALUES (?, '1') ON CONFLICT (key) DO UPDATE"
                      " SET value = CAST(CAST(meta.value AS INTEGER) + 1 AS TEXT)",
                      (self._shard,))

    # --- reads --------------------------------------------------------------------------

    def get(self, booking_id: str) -> Record:
        """One booking.

        Raises:
            UnknownBooking: no such id.
        """
        r = self.conn.execute("SELECT * FROM bookings WHERE id = ?", (booking_id,)).fetchone()
        if r is None:
            raise UnknownBooking(f"no booking {booking_id!r} (see `stagectl book list`)")
        return self._record(r)

    @_decodes("booking")
    def _record(self, r: Row, config: Problem | None = None) -> Record:
        spec = self._row_doc(r)
        booking = bookings_for(config or self._problem_config(self.conn), [spec])[0]
        booking = replace(booking, status=Status(r["status"]),
                          hold_rank=r["hold_rank"] if r["status"] == Status.HOLD else None)
        return Record(
            booking=booking,
            sequence=r["sequence"],
            created_at=datetime.fromisoformat(r["created_at"]),
            updated_at=datetime.fromisoformat(r["updated_at"]),
            hold_expires=_dt(r["hold_expires"]),
            challenged_by=r["challenged_by"],
            challenge_deadline=_dt(r["challenge_deadline"]),
        )

    @_decodes("bookings")
    def records(
        self,
        statuses: frozenset[Status] | None = None,
        stage: str | None = None,
        production: str | None = None,
    ) -> list[Record]:
        """Bookings in arrival order, optionally filtered."""
        rows = self.conn.execute("SELECT * FROM bookings ORDER BY created_at, rowid").fetchall()
        out = []
        # parsed only when there is a row to decode: an empty store may have no stages yet
        config = self._problem_config(self.conn) if rows else None
        for r in rows:
            if statuses is not None and Status(r["status"]) not in statuses:
                continue
            if stage is not None and r["stage"] != stage:
                continue
            rec = self._record(r, config)
            if production is not None and rec.booking.production != production:
                continue
            out.append(rec)
        return out

    @_decodes("history")
    def history(self, booking_id: str | None = None) -> list[HistoryEntry]:
        """The audit trail, oldest first."""
        q = "SELECT * FROM history"
        args: tuple[str, ...] = ()
        if booking_id is not None:
            q += " WHERE booking_id = ?"
            args = (booking_id,)
        return [
            HistoryEntry(r["seq"], r["booking_id"], datetime.fromisoformat(r["at"]), r["actor"],
                         r["action"], r["from_status"], r["to_status"], r["reason"],
                         json.loads(r["details"]))
            for r in self.conn.execute(q + " ORDER BY seq", args)
        ]

    @_decodes("outages")
    def outages(self) -> list[tuple[str, Window, str]]:
        """Recorded outages: stage, window, reason."""
        return [
            (r["stage"], Window(datetime.fromisoformat(r["start"]),
                                datetime.fromisoformat(r["end"])), r["reason"])
            for r in self.conn.execute("SELECT * FROM outages ORDER BY start")
        ]

    # --- writes -------------------------------------------------------------------------

    def _log(self, c: Conn, booking_id: str, actor: str, action: str,
             from_status: str | None, to_status: str | None, reason: str = "",
             **details: Any) -> None:
        c.execute(
            "INSERT INTO history (booking_id, at, actor, action, from_status, to_status, reason,"
            " details) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (booking_id, self.clock().isoformat(), actor, action, from_status, to_status, reason,
             json.dumps(details, default=str)),
        )

    def _set(self, c: Conn, booking_id: str, actor: str, action: str,
             reason: str, *, bump_sequence: bool = False, old: Status | None = None,
             **fields: Any) -> None:
        """Update one booking's columns and log it (``old``: its status, when the caller knows)."""
        if old is None:
            row = c.execute("SELECT status FROM bookings WHERE id = ?", (booking_id,)).fetchone()
            old_status = row["status"]
        else:
            old_status = old.value
        cols = dict(fields, updated_at=self.clock().isoformat())
        sets = ", ".join(f"{k} = ?" for k in cols)
        seq = ", sequence = sequence + 1" if bump_sequence else ""
        c.execute(f"UPDATE bookings SET {sets}{seq} WHERE id = ?", (*cols.values(), booking_id))
        new_status = fields.get("status", old_status)
        details = {k: v for k, v in fields.items() if k != "status"}
        self._log(c, booking_id, actor, action, old_status, new_status, reason, **details)

    # --- who locks what -----------------------------------------------------------------

    def _presweep(self, booking_id: str | None = None) -> Row | None:
        """Apply due deadlines before a change, in a store-wide transaction of their own.

        One light query decides: a change on one stage must not expire holds on others in
        its own (stage-locked) transaction, and most changes find nothing due. With
        ``booking_id`` the same statement also reads that booking's stage and spec (None
        when there is no such booking), read again under the locks they choose.
        """
        c = self.conn
        now = self.clock().isoformat()
        due_sql = f"SELECT 1 FROM bookings WHERE ({_hold_due(c)}) OR ({_ended(c)}) LIMIT 1"
        args: tuple[Any, ...] = (now, now, now)
        if booking_id is None:
            row = c.execute(due_sql, args).fetchone()
            due, found = row is not None, None
        else:
            row = c.execute(f"SELECT ({due_sql}) AS due, b.id, b.stage, b.spec FROM"
                            " (SELECT 1 AS one) AS one LEFT JOIN bookings AS b ON b.id = ?",
                            (*args, booking_id)).fetchone()
            due, found = row["due"] is not None, row if row["id"] is not None else None
        if due:
            self.sweep()
            if booking_id is not None:  # (the sweep may have changed it)
                found = c.execute("SELECT id, stage, spec FROM bookings WHERE id = ?",
                                  (booking_id,)).fetchone()
        return found

    def _scope(self, stage: str | None, pools: Any) -> tuple[str, list[int]] | None:
        """The locks of a change on ``stage`` using ``pools`` ((id, n) pairs); None: store-wide.

        A placement is checked against the confirmed bookings of its stage, and, for the pools
        it uses, of every stage: so the stage's lock and each such pool's.
        """
        if stage is None:
            return None
        keys = [lock_key("stage", stage)]
        keys += [lock_key("pool", str(pid)) for pid, n in pools if n > 0]
        return (f"stage:{stage}", keys)

    @_decodes("booking")
    def _scope_of(self, found: Row | None, stage: str | None) -> tuple[str, list[int]] | None:
        """:meth:`_scope` for a change to a stored booking (as read by :meth:`_presweep`)."""
        if not self.postgres or found is None:
            return None  # (SQLite: one writer anyway; no booking: the transaction says so)
        pools = json.loads(found["spec"]).get("pools") or {}  # as booking_to_dict stores them
        return self._scope(stage or found["stage"],
                           [(k, int(n)) for k, n in dict(pools).items()])

    def _locked(self, booking_id: str, change: Callable[[Conn, Record], Record],
                stage: str | None = None) -> Record:
        """Run ``change`` on a stored booking inside a transaction holding its stage's locks.

        The locks are picked from the booking as read just before (``stage``: where the
        change puts it, when that is another stage); inside the transaction the booking is
        read again, and if it no longer needs only those locks (moved meanwhile) the
        transaction is dropped and the change runs store-wide instead.
        """
        scope = self._scope_of(self._presweep(booking_id), stage)
        while True:
            try:
                with self._tx(scope) as c:
                    rec = self._get_in(c, booking_id)
                    if scope is not None:
                        need = self._scope(stage or rec.booking.stage, rec.booking.pools)
                        if need is None or not set(need[1]) <= set(scope[1]):
                            raise _Rescope
                    return change(c, rec)
            except _Rescope:
                scope = None

    def request(self, spec: dict[str, Any], actor: str, reason: str = "") -> Record:
        """Record a new request (status REQUESTED).

        ``spec`` uses the input contract's booking fields; ``id`` is generated when missing.
        ``stage``/``start`` are kept as the wished-for placement.

        Raises:
            BookingInputError: invalid spec (unknown stage or pool, bad times...).
            BookingRefused: the id already exists.
        """
        spec = dict(spec)
        spec["status"] = Status.REQUESTED.value
        given = "id" in spec
        if not given:
            spec["id"] = "BK00000"  # checked with a stand-in; the real id is taken below
        self._presweep()
        # a new request touches no stage's bookings: the store-wide lock shared, no other
        with self._tx((f"req:{secrets.randbelow(VERSION_SHARDS)}", [])) as c:
            try:
                booking = bookings_for(self._problem_config(c), [spec])[0]
            except BookingInputError as exc:
                raise BookingInputError(
                    [e.replace("bookings[0]", "request") for e in exc.errors]) from exc
            if given and c.execute("SELECT 1 FROM bookings WHERE id = ?",
                                   (booking.id,)).fetchone():
                raise BookingRefused(f"booking {booking.id!r} already exists")
            now = self.clock().isoformat()
            while True:
                n = self._new_number(c) if c.postgres or not given else 0
                if not given:
                    booking = replace(booking, id=f"BK{n:05d}")
                cols = "id, status, spec, stage, start, sequence, created_at, updated_at"
                marks = "?, ?, ?, ?, ?, 0, ?, ?"
                args: tuple[Any, ...] = (
                    booking.id, Status.REQUESTED.value, json.dumps(booking_to_dict(booking)),
                    booking.stage, _iso(booking.start), now, now)
                if c.postgres:  # the arrival number taken is the row's
                    cols, marks, args = cols + ", rowid", marks + ", ?", (*args, n)
                cur = c.execute(f"INSERT INTO bookings ({cols}) VALUES ({marks})"
                                " ON CONFLICT (id) DO NOTHING", args)
                if cur.rowcount == 1:
                    break
                if given:  # (taken meanwhile by a concurrent request)
                    raise BookingRefused(f"booking {booking.id!r} already exists")
            self._log(c, booking.id, actor, "request", None, Status.REQUESTED.value, reason)
            self._bump(c)
            return self._get_in(c, booking.id)

    @staticmethod
    def _new_number(c: Conn) -> int:
        """The number of a new booking's ``BKnnnnn`` id: one more than the bookings so far.

        On PostgreSQL requests run concurrently, so the number is the next of the arrival-order
        sequence (the row's ``rowid``): never the same twice, no waiting for another request's
        commit. On SQLite (one writer) the first free number after the count.
        """
        if c.postgres:
            return int(c.execute("SELECT nextval('bookings_rowid_seq')").fetchone()[0])
        n = int(c.execute("SELECT COUNT(*) FROM bookings").fetchone()[0])
        while c.execute("SELECT 1 FROM bookings WHERE id = ?", (f"BK{n + 1:05d}",)).fetchone():
            n += 1
        return n + 1

    def _holds_on_stage(self, c: Conn, stage: str) -> list[Record]:
        rows = c.execute("SELECT * FROM bookings WHERE stage = ? AND status = ?",
                         (stage, Status.HOLD.value)).fetchall()
        if not rows:
            return []
        config = self._problem_config(c)
        return [self._record(r, config) for r in rows]

    @_decodes("bookings")
    def _confirmed_near(self, c: Conn, booking: Booking) -> list[dict[str, Any]]:
        """Confirmed bookings (as stored specs) that could clash with ``booking``'s placement.

        Those whose time (changeover included) overlaps it on its stage, or overlaps it at
        all when they share a pool. The rest cannot break a rule with it, so they are not
        decoded: a placement check costs the bookings around it, not the whole calendar.
        """
        assert booking.start is not None and booking.end is not None
        stages = self._problem_config(c).stages
        widest = timedelta(minutes=max((s.changeover_minutes for s in stages), default=0))
        lo, hi = booking.start - widest, booking.end + widest
        mine_pools = any(n > 0 for _, n in booking.pools)
        stage_clause = "" if mine_pools else " AND stage = ?"  # pools: any stage may share
        args: list[Any] = [Status.CONFIRMED.value, booking.id]
        if c.postgres:  # the exclusion constraint's GiST index answers the overlap
            sql = ("SELECT * FROM bookings WHERE status = ? AND id != ? AND start_at IS NOT NULL"
                   " AND tstzrange(start_at, busy_until, '[)') && tstzrange(?, ?, '[)')")
        else:
            sql = ("SELECT * FROM bookings WHERE status = ? AND id != ? AND start IS NOT NULL"
                   " AND julianday(start) < julianday(?) AND julianday(start) + "
                   f"{c.json_int('spec', 'duration_minutes')} / 1440.0 > julianday(?)")
        args += [hi.isoformat(), lo.isoformat()] if not c.postgres else \
            [lo.isoformat(), hi.isoformat()]
        if stage_clause:
            args.append(booking.stage)
        return [self._row_doc(r) for r in c.execute(sql + stage_clause, args)]

    def _validate_placement(self, c: Conn, booking: Booking) -> None:
        """Refuse a placement that breaks a rule against confirmed bookings."""
        config = self._problem_config(c)
        confirmed = self._confirmed_near(c, booking) if booking.start is not None else []
        mine = booking_to_dict(replace(booking, status=Status.CONFIRMED, hold_rank=None))
        problem = replace(config, bookings=tuple(bookings_for(config, [*confirmed, mine])))
        assignments = [
            Assignment(b.id, b.stage, b.start, b.start + timedelta(minutes=b.duration_minutes))
            for b in problem.bookings
            if b.stage is not None and b.start is not None
        ]
        mine_slot = problem.slot_minutes * 60
        violations = [
            str(v) for v in check_plan(problem, assignments) if booking.id in v.ids
        ]
        if booking.start is not None and booking.start.timestamp() % mine_slot:
            violations.append(f"slot: start is off the {problem.slot_minutes}-minute grid")
        if violations:
            raise BookingRefused(f"{booking.id} cannot go on {booking.stage} at "
                                 f"{_iso(booking.start)}: " + "; ".join(violations))

    def _earliest_slot(self, c: Conn, booking: Booking) -> tuple[str, datetime]:
        doc = self._config(c)
        confirmed = [
            self._row_doc(r) for r in c.execute(
                "SELECT * FROM bookings WHERE status = ?", (Status.CONFIRMED.value,))
        ]
        mine = booking_to_dict(replace(booking, status=Status.REQUESTED, stage=None, start=None))
        mine.pop("stage", None)
        mine.pop("start", None)
        doc["bookings"] = [*confirmed, mine]
        plan = greedy_plan(problem_from_dict(doc))
        for a in plan.assignments:
            if a.id == booking.id:
                return a.stage, a.start
        reason = next(r.reason for r in plan.rejected if r.id == booking.id)
        raise BookingRefused(f"no slot for {booking.id}: {reason}")

    def hold(self, booking_id: str, actor: str, stage: str | None = None,
             start: datetime | None = None, expires: datetime | None = None,
             reason: str = "") -> Record:
        """Put a hold on a slot (REQUESTED -> HOLD). Holds may stack; each gets a rank.

        Without ``stage``/``start`` the request's wished-for placement is used, else the
        earliest slot free of confirmed bookings.
        """

        def change(c: Conn, rec: Record) -> Record:
            if rec.status is not Status.REQUESTED:
                raise BookingRefused(f"{booking_id} is {rec.status.value}; only a requested "
                                     "booking can be put on hold")
            b = rec.booking
            if stage is not None or start is not None:
                if stage is None or start is None:
                    raise BookingRefused("give both --stage and --start, or neither")
                b = replace(b, stage=stage, start=start)
            elif b.stage is None:  # (store-wide: see _locked)
                s, t = self._earliest_slot(c, b)
                b = replace(b, stage=s, start=t)
            self._validate_placement(c, b)
            assert b.stage is not None
            self._set(c, booking_id, actor, "hold", reason, old=rec.status,
                      status=Status.HOLD.value, stage=b.stage, start=_iso(b.start),
                      hold_rank=10**6, hold_expires=_iso(expires))
            self._rerank(c, b.stage, actor)
            self._bump(c)
            return self._get_in(c, booking_id)

        return self._locked(booking_id, change, stage)

    @staticmethod
    def _row(c: Conn, booking_id: str) -> Row:
        row: Row = c.execute("SELECT * FROM bookings WHERE id = ?", (booking_id,)).fetchone()
        return row

    def _get_in(self, c: Conn, booking_id: str) -> Record:
        r = c.execute("SELECT * FROM bookings WHERE id = ?", (booking_id,)).fetchone()
        if r is None:
            raise UnknownBooking(f"no booking {booking_id!r} (see `stagectl book list`)")
        return self._record(r)

    @_decodes("stage")
    def _rerank(self, c: Conn, stage: str, actor: str) -> None:
        """Give holds on a stage ranks 1..n in the order they were placed, per clash group.

        A hold's rank is one more than the highest rank among earlier holds it clashes with;
        holds are promoted when one above them leaves.
        """
        changeover = self._changeover(c, stage)
        holds = self._holds_on_stage(c, stage)
        holds.sort(key=lambda r: (r.booking.hold_rank or 0, r.updated_at, r.id))
        done: list[tuple[Record, int]] = []
        for r in holds:
            rank = 1 + max(
                (k for o, k in done if _overlap(o.booking, r.booking, changeover)), default=0
            )
            done.append((r, rank))
            old = r.booking.hold_rank
            if old != rank:
                c.execute("UPDATE bookings SET hold_rank = ? WHERE id = ?", (rank, r.id))
                if old is not None and old < 10**6:
                    self._log(c, r.id, actor, "rank", "hold", "hold",
                              f"hold rank {old} -> {rank}", hold_rank=rank)

    def confirm(self, booking_id: str, actor: str, reason: str = "") -> Record:
        """Confirm a first hold (or a requested booking with a placement nobody holds).

        Refused when a confirmed booking already takes the time (never double-books) or when
        another producer holds it first. Lower holds clashing with it are rejected.
        """

        def change(c: Conn, rec: Record) -> Record:
            b = rec.booking
            if rec.status not in (Status.HOLD, Status.REQUESTED):
                raise BookingRefused(f"{booking_id} is {rec.status.value}; only a hold or a "
                                     "placed request can be confirmed")
            if b.stage is None or b.start is None:
                raise BookingRefused(f"{booking_id} has no stage and start yet: hold it first "
                                     "(`stagectl book hold`) or run `stagectl book solve`")
            self._validate_placement(c, b)
            changeover = self._changeover(c, b.stage)
            clashing = [
                r for r in self._holds_on_stage(c, b.stage)
                if r.id != b.id
                and _overlap(r.booking, b, changeover)
            ]
            my_rank = b.hold_rank if rec.status is Status.HOLD else None
            ahead = [
                r for r in clashing
                if my_rank is None or (r.booking.hold_rank or 1) < my_rank
            ]
            if ahead:
                first = min(ahead, key=lambda r: r.booking.hold_rank or 1)
                raise BookingRefused(
                    f"{first.id} holds {b.stage} first (rank {first.booking.hold_rank}); "
                    f"challenge it (`stagectl book challenge {booking_id}`) or wait for release")
            self._set(c, booking_id, actor, "confirm", reason, bump_sequence=True,
                      old=rec.status, status=Status.CONFIRMED.value, hold_rank=None,
                      challenged_by=None, challenge_deadline=None)
            for r in clashing:
                self._set(c, r.id, actor, "reject", f"slot confirmed by {booking_id}",
                          bump_sequence=True, old=r.status, status=Status.REJECTED.value)
            self._rerank(c, b.stage, actor)
            self._bump(c)
            return self._get_in(c, booking_id)

        return self._locked(booking_id, change)

    @_decodes("stage")
    def _changeover(self, c: Conn, stage: str) -> int:
        st = self._problem_config(c).stage_by_id().get(stage)
        return st.changeover_minutes if st is not None else 0

    def release(self, booking_id: str, actor: str, reason: str = "") -> Record:
        """Release a hold (HOLD -> RELEASED); the holds behind it move up."""

        def change(c: Conn, rec: Record) -> Record:
            if rec.status is not Status.HOLD:
                raise BookingRefused(f"{booking_id} is {rec.status.value}; only a hold can be "
                                     "released (use cancel for the rest)")
            self._leave(c, rec, Status.RELEASED, actor, "release", reason)
            self._bump(c)
            return self._get_in(c, booking_id)

        return self._locked(booking_id, change)

    def _leave(self, c: Conn, rec: Record, status: Status, actor: str,
               action: str, reason: str) -> None:
        self._set(c, rec.id, actor, action, reason, bump_sequence=True, old=rec.status,
                  status=status.value, hold_rank=None)
        c.execute("UPDATE bookings SET challenged_by = NULL, challenge_deadline = NULL"
                  " WHERE challenged_by = ?", (rec.id,))
        if rec.booking.stage is not None:
            self._rerank(c, rec.booking.stage, actor)

    def cancel(self, booking_id: str, actor: str, reason: str = "") -> Record:
        """Cancel a request, hold or confirmed booking (its ICS SEQUENCE is bumped)."""

        def change(c: Conn, rec: Record) -> Record:
            if rec.status not in ACTIVE:
                raise BookingRefused(f"{booking_id} is already {rec.status.value}")
            self._leave(c, rec, Status.CANCELLED, actor, "cancel", reason)
            self._bump(c)
            return self._get_in(c, booking_id)

        return self._locked(booking_id, change)

    def challenge(self, booking_id: str, actor: str, deadline: datetime,
                  reason: str = "") -> Record:
        """A lower hold challenges the first hold, which must confirm or release by ``deadline``.

        Returns the challenged (first) hold.
        """

        def change(c: Conn, rec: Record) -> Record:
            b = rec.booking
            if rec.status is not Status.HOLD or (b.hold_rank or 1) <= 1 or b.stage is None:
                raise BookingRefused(f"{booking_id} must be a hold ranked 2 or lower to "
                                     "challenge")
            changeover = self._changeover(c, b.stage)
            firsts = [
                r for r in self._holds_on_stage(c, b.stage)
                if r.booking.hold_rank == 1
                and _overlap(r.booking, b, changeover)
            ]
            if not firsts:
                raise BookingRefused(f"no first hold clashes with {booking_id}")
            first = firsts[0]
            self._set(c, first.id, actor, "challenged", reason or f"challenged by {booking_id}",
                      old=first.status, challenged_by=booking_id,
                      challenge_deadline=deadline.isoformat())
            self._log(c, booking_id, actor, "challenge", "hold", "hold",
                      reason or f"challenges {first.id}", deadline=deadline.isoformat())
            self._bump(c)
            return self._get_in(c, first.id)

        return self._locked(booking_id, change)

    def sweep(self) -> None:
        """Apply deadlines now: unanswered challenges, expired holds, finished bookings."""
        with self._tx() as c:
            self._sweep(c)

    @_decodes("bookings")
    def _sweep(self, c: Conn) -> None:
        """Release unanswered challenges, expire holds, complete ended bookings (as of now).

        Light rows first (ids and times); only the bookings that are due are decoded, so a
        sweep before every change costs little however many bookings the store holds.
        """
        now = self.clock()
        changed = False
        due = [r["id"] for r in c.execute(f"SELECT id FROM bookings WHERE {_hold_due(c)}",
                                          (now.isoformat(), now.isoformat()))]
        for bid in due:
            rec = self._record(self._row(c, bid))
            if rec.status is not Status.HOLD:
                continue  # (left already: released with another)
            if rec.challenge_deadline is not None and rec.challenge_deadline <= now:
                self._leave(c, rec, Status.RELEASED, "system", "release",
                            f"challenge by {rec.challenged_by} not answered by "
                            f"{rec.challenge_deadline.isoformat()}")
                changed = True
            elif rec.hold_expires is not None and rec.hold_expires <= now:
                self._leave(c, rec, Status.EXPIRED, "system", "expire",
                            f"hold expired at {rec.hold_expires.isoformat()}")
                changed = True
        ended = [r["id"] for r in c.execute(f"SELECT id FROM bookings WHERE {_ended(c)}",
                                            (now.isoformat(),))]
        for bid in ended:
            rec = self._record(self._row(c, bid))
            end = rec.booking.end
            if end is not None and end <= now:
                self._set(c, rec.id, "system", "complete", "booking ended",
                          status=Status.COMPLETED.value)
                changed = True
        if changed:
            self._bump(c)

    # --- plans --------------------------------------------------------------------------

    def apply_plan(self, problem: Problem, plan: Plan, actor: str, reason: str,
                   expected_version: int) -> None:
        """Store a plan's placements, after the independent checker passes it.

        Requests that were placed become holds; holds and confirmed bookings that moved are
        updated (SEQUENCE bumped). Raises :class:`PlanCheckFailed` if the checker finds a
        violation, :class:`BookingRefused` if the store changed since ``problem`` was read.
        """
        violations = check_plan(problem, plan.assignments, [r.id for r in plan.rejected])
        if violations:
            raise PlanCheckFailed([str(v) for v in violations])
        with self._tx() as c:
            if self.version() != expected_version:
                raise BookingRefused("bookings changed while planning; run the command again")
            by_id = problem.booking_by_id()
            touched: set[str] = set()
            for a in plan.assignments:
                b = by_id[a.id]
                if b.stage == a.stage and b.start == a.start and \
                        b.status is not Status.REQUESTED:
                    continue  # unchanged (a request at its wished slot still becomes a hold)
                fields: dict[str, Any] = {"stage": a.stage, "start": a.start.isoformat()}
                if b.status is Status.REQUESTED:
                    fields.update(status=Status.HOLD.value, hold_rank=10**6)
                self._set(c, a.id, actor, "place" if b.stage is None else "move", reason,
                          bump_sequence=b.stage is not None, **fields)
                touched |= {a.stage} | ({b.stage} if b.stage else set())
            for stage in touched:
                self._rerank(c, stage, actor)
            self._bump(c)

    def solve(self, time_limit_seconds: float, actor: str, apply: bool = False) -> Plan:
        """Plan every request and hold around the confirmed bookings; optionally store it."""
        self.sweep()
        version = self.version()
        problem = self.problem()
        plan = solve(problem, time_limit_seconds)
        if apply:
            self.apply_plan(problem, plan, actor, "solve", version)
        return plan

    def outage(self, stage: str, start: datetime, end: datetime, actor: str, reason: str = "",
               time_limit_seconds: float = 5.0, previewed: OutageReport | None = None
               ) -> OutageReport:
        """Record an outage and move the bookings it hits, changing as little as possible.

        Confirmed bookings elsewhere stay fixed; holds and the hit bookings are re-planned
        with "keep the current placement" as the second objective. Bookings that cannot be
        placed again are rejected, with the reason in their history.

        Args:
            stage: the stage that is out.
            start: when the outage begins.
            end: when it ends (after ``start``).
            actor: who records it (history).
            reason: why (history, and each moved booking's).
            time_limit_seconds: the re-plan's solver time.
            previewed: what :meth:`outage_plan` showed for this same outage. When nothing
                changed since (its ``version`` is still the store's), exactly those moves
                are stored, not a fresh re-plan that might pick another of several equally
                good plans; otherwise the re-plan runs as usual.
        """
        if end <= start:
            raise BookingRefused("outage end must be after its start")
        with self._tx() as c:
            if c.execute("SELECT 1 FROM stages WHERE id = ?", (stage,)).fetchone() is None:
                raise BookingRefused(f"unknown stage {stage!r}")
            unchanged = (previewed is not None and previewed.version == self.version()
                         and (previewed.stage, previewed.start, previewed.end)
                         == (stage, start, end))
            c.execute('INSERT INTO outages (stage, start, "end", reason, created_at)'
                      " VALUES (?, ?, ?, ?, ?)",
                      (stage, start.isoformat(), end.isoformat(), reason,
                       self.clock().isoformat()))
            self._bump_config(c)
            self._sweep(c)
            self._bump(c)
        version = self.version()
        if unchanged:
            assert previewed is not None
            report = replace(previewed, version=version)
        else:
            report = self._replan_outage(
                self.problem(frozenset({Status.HOLD, Status.CONFIRMED})),
                stage, start, end, time_limit_seconds)
        moved, unplaced = report.moved, report.unplaced
        with self._tx() as c:
            if self.version() != version:
                raise BookingRefused("bookings changed while re-planning; run it again")
            for m in moved:
                self._set(c, m["id"], actor, "move",
                          f"outage on {stage} {start.isoformat()}..{end.isoformat()}"
                          + (f": {reason}" if reason else ""), bump_sequence=True,
                          stage=m["to_stage"], start=m["to_start"])
            for u in unplaced:
                self._set(c, u["id"], actor, "reject",
                          f"displaced by outage on {stage}; {u['reason']}", bump_sequence=True,
                          status=Status.REJECTED.value, hold_rank=None)
            for s in {stage} | {m["to_stage"] for m in moved}:
                self._rerank(c, s, actor)
            self._bump(c)
        return report

    def outage_plan(self, stage: str, start: datetime, end: datetime,
                    time_limit_seconds: float = 5.0) -> OutageReport:
        """What :meth:`outage` would move and reject, computed without storing anything.

        The same re-plan: the outage is added to the stage in memory, not recorded.

        Raises:
            BookingRefused: an unknown stage, or an end not after the start.
        """
        if end <= start:
            raise BookingRefused("outage end must be after its start")
        version = self.version()  # (read first: a change after it makes the preview stale)
        current = self.problem(frozenset({Status.HOLD, Status.CONFIRMED}))
        if stage not in {s.id for s in current.stages}:
            raise BookingRefused(f"unknown stage {stage!r}")
        current = replace(current, stages=tuple(
            replace(s, outages=(*s.outages, Window(start, end))) if s.id == stage else s
            for s in current.stages))
        report = self._replan_outage(current, stage, start, end, time_limit_seconds)
        return replace(report, version=version)

    def _replan_outage(self, current: Problem, stage: str, start: datetime, end: datetime,
                       time_limit_seconds: float) -> OutageReport:
        """Re-plan ``current`` (which already has the outage) moving as little as possible.

        The hit bookings (confirmed ones too) become movable, keeping their old placement as a
        wish; everything else keeps its place where it can.
        """
        window = Window(start, end)
        hit = {
            b.id for b in current.bookings
            if b.stage == stage and b.start is not None and b.end is not None
            and window.overlaps(b.start, b.end)
        }
        problem = replace(current, bookings=tuple(
            replace(b, status=Status.HOLD, hold_rank=1) if b.id in hit else b
            for b in current.bookings
        ))
        plan = optimise(problem, time_limit_seconds)
        placed = plan.assignment_by_id()
        moved = []
        for bid in sorted(placed):
            b = problem.booking_by_id()[bid]
            a = placed[bid]
            if b.stage != a.stage or b.start != a.start:
                moved.append({"id": bid, "from_stage": str(b.stage), "from_start": _iso(b.start)
                              or "", "to_stage": a.stage, "to_start": a.start.isoformat()})
        unplaced = [{"id": r.id, "reason": r.reason} for r in plan.rejected]
        violations = check_plan(problem, plan.assignments, [r.id for r in plan.rejected])
        if violations:
            raise PlanCheckFailed([str(v) for v in violations])
        return OutageReport(
            stage=stage, start=start, end=end, moved=moved, unplaced=unplaced,
            kept=len(placed) - len(moved), solve_seconds=plan.solve_seconds, source=plan.source,
        )

    def integrity_check(self) -> str:
        """SQLite's own integrity check ("ok" when healthy).

        On PostgreSQL: that the double-booking guard (the exclusion constraint) is in place.
        """
        if self.postgres:
            row = self.conn.execute(
                "SELECT COUNT(*) FROM pg_constraint WHERE conname = ?",
                ("bookings_confirmed_no_overlap",)).fetchone()
            return "ok" if row is not None and row[0] == 1 else \
                "the exclusion constraint bookings_confirmed_no_overlap is missing"
        return str(self.conn.execute("PRAGMA integrity_check").fetchone()[0])
