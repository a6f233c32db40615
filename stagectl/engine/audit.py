"""The stage's safety audit log: one SQLite table, WAL mode, a row per safety event.

Every e-stop, watchdog trip, refused move and reset is written with the time, the user, the
role and the reason, so a stage supervisor can answer "who stopped the arm, and why" after
the fact. WAL keeps writes cheap (a few hundred microseconds) and lets ``sqlite3`` read the
file while the engine runs. A new file is created on the first write, so a stage that never
has a safety event never creates one.

An existing file is checked when the log is made (engine start): a damaged one, or one that
is not an audit log, stops ``stagectl serve`` with one line and is never replaced, because
it is the stage's safety record (docs/decisions/0015-damaged-databases.md). If the file
becomes unusable while the engine runs, a row that cannot be written is logged in full as
an error instead: an e-stop never fails because its record could not be written.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from scheduler.dbfile import DatabaseKind, explain, open_database

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    t_utc REAL NOT NULL,
    time_iso TEXT NOT NULL,
    stage TEXT NOT NULL,
    event TEXT NOT NULL,
    user TEXT NOT NULL,
    role TEXT NOT NULL,
    device TEXT,
    reason TEXT NOT NULL,
    details TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS audit_t ON audit (t_utc);
"""

FILE = DatabaseKind(
    name="safety audit log",
    application_id=0x53544B41,  # "STKA"
    version=1,
    script=SCHEMA,
    create_command="`stagectl serve` (keep the old file: it is the stage's safety record)",
    path_setting="safety.audit_db in the stage config",
)

EVENTS: tuple[str, ...] = ("estop", "watchdog_trip", "refused_move", "reset", "armed",
                           "disarmed", "talent_on", "talent_off", "fault", "reset_refused")


_KEYS = ("id", "t_utc", "time_iso", "stage", "event", "user", "role", "device", "reason",
         "details")


def _exists(path: Path) -> bool:
    """Whether anything is at ``path`` (a dangling link or an unreadable folder counts)."""
    try:
        path.lstat()
    except FileNotFoundError:
        return False
    except OSError:
        return True
    return True


class AuditLog:
    """Append-only safety log.

    Args:
        path: the SQLite file, or ``":memory:"``.
        stage: the stage name written with every row.

    Raises:
        scheduler.dbfile.DatabaseFileError: ``path`` exists but is damaged, not an audit
            log, newer than this build, or not readable and writable (left as it was).
    """

    def __init__(self, path: Path | str, stage: str) -> None:
        self.path = str(path)
        self.stage = stage
        self._db: sqlite3.Connection | None = None
        self.write_failures = 0
        if self.path != ":memory:" and _exists(Path(self.path)):
            self._db = open_database(self.path, FILE, create=False, check_same_thread=False)

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            if self.path == ":memory:":
                db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
                db.executescript(SCHEMA)
            else:
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
                db = open_database(self.path, FILE, create=True, check_same_thread=False)
            self._db = db
        return self._db

    def record(self, event: str, *, user: str, role: str, reason: str,
               device: str | None = None, details: dict[str, Any] | None = None) -> int:
        """Append one row; returns its id (0 when the file could not be written)."""
        now = time.time()
        row = (now, datetime.fromtimestamp(now, UTC).isoformat(timespec="milliseconds"),
               self.stage, event, user, role, device, reason,
               json.dumps(details or {}, default=str, ensure_ascii=False))
        try:
            cur = self._conn().execute(
                "INSERT INTO audit (t_utc, time_iso, stage, event, user, role, device, "
                "reason, details) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", row)
        except (sqlite3.Error, OSError) as exc:
            self.write_failures += 1
            problem = explain(self.path, exc, FILE) if isinstance(exc, sqlite3.Error) else exc
            log.error("audit row NOT written (%s): %s", problem,
                      json.dumps(dict(zip(_KEYS[1:], row, strict=True)), ensure_ascii=False))
            return 0
        return int(cur.lastrowid or 0)

    def tail(self, limit: int = 50, event: str | None = None) -> list[dict[str, Any]]:
        """The newest ``limit`` rows, oldest first (optionally one event type)."""
        query = "SELECT id, t_utc, time_iso, stage, event, user, role, device, reason, " \
                "details FROM audit"
        params: tuple[Any, ...] = ()
        if event:
            query += " WHERE event = ?"
            params = (event,)
        try:
            rows = self._conn().execute(query + " ORDER BY id DESC LIMIT ?",
                                        (*params, limit)).fetchall()
        except sqlite3.Error as exc:
            raise explain(self.path, exc, FILE) from None
        out = []
        for row in reversed(rows):
            item = dict(zip(_KEYS, row, strict=True))
            try:
                item["details"] = json.loads(item["details"])
            except (TypeError, ValueError):
                item["details"] = {"unreadable": str(item["details"])}
            out.append(item)
        return out

    def close(self) -> None:
        """Close the file (a later write reopens it)."""
        if self._db is not None:
            self._db.close()
            self._db = None
