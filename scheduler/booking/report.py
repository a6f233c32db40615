"""Utilisation report: booked, held and available hours per stage and per site.

Revenue is estimated from the stage's rates for a 10-hour day: shoot hours at
``day_rate_cny / 10`` per hour, prelight and strike phases at ``prelight_strike_rate_cny / 10``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from scheduler.booking.model import Booking, Stage, Status, Window
from scheduler.booking.store import Record

DAY_HOURS = 10.0
_PREP = {"prelight", "strike"}


@dataclass
class UtilisationRow:
    """One line of the report (a stage, or a site's total)."""

    site: str
    stage: str
    available_hours: float
    booked_hours: float
    held_hours: float
    utilisation_pct: float
    revenue_cny: float

    def to_json(self) -> dict[str, Any]:
        """As a JSON object."""
        return {k: round(v, 2) if isinstance(v, float) else v for k, v in asdict(self).items()}


def _clip(a: datetime, b: datetime, lo: datetime, hi: datetime) -> float:
    return max(0.0, (min(b, hi) - max(a, lo)).total_seconds() / 3600.0)


def _available(stage: Stage, lo: datetime, hi: datetime) -> float:
    opens = list(stage.open) or [Window(lo, hi)]
    total = 0.0
    for w in opens:
        s, e = max(w.start, lo), min(w.end, hi)
        if e <= s:
            continue
        total += (e - s).total_seconds() / 3600.0
        total -= sum(_clip(o.start, o.end, s, e) for o in stage.outages)
    return max(total, 0.0)


def _revenue(stage: Stage, b: Booking, lo: datetime, hi: datetime) -> float:
    assert b.start is not None
    phases = list(b.phases) or []
    if not phases:
        return _clip(b.start, b.start + timedelta(minutes=b.duration_minutes), lo, hi) \
            * stage.day_rate_cny / DAY_HOURS
    t = b.start
    cny = 0.0
    for p in phases:
        end = t + timedelta(minutes=p.duration_minutes)
        rate = stage.prelight_strike_rate_cny if p.name in _PREP else stage.day_rate_cny
        cny += _clip(t, end, lo, hi) * rate / DAY_HOURS
        t = end
    return cny


def utilisation(stages: Iterable[Stage], records: Iterable[Record], start: datetime,
                end: datetime) -> tuple[list[UtilisationRow], list[UtilisationRow]]:
    """Per-stage rows and per-site totals over ``[start, end)``."""
    stage_list = list(stages)
    rows = {s.id: UtilisationRow(s.site, s.id, _available(s, start, end), 0.0, 0.0, 0.0, 0.0)
            for s in stage_list}
    by_id = {s.id: s for s in stage_list}
    for rec in records:
        b = rec.booking
        if b.stage is None or b.start is None or b.stage not in rows or b.end is None:
            continue
        hours = _clip(b.start, b.end, start, end)
        if rec.status in (Status.CONFIRMED, Status.COMPLETED):
            rows[b.stage].booked_hours += hours
            rows[b.stage].revenue_cny += _revenue(by_id[b.stage], b, start, end)
        elif rec.status is Status.HOLD:
            rows[b.stage].held_hours += hours
    sites: dict[str, UtilisationRow] = {}
    for r in rows.values():
        r.utilisation_pct = 100.0 * r.booked_hours / r.available_hours if r.available_hours else 0.0
        t = sites.setdefault(r.site, UtilisationRow(r.site, "*", 0.0, 0.0, 0.0, 0.0, 0.0))
        t.available_hours += r.available_hours
        t.booked_hours += r.booked_hours
        t.held_hours += r.held_hours
        t.revenue_cny += r.revenue_cny
    for t in sites.values():
        t.utilisation_pct = 100.0 * t.booked_hours / t.available_hours if t.available_hours else 0.0
    return list(rows.values()), sorted(sites.values(), key=lambda r: r.site)
