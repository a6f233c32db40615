"""The demo's desk: a month from this week, put through the store's lifecycle, and a login."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from scheduler.booking.checker import check_plan
from scheduler.booking.model import Assignment, Status
from scheduler.booking.store import BookingStore
from stagectl.cli import desk_demo
from stagectl.desk.config import load_desk_config
from stagectl.desk.seed import seed_month, week_start
from stagectl.desk.server import DeskServer

NOW = datetime(2026, 12, 2, 3, 0, tzinfo=UTC)  # a Wednesday, 11:00 in Shanghai


def test_week_starts_on_monday_in_the_site_zone() -> None:
    start = week_start(NOW)
    assert start.isoformat() == "2026-11-30T00:00:00+08:00"
    # 23:30 UTC on Sunday is already Monday in Shanghai
    assert week_start(datetime(2026, 12, 6, 16, 30, tzinfo=UTC)).day == 7


def test_seeded_month_is_a_valid_plan_from_this_week(tmp_path: Path) -> None:
    store = BookingStore(tmp_path / "b.sqlite")
    try:
        report = seed_month(store, NOW, requests=30)
        records = store.records()
        counts = Counter(r.status for r in records)
        assert report.requested == 30 and report.refused == 0
        assert counts[Status.CONFIRMED] >= 1 and counts[Status.HOLD] >= 1
        placed = [r for r in records if r.status in (Status.HOLD, Status.CONFIRMED)]
        assert all(r.booking.start >= report.start for r in placed)  # type: ignore[operator]
        assert all(r.booking.start < report.start + timedelta(days=28)  # type: ignore[operator]
                   for r in placed)
        confirmed = [Assignment(r.id, r.booking.stage, r.booking.start,  # type: ignore[arg-type]
                                r.booking.end)  # type: ignore[arg-type]
                     for r in records if r.status is Status.CONFIRMED]
        problem = store.problem(frozenset({Status.CONFIRMED}))
        assert check_plan(problem, confirmed, []) == []  # no two confirmed overlap
        assert {h.actor for h in store.history()} <= {"demo-seed", "system"}  # system: sweeps
    finally:
        store.close()


def test_demo_desk_serves_the_month_to_its_printed_login(tmp_path: Path) -> None:
    config_path, url, password = desk_demo.prepare(tmp_path / "desk")
    config = load_desk_config(config_path)
    with DeskServer(config) as desk:
        with httpx.Client(base_url=desk.url) as client:
            assert client.get("/api/v1/bookings").status_code == 401
            login = client.post("/api/v1/session",
                                json={"user": desk_demo.DEMO_USER, "password": password})
            assert login.status_code == 200, login.text
            assert login.json()["role"] == "producer"
            bookings = client.get("/api/v1/bookings").json()
    assert len(bookings) >= 30
    assert url.startswith("http://127.0.0.1:")
