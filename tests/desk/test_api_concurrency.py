"""Concurrency smoke: many clients holding and confirming overlapping slots at once."""

from __future__ import annotations

import re
import threading
from datetime import datetime, timedelta
from typing import Any

import httpx

from tests.desk.conftest import Desk

CLIENTS = 50


def test_overlapping_confirmations_never_double_book(desk: Desk) -> None:
    barrier = threading.Barrier(CLIENTS)
    results: list[dict[str, Any]] = []
    failures: list[BaseException] = []
    lock = threading.Lock()

    def one(n: int) -> None:
        try:
            with httpx.Client(base_url=desk.url, timeout=60.0, headers={
                    "Authorization": f"Bearer {desk.token('producer')}"}) as c:
                start = datetime(2031, 3, 4, 8, 0) + timedelta(minutes=15 * (n % 8))
                r = c.post("/api/v1/bookings", json={
                    "production": f"P{n}", "duration_minutes": 120, "priority": 1,
                    "earliest_start": "2031-03-04 06:00", "latest_end": "2031-03-04 20:00",
                    "stage": "HP-3", "start": start.strftime("%Y-%m-%d %H:%M")})
                assert r.status_code == 201, r.text
                bid = r.json()["id"]
                barrier.wait(timeout=90)
                steps = [(a, c.post(f"/api/v1/bookings/{bid}/{a}"))
                         for a in ("hold", "confirm")]
                with lock:
                    results.append({"id": bid, "steps": [(a, x.status_code, x.json())
                                                         for a, x in steps]})
        except BaseException as exc:  # reported below, the thread must not die silently
            with lock:
                failures.append(exc)

    threads = [threading.Thread(target=one, args=(n,), name=f"client-{n}")
               for n in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not failures, failures
    assert len(results) == CLIENTS
    for res in results:
        for action, status, body in res["steps"]:
            assert status in (200, 409), (action, status, body)
            if status == 409:
                err = body["error"]
                assert err["code"] == "refused"
                assert err["details"]["explanation"], err
                assert all(isinstance(x, str) and x for x in err["details"]["explanation"])
                zh = err["details"]["explanation_zh"]
                assert len(zh) == len(err["details"]["explanation"])
                assert all(re.search("[\u4e00-\u9fff]", x) for x in zh), zh
    rows = desk.client("viewer").get("/api/v1/bookings", params={"stage": "HP-3"}).json()
    assert len({r["id"] for r in rows}) == CLIENTS  # every acknowledged request is stored
    confirmed = sorted((datetime.fromisoformat(r["start"]), datetime.fromisoformat(r["end"]))
                       for r in rows if r["status"] == "confirmed")
    assert confirmed, "at least one confirmation goes through"
    changeover = timedelta(minutes=desk.client("viewer").get("/api/v1/stages/HP-3")
                           .json()["changeover_minutes"])
    for (_, a1), (b0, _) in zip(confirmed, confirmed[1:], strict=False):
        assert a1 + changeover <= b0, f"double booking: {confirmed}"
    confirmed_ids = {r["id"] for r in rows if r["status"] == "confirmed"}
    said_yes = {res["id"] for res in results if res["steps"][1][1] == 200}
    assert confirmed_ids == said_yes  # what was acknowledged is what is stored
    assert desk.client("viewer").get("/api/v1/me").status_code == 200
