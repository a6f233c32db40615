"""Seeded generator of realistic booking months (for the benchmark and the tests).

Three sites (Huangpu, Nansha, Shenzhen), ten stages with different capabilities, shared crew
and kit pools, maintenance outages, some stages with opening hours, a few confirmed bookings
and ranked holds. ``demand`` scales how much stage time is asked for: "normal" is roughly
three quarters of what the stages can give, "overloaded" well over all of it.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from scheduler.booking.greedy import greedy_plan
from scheduler.booking.model import Status
from scheduler.booking.parse import problem_from_dict

SITES = {
    "Huangpu": ("HP", 4, "Asia/Shanghai"),
    "Nansha": ("NS", 3, "Asia/Shanghai"),
    "Shenzhen": ("SZ", 3, "Asia/Shanghai"),
}
CAPABILITIES = ["led_8k", "ceiling", "arm", "xr", "volumetric"]
DEMAND_SCALE = {"normal": 0.6, "overloaded": 2.0}


def _iso(dt: datetime) -> str:
    return dt.isoformat()


def generate_month(
    seed: int = 1,
    demand: str = "normal",
    n_requests: int = 300,
    month_start: datetime | None = None,
    days: int = 30,
    slot_minutes: int = 15,
) -> dict[str, Any]:
    """A month of stages, pools and booking requests, as a ``solve`` JSON input document."""
    if demand not in DEMAND_SCALE:
        raise ValueError(f"demand must be one of {sorted(DEMAND_SCALE)}, got {demand!r}")
    rng = random.Random(f"{seed}-{demand}")
    tz = ZoneInfo("Asia/Shanghai")
    t0 = month_start or datetime(2031, 3, 1, tzinfo=tz)
    t_end = t0 + timedelta(days=days)
    stages: list[dict[str, Any]] = []
    for site, (prefix, count, zone) in SITES.items():
        for i in range(count):
            caps = {"led_8k"} if rng.random() < 0.7 else set()
            caps |= {c for c in CAPABILITIES[1:] if rng.random() < 0.45}
            stage: dict[str, Any] = {
                "id": f"{prefix}-{i + 1}",
                "site": site,
                "timezone": zone,
                "capabilities": sorted(caps),
                "changeover_minutes": rng.choice([30, 60, 60, 90, 120]),
                "day_rate_cny": rng.choice([80_000, 120_000, 150_000, 200_000]),
                "prelight_strike_rate_cny": rng.choice([30_000, 40_000, 50_000]),
                "wall_width_m": rng.choice([20, 30, 40]),
                "wall_height_m": rng.choice([6, 8, 10]),
                "pixel_pitch_mm": rng.choice([1.5, 1.9, 2.6]),
            }
            if site == "Shenzhen" and i == 0:
                stage["open"] = [
                    [_iso(t0 + timedelta(days=d, hours=7)), _iso(t0 + timedelta(days=d, hours=23))]
                    for d in range(days)
                ]
            outages = []
            for _ in range(rng.choice([0, 1, 1, 2])):
                start = t0 + timedelta(days=rng.randrange(days), hours=rng.choice([0, 8, 20]))
                outages.append([_iso(start), _iso(start + timedelta(hours=rng.choice([4, 8, 24])))])
            stage["outages"] = sorted(outages)
            stages.append(stage)
    pools = [
        {"id": "led_technicians", "capacity": 14, "kind": "crew"},
        {"id": "arm_operators", "capacity": 2, "kind": "crew"},
        {"id": "arm_kits", "capacity": 2, "kind": "equipment"},
        {"id": "xr_kits", "capacity": 3, "kind": "equipment"},
    ]
    scale = DEMAND_SCALE[demand]
    bookings: list[dict[str, Any]] = []
    for n in range(n_requests):
        hours = rng.choice([4, 6, 8, 10, 12, 12, 16, 24, 24, 36, 48]) * scale
        duration = max(slot_minutes, int(hours * 60) // slot_minutes * slot_minutes)
        slack_h = rng.choice([4, 12, 24, 48, 72, 120])
        earliest = t0 + timedelta(hours=rng.randrange(0, days * 24 - 12))
        latest = min(t_end, earliest + timedelta(minutes=duration) + timedelta(hours=slack_h))
        if latest - earliest < timedelta(minutes=duration):
            earliest = latest - timedelta(minutes=duration) - timedelta(hours=slack_h // 2)
        requires = sorted({c for c in CAPABILITIES if rng.random() < 0.12})
        needs: dict[str, int] = {"led_technicians": rng.choice([1, 1, 2])}
        if "arm" in requires:
            needs["arm_kits"] = 1
            needs["arm_operators"] = 1
        if "xr" in requires:
            needs["xr_kits"] = 1
        booking: dict[str, Any] = {
            "id": f"R{n + 1:03d}",
            "production": f"Production {rng.randrange(1, 40):02d}",
            "contact": f"producer{rng.randrange(1, 25)}@example.com",
            "priority": rng.choices([1, 2, 3, 4, 5], weights=[30, 30, 20, 12, 8])[0],
            "status": "requested",
            "duration_minutes": duration,
            "earliest_start": _iso(earliest),
            "latest_end": _iso(latest),
            "requires": requires,
            "pools": needs,
        }
        if rng.random() < 0.25:
            site = rng.choice(list(SITES))
            booking["stages"] = [s["id"] for s in stages if s["site"] == site]
        if rng.random() < 0.15:
            booking["status"] = "hold"
            booking["hold_rank"] = rng.choice([1, 1, 2, 3])
        if duration >= 8 * 60 and rng.random() < 0.4:
            pre = strike = 2 * 60
            booking["phases"] = [
                {"name": "prelight", "duration_minutes": pre},
                {"name": "shoot", "duration_minutes": duration - pre - strike},
                {"name": "strike", "duration_minutes": strike},
            ]
        bookings.append(booking)
    doc = {"slot_minutes": slot_minutes, "stages": stages, "pools": pools, "bookings": bookings}
    _confirm_some(doc, rng, fraction=0.08)
    return doc


def _confirm_some(doc: dict[str, Any], rng: random.Random, fraction: float) -> None:
    """Mark a consistent subset as already confirmed, placed where greedy would put them."""
    picked = [b for b in doc["bookings"] if rng.random() < fraction and b["status"] == "requested"]
    sub = dict(doc, bookings=picked)
    plan = greedy_plan(problem_from_dict(sub))
    placed = {a.id: a for a in plan.assignments}
    stages = {s["id"]: s for s in doc["stages"]}
    for b in picked:
        a = placed.get(b["id"])
        if a is not None:
            b["status"] = Status.CONFIRMED.value
            b["stage"] = a.stage
            b["start"] = a.start.astimezone(ZoneInfo(stages[a.stage]["timezone"])).isoformat()
