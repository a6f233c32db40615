"""Hostile clients: malformed JSON, wrong types, huge and endless bodies, fuzzed endpoints.

Every answer is the contract's error JSON with a 4xx status (never a 500 from a crash), and
the desk keeps serving afterwards.
"""

from __future__ import annotations

import json
import socket
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.desk.conftest import Desk

SAFE_CODES = {"bad_json", "invalid", "unauthenticated", "forbidden", "csrf", "not_found",
              "refused", "too_large", "method_not_allowed"}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-10**20, max_value=10**20)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=20), inner,
                                                                  max_size=5),
    max_leaves=20,
)
FIELDS = ["id", "production", "priority", "duration_minutes", "earliest_start", "latest_end",
          "requires", "stages", "pools", "stage", "start", "phases", "contact", "reason",
          "prefer_stages", "deadline", "time_limit_s", "apply", "end", "expires", "user",
          "password"]
TIMES = st.sampled_from(["2031-03-04 08:00", "2031-03-04T08:00+08:00", "2031-03-04",
                         "2031-02-30", "9999-12-31T23:59:59+14:00", "0001-01-01", "24:00",
                         "2031-03-04 08:00 Mars/Olympus", "2031-03-04 08:00 CST", ""])
bodies = st.dictionaries(st.sampled_from(FIELDS), json_values | TIMES, max_size=8) | json_values


def _is_error(r: httpx.Response) -> None:
    assert r.status_code < 500, (r.status_code, r.text)
    if r.status_code >= 400:
        err = r.json()["error"]
        assert err["code"] in SAFE_CODES, err
        assert isinstance(err["message"], str) and err["message"]
        assert isinstance(err["message_zh"], str) and err["message_zh"]
        assert isinstance(err["details"], dict)


def _alive(desk: Desk) -> None:
    assert desk.client("viewer").get("/api/v1/me").status_code == 200


def _booking(desk: Desk) -> str:
    r = desk.client("producer").post("/api/v1/bookings", json={
        "production": "Dune", "duration_minutes": 60, "priority": 1,
        "earliest_start": "2031-03-04 08:00", "latest_end": "2031-03-04 20:00",
        "stage": "HP-3", "start": "2031-03-04 09:00"})
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=st.sampled_from(["/api/v1/bookings", "/api/v1/bookings/{id}/hold",
                             "/api/v1/bookings/{id}/confirm", "/api/v1/bookings/{id}/challenge",
                             "/api/v1/bookings/{id}/cancel", "/api/v1/outages",
                             "/api/v1/session", "/api/v1/users", "/api/v1/tokens"]),
       body=bodies)
def test_fuzzed_bodies_never_crash_the_desk(desk: Desk, path: str, body: Any) -> None:
    if not hasattr(desk, "_fuzz"):
        desk._fuzz = (_booking(desk), desk.client("admin"))  # type: ignore[attr-defined]
    booking_id, c = desk._fuzz  # type: ignore[attr-defined]
    r = c.post(path.format(id=booking_id), json=body)
    _is_error(r)


def test_fuzzing_left_the_desk_serving_and_counted_nothing_as_a_crash(desk: Desk) -> None:
    c = desk.client("admin")
    for body in ([], "x", 1e308, {"production": {"a": [1]}}, {"priority": 10**30},
                 {"earliest_start": None}, {"duration_minutes": True}):
        _is_error(c.post("/api/v1/bookings", json=body))
    stats = c.get("/api/v1/stats").json()
    assert stats["errors"].get("crash", 0) == 0 and stats["errors"].get("internal", 0) == 0
    assert stats["errors"]["invalid"] >= 1
    _alive(desk)


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.binary(max_size=300) | st.text(max_size=200).map(str.encode),
       ctype=st.sampled_from(["application/json", "text/plain", "application/json; charset=x",
                              "multipart/form-data; boundary=x", ""]))
def test_raw_bytes_are_bad_json_or_invalid(desk: Desk, raw: bytes, ctype: str) -> None:
    headers = {"content-type": ctype} if ctype else {}
    if not hasattr(desk, "_raw"):
        desk._raw = desk.client("producer")  # type: ignore[attr-defined]
    client: httpx.Client = desk._raw  # type: ignore[attr-defined]
    r = client.post("/api/v1/bookings", content=raw, headers=headers)
    _is_error(r)
    assert r.status_code >= 400 or raw.strip()


def test_malformed_json_invalid_utf8_and_deep_nesting(desk: Desk) -> None:
    c = desk.client("producer")
    for raw in (b"{", b'{"production": }', b"\xff\xfe\x00{", b"[" * 20000 + b"]" * 20000,
                b'{"a": NaN}', b"null"):
        r = c.post("/api/v1/bookings", content=raw, headers={"content-type": "application/json"})
        _is_error(r)
        assert r.status_code in (400, 422), (raw[:20], r.text)
    r = c.post("/api/v1/bookings", content=b"{", headers={"content-type": "application/json"})
    assert r.json()["error"]["code"] == "bad_json"
    _alive(desk)


def test_huge_bodies_are_413_declared_or_not(desk: Desk) -> None:
    c = desk.client("producer")
    big = json.dumps({"production": "x" * (desk.config.max_body_bytes + 10)}).encode()
    r = c.post("/api/v1/bookings", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413 and r.json()["error"]["code"] == "too_large"

    def chunks() -> Any:
        for _ in range(100):
            yield b" " * 4096

    r = c.post("/api/v1/bookings", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413 and r.json()["error"]["code"] == "too_large"
    # a declared length far over the limit is refused before any body is read
    head = (f"POST /api/v1/bookings HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
            f"{desk.token('producer')}\r\nContent-Type: application/json\r\n"
            "Content-Length: 999999999999\r\n\r\n{").encode()
    with socket.create_connection((desk.config.host, desk.server.port), timeout=10) as sock:
        sock.sendall(head)
        reply = b""
        while b"\r\n\r\n" not in reply or not reply.rstrip().endswith(b"}"):
            part = sock.recv(65536)
            if not part:
                break
            reply += part
    assert reply.startswith(b"HTTP/1.1 413"), reply[:200]
    assert json.loads(reply.split(b"\r\n\r\n", 1)[1])["error"]["code"] == "too_large"
    _alive(desk)


def test_garbage_on_the_socket_and_a_half_request(desk: Desk) -> None:
    host, port = desk.config.host, desk.server.port
    for payload in (b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + b"\x00" * 40,  # TLS hello
                    b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X: " + b"y" * 70000 + b"\r\n\r\n",
                    b"POST /api/v1/bookings HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"):
        with socket.create_connection((host, port), timeout=5) as s:
            s.sendall(payload)
            s.shutdown(socket.SHUT_WR)
            try:
                s.recv(65536)
            except OSError:
                pass
    _alive(desk)


def test_wrong_types_in_query_and_path(desk: Desk) -> None:
    c = desk.client("viewer")
    for path in ("/api/v1/bookings?from=%00", "/api/v1/bookings?to=" + "9" * 200,
                 "/api/v1/bookings?stage=" + "%FF" * 10, "/api/v1/reports?from=2031-13-01",
                 "/api/v1/bookings/" + "x" * 3000, "/api/v1/stages/%2e%2e%2f",
                 "/static/../../etc/passwd", "/api/v1/bookings?status=,,,"):
        _is_error(c.get(path))
    r = c.put("/api/v1/bookings")
    assert r.status_code == 405 and r.json()["error"]["code"] == "method_not_allowed"
    _alive(desk)


def test_a_crash_is_logged_counted_answered_500_and_the_desk_serves_on(
        desk: Desk, caplog: Any) -> None:
    import sqlite3

    assert desk.server.app is not None

    def boom() -> None:
        raise RuntimeError("a bug")

    async def aboom() -> None:
        raise KeyError("async bug")

    def locked() -> None:
        exc = sqlite3.OperationalError("database is locked")
        exc.sqlite_errorname = "SQLITE_BUSY"  # type: ignore[attr-defined]
        raise exc

    desk.server.app.add_api_route("/api/v1/test-boom", boom)
    desk.server.app.add_api_route("/api/v1/test-aboom", aboom)
    desk.server.app.add_api_route("/api/v1/test-locked", locked)
    c = desk.client("admin")
    for path in ("/api/v1/test-boom", "/api/v1/test-aboom"):
        r = c.get(path)
        assert r.status_code == 500
        err = r.json()["error"]
        assert err["code"] == "internal" and err["message_zh"]
        assert "a bug" not in r.text and "Traceback" not in r.text  # nothing internal leaks
    r = c.get("/api/v1/test-locked")
    assert r.status_code == 503 and r.json()["error"]["code"] == "store_unavailable"
    if not isinstance(desk.config.db, str):  # an SQLite file: scheduler.dbfile.explain
        assert "run the command again" in r.json()["error"]["message"]
    assert any("unhandled error" in rec.getMessage() for rec in caplog.records)
    stats = c.get("/api/v1/stats").json()
    assert stats["errors"]["crash"] == 2 and stats["errors"]["internal"] == 2
    _alive(desk)


def test_requests_that_would_stall_every_plan_are_refused(desk: Desk) -> None:
    c = desk.client("producer")
    base = {"production": "X", "duration_minutes": 60, "priority": 1,
            "earliest_start": "2031-03-04 08:00", "latest_end": "2031-03-04 20:00"}
    for change, field in (({"priority": 10**30}, "priority"),
                          ({"latest_end": "2131-03-04"}, "latest_end"),
                          ({"duration_minutes": 10**9}, "duration_minutes"),
                          ({"id": "../../etc"}, "id"), ({"id": "x" * 65}, "id"),
                          ({"production": "p" * 201}, "production"),
                          ({"requires": ["led_8k"] * 51}, "requires")):
        r = c.post("/api/v1/bookings", json={**base, **change})
        assert r.status_code == 400, (change, r.text)
        assert r.json()["error"]["details"]["field"] == field
    r = c.post("/api/v1/bookings", json={**base, "id": "SHOOT-2031.03:A_1"})
    assert r.status_code == 201
    r = c.post("/api/v1/bookings", json={**base, "id": "SHOOT-2031.03:A_1"})
    assert r.status_code == 409
    assert r.json()["error"]["details"]["explanation_zh"] == ["预订 SHOOT-2031.03:A_1 已存在"]


def test_schema_errors_name_the_field_in_both_languages(desk: Desk) -> None:
    c = desk.client("producer")
    bid = _booking(desk)
    cases = [
        (f"/api/v1/bookings/{bid}/hold", {"stage": 3, "start": "x"}, "stage", "应为字符串"),
        (f"/api/v1/bookings/{bid}/hold", {"colour": "red"}, "colour", "未知字段"),
        (f"/api/v1/bookings/{bid}/challenge", {}, "deadline", "缺少此字段"),
        ("/api/v1/solve", {"time_limit_s": 600}, "time_limit_s", "应不大于 60"),
        ("/api/v1/solve", {"apply": "perhaps"}, "apply", "应为 true 或 false"),
        ("/api/v1/outages", {"stage": "HP-1", "start": "x" * 101, "end": "y"}, "start",
         "太长（最多 100 个字符）"),
    ]
    for path, body, field, zh in cases:
        r = c.post(path, json=body)
        assert r.status_code == 422, (path, body, r.text)
        err = r.json()["error"]
        assert err["code"] == "invalid" and err["details"]["field"] == field, err
        assert zh in err["message_zh"], err
        assert err["message"].startswith(f"{field}: ")
