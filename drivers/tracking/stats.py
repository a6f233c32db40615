"""Per-source tracking health: rate, jitter, loss, errors, last seen, silent alarm.

Pure bookkeeping fed with ``(arrival_s, sequence)``, so it is tested without sockets.

- **rate**: samples over the arrival span of the last ``window`` samples.
- **jitter**: RFC 3550-style smoothed mean deviation, ``J += (|D| - J) / 16``, where
  ``D`` is the inter-arrival time minus the expected interval (the nominal period times
  the sequence step when there is a sequence). Without sender timestamps this is the
  receive-side jitter an operator cares about. The window's inter-arrival standard
  deviation is reported too.
- **loss** with a sequence number: RFC 3550 accounting on an extended (unwrapped)
  sequence, ``expected - received``; a late packet fills its gap again and counts as
  reordered. Without one: each arrival gap of ``k`` nominal periods (``k >= 2``, gap
  rounded) counts ``k - 1`` lost samples.
- **silent**: nothing for more than ``silent_frames`` stage frame periods.
"""

from __future__ import annotations

import math
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Final

DEFAULT_WINDOW: Final = 128
_RESTART_GAP: Final = 1000


@dataclass(frozen=True, slots=True)
class StatsSnapshot:
    """Health of one source at an instant (what the console and CLI show).

    Attributes:
        source: source name.
        received: samples accepted.
        rate_hz: measured sample rate (0 before two samples).
        jitter_ms: RFC 3550-style smoothed inter-arrival deviation.
        interval_std_ms: standard deviation of inter-arrival times in the window.
        lost: samples missing (sequence gaps, or arrival gaps without a sequence).
        loss_pct: ``lost`` as a percentage of expected samples.
        reordered: samples that arrived after a later one.
        duplicates: samples received twice.
        errors: rejected datagrams by kind (``checksum``, ``length``, ``type``...).
        error_count: total of ``errors``.
        last_seen_s: monotonic time of the last sample (None: never).
        age_s: time since the last sample (None: never).
        silent: no sample for more than the alarm threshold.
    """

    source: str
    received: int
    rate_hz: float
    jitter_ms: float
    interval_std_ms: float
    lost: int
    loss_pct: float
    reordered: int
    duplicates: int
    errors: dict[str, int]
    error_count: int
    last_seen_s: float | None
    age_s: float | None
    silent: bool


@dataclass(slots=True)
class SourceStats:
    """Running statistics of one source.

    Args:
        source: source name (carried into snapshots).
        nominal_rate_hz: the rate the source should send at; estimated from arrivals
            (median interval of the window) when None.
        stage_frame_period_s: stage frame period for the silent alarm; falls back to
            the source period.
        sequence_bits: width of the sequence counter (16 for OpenTrackIO, 8 for
            Z CAM FreeD); None when the protocol has none.
        silent_frames: alarm after this many frame periods without a sample.
        window: samples kept for rate and interval statistics.
    """

    source: str
    nominal_rate_hz: float | None = None
    stage_frame_period_s: float | None = None
    sequence_bits: int | None = None
    silent_frames: float = 2.0
    window: int = DEFAULT_WINDOW
    received: int = field(default=0, init=False)
    reordered: int = field(default=0, init=False)
    duplicates: int = field(default=0, init=False)
    gap_lost: int = field(default=0, init=False)
    errors: Counter[str] = field(default_factory=Counter, init=False)
    last_seen_s: float | None = field(default=None, init=False)
    jitter_s: float = field(default=0.0, init=False)
    _arrivals: deque[float] = field(default_factory=deque, init=False)
    _first_ext: int | None = field(default=None, init=False)
    _max_ext: int | None = field(default=None, init=False)
    _unique: int = field(default=0, init=False)
    _recent: set[int] = field(default_factory=set, init=False)
    _recent_order: deque[int] = field(default_factory=deque, init=False)

    def __post_init__(self) -> None:
        if self.nominal_rate_hz is not None and not self.nominal_rate_hz > 0:
            raise ValueError(f"SourceStats {self.source}: nominal_rate_hz must be > 0")
        if self.window < 3:
            raise ValueError(f"SourceStats {self.source}: window must be >= 3")

    # -- feeding ------------------------------------------------------------------

    def period_s(self) -> float | None:
        """Expected interval between samples: nominal, else the window's median."""
        if self.nominal_rate_hz:
            return 1.0 / self.nominal_rate_hz
        a = self._arrivals
        if len(a) < 3:
            return None
        gaps = sorted(a[i + 1] - a[i] for i in range(len(a) - 1))
        median = gaps[len(gaps) // 2]
        return median if median > 0 else None

    def on_sample(self, arrival_s: float, sequence: int | None = None) -> None:
        """Record an accepted sample, with its sequence number when it has one."""
        period = self.period_s()
        prev = self.last_seen_s
        step = 1
        if sequence is not None and self.sequence_bits:
            step = self._on_sequence(sequence)
            if step <= 0:  # late, duplicate or restart: counts, but no timing update
                self._touch(arrival_s)
                return
        if prev is not None and period:
            gap = arrival_s - prev
            if sequence is None or not self.sequence_bits:
                # no sequence: a gap of k periods is k - 1 lost samples, not jitter
                step = max(1, round(gap / period))
                self.gap_lost += step - 1
            d = gap - period * step
            self.jitter_s += (abs(d) - self.jitter_s) / 16.0
        self._touch(arrival_s)

    def _touch(self, arrival_s: float) -> None:
        self.received += 1
        if self.last_seen_s is None or arrival_s >= self.last_seen_s:
            self.last_seen_s = arrival_s
            self._arrivals.append(arrival_s)
            if len(self._arrivals) > self.window:
                self._arrivals.popleft()

    def _on_sequence(self, sequence: int) -> int:
        """Update sequence accounting; returns the step from the previous maximum."""
        assert self.sequence_bits
        mod = 1 << self.sequence_bits
        seq = sequence % mod
        if self._max_ext is None or self._first_ext is None:
            self._first_ext = self._max_ext = seq
            self._remember(seq)
            self._unique = 1
            return 1
        delta = (seq - self._max_ext) % mod
        if delta >= mod // 2:
            delta -= mod  # behind the maximum
        ext = self._max_ext + delta
        if delta < 0 and -delta > min(_RESTART_GAP, mod // 2 - 1) and mod > 256:
            # far behind on a wide counter: the source restarted; start counting afresh
            lost_before = self.lost_by_sequence()
            self.gap_lost += lost_before
            self._first_ext = self._max_ext = seq
            self._recent.clear()
            self._recent_order.clear()
            self._remember(seq)
            self._unique = 1
            return 0
        if ext in self._recent:
            self.duplicates += 1
            return 0
        self._remember(ext)
        self._unique += 1
        if delta < 0:
            self.reordered += 1
            if ext < self._first_ext:
                self._first_ext = ext
            return delta
        self._max_ext = ext
        return delta

    def _remember(self, ext: int) -> None:
        self._recent.add(ext)
        self._recent_order.append(ext)
        if len(self._recent_order) > 4 * self.window:
            self._recent.discard(self._recent_order.popleft())

    def on_error(self, kind: str) -> None:
        """Record a rejected datagram (``checksum``, ``length``, ``type``, ``payload``...)."""
        self.errors[kind] += 1

    def on_lost(self, count: int = 1) -> None:
        """Record samples known lost by another layer (e.g. dropped in reassembly)."""
        self.gap_lost += count

    # -- reading ------------------------------------------------------------------

    def lost_by_sequence(self) -> int:
        """Samples missing according to the sequence numbers seen so far."""
        if self._max_ext is None or self._first_ext is None:
            return 0
        return max(0, self._max_ext - self._first_ext + 1 - self._unique)

    def snapshot(self, now_s: float) -> StatsSnapshot:
        """Current health, at monotonic time ``now_s``."""
        a = self._arrivals
        rate = (len(a) - 1) / (a[-1] - a[0]) if len(a) >= 2 and a[-1] > a[0] else 0.0
        std = 0.0
        if len(a) >= 3:
            gaps = [a[i + 1] - a[i] for i in range(len(a) - 1)]
            mean = sum(gaps) / len(gaps)
            std = math.sqrt(sum((g - mean) ** 2 for g in gaps) / (len(gaps) - 1))
        lost = self.gap_lost + self.lost_by_sequence()
        expected = self.received - self.duplicates + lost
        age = None if self.last_seen_s is None else now_s - self.last_seen_s
        threshold = self.silent_threshold_s()
        silent = age is None or (threshold is not None and age > threshold)
        return StatsSnapshot(
            source=self.source,
            received=self.received,
            rate_hz=rate,
            jitter_ms=self.jitter_s * 1000.0,
            interval_std_ms=std * 1000.0,
            lost=lost,
            loss_pct=100.0 * lost / expected if expected else 0.0,
            reordered=self.reordered,
            duplicates=self.duplicates,
            errors=dict(self.errors),
            error_count=sum(self.errors.values()),
            last_seen_s=self.last_seen_s,
            age_s=age,
            silent=silent,
        )

    def silent_threshold_s(self) -> float | None:
        """Seconds without a sample before the silent alarm (None: no period known)."""
        period = self.stage_frame_period_s or self.period_s()
        return None if period is None else self.silent_frames * period

    def is_silent(self, now_s: float) -> bool:
        """Whether the silent alarm is raised at ``now_s``."""
        if self.last_seen_s is None:
            return True
        threshold = self.silent_threshold_s()
        return threshold is not None and now_s - self.last_seen_s > threshold
