"""Small hand-made instances shared by the booking tests."""

from __future__ import annotations

from typing import Any

T0 = "2031-05-04T08:00:00+08:00"


def at(hour: float, day: int = 4) -> str:
    h = int(hour)
    m = int(round((hour - h) * 60))
    return f"2031-05-{day:02d}T{h:02d}:{m:02d}:00+08:00"


def stages_doc() -> dict[str, Any]:
    return {
        "slot_minutes": 15,
        "stages": [
            {"id": "HP-1", "site": "Huangpu", "capabilities": ["led_8k", "arm"],
             "changeover_minutes": 60, "day_rate_cny": 100000, "prelight_strike_rate_cny": 40000},
            {"id": "NS-1", "site": "Nansha", "capabilities": ["led_8k"],
             "changeover_minutes": 30, "day_rate_cny": 80000},
            {"id": "HK-1", "site": "Hong Kong", "timezone": "Asia/Hong_Kong",
             "capabilities": ["xr"], "changeover_minutes": 0,
             "open": [[at(8), at(20)], [at(8, 5), at(20, 5)]]},
        ],
        "pools": [{"id": "arm_kits", "capacity": 1}],
    }


def booking(bid: str, **kw: Any) -> dict[str, Any]:
    d: dict[str, Any] = {
        "id": bid, "priority": 1, "duration_minutes": 240,
        "earliest_start": at(8), "latest_end": at(20),
    }
    d.update(kw)
    return d


def doc(*bookings: dict[str, Any]) -> dict[str, Any]:
    out = stages_doc()
    out["bookings"] = list(bookings)
    return out
