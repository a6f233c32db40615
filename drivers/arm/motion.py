"""Axis limits, motion profiles, trajectories and the envelope check run before any motion.

The same functions run in the driver (before a byte is sent) and in the arm controller
(the simulator, on receipt): a move or path is planned in full and sampled at the control
rate, and it is refused *before motion starts* if any sample would cross a soft limit or
exceed a velocity or acceleration cap. The error names the axis, the limit and the value.

Profiles: ``trapezoid`` (bounded velocity and acceleration) and ``scurve`` (minimum-jerk
quintic: continuous acceleration, gentler on a camera). Multi-axis moves are synchronised:
all axes start and finish together, scaled so that no axis exceeds its own caps.
Paths (keyframes with times) are cubic Hermite splines through the keyframes with
Catmull-Rom tangents (zero velocity at both ends).

Recovery: a joint already outside its soft range (it settled a hair past a limit it was sent
to exactly, or the limits were narrowed) may move towards the range but never further out:
the checks bound each axis by ``min(soft_min, start)..max(soft_max, start)``. A controller
settles within :data:`SETTLE_TOLERANCE_DEG` (:data:`SETTLE_TOLERANCE_MM` for the track) of
its target, so a move to exactly a limit may end at most that far past it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Protocol

import numpy as np
import numpy.typing as npt

from drivers.steps import Steps, finish

Vector = npt.NDArray[np.float64]
Matrix = npt.NDArray[np.float64]

PROFILES: tuple[str, ...] = ("trapezoid", "scurve")
CONTROL_RATE_HZ = 250.0
SETTLE_TOLERANCE_DEG = 0.01  # how far past its target a joint may settle (deg)
SETTLE_TOLERANCE_MM = 0.1  # ... the track (mm)
CHECK_CHUNK = 1024  # samples checked per step (~0.2 ms)


@dataclass(frozen=True, slots=True)
class Axis:
    """One axis: hard range, soft range and caps (deg for joints, mm for the track)."""

    name: str
    unit: str
    min: float
    max: float
    max_velocity: float
    max_acceleration: float
    soft_min: float
    soft_max: float


def axis(name: str, unit: str, lo: float, hi: float, max_velocity: float,
         max_acceleration: float, soft_margin: float = 5.0) -> Axis:
    """An axis whose soft range is its hard range less ``soft_margin`` at each end."""
    return Axis(name, unit, lo, hi, max_velocity, max_acceleration, lo + soft_margin,
                hi - soft_margin)


DEFAULT_JOINTS: tuple[Axis, ...] = (
    axis("j1", "deg", -170.0, 170.0, 120.0, 300.0),
    axis("j2", "deg", -150.0, 60.0, 100.0, 250.0),
    axis("j3", "deg", -160.0, 160.0, 120.0, 300.0),
    axis("j4", "deg", -180.0, 180.0, 180.0, 500.0),
    axis("j5", "deg", -125.0, 125.0, 180.0, 500.0),
    axis("j6", "deg", -350.0, 350.0, 240.0, 600.0),
)
DEFAULT_TRACK = axis("track", "mm", 0.0, 6000.0, 1000.0, 1500.0, 50.0)


def default_axes(track: bool) -> tuple[Axis, ...]:
    """The six joints, plus the track when the arm has one."""
    return DEFAULT_JOINTS + ((DEFAULT_TRACK,) if track else ())


class LimitError(ValueError):
    """A planned motion that would cross a limit; nothing moved.

    Attributes:
        code: ``soft_limit``, ``velocity_limit`` or ``acceleration_limit``.
        axis: the axis name (``j3``, ``track``).
        limit: which limit (``soft_min``, ``soft_max``, ``max_velocity``, ``max_acceleration``).
        limit_value: the limit's value in the axis unit.
        value: the planned value that crosses it.
        at_s: when in the plan it would happen.
    """

    def __init__(self, code: str, axis: Axis, limit: str, limit_value: float, value: float,
                 at_s: float, start: float | None = None) -> None:
        self.code = code
        self.axis = axis.name
        self.limit = limit
        self.limit_value = round(limit_value, 3)
        self.value = round(value, 3)
        self.at_s = round(at_s, 3)
        unit = axis.unit if code == "soft_limit" else (
            f"{axis.unit}/s" if code == "velocity_limit" else f"{axis.unit}/s^2")
        note = ""
        if start is not None:
            note = (f" and further out than where it is ({round(start, 4):g} {unit}); a joint "
                    "outside its soft range may only move back towards it")
        super().__init__(f"{axis.name} would reach {self.value:g} {unit} at t={self.at_s:g} s, "
                         f"beyond its {limit} of {self.limit_value:g} {unit}{note}; "
                         "nothing moved")

    def details(self) -> dict[str, object]:
        """Fields for a structured error reply."""
        return {"axis": self.axis, "limit": self.limit, "limit_value": self.limit_value,
                "value": self.value, "at_s": self.at_s}


class Trajectory(Protocol):
    """Anything that gives positions and velocities over ``[0, duration_s]``."""

    @property
    def duration_s(self) -> float:
        """Length of the motion."""
        ...

    def sample(self, t: Vector) -> tuple[Matrix, Matrix]:
        """Positions and velocities (rows = times, columns = axes)."""
        ...


def _unit_trapezoid(v: float, a: float) -> tuple[float, float, float]:
    """(duration, accel time, peak velocity) of a 0->1 trapezoid with caps v, a."""
    if v * v / a >= 1.0:  # never reaches v: triangular
        ta = math.sqrt(1.0 / a)
        return 2.0 * ta, ta, a * ta
    ta = v / a
    return 2.0 * ta + (1.0 - v * ta) / v, ta, v


SCURVE_PEAK_V = 1.875  # max of d/dt (10t^3 - 15t^4 + 6t^5)
SCURVE_PEAK_A = 5.7735  # max of its second derivative


@dataclass(frozen=True, slots=True)
class PointToPoint:
    """A synchronised move from ``start`` to ``end`` with one scalar profile s(t) in [0, 1]."""

    start: Vector
    end: Vector
    profile: str
    duration_s: float
    _ta: float = 0.0
    _vpeak: float = 0.0

    def _s(self, t: Vector) -> tuple[Vector, Vector]:
        t = np.clip(t, 0.0, self.duration_s)
        if self.duration_s <= 0.0:
            return np.ones_like(t), np.zeros_like(t)
        if self.profile == "scurve":
            x = t / self.duration_s
            s = x ** 3 * (10 - 15 * x + 6 * x * x)
            ds = 30 * x * x * (1 - x) ** 2 / self.duration_s
            return s, ds
        ta, vp, T = self._ta, self._vpeak, self.duration_s
        a = vp / ta
        s = np.where(t < ta, 0.5 * a * t * t,
                     np.where(t < T - ta, 0.5 * a * ta * ta + vp * (t - ta),
                              1.0 - 0.5 * a * (T - t) ** 2))
        ds = np.where(t < ta, a * t, np.where(t < T - ta, vp, a * (T - t)))
        return s, ds

    def sample(self, t: Vector) -> tuple[Matrix, Matrix]:
        """Positions and velocities at times ``t``."""
        s, ds = self._s(np.asarray(t, dtype=np.float64))
        delta = self.end - self.start
        return self.start + np.outer(s, delta), np.outer(ds, delta)


def plan_move(axes: tuple[Axis, ...], start: Vector, end: Vector, profile: str = "trapezoid",
              speed_scale: float = 1.0, acceleration_scale: float = 1.0,
              max_velocity: Vector | None = None) -> PointToPoint:
    """The fastest synchronised move within every axis's caps (scaled)."""
    start = np.asarray(start, dtype=np.float64)
    end = np.asarray(end, dtype=np.float64)
    delta = np.abs(end - start)
    vcaps = np.array([a.max_velocity for a in axes]) * speed_scale
    if max_velocity is not None:
        vcaps = np.minimum(vcaps, max_velocity)
    acaps = np.array([a.max_acceleration for a in axes]) * acceleration_scale
    moving = delta > 1e-9
    if not moving.any():
        return PointToPoint(start, end, profile, 0.0)
    v = float(np.min(vcaps[moving] / delta[moving]))  # unit path speeds each axis allows
    a = float(np.min(acaps[moving] / delta[moving]))
    if profile == "scurve":
        duration = max(SCURVE_PEAK_V / v, math.sqrt(SCURVE_PEAK_A / a))
        return PointToPoint(start, end, profile, duration)
    duration, ta, vpeak = _unit_trapezoid(v, a)
    return PointToPoint(start, end, "trapezoid", duration, ta, vpeak)


@dataclass(frozen=True, slots=True)
class SplinePath:
    """Cubic Hermite spline through keyframes (times from 0, Catmull-Rom tangents)."""

    times: Vector
    points: Matrix
    tangents: Matrix

    @property
    def duration_s(self) -> float:
        """Time of the last keyframe."""
        return float(self.times[-1])

    def sample(self, t: Vector) -> tuple[Matrix, Matrix]:
        """Positions and velocities at times ``t``."""
        t = np.clip(np.asarray(t, dtype=np.float64), 0.0, self.duration_s)
        i = np.clip(np.searchsorted(self.times, t, side="right") - 1, 0, len(self.times) - 2)
        t0, t1 = self.times[i], self.times[i + 1]
        h = (t1 - t0)[:, None]
        x = ((t - t0) / (t1 - t0))[:, None]
        p0, p1 = self.points[i], self.points[i + 1]
        m0, m1 = self.tangents[i] * h, self.tangents[i + 1] * h
        h00, h10 = 2 * x**3 - 3 * x**2 + 1, x**3 - 2 * x**2 + x
        h01, h11 = -2 * x**3 + 3 * x**2, x**3 - x**2
        pos = h00 * p0 + h10 * m0 + h01 * p1 + h11 * m1
        d00, d10 = 6 * x**2 - 6 * x, 3 * x**2 - 4 * x + 1
        d01, d11 = -6 * x**2 + 6 * x, 3 * x**2 - 2 * x
        vel = (d00 * p0 + d10 * m0 + d01 * p1 + d11 * m1) / h
        return pos, vel


def plan_path(start: Vector, times_s: list[float] | Vector,
              points: list[Vector] | Matrix) -> SplinePath:
    """A path from ``start`` (t=0) through keyframes; a first keyframe at t=0 replaces start.

    Raises:
        ValueError: times not strictly increasing.
    """
    start = np.asarray(start, dtype=np.float64)
    times = np.asarray(times_s, dtype=np.float64).reshape(-1)
    p = np.asarray(points, dtype=np.float64).reshape(len(times), start.size)
    if not times.size or times[0] != 0.0:
        times, p = np.concatenate(([0.0], times)), np.vstack((start, p))
    if times.size < 2:
        times, p = np.array([0.0, 1e-3]), np.vstack((p[0], p[0]))
    if np.any(np.diff(times) <= 0):
        raise ValueError("keyframe times must increase strictly")
    m = np.zeros_like(p)
    if times.size > 2:
        m[1:-1] = (p[2:] - p[:-2]) / (times[2:] - times[:-2])[:, None]
    return SplinePath(times, p, m)


def _bounds(axes: tuple[Axis, ...], start: Vector | None) -> tuple[Vector, Vector]:
    """Per-axis position bounds: the soft range, widened to ``start`` where it is outside."""
    lo = np.array([a.soft_min for a in axes], dtype=np.float64)
    hi = np.array([a.soft_max for a in axes], dtype=np.float64)
    if start is not None:
        start = np.asarray(start, dtype=np.float64)[:len(axes)]
        lo, hi = np.minimum(lo, start), np.maximum(hi, start)
    return lo - 1e-9, hi + 1e-9


def _position_error(axes: tuple[Axis, ...], col: int, value: float, at_s: float,
                    start: Vector | None) -> LimitError:
    axis = axes[col]
    limit = "soft_min" if value < axis.soft_min else "soft_max"
    here = None if start is None else float(start[col])
    outside = here is not None and (here < axis.soft_min or here > axis.soft_max)
    return LimitError("soft_limit", axis, limit, getattr(axis, limit), value, at_s,
                      here if outside else None)


def check_positions(axes: tuple[Axis, ...], position: Vector, at_s: float = 0.0,
                    start: Vector | None = None) -> None:
    """Raise :class:`LimitError` if a position is outside the soft limits.

    With ``start`` (where the arm is now), an axis already outside its soft range is bounded
    by its present position instead (it may come back, not go further out).
    """
    lo, hi = _bounds(axes, start)
    position = np.asarray(position, dtype=np.float64)
    bad = (position < lo) | (position > hi)
    if bad.any():
        col = int(np.argmax(bad))
        raise _position_error(axes, col, float(position[col]), at_s, start)


def check_trajectory(axes: tuple[Axis, ...], trajectory: Trajectory,
                     rate_hz: float = CONTROL_RATE_HZ, speed_scale: float = 1.0,
                     acceleration_scale: float = 1.0, start: Vector | None = None) -> None:
    """Sample a whole plan at the control rate; raise :class:`LimitError` on any crossing."""
    finish(check_trajectory_steps(axes, trajectory, rate_hz, speed_scale, acceleration_scale,
                                  start))


def check_trajectory_steps(axes: tuple[Axis, ...], trajectory: Trajectory,
                           rate_hz: float = CONTROL_RATE_HZ, speed_scale: float = 1.0,
                           acceleration_scale: float = 1.0, start: Vector | None = None
                           ) -> Steps[None]:
    """:func:`check_trajectory` in steps of :data:`CHECK_CHUNK` samples.

    ``start`` is where the arm is (see :func:`check_positions`); default: the plan's t=0.
    """
    duration = trajectory.duration_s
    n = max(2, int(math.ceil(duration * rate_hz)) + 1)
    step = duration / (n - 1)
    if start is None:
        start = trajectory.sample(np.array([0.0]))[0][0]
    lo, hi = _bounds(axes, start)
    vcaps = np.array([a.max_velocity for a in axes]) * speed_scale * 1.001 + 1e-9
    acaps = np.array([a.max_acceleration for a in axes]) * acceleration_scale * 1.02 + 1e-6
    # chunks overlap by one sample so the acceleration between chunks is checked too
    for first in range(0, n - 1, CHECK_CHUNK):
        last = min(n - 1, first + CHECK_CHUNK)
        t = np.arange(first, last + 1, dtype=np.float64) * step
        t[-1] = min(t[-1], duration)
        pos, vel = trajectory.sample(t)
        bad = (pos < lo) | (pos > hi)
        if bad.any():
            row, col = np.argwhere(bad)[0]
            raise _position_error(axes, int(col), float(pos[row, col]), float(t[row]), start)
        over = np.abs(vel) > vcaps
        if over.any():
            row, col = np.argwhere(over)[0]
            raise LimitError("velocity_limit", axes[col], "max_velocity", float(vcaps[col]),
                             float(vel[row, col]), float(t[row]))
        if n > 2 and duration > 0:
            acc = np.diff(vel, axis=0) / np.diff(t)[:, None]
            over = np.abs(acc) > acaps
            if over.any():
                row, col = np.argwhere(over)[0]
                raise LimitError("acceleration_limit", axes[col], "max_acceleration",
                                 float(acaps[col]), float(acc[row, col]), float(t[row]))
        yield


def with_soft_limits(axes: tuple[Axis, ...], soft_min: list[float] | None,
                     soft_max: list[float] | None) -> tuple[Axis, ...]:
    """Axes with a new soft range (which must lie inside the hard range).

    Raises:
        ValueError: a soft range outside the hard range, or empty; names the axis.
    """
    out = []
    for i, ax in enumerate(axes):
        lo = ax.soft_min if soft_min is None else float(soft_min[i])
        hi = ax.soft_max if soft_max is None else float(soft_max[i])
        if lo < ax.min or hi > ax.max or lo >= hi:
            raise ValueError(f"{ax.name}: soft range {lo:g}..{hi:g} {ax.unit} must lie "
                             f"inside {ax.min:g}..{ax.max:g} {ax.unit} and not be empty")
        out.append(replace(ax, soft_min=lo, soft_max=hi))
    return tuple(out)
