"""Preview, then apply: the desk stores exactly the plan it showed, while nothing changed.

CP-SAT on several threads may return another of several equally good plans on each run, so
applying must not solve again when the preview still holds; after a change it must.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from scheduler.booking.store import BookingStore
from tests.desk.conftest import Desk

DAY = "2031-03-04"


def _confirmed(c: httpx.Client, stage: str, start: str, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"production": "Dune", "duration_minutes": 240, "priority": 2,
                            "earliest_start": f"{DAY} 08:00", "latest_end": "2031-03-06",
                            "requires": ["led_8k"], "stage": stage, "start": start}
    body.update(fields)
    r = c.post("/api/v1/bookings", json=body)
    assert r.status_code == 201, r.text
    b = dict(r.json())
    c.post(f"/api/v1/bookings/{b['id']}/hold").raise_for_status()
    c.post(f"/api/v1/bookings/{b['id']}/confirm").raise_for_status()
    return b


def _no_second_plan(*args: object, **kwargs: object) -> None:
    raise AssertionError("planned again although nothing changed since the preview")


def test_outage_apply_stores_the_previewed_moves(desk: Desk,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    c = desk.client("engineer")
    b = _confirmed(c, "HP-3", f"{DAY} 08:00")
    body = {"stage": "HP-3", "start": f"{DAY} 00:00", "end": f"{DAY} 23:00",
            "reason": "wall repair", "time_limit_s": 2}
    preview = c.post("/api/v1/outages", json=body).json()
    assert [m["booking"] for m in preview["moved"]] == [b["id"]]
    monkeypatch.setattr(BookingStore, "_replan_outage", _no_second_plan)
    r = c.post("/api/v1/outages", json={**body, "apply": True})
    assert r.status_code == 200, r.text
    assert r.json()["moved"] == preview["moved"]
    after = c.get(f"/api/v1/bookings/{b['id']}").json()
    m = preview["moved"][0]
    assert (after["stage"], after["start"]) == (m["to_stage"], m["to_start"])


def test_outage_apply_plans_again_after_a_change(desk: Desk,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    c = desk.client("engineer")
    _confirmed(c, "HP-3", f"{DAY} 08:00")
    body = {"stage": "HP-3", "start": f"{DAY} 00:00", "end": f"{DAY} 23:00",
            "reason": "wall repair", "time_limit_s": 2}
    c.post("/api/v1/outages", json=body).raise_for_status()
    r = c.post("/api/v1/bookings", json={  # the store changed since the preview
        "production": "Alien", "duration_minutes": 60, "priority": 2,
        "earliest_start": f"{DAY} 08:00", "latest_end": "2031-03-06", "requires": ["led_8k"]})
    assert r.status_code == 201, r.text
    calls: list[int] = []
    real = BookingStore._replan_outage

    def counting(self: BookingStore, *args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(BookingStore, "_replan_outage", counting)
    r = c.post("/api/v1/outages", json={**body, "apply": True})
    assert r.status_code == 200, r.text
    assert calls == [1]


def test_solve_apply_stores_the_previewed_plan(desk: Desk,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    c = desk.client("engineer")
    for prod in ("Dune", "Alien", "Heat"):
        r = c.post("/api/v1/bookings", json={
            "production": prod, "duration_minutes": 240, "priority": 2,
            "earliest_start": f"{DAY} 08:00", "latest_end": "2031-03-06",
            "requires": ["led_8k"]})
        assert r.status_code == 201, r.text
    preview = c.post("/api/v1/solve", json={"time_limit_s": 2}).json()
    assert len(preview["assignments"]) == 3
    import scheduler.booking.store as store_module

    monkeypatch.setattr(store_module, "solve", _no_second_plan)
    r = c.post("/api/v1/solve", json={"time_limit_s": 2, "apply": True})
    assert r.status_code == 200, r.text
    shown = {(a["booking"], a["stage"], a["start"]) for a in preview["assignments"]}
    assert {(a["booking"], a["stage"], a["start"]) for a in r.json()["assignments"]} == shown
    for booking, stage, start in shown:
        rec = c.get(f"/api/v1/bookings/{booking}").json()
        assert (rec["status"], rec["stage"], rec["start"]) == ("hold", stage, start)
