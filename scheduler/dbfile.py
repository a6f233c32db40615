"""Open an SQLite file that holds state we must not lose: check it first, never repair it.

Used by the booking store, the farm controller's store and the engine's safety audit log
(docs/decisions/0015-damaged-databases.md). Every problem becomes a
:class:`DatabaseFileError` whose text is one line: the file, what is wrong, what to do.

* An existing file is inspected before anything can write to it: the 100-byte header
  (``SQLite format 3`` and a NUL, page size, page count against the file's size), then, through
  SQLite, the application id, the schema version (``PRAGMA user_version``), the tables and
  columns this build expects, and ``PRAGMA quick_check``. Only a file that passes is opened
  for writing; a damaged one is left byte for byte as it was, and no ``-wal``/``-shm`` file
  is left beside it.
* A missing file is created only when the caller creates (``book setup``, ``farm
  controller``), only inside an existing folder, and atomically: the schema is written to a
  temporary file in that folder, which is then linked into place, so the file either does
  not exist or is complete (an empty file is never one of ours: it is reported, not reused).
* :func:`explain` turns an ``sqlite3.DatabaseError`` raised later (a flipped byte deep in
  the file may show only when that page is read) into the same one-line error.
"""

from __future__ import annotations

import os
import sqlite3
import stat
from dataclasses import dataclass, field
from pathlib import Path

HEADER = b"SQLite format 3\x00"
_WAL = 2  # header bytes 18/19 (file format write/read version) in WAL mode
# The application ids stagectl stamps, for "this is a X, not a Y".
_KNOWN = {0x53544B42: "booking database", 0x53544B46: "farm database",
          0x53544B41: "safety audit log"}


class DatabaseFileError(OSError):
    """A database file that cannot be used. ``str()`` is one line: file, problem, advice.

    An ``OSError``: like a permission error, it is about the file, not about the input of a
    command, so handlers that report ``OSError`` as one line (``stagectl serve``) report it.
    """

    def __init__(self, path: Path | str, problem: str, advice: str) -> None:
        super().__init__(f"{path}: {problem}; {advice}")
        self.path = Path(path)
        self.problem = problem
        self.advice = advice

    def __str__(self) -> str:
        return str(self.args[0])


class DatabaseMissing(DatabaseFileError):
    """No database at the path (and the command does not create one)."""


class DatabaseDamaged(DatabaseFileError):
    """The file exists but is not a healthy database of the expected kind."""


@dataclass(frozen=True)
class DatabaseKind:
    """What a file must hold to be opened as one kind of database.

    Args:
        name: for messages ("booking database").
        application_id: ``PRAGMA application_id`` stamped on files this build creates.
        version: ``PRAGMA user_version`` (schema version) this build writes and reads.
        script: the ``CREATE TABLE`` statements (and seed rows) of a new file.
        create_command: how a user makes a new one; ``{path}`` is replaced by the path.
        path_setting: where the user gives the path ("--db").
        row_checks: ``(query, problem)`` pairs checked before anything is written: each
            query's first column must be true, else the file "is damaged (problem)".
    """

    name: str
    application_id: int
    version: int
    script: str
    create_command: str
    path_setting: str = "--db"
    row_checks: tuple[tuple[str, str], ...] = ()
    _columns: dict[str, frozenset[str]] = field(default_factory=dict, compare=False,
                                                repr=False)

    def columns(self) -> dict[str, frozenset[str]]:
        """Table -> columns that :attr:`script` creates (computed once, in memory)."""
        if not self._columns:
            mem = sqlite3.connect(":memory:")
            try:
                mem.executescript(self.script)
                self._columns.update(_tables(mem))
            finally:
                mem.close()
        return self._columns

    def restore_advice(self, path: Path | str) -> str:
        """What to do with a damaged file."""
        return (f"restore it from a backup, or move it aside and run "
                f"{self.create_command.format(path=path)} to start a new one")


def explain(path: Path | str, exc: sqlite3.Error, kind: DatabaseKind) -> DatabaseFileError:
    """The one-line error for an SQLite error raised while using ``path``."""
    name = str(getattr(exc, "sqlite_errorname", "") or "")
    text = _short(str(exc) or type(exc).__name__)
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        return DatabaseFileError(path, f"is locked by another process ({text})",
                                 "run the command again when that process has finished")
    if name.startswith("SQLITE_READONLY"):
        return DatabaseFileError(path, f"cannot be written ({text})",
                                 "check the owner and mode of the file and of its folder")
    if name == "SQLITE_FULL":
        return DatabaseFileError(path, f"cannot grow: the disk is full ({text})",
                                 "free some space and run the command again")
    if name.startswith("SQLITE_CANTOPEN"):
        return DatabaseFileError(path, f"cannot be opened ({text})",
                                 "check the path and the owner and mode of its folder")
    if name.startswith("SQLITE_IOERR") and name != "SQLITE_IOERR_SHORT_READ":
        return DatabaseFileError(path, f"cannot be read or written ({text})",
                                 "check the disk (dmesg), then run the command again")
    return DatabaseDamaged(path, f"is damaged ({text})", kind.restore_advice(path))


def open_database(path: Path | str, kind: DatabaseKind, *, create: bool,
                  synchronous: str = "NORMAL", timeout_s: float = 10.0,
                  check_same_thread: bool = True) -> sqlite3.Connection:
    """A checked connection to ``path`` in WAL mode, autocommit (``isolation_level=None``).

    Raises:
        DatabaseMissing: no file, and ``create`` is false (or its folder is missing).
        DatabaseFileError: the file is damaged, of another kind, newer, or unusable.
    """
    p = Path(path)
    try:
        st = p.stat()
    except FileNotFoundError:
        if not create:
            raise DatabaseMissing(
                p, f"no {kind.name} here",
                f"check {kind.path_setting}, or create one with "
                f"{kind.create_command.format(path=p)}") from None
        _create(p, kind)
        st = p.stat()
    except NotADirectoryError:
        raise DatabaseMissing(p, "a folder on the path is a file",
                              f"check {kind.path_setting}") from None
    except OSError as exc:
        raise DatabaseFileError(p, f"cannot be reached ({exc.strerror})",
                                "check the owner and mode of its folders") from None
    header = _check_file(p, st, kind)
    _check_access(p, kind)
    real = p.resolve()  # SQLite keeps -wal and -shm beside the file a link points to
    wal = real.with_name(real.name + "-wal")
    shm = real.with_name(real.name + "-shm")
    had_shm = shm.exists()
    # Read-write only when the WAL is in WAL mode and has no leftover -wal: then closing a
    # failed check removes the side files and checkpoints nothing into the file. Otherwise
    # read-only, which never writes the file (but may leave a -shm, removed below).
    read_only = header[18] != _WAL or wal.exists()
    try:
        check = _connect(p, "ro" if read_only else "rw", timeout_s, check_same_thread)
    except sqlite3.Error as exc:
        raise explain(p, exc, kind) from None
    try:
        version = _inspect(check, p, kind)
    except sqlite3.Error as exc:
        check.close()
        _forget_shm(shm, had_shm)
        raise explain(p, exc, kind) from None
    except DatabaseFileError:
        check.close()
        _forget_shm(shm, had_shm)
        raise
    if read_only:
        check.close()
        try:
            conn = _connect(p, "rw", timeout_s, check_same_thread)
        except sqlite3.Error as exc:
            raise explain(p, exc, kind) from None
    else:
        conn = check
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={synchronous}")
        if version == 0:  # written before files carried a version: stamp it
            conn.execute(f"PRAGMA application_id={kind.application_id}")
            conn.execute(f"PRAGMA user_version={kind.version}")
    except sqlite3.Error as exc:
        conn.close()
        raise explain(p, exc, kind) from None
    return conn


# ------------------------------------------------------------------------------ checks

def _check_file(p: Path, st: os.stat_result, kind: DatabaseKind) -> bytes:
    """Checks that need no SQLite: a regular, readable file with a sound header."""
    restore = kind.restore_advice(p)
    if stat.S_ISDIR(st.st_mode):
        raise DatabaseDamaged(p, f"is a folder, not a {kind.name} file",
                              f"give {kind.path_setting} the path of the file "
                              f"(e.g. {p / 'name.sqlite'})")
    if not stat.S_ISREG(st.st_mode):
        raise DatabaseDamaged(p, f"is not a regular file, so not a {kind.name}",
                              f"check {kind.path_setting}")
    try:
        with p.open("rb") as handle:
            header = handle.read(100)
    except PermissionError:
        raise DatabaseFileError(p, "cannot be read (permission denied)",
                                f"check its owner and mode (ls -l {p})") from None
    except OSError as exc:
        raise DatabaseFileError(p, f"cannot be read ({exc.strerror})",
                                "check the disk, then run the command again") from None
    if not header:
        raise DatabaseDamaged(p, f"is empty (0 bytes), not a {kind.name}", restore)
    if not header.startswith(HEADER) and not HEADER.startswith(header):
        raise DatabaseDamaged(p, f"is not an SQLite file, so not a {kind.name}",
                              f"check {kind.path_setting}; if it should be one, {restore}")
    if len(header) < 100:
        raise DatabaseDamaged(p, f"is truncated ({len(header)} bytes, shorter than the "
                                 "100-byte SQLite header)", restore)
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    if page_size < 512 or page_size & (page_size - 1):
        raise DatabaseDamaged(p, f"is damaged (header page size {page_size})", restore)
    pages = int.from_bytes(header[28:32], "big")
    counter_valid = header[24:28] == header[92:96]
    real = p.resolve()
    leftover_wal = real.with_name(real.name + "-wal").exists()
    if pages and counter_valid and not leftover_wal and st.st_size < pages * page_size:
        raise DatabaseDamaged(p, f"is truncated ({st.st_size} bytes; its header says "
                                 f"{pages} pages of {page_size} bytes)", restore)
    return header


def _check_access(p: Path, kind: DatabaseKind) -> None:
    if not os.access(p, os.R_OK | os.W_OK):
        raise DatabaseFileError(p, "is read-only for this user (stagectl writes to it)",
                                f"check its owner and mode (ls -l {p})")
    folder = p.parent
    if not os.access(folder, os.W_OK | os.X_OK):
        raise DatabaseFileError(p, f"its folder {folder} is not writable (SQLite keeps "
                                   f"{p.name}-wal beside the file)",
                                f"check the owner and mode of {folder}")


def _inspect(conn: sqlite3.Connection, p: Path, kind: DatabaseKind) -> int:
    """Application id, schema version, tables and columns, quick_check; the file's version."""
    restore = kind.restore_advice(p)
    app_id = int(conn.execute("PRAGMA application_id").fetchone()[0])
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    tables = _tables(conn)
    if app_id not in (0, kind.application_id):
        other = _KNOWN.get(app_id) or f"another application's file (application_id {app_id:#x})"
        raise DatabaseDamaged(p, f"is a {other}, not a {kind.name}" if app_id in _KNOWN
                              else f"is {other}, not a {kind.name}",
                              f"check {kind.path_setting}; to keep using this path, {restore}")
    if version > kind.version:
        raise DatabaseDamaged(
            p, f"was written by a newer stagectl ({kind.name} schema version {version}; "
               f"this build reads up to {kind.version})",
            "run the newer stagectl, or restore a backup made by this version")
    if not tables:
        raise DatabaseDamaged(p, f"is an SQLite file with no tables, not a {kind.name}",
                              restore)
    expected = kind.columns()
    missing = sorted(set(expected) - set(tables))
    if missing:
        raise DatabaseDamaged(p, f"is an SQLite file but not a {kind.name} (no table "
                                 f"{_few(missing)})",
                              f"check {kind.path_setting}; if it should be one, {restore}")
    for table, columns in sorted(expected.items()):
        lacking = sorted(columns - tables[table])
        if lacking:
            raise DatabaseDamaged(p, f"is not a {kind.name} this build can use (table "
                                     f"{table} has no column {_few(lacking)})", restore)
    rows = conn.execute("PRAGMA quick_check(1)").fetchall()
    if [tuple(r) for r in rows] != [("ok",)]:
        raise DatabaseDamaged(p, f"is damaged (quick_check: {_short(str(rows[0][0]))})",
                              restore)
    for query, problem in kind.row_checks:  # before an old file is stamped below
        if not conn.execute(query).fetchone()[0]:
            raise DatabaseDamaged(p, f"is damaged ({problem})", restore)
    return version


def _tables(conn: sqlite3.Connection) -> dict[str, frozenset[str]]:
    names = [r[0] for r in conn.execute(
        "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")]
    return {n: frozenset(r[1] for r in conn.execute("SELECT * FROM pragma_table_info(?)", (n,)))
            for n in names}


# ------------------------------------------------------------------------------ create

def _create(p: Path, kind: DatabaseKind) -> None:
    """Write a new file next to ``p`` and link it into place (never a half-made file)."""
    folder = p.parent
    if not folder.is_dir():
        what = "does not exist" if not folder.exists() else "is not a folder"
        raise DatabaseMissing(p, f"cannot create the {kind.name}: {folder} {what}",
                              f"create the folder first (mkdir -p {folder}), or fix --db")
    tmp = folder / f".{p.name}.{os.getpid()}.new"
    try:
        for leftover in _side_files(tmp):
            leftover.unlink(missing_ok=True)
        conn = sqlite3.connect(tmp, isolation_level=None)
        try:
            conn.executescript(f"BEGIN;\n{kind.script};\nCOMMIT;")
            conn.execute(f"PRAGMA application_id={kind.application_id}")
            conn.execute(f"PRAGMA user_version={kind.version}")
            conn.execute("PRAGMA journal_mode=WAL")
        finally:
            conn.close()
        try:
            os.link(tmp, p)
        except FileExistsError:
            pass  # another process created it first: open theirs
        except OSError:
            if not p.exists():  # a file system without hard links
                os.replace(tmp, p)
    except OSError as exc:
        raise DatabaseFileError(p, f"cannot create the {kind.name} ({exc.strerror})",
                                f"check the owner, mode and free space of {folder}") from None
    except sqlite3.Error as exc:
        raise DatabaseFileError(p, f"cannot create the {kind.name} ({_short(str(exc))})",
                                f"check the owner, mode and free space of {folder}") from None
    finally:
        for leftover in _side_files(tmp):
            leftover.unlink(missing_ok=True)


# ------------------------------------------------------------------------------ helpers

def _connect(p: Path, mode: str, timeout_s: float,
             check_same_thread: bool) -> sqlite3.Connection:
    return sqlite3.connect(f"{p.resolve().as_uri()}?mode={mode}", uri=True,
                           isolation_level=None, timeout=timeout_s,
                           check_same_thread=check_same_thread)


def _forget_shm(shm: Path, existed: bool) -> None:
    """Remove a ``-shm`` a failed read-only check created (nobody else can be using it)."""
    if not existed:
        shm.unlink(missing_ok=True)


def _side_files(p: Path) -> list[Path]:
    return [p] + [p.with_name(p.name + s) for s in ("-wal", "-shm", "-journal")]


def _few(names: list[str], limit: int = 4) -> str:
    return ", ".join(names[:limit]) + (f" and {len(names) - limit} more" if len(names) > limit
                                       else "")


def _short(text: str, limit: int = 160) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 3] + "..."
