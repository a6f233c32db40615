"""Real processes against a real SQLite file: races and kill -9."""

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from scheduler.booking.checker import check_plan
from scheduler.booking.model import Assignment, Status
from scheduler.booking.store import BookingStore
from tests.booking.helpers import stages_doc

ROOT = Path(__file__).resolve().parents[2]


def spawn(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "tests.booking.worker", *args], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def make_db(tmp_path: Path) -> Path:
    db = tmp_path / "race.sqlite"
    with BookingStore(db) as s:
        s.setup(stages_doc())
    return db


def test_two_processes_confirm_same_slot_exactly_one_wins(tmp_path: Path) -> None:
    db = make_db(tmp_path)
    for round_ in range(3):
        go_at = time.time() + 1.5
        procs = [spawn("confirm-same", str(db), f"P{round_}{n}", str(go_at)) for n in "ab"]
        outs = []
        for p in procs:
            out, err = p.communicate(timeout=60)
            assert p.returncode == 0, err
            outs.append(out.strip())
        assert sorted(o.split()[0] for o in outs) == ["LOST", "WON"], outs
        with BookingStore(db) as s:
            confirmed = s.records(frozenset({Status.CONFIRMED}))
            assert len(confirmed) == 1
            s.cancel(confirmed[0].id, "test")


def test_kill_minus_nine_mid_write_loses_nothing_acknowledged(tmp_path: Path) -> None:
    db = make_db(tmp_path)
    p = spawn("writer", str(db))
    assert p.stdout is not None
    acked: list[str] = []
    deadline = time.time() + 60
    while len(acked) < 25 and time.time() < deadline:
        line = p.stdout.readline()
        if not line:
            break
        acked.append(line.strip())
    os.kill(p.pid, signal.SIGKILL)
    p.wait(timeout=10)
    p.stdout.close()
    assert p.stderr is not None
    err = p.stderr.read()
    p.stderr.close()
    assert len(acked) >= 25, err
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
    with BookingStore(db) as s:
        assert s.integrity_check() == "ok"
        confirmed = {r.id for r in s.records(frozenset({Status.CONFIRMED}))}
        assert set(acked) <= confirmed
        problem = s.problem()
        placed = [Assignment(b.id, b.stage, b.start, b.end) for b in problem.bookings
                  if b.status is Status.CONFIRMED and b.stage and b.start and b.end]
        assert check_plan(problem, placed) == []
