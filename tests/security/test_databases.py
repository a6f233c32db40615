"""Damaged, foreign, newer and missing databases: one line, exit 1, the file untouched.

Issue 11, "Files never turn into tracebacks". Every command that takes ``--db`` (all of
``stagectl book``; ``stagectl farm controller``) and the engine's safety audit log
(``stagectl serve``) is run against each kind of damage; it must exit 1 with one line on
stderr that names the file, leave the file byte for byte as it was and leave no new file
(``-wal``, ``-shm``, a folder) beside it. Readers refuse a path that does not exist; only
``book setup`` and ``farm controller`` create, and only inside an existing folder. A few runs
are real subprocesses (``python -m stagectl``); the rest go through typer's CliRunner.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from scheduler.booking.store import BookingStore
from scheduler.dbfile import DatabaseDamaged, DatabaseFileError, DatabaseMissing
from scheduler.dispatch.store import FarmStore
from stagectl.cli.main import app
from stagectl.engine.audit import AuditLog
from tests.booking.helpers import at, stages_doc

REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()


# ------------------------------------------------------------------ healthy files

def _booking_db(path: Path) -> Path:
    cfg = path.parent / "stages.json"
    cfg.write_text(json.dumps(stages_doc()))
    _ok(["book", "setup", str(cfg), "--db", str(path)])
    for i in range(3):
        _ok(["book", "request", "--db", str(path), "--id", f"B{i}", "--production", f"P{i}",
             "--duration-minutes", "120", "--earliest-start", at(8), "--latest-end", at(20),
             "--stage", "NS-1", "--start", at(8 + 3 * i)])
    _ok(["book", "hold", "--db", str(path), "B0"])
    cfg.unlink()
    return path


def _farm_db(path: Path) -> Path:
    with FarmStore(path) as store, store.transaction():  # rows the controller never parses
        for i in range(200):
            store.event("note", detail=f"event {i} " + "x" * 100)
    return path


def _audit_db(path: Path) -> Path:
    audit = AuditLog(path, "test-stage")
    audit.record("estop", user="op", role="operator", reason="test")
    audit.close()
    return path


def _ok(args: list[str]) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output


# ------------------------------------------------------------------ kinds of damage

def _flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def _root_page(path: Path, table: str) -> int:
    con = sqlite3.connect(path)
    try:
        return int(con.execute("SELECT rootpage FROM sqlite_schema WHERE name = ?",
                               (table,)).fetchone()[0])
    finally:
        con.close()


def truncated(path: Path, table: str) -> None:
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])


def flipped_schema_page(path: Path, table: str) -> None:
    _flip(path, 100)  # page 1's b-tree page type: the schema itself cannot be read


def flipped_deep(path: Path, table: str) -> None:
    # the page type byte of a table's root page, far from the header
    con = sqlite3.connect(path)
    page_size = int(con.execute("PRAGMA page_size").fetchone()[0])
    con.close()
    _flip(path, (_root_page(path, table) - 1) * page_size)


def empty(path: Path, table: str) -> None:
    path.write_bytes(b"")


def not_sqlite(path: Path, table: str) -> None:
    path.write_text("id,name\n1,stage\n")


def other_application(path: Path, table: str) -> None:
    path.unlink()
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE photos (id INTEGER PRIMARY KEY, jpeg BLOB)")
    con.commit()
    con.close()


def newer_schema(path: Path, table: str) -> None:
    con = sqlite3.connect(path)
    con.execute("PRAGMA user_version = 99")
    con.close()


def directory(path: Path, table: str) -> None:
    path.unlink()
    path.mkdir()
    (path / "keep").write_text("x")


DAMAGE: dict[str, Callable[[Path, str], None]] = {
    f.__name__: f for f in (truncated, flipped_schema_page, flipped_deep, empty, not_sqlite,
                            other_application, newer_schema, directory)}

WHAT = {  # words the one line must carry, per damage
    "truncated": "truncated", "flipped_schema_page": "damaged", "flipped_deep": "damaged",
    "empty": "empty", "not_sqlite": "not an SQLite file", "other_application": "not a",
    "newer_schema": "newer stagectl", "directory": "is a folder",
}


def _snapshot(path: Path) -> tuple[list[str], str]:
    """The folder's listing and the file's hash (a folder: hash of its listing)."""
    listing = sorted(os.listdir(path.parent))
    if path.is_dir():
        return listing, repr(sorted(os.listdir(path)))
    return listing, hashlib.sha256(path.read_bytes()).hexdigest()


def _damaged(tmp_path: Path, make: Callable[[Path], Path], table: str, kind: str) -> Path:
    folder = tmp_path / "db"
    folder.mkdir()
    path = make(folder / "state.sqlite")
    DAMAGE[kind](path, table)
    for side in ("-wal", "-shm"):
        assert not Path(f"{path}{side}").exists()
    return path


def _one_line_error(stderr: str, path: Path, kind: str | None = None) -> str:
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert str(path) in lines[0] and lines[0].startswith("error:"), lines[0]
    if kind is not None:
        assert WHAT[kind] in lines[0], lines[0]
    return lines[0]


# ------------------------------------------------------------------ booking CLI

BOOK_COMMANDS: list[list[str]] = [
    ["setup", "{cfg}"],
    ["request", "--production", "X", "--duration-minutes", "60", "--earliest-start", at(8),
     "--latest-end", at(20)],
    ["list"],
    ["list", "--history", "B0"],
    ["hold", "B1"],
    ["confirm", "B0"],
    ["release", "B0"],
    ["cancel", "B2"],
    ["challenge", "B1"],
    ["solve", "--time-limit", "1"],
    ["outage", "NS-1", "--from", at(9), "--to", at(10)],
    ["ics", "--stage", "NS-1"],
    ["report", "--from", at(0), "--to", at(0, 6)],
]


def _book(args: list[str], db: Path, cfg: Path) -> tuple[int, str]:
    argv = ["book", *(a.replace("{cfg}", str(cfg)) for a in args), "--db", str(db)]
    result = runner.invoke(app, argv)
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        argv, result.exception)
    return result.exit_code, result.stderr


@pytest.mark.parametrize("kind", sorted(DAMAGE))
def test_booking_cli_refuses_damaged_database(tmp_path: Path, kind: str) -> None:
    db = _damaged(tmp_path, _booking_db, "bookings", kind)
    cfg = tmp_path / "stages.json"
    cfg.write_text(json.dumps(stages_doc()))
    before = _snapshot(db)
    for args in BOOK_COMMANDS:
        code, stderr = _book(args, db, cfg)
        assert code == 1, (args, stderr)
        _one_line_error(stderr, db, kind)
        assert _snapshot(db) == before, args


def test_booking_cli_subprocess_one_line(tmp_path: Path) -> None:
    """Real processes: a damaged file and a not-SQLite file, one line each, file untouched."""
    for kind in ("flipped_deep", "not_sqlite"):
        (tmp_path / kind).mkdir()
        db = _damaged(tmp_path / kind, _booking_db, "bookings", kind)
        before = _snapshot(db)
        proc = subprocess.run([sys.executable, "-m", "stagectl", "book", "list", "--db", str(db)],
                              cwd=REPO, capture_output=True, text=True, timeout=60)
        assert proc.returncode == 1, proc.stderr
        _one_line_error(proc.stderr, db, kind)
        assert _snapshot(db) == before


def test_booking_readers_refuse_a_missing_database(tmp_path: Path) -> None:
    cfg = tmp_path / "stages.json"
    cfg.write_text(json.dumps(stages_doc()))
    typo = tmp_path / "bookng" / "booking.sqlite"
    for args in BOOK_COMMANDS[1:]:
        code, stderr = _book(args, typo, cfg)
        assert code == 1, (args, stderr)
        line = _one_line_error(stderr, typo)
        assert "no booking database" in line and "stagectl book setup" in line
    nearby = tmp_path / "booking.sqlite"
    code, stderr = _book(["list"], nearby, cfg)
    assert code == 1 and "stagectl book setup" in stderr
    assert sorted(os.listdir(tmp_path)) == ["stages.json"]  # no folder, no file


def test_booking_setup_creates_only_in_an_existing_folder(tmp_path: Path) -> None:
    cfg = tmp_path / "stages.json"
    cfg.write_text(json.dumps(stages_doc()))
    typo = tmp_path / "bookng" / "booking.sqlite"
    code, stderr = _book(["setup", "{cfg}"], typo, cfg)
    assert code == 1
    line = _one_line_error(stderr, typo)
    assert "mkdir -p" in line and not typo.parent.exists()
    new = tmp_path / "booking.sqlite"
    assert _book(["setup", "{cfg}"], new, cfg)[0] == 0
    assert sorted(os.listdir(tmp_path)) == ["booking.sqlite", "stages.json"]
    con = sqlite3.connect(new)
    assert con.execute("PRAGMA application_id").fetchone()[0] == 0x53544B42
    assert con.execute("PRAGMA user_version").fetchone()[0] == 1
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    con.close()
    assert _book(["list"], new, cfg)[0] == 0


def test_setup_creates_the_default_var_folder_of_a_fresh_checkout(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A newcomer's `book setup CONFIG` (default --db var/booking.sqlite) works in a checkout
    with no var/ yet; readers still refuse before it exists."""
    cfg = tmp_path / "stages.json"
    cfg.write_text(json.dumps(stages_doc()))
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("STAGECTL_BOOKING_DB", raising=False)
    result = runner.invoke(app, ["book", "list"])
    assert result.exit_code == 1 and not (tmp_path / "var").exists()
    result = runner.invoke(app, ["book", "setup", str(cfg)])
    assert result.exit_code == 0, result.output
    assert "created folder var/" in result.output
    assert (tmp_path / "var" / "booking.sqlite").is_file()
    assert runner.invoke(app, ["book", "list"]).exit_code == 0


def test_damage_seen_only_mid_command_is_one_line(tmp_path: Path) -> None:
    """Values SQLite itself finds sound but that do not decode: the same one-line error."""
    db = _booking_db(tmp_path / "booking.sqlite")
    cfg = tmp_path / "stages.json"
    cfg.write_text(json.dumps(stages_doc()))
    con = sqlite3.connect(db)
    con.execute("UPDATE bookings SET status = 'HOLE' WHERE id = 'B1'")
    con.execute("UPDATE bookings SET spec = CAST(x'7b22ff' AS TEXT) WHERE id = 'B2'")
    con.commit()
    con.close()
    for args in (["list"], ["ics", "--stage", "NS-1"],
                 ["report", "--from", at(0), "--to", at(0, 6)]):
        code, stderr = _book(args, db, cfg)
        assert code == 1, (args, stderr)
        line = _one_line_error(stderr, db)
        assert "is damaged" in line and "restore it from a backup" in line


def test_permissions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Unreadable and read-only files: one line naming the file and what to check.

    As root, file modes do not stop the process, so the refusal the kernel would give is
    simulated at ``open``/``os.access`` for that one file; as any other user, chmod is used.
    """
    db = _booking_db(tmp_path / "booking.sqlite")
    cfg = tmp_path / "stages.json"
    before = _snapshot(db)
    real_open = Path.open
    real_access = os.access

    def refused(as_root: Callable[[], None], mode: int) -> str:
        """The one error line of `book list` with ``db`` at ``mode`` (as root: ``as_root``)."""
        if os.geteuid() == 0:
            as_root()
        else:
            db.chmod(mode)
        try:
            code, stderr = _book(["list"], db, cfg)
        finally:
            monkeypatch.undo()
            db.chmod(0o644)
        assert code == 1
        return _one_line_error(stderr, db)

    def no_read(self: Path, *a: object, **k: object) -> object:
        if self == db:
            raise PermissionError(13, "Permission denied", str(self))
        return real_open(self, *a, **k)  # type: ignore[call-overload]

    assert "cannot be read (permission denied)" in refused(
        lambda: monkeypatch.setattr(Path, "open", no_read), 0)
    assert "read-only for this user" in refused(
        lambda: monkeypatch.setattr(os, "access", lambda p, mode, **k: False if Path(p) == db
                                    and mode & os.W_OK else real_access(p, mode, **k)), 0o444)
    assert _snapshot(db) == before


def test_old_files_without_a_version_still_open(tmp_path: Path) -> None:
    """Files written before the schema carried a version open, and are stamped once."""
    from scheduler.booking.store import SCHEMA

    db = tmp_path / "old.sqlite"
    con = sqlite3.connect(db, isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.executescript(SCHEMA)
    con.close()
    with BookingStore(db, create=False) as store:
        assert store.records() == []
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA user_version").fetchone()[0] == 1
    con.close()


def test_an_old_file_refused_as_damaged_is_not_stamped(tmp_path: Path) -> None:
    """A pre-version file that fails a content check is reported and left byte for byte
    (the version stamp used to be written before the store's own meta-row check)."""
    from scheduler.booking.store import SCHEMA

    db = tmp_path / "old.sqlite"
    con = sqlite3.connect(db, isolation_level=None)
    con.executescript(SCHEMA)
    con.execute("DELETE FROM meta WHERE key = 'slot_minutes'")
    con.close()
    before = _snapshot(db)
    with pytest.raises(DatabaseDamaged, match="no version or slot_minutes row"):
        BookingStore(db, create=False)
    assert _snapshot(db) == before


def test_open_while_another_process_writes(tmp_path: Path) -> None:
    """A healthy file in use (its -wal present) opens; nothing is reported damaged."""
    db = _booking_db(tmp_path / "booking.sqlite")
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    holder.execute("UPDATE meta SET value = value WHERE key = 'version'")
    try:
        assert Path(f"{db}-wal").exists()
        with BookingStore(db, create=False) as store:
            assert len(store.records()) == 3
    finally:
        holder.execute("ROLLBACK")
        holder.close()


# ------------------------------------------------------------------ farm controller

@pytest.mark.parametrize("kind", sorted(DAMAGE))
def test_farm_controller_refuses_damaged_database(tmp_path: Path, kind: str) -> None:
    db = _damaged(tmp_path, _farm_db, "tasks", kind)
    before = _snapshot(db)
    result = runner.invoke(app, ["farm", "controller", "--db", str(db),
                                 "--bind", "tcp://127.0.0.1:0"])
    assert result.exit_code == 1, result.output
    _one_line_error(result.stderr, db, kind)
    assert _snapshot(db) == before
    with pytest.raises(DatabaseFileError):
        FarmStore(db)


def test_farm_controller_refuses_a_booking_database(tmp_path: Path) -> None:
    db = _booking_db(tmp_path / "booking.sqlite")
    before = _snapshot(db)
    result = runner.invoke(app, ["farm", "controller", "--db", str(db),
                                 "--bind", "tcp://127.0.0.1:0"])
    assert result.exit_code == 1
    assert "is a booking database, not a farm database" in _one_line_error(result.stderr, db)
    assert _snapshot(db) == before


@pytest.mark.parametrize("spec", [{"id": "j1"}, {"id": "j1", "frame_start": "one",
                                                "frame_end": 2, "chunk_size": 1}],
                         ids=["fields missing", "wrong type"])
def test_farm_controller_refuses_a_stored_job_it_cannot_read(tmp_path: Path,
                                                            spec: dict[str, object]) -> None:
    """SQLite finds the file sound but a stored job does not decode: one line, not a
    KeyError traceback from the controller's start-up."""
    db = tmp_path / "farm.sqlite"
    with FarmStore(db, create=True) as store:
        store.add_job(spec, [("j1-0", 1, 2)])
    before = _snapshot(db)
    result = runner.invoke(app, ["farm", "controller", "--db", str(db),
                                 "--bind", "tcp://127.0.0.1:0"])
    assert result.exit_code == 1, result.output
    assert "stored job 'j1' cannot be read" in _one_line_error(result.stderr, db)
    assert _snapshot(db) == before


def _controller(db: Path, address: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "stagectl", "farm", "controller", "--db", str(db), "--bind",
         address], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_farm_controller_subprocess_damaged(tmp_path: Path) -> None:
    """A real controller on a damaged file exits 1 at once, before it binds."""
    db = _damaged(tmp_path, _farm_db, "tasks", "truncated")
    before = _snapshot(db)
    proc = _controller(db, "tcp://127.0.0.1:0")
    try:
        _, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 1
    _one_line_error(stderr, db, "truncated")
    assert _snapshot(db) == before


def test_farm_controller_creates_only_in_an_existing_folder(tmp_path: Path) -> None:
    typo = tmp_path / "frm" / "farm.sqlite"
    result = runner.invoke(app, ["farm", "controller", "--db", str(typo),
                                 "--bind", "tcp://127.0.0.1:0"])
    assert result.exit_code == 1
    assert "mkdir -p" in _one_line_error(result.stderr, typo)
    assert not typo.parent.exists()
    db = tmp_path / "farm.sqlite"
    proc = _controller(db, "tcp://127.0.0.1:0")
    try:
        deadline = time.monotonic() + 60
        while not db.exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        time.sleep(0.3)
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert "(new)" in stderr and "Traceback" not in stderr
    with FarmStore(db, create=False) as store:
        assert store.integrity_check() == "ok" and store.jobs() == []


# ------------------------------------------------------------------ audit log / serve

@pytest.mark.parametrize("kind", sorted(DAMAGE))
def test_audit_log_refuses_damaged_file(tmp_path: Path, kind: str) -> None:
    db = _damaged(tmp_path, _audit_db, "audit", kind)
    before = _snapshot(db)
    with pytest.raises(DatabaseFileError) as info:
        AuditLog(db, "test-stage")
    assert str(db) in str(info.value) and "\n" not in str(info.value)
    assert WHAT[kind] in str(info.value)
    assert _snapshot(db) == before


def _stage_config(folder: Path, audit: Path) -> Path:
    cfg = folder / "stage.toml"
    cfg.write_text(f"""
[stage]
name = "t"
site = "x"
timezone = "Asia/Shanghai"
frame_rate = 25
[engine]
command = "tcp://127.0.0.1:0"
state = "tcp://127.0.0.1:0"
[mqtt]
enabled = false
[safety]
audit_db = "{audit}"
""")
    return cfg


@pytest.mark.parametrize("kind", ["empty", "flipped_schema_page", "other_application"])
def test_serve_stops_on_a_damaged_audit_log(tmp_path: Path, kind: str) -> None:
    db = _damaged(tmp_path, _audit_db, "audit", kind)
    cfg = _stage_config(tmp_path, db)
    before = _snapshot(db)
    proc = subprocess.run([sys.executable, "-m", "stagectl", "serve", "--config", str(cfg)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1, proc.stderr
    line = _one_line_error(proc.stderr, db, kind)
    assert "safety.audit_db" in line or "restore it from a backup" in line
    assert _snapshot(db) == before


def test_audit_log_keeps_working_when_the_file_breaks(tmp_path: Path,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    """A row that cannot be written is logged in full; the caller (an e-stop) carries on."""
    db = _audit_db(tmp_path / "audit.sqlite")
    audit = AuditLog(db, "test-stage")
    audit.close()  # the next write reopens the file, which is no longer a database
    db.write_text("overwritten")
    assert audit.record("estop", user="op", role="operator", reason="again") == 0
    assert audit.write_failures == 1
    assert "audit row NOT written" in caplog.text and '"reason": "again"' in caplog.text


def test_library_errors_are_typed(tmp_path: Path) -> None:
    with pytest.raises(DatabaseMissing):
        BookingStore(tmp_path / "none.sqlite", create=False)
    (tmp_path / "empty.sqlite").write_bytes(b"")
    with pytest.raises(DatabaseDamaged):
        BookingStore(tmp_path / "empty.sqlite")


def test_damaged_file_with_a_leftover_wal_is_left_alone(tmp_path: Path) -> None:
    """A writer killed mid-way leaves -wal and -shm; a damaged file beside them is not
    checkpointed into or cleaned up: the file, its -wal and the listing stay as they were."""
    db = _booking_db(tmp_path / "booking.sqlite")
    writer = subprocess.run(
        [sys.executable, "-c", "import os, signal, sqlite3, sys\n"
         "c = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
         "c.execute(\"INSERT INTO meta VALUES ('x', 'y')\")\n"
         "os.kill(os.getpid(), signal.SIGKILL)\n", str(db)], timeout=60)
    assert writer.returncode == -signal.SIGKILL
    wal = Path(f"{db}-wal")
    assert wal.exists()
    flipped_schema_page(db, "bookings")
    before = _snapshot(db), hashlib.sha256(wal.read_bytes()).hexdigest()
    code, stderr = _book(["list"], db, tmp_path / "unused.json")
    assert code == 1
    _one_line_error(stderr, db, "flipped_schema_page")
    assert (_snapshot(db), hashlib.sha256(wal.read_bytes()).hexdigest()) == before


def test_farm_controller_stops_when_its_file_breaks_while_running(tmp_path: Path) -> None:
    """Damage SQLite notices mid-run (here the file is overwritten under the controller):
    the controller stops with one error line, exit 1, and writes nothing more to the file."""
    db = _farm_db(tmp_path / "farm.sqlite")
    proc = _controller(db, "tcp://127.0.0.1:0")
    try:
        assert proc.stderr is not None
        first = proc.stderr.readline()
        assert "farm controller on" in first, first
        with db.open("r+b") as handle:
            handle.truncate(0)
            handle.write(b"not a database any more\n" * 400)
        broken = _snapshot(db)[1]
        _, rest = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 1, rest
    assert "Traceback" not in rest
    errors = [line for line in rest.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and str(db) in errors[0] and "is damaged" in errors[0], rest
    assert _snapshot(db)[1] == broken


def test_byte_flips_anywhere_never_give_a_traceback(tmp_path: Path) -> None:
    """Seeded single-bit flips across a booking file: each command exits 0 (the flip hit
    nothing it reads) or 1 with one line; never a traceback, never exit 2."""
    import random

    base = _booking_db(tmp_path / "base.sqlite")
    data = base.read_bytes()
    rng = random.Random(11)
    cfg = tmp_path / "unused.json"
    failures = 0
    for _ in range(60):
        flipped = bytearray(data)
        flipped[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        db = tmp_path / "f.sqlite"
        for side in ("", "-wal", "-shm"):
            Path(f"{db}{side}").unlink(missing_ok=True)
        db.write_bytes(bytes(flipped))
        for args in (["list", "--history", "B0"],
                     ["report", "--from", at(0), "--to", at(0, 6)]):
            code, stderr = _book(args, db, cfg)
            assert code in (0, 1), (args, stderr)
            if code == 1:
                failures += 1
                _one_line_error(stderr, db)
    assert failures  # some flips hit what the commands read


def test_same_tables_without_the_columns_are_refused(tmp_path: Path) -> None:
    """A file with this build's table names but not its columns (an older or foreign
    layout) is refused at open, before any command can fail half-way on it."""
    db = tmp_path / "booking.sqlite"
    con = sqlite3.connect(db)
    for table in ("meta", "stages", "pools", "outages", "history"):
        con.execute(f"CREATE TABLE {table} (id TEXT)")
    con.execute("CREATE TABLE bookings (id TEXT PRIMARY KEY, status TEXT)")
    con.commit()
    con.close()
    before = _snapshot(db)
    code, stderr = _book(["list"], db, tmp_path / "unused.json")
    assert code == 1
    assert "has no column" in _one_line_error(stderr, db)
    assert _snapshot(db) == before


def test_a_link_to_a_damaged_file_leaves_both_alone(tmp_path: Path) -> None:
    target = _damaged(tmp_path, _booking_db, "bookings", "flipped_deep")
    link = tmp_path / "link.sqlite"
    link.symlink_to(target)
    before = _snapshot(target), sorted(os.listdir(tmp_path))
    code, stderr = _book(["list"], link, tmp_path / "unused.json")
    assert code == 1
    _one_line_error(stderr, link, "flipped_deep")
    assert (_snapshot(target), sorted(os.listdir(tmp_path))) == before


def test_audit_tail_on_a_file_that_broke_while_the_engine_runs(tmp_path: Path) -> None:
    """A structured `audit_unreadable` error naming the file, not an "internal" error with a
    traceback in the engine's log; the engine keeps serving (and e-stopping)."""
    from stagectl.client import ClientIdentity, EngineClient, EngineError
    from stagectl.harness import StageHarness, free_port_config

    path = tmp_path / "audit.sqlite"
    cfg = free_port_config(stage="audit-broken", safety={"audit_db": str(path)})
    harness = StageHarness(cfg).start()
    try:
        with EngineClient(cfg, ClientIdentity("ana", "operator")) as client:
            client.call("estop", {"reason": "first row"})
            assert client.call("audit.tail")[-1]["event"] == "estop"
            with path.open("r+b") as f:  # the disk under the running engine goes bad
                f.seek(0)
                f.write(b"\0" * 4096)
                f.seek(4096)
                f.write(os.urandom(8192))
            assert harness.engine is not None
            harness.engine.safety.audit.close()  # the next read opens (and checks) the file
            with pytest.raises(EngineError) as info:
                client.call("audit.tail")
            assert info.value.code == "audit_unreadable", info.value
            assert str(path) in str(info.value) and "\n" not in str(info.value)
            assert client.call("estop", {"reason": "still works"})["estop"] is True
            assert client.call("ping") is not None
    finally:
        harness.stop()
