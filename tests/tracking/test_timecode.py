from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.tracking.timecode import (
    RATES,
    StageClock,
    Timecode,
    frame_rate,
    frames_to_timecode,
    parse_timecode,
    timecode_to_frames,
)

DF_VECTORS = [
    ("29.97", 0, "00:00:00;00"),
    ("29.97", 1799, "00:00:59;29"),
    ("29.97", 1800, "00:01:00;02"),
    ("29.97", 3597, "00:01:59;29"),
    ("29.97", 3598, "00:02:00;02"),
    ("29.97", 17981, "00:09:59;29"),
    ("29.97", 17982, "00:10:00;00"),
    ("29.97", 17983, "00:10:00;01"),
    ("29.97", 107892, "01:00:00;00"),
    ("29.97", 2589407, "23:59:59;29"),
    ("29.97", 2589408, "00:00:00;00"),  # wraps at 24 h
    ("59.94", 3599, "00:00:59;59"),
    ("59.94", 3600, "00:01:00;04"),
    ("59.94", 35964, "00:10:00;00"),
    ("59.94", 215784, "01:00:00;00"),
    ("23.976", 86400, "01:00:00:00"),
    ("24", 24 * 3600 + 23, "01:00:00:23"),
    ("25", 90000 + 24, "01:00:00:24"),
    ("30", 108000, "01:00:00:00"),
    ("50", 49, "00:00:00:49"),
    ("60", 60 * 61, "00:01:01:00"),
]


@pytest.mark.parametrize(("rate", "frame", "label"), DF_VECTORS)
def test_vectors(rate: str, frame: int, label: str) -> None:
    r = RATES[rate]
    assert str(frames_to_timecode(frame, r)) == label
    assert timecode_to_frames(parse_timecode(label, r)) == frame % r.frames_per_day


@pytest.mark.parametrize("rate", list(RATES))
@given(frame=st.integers(0, 10_000_000))
def test_round_trip_all_rates(rate: str, frame: int) -> None:
    r = RATES[rate]
    assert timecode_to_frames(frames_to_timecode(frame, r)) == frame % r.frames_per_day


def test_frames_per_day() -> None:
    assert RATES["29.97"].frames_per_day == 2589408
    assert RATES["59.94"].frames_per_day == 5178816
    assert RATES["25"].frames_per_day == 2160000


def test_dropped_labels_do_not_exist() -> None:
    with pytest.raises(ValueError, match="drop-frame"):
        Timecode(0, 1, 0, 0, RATES["29.97"])
    with pytest.raises(ValueError, match="drop-frame"):
        Timecode(0, 1, 0, 3, RATES["59.94"])
    Timecode(0, 10, 0, 0, RATES["29.97"])  # tenth minutes keep 0 and 1
    with pytest.raises(ValueError):
        parse_timecode("00:00:00:25", RATES["25"])
    with pytest.raises(ValueError):
        parse_timecode("0:0:0:0", RATES["25"])


def test_frame_rate_lookup() -> None:
    assert frame_rate("29.97") is RATES["29.97"]
    assert frame_rate(23.976) is RATES["23.976"]
    assert frame_rate(25) is RATES["25"]
    with pytest.raises(ValueError, match="supported"):
        frame_rate(48)


def test_stage_clock_time_of_day() -> None:
    mono = [100.0]
    wall = 1_700_000_000.0  # 22:13:20 UTC
    clock = StageClock(RATES["25"], monotonic=lambda: mono[0], wall=lambda: wall)
    assert str(clock.now()) == "22:13:20:00"
    assert str(clock.timecode_at(100.0 + 0.5 + 0.039)) == "22:13:20:13"
    mono[0] = 101.0
    assert str(clock.now()) == "22:13:21:00"


def test_stage_clock_drop_frame_tracks_wall_time() -> None:
    # 10 minutes after midnight, a 29.97 DF label reads 00:10:00;00 to within a frame
    clock = StageClock(RATES["29.97"], monotonic=lambda: 0.0, wall=lambda: 86400.0 * 19000)
    tc = clock.timecode_at(600.0)
    assert str(tc) == "00:10:00;00"
    assert clock.frame_at(600.0) == 17982
