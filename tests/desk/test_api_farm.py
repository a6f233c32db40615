"""The farm through the desk: a real controller process, then none (503, the desk serves on)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.desk.conftest import Template, start_desk
from tests.dispatch.conftest import Farm, free_port, work_job


@pytest.fixture
def farm(tmp_path: Path) -> Iterator[Farm]:
    f = Farm(tmp_path)
    try:
        yield f
    finally:
        f.close()


def test_jobs_nodes_and_cost_come_from_the_controller_with_offsets(
        farm: Farm, desk_template: Template, tmp_path: Path) -> None:
    farm.start_controller()
    job = work_job("shot010", tmp_path / "out", 1, 4, chunk=2)
    wire = job.to_wire()
    wire["deadline_utc"] = time.time() + 3600
    farm.request("submit", jobs=[wire])
    server = start_desk(desk_template, tmp_path, farm_controller=farm.address,
                        farm_timeout_s=2.0)
    try:
        with httpx.Client(base_url=server.url, timeout=30, headers={
                "Authorization": f"Bearer {desk_template.tokens['viewer']}"}) as c:
            r = c.get("/api/v1/farm/jobs")
            assert r.status_code == 200, r.text
            doc = r.json()
            assert doc["timezone"] == "Asia/Shanghai"
            [j] = doc["jobs"]
            assert j["id"] == "shot010" and j["tasks"] == 2
            assert j["deadline"].endswith("+08:00")
            assert abs(j["deadline_utc"] - wire["deadline_utc"]) < 1
            r = c.get("/api/v1/farm/nodes")
            assert r.status_code == 200 and r.json()["nodes"] == []
            r = c.get("/api/v1/farm/cost")
            assert r.status_code == 200 and "forecast_cny" in r.json()
            # the controller goes away: 503 within the timeout, bookings still served
            assert farm.controller is not None
            farm.kill(farm.controller)
            t0 = time.monotonic()
            r = c.get("/api/v1/farm/jobs")
            assert r.status_code == 503 and r.json()["error"]["code"] == "farm_unavailable"
            assert time.monotonic() - t0 < 10
            assert r.json()["error"]["message_zh"]
            assert c.get("/api/v1/stages").status_code == 200
    finally:
        server.stop()


def test_no_controller_listening_is_503(desk_template: Template, tmp_path: Path) -> None:
    server = start_desk(desk_template, tmp_path,
                        farm_controller=f"tcp://127.0.0.1:{free_port()}", farm_timeout_s=0.5)
    try:
        r = httpx.get(server.url + "/api/v1/farm/nodes", timeout=30,
                      headers={"Authorization": f"Bearer {desk_template.tokens['viewer']}"})
        assert r.status_code == 503
        assert "no farm controller answered" in r.json()["error"]["message"]
    finally:
        server.stop()
