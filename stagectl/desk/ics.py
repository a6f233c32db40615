"""ICS subscription feeds of the producer desk (docs/desk-api.md, "ICS feeds").

``GET /ics/stage/{stage}.ics?token=T`` and ``GET /ics/production/{name}.ics?token=T``: one
VEVENT per held or confirmed booking, ``UID`` ``<booking id>@stagectl``, ``SEQUENCE`` the
booking's sequence (the store bumps it on every move, confirm, release and cancel),
``DTSTAMP`` its last change, ``DTSTART``/``DTEND`` in UTC. Bookings that left the calendar
(cancelled, released, expired, rejected) stay as ``STATUS:CANCELLED`` for
:data:`CANCELLED_KEPT` after their last change, so a subscribed calendar updates the event it
has instead of keeping it or adding a second one; a booking that was never held or confirmed
never appears.

``T`` is the user's *feed token* (:func:`stagectl.desk.auth.feed_token`): it reads calendars
and nothing else, because it travels in a URL that calendar apps and proxies may log; it
stops working when its user is disabled. ``GET /api/v1/feeds`` lists the caller's feed URLs.

A missing or unknown token is ``401`` whatever the path names, so nobody without a token can
learn which stages or productions exist; with a valid token an unknown stage or production
is ``404``. ``&lang=zh`` words the events in Simplified Chinese (``en`` by default). Replies
carry an ``ETag``; a client that sends it back in ``If-None-Match`` gets ``304`` while
nothing changed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Annotated

import icalendar
from fastapi import APIRouter, Query, Request, Response

from scheduler.booking.model import Stage, Status
from scheduler.booking.store import Record
from scheduler.sql import Conn
from stagectl.desk import DeskError, auth
from stagectl.desk.bookings import stages_of

UID_DOMAIN = "stagectl"
CANCELLED_KEPT = timedelta(days=30)
"""How long a booking that left the calendar stays in the feed as CANCELLED."""
REFRESH = timedelta(minutes=15)
"""What the feed asks calendar clients to refresh at (RFC 7986 REFRESH-INTERVAL)."""
LANGS = ("en", "zh")

FEED_STATUS: dict[Status, str] = {
    Status.HOLD: "TENTATIVE",
    Status.CONFIRMED: "CONFIRMED",
    Status.COMPLETED: "CONFIRMED",
    Status.CANCELLED: "CANCELLED",
    Status.RELEASED: "CANCELLED",
    Status.EXPIRED: "CANCELLED",
    Status.REJECTED: "CANCELLED",
}
"""ICS STATUS per booking state; REQUESTED bookings are not in a feed."""
LISTED = frozenset({Status.HOLD, Status.CONFIRMED, Status.COMPLETED})
"""States shown as a live event (the rest only as CANCELLED, and only if once listed)."""

_WORDS: dict[str, dict[str, str]] = {
    "en": {
        "on": "{production} on {stage}",
        "hold": " (hold {rank})",
        "cancelled": " ({status})",
        "stage_cal": "stage {name}",
        "production_cal": "production {name}",
        "description": "booking {id}, priority {priority}, status {status}, contact {contact}",
        "hold_status": "hold",
        "confirmed": "confirmed",
        "completed": "completed",
        "released": "released",
        "expired": "expired",
        "cancelled_word": "cancelled",
        "rejected": "rejected",
    },
    "zh": {
        "on": "{production}｜{stage}",
        "hold": "（第 {rank} 预留）",
        "cancelled": "（{status}）",
        "stage_cal": "摄影棚 {name}",
        "production_cal": "剧组 {name}",
        "description": "预订 {id}，优先级 {priority}，状态：{status}，联系人：{contact}",
        "hold_status": "预留",
        "confirmed": "已确认",
        "completed": "已完成",
        "released": "已释放",
        "expired": "已过期",
        "cancelled_word": "已取消",
        "rejected": "未排上",
    },
}
_STATUS_WORD = {
    Status.HOLD: "hold_status", Status.CONFIRMED: "confirmed", Status.COMPLETED: "completed",
    Status.RELEASED: "released", Status.EXPIRED: "expired", Status.CANCELLED: "cancelled_word",
    Status.REJECTED: "rejected",
}


def feed_uid(booking_id: str) -> str:
    """The stable UID of a booking's event in every feed (``<booking id>@stagectl``)."""
    return f"{booking_id}@{UID_DOMAIN}"


def calendar_name(kind: str, name: str, lang: str = "en") -> str:
    """``stage HP-1`` / ``摄影棚 HP-1``; ``kind`` is ``stage`` or ``production``."""
    words = _WORDS[lang if lang in _WORDS else "en"]
    return words[f"{kind}_cal"].format(name=name)


def _utc(dt: datetime) -> datetime:
    return dt.astimezone(UTC)


def feed_records(records: Iterable[Record], last_change: Mapping[str, datetime],
                 listed: set[str], now: datetime) -> list[Record]:
    """The records a feed shows.

    Args:
        records: candidate bookings (of one stage or one production).
        last_change: per booking id, the time of its last change (see :func:`last_changes`);
            a booking missing here uses its ``updated_at``.
        listed: ids of bookings that were ever held or confirmed (see :func:`ever_listed`).
        now: the present (cancelled events older than :data:`CANCELLED_KEPT` are dropped).
    """
    out = []
    for rec in records:
        b = rec.booking
        if b.stage is None or b.start is None or rec.status not in FEED_STATUS:
            continue
        if rec.status not in LISTED:
            changed = last_change.get(rec.id, rec.updated_at)
            if rec.id not in listed or now - changed > CANCELLED_KEPT:
                continue
        out.append(rec)
    return out


def build_feed(records: Iterable[Record], stages: Mapping[str, Stage], name: str,
               last_change: Mapping[str, datetime], lang: str = "en") -> icalendar.Calendar:
    """A subscription calendar: one VEVENT per record (filter with :func:`feed_records`).

    Times are UTC (``DTSTART:20310504T000000Z``), so no VTIMEZONE is needed and every client
    reads the same instant; the site and its zone are in LOCATION.
    """
    words = _WORDS[lang if lang in _WORDS else "en"]
    cal = icalendar.Calendar()
    cal.add("prodid", "-//stagectl//producer desk//EN")
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("name", name)  # RFC 7986
    cal.add("x-wr-calname", name)  # what Apple, Google and Outlook show
    cal.add("refresh-interval", REFRESH, parameters={"VALUE": "DURATION"})
    cal.add("x-published-ttl", REFRESH)
    for rec in records:
        b = rec.booking
        assert b.stage is not None and b.start is not None and b.end is not None
        stage = stages.get(b.stage)
        status_word = words[_STATUS_WORD[rec.status]]
        ev = icalendar.Event()
        ev.add("uid", feed_uid(b.id))
        ev.add("dtstamp", _utc(last_change.get(b.id, rec.updated_at)))
        ev.add("last-modified", _utc(last_change.get(b.id, rec.updated_at)))
        ev.add("created", _utc(rec.created_at))
        ev.add("sequence", rec.sequence)
        ev.add("dtstart", _utc(b.start))
        ev.add("dtend", _utc(b.end))
        ev.add("status", FEED_STATUS[rec.status])
        ev.add("transp", "OPAQUE" if rec.status in LISTED else "TRANSPARENT")
        title = words["on"].format(production=b.production or b.id, stage=b.stage)
        if rec.status is Status.HOLD:
            title += words["hold"].format(rank=b.hold_rank)
            ev.add("x-stagectl-hold-rank", str(b.hold_rank))
        elif rec.status not in LISTED:
            title += words["cancelled"].format(status=status_word)
        ev.add("summary", title)
        if stage is not None:
            ev.add("location", f"{stage.site} {stage.id} ({stage.timezone})".strip())
        ev.add("description", words["description"].format(
            id=b.id, priority=b.priority, status=status_word, contact=b.contact or "-"))
        ev.add("x-stagectl-status", rec.status.value)
        cal.add_component(ev)
    return cal


# --- what the store knows about each booking's past --------------------------------------


def last_changes(conn: Conn) -> dict[str, datetime]:
    """Per booking, the later of its ``updated_at`` and its newest history entry.

    A hold re-ranked because another left changes only ``hold_rank`` (and writes history),
    not ``updated_at``; its event's DTSTAMP must still move on, or clients keep the old title.
    """
    out: dict[str, datetime] = {}
    for bid, text in conn.execute("SELECT id, updated_at FROM bookings"):
        out[bid] = datetime.fromisoformat(text)
    for bid, text in conn.execute("SELECT booking_id, at FROM history"):
        at = datetime.fromisoformat(text)
        if bid not in out or at > out[bid]:
            out[bid] = at
    return out


def ever_listed(conn: Conn) -> set[str]:
    """Ids of bookings that were held or confirmed at some time (so were in a feed)."""
    rows = conn.execute("SELECT DISTINCT booking_id FROM history WHERE to_status IN (?, ?, ?)",
                        (Status.HOLD.value, Status.CONFIRMED.value, Status.COMPLETED.value))
    return {r[0] for r in rows}


# --- the endpoints -------------------------------------------------------------------------

router = APIRouter(tags=["feeds"])
"""Included by :func:`stagectl.desk.app.create_app`."""

TokenQuery = Annotated[str | None, Query(max_length=256, description="your feed token "
                                         "(GET /api/v1/feeds gives the URLs)")]
LangQuery = Annotated[str, Query(max_length=8, description="en or zh: the events' wording")]


def _feed(request: Request, token: str | None, lang: str, kind: str, name: str) -> Response:
    """One feed: the token first (401 whatever ``name`` is), then the stage or production."""
    state = request.app.state.desk
    with state.pool.store() as s:
        if not token:
            raise DeskError(401, "unauthenticated", {"feed": True}, template="no_feed_token")
        user = auth.feed_user(s.conn, token)
        if user is None:
            # the same answer for every path: without a valid token nothing says what exists
            raise DeskError(401, "unauthenticated", {"feed": True}, template="bad_token")
        if lang not in LANGS:
            raise DeskError(400, "invalid", {"field": "lang"}, field="lang",
                            reason=f"expected one of {', '.join(LANGS)}, got {lang!r}")
        state.sweep(s)  # expired holds leave the feed now (at most one sweep a second)
        stages = stages_of(s)
        if kind == "stage":
            if name not in stages:
                raise DeskError(404, "not_found", {"stage": name}, what=f"stage {name}")
            records = s.records(stage=name)
        else:
            records = s.records(production=name)
            if not records:
                raise DeskError(404, "not_found", {"production": name},
                                what=f"production {name}")
        changed = last_changes(s.conn)
        listed = ever_listed(s.conn)
        now = state.clock()
    shown = feed_records(records, changed, listed, now)
    body = build_feed(shown, stages, calendar_name(kind, name, lang), changed, lang).to_ical()
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    headers = {"ETag": etag, "Cache-Control": "private, max-age=300",
               "Content-Disposition": f"inline; filename=\"{kind}.ics\""}
    if etag in [t.strip() for t in request.headers.get("if-none-match", "").split(",")]:
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="text/calendar; charset=utf-8", headers=headers)


@router.get("/ics/stage/{stage}.ics", operation_id="ics_stage_feed")
@router.head("/ics/stage/{stage}.ics", operation_id="ics_stage_feed_head",
             include_in_schema=False)
def stage_feed(stage: str, request: Request, token: TokenQuery = None,
               lang: LangQuery = "en") -> Response:
    """A stage's bookings as an ICS subscription (``text/calendar``)."""
    return _feed(request, token, lang, "stage", stage)


@router.get("/ics/production/{name:path}.ics", operation_id="ics_production_feed")
@router.head("/ics/production/{name:path}.ics", operation_id="ics_production_feed_head",
             include_in_schema=False)
def production_feed(name: str, request: Request, token: TokenQuery = None,
                    lang: LangQuery = "en") -> Response:
    """A production's bookings, on every stage, as an ICS subscription."""
    return _feed(request, token, lang, "production", name)
