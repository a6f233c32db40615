"""Forward and inverse kinematics of a 6-axis arm from Denavit-Hartenberg parameters.

Standard (distal) DH convention: joint ``i`` contributes
``Rz(theta_i + offset) Tz(d) Tx(a) Rx(alpha)``. An optional linear track moves the arm's base
along the stage X axis. Poses are ``x_mm, y_mm, z_mm`` and intrinsic Z-Y-X angles
``yaw_deg, pitch_deg, roll_deg`` of the tool flange in the stage frame.

Inverse kinematics is numeric (damped least squares from a seed, normally the current joints):
it finds the solution nearest the arm's present configuration, which is what a camera move
wants, and says so when the pose is out of reach.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Vector = npt.NDArray[np.float64]
Matrix = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class DhRow:
    """One joint's DH parameters (lengths in mm, angles in degrees)."""

    a_mm: float
    alpha_deg: float
    d_mm: float
    theta_offset_deg: float = 0.0


# A UR10-sized camera arm: 1.3 m reach, the usual choice for a compact LED volume.
UR10_DH: tuple[DhRow, ...] = (
    DhRow(0.0, 90.0, 127.3),
    DhRow(-612.0, 0.0, 0.0),
    DhRow(-572.3, 0.0, 0.0),
    DhRow(0.0, 90.0, 163.9),
    DhRow(0.0, -90.0, 115.7),
    DhRow(0.0, 0.0, 92.2),
)


@dataclass(frozen=True, slots=True)
class Pose:
    """Tool flange pose in the stage frame (mm, degrees; Z-Y-X yaw, pitch, roll)."""

    x_mm: float
    y_mm: float
    z_mm: float
    roll_deg: float
    pitch_deg: float
    yaw_deg: float

    def as_dict(self) -> dict[str, float]:
        """JSON-ready form, rounded to 0.001 mm / deg."""
        return {k: round(getattr(self, k), 3) for k in POSE_KEYS}


POSE_KEYS: tuple[str, ...] = ("x_mm", "y_mm", "z_mm", "roll_deg", "pitch_deg", "yaw_deg")


class IkError(ValueError):
    """A pose the arm cannot reach from its current configuration."""


def _dh_matrix(row: DhRow, theta_rad: float) -> Matrix:
    th = theta_rad + math.radians(row.theta_offset_deg)
    al = math.radians(row.alpha_deg)
    ct, st, ca, sa = math.cos(th), math.sin(th), math.cos(al), math.sin(al)
    return np.array([
        [ct, -st * ca, st * sa, row.a_mm * ct],
        [st, ct * ca, -ct * sa, row.a_mm * st],
        [0.0, sa, ca, row.d_mm],
        [0.0, 0.0, 0.0, 1.0],
    ])


def flange_matrix(dh: tuple[DhRow, ...], joints_deg: Vector | list[float],
                  track_mm: float = 0.0) -> Matrix:
    """Homogeneous transform of the flange in the stage frame."""
    t = np.eye(4)
    t[0, 3] = track_mm
    for row, q in zip(dh, joints_deg, strict=True):
        t = t @ _dh_matrix(row, math.radians(float(q)))
    return t


def rotation_to_rpy(r: Matrix) -> tuple[float, float, float]:
    """Roll, pitch, yaw (deg) of a rotation matrix, Z-Y-X convention."""
    pitch = math.asin(max(-1.0, min(1.0, -float(r[2, 0]))))
    if abs(math.cos(pitch)) > 1e-9:
        roll = math.atan2(float(r[2, 1]), float(r[2, 2]))
        yaw = math.atan2(float(r[1, 0]), float(r[0, 0]))
    else:  # gimbal lock: put everything in yaw
        roll = 0.0
        yaw = math.atan2(-float(r[0, 1]), float(r[1, 1]))
    return math.degrees(roll), math.degrees(pitch), math.degrees(yaw)


def rpy_to_rotation(roll_deg: float, pitch_deg: float, yaw_deg: float) -> Matrix:
    """Rotation matrix from Z-Y-X roll, pitch, yaw in degrees."""
    r, p, y = (math.radians(v) for v in (roll_deg, pitch_deg, yaw_deg))
    rz = np.array([[math.cos(y), -math.sin(y), 0], [math.sin(y), math.cos(y), 0], [0, 0, 1]])
    ry = np.array([[math.cos(p), 0, math.sin(p)], [0, 1, 0], [-math.sin(p), 0, math.cos(p)]])
    rx = np.array([[1, 0, 0], [0, math.cos(r), -math.sin(r)], [0, math.sin(r), math.cos(r)]])
    out: Matrix = rz @ ry @ rx
    return out


def forward(dh: tuple[DhRow, ...], joints_deg: Vector | list[float],
            track_mm: float = 0.0) -> Pose:
    """Tool flange pose for joint angles (deg) and track position (mm)."""
    t = flange_matrix(dh, joints_deg, track_mm)
    roll, pitch, yaw = rotation_to_rpy(t[:3, :3])
    return Pose(float(t[0, 3]), float(t[1, 3]), float(t[2, 3]), roll, pitch, yaw)


def _rotation_error(current: Matrix, target: Matrix) -> Vector:
    """Axis-angle vector (rad) rotating ``current`` onto ``target``, in the stage frame."""
    r = target @ current.T
    angle = math.acos(max(-1.0, min(1.0, (float(np.trace(r)) - 1.0) / 2.0)))
    if angle < 1e-9:
        return np.zeros(3)
    axis = np.array([r[2, 1] - r[1, 2], r[0, 2] - r[2, 0], r[1, 0] - r[0, 1]])
    norm = float(np.linalg.norm(axis))
    if norm < 1e-9:  # 180 degrees: take the axis from the symmetric part
        w, v = np.linalg.eigh((r + r.T) / 2.0)
        axis = v[:, int(np.argmax(w))]
        norm = 1.0
    out: Vector = axis / norm * angle
    return out


ORIENTATION_WEIGHT_MM_PER_RAD = 500.0


def inverse(dh: tuple[DhRow, ...], target: Pose, seed_deg: Vector | list[float],
            track_mm: float = 0.0, *, tolerance_mm: float = 0.05, tolerance_deg: float = 0.01,
            max_iterations: int = 300, damping: float = 5.0) -> Vector:
    """Joint angles (deg) reaching ``target``, nearest ``seed_deg`` (damped least squares).

    Raises:
        IkError: no convergence (out of reach or through a singularity); says how far off.
    """
    goal = np.eye(4)
    goal[:3, :3] = rpy_to_rotation(target.roll_deg, target.pitch_deg, target.yaw_deg)
    goal[:3, 3] = (target.x_mm, target.y_mm, target.z_mm)
    q = np.radians(np.asarray(seed_deg, dtype=np.float64)).copy()
    w = ORIENTATION_WEIGHT_MM_PER_RAD
    pos_err = rot_err = math.inf
    for _ in range(max_iterations):
        t = flange_matrix(dh, np.degrees(q), track_mm)
        e_pos = goal[:3, 3] - t[:3, 3]
        e_rot = _rotation_error(t[:3, :3], goal[:3, :3])
        pos_err, rot_err = float(np.linalg.norm(e_pos)), math.degrees(float(np.linalg.norm(e_rot)))
        if pos_err < tolerance_mm and rot_err < tolerance_deg:
            return np.asarray(np.degrees(q), dtype=np.float64)
        err = np.concatenate([e_pos, e_rot * w])
        jac = _jacobian(dh, q, track_mm, w)
        jjt = jac @ jac.T + (damping ** 2) * np.eye(6)
        step = jac.T @ np.linalg.solve(jjt, err)
        norm = float(np.linalg.norm(step))
        if norm > 0.2:  # at most ~11 degrees per iteration keeps the search local
            step *= 0.2 / norm
        q = q + step
    raise IkError(f"pose out of reach: {pos_err:.1f} mm and {rot_err:.2f} deg away after "
                  f"{max_iterations} iterations")


def _jacobian(dh: tuple[DhRow, ...], q_rad: Vector, track_mm: float, w: float) -> Matrix:
    """Numeric 6xN Jacobian (mm/rad for position, weighted rad/rad for orientation)."""
    base = flange_matrix(dh, np.degrees(q_rad), track_mm)
    jac = np.zeros((6, len(q_rad)))
    h = 1e-6
    for i in range(len(q_rad)):
        dq = q_rad.copy()
        dq[i] += h
        t = flange_matrix(dh, np.degrees(dq), track_mm)
        jac[:3, i] = (t[:3, 3] - base[:3, 3]) / h
        jac[3:, i] = _rotation_error(base[:3, :3], t[:3, :3]) / h * w
    return jac
