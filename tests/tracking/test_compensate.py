from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from drivers.tracking import rotation
from drivers.tracking.compensate import DelayCompensator


def make(rate: float = 25, delay: float = 0.0) -> DelayCompensator:
    c = DelayCompensator(rate, delay_frames=delay)
    for i in range(50):
        t = i / 100
        c.push(t, (t * 2.0, -t, 1.5), (10.0 * t, 0.0, 0.0))
    return c


def test_linear_position_and_delay_in_tenths() -> None:
    c = make(delay=1.5)  # 1.5 frames at 25 fps = 60 ms
    assert c.delay_s == pytest.approx(0.06)
    pose = c.pose_at(0.2)
    assert pose is not None
    assert pose.time_s == pytest.approx(0.14)
    assert pose.position_m == pytest.approx((0.28, -0.14, 1.5))
    assert pose.rotation_deg[0] == pytest.approx(1.4)


def test_delay_steps_validated() -> None:
    c = make()
    c.delay_frames = 0.3
    assert c.delay_frames == Fraction(3, 10)
    for bad in (0.25, -0.1, 10.1):
        with pytest.raises(ValueError, match="0.1 frame"):
            c.delay_frames = bad


def test_slerp_between_samples_takes_short_way_and_keeps_turns() -> None:
    c = DelayCompensator(24)
    c.push(0.0, (0, 0, 0), (350.0, 0.0, 0.0))
    c.push(1.0, (0, 0, 0), (370.0, 0.0, 0.0))  # through 360, not back through 180
    mid = c.pose_at(0.5)
    assert mid is not None and mid.rotation_deg[0] == pytest.approx(360.0)


def test_slerp_matches_constant_rate_rotation() -> None:
    # a rotation about a tilted axis at constant rate: slerp must reproduce it exactly
    axis = np.array([0.3, 0.5, 0.8]) / np.linalg.norm([0.3, 0.5, 0.8])

    def quat(angle: float) -> np.ndarray:
        return np.concatenate([[np.cos(angle / 2)], np.sin(angle / 2) * axis])

    q0, q1 = quat(0.2), quat(1.0)
    mid = rotation.slerp(q0, q1, 0.25)
    assert np.allclose(mid, quat(0.4))
    e0, e1 = rotation.quaternion_to_euler_zxy([q0, q1])
    c = DelayCompensator(25)
    c.push(0.0, (0, 0, 0), tuple(e0))
    c.push(1.0, (0, 0, 0), tuple(e1))
    pose = c.pose_at(0.25)
    assert pose is not None
    got = rotation.euler_zxy_to_quaternion(pose.rotation_deg)
    assert abs(float(np.dot(got, quat(0.4)))) == pytest.approx(1.0, abs=1e-12)


def test_holds_at_ends_and_ignores_old_samples() -> None:
    c = make()
    last = c.pose_at(100.0)
    first = c.pose_at(-1.0)
    assert last is not None and first is not None
    assert last.position_m[0] == pytest.approx(0.98) and first.position_m[0] == 0.0
    assert not c.push(0.1, (0, 0, 0), (0, 0, 0))
    assert c.ignored == 1
    assert DelayCompensator(25).pose_at(0.0) is None


def test_ring_buffer_wraps() -> None:
    c = DelayCompensator(25, capacity=8)
    for i in range(20):
        c.push(float(i), (float(i), 0, 0), (0, 0, 0))
    assert len(c) == 8
    pose = c.pose_at(15.5)
    assert pose is not None and pose.position_m[0] == pytest.approx(15.5)
    early = c.pose_at(0.0)
    assert early is not None and early.position_m[0] == 12.0  # oldest kept


def test_vectorised() -> None:
    c = make()
    out = c.poses_at(np.array([0.1, 0.2, 0.3]))
    assert out is not None
    assert out[1][:, 0] == pytest.approx([0.2, 0.4, 0.6])
