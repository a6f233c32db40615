"""The desk's ICS feeds over real HTTP: RFC 5545, a third-party parser, updates, tokens.

A desk (uvicorn on loopback, port 0) on a copy of the seeded database, with a clock the test
moves, so a change made later carries a later DTSTAMP. Each feed is read twice: by the
``icalendar`` package as a calendar client would, and by :mod:`tests.desk.test_ics_rfc5545`,
a strict reading written from the RFC's text (octets, folding, grammar, required properties).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import icalendar
import pytest

from stagectl.desk.config import DeskConfig
from stagectl.desk.ics import CANCELLED_KEPT, feed_uid
from stagectl.desk.server import DeskServer
from tests.desk.conftest import SEED, Template
from tests.desk.test_ics_rfc5545 import Component, parse, unescape_text

PRODUCTION = "沙丘：第三部, Dune; Part Three — the long production name that forces folding"


class Clock:
    """The desk's "now", moved by the test."""

    def __init__(self) -> None:
        self.now = datetime(2031, 2, 20, 1, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> None:
        self.now += timedelta(**kw)


@dataclass
class Feeds:
    """A running desk, its clock and a client per user."""

    server: DeskServer
    clock: Clock
    tokens: dict[str, str]
    clients: list[httpx.Client]

    def client(self, user: str | None = None) -> httpx.Client:
        c = httpx.Client(base_url=self.server.url, timeout=30.0)
        if user is not None:
            c.headers["Authorization"] = f"Bearer {self.tokens[user]}"
        self.clients.append(c)
        return c


@pytest.fixture
def feeds(desk_template: Template, tmp_path: Path) -> Iterator[Feeds]:
    db = desk_template.copy(tmp_path)
    clock = Clock()
    server = DeskServer(replace(DeskConfig(db=db, seed=SEED, port=0)), clock=clock).start()
    f = Feeds(server, clock, dict(desk_template.tokens), [])
    try:
        yield f
    finally:
        for c in f.clients:
            c.close()
        server.stop()


def _ok(r: httpx.Response, status: int = 200) -> Any:
    assert r.status_code == status, r.text
    return r.json()


def _request(c: httpx.Client, bid: str, stage: str, start: str, **kw: Any) -> dict[str, Any]:
    body = {"id": bid, "production": PRODUCTION, "duration_minutes": 240, "priority": 2,
            "earliest_start": "2031-03-04 00:00", "latest_end": "2031-03-06",
            "stage": stage, "start": start, **kw}
    return dict(_ok(c.post("/api/v1/bookings", json=body), 201))


def _feed_urls(c: httpx.Client) -> dict[str, str]:
    doc = _ok(c.get("/api/v1/feeds"))
    urls = {f"stage:{x['stage']}": x["url"] for x in doc["stages"]}
    urls.update({f"production:{x['production']}": x["url"] for x in doc["productions"]})
    return urls


def _get_feed(url: str, **params: str) -> tuple[bytes, Component, icalendar.Calendar]:
    r = httpx.get(httpx.URL(url).copy_merge_params(params), timeout=30.0)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "text/calendar; charset=utf-8"
    strict = parse(r.content)  # raises on any RFC 5545 breach
    return r.content, strict, icalendar.Calendar.from_ical(r.content)


def _events(cal: icalendar.Calendar) -> dict[str, icalendar.Component]:
    return {str(e["UID"]): e for e in cal.walk("VEVENT")}


def test_a_stage_feed_is_valid_rfc_5545_and_reads_in_icalendar(feeds: Feeds) -> None:
    p = feeds.client("producer")
    _request(p, "F1", "HP-3", "2031-03-04 08:00")
    _request(p, "F2", "HP-3", "2031-03-04 10:00")
    _request(p, "F3", "HP-3", "2031-03-05 08:00")
    _request(p, "F4", "HP-3", "2031-03-05 14:00")  # requested only: not in any feed
    for bid in ("F1", "F2", "F3"):
        _ok(p.post(f"/api/v1/bookings/{bid}/hold"))
    _ok(p.post("/api/v1/bookings/F3/confirm"))
    url = _feed_urls(feeds.client("viewer"))["stage:HP-3"]
    raw, strict, cal = _get_feed(url)

    # octets: every line CRLF-terminated and at most 75 octets (the strict reader checked
    # both); the long Chinese name really was folded, without splitting a character
    assert b"\r\n " in raw
    assert all(len(line) <= 75 for line in raw.split(b"\r\n"))
    assert strict.one("VERSION") == "2.0" and strict.one("PRODID")
    assert str(cal["X-WR-CALNAME"]) == "stage HP-3"

    events = _events(cal)
    assert set(events) == {feed_uid(b) for b in ("F1", "F2", "F3")}
    f1, f2, f3 = (events[feed_uid(b)] for b in ("F1", "F2", "F3"))
    assert str(f1["STATUS"]) == "TENTATIVE" and str(f2["STATUS"]) == "TENTATIVE"
    assert str(f1["X-STAGECTL-HOLD-RANK"]) == "1" and str(f2["X-STAGECTL-HOLD-RANK"]) == "2"
    assert str(f3["STATUS"]) == "CONFIRMED"
    # DTSTART/DTEND in UTC: 08:00 in Huangpu is 00:00Z
    assert f1.decoded("DTSTART") == datetime(2031, 3, 4, 0, 0, tzinfo=UTC)
    assert f1.decoded("DTEND") == datetime(2031, 3, 4, 4, 0, tzinfo=UTC)
    (s1,) = [e for e in strict.walk("VEVENT") if e.one("UID") == feed_uid("F1")]
    assert s1.one("DTSTART") == "20310304T000000Z" and s1.one("DTEND") == "20310304T040000Z"
    # the TEXT escaping of ',' and ';' round-trips through both readers
    assert PRODUCTION in unescape_text(s1.one("SUMMARY"))
    assert PRODUCTION in str(f1["SUMMARY"])
    assert not cal.walk("VTIMEZONE")


def test_a_move_keeps_the_uid_with_a_higher_sequence_and_a_later_dtstamp(
        feeds: Feeds) -> None:
    p, e = feeds.client("producer"), feeds.client("engineer")
    _request(p, "M1", "HP-3", "2031-03-04 08:00")
    _ok(p.post("/api/v1/bookings/M1/hold"))
    _ok(p.post("/api/v1/bookings/M1/confirm"))
    url = _feed_urls(feeds.client("viewer"))[f"production:{PRODUCTION}"]
    _, strict_before, before = _get_feed(url)
    old = _events(before)[feed_uid("M1")]

    feeds.clock.advance(hours=2)
    moved = _ok(e.post("/api/v1/outages", json={
        "stage": "HP-3", "start": "2031-03-04 00:00", "end": "2031-03-04 23:45",
        "reason": "LED processor swap", "apply": True}))
    assert [m["booking"] for m in moved["moved"]] == ["M1"]

    _, strict_after, after = _get_feed(url)
    events = _events(after)
    assert list(events) == [feed_uid("M1")]  # the same event, not a second one
    new = events[feed_uid("M1")]
    assert int(str(new["SEQUENCE"])) > int(str(old["SEQUENCE"]))
    assert new.decoded("DTSTAMP") > old.decoded("DTSTAMP")
    assert new.decoded("DTSTAMP") == feeds.clock.now.replace(microsecond=0)
    assert (new.decoded("DTSTART"), str(new["LOCATION"])) != \
        (old.decoded("DTSTART"), str(old["LOCATION"]))
    assert str(new["STATUS"]) == "CONFIRMED"
    # the strict reading agrees with the parser
    (s_old,) = strict_before.walk("VEVENT")
    (s_new,) = strict_after.walk("VEVENT")
    assert s_old.one("UID") == s_new.one("UID")
    assert int(s_new.one("SEQUENCE")) > int(s_old.one("SEQUENCE"))
    assert s_new.one("DTSTAMP") > s_old.one("DTSTAMP")


def test_cancelled_and_released_stay_as_cancelled_for_30_days(feeds: Feeds) -> None:
    p = feeds.client("producer")
    _request(p, "C1", "HP-4", "2031-03-04 08:00")
    _request(p, "C2", "HP-4", "2031-03-05 08:00")
    _request(p, "C3", "HP-4", "2031-03-05 16:00")
    for bid in ("C1", "C2", "C3"):
        _ok(p.post(f"/api/v1/bookings/{bid}/hold"))
    _ok(p.post("/api/v1/bookings/C1/confirm"))
    _request(p, "C4", "HP-4", "2031-03-04 14:00")  # requested, then cancelled: never listed
    url = _feed_urls(feeds.client("viewer"))["stage:HP-4"]
    first = _events(_get_feed(url)[2])

    feeds.clock.advance(minutes=5)
    _ok(p.post("/api/v1/bookings/C1/cancel", json={"reason": "script rewrite"}))
    _ok(p.post("/api/v1/bookings/C2/release"))
    _ok(p.post("/api/v1/bookings/C4/cancel"))
    events = _events(_get_feed(url)[2])
    assert set(events) == {feed_uid(b) for b in ("C1", "C2", "C3")}
    for bid in ("C1", "C2"):
        ev = events[feed_uid(bid)]
        assert str(ev["STATUS"]) == "CANCELLED"
        assert int(str(ev["SEQUENCE"])) > int(str(first[feed_uid(bid)]["SEQUENCE"]))
        assert ev.decoded("DTSTAMP") > first[feed_uid(bid)].decoded("DTSTAMP")
    assert "(cancelled)" in str(events[feed_uid("C1")]["SUMMARY"])
    assert "(released)" in str(events[feed_uid("C2")]["SUMMARY"])
    assert str(events[feed_uid("C3")]["STATUS"]) == "TENTATIVE"

    feeds.clock.advance(days=CANCELLED_KEPT.days, minutes=1)
    later = _events(_get_feed(url)[2])
    assert set(later) == {feed_uid("C3")}


def test_the_feed_speaks_chinese_with_lang_zh(feeds: Feeds) -> None:
    p = feeds.client("producer")
    _request(p, "Z1", "NS-2", "2031-03-04 08:00")
    _ok(p.post("/api/v1/bookings/Z1/hold"))
    url = _feed_urls(feeds.client("viewer"))["stage:NS-2"]
    _, strict, cal = _get_feed(url, lang="zh")
    ev = _events(cal)[feed_uid("Z1")]
    assert "第 1 预留" in str(ev["SUMMARY"]) and "预订 Z1" in str(ev["DESCRIPTION"])
    assert str(cal["X-WR-CALNAME"]) == "摄影棚 NS-2"
    r = httpx.get(httpx.URL(url).copy_merge_params({"lang": "fr"}))
    assert r.status_code == 400 and r.json()["error"]["details"]["field"] == "lang"


def test_unchanged_feed_answers_304_to_its_etag(feeds: Feeds) -> None:
    url = _feed_urls(feeds.client("viewer"))["stage:SZ-1"]
    r = httpx.get(url)
    assert r.status_code == 200 and r.headers["etag"]
    again = httpx.get(url, headers={"If-None-Match": r.headers["etag"]})
    assert again.status_code == 304 and again.content == b""


def _swap_token(url: str, token: str | None) -> str:
    base = url.split("?", 1)[0]
    return base if token is None else f"{base}?token={quote(token, safe='')}"


def test_a_bad_or_missing_token_is_401_and_says_nothing_of_what_exists(feeds: Feeds) -> None:
    urls = _feed_urls(feeds.client("viewer"))
    real = urls["stage:HP-1"]
    base = feeds.server.url
    answers = []
    for token in (None, "", "nope", "x" * 256, "'; DROP TABLE desk_users; --"):
        for path in ("/ics/stage/HP-1.ics", "/ics/stage/NO-SUCH.ics",
                     "/ics/production/Nobody.ics", f"/ics/production/{quote(PRODUCTION)}.ics"):
            r = httpx.get(_swap_token(base + path, token))
            assert r.status_code == 401, (token, path, r.text)
            err = r.json()["error"]
            assert err["code"] == "unauthenticated" and err["message_zh"]
            answers.append((bool(token), r.headers["content-type"], r.content))
    # one answer for every path: an unknown stage reads exactly like a real one (a missing
    # token is told it is missing, a wrong one that it is not valid, whatever the path)
    assert len({a for a in answers if a[0]}) == 1
    assert len({a for a in answers if not a[0]}) == 1
    assert b"?token=" in next(a[2] for a in answers if not a[0])
    # a valid token is needed to learn a stage or production is unknown
    r = httpx.get(real.replace("/HP-1.ics", "/NO-SUCH.ics"))
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    r = httpx.get(real.replace("/stage/HP-1.ics", "/production/Nobody.ics"))
    assert r.status_code == 404
    # an API token is not a feed token
    r = httpx.get(_swap_token(real, feeds.tokens["viewer"]))
    assert r.status_code == 401


def test_a_disabled_user_s_feed_stops_working(feeds: Feeds) -> None:
    url = _feed_urls(feeds.client("viewer"))["stage:HP-1"]
    assert httpx.get(url).status_code == 200
    _ok(feeds.client("admin").post("/api/v1/users/viewer/disable"))
    r = httpx.get(url)
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthenticated"


def test_production_names_with_slashes_spaces_and_chinese_have_feeds(feeds: Feeds) -> None:
    p = feeds.client("producer")
    name = "剧组 A/B test"
    _request(p, "P1", "SZ-2", "2031-03-04 08:00", production=name)
    _ok(p.post("/api/v1/bookings/P1/hold"))
    url = _feed_urls(feeds.client("viewer"))[f"production:{name}"]
    _, _, cal = _get_feed(url)
    assert set(_events(cal)) == {feed_uid("P1")}
    assert str(cal["X-WR-CALNAME"]) == f"production {name}"


def test_a_hold_promoted_when_the_one_above_leaves_gets_a_later_dtstamp(feeds: Feeds) -> None:
    p = feeds.client("producer")
    _request(p, "R1", "NS-1", "2031-03-04 08:00", requires=[])
    _request(p, "R2", "NS-1", "2031-03-04 09:00", requires=[])
    _ok(p.post("/api/v1/bookings/R1/hold"))
    _ok(p.post("/api/v1/bookings/R2/hold"))
    url = _feed_urls(feeds.client("viewer"))["stage:NS-1"]
    before = _events(_get_feed(url)[2])[feed_uid("R2")]
    assert str(before["X-STAGECTL-HOLD-RANK"]) == "2"

    feeds.clock.advance(minutes=30)
    _ok(p.post("/api/v1/bookings/R1/release"))
    after = _events(_get_feed(url)[2])[feed_uid("R2")]
    assert str(after["X-STAGECTL-HOLD-RANK"]) == "1" and "(hold 1)" in str(after["SUMMARY"])
    # only hold_rank changed in the row; the DTSTAMP still moves on, so clients take the title
    assert after.decoded("DTSTAMP") > before.decoded("DTSTAMP")


def test_a_hold_that_expires_turns_cancelled_in_the_feed(feeds: Feeds) -> None:
    p = feeds.client("producer")
    _request(p, "E1", "NS-3", "2031-03-04 08:00")
    _ok(p.post("/api/v1/bookings/E1/hold", json={"expires": "2031-02-21 08:00"}))
    url = _feed_urls(feeds.client("viewer"))["stage:NS-3"]
    before = _events(_get_feed(url)[2])[feed_uid("E1")]
    assert str(before["STATUS"]) == "TENTATIVE"
    feeds.clock.advance(days=2)
    # the desk applies deadlines at most once a second: poll with a deadline
    deadline = time.monotonic() + 5.0
    while True:
        ev = _events(_get_feed(url)[2])[feed_uid("E1")]
        if str(ev["STATUS"]) == "CANCELLED" or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert str(ev["STATUS"]) == "CANCELLED" and "(expired)" in str(ev["SUMMARY"])
    assert int(str(ev["SEQUENCE"])) > int(str(before["SEQUENCE"]))


def test_hostile_feed_paths_and_tokens_get_contract_errors_and_the_desk_serves_on(
        feeds: Feeds) -> None:
    url = _feed_urls(feeds.client("viewer"))["stage:HP-1"]
    token = url.split("token=", 1)[1]
    base = feeds.server.url
    for path in ("/ics/stage/%00.ics", "/ics/stage/" + "A" * 3000 + ".ics",
                 "/ics/stage/..%2F..%2Fetc%2Fpasswd.ics", "/ics/production/%FF%FE.ics",
                 "/ics/production/" + "长" * 500 + ".ics"):
        r = httpx.get(f"{base}{path}?token={token}")
        assert r.status_code == 404, (path, r.status_code, r.text[:200])
        assert r.json()["error"]["code"] == "not_found"
    for bad in ("%00", "令牌", "a" * 257, "%FF"):
        r = httpx.get(f"{base}/ics/stage/HP-1.ics?token={bad}")
        assert r.status_code in (401, 422), (bad, r.status_code)
        assert r.json()["error"]["code"] in ("unauthenticated", "invalid")
    r = httpx.post(url)
    assert r.status_code == 405 and r.json()["error"]["code"] == "method_not_allowed"
    head = httpx.head(url)
    assert head.status_code == 200 and head.content == b""
    assert httpx.get(url).status_code == 200
    stats = _ok(feeds.client("admin").get("/api/v1/stats"))
    assert stats["errors"].get("unauthenticated", 0) >= 1
    assert stats["errors"].get("crash", 0) == 0


def test_feeds_read_concurrently_while_bookings_change(feeds: Feeds) -> None:
    from concurrent.futures import ThreadPoolExecutor

    p = feeds.client("producer")
    url = _feed_urls(feeds.client("viewer"))["stage:SZ-3"]

    def fetch(_: int) -> int:
        with httpx.Client(timeout=30.0) as c:
            r = c.get(url)
            parse(r.content)
            return r.status_code

    with ThreadPoolExecutor(8) as pool:
        pending = [pool.submit(fetch, i) for i in range(40)]
        for n in range(6):
            _request(p, f"K{n}", "SZ-3", f"2031-03-0{4 + n // 3} {8 + 4 * (n % 3):02d}:00")
            _ok(p.post(f"/api/v1/bookings/K{n}/hold"))
        codes = [f.result() for f in pending]
    assert codes == [200] * 40
    assert set(_events(_get_feed(url)[2])) == {feed_uid(f"K{n}") for n in range(6)}
