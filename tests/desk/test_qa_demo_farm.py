"""Acceptance pass: the desk in ``make demo`` shows a render farm, not "no controller".

``stagectl demo --desk`` spawns a farm controller and the farm demo's agents, submits its
job set, and points the desk's ``[farm] controller`` at it; the page's farm view then lists
jobs (before: 503 ``farm_unavailable``, "no controller is configured").
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from stagectl.cli import desk_demo
from stagectl.cli.lifecycle import ChildGroup
from stagectl.desk.config import load_desk_config
from stagectl.desk.server import DeskServer


def test_demo_desk_config_names_the_farm(tmp_path: Path) -> None:
    config_path, _, _ = desk_demo.prepare(tmp_path / "desk", "tcp://127.0.0.1:5999")
    assert load_desk_config(config_path).farm_controller == "tcp://127.0.0.1:5999"


def test_demo_farm_renders_its_jobs_for_the_desk(tmp_path: Path) -> None:
    group = ChildGroup(tmp_path / "logs")
    try:
        address = desk_demo.start_farm(group, tmp_path / "farm")
        config_path, _, password = desk_demo.prepare(tmp_path / "desk", address)
        ids = desk_demo.submit_farm_jobs(address, tmp_path / "farm" / "frames")
        with DeskServer(load_desk_config(config_path)) as desk, \
                httpx.Client(base_url=desk.url, timeout=10) as client:
            login = client.post("/api/v1/session",
                                json={"user": desk_demo.DEMO_USER, "password": password})
            assert login.status_code == 200, login.text
            deadline = time.monotonic() + 60
            while True:
                reply = client.get("/api/v1/farm/jobs")
                assert reply.status_code == 200, reply.text
                jobs = reply.json()["jobs"]
                if {j["state"] for j in jobs} == {"done"} or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
        assert sorted(j["id"] for j in jobs) == sorted(ids)
        assert all(j["state"] == "done" and not j["late"] for j in jobs), jobs
        assert len(list((tmp_path / "farm" / "frames").rglob("*.png"))) == 24
    finally:
        assert group.stop()
