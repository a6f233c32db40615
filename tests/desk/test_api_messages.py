"""Replies that name what went wrong: the method refused, the auth scheme, a feed without its
token, and /docs served from the desk itself by ``create_app`` alone."""

from __future__ import annotations

from tests.desk.conftest import Desk


def test_405_names_the_method_in_both_languages(desk: Desk) -> None:
    client, _ = desk.session("producer")
    r = client.delete("/api/v1/bookings")
    assert r.status_code == 405
    err = r.json()["error"]
    assert err["code"] == "method_not_allowed"
    assert "DELETE" in err["message"] and "this method" not in err["message"]
    assert "DELETE" in err["message_zh"] and "this method" not in err["message_zh"]


def test_a_basic_auth_header_is_told_to_use_bearer(desk: Desk) -> None:
    r = desk.anonymous().get("/api/v1/me", headers={"Authorization": "Basic dTpw"})
    assert r.status_code == 401
    err = r.json()["error"]
    assert "Bearer" in err["message"] and "Basic" in err["message"]
    assert "revoked" not in err["message"]
    r = desk.anonymous().get("/api/v1/me", headers={"Authorization": "Bearer nonsense"})
    assert r.status_code == 401 and "revoked" in r.json()["error"]["message"]


def test_a_feed_url_without_its_token_says_so(desk: Desk) -> None:
    r = desk.anonymous().get("/ics/stage/HP-1.ics")
    assert r.status_code == 401
    message = r.json()["error"]["message"]
    assert "?token=" in message and "revoked" not in message
    r = desk.anonymous().get("/ics/stage/HP-1.ics", params={"token": "wrong"})
    assert r.status_code == 401 and "revoked" in r.json()["error"]["message"]


def test_docs_come_from_the_desk_without_any_extra_call(desk: Desk) -> None:
    r = desk.anonymous().get("/docs")
    assert r.status_code == 200
    assert "cdn.jsdelivr.net" not in r.text and "/docs/assets/" in r.text


def test_a_hold_outside_the_bookings_window_is_explained_in_plain_words(desk: Desk) -> None:
    c = desk.client("producer")
    r = c.post("/api/v1/bookings", json={
        "production": "Dune", "duration_minutes": 240, "priority": 2,
        "earliest_start": "2031-03-04 08:00", "latest_end": "2031-03-04 20:00",
        "requires": ["led_8k"]})
    assert r.status_code == 201, r.text
    r = c.post(f"/api/v1/bookings/{r.json()['id']}/hold",
               json={"stage": "HP-3", "start": "2031-03-05 08:00"})
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert err["code"] == "invalid" and err["details"]["field"] == "start"
    assert "bookings[0]" not in err["message"] and "bookings[0]" not in err["message_zh"]
    assert err["details"]["explanation"] and err["details"]["explanation_zh"]
