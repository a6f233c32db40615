"""Per-source delay compensation: an interpolating pose buffer.

A tracker and the camera's video rarely agree on latency. The stage delays each
source by a per-source amount, set in tenths of a frame, so its poses line up with
the picture: the pose used at time ``t`` is the source's pose at ``t - delay``,
interpolated between the two samples around it (linear for position, slerp for
rotation). Arrival (or source) timestamps must be monotonic per source; a sample that
is not newer than the last one is ignored and counted.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import numpy.typing as npt

from drivers.tracking import rotation

FloatArray = npt.NDArray[np.float64]
DELAY_STEP_FRAMES = Fraction(1, 10)


@dataclass(frozen=True, slots=True)
class Pose:
    """An interpolated pose in the stage frame."""

    time_s: float
    position_m: tuple[float, float, float]
    rotation_deg: tuple[float, float, float]


class DelayCompensator:
    """Ring buffer of recent poses of one source, read back with a delay.

    Args:
        frame_rate: stage frame rate in frames per second (exact rational welcome).
        delay_frames: delay in frames; must be a multiple of 0.1 and within
            ``0..max_delay_frames``.
        max_delay_frames: largest delay the operator may set.
        capacity: samples kept (enough for the largest delay at the source rate).
    """

    def __init__(
        self,
        frame_rate: Fraction | float,
        *,
        delay_frames: float | Fraction = 0,
        max_delay_frames: float = 10.0,
        capacity: int = 1024,
    ) -> None:
        if not frame_rate > 0:
            raise ValueError(f"DelayCompensator frame_rate={frame_rate!r} must be > 0")
        if capacity < 2:
            raise ValueError(f"DelayCompensator capacity={capacity} must be >= 2")
        self.frame_rate = Fraction(frame_rate).limit_denominator(1001)
        self.max_delay_frames = max_delay_frames
        self._delay_tenths = 0
        self.delay_frames = Fraction(delay_frames).limit_denominator(1000)
        self._times = np.full(capacity, np.nan)
        self._pos = np.zeros((capacity, 3))
        self._quat = np.zeros((capacity, 4))
        self._euler = np.zeros((capacity, 3))
        self._n = 0
        self._head = 0
        self.ignored = 0

    @property
    def delay_frames(self) -> Fraction:
        """Current delay in frames (a multiple of 1/10)."""
        return Fraction(self._delay_tenths, 10)

    @delay_frames.setter
    def delay_frames(self, value: float | Fraction) -> None:
        tenths = Fraction(value).limit_denominator(1000) * 10
        if tenths.denominator != 1 or not 0 <= tenths <= self.max_delay_frames * 10:
            raise ValueError(
                f"delay_frames={float(value)!r} must be a multiple of 0.1 frame in "
                f"0..{self.max_delay_frames}"
            )
        self._delay_tenths = int(tenths)

    @property
    def delay_s(self) -> float:
        """Current delay in seconds at the stage frame rate."""
        return float(self.delay_frames / self.frame_rate)

    def __len__(self) -> int:
        return self._n

    def push(
        self,
        time_s: float,
        position_m: tuple[float, float, float],
        rotation_deg: tuple[float, float, float],
    ) -> bool:
        """Add a pose; returns False (and counts it) when not newer than the last one."""
        if self._n and time_s <= self._times[(self._head - 1) % len(self._times)]:
            self.ignored += 1
            return False
        i = self._head
        self._times[i] = time_s
        self._pos[i] = position_m
        self._euler[i] = rotation_deg
        self._quat[i] = rotation.euler_zxy_to_quaternion(rotation_deg)
        self._head = (i + 1) % len(self._times)
        self._n = min(self._n + 1, len(self._times))
        return True

    def _ordered(self) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
        cap = len(self._times)
        idx = (np.arange(self._n) + (self._head - self._n)) % cap
        return self._times[idx], self._pos[idx], self._quat[idx], self._euler[idx]

    def pose_at(self, time_s: float) -> Pose | None:
        """The delayed pose for stage time ``time_s`` (None when the buffer is empty).

        Before the oldest or after the newest sample the nearest sample is held (no
        extrapolation: a stale tracker must not fling the camera).
        """
        out = self.poses_at(np.array([time_s]))
        if out is None:
            return None
        t, pos, rot = out
        return Pose(
            float(t[0]),
            (float(pos[0, 0]), float(pos[0, 1]), float(pos[0, 2])),
            (float(rot[0, 0]), float(rot[0, 1]), float(rot[0, 2])),
        )

    def poses_at(self, times_s: npt.ArrayLike) -> tuple[FloatArray, FloatArray, FloatArray] | None:
        """Vectorised :meth:`pose_at`: source times, positions ``(n, 3)``, rotations."""
        if self._n == 0:
            return None
        times, pos, quat, euler = self._ordered()
        target = np.asarray(times_s, dtype=np.float64) - self.delay_s
        target = np.clip(target, times[0], times[-1])
        hi = np.clip(np.searchsorted(times, target, side="left"), 1, max(self._n - 1, 1))
        lo = hi - 1
        if self._n == 1:
            lo = hi = np.zeros_like(hi)
            frac = np.zeros_like(target)
        else:
            span = times[hi] - times[lo]
            frac = np.clip((target - times[lo]) / span, 0.0, 1.0)
        p = pos[lo] + (pos[hi] - pos[lo]) * frac[:, np.newaxis]
        q = rotation.slerp(quat[lo], quat[hi], frac)
        near = np.where((frac < 0.5)[:, np.newaxis], euler[lo], euler[hi])
        r = rotation.unwrap_near(rotation.quaternion_to_euler_zxy(q), near)
        return target, p, r
