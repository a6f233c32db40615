"""The common tracking sample and the mapping of FreeD into the stage frame.

The stage frame is OpenTrackIO's: metres and degrees, right-handed, Z up, Y forward
(towards the LED wall), X to camera-right; orientation as intrinsic Z-X-Y Euler angles
(pan, tilt, roll), so positive pan turns the camera left (counter-clockwise seen from
above), positive tilt looks up, positive roll is clockwise seen from behind.

FreeD shares the axes (right-handed, Z up, pan 0 looking along +Y) but counts pan
positive to the right. The default :class:`FreeDAxisMap` therefore negates pan, keeps
tilt and roll, and divides positions by 1000. A tracker whose studio axes were set up
differently gets a different map from the stage configuration (decision 0030).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal, NamedTuple

import numpy as np

from drivers.tracking import rotation
from drivers.tracking.freed import FreeDPacket, FreeDProfile, profile

Protocol = Literal["freed", "opentrackio", "osc"]
Vec3 = tuple[float, float, float]


class TrackingSample(NamedTuple):
    """One camera pose from one source, in the stage frame.

    A named tuple rather than a frozen dataclass, like :class:`FreeDPacket`: one is made
    per datagram at up to 240 Hz per source, and a frozen dataclass of 14 fields costs
    several microseconds to construct (decision 0065).

    Attributes:
        source: stage name of the tracking source.
        protocol: wire protocol it arrived in.
        sequence: packet/sample sequence number where the protocol has one.
        position_m: x, y, z in metres.
        rotation_deg: pan, tilt, roll in degrees.
        arrival_s: ``time.monotonic()`` when the datagram arrived.
        zoom_raw: raw zoom encoder counts (FreeD zoom, OpenTrackIO rawEncoders).
        focus_raw: raw focus encoder counts.
        zoom_norm: zoom encoder normalised to 0..1 (OpenTrackIO encoders, OSC).
        focus_norm: focus encoder normalised to 0..1.
        focal_length_mm: lens focal length when the source knows it.
        focus_distance_m: focus distance when the source knows it.
        camera_id: FreeD camera id or OpenTrackIO source number.
        timecode: timecode label, stamped by the engine or carried by the source.
    """

    source: str
    protocol: Protocol
    sequence: int | None
    position_m: Vec3
    rotation_deg: Vec3
    arrival_s: float
    zoom_raw: int | None = None
    focus_raw: int | None = None
    zoom_norm: float | None = None
    focus_norm: float | None = None
    focal_length_mm: float | None = None
    focus_distance_m: float | None = None
    camera_id: int | None = None
    timecode: str | None = None


@dataclass(frozen=True, slots=True)
class FreeDAxisMap:
    """How FreeD axes map onto stage axes.

    Attributes:
        position_axes: for stage x, y, z, which FreeD axis (0=X, 1=Y, 2=Z) feeds it.
        position_signs: sign applied to each stage axis after the permutation.
        pan_sign: +1 keeps FreeD pan, -1 negates it (the default: FreeD pans right
            positive, the stage frame left positive).
        tilt_sign: sign for tilt.
        roll_sign: sign for roll.
        pan_offset_deg: added to the stage pan after the sign (tracker heading offset).
    """

    position_axes: tuple[int, int, int] = (0, 1, 2)
    position_signs: Vec3 = (1.0, 1.0, 1.0)
    pan_sign: float = -1.0
    tilt_sign: float = 1.0
    roll_sign: float = 1.0
    pan_offset_deg: float = 0.0

    def __post_init__(self) -> None:
        if sorted(self.position_axes) != [0, 1, 2]:
            raise ValueError(
                f"FreeDAxisMap.position_axes={self.position_axes!r} must be a permutation "
                "of (0, 1, 2)"
            )
        for name in ("pan_sign", "tilt_sign", "roll_sign", *("position_signs",)):
            values = getattr(self, name)
            for v in values if isinstance(values, tuple) else (values,):
                if v not in (1.0, -1.0):
                    raise ValueError(f"FreeDAxisMap.{name}={values!r}: signs are +1 or -1")


DEFAULT_AXIS_MAP: Final = FreeDAxisMap()


def freed_to_stage(
    packet: FreeDPacket, axis_map: FreeDAxisMap = DEFAULT_AXIS_MAP
) -> tuple[Vec3, Vec3]:
    """Position (m) and rotation (deg) in the stage frame from a FreeD packet."""
    mm = (packet.x_mm, packet.y_mm, packet.z_mm)
    ax, sg = axis_map.position_axes, axis_map.position_signs
    position = (
        sg[0] * mm[ax[0]] / 1000.0,
        sg[1] * mm[ax[1]] / 1000.0,
        sg[2] * mm[ax[2]] / 1000.0,
    )
    rot = (
        axis_map.pan_sign * packet.pan_deg + axis_map.pan_offset_deg,
        axis_map.tilt_sign * packet.tilt_deg,
        axis_map.roll_sign * packet.roll_deg,
    )
    return position, rot


def stage_to_freed_angles(rotation_deg: Vec3, axis_map: FreeDAxisMap = DEFAULT_AXIS_MAP) -> Vec3:
    """Inverse of the rotation part of :func:`freed_to_stage` (for simulators)."""
    pan, tilt, roll = rotation_deg
    return (
        (pan - axis_map.pan_offset_deg) * axis_map.pan_sign,
        tilt * axis_map.tilt_sign,
        roll * axis_map.roll_sign,
    )


def stage_to_freed_position_mm(position_m: Vec3, axis_map: FreeDAxisMap = DEFAULT_AXIS_MAP) -> Vec3:
    """Inverse of the position part of :func:`freed_to_stage` (for simulators)."""
    out = [0.0, 0.0, 0.0]
    for stage_axis, freed_axis in enumerate(axis_map.position_axes):
        out[freed_axis] = position_m[stage_axis] * axis_map.position_signs[stage_axis] * 1000.0
    return (out[0], out[1], out[2])


def sample_from_freed(
    packet: FreeDPacket,
    *,
    source: str,
    arrival_s: float,
    freed_profile: FreeDProfile | None = None,
    axis_map: FreeDAxisMap = DEFAULT_AXIS_MAP,
) -> TrackingSample:
    """Convert a decoded FreeD packet into a stage-frame sample."""
    prof = freed_profile or profile("generic")
    lens = prof.lens(packet)
    position, rot = freed_to_stage(packet, axis_map)
    return TrackingSample(
        source=source,
        protocol="freed",
        sequence=lens.sequence,
        position_m=position,
        rotation_deg=rot,
        arrival_s=arrival_s,
        zoom_raw=lens.zoom_raw,
        focus_raw=lens.focus_raw,
        focal_length_mm=lens.focal_length_mm,
        focus_distance_m=lens.focus_distance_m,
        camera_id=packet.camera_id,
    )


class SampleFormatError(ValueError):
    """A decoded OpenTrackIO document lacks what a pose needs, or has wrong types."""


# These run a dozen times per sample: the exact-type tests come first (a decoded document
# holds dicts, floats and ints), the general ones only for anything else.


def _num(doc: Mapping[str, Any], key: str, where: str) -> float:
    value = doc.get(key, 0.0)
    kind = type(value)
    if (kind is float and math.isfinite(value)) or kind is int:
        return float(value)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise SampleFormatError(f"OpenTrackIO {where}.{key}={value!r} is not a finite number")
    return float(value)


def _opt_num(doc: Any, key: str) -> float | None:
    if type(doc) is not dict and not isinstance(doc, Mapping):
        return None
    value: Any = doc.get(key)
    kind = type(value)
    if kind is float or kind is int:
        return float(value)
    if value is None or isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _opt_int(doc: Any, key: str) -> int | None:
    if type(doc) is not dict and not isinstance(doc, Mapping):
        return None
    value = doc.get(key)
    if type(value) is int:
        return int(value)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def compose_transforms(transforms: Any) -> tuple[Vec3, Vec3]:
    """Compound pose of an OpenTrackIO ``transforms`` list (applied first to last).

    Each transform maps its child frame into its parent: ``p_parent = t + R @ p_child``;
    ``scale`` is ignored (it does not move the camera sensor).

    Raises:
        SampleFormatError: the list is missing, empty or malformed.
    """
    if not isinstance(transforms, list) or not transforms:
        raise SampleFormatError("OpenTrackIO sample has no transforms")
    poses: list[tuple[Vec3, Vec3]] = []
    for i, tf in enumerate(transforms):
        if type(tf) is not dict and not isinstance(tf, Mapping):
            raise SampleFormatError(f"OpenTrackIO transforms[{i}] is not an object")
        tr, rot = tf.get("translation"), tf.get("rotation")
        if (type(tr) is not dict and not isinstance(tr, Mapping)) or (
            type(rot) is not dict and not isinstance(rot, Mapping)
        ):
            raise SampleFormatError(
                f"OpenTrackIO transforms[{i}] needs translation and rotation objects"
            )
        where = f"transforms[{i}]"
        poses.append((
            (_num(tr, "x", where), _num(tr, "y", where), _num(tr, "z", where)),
            (_num(rot, "pan", where), _num(rot, "tilt", where), _num(rot, "roll", where)),
        ))
    if len(poses) == 1:  # the common case: the sender's values untouched, no matrices
        return poses[0]
    position = np.zeros(3)
    matrix = np.eye(3)
    for t, r in poses:
        position = position + matrix @ np.array(t)
        matrix = matrix @ rotation.euler_zxy_to_matrix(list(r))
    e = rotation.matrix_to_euler_zxy(matrix)
    return (
        (float(position[0]), float(position[1]), float(position[2])),
        (float(e[0]), float(e[1]), float(e[2])),
    )


def sample_from_opentrackio(
    doc: Mapping[str, Any],
    *,
    source: str,
    arrival_s: float,
    sequence: int | None = None,
) -> TrackingSample:
    """Convert a decoded OpenTrackIO sample (JSON or CBOR document) into a stage sample.

    Args:
        doc: the decoded sample.
        source: stage name of the source.
        arrival_s: monotonic arrival time.
        sequence: transport sequence number; ``timing.sequenceNumber`` when omitted.

    Raises:
        SampleFormatError: no usable transforms.
    """
    position, rot = compose_transforms(doc.get("transforms"))
    lens = doc.get("lens")
    enc = raw = None
    if type(lens) is dict or isinstance(lens, Mapping):
        enc, raw = lens.get("encoders"), lens.get("rawEncoders")
    timing = doc.get("timing")
    if sequence is None:
        sequence = _opt_int(timing, "sequenceNumber")
    tc = timing.get("timecode") if type(timing) is dict or isinstance(timing, Mapping) else None
    label = None
    if tc is not None and (type(tc) is dict or isinstance(tc, Mapping)):
        parts = [_opt_int(tc, k) for k in ("hours", "minutes", "seconds", "frames")]
        if all(p is not None for p in parts):
            sep = ";" if tc.get("dropFrame") is True else ":"
            label = f"{parts[0]:02d}:{parts[1]:02d}:{parts[2]:02d}{sep}{parts[3]:02d}"
    return TrackingSample(
        source=source,
        protocol="opentrackio",
        sequence=sequence,
        position_m=position,
        rotation_deg=rot,
        arrival_s=arrival_s,
        zoom_raw=_opt_int(raw, "zoom"),
        focus_raw=_opt_int(raw, "focus"),
        zoom_norm=_opt_num(enc, "zoom"),
        focus_norm=_opt_num(enc, "focus"),
        focal_length_mm=_opt_num(lens, "pinholeFocalLength"),
        focus_distance_m=_opt_num(lens, "focusDistance"),
        camera_id=_opt_int(doc, "sourceNumber"),
        timecode=label,
    )
