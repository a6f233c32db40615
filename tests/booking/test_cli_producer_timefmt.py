"""stagectl.cli.timefmt: shown times name their zone, typed times are read in the site's zone.

Checked against the IANA database through zoneinfo (a clock change it knows about, not one we
made up): New York's spring gap and autumn repeat, London's offset change, Shanghai and Hong
Kong with no DST.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from stagectl.cli.timefmt import (
    TimeInputError,
    abbrev,
    fmt_offset,
    fmt_span,
    fmt_time,
    iso,
    legend,
    parse_time,
)

SH = "Asia/Shanghai"
UTC_0800 = datetime(2031, 3, 4, 0, 0, tzinfo=UTC)  # 08:00 in Shanghai


def test_shown_times_are_local_with_the_zone() -> None:
    assert fmt_time(UTC_0800, SH) == "2031-03-04 08:00 CST"
    assert fmt_time(UTC_0800, SH, label=False) == "2031-03-04 08:00"
    assert fmt_time(UTC_0800, "Asia/Hong_Kong") == "2031-03-04 08:00 HKT"
    assert fmt_time(UTC_0800 + timedelta(seconds=5), SH, seconds=True) == \
        "2031-03-04 08:00:05 CST"
    assert fmt_time(None, SH) == ""
    assert iso(UTC_0800, SH) == "2031-03-04T08:00:00+08:00"
    assert iso(None, SH) is None


def test_spans() -> None:
    four = UTC_0800 + timedelta(hours=4)
    assert fmt_span(UTC_0800, four, SH) == "2031-03-04 08:00–12:00 CST"
    assert fmt_span(UTC_0800, UTC_0800 + timedelta(hours=16), SH) == \
        "2031-03-04 08:00 – 03-05 00:00 CST"
    new_year = datetime(2031, 12, 31, 14, tzinfo=UTC)  # 22:00 local
    assert fmt_span(new_year, new_year + timedelta(hours=4), SH) == \
        "2031-12-31 22:00 – 2032-01-01 02:00 CST"
    # a span across a clock change names both abbreviations
    ny = ZoneInfo("America/New_York")
    a = datetime(2031, 3, 9, 0, 0, tzinfo=ny).astimezone(UTC)  # 4 real hours, not wall ones
    assert fmt_span(a, a + timedelta(hours=4), ny) == "2031-03-09 00:00–05:00 (EST/EDT)"


def test_zone_without_a_name_shows_its_offset() -> None:
    # IANA gives some zones no abbreviation, only "+08"
    assert abbrev(UTC_0800, "Asia/Singapore") == "UTC+08:00"
    assert abbrev(UTC_0800, "Asia/Kolkata") == "IST"
    assert fmt_offset(datetime(2031, 1, 1, tzinfo=timezone(timedelta(hours=-3, minutes=-30)))) \
        == "UTC-03:30"


def test_legend_names_the_iana_zone() -> None:
    assert legend([SH, SH], UTC_0800) == "times: CST = Asia/Shanghai (UTC+08:00)"
    assert legend([SH], UTC_0800, labelled=False) == "times in Asia/Shanghai (CST, UTC+08:00)"
    both = legend([SH, "Asia/Hong_Kong"], UTC_0800, labelled=False)
    assert both == ("times: HKT = Asia/Hong_Kong (UTC+08:00); "
                    "CST = Asia/Shanghai (UTC+08:00)")
    assert legend(["Asia/Singapore"], UTC_0800) == "times: Asia/Singapore (UTC+08:00)"
    assert legend([]) == ""


@pytest.mark.parametrize("text", [
    "2031-03-04T08:00", "2031-03-04 08:00", "2031-03-04T08:00:00", "2031-03-04 08:00 CST",
    "2031-03-04 08:00 Asia/Shanghai",
])
def test_a_time_without_offset_is_read_in_the_site_zone(text: str) -> None:
    got = parse_time(text, [SH], "--start")
    assert got.value == UTC_0800
    assert got.value.utcoffset() == timedelta(hours=8)
    assert got.note is not None and "read as 2031-03-04 08:00 Asia/Shanghai (UTC+08:00)" \
        in got.note and got.note.startswith(f"--start {text} ")


@pytest.mark.parametrize("text", [
    "2031-03-04T08:00+08:00", "2031-03-04T00:00Z", "2031-03-04T00:00+00:00",
    "2031-03-04 00:00 UTC",
])
def test_a_time_with_offset_is_taken_as_it_is(text: str) -> None:
    got = parse_time(text, [SH], "--start")
    assert got.value == UTC_0800 and got.note is None


def test_dates() -> None:
    start = parse_time("2031-03-01", [SH], "--from")
    assert start.value.isoformat() == "2031-03-01T00:00:00+08:00"
    end = parse_time("2031-03-31", [SH], "--to", end_of_day=True)
    assert end.value.isoformat() == "2031-04-01T00:00:00+08:00"
    assert end.note is not None and "the end of that day" in end.note
    # a time is a time, end_of_day or not
    assert parse_time("2031-03-31T12:00", [SH], "--to", end_of_day=True).value.hour == 12


def test_clock_changes() -> None:
    ny = "America/New_York"
    with pytest.raises(TimeInputError, match="does not exist in America/New_York"):
        parse_time("2031-03-09T02:30", [ny], "--start")
    twice = parse_time("2031-11-02T01:30", [ny], "--start")
    assert twice.value.utcoffset() == timedelta(hours=-4)  # the first of the two
    assert twice.note is not None and "happens twice" in twice.note and "-05:00" in twice.note
    # EST/EDT typed back is understood for the zone it belongs to
    assert parse_time("2031-07-01 09:00 EDT", [ny], "--start").value.utcoffset() == \
        timedelta(hours=-4)


def test_zones_that_agree_or_disagree() -> None:
    same = parse_time("2031-03-04T08:00", [SH, "Asia/Hong_Kong"], "--start")
    assert same.value == UTC_0800
    assert same.note is not None and "the same in Asia/Hong_Kong" in same.note
    # London and Shanghai never agree: one error, asking for an offset
    with pytest.raises(TimeInputError) as err:
        parse_time("2031-03-04T08:00", [SH, "Europe/London"], "--start")
    assert "Europe/London UTC+00:00" in str(err.value)
    assert "add an offset, e.g. 2031-03-04T08:00+08:00" in str(err.value)


@pytest.mark.parametrize("text, words", [
    ("tomorrow", "cannot read"),
    ("2031-13-04T08:00", "cannot read"),
    ("2031-03-04 08:00 PST", "not a time zone here"),
    ("2031-03-04 08:00 Mars/Olympus", "not a time zone here"),
    ("2031-03-04T08:00+08:00 Asia/Shanghai", "both an offset and a zone"),
])
def test_bad_input_is_one_message(text: str, words: str) -> None:
    with pytest.raises(TimeInputError) as err:
        parse_time(text, [SH], "--start")
    assert str(err.value).startswith("--start: ") and words in str(err.value)
    assert "\n" not in str(err.value)
