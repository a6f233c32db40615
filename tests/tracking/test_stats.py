from __future__ import annotations

import random

import pytest

from drivers.tracking.stats import SourceStats


def feed(stats: SourceStats, arrivals: list[tuple[float, int | None]]) -> None:
    for t, seq in arrivals:
        stats.on_sample(t, seq)


def test_clean_stream() -> None:
    s = SourceStats("a", nominal_rate_hz=50, sequence_bits=16)
    feed(s, [(i / 50, i) for i in range(200)])
    snap = s.snapshot(199 / 50 + 0.001)
    assert snap.rate_hz == pytest.approx(50.0)
    assert snap.jitter_ms == pytest.approx(0.0, abs=1e-6)
    assert (snap.lost, snap.reordered, snap.duplicates, snap.error_count) == (0, 0, 0, 0)
    assert not snap.silent and snap.received == 200


def test_sequence_loss_with_wrap() -> None:
    s = SourceStats("a", nominal_rate_hz=240, sequence_bits=16)
    seqs = [(65500 + i) & 0xFFFF for i in range(100)]
    lost = {10, 11, 12, 50, 90}
    feed(s, [(i / 240, q) for i, q in enumerate(seqs) if i not in lost])
    snap = s.snapshot(1.0)
    assert snap.lost == 5 and snap.loss_pct == pytest.approx(5.0)


def test_reorder_and_duplicate() -> None:
    s = SourceStats("a", nominal_rate_hz=50, sequence_bits=16)
    order = [0, 1, 3, 2, 4, 4, 5]
    feed(s, [(i / 50, q) for i, q in enumerate(order)])
    snap = s.snapshot(0.2)
    assert (snap.lost, snap.reordered, snap.duplicates) == (0, 1, 1)


def test_late_packet_fills_gap_again() -> None:
    s = SourceStats("a", nominal_rate_hz=50, sequence_bits=16)
    feed(s, [(0.00, 0), (0.02, 2), (0.04, 3)])
    assert s.snapshot(0.05).lost == 1
    s.on_sample(0.05, 1)
    assert s.snapshot(0.06).lost == 0


def test_source_restart_is_not_mass_loss() -> None:
    s = SourceStats("a", nominal_rate_hz=50, sequence_bits=16)
    feed(s, [(i / 50, 30000 + i) for i in range(10)])
    feed(s, [(1 + i / 50, i) for i in range(10)])
    assert s.snapshot(2.0).lost == 0


def test_eight_bit_sequence_wraps() -> None:
    s = SourceStats("zcam", nominal_rate_hz=50, sequence_bits=8)
    feed(s, [(i / 50, i & 0xFF) for i in range(600) if i % 100 != 7])
    assert s.snapshot(12.0).lost == 6


def test_loss_from_gaps_without_sequence() -> None:
    s = SourceStats("osc", nominal_rate_hz=100)
    keep = [i for i in range(1000) if not (i % 50 == 10 or 500 <= i < 505)]
    feed(s, [(i / 100, None) for i in keep])
    snap = s.snapshot(10.0)
    assert snap.lost == 20 + 5  # 20 single drops and a burst of 5
    assert snap.jitter_ms == pytest.approx(0.0, abs=1e-6)  # gaps are loss, not jitter


def test_loss_from_gaps_with_estimated_period() -> None:
    s = SourceStats("osc")
    feed(s, [(i / 60, None) for i in range(300) if i not in (100, 200, 201)])
    assert s.snapshot(5.0).lost == 3


def test_jitter_rfc3550_style() -> None:
    rng = random.Random(5)
    s = SourceStats("a", nominal_rate_hz=100, sequence_bits=16)
    # send at 10 ms, arrival delayed by U(0, 4 ms): mean |D| of difference of two
    # uniforms on [0, 4] is 4/3 ms
    feed(s, [(i / 100 + rng.uniform(0, 0.004), i) for i in range(3000)])
    assert s.snapshot(31.0).jitter_ms == pytest.approx(4 / 3, rel=0.25)
    assert s.snapshot(31.0).interval_std_ms == pytest.approx(4 / 6**0.5, rel=0.25)


def test_silent_alarm_after_two_frames() -> None:
    s = SourceStats("a", nominal_rate_hz=240, stage_frame_period_s=1 / 25)
    assert s.snapshot(0.0).silent  # never seen
    s.on_sample(10.0)
    assert not s.is_silent(10.079)
    assert s.is_silent(10.081)
    assert s.snapshot(10.081).age_s == pytest.approx(0.081)


def test_errors_by_kind() -> None:
    s = SourceStats("a")
    for kind in ("checksum", "checksum", "length"):
        s.on_error(kind)
    snap = s.snapshot(0.0)
    assert snap.errors == {"checksum": 2, "length": 1} and snap.error_count == 3


def test_validation() -> None:
    with pytest.raises(ValueError):
        SourceStats("a", nominal_rate_hz=0)
