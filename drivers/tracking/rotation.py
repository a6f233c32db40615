"""Rotations in the OpenTrackIO convention, with numpy.

OpenTrackIO expresses orientation as intrinsic Euler angles about Z, X, Y
(pan, tilt, roll) in a right-handed frame with Z up and Y forward, so the rotation
matrix is ``R = Rz(pan) @ Rx(tilt) @ Ry(roll)``. Quaternions here are ``(w, x, y, z)``.
All functions accept a single angle triple or a stack of them (shape ``(..., 3)``).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


def euler_zxy_to_matrix(rotation_deg: npt.ArrayLike) -> FloatArray:
    """Rotation matrices (``(..., 3, 3)``) from pan/tilt/roll in degrees (``(..., 3)``)."""
    a = np.radians(np.asarray(rotation_deg, dtype=np.float64))
    cp, sp = np.cos(a[..., 0]), np.sin(a[..., 0])
    ct, st = np.cos(a[..., 1]), np.sin(a[..., 1])
    cr, sr = np.cos(a[..., 2]), np.sin(a[..., 2])
    m = np.empty(a.shape[:-1] + (3, 3), dtype=np.float64)
    # Rz(p) @ Rx(t) @ Ry(r), expanded.
    m[..., 0, 0] = cp * cr - sp * st * sr
    m[..., 0, 1] = -sp * ct
    m[..., 0, 2] = cp * sr + sp * st * cr
    m[..., 1, 0] = sp * cr + cp * st * sr
    m[..., 1, 1] = cp * ct
    m[..., 1, 2] = sp * sr - cp * st * cr
    m[..., 2, 0] = -ct * sr
    m[..., 2, 1] = st
    m[..., 2, 2] = ct * cr
    return m


def matrix_to_euler_zxy(matrix: npt.ArrayLike) -> FloatArray:
    """Pan/tilt/roll in degrees from rotation matrices; tilt in [-90, 90].

    At gimbal lock (tilt = +-90 degrees) roll is set to 0 and pan carries the rotation.
    """
    m = np.asarray(matrix, dtype=np.float64)
    tilt = np.arcsin(np.clip(m[..., 2, 1], -1.0, 1.0))
    locked = np.abs(m[..., 2, 1]) > 1.0 - 1e-12
    pan = np.where(
        locked, np.arctan2(m[..., 1, 0], m[..., 0, 0]), np.arctan2(-m[..., 0, 1], m[..., 1, 1])
    )
    roll = np.where(locked, 0.0, np.arctan2(-m[..., 2, 0], m[..., 2, 2]))
    result: FloatArray = np.degrees(np.stack([pan, tilt, roll], axis=-1))
    return result


def matrix_to_quaternion(matrix: npt.ArrayLike) -> FloatArray:
    """Unit quaternions ``(w, x, y, z)`` with ``w >= 0`` from rotation matrices.

    Shepperd's method, vectorised: of the four algebraically equal formulas, each
    element uses the one whose divisor is largest, so 180-degree turns stay exact.
    """
    m = np.asarray(matrix, dtype=np.float64)
    m00, m01, m02 = m[..., 0, 0], m[..., 0, 1], m[..., 0, 2]
    m10, m11, m12 = m[..., 1, 0], m[..., 1, 1], m[..., 1, 2]
    m20, m21, m22 = m[..., 2, 0], m[..., 2, 1], m[..., 2, 2]
    tr = m00 + m11 + m22
    with np.errstate(divide="ignore", invalid="ignore"):
        s0 = 2.0 * np.sqrt(np.maximum(1.0 + tr, 1e-300))
        s1 = 2.0 * np.sqrt(np.maximum(1.0 + m00 - m11 - m22, 1e-300))
        s2 = 2.0 * np.sqrt(np.maximum(1.0 - m00 + m11 - m22, 1e-300))
        s3 = 2.0 * np.sqrt(np.maximum(1.0 - m00 - m11 + m22, 1e-300))
        cands = np.stack(
            [
                np.stack([s0 / 4, (m21 - m12) / s0, (m02 - m20) / s0, (m10 - m01) / s0], -1),
                np.stack([(m21 - m12) / s1, s1 / 4, (m01 + m10) / s1, (m02 + m20) / s1], -1),
                np.stack([(m02 - m20) / s2, (m01 + m10) / s2, s2 / 4, (m12 + m21) / s2], -1),
                np.stack([(m10 - m01) / s3, (m02 + m20) / s3, (m12 + m21) / s3, s3 / 4], -1),
            ],
            axis=-2,
        )
    best = np.argmax(np.stack([tr, m00, m11, m22], axis=-1), axis=-1)
    q = np.take_along_axis(cands, best[..., np.newaxis, np.newaxis], axis=-2)[..., 0, :]
    q = np.where(q[..., :1] < 0.0, -q, q)
    result: FloatArray = q / np.linalg.norm(q, axis=-1, keepdims=True)
    return result


def quaternion_to_matrix(q: npt.ArrayLike) -> FloatArray:
    """Rotation matrices from quaternions ``(w, x, y, z)`` (normalised first)."""
    a = np.asarray(q, dtype=np.float64)
    a = a / np.linalg.norm(a, axis=-1, keepdims=True)
    w, x, y, z = a[..., 0], a[..., 1], a[..., 2], a[..., 3]
    m = np.empty(a.shape[:-1] + (3, 3), dtype=np.float64)
    m[..., 0, 0] = 1 - 2 * (y * y + z * z)
    m[..., 0, 1] = 2 * (x * y - z * w)
    m[..., 0, 2] = 2 * (x * z + y * w)
    m[..., 1, 0] = 2 * (x * y + z * w)
    m[..., 1, 1] = 1 - 2 * (x * x + z * z)
    m[..., 1, 2] = 2 * (y * z - x * w)
    m[..., 2, 0] = 2 * (x * z - y * w)
    m[..., 2, 1] = 2 * (y * z + x * w)
    m[..., 2, 2] = 1 - 2 * (x * x + y * y)
    return m


def euler_zxy_to_quaternion(rotation_deg: npt.ArrayLike) -> FloatArray:
    """Quaternions from pan/tilt/roll in degrees."""
    return matrix_to_quaternion(euler_zxy_to_matrix(rotation_deg))


def quaternion_to_euler_zxy(q: npt.ArrayLike) -> FloatArray:
    """Pan/tilt/roll in degrees from quaternions."""
    return matrix_to_euler_zxy(quaternion_to_matrix(q))


def slerp(q0: npt.ArrayLike, q1: npt.ArrayLike, t: npt.ArrayLike) -> FloatArray:
    """Spherical linear interpolation between unit quaternions, along the shorter arc.

    Args:
        q0: start quaternions, shape ``(..., 4)``.
        q1: end quaternions, same shape.
        t: fractions (0 gives ``q0``, 1 gives ``q1``), broadcast against ``(...)``.

    Returns:
        Interpolated unit quaternions, shape ``(..., 4)``.
    """
    a = np.asarray(q0, dtype=np.float64)
    b = np.asarray(q1, dtype=np.float64)
    f = np.asarray(t, dtype=np.float64)[..., np.newaxis]
    dot = np.sum(a * b, axis=-1, keepdims=True)
    b = np.where(dot < 0.0, -b, b)  # q and -q are the same rotation: take the short way
    dot = np.abs(dot)
    theta = np.arccos(np.clip(dot, -1.0, 1.0))
    sin_theta = np.sin(theta)
    near = sin_theta < 1e-9
    safe = np.where(near, 1.0, sin_theta)
    w0 = np.where(near, 1.0 - f, np.sin((1.0 - f) * theta) / safe)
    w1 = np.where(near, f, np.sin(f * theta) / safe)
    out = w0 * a + w1 * b
    result: FloatArray = out / np.linalg.norm(out, axis=-1, keepdims=True)
    return result


def unwrap_near(angles_deg: npt.ArrayLike, reference_deg: npt.ArrayLike) -> FloatArray:
    """Shift each angle by whole turns so it lies within 180 degrees of its reference.

    Keeps pan continuous (e.g. 359 -> 361 rather than 359 -> 1) after a round trip
    through quaternions, which only know angles modulo 360.
    """
    a = np.asarray(angles_deg, dtype=np.float64)
    r = np.asarray(reference_deg, dtype=np.float64)
    result: FloatArray = a + 360.0 * np.round((r - a) / 360.0)
    return result
