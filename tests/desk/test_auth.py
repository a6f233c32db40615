"""Users, roles, sessions, CSRF, tokens and login throttling over real HTTP."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from http.cookies import SimpleCookie
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from scheduler.booking.store import BookingStore
from stagectl.cli.desk import app as desk_cli
from stagectl.desk import auth
from stagectl.desk.auth import LoginThrottle
from stagectl.desk.config import load_desk_config
from stagectl.desk.server import DeskServer
from tests.desk.conftest import PASSWORDS, Desk

BOOKING = {"production": "Dune", "duration_minutes": 60, "priority": 1,
           "earliest_start": "2031-03-04 08:00", "latest_end": "2031-03-04 20:00"}


def test_login_sets_a_strict_httponly_cookie_and_answers_csrf(desk: Desk) -> None:
    c = desk.anonymous()
    r = c.post("/api/v1/session", json={"user": "producer", "password": PASSWORDS["producer"]})
    assert r.status_code == 200
    body = r.json()
    assert body["user"] == "producer" and body["role"] == "producer" and len(body["csrf"]) > 20
    header = r.headers["set-cookie"]
    morsel = SimpleCookie(header)[auth.SESSION_COOKIE]
    assert len(morsel.value) >= 40
    assert morsel["httponly"] and morsel["samesite"].lower() == "strict" and morsel["path"] == "/"
    assert not morsel["secure"]  # plain http on loopback
    me = c.get("/api/v1/me")
    assert me.json() == {"user": "producer", "role": "producer", "csrf": body["csrf"]}
    assert me.headers["cache-control"] == "no-store"
    assert desk.client("producer").get("/api/v1/me").json() == {"user": "producer",
                                                              "role": "producer"}


def test_the_store_keeps_only_hashes_of_cookies_and_tokens(desk: Desk) -> None:
    c, _ = desk.session("producer")
    cookie = c.cookies[auth.SESSION_COOKIE]
    if isinstance(desk.config.db, str):  # PostgreSQL: every row of every table, as text
        with BookingStore(desk.config.db, create=False) as st:
            tables = [r[0] for r in st.conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
            raw = " ".join(str(list(r)) for t in tables
                           for r in st.conn.execute(f"SELECT * FROM {t}")).encode()
    else:
        raw = Path(desk.config.db).read_bytes()
        for side in (Path(str(desk.config.db) + "-wal"),):
            if side.exists():
                raw += side.read_bytes()
    assert cookie.encode() not in raw
    assert desk.token("viewer").encode() not in raw
    assert PASSWORDS["viewer"].encode() not in raw


def test_wrong_password_and_unknown_user_read_the_same(desk: Desk) -> None:
    c = desk.anonymous()
    a = c.post("/api/v1/session", json={"user": "producer", "password": "wrong-password"})
    b = c.post("/api/v1/session", json={"user": "nobody", "password": "wrong-password"})
    assert a.status_code == b.status_code == 401
    assert a.json() == b.json()
    assert a.json()["error"]["code"] == "unauthenticated"
    assert "set-cookie" not in a.headers


def test_unsafe_requests_with_the_cookie_need_the_csrf_header(desk: Desk) -> None:
    c, csrf = desk.session("producer", csrf=False)
    assert c.get("/api/v1/bookings").status_code == 200  # safe: no header needed
    r = c.post("/api/v1/bookings", json=BOOKING)
    assert r.status_code == 403 and r.json()["error"]["code"] == "csrf"
    r = c.post("/api/v1/bookings", json=BOOKING, headers={"X-CSRF-Token": csrf[:-1] + "x"})
    assert r.status_code == 403 and r.json()["error"]["code"] == "csrf"
    r = c.post("/api/v1/bookings", json=BOOKING, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 201
    # another session's csrf does not do
    _, other = desk.session("producer")
    r = c.post("/api/v1/bookings", json=BOOKING, headers={"X-CSRF-Token": other})
    assert r.status_code == 403
    # a script with a token needs no csrf
    assert desk.client("producer").post("/api/v1/bookings", json=BOOKING).status_code == 201
    assert c.delete("/api/v1/session").status_code == 403  # logout is unsafe too


def test_logout_ends_the_session(desk: Desk) -> None:
    c, _ = desk.session("viewer")
    cookie = c.cookies[auth.SESSION_COOKIE]
    assert c.delete("/api/v1/session").status_code == 200
    other = desk.anonymous()
    other.cookies.set(auth.SESSION_COOKIE, cookie)
    r = other.get("/api/v1/me")
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthenticated"


@pytest.mark.parametrize("headers,cookies", [
    ({}, {}),
    ({"Authorization": "Bearer nope"}, {}),
    ({"Authorization": "Basic YWRtaW46YWRtaW4="}, {}),
    ({"Authorization": "Bearer"}, {}),
    ({"Authorization": "Bearer " + "x" * 5000}, {}),
    ({}, {auth.SESSION_COOKIE: "forged"}),
    ({}, {auth.SESSION_COOKIE: "%C3%A9" * 100}),
])
def test_no_or_bad_credentials_are_401(desk: Desk, headers: dict[str, str],
                                       cookies: dict[str, str]) -> None:
    c = desk.anonymous()
    for k, v in cookies.items():
        c.cookies.set(k, v)
    r = c.get("/api/v1/bookings", headers=headers)
    assert r.status_code == 401, r.text
    assert r.json()["error"]["code"] == "unauthenticated"
    assert r.json()["error"]["message_zh"]


def test_roles_refuse_what_they_do_not_include(desk: Desk) -> None:
    viewer, producer, engineer = (desk.client(u) for u in ("viewer", "producer", "engineer"))
    r = viewer.post("/api/v1/bookings", json=BOOKING)
    assert r.status_code == 403
    err = r.json()["error"]
    assert err["code"] == "forbidden" and err["details"]["role"] == "producer"
    assert "viewer" in err["message"] and err["message_zh"]
    b = producer.post("/api/v1/bookings", json=BOOKING).json()
    for action in ("hold", "confirm", "release", "cancel"):
        assert viewer.post(f"/api/v1/bookings/{b['id']}/{action}").status_code == 403
    assert viewer.post("/api/v1/solve", json={}).status_code == 403
    for who in (viewer, producer, engineer):
        assert who.get("/api/v1/users").status_code == 403
        assert who.post("/api/v1/tokens", json={}).status_code == 403
        assert who.post("/api/v1/users/viewer/disable").status_code == 403
    assert desk.client("admin").get("/api/v1/users").status_code == 200


def test_admin_manages_users_and_tokens(desk: Desk) -> None:
    admin = desk.client("admin")
    r = admin.post("/api/v1/users", json={"name": "lin", "role": "producer",
                                          "password": "lin-secret-1"})
    assert r.status_code == 201, r.text
    assert admin.post("/api/v1/users", json={"name": "lin", "role": "producer",
                                             "password": "lin-secret-1"}).status_code == 409
    bad = admin.post("/api/v1/users", json={"name": "x y", "role": "producer",
                                            "password": "12345678"})
    assert bad.status_code == 400 and bad.json()["error"]["details"]["field"] == "name"
    bad = admin.post("/api/v1/users", json={"name": "kim", "role": "boss",
                                            "password": "12345678"})
    assert bad.status_code == 400 and bad.json()["error"]["details"]["field"] == "role"
    bad = admin.post("/api/v1/users", json={"name": "kim", "role": "viewer", "password": "1"})
    assert bad.status_code == 400 and bad.json()["error"]["details"]["field"] == "password"
    names = {u["name"]: u for u in admin.get("/api/v1/users").json()}
    assert names["lin"]["role"] == "producer" and "hash" not in names["lin"]
    r = admin.post("/api/v1/tokens", json={"user": "lin", "label": "script"})
    assert r.status_code == 201
    token = r.json()["token"]
    lin = desk.anonymous()
    lin.headers["Authorization"] = f"Bearer {token}"
    assert lin.get("/api/v1/me").json() == {"user": "lin", "role": "producer"}
    s = desk.anonymous()
    assert s.post("/api/v1/session", json={"user": "lin",
                                           "password": "lin-secret-1"}).status_code == 200
    feed = lin.get("/api/v1/feeds").json()["stages"][0]["url"].split("token=")[1]
    # disabling ends the sessions, the tokens and the feed token
    assert admin.post("/api/v1/users/lin/disable").json()["disabled"] is True
    assert lin.get("/api/v1/me").status_code == 401
    assert s.get("/api/v1/me").status_code == 401
    with BookingStore(desk.config.db, create=False) as st:
        assert auth.feed_user(st.conn, feed) is None
    assert admin.post("/api/v1/users/nobody/disable").status_code == 404
    assert admin.post("/api/v1/tokens", json={"user": "lin"}).status_code == 404
    trail = admin.get("/api/v1/audit").json()
    assert [(x["actor"], x["action"], x["subject"]) for x in trail[:3]] == [
        ("admin", "user disable", "lin"), ("admin", "token create", "lin"),
        ("admin", "user add", "lin")]
    assert trail[0]["at"].endswith("+08:00")
    assert token not in str(trail) and "lin-secret-1" not in str(trail)
    assert desk.client("engineer").get("/api/v1/audit").status_code == 403


def test_failed_logins_are_slowed_per_user(desk: Desk) -> None:
    c = desk.anonymous()
    for _ in range(5):
        r = c.post("/api/v1/session", json={"user": "viewer", "password": "guess-guess"})
        assert r.status_code == 401
    r = c.post("/api/v1/session", json={"user": "viewer", "password": PASSWORDS["viewer"]})
    assert r.status_code == 429
    err = r.json()["error"]
    assert err["code"] == "slow_down" and int(r.headers["Retry-After"]) >= 1
    assert err["message_zh"]
    # the desk keeps serving others
    assert desk.client("viewer").get("/api/v1/me").status_code == 200


def test_throttle_backs_off_and_forgets() -> None:
    now = [1000.0]
    t = LoginThrottle(free=3, window_s=60, max_wait_s=30, max_keys=4, clock=lambda: now[0])
    for _ in range(3):
        assert t.wait_s("user:a") == 0
        t.failed("user:a", "addr:x")
    assert t.wait_s("user:a") == pytest.approx(1.0)
    assert t.wait_s("addr:x") == pytest.approx(1.0)
    now[0] += 1.5
    assert t.wait_s("user:a") == 0
    t.failed("user:a")
    assert t.wait_s("user:a") == pytest.approx(2.0)
    for _ in range(20):
        t.failed("user:a")
    assert t.wait_s("user:a") == pytest.approx(30.0)  # capped
    now[0] += 61
    assert t.wait_s("user:a") == 0  # the window passed
    for i in range(10):
        t.failed(f"user:{i}")
    assert len(t._fails) <= 4  # bounded


def test_idle_sessions_end(booking_db: Path | str) -> None:
    store = BookingStore(booking_db)
    conn = store.conn
    try:
        auth.ensure_schema(conn)
        t0 = datetime(2031, 3, 4, tzinfo=UTC)
        auth.add_user(conn, "ann", "viewer", "ann-secret-1", lambda: t0)
        cookie, csrf = auth.create_session(conn, auth.DeskUser("ann", "viewer"), lambda: t0)
        found = auth.session_user(conn, cookie, 12, lambda: t0 + timedelta(hours=11))
        assert found == (auth.DeskUser("ann", "viewer"), csrf)
        # last_seen was refreshed at +11 h, so +22 h is still within 12 idle hours
        assert auth.session_user(conn, cookie, 12, lambda: t0 + timedelta(hours=22))
        assert auth.session_user(conn, cookie, 12, lambda: t0 + timedelta(hours=35)) is None
        assert auth.session_user(conn, cookie, 12, lambda: t0 + timedelta(hours=22)) is None
    finally:
        store.close()


def test_cli_adds_users_and_prints_tokens(tmp_path: Path) -> None:
    db = tmp_path / "desk.sqlite"
    cfg = tmp_path / "desk.toml"
    seed = Path(__file__).resolve().parents[2] / "configs" / "booking" / "stages.json"
    cfg.write_text(f'[desk]\nbind = "127.0.0.1:0"\ndb = "{db}"\nseed = "{seed}"\n')
    runner = CliRunner()
    r = runner.invoke(desk_cli, ["user", "add", "mei", "--role", "engineer", "--config",
                                 str(cfg)], input="mei-secret-1\n")
    assert r.exit_code == 0, r.output
    r = runner.invoke(desk_cli, ["user", "add", "mei", "--config", str(cfg)],
                      env={"STAGECTL_DESK_PASSWORD": "another-1"})
    assert r.exit_code == 2 and "already exists" in r.output
    r = runner.invoke(desk_cli, ["user", "add", "bo", "--role", "king", "--config", str(cfg)],
                      input="bo-secret-1\n")
    assert r.exit_code == 2 and "role" in r.output
    r = runner.invoke(desk_cli, ["token", "create", "mei", "--config", str(cfg)])
    assert r.exit_code == 0, r.output
    token = r.output.strip()
    assert token.startswith("sdt_")
    r = runner.invoke(desk_cli, ["token", "create", "nobody", "--config", str(cfg)])
    assert r.exit_code == 1
    cfg_bad = tmp_path / "bad.toml"
    cfg_bad.write_text('[desk]\nbind = "0.0.0.0:80"\ncolour = "red"\n')
    r = runner.invoke(desk_cli, ["token", "create", "mei", "--config", str(cfg_bad)])
    assert r.exit_code == 2 and "desk.colour" in r.output and "desk.bind" in r.output
    with DeskServer(load_desk_config(cfg)) as live:
        r = httpx.get(live.url + "/api/v1/me", headers={"Authorization": f"Bearer {token}"})
        assert r.json() == {"user": "mei", "role": "engineer"}
        r = httpx.post(live.url + "/api/v1/session",
                       json={"user": "mei", "password": "mei-secret-1"})
        assert r.status_code == 200
