import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from stagectl.cli.main import app
from tests.booking.helpers import at, booking, doc, stages_doc

runner = CliRunner()


def run(*args: str, code: int = 0) -> str:
    result = runner.invoke(app, ["book", *args])
    assert result.exit_code == code, (result.output, getattr(result, "stderr", ""))
    return result.output


@pytest.fixture
def db(booking_db: Path | str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path | str:
    """A store set up by `book setup`: an SQLite file, then a PostgreSQL database."""
    path = booking_db
    monkeypatch.setenv("STAGECTL_BOOKING_DB", str(path))
    cfg = tmp_path / "stages.json"
    cfg.write_text(json.dumps(stages_doc()))
    run("setup", str(cfg))
    return path


def test_solve_contract(tmp_path: Path) -> None:
    inp = tmp_path / "in.json"
    out = tmp_path / "out.json"
    inp.write_text(json.dumps(doc(
        booking("low", priority=1, requires=["arm"], duration_minutes=480),
        booking("high", priority=5, requires=["arm"], duration_minutes=480),
    )))
    run("solve", "--input", str(inp), "--output", str(out), "--time-limit", "5")
    res = json.loads(out.read_text())
    assert set(res) >= {"status", "objective", "bound", "greedy_objective", "solve_seconds",
                        "assignments", "rejected"}
    assert res["objective"] == 40 and res["greedy_objective"] == 8
    assert res["assignments"][0]["id"] == "high"
    assert res["assignments"][0]["start"].endswith("+08:00")
    assert res["rejected"][0]["id"] == "low"


def test_solve_bad_input_exit_2(tmp_path: Path) -> None:
    d = doc(*(booking(f"B{i}") for i in range(4)))
    d["bookings"][3]["duration_minutes"] = -15
    inp = tmp_path / "bad.json"
    inp.write_text(json.dumps(d))
    result = runner.invoke(app, ["book", "solve", "--input", str(inp), "--output",
                                 str(tmp_path / "o.json")])
    assert result.exit_code == 2
    assert "bookings[3].duration_minutes: must be > 0, got -15" in result.output
    assert not (tmp_path / "o.json").exists()


def test_lifecycle_via_cli(db: Path) -> None:
    run("request", "--id", "A", "--production", "Dune", "--duration-minutes", "240",
        "--earliest-start", at(8), "--latest-end", at(20), "--stage", "NS-1", "--start", at(10))
    run("request", "--id", "B", "--production", "Sky", "--duration-minutes", "240",
        "--earliest-start", at(8), "--latest-end", at(20), "--stage", "NS-1", "--start", at(10),
        "--pool", "arm_kits=1")
    run("hold", "A")
    held = json.loads(run("hold", "B", "--json"))
    assert held[0]["hold_rank"] == 2
    assert "A holds NS-1 first" in run("confirm", "B", code=1)
    run("release", "A", "--reason", "moved shoot")
    assert json.loads(run("confirm", "B", "--json"))[0]["status"] == "confirmed"
    rows = json.loads(run("list", "--json", "--status", "released"))
    assert [r["id"] for r in rows] == ["A"]
    hist = json.loads(run("list", "--history", "A", "--json"))
    assert [h["action"] for h in hist] == ["request", "hold", "release"]
    assert "no booking 'Z'" in run("cancel", "Z", code=1)
    rep = json.loads(run("report", "--from", at(0), "--to", at(0, 5), "--json"))
    ns = next(r for r in rep["stages"] if r["stage"] == "NS-1")
    assert ns["booked_hours"] == 4 and ns["available_hours"] == 24
    assert "utilisation per site" in run("report", "--from", at(0), "--to", at(0, 5))
    out = json.loads(run("outage", "NS-1", "--from", at(9), "--to", at(11), "--json"))
    assert [m["id"] for m in out["moved"]] == ["B"]
    ics = run("ics", "--stage", "NS-1")
    assert "BEGIN:VCALENDAR" in ics
    assert "give exactly one" in run("ics", code=2)
    # a start without an offset is read in the stage's zone (and said so); the one error is
    # the real one
    said = run("hold", "A", "--stage", "NS-1", "--start", "2031-05-04T10:00", code=1)
    assert "read as 2031-05-04 10:00 Asia/Shanghai" in said
    assert said.count("error:") == 1 and "A is released" in said


def test_solve_from_database(db: Path) -> None:
    run("request", "--id", "A", "--production", "Dune", "--duration-minutes", "240",
        "--earliest-start", at(8), "--latest-end", at(20))
    res = json.loads(run("solve", "--apply", "--json", "--time-limit", "3"))
    assert res["assignments"][0]["id"] == "A"
    assert json.loads(run("list", "--json"))[0]["status"] == "hold"
