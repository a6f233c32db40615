"""Acceptance pass: `book outage` names the production of every booking it moves or cannot.

A producer reads "Dune moves from SZ-3 to …", not only booking ids; `book solve` already
names them.
"""

from __future__ import annotations

import re
from pathlib import Path

from typer.testing import CliRunner

from stagectl.cli.main import app

ROOT = Path(__file__).resolve().parents[2]
STAGES = ROOT / "configs" / "booking" / "stages.json"
runner = CliRunner()


def _book(db: Path, *args: str, code: int = 0) -> str:
    result = runner.invoke(app, ["book", *args, "--db", str(db)], env={"COLUMNS": "120"},
                           terminal_width=120)
    out = result.stdout + result.stderr
    assert result.exit_code == code, (out, result.exception)
    return out


def _placed(db: Path, booking_id: str, production: str, *extra: str,
            window: tuple[str, str] = ("2031-03-04", "2031-03-05")) -> None:
    _book(db, "request", "--id", booking_id, "--production", production,
          "--duration-minutes", "120", "--earliest-start", window[0],
          "--latest-end", window[1], *extra)
    _book(db, "hold", booking_id, "--stage", "SZ-3", "--start",
          "2031-03-04 10:00" if booking_id == "A" else "2031-03-04 14:00")
    _book(db, "confirm", booking_id)


def test_outage_tables_name_the_productions(tmp_path: Path) -> None:
    db = tmp_path / "b.sqlite"
    _book(db, "setup", str(STAGES))
    _placed(db, "A", "Dune")
    _placed(db, "B", "Sky", "--allow-stage", "SZ-3",  # nowhere else to go
            window=("2031-03-04 12:00", "2031-03-04 18:00"))
    out = _book(db, "outage", "SZ-3", "--from", "2031-03-04 09:00", "--to",
                "2031-03-05 18:00", "--preview")
    assert re.search(r"│ A\s+│ Dune\s+│ SZ-3 2031-03-04 10:00 CST │", out), out
    assert re.search(r"│ B\s+│ Sky\s+│", out), out
    assert "move 1, fail to move 1" in " ".join(out.split())
