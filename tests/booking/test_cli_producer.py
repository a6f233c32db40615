"""`stagectl book` used as a producer would, at 80 columns, on real SQLite and PostgreSQL stores.

Each test drives the real CLI (typer's runner, and the console script in a subprocess for the
terminal-width checks) over a database made by `book setup` from the shipped stage config,
and checks what a producer reads: local times with the zone named, tables that wrap instead
of cutting, a rejection that says which capability is missing where, a solve that says who
got which stage when, one clear error per real mistake, and JSON that stays ISO 8601 with
offsets.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from scheduler.booking.checker import check_plan
from scheduler.booking.explain import missing_capabilities, static_reason
from scheduler.booking.model import Assignment
from scheduler.booking.parse import problem_from_dict
from stagectl.cli.main import app

ROOT = Path(__file__).resolve().parents[2]
STAGES = ROOT / "configs" / "booking" / "stages.json"
runner = CliRunner()


class Said:
    """What one command printed: stdout, stderr, and both together."""

    def __init__(self, stdout: str, stderr: str, code: int) -> None:
        self.stdout, self.stderr, self.code = stdout, stderr, code
        self.all = stdout + stderr

    def json(self) -> object:
        return json.loads(self.stdout)


def book(*args: str, code: int = 0) -> Said:
    result = runner.invoke(app, ["book", *args])
    said = Said(result.stdout, result.stderr, result.exit_code)
    assert result.exit_code == code, (said.all, result.exception)
    return said


def book_process(*args: str, env: dict[str, str], code: int = 0) -> Said:
    """The installed console script's code path, in its own process, output piped."""
    proc = subprocess.run(
        [sys.executable, "-c", "from stagectl.cli.main import main; main()", "book", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False)
    said = Said(proc.stdout, proc.stderr, proc.returncode)
    assert proc.returncode == code, said.all
    return said


def assert_fits(text: str, width: int = 80) -> None:
    for line in text.splitlines():
        assert len(line) <= width, f"{len(line)} columns: {line!r}"
    assert "…" not in text, text  # wrapped, never cut


@pytest.fixture
def db(booking_db: Path | str, monkeypatch: pytest.MonkeyPatch) -> Path | str:
    """A store set up by `book setup`: an SQLite file, then a PostgreSQL database."""
    path = booking_db
    monkeypatch.setenv("STAGECTL_BOOKING_DB", str(path))
    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.setenv("STAGECTL_ACTOR", "producer")
    book("setup", str(STAGES))
    return path


def request(*extra: str, code: int = 0) -> Said:
    return book("request", "--production", "Dune", "--duration-minutes", "240",
                "--earliest-start", "2031-03-04T08:00+08:00",
                "--latest-end", "2031-03-04T20:00+08:00", *extra, code=code)


# --- times: shown local with the zone named, tables at 80 columns ------------------------


def test_list_shows_site_time_with_zone_and_fits_80_columns(db: Path) -> None:
    request("--id", "A", "--stage", "NS-2", "--start", "2031-03-04T08:00+08:00")
    book("hold", "A")
    request("--id", "B", "--production", "The Very Long Production Name Of A Feature Film")
    out = book("list").stdout
    assert_fits(out)
    assert "+00:00" not in out and "T00:00" not in out
    assert "2031-03-04" in out and "08:00–12:00" in out  # A's slot, local
    assert "08:00–20:00" in out  # the requested window of B is shown
    assert "Asia/Shanghai" in out and "UTC+08:00" in out  # the zone is named
    # a requested booking shows its window and how long it needs
    b_rows = out[out.index("│ B "):]
    assert "4 h in" in b_rows


def test_list_at_80_columns_in_a_real_process(db: Path, tmp_path: Path) -> None:
    request("--id", "A", "--stage", "NS-2", "--start", "2031-03-04T08:00+08:00")
    book("hold", "A")
    env = dict(os.environ, COLUMNS="80", STAGECTL_BOOKING_DB=str(db))
    out = book_process("list", env=env).stdout
    assert_fits(out)
    assert "hold #1" in out and "08:00–12:00" in out and "Asia/Shanghai" in out
    hist = book_process("list", "--history", "A", env=env).stdout
    assert_fits(hist)
    assert "→" in hist and "hold" in hist and "Asia/Shanghai" in hist
    env.pop("COLUMNS")  # piped with no COLUMNS: rich's default of 80
    assert_fits(book_process("list", env=env).stdout)


def test_history_times_are_local(db: Path) -> None:
    request("--id", "A")
    hist = book("list", "--history", "A", "--json").json()
    assert isinstance(hist, list)
    at = datetime.fromisoformat(hist[0]["at"])
    assert at.utcoffset() == timedelta(hours=8)
    table = book("list", "--history", "A").stdout
    assert at.strftime("%Y-%m-%d") in table and "+00:00" not in table
    assert_fits(table)


def test_hong_kong_stage_shows_and_reads_hong_kong_time(db: Path, tmp_path: Path) -> None:
    cfg = json.loads(STAGES.read_text())
    cfg["stages"].append({"id": "HK-1", "site": "Hong Kong", "timezone": "Asia/Hong_Kong",
                          "capabilities": ["led_8k"], "changeover_minutes": 0})
    hk = tmp_path / "hk.json"
    hk.write_text(json.dumps(cfg))
    book("setup", str(hk))
    said = request("--id", "H", "--stage", "HK-1", "--start", "2031-03-04 09:00")
    assert "read as 2031-03-04 09:00 Asia/Hong_Kong" in said.stderr
    rows = book("list", "--json").json()
    assert isinstance(rows, list)
    assert rows[0]["timezone"] == "Asia/Hong_Kong"
    assert rows[0]["start"] == "2031-03-04T09:00:00+08:00"
    out = book("list").stdout
    assert "Asia/Hong_Kong" in out and "HKT" in out
    assert_fits(out)


# --- the rejection says which capability is missing where --------------------------------


def test_rejection_names_missing_capability_per_allowed_stage(db: Path) -> None:
    request("--id", "R010", "--requires", "arm", "--requires", "xr",
            "--allow-stage", "NS-1", "--allow-stage", "NS-2", "--allow-stage", "NS-3")
    out = book("solve").stdout
    assert_fits(out)
    flat = " ".join(out.replace("│", " ").split())
    assert "has every required capability" not in flat
    assert "none of its allowed stages has both arm and xr" in flat
    assert "NS-1 lacks arm and xr" in flat
    assert "NS-2 lacks xr" in flat
    assert "NS-3 lacks arm" in flat
    assert "SZ-2 has them but is not allowed" in flat
    doc = book("solve", "--json").json()
    assert isinstance(doc, dict)
    assert "NS-2 lacks xr" in doc["rejected"][0]["reason"]


def test_explanation_agrees_with_the_checker() -> None:
    """The "lacks" of the explanation is what the checker finds placing it on each stage."""
    cfg = json.loads(STAGES.read_text())
    cfg["bookings"] = [{"id": "R010", "priority": 1, "duration_minutes": 240,
                        "earliest_start": "2031-03-04T08:00:00+08:00",
                        "latest_end": "2031-03-04T20:00:00+08:00",
                        "requires": ["arm", "xr"], "stages": ["NS-1", "NS-2", "NS-3"]}]
    problem = problem_from_dict(cfg)
    b = problem.bookings[0]
    start = b.earliest_start
    lacks = missing_capabilities(problem, b)
    assert set(lacks) == {"NS-1", "NS-2", "NS-3"}
    reason = static_reason(problem, b)
    assert reason is not None
    for sid in ("NS-1", "NS-2", "NS-3"):
        found = [v for v in check_plan(problem, [Assignment("R010", sid, start,
                                                            start + timedelta(hours=4))])
                 if v.kind == "capability"]
        assert len(found) == 1
        said = re.search(r"lacks \[(.*)\]", found[0].message)
        assert said is not None
        checker_lacks = sorted(x.strip(" '") for x in said.group(1).split(","))
        assert checker_lacks == lacks[sid]
        words = " and ".join(checker_lacks)
        assert f"{sid} lacks {words}" in reason
    # a stage that has everything is not called lacking
    cfg["bookings"][0]["stages"] = ["NS-2", "SZ-2"]
    ok = problem_from_dict(cfg)
    assert static_reason(ok, ok.bookings[0]) is None


# --- solve: who got which stage when, then the figures -----------------------------------


def test_solve_shows_assignments_before_statistics(db: Path) -> None:
    request("--id", "A", "--production", "Dune")
    request("--id", "B", "--production", "Sky", "--requires", "xr")
    out = book("solve", "--apply").stdout
    assert_fits(out)
    assert out.index("booking") < out.index("objective")
    rows = book("list", "--json").json()
    assert isinstance(rows, list)
    for r in rows:
        assert r["status"] == "hold"
        start = datetime.fromisoformat(r["start"])
        line = next(ln for ln in out.splitlines() if f"│ {r['id']} " in ln)
        assert r["production"] in line and r["stage"] in line
        assert start.strftime("%H:%M") in line  # local start, as typed (08:00)
    assert "Asia/Shanghai" in out
    assert "stored" in out


def test_solve_preview_says_nothing_is_stored(db: Path) -> None:
    request("--id", "A")
    out = book("solve").stdout
    assert "add --apply" in out
    rows = book("list", "--json").json()
    assert isinstance(rows, list) and rows[0]["status"] == "requested"


# --- typed times: read in the site's zone, said so; one error for one mistake ------------


def test_start_without_offset_is_read_in_site_zone(db: Path) -> None:
    said = book("request", "--id", "A", "--production", "Dune", "--duration-minutes", "240",
                "--earliest-start", "2031-03-04T08:00", "--latest-end", "2031-03-04 20:00",
                "--stage", "NS-1", "--start", "2031-03-04T08:00")
    assert "error" not in said.all
    assert "--start 2031-03-04T08:00 read as 2031-03-04 08:00 Asia/Shanghai (UTC+08:00)" \
        in said.stderr
    assert "--earliest-start 2031-03-04T08:00 read as 2031-03-04 08:00 Asia/Shanghai" \
        in said.stderr
    rows = book("list", "--json").json()
    assert isinstance(rows, list)
    assert rows[0]["start"] == "2031-03-04T08:00:00+08:00"
    assert rows[0]["latest_end"] == "2031-03-04T20:00:00+08:00"


def test_a_real_mistake_gives_one_clear_error(db: Path) -> None:
    said = request("--stage", "NS-1", "--start", "2031-13-04T08:00", code=2)
    assert said.all.count("error:") == 1
    assert "--start" in said.all and "2031-13-04T08:00" in said.all
    assert "together" not in said.all
    said = request("--start", "2031-03-04T08:00+08:00", code=2)
    assert said.all.count("error:") == 1 and "--stage and --start go together" in said.all
    said = request("--stage", "NS-9", "--start", "2031-03-04T08:00+08:00", code=2)
    assert said.all.count("error:") == 1 and "unknown stage 'NS-9'" in said.all
    assert book("list", "--json").json() == []


def test_solve_input_start_without_offset_is_one_error(tmp_path: Path) -> None:
    cfg = json.loads(STAGES.read_text())
    cfg["bookings"] = [{"id": "A", "priority": 1, "duration_minutes": 240,
                        "earliest_start": "2031-03-04T08:00:00+08:00",
                        "latest_end": "2031-03-04T20:00:00+08:00",
                        "stage": "NS-1", "start": "2031-03-04T08:00"}]
    inp = tmp_path / "in.json"
    inp.write_text(json.dumps(cfg))
    said = book("solve", "--input", str(inp), code=2)
    assert said.all.count("error:") == 1, said.all
    assert "bookings[0].start: must carry a UTC offset" in said.all


def test_zones_that_disagree_need_an_offset(db: Path, tmp_path: Path) -> None:
    cfg = json.loads(STAGES.read_text())
    cfg["stages"].append({"id": "LDN-1", "site": "London", "timezone": "Europe/London",
                          "capabilities": ["led_8k"]})
    f = tmp_path / "ldn.json"
    f.write_text(json.dumps(cfg))
    book("setup", str(f))
    said = book("request", "--production", "Dune", "--duration-minutes", "60",
                "--earliest-start", "2031-03-04 08:00", "--latest-end",
                "2031-03-04T20:00+08:00", "--requires", "led_8k", code=2)
    assert said.all.count("error:") == 1
    assert "Europe/London UTC+00:00" in said.all and "add an offset" in said.all
    # naming the stage settles it
    ok = book("request", "--production", "Dune", "--duration-minutes", "60",
              "--earliest-start", "2031-03-04 08:00", "--latest-end", "2031-03-04 20:00",
              "--stage", "LDN-1", "--start", "2031-03-04 09:00", "--json")
    rows = ok.json()
    assert isinstance(rows, list) and rows[0]["start"] == "2031-03-04T09:00:00+00:00"
    assert "Europe/London" in ok.stderr


def test_report_accepts_a_date_and_times(db: Path) -> None:
    request("--id", "A", "--stage", "NS-2", "--start", "2031-03-04T08:00+08:00")
    book("hold", "A")
    book("confirm", "A")
    said = book("report", "--from", "2031-03-01", "--to", "2031-03-31", "--json")
    assert "read as 2031-03-01 00:00 Asia/Shanghai" in said.stderr
    doc = said.json()
    assert isinstance(doc, dict)
    assert doc["from"] == "2031-03-01T00:00:00+08:00"
    assert doc["to"] == "2031-04-01T00:00:00+08:00"  # the whole of 03-31
    ns2 = next(r for r in doc["stages"] if r["stage"] == "NS-2")
    assert ns2["booked_hours"] == 4
    for start in ("2031-03-04T06:00", "2031-03-04T06:00+08:00", "2031-03-03T22:00Z",
                  "2031-03-04 06:00 Asia/Shanghai"):
        d = book("report", "--from", start, "--to", "2031-03-04", "--json").json()
        assert isinstance(d, dict)
        assert datetime.fromisoformat(d["from"]) == datetime.fromisoformat(
            "2031-03-04T06:00+08:00"), start
        assert next(r for r in d["stages"] if r["stage"] == "NS-2")["booked_hours"] == 4
    table = book("report", "--from", "2031-03-01").stdout
    assert_fits(table)
    assert "2031-03-01 00:00" in table and "Asia/Shanghai" in table
    bad = book("report", "--from", "1 March", code=2)
    assert bad.all.count("error:") == 1 and "--from" in bad.all


def test_outage_times_read_in_the_stage_zone(db: Path) -> None:
    request("--id", "A", "--stage", "NS-2", "--start", "2031-03-04T08:00+08:00")
    book("hold", "A")
    said = book("outage", "NS-2", "--from", "2031-03-04 07:00", "--to", "2031-03-04 13:00",
                "--json")
    doc = said.json()
    assert isinstance(doc, dict)
    assert doc["from"] == "2031-03-04T07:00:00+08:00"
    assert [m["id"] for m in doc["moved"]] == ["A"]
    assert doc["moved"][0]["to_start"].endswith("+08:00")
    assert "read as 2031-03-04 07:00 Asia/Shanghai" in said.stderr


# --- fresh databases, unknown capabilities ------------------------------------------------


def test_database_without_stages_points_to_setup(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    path = tmp_path / "fresh.sqlite"
    empty = tmp_path / "empty.json"
    empty.write_text("{}")
    said = book("setup", str(empty), "--db", str(path), code=2)
    assert "lists no stages" in said.all and "damaged" not in said.all
    # a database with no stages (made by an older setup, or by hand): say what to run
    from scheduler.booking.store import BookingStore

    BookingStore(path, create=True).close()
    said = book("request", "--db", str(path), "--production", "Dune", "--duration-minutes",
                "60", "--earliest-start", "2031-03-04T08:00+08:00", "--latest-end",
                "2031-03-04T20:00+08:00", code=1)
    assert said.all.count("error:") == 1
    assert f"stagectl book setup configs/booking/stages.json --db {path}" in said.all
    assert "must list at least one stage" not in said.all
    for cmd in (["list"], ["solve"], ["report"], ["hold", "A"]):
        again = book(*cmd, "--db", str(path), code=1)
        assert "stagectl book setup" in again.all, cmd


def test_unknown_capability_is_refused_listing_the_known_ones(db: Path) -> None:
    said = request("--requires", "hologram", code=2)
    assert said.all.count("error:") == 1
    assert "unknown capability 'hologram'" in said.all
    for cap in ("arm", "ceiling", "led_8k", "volumetric", "xr"):
        assert cap in said.all
    assert book("list", "--json").json() == []
    request("--requires", "xr")  # a known one still works


# --- --json stays machine-readable with offsets ------------------------------------------


OLD_KEYS = {"id", "status", "production", "contact", "priority", "duration_minutes", "stage",
            "start", "end", "hold_rank", "sequence", "challenged_by", "challenge_deadline"}


def test_json_keeps_keys_and_uses_offsets(db: Path) -> None:
    said = request("--id", "A", "--json")
    rows = said.json()
    assert isinstance(rows, list)
    assert OLD_KEYS <= set(rows[0])
    book("solve", "--apply")
    said = book("list", "--json")
    assert said.stderr == ""
    rows = said.json()
    assert isinstance(rows, list)
    r = rows[0]
    assert OLD_KEYS <= set(r)
    for key in ("start", "end", "earliest_start", "latest_end"):
        dt = datetime.fromisoformat(r[key])
        assert dt.utcoffset() == timedelta(hours=8), (key, r[key])
    assert r["start"] == "2031-03-04T08:00:00+08:00"
    assert r["timezone"] == "Asia/Shanghai"
    # notes go to stderr, so stdout stays JSON even when a time was read in the zone
    said = book("request", "--id", "B", "--production", "Sky", "--duration-minutes", "60",
                "--earliest-start", "2031-03-05", "--latest-end", "2031-03-05", "--json")
    assert "read as" in said.stderr
    rows = said.json()
    assert isinstance(rows, list)
    assert rows[0]["earliest_start"] == "2031-03-05T00:00:00+08:00"
    assert rows[0]["latest_end"] == "2031-03-06T00:00:00+08:00"


def test_a_window_shorter_than_the_time_asked_is_refused(db: Path) -> None:
    said = book("request", "--production", "Dune", "--duration-minutes", "600",
                "--earliest-start", "2031-03-04 08:00", "--latest-end", "2031-03-04 12:00",
                code=2)
    assert said.all.count("error:") == 1
    assert "2031-03-04 08:00–12:00" in said.all and "600" in said.all
    assert book("list", "--json").json() == []


def test_window_reason_is_in_site_time(tmp_path: Path) -> None:
    """The solver's own reason for a window too short (JSON input) names local times."""
    cfg = json.loads(STAGES.read_text())
    cfg["bookings"] = [{"id": "W", "priority": 1, "duration_minutes": 600,
                        "earliest_start": "2031-03-04T00:00:00+00:00",
                        "latest_end": "2031-03-04T04:00:00+00:00"}]
    inp = tmp_path / "in.json"
    inp.write_text(json.dumps(cfg))
    doc = json.loads(book("solve", "--input", str(inp)).stdout)
    reason = doc["rejected"][0]["reason"]
    assert "2031-03-04 08:00 – 12:00 (Asia/Shanghai)" in reason
    assert "600 minutes" in reason and "+00:00" not in reason


def test_applied_plan_shows_what_the_store_now_holds(db: Path) -> None:
    request("--id", "A")
    out = book("solve", "--apply").stdout
    line = next(ln for ln in out.splitlines() if "│ A " in ln)
    assert "hold #1" in line


def test_request_kept_at_its_wished_slot_becomes_a_hold(db: Path) -> None:
    request("--id", "A", "--stage", "NS-2", "--start", "2031-03-04T08:00+08:00")
    out = book("solve", "--apply").stdout
    line = next(ln for ln in out.splitlines() if "│ A " in ln)
    assert "NS-2" in line  # the plan keeps the wish...
    rows = book("list", "--json").json()
    assert isinstance(rows, list)
    assert rows[0]["status"] == "hold"  # ...and the store should hold it
