"""The stage's safety audit log: one SQLite table, WAL mode, a row per safety event.

Every e-stop, watchdog trip, refused move and reset is written with the time, the user, the
role and the reason, so a stage supervisor can answer "who stopped the arm, and why" after
the fact. WAL keeps writes cheap (a few hundred microseconds) and lets ``sqlite3`` read the
file while the engine runs. The file opens on the first write, so a stage that never has a
safety event never creates one.
"""

from __future__ import annotations

import json
import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

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

EVENTS: tuple[str, ...] = ("estop", "watchdog_trip", "refused_move", "reset", "armed",
                           "disarmed", "talent_on", "talent_off", "fault")


class AuditLog:
    """Append-only safety log.

    Args:
        path: the SQLite file, or ``":memory:"``.
        stage: the stage name written with every row.
    """

    def __init__(self, path: Path | str, stage: str) -> None:
        self.path = str(path)
        self.stage = stage
        self._db: sqlite3.Connection | None = None

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            if self.path != ":memory:":
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            if self.path != ":memory:":
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=NORMAL")
            db.executescript(SCHEMA)
            self._db = db
        return self._db

    def record(self, event: str, *, user: str, role: str, reason: str,
               device: str | None = None, details: dict[str, Any] | None = None) -> int:
        """Append one row; returns its id."""
        now = time.time()
        cur = self._conn().execute(
            "INSERT INTO audit (t_utc, time_iso, stage, event, user, role, device, reason, "
            "details) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (now, datetime.fromtimestamp(now, UTC).isoformat(timespec="milliseconds"),
             self.stage, event, user, role, device, reason,
             json.dumps(details or {}, default=str, ensure_ascii=False)))
        return int(cur.lastrowid or 0)

    def tail(self, limit: int = 50, event: str | None = None) -> list[dict[str, Any]]:
        """The newest ``limit`` rows, oldest first (optionally one event type)."""
        query = "SELECT id, t_utc, time_iso, stage, event, user, role, device, reason, " \
                "details FROM audit"
        params: tuple[Any, ...] = ()
        if event:
            query += " WHERE event = ?"
            params = (event,)
        rows = self._conn().execute(query + " ORDER BY id DESC LIMIT ?",
                                    (*params, limit)).fetchall()
        keys = ("id", "t_utc", "time_iso", "stage", "event", "user", "role", "device",
                "reason", "details")
        out = []
        for row in reversed(rows):
            item = dict(zip(keys, row, strict=True))
            item["details"] = json.loads(item["details"])
            out.append(item)
        return out

    def close(self) -> None:
        """Close the file (a later write reopens it)."""
        if self._db is not None:
            self._db.close()
            self._db = None
