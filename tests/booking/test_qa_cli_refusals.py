"""Acceptance pass: a refused hold or confirm in the local CLI says what is in the way.

The store's message is for logs (``overlap: BK1 and BK2 overlap on SZ-3``, ISO times,
``lacks ['xr']``, and a placement outside the window as the input contract's
``bookings[0].start``); the producer reads the desk's sentences: which booking (production,
status) holds the stage and when, in the site's zone, which capability is missing.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from stagectl.cli.main import app

ROOT = Path(__file__).resolve().parents[2]
STAGES = ROOT / "configs" / "booking" / "stages.json"
runner = CliRunner()


def _book(db: Path, *args: str, code: int = 0) -> str:
    result = runner.invoke(app, ["book", *args, "--db", str(db)], env={"COLUMNS": "200"})
    out = result.stdout + result.stderr
    assert result.exit_code == code, (out, result.exception)
    return out


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "b.sqlite"
    _book(path, "setup", str(STAGES))
    _book(path, "request", "--id", "A", "--production", "Dune", "--duration-minutes", "120",
          "--earliest-start", "2031-03-04", "--latest-end", "2031-03-05",
          "--requires", "xr")
    _book(path, "hold", "A", "--stage", "SZ-3", "--start", "2031-03-04 10:00")
    _book(path, "confirm", "A")
    _book(path, "request", "--id", "B", "--production", "Sky", "--duration-minutes", "60",
          "--earliest-start", "2031-03-04", "--latest-end", "2031-03-05", "--requires", "xr")
    return path


def test_hold_on_a_taken_stage_names_the_booking_and_its_local_time(db: Path) -> None:
    out = _book(db, "hold", "B", "--stage", "SZ-3", "--start", "2031-03-04 12:30", code=1)
    assert "SZ-3 is taken by A (Dune, confirmed) 2031-03-04 10:00–12:00 CST" in out
    assert "changeover" in out
    assert "overlap:" not in out and "T12:30:00+08:00" not in out


def test_hold_on_a_stage_without_the_capability_names_it_in_words(db: Path) -> None:
    out = _book(db, "hold", "B", "--stage", "NS-2", "--start", "2031-03-04 14:00", code=1)
    assert "NS-2 lacks xr, which this booking requires (it has arm, led_8k)" in out
    assert "['xr']" not in out


def test_hold_off_the_grid_says_so_in_local_time(db: Path) -> None:
    out = _book(db, "hold", "B", "--stage", "SZ-1", "--start", "2031-03-04 14:07", code=1)
    assert "the start 2031-03-04 14:07 CST is not on the 15-minute grid" in out


def test_hold_outside_the_window_is_bad_input_in_words(db: Path) -> None:
    out = _book(db, "hold", "B", "--stage", "SZ-1", "--start", "2031-03-07 01:00", code=2)
    assert "is outside the booking's window 2031-03-04 00:00 – 03-06 00:00 CST" in out
    assert "bookings[0]" not in out


def test_first_hold_ahead_keeps_the_cli_command_to_run(db: Path) -> None:
    _book(db, "request", "--id", "C", "--production", "Sea", "--duration-minutes", "60",
          "--earliest-start", "2031-03-04", "--latest-end", "2031-03-05")
    _book(db, "request", "--id", "D", "--production", "Sun", "--duration-minutes", "60",
          "--earliest-start", "2031-03-04", "--latest-end", "2031-03-05")
    _book(db, "hold", "C", "--stage", "HP-1", "--start", "2031-03-04 10:00")
    _book(db, "hold", "D", "--stage", "HP-1", "--start", "2031-03-04 10:00")
    out = _book(db, "confirm", "D", code=1)
    assert "C holds HP-1 first" in out and "stagectl book challenge D" in out
