from datetime import UTC, datetime

import icalendar

from scheduler.booking.ics import build_calendar, uid_for
from scheduler.booking.store import BookingStore
from tests.booking.helpers import at, booking


def test_ics_round_trip(store: BookingStore) -> None:
    store.request(booking("H1", production="Dune", stage="NS-1", start=at(10)), "a")
    store.request(booking("H2", production="Dune", stage="NS-1", start=at(11)), "b")
    store.hold("H1", "a")
    store.hold("H2", "b")
    store.request(booking("C1", production="Dune", requires=["xr"], stage="HK-1",
                          start=at(9)), "c")
    store.confirm("C1", "c")
    store.request(booking("X1", production="Dune", stage="HP-1", start=at(9)), "d")
    store.confirm("X1", "d")
    store.cancel("X1", "d", "script rewrite")
    stages = store.problem().stage_by_id()
    records = store.records(production="Dune")
    text = build_calendar(records, stages, "production Dune", datetime(2031, 5, 1, tzinfo=UTC))
    cal = icalendar.Calendar.from_ical(text.to_ical())
    events = {str(e["UID"]): e for e in cal.walk("VEVENT")}
    assert set(events) == {uid_for(i) for i in ("H1", "H2", "C1", "X1")}
    h2 = events[uid_for("H2")]
    assert str(h2["STATUS"]) == "TENTATIVE" and str(h2["X-STAGECTL-HOLD-RANK"]) == "2"
    assert "hold 2" in str(h2["SUMMARY"])
    c1 = events[uid_for("C1")]
    assert str(c1["STATUS"]) == "CONFIRMED"
    start = c1.decoded("DTSTART")
    assert start == datetime.fromisoformat(at(9))
    assert str(start.tzinfo) == "Asia/Hong_Kong"
    assert c1.decoded("DTEND") == datetime.fromisoformat(at(13))
    x1 = events[uid_for("X1")]
    assert str(x1["STATUS"]) == "CANCELLED" and int(x1["SEQUENCE"]) == 2
    tzids = {str(tz["TZID"]) for tz in cal.walk("VTIMEZONE")}
    assert tzids == {"Asia/Shanghai", "Asia/Hong_Kong"}
    # Stable UIDs: exporting again yields the same UIDs.
    again = build_calendar(store.records(production="Dune"), stages, "p", datetime.now(UTC))
    assert {str(e["UID"]) for e in again.walk("VEVENT")} == set(events)
