"""Durable farm state in SQLite: jobs, tasks, attempts, events, per-node failure counts.

WAL journal, every change inside ``BEGIN IMMEDIATE`` (one writer: the controller; readers
never block it). ``synchronous=NORMAL`` is durable against the controller being killed at any
moment, which is the failure this store is for (a power cut may lose the last commits, never
corrupt the file). The controller commits before it sends: an assignment leaves only after
its attempt row exists, and a completion is acknowledged only after it is recorded, so a
restart resumes with no task lost and completions of stale attempts are recognised by id.
See docs/decisions/0050-farm-durable-attempts.md.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson

from scheduler.dbfile import DatabaseKind, open_database

TASK_STATES = ("QUEUED", "PLANNED", "RUNNING", "DONE", "FAILED", "BLOCKED")
ATTEMPT_STATES = ("RUNNING", "DONE", "FAILED", "LOST", "CANCELLED")

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs(
    id TEXT PRIMARY KEY, seq INTEGER NOT NULL, spec TEXT NOT NULL, state TEXT NOT NULL,
    submitted_utc REAL NOT NULL);
CREATE TABLE IF NOT EXISTS tasks(
    id TEXT PRIMARY KEY, job_id TEXT NOT NULL REFERENCES jobs(id), seq INTEGER NOT NULL,
    frame_start INTEGER NOT NULL, frame_end INTEGER NOT NULL, state TEXT NOT NULL,
    failures INTEGER NOT NULL DEFAULT 0, attempt_id INTEGER, reason TEXT NOT NULL DEFAULT '',
    planned_resource TEXT, planned_start_utc REAL, done_utc REAL);
CREATE INDEX IF NOT EXISTS tasks_job ON tasks(job_id);
CREATE TABLE IF NOT EXISTS attempts(
    id INTEGER PRIMARY KEY AUTOINCREMENT, task_id TEXT NOT NULL, job_id TEXT NOT NULL,
    resource TEXT NOT NULL, slot INTEGER NOT NULL, pool_job_id TEXT, state TEXT NOT NULL,
    started_utc REAL NOT NULL, ended_utc REAL, exit_code INTEGER, error TEXT NOT NULL DEFAULT '',
    gpus INTEGER NOT NULL DEFAULT 1, cost_cny REAL NOT NULL DEFAULT 0,
    log_tail TEXT NOT NULL DEFAULT '');
CREATE INDEX IF NOT EXISTS attempts_state ON attempts(state);
CREATE TABLE IF NOT EXISTS events(
    id INTEGER PRIMARY KEY AUTOINCREMENT, t_utc REAL NOT NULL, kind TEXT NOT NULL,
    job_id TEXT, task_id TEXT, resource TEXT, detail TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS node_failures(
    job_id TEXT NOT NULL, resource TEXT NOT NULL, failures INTEGER NOT NULL,
    PRIMARY KEY(job_id, resource));
"""

FILE = DatabaseKind(
    name="farm database",
    application_id=0x53544B46,  # "STKF"
    version=1,
    script=SCHEMA,
    create_command="`stagectl farm controller --db {path}`",
)


class FarmStore:
    """The controller's SQLite file. Not thread-safe: one thread at a time may use it.

    Args:
        path: the file; created when missing and ``create`` (its folder must exist).

    Raises:
        scheduler.dbfile.DatabaseFileError: missing (and not ``create``), damaged, not a
            farm database, newer than this build, or not readable and writable; the file is
            left as it was.
    """

    def __init__(self, path: str | Path, *, create: bool = True) -> None:
        self.path = Path(path)
        self._db = open_database(self.path, FILE, create=create, synchronous="NORMAL",
                                 timeout_s=10.0, check_same_thread=False)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA foreign_keys=ON")
        self._depth = 0

    def close(self) -> None:
        """Close the file."""
        self._db.close()

    def __enter__(self) -> FarmStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT`` (nested calls join the outer transaction)."""
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        self._db.execute("BEGIN IMMEDIATE")
        self._depth = 1
        try:
            yield
        except BaseException:
            self._depth = 0
            self._db.execute("ROLLBACK")
            raise
        self._depth = 0
        self._db.execute("COMMIT")

    # ---------------------------------------------------------------- writes

    def add_job(self, spec: dict[str, Any], tasks: list[tuple[str, int, int]]) -> None:
        """Insert a job and its tasks (QUEUED)."""
        with self.transaction():
            seq = self._db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM jobs").fetchone()[0]
            self._db.execute(
                "INSERT INTO jobs(id, seq, spec, state, submitted_utc) VALUES (?, ?, ?, ?, ?)",
                (spec["id"], seq, orjson.dumps(spec).decode(), "active", time.time()))
            self._db.executemany(
                "INSERT INTO tasks(id, job_id, seq, frame_start, frame_end, state) "
                "VALUES (?, ?, ?, ?, ?, 'QUEUED')",
                [(tid, spec["id"], i, fs, fe) for i, (tid, fs, fe) in enumerate(tasks)])
            self.event("job_added", job_id=spec["id"], detail=f"{len(tasks)} tasks")

    def set_job_state(self, job_id: str, state: str) -> None:
        """``active`` or ``cancelled``."""
        self._db.execute("UPDATE jobs SET state = ? WHERE id = ?", (state, job_id))

    def update_task(self, task_id: str, **fields: Any) -> None:
        """Set columns of one task."""
        cols = ", ".join(f"{k} = ?" for k in fields)
        self._db.execute(f"UPDATE tasks SET {cols} WHERE id = ?", (*fields.values(), task_id))

    def update_tasks(self, rows: list[tuple[Any, ...]], columns: tuple[str, ...]) -> None:
        """Set ``columns`` of many tasks: each row is the values followed by the task id."""
        cols = ", ".join(f"{k} = ?" for k in columns)
        self._db.executemany(f"UPDATE tasks SET {cols} WHERE id = ?", rows)

    def new_attempt(self, task_id: str, job_id: str, resource: str, slot: int, gpus: int,
                    started_utc: float) -> int:
        """Record a dispatch; the returned id travels with the assignment."""
        cur = self._db.execute(
            "INSERT INTO attempts(task_id, job_id, resource, slot, state, started_utc, gpus) "
            "VALUES (?, ?, ?, ?, 'RUNNING', ?, ?)",
            (task_id, job_id, resource, slot, started_utc, gpus))
        attempt_id = cur.lastrowid
        assert attempt_id is not None
        return attempt_id

    def set_pool_job(self, attempt_id: int, pool_job_id: str) -> None:
        """Remember the batch system's id of a pool attempt."""
        self._db.execute("UPDATE attempts SET pool_job_id = ? WHERE id = ?",
                         (pool_job_id, attempt_id))

    def end_attempt(self, attempt_id: int, state: str, *, exit_code: int | None = None,
                    error: str = "", cost_cny: float = 0.0, log_tail: str = "",
                    ended_utc: float | None = None) -> None:
        """Close an attempt (DONE, FAILED, LOST or CANCELLED)."""
        self._db.execute(
            "UPDATE attempts SET state = ?, ended_utc = ?, exit_code = ?, error = ?, "
            "cost_cny = ?, log_tail = ? WHERE id = ?",
            (state, time.time() if ended_utc is None else ended_utc, exit_code, error, cost_cny,
             log_tail, attempt_id))

    def lost_attempts(self, task_id: str) -> int:
        """How many of a task's attempts were lost (their agent died or vanished)."""
        row = self._db.execute("SELECT COUNT(*) FROM attempts WHERE task_id = ? AND "
                               "state = 'LOST'", (task_id,)).fetchone()
        return int(row[0])

    def add_failure(self, job_id: str, resource: str) -> int:
        """Count one more failure of ``job_id`` on ``resource``; returns the new count."""
        self._db.execute(
            "INSERT INTO node_failures(job_id, resource, failures) VALUES (?, ?, 1) "
            "ON CONFLICT(job_id, resource) DO UPDATE SET failures = failures + 1",
            (job_id, resource))
        row = self._db.execute("SELECT failures FROM node_failures WHERE job_id = ? AND "
                               "resource = ?", (job_id, resource)).fetchone()
        return int(row[0])

    def clear_failures(self, job_id: str) -> None:
        """Forget a job's per-node failures (``farm retry``)."""
        self._db.execute("DELETE FROM node_failures WHERE job_id = ?", (job_id,))

    def event(self, kind: str, *, job_id: str | None = None, task_id: str | None = None,
              resource: str | None = None, detail: str = "") -> None:
        """Append to the event log."""
        self._db.execute(
            "INSERT INTO events(t_utc, kind, job_id, task_id, resource, detail) "
            "VALUES (?, ?, ?, ?, ?, ?)", (time.time(), kind, job_id, task_id, resource, detail))

    # ---------------------------------------------------------------- reads

    def jobs(self) -> list[sqlite3.Row]:
        """Every job in submission order."""
        return list(self._db.execute("SELECT * FROM jobs ORDER BY seq"))

    def tasks(self) -> list[sqlite3.Row]:
        """Every task, by job then chunk."""
        return list(self._db.execute(
            "SELECT t.* FROM tasks t JOIN jobs j ON j.id = t.job_id ORDER BY j.seq, t.seq"))

    def attempts(self, state: str | None = None) -> list[sqlite3.Row]:
        """Attempts, optionally of one state."""
        if state is None:
            return list(self._db.execute("SELECT * FROM attempts ORDER BY id"))
        return list(self._db.execute("SELECT * FROM attempts WHERE state = ? ORDER BY id",
                                     (state,)))

    def failures(self) -> dict[tuple[str, str], int]:
        """(job, resource) -> failures."""
        return {(r[0], r[1]): int(r[2]) for r in
                self._db.execute("SELECT job_id, resource, failures FROM node_failures")}

    def events(self, limit: int = 50, after_id: int = 0) -> list[dict[str, Any]]:
        """The latest events (oldest first)."""
        rows = self._db.execute(
            "SELECT * FROM (SELECT * FROM events WHERE id > ? ORDER BY id DESC LIMIT ?) "
            "ORDER BY id", (after_id, limit))
        return [dict(r) for r in rows]

    def pool_cost(self) -> dict[str, float]:
        """CNY spent per pool resource (finished attempts)."""
        return {r[0]: float(r[1]) for r in self._db.execute(
            "SELECT resource, SUM(cost_cny) FROM attempts WHERE pool_job_id IS NOT NULL "
            "GROUP BY resource")}

    def integrity_check(self) -> str:
        """SQLite's own check ("ok")."""
        return str(self._db.execute("PRAGMA integrity_check").fetchone()[0])
