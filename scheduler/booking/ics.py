"""ICS export with ``icalendar``: one calendar per stage or per production.

Holds are TENTATIVE with their rank, confirmed (and completed) bookings CONFIRMED, bookings
that left the calendar (cancelled, released, expired, rejected) CANCELLED with their SEQUENCE
bumped, so subscribed calendars update the event rather than duplicate it. UIDs are stable
(``<booking id>@stagectl.booking``); each stage's VTIMEZONE is included.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

import icalendar

from scheduler.booking.model import Stage, Status
from scheduler.booking.store import Record

UID_DOMAIN = "stagectl.booking"
_ICS_STATUS = {
    Status.HOLD: "TENTATIVE",
    Status.CONFIRMED: "CONFIRMED",
    Status.COMPLETED: "CONFIRMED",
    Status.CANCELLED: "CANCELLED",
    Status.RELEASED: "CANCELLED",
    Status.EXPIRED: "CANCELLED",
    Status.REJECTED: "CANCELLED",
}


def uid_for(booking_id: str) -> str:
    """The stable UID of a booking's event."""
    return f"{booking_id}@{UID_DOMAIN}"


def build_calendar(records: Iterable[Record], stages: dict[str, Stage], name: str,
                   stamp: datetime) -> icalendar.Calendar:
    """A calendar with one VEVENT per placed booking in ``records``."""
    cal = icalendar.Calendar()
    cal.add("prodid", "-//stagectl//booking//EN")
    cal.add("version", "2.0")
    cal.add("x-wr-calname", name)
    for rec in records:
        b = rec.booking
        if b.stage is None or b.start is None or rec.status not in _ICS_STATUS:
            continue
        stage = stages[b.stage]
        start = b.start.astimezone(stage.tz)
        ev = icalendar.Event()
        ev.add("uid", uid_for(b.id))
        ev.add("dtstamp", stamp)
        ev.add("dtstart", start)
        ev.add("dtend", start + timedelta(minutes=b.duration_minutes))
        ev.add("sequence", rec.sequence)
        ev.add("status", _ICS_STATUS[rec.status])
        title = f"{b.production or b.id} on {b.stage}"
        if rec.status is Status.HOLD:
            title += f" (hold {b.hold_rank})"
            ev.add("x-stagectl-hold-rank", str(b.hold_rank))
        ev.add("summary", title)
        ev.add("location", f"{stage.site} {stage.id}".strip())
        ev.add("description", f"booking {b.id}, priority {b.priority}, "
                              f"status {rec.status.value}, contact {b.contact or '-'}")
        ev.add("x-stagectl-status", rec.status.value)
        cal.add_component(ev)
    cal.add_missing_timezones()
    return cal
