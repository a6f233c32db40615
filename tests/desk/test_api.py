"""The desk's JSON API over real HTTP (uvicorn on loopback, httpx): lifecycle, times, errors."""

from __future__ import annotations

from typing import Any

import httpx

from tests.desk.conftest import Desk

DAY = "2031-03-04"


def _request(c: httpx.Client, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"production": "Dune", "duration_minutes": 240, "priority": 2,
                            "earliest_start": f"{DAY} 08:00", "latest_end": "2031-03-05",
                            "requires": ["led_8k"]}
    body.update(fields)
    r = c.post("/api/v1/bookings", json=body)
    assert r.status_code == 201, r.text
    return dict(r.json())


def test_me_answers_each_user_and_role(desk: Desk) -> None:
    for user in ("admin", "producer", "engineer", "viewer"):
        r = desk.client(user).get("/api/v1/me")
        assert r.status_code == 200, r.text
        assert r.json() == {"user": user, "role": user}


def test_sites_and_stages_come_from_the_seed_with_zones(desk: Desk) -> None:
    c = desk.client("viewer")
    sites = c.get("/api/v1/sites").json()
    assert {s["site"] for s in sites} == {"Huangpu", "Nansha", "Shenzhen"}
    assert all(s["timezone"] == "Asia/Shanghai" for s in sites)
    stage = c.get("/api/v1/stages/HP-1").json()
    assert stage["site"] == "Huangpu" and stage["changeover_minutes"] == 90
    assert stage["outages"][0]["start"] == "2031-03-19T20:00:00+08:00"
    assert c.get("/api/v1/stages/NOPE").json()["error"]["code"] == "not_found"


def test_a_time_without_offset_is_read_in_the_site_zone_and_the_reply_says_so(
        desk: Desk) -> None:
    b = _request(desk.client("producer"), stage="HP-3", start=f"{DAY} 08:00")
    assert b["start"] == "2031-03-04T08:00:00+08:00"
    assert b["end"] == "2031-03-04T12:00:00+08:00"
    assert b["latest_end"] == "2031-03-06T00:00:00+08:00"
    assert b["timezone"] == "Asia/Shanghai"
    assert any("start 2031-03-04 08:00 read as 2031-03-04 08:00 Asia/Shanghai (UTC+08:00)" in n
               for n in b["notes"])
