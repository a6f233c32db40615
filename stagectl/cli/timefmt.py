"""Times as people read and type them: in a site's time zone, with the zone named.

Everything is stored as aware datetimes (UTC or an offset); this module is only about the
terminal. Shown times are in the site's zone, compact enough for an 80-column table and with a
space between date and time so that a narrow table can wrap instead of cut::

    fmt_time(dt, "Asia/Shanghai")          -> "2031-03-04 08:00 CST"
    fmt_span(a, b, "Asia/Shanghai")        -> "2031-03-04 08:00–12:00 CST"
    fmt_span(a, c, "Asia/Shanghai")        -> "2031-03-04 20:00 – 03-05 02:00 CST"
    legend(["Asia/Shanghai"], at)          -> "times: CST = Asia/Shanghai (UTC+08:00)"
    iso(dt, "Asia/Shanghai")               -> "2031-03-04T08:00:00+08:00"  (for --json)

An abbreviation such as CST is ambiguous on its own, so a table that uses them carries the
:func:`legend` (in its caption) naming the IANA zone and offset; a table whose times are all
in one zone may leave the cells bare and name the zone once in its caption.

Typed times go through :func:`parse_time`: ISO 8601 with or without an offset, a bare date,
``T`` or a space between date and time, optionally followed by an IANA zone name
(``2031-03-04 08:00 Asia/Shanghai``) or the abbreviation this module prints for the site's
zone (so a shown time can be typed back). Without an offset the time is read in the site's
zone, and :attr:`ParsedTime.note` says so ("--start 2031-03-04T08:00 read as 2031-03-04 08:00
Asia/Shanghai (UTC+08:00)") for the command to print. A local time a clock change skips is
refused; one it repeats takes the first and says so.

Pure functions, no terminal and no store: usable by any CLI (booking, farm) and by tests.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = [
    "ParsedTime",
    "TimeInputError",
    "abbrev",
    "fmt_offset",
    "fmt_span",
    "fmt_time",
    "iso",
    "legend",
    "parse_time",
    "zone",
]

ZoneLike = str | tzinfo


class TimeInputError(ValueError):
    """A typed time that cannot be read; the message names the option, the value and why."""


@dataclass(frozen=True)
class ParsedTime:
    """A typed time as an aware datetime, and a note when it was read in a zone."""

    value: datetime
    note: str | None = None


def zone(tz: ZoneLike) -> tzinfo:
    """A tzinfo from an IANA name (or a tzinfo, returned as it is).

    Raises:
        TimeInputError: an unknown zone name.
    """
    if isinstance(tz, tzinfo):
        return tz
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise TimeInputError(f"unknown time zone {tz!r} (expected an IANA name such as "
                             "Asia/Shanghai)") from exc


def _name(tz: tzinfo) -> str:
    return str(getattr(tz, "key", None) or tz.tzname(None) or "UTC")


def fmt_offset(dt: datetime) -> str:
    """``UTC+08:00`` for an aware datetime's offset."""
    off = dt.utcoffset() or timedelta(0)
    sign = "-" if off < timedelta(0) else "+"
    minutes = abs(int(off.total_seconds())) // 60
    return f"UTC{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def abbrev(dt: datetime, tz: ZoneLike) -> str:
    """The zone's short name at ``dt`` (``CST``, ``HKT``), else its offset (``UTC+08:00``)."""
    local = dt.astimezone(zone(tz))
    name = local.tzname() or ""
    if not name or name[0] in "+-" or name[0].isdigit():
        return fmt_offset(local)
    return name


def iso(dt: datetime | None, tz: ZoneLike) -> str | None:
    """ISO 8601 with the offset of ``tz`` (same instant), for machine-readable output."""
    return None if dt is None else dt.astimezone(zone(tz)).isoformat()


def fmt_time(dt: datetime | None, tz: ZoneLike, *, seconds: bool = False,
             label: bool = True) -> str:
    """``2031-03-04 08:00 CST`` (``""`` for None); ``label=False`` leaves out the zone."""
    if dt is None:
        return ""
    local = dt.astimezone(zone(tz))
    text = local.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")
    return f"{text} {abbrev(dt, tz)}" if label else text


def fmt_span(start: datetime | None, end: datetime | None, tz: ZoneLike, *,
             label: bool = True) -> str:
    """A window in one zone: ``2031-03-04 08:00–12:00 CST``.

    An end on another day carries its date (``2031-03-04 20:00 – 03-05 02:00 CST``; the year
    too when it differs), so an end at midnight reads as the next day's ``00:00``.
    """
    if start is None or end is None:
        return fmt_time(start or end, tz, label=label)
    z = zone(tz)
    a, b = start.astimezone(z), end.astimezone(z)
    head = a.strftime("%Y-%m-%d %H:%M")
    if a.date() == b.date():
        text = f"{head}–{b.strftime('%H:%M')}"
    elif a.year == b.year:
        text = f"{head} – {b.strftime('%m-%d %H:%M')}"
    else:
        text = f"{head} – {b.strftime('%Y-%m-%d %H:%M')}"
    if not label:
        return text
    za, zb = abbrev(start, z), abbrev(end, z)
    return f"{text} {za}" if za == zb else f"{text} ({za}/{zb})"


def legend(zones: Iterable[ZoneLike], at: datetime | None = None, *,
           labelled: bool = True) -> str:
    """Name the zones a table's times are in, for its caption.

    ``times: CST = Asia/Shanghai (UTC+08:00)`` explains the abbreviations of labelled cells
    (:func:`fmt_time` and :func:`fmt_span` with ``label=True``); a table of one zone may leave
    the cells unlabelled (``labelled=False``) and reads ``times in Asia/Shanghai (CST,
    UTC+08:00)``.

    Args:
        zones: the zones a table shows (duplicates are fine).
        at: the instant whose abbreviation and offset to name (default now).
        labelled: whether the cells carry the abbreviation.
    """
    when = at or datetime.now(UTC)
    seen: dict[str, tuple[str, str]] = {}
    for tz in zones:
        z = zone(tz)
        seen.setdefault(_name(z), (abbrev(when, z), fmt_offset(when.astimezone(z))))
    if not seen:
        return ""
    if not labelled and len(seen) == 1:
        name, (short, off) = next(iter(seen.items()))
        return f"times in {name} ({off})" if short in (off, name) else \
            f"times in {name} ({short}, {off})"
    parts = [f"{name} ({off})" if short in (off, name) else f"{short} = {name} ({off})"
             for name, (short, off) in sorted(seen.items())]
    return "times: " + "; ".join(parts)


def _split_zone(text: str) -> tuple[str, str | None]:
    """``"2031-03-04 08:00 Asia/Shanghai"`` -> (``"2031-03-04 08:00"``, ``"Asia/Shanghai"``)."""
    parts = text.strip().rsplit(" ", 1)
    if len(parts) == 2 and parts[1] and (parts[1][0].isalpha()):
        return parts[0].strip(), parts[1]
    return text.strip(), None


def _localise(naive: datetime, z: tzinfo, option: str, shown: str) -> tuple[datetime, str]:
    """Attach ``z`` to a wall time; refuse one a clock change skips, flag one it repeats."""
    first = naive.replace(tzinfo=z, fold=0)
    second = naive.replace(tzinfo=z, fold=1)
    try:
        back = first.astimezone(UTC).astimezone(z).replace(tzinfo=None)
    except OverflowError:  # 0001-01-01 in a zone east of UTC, 9999-12-31 west of it
        raise TimeInputError(f"{option}: {shown} is out of range") from None
    if back != naive:
        raise TimeInputError(
            f"{option}: {shown} does not exist in {_name(z)} (the clocks skip it); "
            "give a time outside the change or an offset")
    extra = ""
    if first.utcoffset() != second.utcoffset():
        extra = (f"; it happens twice there, the first ({fmt_offset(first)}) was taken: "
                 f"add {fmt_offset(second)[3:]} for the second")
    return first, extra


def parse_time(text: str, zones: Sequence[ZoneLike], option: str, *,
               end_of_day: bool = False) -> ParsedTime:
    """Read a typed time; one without an offset is read in the site's zone.

    Args:
        text: what was typed: ISO 8601 with or without offset (``Z`` too), a date, a space or
            ``T`` between date and time, optionally followed by an IANA zone name or the
            site zone's abbreviation.
        zones: the site zone(s) a time without an offset may be read in. Several zones are
            fine while they agree on the offset at that time (the first is named); when they
            do not, the time needs an offset.
        option: the option's name for messages (``--start``).
        end_of_day: a bare date means the end of that day (the next midnight), for options
            such as ``--to`` that end a range; otherwise a bare date is its start.

    Returns:
        The aware datetime, and a note (None when the text had an offset) saying how a time
        without one was read.

    Raises:
        TimeInputError: one message saying what is wrong with ``text`` and what would do.
    """
    body, zone_word = _split_zone(text)
    example = "2031-03-04 08:00, 2031-03-04T08:00+08:00 or 2031-03-04"
    try:
        dt = datetime.fromisoformat(body)
    except ValueError:
        raise TimeInputError(
            f"{option}: cannot read {text!r} as a date or time (e.g. {example})") from None
    date_only = _is_date(body)
    if zone_word is not None:
        if dt.tzinfo is not None:
            raise TimeInputError(f"{option}: {text!r} has both an offset and a zone; give one")
        if zone_word.upper() in ("UTC", "Z", "GMT"):
            return ParsedTime(dt.replace(tzinfo=UTC))
        named = _zone_word(zone_word, dt, zones, option, text)
        zones = [named]
    if dt.tzinfo is not None:
        if dt.utcoffset() is None:
            raise TimeInputError(f"{option}: {text!r} has no usable offset")
        return ParsedTime(dt)
    if date_only and end_of_day:
        dt = dt + timedelta(days=1)
    zlist = [zone(z) for z in zones] or [UTC]
    shown = dt.strftime("%Y-%m-%d %H:%M")
    readings = [(z, *_localise(dt, z, option, shown)) for z in zlist]
    instants = {r[1].astimezone(UTC) for r in readings}
    if len(instants) > 1:
        each = ", ".join(f"{_name(z)} {fmt_offset(v)}" for z, v, _ in readings)
        raise TimeInputError(
            f"{option}: {text!r} has no offset and the stages it may use are in time zones "
            f"that differ then ({each}); add an offset, e.g. "
            f"{readings[0][1].isoformat(timespec='minutes')}")
    z, value, extra = readings[0]
    others = sorted({_name(o) for o in zlist} - {_name(z)})
    also = f", the same in {', '.join(others)}" if others else ""
    if date_only and end_of_day:
        how = f"the end of that day, {shown}"
    else:
        how = shown
    note = f"{option} {text} read as {how} {_name(z)} ({fmt_offset(value)}{also}){extra}"
    return ParsedTime(value, note)


def _is_date(body: str) -> bool:
    try:
        date.fromisoformat(body)
    except ValueError:
        return False
    return True


def _zone_word(word: str, dt: datetime, zones: Sequence[ZoneLike], option: str,
               text: str) -> tzinfo:
    """The zone a trailing word names: an IANA name, or a site zone's abbreviation."""
    if "/" in word:
        return zone(word) if _known(word) else _bad_zone(option, text, word)
    for tz in zones:
        z = zone(tz)
        try:
            probe = dt.replace(tzinfo=z) if dt.tzinfo is None else dt
        except (OverflowError, ValueError):  # pragma: no cover - fromisoformat bounds these
            continue
        if abbrev(probe, z).upper() == word.upper():
            return z
    return _bad_zone(option, text, word)


def _known(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def _bad_zone(option: str, text: str, word: str) -> tzinfo:
    raise TimeInputError(
        f"{option}: {text!r} ends in {word!r}, which is not a time zone here (give an IANA "
        "name such as Asia/Shanghai, an offset such as +08:00, or nothing for the site's zone)")
