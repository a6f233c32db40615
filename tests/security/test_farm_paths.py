"""Job outputs stay inside the output root, checked by the CLI and again by the controller.

Before, `output = "../../../../etc/cron.d/x"` was accepted and the agents would have written
there.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from scheduler.dispatch.client import ControllerError
from stagectl.cli.farm import app
from tests.dispatch.conftest import Farm, work_job
from tests.security.farm_peers import farm

__all__ = ["farm"]

JOB = """
[[jobs]]
id = "esc"
frame_start = 1
frame_end = 1
argv = ["render", "--out", "{output}"]
output = "OUTPUT"
"""


@pytest.mark.parametrize(("output", "reason"), [
    ("../../../../etc/cron.d/x", "'..'"),
    ("renders/../../x.png", "'..'"),
    ("/etc/cron.d/x", "inside the output root"),
    ("link/x.png", "inside the output root"),  # a symlink inside that points outside
])
def test_submit_refuses_outputs_outside_the_root(tmp_path: Path, output: str,
                                                 reason: str) -> None:
    (tmp_path / "link").symlink_to("/etc")
    f = tmp_path / "jobs.toml"
    f.write_text(JOB.replace("OUTPUT", output))
    result = CliRunner().invoke(app, ["submit", str(f), "--controller", "tcp://127.0.0.1:1"])
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert "jobs[0].output" in text and reason in text and output in text


def test_submit_output_root_option(tmp_path: Path) -> None:
    jobs_dir, renders = tmp_path / "jobs", tmp_path / "renders"
    jobs_dir.mkdir()
    f = jobs_dir / "jobs.toml"
    f.write_text(JOB.replace("OUTPUT", "sh010/x.png"))
    from scheduler.dispatch.jobfile import load_job_file

    assert load_job_file(f)[0].output == str(jobs_dir / "sh010/x.png")
    assert load_job_file(f, output_root=renders)[0].output == str(renders / "sh010/x.png")
    f.write_text(JOB.replace("OUTPUT", str(renders / "x.png")))
    result = CliRunner().invoke(app, ["submit", str(f), "--controller", "tcp://127.0.0.1:1"])
    assert result.exit_code == 2 and "inside the output root" in " ".join(result.output.split())


def test_controller_checks_outputs_again(farm: Farm, tmp_path: Path) -> None:
    farm.start_controller()  # output root: the folder holding its --db (tmp_path)
    (tmp_path / "link").symlink_to("/etc")
    good = work_job("inside", tmp_path / "out", 1, 1).to_wire()
    for output, reason in (("/etc/cron.d/x.####", "inside the output root"),
                           (str(tmp_path / "out/../../x.####"), "'..'"),
                           (str(tmp_path / "link/x.####"), "inside the output root"),
                           ("out/x.####", "an absolute path")):
        with farm.client() as c, pytest.raises(ControllerError) as refused:
            c.request("submit", jobs=[good, {**good, "id": "escape", "output": output}])
        reply = refused.value.reply
        assert reply["code"] == "bad_job", reply
        assert reply["error"].startswith("jobs[1].output:") and reason in reply["error"]
    assert farm.request("status")["jobs"] == []  # nothing of a refused submit is kept
    assert farm.request("submit", jobs=[good])["jobs"] == ["inside"]


def test_stored_job_outside_the_root_is_cancelled_at_startup(tmp_path: Path) -> None:
    """A job accepted before these checks stays readable but never runs again."""
    from scheduler.dispatch.config import ControllerConfig
    from scheduler.dispatch.controller import Controller
    from scheduler.dispatch.store import FarmStore
    from tests.dispatch.conftest import free_port

    db = tmp_path / "farm.sqlite"
    Controller(db, ControllerConfig(bind=f"tcp://127.0.0.1:{free_port()}")).close()
    wire = work_job("old", tmp_path / "out", 1, 1).to_wire()
    wire["output"] = "/etc/cron.d/x.####"
    store = FarmStore(db)
    with store.transaction():
        store.add_job(wire, [("old:1-1", 1, 1)])
    store.close()
    ctl = Controller(db, ControllerConfig(bind=f"tcp://127.0.0.1:{free_port()}"))
    try:
        assert ctl.jobs["old"].state == "cancelled"
        assert any(e["kind"] == "job_invalid" and "output root" in e["detail"]
                   for e in ctl.store.events(10))
    finally:
        ctl.close()


def test_stored_job_cancelled_at_startup_ends_as_a_normal_cancel(tmp_path: Path) -> None:
    """Its running attempt is cancelled and its tasks end as `farm cancel` leaves them."""
    from scheduler.dispatch.config import ControllerConfig
    from scheduler.dispatch.controller import Controller
    from scheduler.dispatch.store import FarmStore
    from tests.dispatch.conftest import free_port

    db = tmp_path / "farm.sqlite"
    Controller(db, ControllerConfig(bind=f"tcp://127.0.0.1:{free_port()}")).close()
    store = FarmStore(db)
    with store.transaction():
        for job_id in ("old", "live"):
            wire = work_job(job_id, tmp_path / "out", 1, 3).to_wire()
            if job_id == "old":
                wire["output"] = "/etc/cron.d/x.####"
            store.add_job(wire, [(f"{job_id}:{n}-{n}", n, n) for n in (1, 2, 3)])
            aid = store.new_attempt(f"{job_id}:1-1", job_id, "node-gone", 0, 1, 0.0)
            store.update_task(f"{job_id}:1-1", state="RUNNING", attempt_id=aid)
            store.update_task(f"{job_id}:3-3", state="DONE")
    store.close()
    ctl = Controller(db, ControllerConfig(bind=f"tcp://127.0.0.1:{free_port()}"))
    try:
        with ctl.store.transaction():
            ctl._cancel_job("live")  # what `stagectl farm cancel live` does
        kinds = {e["kind"] for e in ctl.store.events(20) if e.get("job_id") == "old"}
        attempts = {r["job_id"]: (r["state"], r["error"]) for r in ctl.store.attempts()}
        tasks = {r["id"]: (r["state"], r["attempt_id"], r["reason"])
                 for r in ctl.store.tasks()}
    finally:
        ctl.close()
    assert {"job_invalid", "job_cancelled"} <= kinds, kinds
    assert attempts["old"] == attempts["live"] == ("CANCELLED", "job cancelled"), attempts
    for n in (1, 2, 3):
        assert tasks[f"old:{n}-{n}"] == tasks[f"live:{n}-{n}"], (n, tasks)
    assert tasks["old:1-1"] == ("BLOCKED", None, "job cancelled")
    assert tasks["old:3-3"][0] == "DONE"
    again = Controller(db, ControllerConfig(bind=f"tcp://127.0.0.1:{free_port()}"))
    try:  # nothing of the old job is running or runnable after the next restart either
        assert not again.attempts
        assert all(again.tasks[f"old:{n}-{n}"].state in ("BLOCKED", "DONE") for n in (1, 2, 3))
    finally:
        again.close()
