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
    assert c.get("/api/v1/stages").headers["cache-control"] == "no-store"


def test_a_time_without_offset_is_read_in_the_site_zone_and_the_reply_says_so(
        desk: Desk) -> None:
    b = _request(desk.client("producer"), stage="HP-3", start=f"{DAY} 08:00")
    assert b["start"] == "2031-03-04T08:00:00+08:00"
    assert b["end"] == "2031-03-04T12:00:00+08:00"
    assert b["latest_end"] == "2031-03-06T00:00:00+08:00"
    assert b["timezone"] == "Asia/Shanghai"
    assert any("start 2031-03-04 08:00 read as 2031-03-04 08:00 Asia/Shanghai (UTC+08:00)" in n
               for n in b["notes"])


def test_lifecycle_as_a_producer_over_a_session(desk: Desk) -> None:
    c, _ = desk.session("producer")
    first = _request(c, stage="HP-3", start=f"{DAY} 08:00")
    second = _request(c, production="Alien", stage="HP-3", start=f"{DAY} 09:00")
    r = c.post(f"/api/v1/bookings/{first['id']}/hold")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "hold" and r.json()["hold_rank"] == 1
    r = c.post(f"/api/v1/bookings/{second['id']}/hold")
    assert r.json()["hold_rank"] == 2
    # the second hold cannot confirm over the first: refused and explained
    r = c.post(f"/api/v1/bookings/{second['id']}/confirm")
    assert r.status_code == 409
    err = r.json()["error"]
    assert err["code"] == "refused" and err["message_zh"]
    assert any(first["id"] in line and "HP-3" in line and "first" in line
               for line in err["details"]["explanation"]), err
    # the same sentences in Chinese, for the page's language switch
    zh = err["details"]["explanation_zh"]
    assert len(zh) == len(err["details"]["explanation"])
    assert "第一预留 HP-3" in zh[0] and "2031-03-04 08:00–12:00" in zh[0], zh
    assert err["message_zh"].startswith("操作被拒绝：") and "第一预留" in err["message_zh"]
    # challenge: the first hold must answer by the deadline
    r = c.post(f"/api/v1/bookings/{second['id']}/challenge",
               json={"deadline": "2031-03-01 12:00"})
    assert r.status_code == 200, r.text
    assert r.json()["challenged"]["id"] == first["id"]
    assert r.json()["challenged"]["challenge_deadline"] == "2031-03-01T12:00:00+08:00"
    r = c.post(f"/api/v1/bookings/{first['id']}/confirm", json={"reason": "signed"})
    assert r.status_code == 200 and r.json()["status"] == "confirmed"
    assert r.json()["sequence"] == 1
    # the clashing lower hold was rejected by the confirmation
    assert c.get(f"/api/v1/bookings/{second['id']}").json()["status"] == "rejected"
    r = c.post(f"/api/v1/bookings/{first['id']}/release")
    assert r.status_code == 409 and "only a hold" in r.json()["error"]["message"]
    assert r.json()["error"]["details"]["explanation_zh"] == [
        f"{first['id']} 当前为已确认，只有预留才能释放（其他情况请取消）"]
    r = c.post(f"/api/v1/bookings/{first['id']}/cancel")
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    history = c.get(f"/api/v1/bookings/{first['id']}/history").json()
    assert [h["action"] for h in history] == ["request", "hold", "challenged", "confirm",
                                              "cancel"]
    assert {h["actor"] for h in history} == {"producer"}
    assert all(h["at"].endswith("+08:00") for h in history)
    assert history[3]["reason"] == "signed"


def test_who_did_it_is_each_caller(desk: Desk) -> None:
    b = _request(desk.client("producer"), stage="HP-3", start=f"{DAY} 08:00")
    desk.client("engineer").post(f"/api/v1/bookings/{b['id']}/hold").raise_for_status()
    history = desk.client("viewer").get(f"/api/v1/bookings/{b['id']}/history").json()
    assert [(h["action"], h["actor"]) for h in history] == [("request", "producer"),
                                                            ("hold", "engineer")]


def test_a_hold_without_slot_takes_the_earliest_free_one(desk: Desk) -> None:
    c = desk.client("producer")
    b = _request(c, requires=["arm", "ceiling"])
    r = c.post(f"/api/v1/bookings/{b['id']}/hold")
    assert r.status_code == 200, r.text
    assert r.json()["stage"] is not None and r.json()["start"].endswith("+08:00")


def test_hold_refusal_names_capability_booking_and_grid(desk: Desk) -> None:
    c = desk.client("producer")
    taken = _request(c, stage="HP-3", start=f"{DAY} 08:00")
    c.post(f"/api/v1/bookings/{taken['id']}/hold").raise_for_status()
    c.post(f"/api/v1/bookings/{taken['id']}/confirm").raise_for_status()
    other = _request(c, production="Cat", requires=["arm"])
    r = c.post(f"/api/v1/bookings/{other['id']}/hold",
               json={"stage": "HP-3", "start": f"{DAY} 10:07"})
    assert r.status_code == 409
    lines = r.json()["error"]["details"]["explanation"]
    assert any("HP-3 lacks arm" in x for x in lines), lines
    assert any(taken["id"] in x and "08:00–12:00" in x and "Asia/Shanghai" in x
               for x in lines), lines
    assert any("15-minute grid" in x for x in lines), lines
    zh = r.json()["error"]["details"]["explanation_zh"]
    assert any("HP-3 没有本预订需要的 arm" in x for x in zh), zh
    assert any("已被" in x and taken["id"] in x for x in zh), zh
    assert any("15 分钟的时间格" in x for x in zh), zh


def test_an_unplaceable_request_and_bad_fields_are_explained(desk: Desk) -> None:
    c = desk.client("producer")
    r = c.post("/api/v1/bookings", json={"production": "X", "duration_minutes": 600,
                                         "earliest_start": f"{DAY} 08:00",
                                         "latest_end": f"{DAY} 12:00", "priority": 1})
    assert r.status_code == 400
    assert r.json()["error"]["details"]["field"] == "latest_end"
    assert "shorter than" in r.json()["error"]["message"]
    r = c.post("/api/v1/bookings", json={"production": "X", "duration_minutes": 60,
                                         "earliest_start": f"{DAY} 08:00",
                                         "latest_end": f"{DAY} 12:00", "requires": ["hologram"]})
    assert r.status_code == 400 and r.json()["error"]["details"]["field"] == "requires"
    r = c.post("/api/v1/bookings", json={"production": "X", "duration_minutes": -5, "priority": 1,
                                         "earliest_start": f"{DAY} 08:00",
                                         "latest_end": f"{DAY} 12:00"})
    assert r.status_code == 400
    assert r.json()["error"]["details"]["field"] == "duration_minutes", r.text
    r = c.post("/api/v1/bookings", json={"production": "X", "duration_minutes": 60,
                                         "earliest_start": "yesterday-ish",
                                         "latest_end": f"{DAY} 12:00"})
    assert r.status_code == 400 and r.json()["error"]["details"]["field"] == "earliest_start"
    r = c.post("/api/v1/bookings", json={"production": "X", "duration_minutes": 60,
                                         "earliest_start": f"{DAY} 08:00",
                                         "latest_end": f"{DAY} 12:00", "status": "confirmed"})
    assert r.status_code == 400 and r.json()["error"]["details"]["field"] == "status"
    assert c.get("/api/v1/bookings/NOPE").json()["error"]["code"] == "not_found"
    assert c.post("/api/v1/bookings/NOPE/hold").status_code == 404


def test_list_filters_by_window_stage_production_and_status(desk: Desk) -> None:
    c = desk.client("producer")
    a = _request(c, stage="HP-3", start=f"{DAY} 08:00")
    b = _request(c, production="Alien", earliest_start="2031-03-10 08:00",
                 latest_end="2031-03-10 20:00")
    c.post(f"/api/v1/bookings/{a['id']}/hold").raise_for_status()
    v = desk.client("viewer")

    def ids(**params: str) -> list[str]:
        r = v.get("/api/v1/bookings", params=params)
        assert r.status_code == 200, r.text
        return [x["id"] for x in r.json()]

    assert ids() == [a["id"], b["id"]]
    assert ids(**{"from": "2031-03-09", "to": "2031-03-11"}) == [b["id"]]
    assert ids(**{"from": DAY, "to": DAY}) == [a["id"]]
    assert ids(stage="HP-3") == [a["id"]]
    assert ids(production="Alien") == [b["id"]]
    assert ids(status="hold") == [a["id"]]
    assert ids(status="requested,hold") == [a["id"], b["id"]]
    r = v.get("/api/v1/bookings", params={"status": "maybe"})
    assert r.status_code == 400 and r.json()["error"]["details"]["field"] == "status"
    r = v.get("/api/v1/bookings", params={"from": "soon"})
    assert r.status_code == 400 and r.json()["error"]["details"]["field"] == "from"


def _counts(desk: Desk) -> tuple[int, list[Any]]:
    c = desk.client("viewer")
    rows = c.get("/api/v1/bookings").json()
    return len(rows), [(x["id"], x["status"], x["stage"], x["start"], x["sequence"])
                       for x in rows]


def test_solve_preview_changes_nothing_and_apply_needs_an_engineer(desk: Desk) -> None:
    c = desk.client("producer")
    _request(c)
    _request(c, production="Alien", requires=["arm"])
    before = _counts(desk)
    r = c.post("/api/v1/solve", json={"time_limit_s": 2})
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["applied"] is False and len(doc["assignments"]) == 2
    assert all(a["start"].endswith("+08:00") for a in doc["assignments"])
    assert _counts(desk) == before
    r = c.post("/api/v1/solve", json={"time_limit_s": 2, "apply": True})
    assert r.status_code == 403 and r.json()["error"]["details"]["role"] == "engineer"
    assert _counts(desk) == before
    r = desk.client("engineer").post("/api/v1/solve", json={"time_limit_s": 2, "apply": True})
    assert r.status_code == 200 and r.json()["applied"] is True
    assert {a["status"] for a in r.json()["assignments"]} == {"hold"}
    assert {x[1] for x in _counts(desk)[1]} == {"hold"}


def test_outage_preview_changes_nothing_then_apply_moves_the_booking(desk: Desk) -> None:
    c = desk.client("producer")
    b = _request(c, stage="HP-3", start=f"{DAY} 08:00")
    c.post(f"/api/v1/bookings/{b['id']}/hold").raise_for_status()
    c.post(f"/api/v1/bookings/{b['id']}/confirm").raise_for_status()
    before = _counts(desk)
    stage_before = c.get("/api/v1/stages/HP-3").json()["outages"]
    body = {"stage": "HP-3", "start": f"{DAY} 00:00", "end": f"{DAY} 23:00",
            "reason": "wall repair", "time_limit_s": 2}
    r = c.post("/api/v1/outages", json=body)
    assert r.status_code == 200, r.text
    preview = r.json()
    assert preview["applied"] is False
    assert [m["booking"] for m in preview["moved"]] == [b["id"]]
    assert preview["moved"][0]["from_start"] == "2031-03-04T08:00:00+08:00"
    assert _counts(desk) == before
    assert c.get("/api/v1/stages/HP-3").json()["outages"] == stage_before
    r = c.post("/api/v1/outages", json={**body, "apply": True})
    assert r.status_code == 403
    r = desk.client("engineer").post("/api/v1/outages", json={**body, "apply": True})
    assert r.status_code == 200, r.text
    applied = r.json()
    assert applied["applied"] is True and [m["booking"] for m in applied["moved"]] == [b["id"]]
    after = c.get(f"/api/v1/bookings/{b['id']}").json()
    assert after["stage"] != "HP-3" or after["start"] != b["start"]
    assert after["sequence"] > before[1][0][4]
    outages = c.get("/api/v1/stages/HP-3").json()["outages"]
    assert {"start": "2031-03-04T00:00:00+08:00", "end": "2031-03-04T23:00:00+08:00",
            "reason": "wall repair"} in outages
    history = c.get(f"/api/v1/bookings/{b['id']}/history").json()
    assert history[-1]["action"] == "move" and history[-1]["actor"] == "engineer"


def test_report_pools_and_feeds(desk: Desk) -> None:
    c = desk.client("producer")
    b = _request(c, stage="HP-3", start=f"{DAY} 08:00")
    c.post(f"/api/v1/bookings/{b['id']}/hold").raise_for_status()
    c.post(f"/api/v1/bookings/{b['id']}/confirm").raise_for_status()
    v = desk.client("viewer")
    rep = v.get("/api/v1/reports", params={"from": "2031-03-01", "to": "2031-03-31"}).json()
    assert rep["from"] == "2031-03-01T00:00:00+08:00" and rep["to"] == "2031-04-01T00:00:00+08:00"
    hp3 = next(x for x in rep["stages"] if x["stage"] == "HP-3")
    assert hp3["booked_hours"] == 4.0 and hp3["revenue_cny"] > 0
    assert v.get("/api/v1/reports", params={"from": "2031-03-05", "to": "2031-03-01"}
                 ).status_code == 400
    pools = v.get("/api/v1/pools").json()
    assert all({"id", "capacity", "kind"} <= set(p) for p in pools)
    feeds = v.get("/api/v1/feeds").json()
    urls = [f["url"] for f in feeds["stages"]]
    assert any(u.startswith(desk.url + "/ics/stage/HP-3.ics?token=") for u in urls)
    assert [f["production"] for f in feeds["productions"]] == ["Dune"]
    # a viewer's feed token is not an API token
    token = urls[0].split("token=")[1]
    r = desk.anonymous().get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401


def test_farm_without_controller_is_503_and_the_desk_keeps_serving(desk: Desk) -> None:
    v = desk.client("viewer")
    for what in ("jobs", "nodes", "cost"):
        r = v.get(f"/api/v1/farm/{what}")
        assert r.status_code == 503 and r.json()["error"]["code"] == "farm_unavailable"
    assert v.get("/api/v1/me").status_code == 200


def test_deadlines_expire_holds_and_unanswered_challenges(desk_template: Any,
                                                          tmp_path: Any) -> None:
    from dataclasses import replace
    from datetime import UTC, datetime, timedelta

    from stagectl.desk.config import DeskConfig
    from stagectl.desk.server import DeskServer
    from tests.desk.conftest import SEED

    now = [datetime(2031, 3, 1, tzinfo=UTC)]
    db = desk_template.copy(tmp_path)
    config = replace(DeskConfig(db=db, seed=SEED, port=0))
    with DeskServer(config, clock=lambda: now[0]) as server, httpx.Client(
            base_url=server.url, timeout=30,
            headers={"Authorization": f"Bearer {desk_template.tokens['producer']}"}) as c:
        assert server.app is not None
        server.app.state.desk.sweep_every_s = 0.0
        a = _request(c, stage="HP-3", start=f"{DAY} 08:00")
        b = _request(c, production="Alien", stage="HP-3", start=f"{DAY} 09:00")
        e = _request(c, production="Cat", stage="HP-1", start=f"{DAY} 08:00", requires=[])
        r = c.post(f"/api/v1/bookings/{e['id']}/hold", json={"expires": "2031-03-02 12:00"})
        assert r.status_code == 200 and r.json()["hold_expires"] == "2031-03-02T12:00:00+08:00"
        r = c.post(f"/api/v1/bookings/{e['id']}/hold", json={"expires": "2031-02-01"})
        assert r.status_code == 400 and r.json()["error"]["details"]["field"] == "expires"
        r = c.post(f"/api/v1/bookings/{e['id']}/hold")
        assert r.status_code == 409  # already held
        for x in (a, b):
            c.post(f"/api/v1/bookings/{x['id']}/hold").raise_for_status()
        r = c.post(f"/api/v1/bookings/{b['id']}/challenge", json={"deadline": "2031-02-01"})
        assert r.status_code == 400 and r.json()["error"]["details"]["field"] == "deadline"
        c.post(f"/api/v1/bookings/{b['id']}/challenge",
               json={"deadline": "2031-03-02 09:00"}).raise_for_status()
        now[0] += timedelta(days=2)
        assert c.get(f"/api/v1/bookings/{e['id']}").json()["status"] == "expired"
        assert c.get(f"/api/v1/bookings/{a['id']}").json()["status"] == "released"
        moved_up = c.get(f"/api/v1/bookings/{b['id']}").json()
        assert moved_up["status"] == "hold" and moved_up["hold_rank"] == 1
        history = c.get(f"/api/v1/bookings/{a['id']}/history").json()
        assert history[-1]["actor"] == "system" and "not answered" in history[-1]["reason"]
