"""Ctrl-C during ``book solve``: the search stops, the best plan so far is shown, nothing is
stored, exit 130, no traceback (real processes and a real SIGINT); and the library side."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from scheduler.booking.checker import check_plan
from scheduler.booking.generate import generate_month
from scheduler.booking.parse import problem_from_dict
from scheduler.booking.solve import SolveInterrupted, solve
from scheduler.booking.store import BookingStore

ROOT = Path(__file__).resolve().parents[2]
LIMIT_S = 60  # far longer than the test waits: a plan back before it means the stop worked


def _month() -> dict[str, Any]:
    # overloaded: CP-SAT cannot place everything, so it searches until stopped
    return generate_month(seed=3, demand="overloaded", n_requests=300)


def _seed(db: Path | str) -> None:
    doc = _month()
    with BookingStore(db) as s:
        s.setup({k: v for k, v in doc.items() if k != "bookings"})
        for b in doc["bookings"]:
            if b.get("status", "requested") == "requested":
                s.request({k: v for k, v in b.items() if k not in ("status", "hold_rank")},
                          "seed")


def _snapshot(db: Path | str) -> tuple[Any, ...]:
    with BookingStore(db) as s:
        rows = sorted((r.id, r.status.value, r.booking.stage, r.booking.start, r.sequence)
                      for r in s.records())
        return s.version(), len(s.history()), tuple(rows)


def _solve_then_ctrl_c(*args: str) -> tuple[int, str, str]:
    """Start ``book solve``, wait until it says it is solving, send SIGINT, collect."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "stagectl", "book", "solve", "--time-limit", str(LIMIT_S),
         *args], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "COLUMNS": "100"})
    assert proc.stderr is not None
    try:
        first = proc.stderr.readline()
        assert first.startswith("solving:"), first
        proc.send_signal(signal.SIGINT)
        out, rest = proc.communicate(timeout=LIMIT_S / 2)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return proc.returncode, out, first + rest


def _stopped_after_s(stderr: str) -> float:
    m = re.search(r"interrupted: search interrupted after ([0-9.]+) s; nothing was stored",
                  stderr)
    assert m, stderr
    return float(m.group(1))


@pytest.mark.parametrize("apply", [False, True], ids=["preview", "apply"])
def test_ctrl_c_stops_the_solve_and_stores_nothing(booking_db: Path | str, apply: bool) -> None:
    _seed(booking_db)
    before = _snapshot(booking_db)
    code, out, err = _solve_then_ctrl_c("--db", str(booking_db), *(["--apply"] if apply else []))
    assert code == 130, (out, err)
    assert "Traceback" not in err and "Aborted" not in err, err
    assert _stopped_after_s(err) < LIMIT_S / 2
    assert "plan so far (interrupted by Ctrl-C: nothing stored or written)" in out
    assert "stored)" not in out.replace("nothing stored or written)", "")
    assert _snapshot(booking_db) == before


def test_ctrl_c_with_input_writes_no_output(tmp_path: Path) -> None:
    import json

    inp, outp = tmp_path / "month.json", tmp_path / "plan.json"
    inp.write_text(json.dumps(_month()))
    code, out, err = _solve_then_ctrl_c("--input", str(inp), "--output", str(outp))
    assert code == 130, (out, err)
    assert "Traceback" not in err, err
    assert _stopped_after_s(err) < LIMIT_S / 2
    assert not outp.exists()


def test_interrupt_from_another_thread_returns_the_checked_plan_so_far() -> None:
    problem = problem_from_dict(_month())
    stop = threading.Event()
    # whether it fires before or during the search, the solve must come back interrupted
    timer = threading.Timer(1.0, stop.set)
    timer.start()
    try:
        with pytest.raises(SolveInterrupted) as caught:
            solve(problem, LIMIT_S, interrupt=stop)
    finally:
        timer.cancel()
    plan = caught.value.plan
    assert plan.solve_seconds < LIMIT_S / 2
    assert not check_plan(problem, plan.assignments, [r.id for r in plan.rejected])
    assert plan.objective >= plan.greedy_objective
    assert len(plan.assignments) + len(plan.rejected) == len(problem.bookings)


def test_interrupt_set_before_the_search_gives_the_warm_start() -> None:
    problem = problem_from_dict(_month())
    stop = threading.Event()
    stop.set()
    with pytest.raises(SolveInterrupted) as caught:
        solve(problem, LIMIT_S, interrupt=stop)
    plan = caught.value.plan
    assert plan.source == "greedy"
    assert not check_plan(problem, plan.assignments, [r.id for r in plan.rejected])


def test_without_interrupt_a_solve_is_unchanged() -> None:
    problem = problem_from_dict(generate_month(seed=3, demand="normal", n_requests=20))
    stop = threading.Event()
    plan = solve(problem, 5, interrupt=stop)  # never set: an ordinary plan, no exception
    assert plan.status in ("optimal", "feasible")
    assert not check_plan(problem, plan.assignments, [r.id for r in plan.rejected])


KEEPS_HANDLER = """
import os, signal, threading
from scheduler.booking.generate import generate_month
from scheduler.booking.parse import problem_from_dict
from scheduler.booking.solve import solve
hits = []
signal.signal(signal.SIGINT, lambda signum, frame: hits.append(signum))
problem = problem_from_dict(generate_month(seed=3, demand="normal", n_requests=30))
solve(problem, 2)                                  # as the CLI's outage re-plan does
worker = threading.Thread(target=solve, args=(problem, 2))
worker.start()                                     # as the desk does, on a worker thread
worker.join()
os.kill(os.getpid(), signal.SIGINT)
print("handled", len(hits))
"""


def test_a_solve_leaves_the_process_sigint_handler_alone() -> None:
    """CP-SAT's own SIGINT catching resets SIGINT to SIG_DFL when a solve returns: the next
    Ctrl-C would kill a desk or a CLI outright, with no cleanup. It is turned off."""
    done = subprocess.run([sys.executable, "-c", KEEPS_HANDLER], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, (done.returncode, done.stderr)
    assert done.stdout.split() == ["handled", "1"], done.stdout


def test_ctrl_c_during_an_outage_re_plan_finishes_it_whole(tmp_path: Path) -> None:
    """``book outage`` records the outage, then re-plans and moves what it hits: a Ctrl-C
    between the two must not leave the outage recorded with its bookings still on it."""
    import time
    from collections import Counter
    from datetime import datetime, timedelta

    from scheduler.booking.model import Status

    db = tmp_path / "booking.sqlite"
    _seed(db)
    with BookingStore(db) as s:
        s.solve(3, "seed", apply=True)  # the requests become holds
        holds = s.records(frozenset({Status.HOLD}))
        stage = Counter(r.booking.stage for r in holds if r.booking.stage).most_common(1)[0][0]
    assert stage is not None
    start, end = "2031-03-01T00:00:00+08:00", "2031-04-15T00:00:00+08:00"
    proc = subprocess.Popen(
        [sys.executable, "-m", "stagectl", "book", "outage", stage, "--from", start, "--to", end,
         "--time-limit", "8", "--db", str(db), "--json"], cwd=ROOT, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    try:
        recorded = False
        while proc.poll() is None and not recorded:
            with BookingStore(db) as s:
                recorded = bool(s.outages())
            time.sleep(0.02)
        if recorded:
            proc.send_signal(signal.SIGINT)  # the re-plan runs now (or has just finished)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert recorded and proc.returncode == 0, (proc.returncode, err)
    assert "Traceback" not in err and "Aborted" not in err, err
    lo, hi = datetime.fromisoformat(start), datetime.fromisoformat(end)
    with BookingStore(db) as s:
        assert len(s.outages()) == 1
        still = [r.id for r in s.records(frozenset({Status.HOLD, Status.CONFIRMED}))
                 if r.booking.stage == stage and r.booking.start is not None
                 and r.booking.start < hi
                 and lo < r.booking.start + timedelta(minutes=r.booking.duration_minutes)]
    assert still == [], still
