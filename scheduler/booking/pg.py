"""The booking store's PostgreSQL schema: Alembic migrations, checked before use.

``ensure_schema(url, create=...)`` is the PostgreSQL side of what
:func:`scheduler.dbfile.open_database` does for an SQLite file: a database with no booking
schema is migrated only by a command that creates (``book setup``, ``desk serve``), one that
was migrated by a newer stagectl is refused, and an older one is brought up to date by a
creating command. Migrations run in one transaction under an advisory lock, so two processes
starting at once migrate once.
"""

from __future__ import annotations

import functools
import threading
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

from scheduler.dbfile import DatabaseDamaged, DatabaseMissing
from scheduler.sql import PG_CONNECT_ARGS, pg_error, redact, sqlalchemy_url

MIGRATIONS = Path(__file__).with_name("migrations")
MIGRATE_LOCK = 0x53544B4D  # "STKM": pg_advisory_xact_lock key of a migration
_checked: set[str] = set()
_checked_lock = threading.Lock()


def _config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


@functools.cache
def _revisions() -> tuple[str, frozenset[str]]:
    scripts = ScriptDirectory.from_config(_config())
    rev = scripts.get_current_head()
    assert rev is not None
    return rev, frozenset(s.revision for s in scripts.walk_revisions())


def head() -> str:
    """The newest revision this build knows."""
    return _revisions()[0]


def ensure_schema(url: str, *, create: bool) -> None:
    """Check (and, when ``create``, migrate) the booking schema of the database at ``url``.

    Raises:
        DatabaseMissing: no booking schema and not ``create``.
        DatabaseDamaged: migrated by a newer build, or out of date and not ``create``.
        scheduler.sql.PgOperationalError: the server cannot be reached.
    """
    with _checked_lock:
        if url in _checked:
            return
    where = redact(url)
    known = _revisions()[1]
    engine = sa.create_engine(sqlalchemy_url(url), poolclass=sa.pool.NullPool,
                              connect_args=PG_CONNECT_ARGS)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATE_LOCK})
            have = conn.execute(sa.text(
                "SELECT to_regclass('alembic_version') IS NOT NULL")).scalar()
            current = (conn.execute(sa.text("SELECT version_num FROM alembic_version"))
                       .scalar() if have else None)
            if current is not None and current not in known:
                raise DatabaseDamaged(
                    where, f"was migrated by a newer stagectl (booking schema revision "
                           f"{current}; this build knows up to {head()})",
                    "run the newer stagectl, or restore a backup made by this version")
            if current != head():
                if not create:
                    if current is None:
                        raise DatabaseMissing(
                            where, "holds no booking schema",
                            f"create it with `stagectl book setup CONFIG --db {where}` "
                            "or `stagectl desk serve`")
                    raise DatabaseDamaged(
                        where, f"has booking schema revision {current}, older than {head()}",
                        f"migrate it with `stagectl book setup CONFIG --db {where}`")
                cfg = _config()
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
    except sa.exc.DBAPIError as exc:
        err = pg_error(exc.orig if exc.orig is not None else exc)
        raise type(err)(f"{where}: {err}") from exc
    finally:
        engine.dispose()
    with _checked_lock:
        _checked.add(url)
