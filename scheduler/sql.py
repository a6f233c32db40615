"""One connection type for the stores on SQLite and on PostgreSQL, through SQLAlchemy 2.

(docs/decisions/0066-booking-store-on-postgresql.md)

The booking store and the desk write portable SQL with ``?`` placeholders and read rows by
column name or position. :func:`connect` gives them a :class:`Conn` over a SQLAlchemy
``Connection`` in autocommit mode, so transactions are the store's own, started explicitly:

* SQLite: the file is opened by :func:`scheduler.dbfile.open_database` (checked first, never
  repaired), handed to SQLAlchemy as the connection's creator; writes run in
  ``BEGIN IMMEDIATE``, SQLite's single writer lock.
* PostgreSQL (``postgresql://...`` or ``postgresql+psycopg://...``): psycopg 3 through
  SQLAlchemy's dialect; the schema is Alembic's (``scheduler/booking/migrations``); writes run
  in ``BEGIN`` followed by a transaction-scoped advisory lock, the same one-writer rule.

Errors keep the DB-API classes of :mod:`sqlite3` on both backends: a PostgreSQL error is
raised as a subclass of the matching ``sqlite3`` class (:class:`PgIntegrityError` is a
``sqlite3.IntegrityError``), with its SQLSTATE, so callers handle "the database refused" and
"the database is down or damaged" the same way whichever backend holds the data.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.pool import NullPool

__all__ = [
    "Conn",
    "DoubleBooking",
    "PgDatabaseError",
    "PgIntegrityError",
    "PgOperationalError",
    "Row",
    "PG_CONNECT_ARGS",
    "connect",
    "is_postgres_url",
    "pg_error",
    "redact",
]

POSTGRES_PREFIXES = ("postgresql://", "postgresql+psycopg://", "postgres://")


def is_postgres_url(target: object) -> bool:
    """Whether ``target`` names a PostgreSQL database rather than an SQLite file."""
    return isinstance(target, str) and target.startswith(POSTGRES_PREFIXES)


def redact(url: str) -> str:
    """The URL with its password replaced by ``***`` (for messages and logs)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    user = netloc[0].split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc[1]}"))


def sqlalchemy_url(url: str) -> str:
    """``postgresql://`` and ``postgres://`` mapped onto SQLAlchemy's psycopg 3 dialect."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


class PgDatabaseError(sqlite3.DatabaseError):
    """A PostgreSQL error; ``sqlstate`` is its code (``23P01``: exclusion violation)."""

    sqlstate: str | None = None


class PgIntegrityError(sqlite3.IntegrityError):
    """A PostgreSQL constraint refused a change."""

    sqlstate: str | None = None


class DoubleBooking(PgIntegrityError):
    """The exclusion constraint refused a second confirmed booking on the same stage time."""


class PgOperationalError(sqlite3.OperationalError):
    """PostgreSQL is unreachable, shutting down, or the connection broke."""

    sqlstate: str | None = None


PG_CONNECT_ARGS = {"connect_timeout": 10, "options": "-c timezone=UTC"}
"""psycopg connection settings of every store connection (and of the migrations)."""


def pg_error(exc: BaseException) -> sqlite3.Error:
    """A psycopg error as the matching :mod:`sqlite3` DB-API class, SQLSTATE kept."""
    import psycopg  # the PostgreSQL path only

    code = getattr(exc, "sqlstate", None)
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    out: sqlite3.Error
    if code == "23P01":
        out = DoubleBooking(text)
    elif isinstance(exc, psycopg.IntegrityError):
        out = PgIntegrityError(text)
    elif isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError)):
        out = PgOperationalError(text)
    else:
        out = PgDatabaseError(text)
    out.sqlstate = code
    return out


class Row:
    """A result row read by column name (``r["id"]``) or position (``r[0]``)."""

    __slots__ = ("_index", "_values")

    def __init__(self, index: dict[str, int], values: Sequence[Any]) -> None:
        self._index = index
        self._values = values

    def __getitem__(self, key: str | int) -> Any:
        if isinstance(key, int):
            return self._values[key]
        return self._values[self._index[key]]

    def keys(self) -> list[str]:
        """Column names."""
        return list(self._index)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)


class Cursor:
    """The rows of one statement (already fetched)."""

    def __init__(self, rows: list[Row], rowcount: int) -> None:
        self._rows = rows
        self.rowcount = rowcount

    def fetchone(self) -> Any:
        """The first row (a :class:`Row`), or None (typed ``Any`` like DB-API cursors)."""
        return self._rows[0] if self._rows else None

    def fetchall(self) -> list[Row]:
        """Every row."""
        return self._rows

    def __iter__(self) -> Iterator[Row]:
        return iter(self._rows)


_PG_SQL: dict[str, str] = {}
_PLACEHOLDER = re.compile(r"\?")


def _pg_sql(sql: str) -> str:
    """``?`` placeholders as psycopg's ``%s`` (literal ``%`` doubled); cached per text."""
    out = _PG_SQL.get(sql)
    if out is None:
        out = _PLACEHOLDER.sub("%s", sql.replace("%", "%%"))
        if len(_PG_SQL) < 4096:
            _PG_SQL[sql] = out
    return out


class Conn:
    """A store's connection: portable ``execute`` and explicit transactions.

    Args:
        connection: a SQLAlchemy connection in autocommit mode.
        backend: ``"sqlite"`` or ``"postgresql"``.
        target: the file path or the (redacted) URL, for messages.
    """

    def __init__(self, connection: sa.Connection, backend: str, target: str) -> None:
        self.sa = connection
        self.backend = backend
        self.target = target
        self._in_tx = False
        self._driver = connection.connection.dbapi_connection

    @property
    def postgres(self) -> bool:
        """Whether this is PostgreSQL."""
        return self.backend == "postgresql"

    @property
    def in_transaction(self) -> bool:
        """Whether a transaction begun here is open."""
        return self._in_tx

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        """Run one statement with ``?`` placeholders; its rows are fetched at once."""
        cur = self._driver.cursor()  # type: ignore[union-attr]
        try:
            if self.postgres:
                cur.execute(_pg_sql(sql), tuple(params) or None)
            else:
                cur.execute(sql, tuple(params))
            if cur.description is None:
                return Cursor([], cur.rowcount)
            return Cursor(_rows(cur), cur.rowcount)
        except sqlite3.Error:
            raise
        except Exception as exc:
            if self.postgres and _is_psycopg(exc):
                raise pg_error(exc) from exc
            raise
        finally:
            cur.close()

    def executescript(self, script: str) -> None:
        """Run ``;``-separated statements (SQLite's executescript; split for PostgreSQL)."""
        if not self.postgres:
            self._driver.executescript(script)  # type: ignore[union-attr]
            return
        for statement in script.split(";"):
            if statement.strip():
                self.execute(statement)

    def instant(self, expr: str) -> str:
        """SQL comparing ISO 8601 text (any offset) as an instant: ``julianday`` or a cast."""
        if self.postgres:
            return f"CAST({expr} AS timestamptz)"
        return f"julianday({expr})"

    def json_int(self, column: str, key: str) -> str:
        """SQL for the integer at ``key`` of the JSON text in ``column`` (NULL if absent)."""
        if self.postgres:
            return f"(({column})::jsonb ->> '{key}')::integer"
        return f"CAST(json_extract({column}, '$.{key}') AS INTEGER)"

    def begin_write(self, lock_key: int, keys: Sequence[int] | None = None,
                    then: str | None = None) -> list[Row]:
        """Start a write transaction holding the store's writer lock.

        Args:
            lock_key: the store-wide advisory lock (PostgreSQL).
            keys: None: hold ``lock_key`` alone (the one writer). Else hold ``lock_key``
                shared and each of ``keys`` (say, a stage's) exclusively: writers of disjoint
                keys run at once and their commits share WAL flushes; a store-wide writer
                waits for all of them. Keys are taken in ascending order, so two writers never
                wait on each other in a cycle. SQLite has one write lock (``BEGIN IMMEDIATE``)
                and ignores both.
            then: a query without parameters run first in the transaction, in the same round
                trip on PostgreSQL (say, a counter the transaction checks); its rows are
                returned (none without it).
        """
        if not self.postgres:
            self.execute("BEGIN IMMEDIATE")
            self._in_tx = True
            return self.execute(then).fetchall() if then is not None else []
        if keys is None:
            script = f"BEGIN; SELECT pg_advisory_xact_lock({int(lock_key)})"
        else:
            script = f"BEGIN; SELECT pg_advisory_xact_lock_shared({int(lock_key)})" + "".join(
                f"; SELECT pg_advisory_xact_lock({int(k)})" for k in sorted(set(keys)))
        if then is not None:
            script += "; " + then
        self._in_tx = True  # whatever part of the script ran is rolled back on failure
        cur = self._driver.cursor()  # type: ignore[union-attr]
        try:
            cur.execute(script)  # one round trip: no parameters, the simple query protocol
            if then is None:
                return []
            while cur.nextset():  # to the last statement's result
                pass
            return _rows(cur)
        except Exception as exc:
            if _is_psycopg(exc):
                raise pg_error(exc) from exc
            raise
        finally:
            cur.close()

    def begin_read(self) -> None:
        """Start a read transaction: one consistent snapshot for several statements."""
        self.execute("BEGIN" if self.postgres else "BEGIN DEFERRED")
        self._in_tx = True

    def commit(self) -> None:
        """Commit the open transaction."""
        self._in_tx = False
        self.execute("COMMIT")

    def rollback(self) -> None:
        """Roll back the open transaction (a no-op when none is open)."""
        if not self._in_tx:
            return
        self._in_tx = False
        self.execute("ROLLBACK")

    def close(self) -> None:
        """Close (PostgreSQL: the connection is not reused; SQLite: the file is closed)."""
        try:
            if self._in_tx:
                try:
                    self.rollback()
                except sqlite3.Error:
                    pass
        finally:
            self.sa.close()


def _rows(cur: Any) -> list[Row]:
    """A cursor's fetched rows as :class:`Row` (columns by name and by index)."""
    index = {d[0]: i for i, d in enumerate(cur.description or ())}
    return [Row(index, v) for v in cur.fetchall()]


def _is_psycopg(exc: BaseException) -> bool:
    mod = type(exc).__module__ or ""
    return mod.startswith("psycopg")


_ENGINES: dict[str, sa.Engine] = {}
_ENGINES_LOCK = threading.Lock()


def _pg_engine(url: str) -> sa.Engine:
    with _ENGINES_LOCK:
        engine = _ENGINES.get(url)
        if engine is None:
            engine = sa.create_engine(
                sqlalchemy_url(url), poolclass=NullPool,
                connect_args=PG_CONNECT_ARGS,
            ).execution_options(isolation_level="AUTOCOMMIT")
            _ENGINES[url] = engine
        return engine


def connect(target: str, sqlite_open: Callable[[], sqlite3.Connection]) -> Conn:
    """A :class:`Conn` to ``target``: a PostgreSQL URL, else the SQLite file ``sqlite_open`` opens.

    Raises:
        PgOperationalError: PostgreSQL cannot be reached (the message says where, redacted).
    """
    if is_postgres_url(target):
        try:
            connection = _pg_engine(target).connect()
        except sa_exc.DBAPIError as exc:
            err = pg_error(exc.orig if exc.orig is not None else exc)
            raise type(err)(f"{redact(target)}: {err}") from exc
        return Conn(connection, "postgresql", redact(target))
    engine = sa.create_engine("sqlite://", creator=sqlite_open, poolclass=NullPool)
    connection = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
    raw = connection.connection.dbapi_connection
    raw.row_factory = None  # type: ignore[union-attr]
    return Conn(connection, "sqlite", target)
