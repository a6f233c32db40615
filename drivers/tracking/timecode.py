"""Stage clock and SMPTE timecode at the stage frame rates.

Supported rates: 23.976, 24, 25, 29.97 (drop-frame), 30, 50, 59.94 (drop-frame), 60.
23.976 is labelled non-drop at nominal 24 (as cameras do); 29.97 and 59.94 use SMPTE
drop-frame labels (skip frame numbers 0-1, resp. 0-3, at the start of every minute
except each tenth), so their labels track wall time to within a frame per day.
Labels wrap at 24 hours.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import Final


@dataclass(frozen=True, slots=True)
class FrameRate:
    """A stage frame rate.

    Attributes:
        rate: exact frames per second (e.g. 30000/1001).
        nominal: integer frames per second in the labels (e.g. 30).
        drop_frame: whether labels use SMPTE drop-frame counting.
    """

    rate: Fraction
    nominal: int
    drop_frame: bool

    @property
    def fps(self) -> float:
        """Frames per second as a float."""
        return float(self.rate)

    @property
    def period_s(self) -> float:
        """Frame period in seconds."""
        return float(1 / self.rate)

    @property
    def dropped_per_minute(self) -> int:
        """Frame numbers skipped at each non-tenth minute (0 when non-drop)."""
        return self.nominal // 15 if self.drop_frame else 0

    @property
    def frames_per_day(self) -> int:
        """Number of labels in 24 hours."""
        return self.nominal * 86400 - self.dropped_per_minute * (1440 - 144)

    def __str__(self) -> str:
        return f"{self.fps:.3f}".rstrip("0").rstrip(".") + (" DF" if self.drop_frame else "")


RATES: Final[dict[str, FrameRate]] = {
    "23.976": FrameRate(Fraction(24000, 1001), 24, False),
    "24": FrameRate(Fraction(24), 24, False),
    "25": FrameRate(Fraction(25), 25, False),
    "29.97": FrameRate(Fraction(30000, 1001), 30, True),
    "30": FrameRate(Fraction(30), 30, False),
    "50": FrameRate(Fraction(50), 50, False),
    "59.94": FrameRate(Fraction(60000, 1001), 60, True),
    "60": FrameRate(Fraction(60), 60, False),
}


def frame_rate(name: str | float) -> FrameRate:
    """Look up a supported rate by name (``"29.97"``) or value (``29.97``, ``25``).

    Raises:
        ValueError: not a supported stage rate.
    """
    if isinstance(name, str) and name in RATES:
        return RATES[name]
    try:
        value = float(name)
    except ValueError:
        value = math.nan
    for r in RATES.values():
        if abs(r.fps - value) < 0.005:
            return r
    raise ValueError(f"frame rate {name!r} is not a stage rate; supported: {list(RATES)}")


@dataclass(frozen=True, slots=True)
class Timecode:
    """An SMPTE timecode label at a frame rate."""

    hours: int
    minutes: int
    seconds: int
    frames: int
    rate: FrameRate

    def __post_init__(self) -> None:
        if not (
            0 <= self.hours < 24
            and 0 <= self.minutes < 60
            and 0 <= self.seconds < 60
            and 0 <= self.frames < self.rate.nominal
        ):
            raise ValueError(f"timecode {self} is out of range at {self.rate}")
        if (
            self.rate.drop_frame
            and self.seconds == 0
            and self.minutes % 10
            and self.frames < self.rate.dropped_per_minute
        ):
            raise ValueError(f"timecode {self} does not exist in drop-frame at {self.rate}")

    def __str__(self) -> str:
        sep = ";" if self.rate.drop_frame else ":"
        return f"{self.hours:02d}:{self.minutes:02d}:{self.seconds:02d}{sep}{self.frames:02d}"

    @property
    def frame_number(self) -> int:
        """Frames since 00:00:00:00 (see :func:`timecode_to_frames`)."""
        return timecode_to_frames(self)


def frames_to_timecode(frame: int, rate: FrameRate) -> Timecode:
    """Label of a frame count since midnight (wraps at 24 hours)."""
    frame %= rate.frames_per_day
    drop = rate.dropped_per_minute
    if drop:
        per_min = rate.nominal * 60 - drop
        per_10min = per_min * 10 + drop
        tens, rest = divmod(frame, per_10min)
        frame += 9 * drop * tens
        if rest > drop:
            frame += drop * ((rest - drop) // per_min)
    fps = rate.nominal
    return Timecode(
        hours=frame // (fps * 3600),
        minutes=frame // (fps * 60) % 60,
        seconds=frame // fps % 60,
        frames=frame % fps,
        rate=rate,
    )


def timecode_to_frames(tc: Timecode) -> int:
    """Frame count since midnight of a label."""
    fps = tc.rate.nominal
    total_minutes = tc.hours * 60 + tc.minutes
    frames = ((tc.hours * 3600 + tc.minutes * 60 + tc.seconds) * fps) + tc.frames
    return frames - tc.rate.dropped_per_minute * (total_minutes - total_minutes // 10)


_TC_RE: Final = re.compile(r"^(\d{2}):(\d{2}):(\d{2})([:;.,])(\d{2,3})$")


def parse_timecode(text: str, rate: FrameRate) -> Timecode:
    """Parse ``HH:MM:SS:FF`` (or ``;`` before the frames for drop-frame).

    Raises:
        ValueError: malformed text, out-of-range fields or a dropped label.
    """
    m = _TC_RE.match(text.strip())
    if not m:
        raise ValueError(f"timecode {text!r} is not HH:MM:SS:FF")
    h, mi, s, _sep, f = m.groups()
    return Timecode(int(h), int(mi), int(s), int(f), rate)


def frame_at(seconds: float, rate: FrameRate) -> int:
    """Index of the frame containing an instant ``seconds`` after frame 0 started."""
    return math.floor(Fraction(seconds) * rate.rate)


class StageClock:
    """The stage's frame clock: monotonic time to frame numbers and time-of-day timecode.

    The wall-clock offset is captured once at construction, so frame numbers advance
    with the monotonic clock and never jump when NTP steps the wall clock; call
    :meth:`resync` at a safe moment to re-align.

    Args:
        rate: stage frame rate.
        monotonic: monotonic clock (injectable for tests).
        wall: wall clock in seconds since the Unix epoch (injectable for tests).
        utc_offset_s: local time offset added before taking the time of day.
    """

    def __init__(
        self,
        rate: FrameRate,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        utc_offset_s: float = 0.0,
    ) -> None:
        self.rate = rate
        self._monotonic = monotonic
        self._wall = wall
        self._utc_offset_s = utc_offset_s
        self._mono_to_wall = 0.0
        self.resync()

    def resync(self) -> None:
        """Re-capture the offset between the monotonic and the wall clock."""
        self._mono_to_wall = self._wall() - self._monotonic()

    def frame_offset_s(self) -> float:
        """Seconds to add to a monotonic instant to get the local time of day (unwrapped)."""
        return self._mono_to_wall + self._utc_offset_s

    def frame_at(self, monotonic_s: float) -> int:
        """Frames since local midnight at a monotonic instant (not wrapped)."""
        tod = monotonic_s + self._mono_to_wall + self._utc_offset_s
        return frame_at(tod % 86400.0, self.rate)

    def timecode_at(self, monotonic_s: float) -> Timecode:
        """Time-of-day timecode at a monotonic instant (e.g. a sample's arrival)."""
        return frames_to_timecode(self.frame_at(monotonic_s), self.rate)

    def now(self) -> Timecode:
        """Timecode now."""
        return self.timecode_at(self._monotonic())
