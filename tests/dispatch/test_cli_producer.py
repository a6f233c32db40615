"""`stagectl farm status/submit/cost/demo` as a producer uses them: the real CLI process
against a real controller and agents on loopback, at 80 columns (issue 15)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from tests.dispatch.conftest import ROOT, Farm

WIDTH = 80


def cli(*args: str, tz: str | None = "Asia/Shanghai", cwd: Path = ROOT,
        timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": str(WIDTH), "PYTHONPATH": str(ROOT)}
    env.pop("STAGECTL_TZ", None)
    env.pop("STAGECTL_FARM_CONTROLLER", None)
    if tz is not None:
        env["STAGECTL_TZ"] = tz
    return subprocess.run([sys.executable, "-m", "stagectl", "farm", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def status(farm: Farm, *extra: str, tz: str | None = "Asia/Shanghai") -> str:
    result = cli("status", "--controller", farm.address, *extra, tz=tz)
    assert result.returncode == 0, result.stderr
    return result.stdout


def fits(text: str) -> None:
    lines = text.splitlines()
    assert lines, "no output"
    too_wide = [line for line in lines if len(line) > WIDTH]
    assert not too_wide, f"wider than {WIDTH} columns: {too_wide}"
    assert "…" not in text, f"a cell was cut instead of wrapped:\n{text}"


def flat(text: str) -> str:
    """The table's words in reading order, whatever the wrapping."""
    return " ".join(text.split())


def job_toml(path: Path, job_id: str, *, frames: int = 2, vram_gb: float = 0,
             deadline: str | None = None, sleep: float = 0.0) -> Path:
    argv = ["{python}", "-m", "tests.dispatch.work", "--frame", "{frame_start}",
            "--to-frame", "{frame_end}", "--out", "{output}", "--sleep", str(sleep)]
    lines = ["[[jobs]]", f'id = "{job_id}"', "frame_start = 1", f"frame_end = {frames}",
             "chunk_size = 1", f"argv = {json.dumps(argv)}", f'output = "{job_id}/f.####.png"',
             "estimate_s = 1.0", f"vram_gb = {vram_gb}"]
    if deadline is not None:
        lines.append(f"deadline_utc = {deadline}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def submit(farm: Farm, job_file: Path) -> str:
    result = cli("submit", str(job_file), "--controller", farm.address,
                 "--output-root", str(farm.tmp / "out"))
    assert result.returncode == 0, result.stderr
    return " ".join(result.stderr.split())


def wait_done(farm: Farm, job_id: str) -> None:
    farm.wait(lambda: any(j["id"] == job_id and j["state"] == "done"
                          for j in farm.request("status")["jobs"]), 30, f"{job_id} done")


def test_no_agents_is_a_warning_not_just_active(farm: Farm) -> None:
    farm.start_controller()
    (farm.tmp / "out").mkdir()
    said = submit(farm, job_toml(farm.tmp / "one.toml", "sh010-comp-final-v003", frames=1))
    assert said == "submitted sh010-comp-final-v003: 1 task", said
    out = status(farm)
    fits(out)
    assert "sh010-comp-final-v003" in out  # whole, not cut
    assert "waiting: no agents connected" in flat(out)
    assert "no agents connected and no compute pools: nothing can render" in flat(out)
    doc = json.loads(status(farm, "--json"))
    job = doc["jobs"][0]
    assert job["state"] == "active"  # the controller's keys are kept
    assert job["warning"].startswith("waiting: no agents connected")


def test_no_agent_big_enough_is_named(farm: Farm) -> None:
    farm.start_controller()
    (farm.tmp / "out").mkdir()
    farm.start_agent("rtx4090-01", "--vram-gb", "24")
    farm.wait_nodes(1)
    submit(farm, job_toml(farm.tmp / "big.toml", "lookdev", vram_gb=48))
    out = flat(status(farm))
    assert ("no agent can run it: it needs 48 GB VRAM; the largest connected is "
            "rtx4090-01 with 24 GB") in out, out
    assert "1 agent: 0 of 1 slot busy" in out, out


def test_finished_job_says_when_and_against_its_deadline(farm: Farm) -> None:
    farm.start_controller()
    (farm.tmp / "out").mkdir()
    farm.start_agent("n1")
    farm.wait_nodes(1)
    submit(farm, job_toml(farm.tmp / "early.toml", "early", deadline="2099-01-01T18:00:00+08:00"))
    submit(farm, job_toml(farm.tmp / "late.toml", "late", deadline="2020-01-01T18:00:00+08:00"))
    wait_done(farm, "early")
    wait_done(farm, "late")
    out = status(farm)
    fits(out)
    words = flat(out)
    assert "predicted" not in words and "LATE" not in words, out
    assert words.count("finished") == 2
    # each deadline with its year, in local time (the cell wraps date over time)
    assert re.search(r"2099-01-01 .*\n.* 18:00 ", out), out
    assert re.search(r"2020-01-01 .*\n.* 18:00 ", out), out
    assert "on time," in words and "early" in words
    assert "late by" in words
    assert "times in Asia/Shanghai (CST, UTC+08:00)" in words
    year = str(datetime.now().year)
    assert f"finished {year}-" in words  # not the deadline's date: the date is written

    doc = json.loads(status(farm, "--json"))
    by_id = {j["id"]: j for j in doc["jobs"]}
    for job in by_id.values():
        assert {"id", "state", "counts", "progress", "deadline_utc", "predicted_finish_utc",
                "late"} <= set(job)
        assert job["finished"].endswith("+08:00")
        shown = datetime.fromisoformat(job["finished"]).timestamp()
        assert abs(shown - job["finished_utc"]) < 1e-3  # the same instant
        assert job["predicted_finish"] is None
    assert by_id["early"]["deadline"] == "2099-01-01T18:00:00+08:00"
    assert by_id["late"]["late"] is True and by_id["early"]["late"] is False
    assert doc["timezone"] == "Asia/Shanghai" and doc["now"].endswith("+08:00")

    hk = json.loads(status(farm, "--json", tz="Hong Kong"))
    assert hk["timezone"] == "Asia/Hong_Kong"
    assert "times in Asia/Hong_Kong (HKT, UTC+08:00)" in flat(status(farm, tz="Asia/Hong_Kong"))
    bad = cli("status", "--controller", farm.address, "--tz", "Mars/Olympus")
    assert bad.returncode == 2 and "--tz: got 'Mars/Olympus'" in flat(bad.stderr)


def test_stage_config_names_the_zone(farm: Farm, tmp_path: Path) -> None:
    farm.start_controller()
    stage = tmp_path / "stage.toml"
    stage.write_text('[stage]\nname = "hk-1"\nsite = "Hong Kong"\n', encoding="utf-8")
    env_run = subprocess.run(
        [sys.executable, "-m", "stagectl", "farm", "status", "--controller", farm.address,
         "--json"], cwd=ROOT, capture_output=True, text=True, timeout=60,
        env={**{k: v for k, v in os.environ.items() if k != "STAGECTL_TZ"},
             "STAGECTL_CONFIG": str(stage), "PYTHONPATH": str(ROOT)})
    assert env_run.returncode == 0, env_run.stderr
    assert json.loads(env_run.stdout)["timezone"] == "Asia/Hong_Kong"


def test_no_controller_points_to_the_file(tmp_path: Path) -> None:
    result = cli("status", "--controller", "tcp://127.0.0.1:9", cwd=tmp_path, timeout=60)
    assert result.returncode == 1
    assert "stagectl farm status --db" in flat(result.stderr)


def test_cost_and_pool_only_farm_read_as_money(tmp_path: Path) -> None:
    """A farm with a rented pool and no agents: not "no agents"; cost in CNY with its price."""
    from scheduler.dispatch.client import ControllerUnavailable, FarmClient
    from tests.dispatch.conftest import free_port

    address = f"tcp://127.0.0.1:{free_port()}"
    config = tmp_path / "farm.toml"
    config.write_text(
        "[controller]\nheartbeat_s = 0.3\nplan_time_limit_s = 0.3\nreplan_min_interval_s = 0.5\n"
        "pool_poll_s = 0.2\n\n[[pools]]\nid = \"hpc-h100\"\nbackend = \"local\"\nmax_slots = 1\n"
        f"vram_gb = 80\ncost_per_gpu_hour_cny = 28.5\nworkdir = \"{tmp_path / 'pool'}\"\n",
        encoding="utf-8")
    (tmp_path / "out").mkdir()
    ctl = subprocess.Popen(
        [sys.executable, "-m", "stagectl", "farm", "controller", "--db",
         str(tmp_path / "farm.sqlite"), "--bind", address, "--config", str(config)],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)})  # the pool runs tests.dispatch.work
    try:
        with FarmClient(address, timeout_s=0.5) as client:
            deadline = time.monotonic() + 20
            while True:
                try:
                    client.request("ping")
                    break
                except ControllerUnavailable:
                    assert time.monotonic() < deadline and ctl.poll() is None, "no controller"
        result = cli("submit", str(job_toml(tmp_path / "j.toml", "sh090-fx", frames=1,
                                            vram_gb=48, sleep=3.6)),
                     "--controller", address, "--output-root", str(tmp_path / "out"))
        assert result.returncode == 0, result.stderr
        out = flat(cli("status", "--controller", address).stdout)
        assert "no agent" not in out, out
        assert "0 agents and 1 compute pool:" in out, out
        deadline = time.monotonic() + 30
        while True:
            with FarmClient(address) as client:
                if client.request("status")["jobs"][0]["state"] == "done":
                    break
            assert time.monotonic() < deadline, "pool job did not finish"
            time.sleep(0.2)
        cost = cli("cost", "--controller", address)
        assert cost.returncode == 0, cost.stderr
        fits(cost.stdout)
        words = flat(cost.stdout)
        assert "hpc-h100" in words and "28.50 CNY" in words, cost.stdout
        assert re.search(r"0\.0[2-9] CNY", words), cost.stdout  # about 3.6 s x 28.5 CNY/h
        doc = json.loads(cli("cost", "--controller", address, "--json").stdout)
        assert set(doc) == {"pools", "spent_cny", "forecast_cny"}
        assert doc["spent_cny"] > 0.02
    finally:
        ctl.terminate()
        try:
            ctl.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            ctl.kill()
            ctl.communicate()


def test_no_pools_cost_says_so(farm: Farm) -> None:
    farm.start_controller()
    result = cli("cost", "--controller", farm.address)
    assert result.returncode == 0, result.stderr
    assert "no compute pools configured" in flat(result.stdout)
    nodes = cli("nodes", "--controller", farm.address)
    assert "no agents connected and no compute pools" in flat(nodes.stdout)


def _job(job_id: str, state: str = "active", **kw: Any) -> dict[str, Any]:
    counts = dict.fromkeys(("QUEUED", "PLANNED", "RUNNING", "DONE", "FAILED", "BLOCKED"), 0)
    job = {"id": job_id, "state": state, "counts": counts, "frames": 4, "frames_done": 0,
           "progress": 0.0, "deadline_utc": None, "predicted_finish_utc": None, "late": False,
           "after": [], "reasons": [], "vram_gb": 24.0}
    job.update(kw)
    return job


def test_outlook_names_what_stops_a_job() -> None:
    """The controller's replies as they come (shapes of `status` and `nodes`), judged."""
    from zoneinfo import ZoneInfo

    from stagectl.cli.farm import job_outlook, plural, span

    zone, now = ZoneInfo("Asia/Shanghai"), 1_900_000_000.0
    node = {"id": "a6000-01", "vram_gb": 48.0, "slots": 1, "busy": 0, "blocklisted_for": []}
    bad = {**node, "blocklisted_for": ["fx"]}
    short, warning, _ = job_outlook(_job("fx"), [_job("fx")], [bad], zone, now)
    assert short == "blocklisted" and warning is not None
    assert "a6000-01" in warning and "stagectl farm retry fx" in warning
    jobs = [_job("plate", "stalled", reasons=["exit code 7"]), _job("comp", after=["plate"])]
    short, warning, _ = job_outlook(jobs[1], jobs, [node], zone, now)
    assert short == "after plate" and warning is not None and "which is stalled" in warning
    # a dependency that no agent can run makes its follower wait too (not "not planned")
    jobs = [_job("big", vram_gb=80), _job("after-big", after=["big"])]
    assert "cannot run either" in str(job_outlook(jobs[1], jobs, [node], zone, now)[1])
    # a plan whose finish has passed is not shown as a prediction
    stale = _job("old", predicted_finish_utc=now - 600, deadline_utc=now + 3600)
    short, warning, _ = job_outlook(stale, [stale], [node], zone, now)
    assert short.startswith("overdue: planned for") and "not late yet" in short
    ok = _job("ok", predicted_finish_utc=now + 600, deadline_utc=now + 3600)
    assert job_outlook(ok, [ok], [node], zone, now)[0].endswith("on time, 50 min to spare")
    late = _job("late", predicted_finish_utc=now + 7800, deadline_utc=now + 600)
    assert job_outlook(late, [late], [node], zone, now)[0].endswith("late by 2 h")
    assert [span(s) for s in (45, 89, 90, 3599, 3660, 86400 * 3, 86400 * 3 + 7200)] == \
        ["45 s", "89 s", "2 min", "1 h", "1 h 1 min", "3 days", "3 d 2 h"]
    assert (plural(1, "plan"), plural(2, "plan"), plural(0, "agent")) == \
        ("1 plan", "2 plans", "0 agents")
