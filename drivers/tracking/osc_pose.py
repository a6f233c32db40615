"""OSC pose input for trackers that speak neither FreeD nor OpenTrackIO.

One message per pose, addressed ``/tracking/<source>/pose``, arguments (all float32,
stage frame, see ``docs/protocols/tracking-osc.md``)::

    x_m y_m z_m pan_deg tilt_deg roll_deg [zoom_norm focus_norm]

Integers are accepted in place of floats. Bundles are accepted; every pose message
inside is returned. OSC carries no sequence number, so statistics use arrival gaps.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Final

from pythonosc.osc_bundle import OscBundle
from pythonosc.osc_message import OscMessage
from pythonosc.osc_message_builder import OscMessageBuilder

from drivers.tracking.sample import TrackingSample

ADDRESS_RE: Final = re.compile(r"^/tracking/([A-Za-z0-9_.-]{1,64})/pose$")
SOURCE_RE: Final = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


class OscPoseError(ValueError):
    """An OSC datagram is not a valid pose message; the message says why."""


@dataclass(frozen=True, slots=True)
class OscPose:
    """One pose message, stage frame."""

    source: str
    x_m: float
    y_m: float
    z_m: float
    pan_deg: float
    tilt_deg: float
    roll_deg: float
    zoom_norm: float | None = None
    focus_norm: float | None = None

    def to_sample(self, arrival_s: float, source: str | None = None) -> TrackingSample:
        """The pose as a :class:`TrackingSample` (``source`` overrides the address)."""
        return TrackingSample(
            source=source or self.source,
            protocol="osc",
            sequence=None,
            position_m=(self.x_m, self.y_m, self.z_m),
            rotation_deg=(self.pan_deg, self.tilt_deg, self.roll_deg),
            arrival_s=arrival_s,
            zoom_norm=self.zoom_norm,
            focus_norm=self.focus_norm,
        )


def address(source: str) -> str:
    """OSC address of a source's pose messages.

    Raises:
        OscPoseError: the name has characters other than letters, digits, ``_.-``.
    """
    if not SOURCE_RE.match(source):
        raise OscPoseError(f"OSC pose source {source!r} must match {SOURCE_RE.pattern}")
    return f"/tracking/{source}/pose"


def encode(pose: OscPose) -> bytes:
    """Build the OSC message for a pose.

    Raises:
        OscPoseError: bad source name, non-finite value, or only one of zoom/focus set.
    """
    values = [pose.x_m, pose.y_m, pose.z_m, pose.pan_deg, pose.tilt_deg, pose.roll_deg]
    if (pose.zoom_norm is None) != (pose.focus_norm is None):
        raise OscPoseError("OSC pose needs both zoom_norm and focus_norm, or neither")
    if pose.zoom_norm is not None and pose.focus_norm is not None:
        values += [pose.zoom_norm, pose.focus_norm]
    if not all(math.isfinite(v) for v in values):
        raise OscPoseError(f"OSC pose for {pose.source!r} has a non-finite value: {values}")
    builder = OscMessageBuilder(address=address(pose.source))
    for v in values:
        builder.add_arg(float(v), OscMessageBuilder.ARG_TYPE_FLOAT)
    return builder.build().dgram


def _decode_message(dgram: bytes) -> OscPose:
    try:
        msg = OscMessage(dgram)
        params = msg.params
    except Exception as exc:  # python-osc raises several types on malformed input
        raise OscPoseError(f"OSC datagram does not parse: {exc}") from exc
    m = ADDRESS_RE.match(msg.address)
    if not m:
        raise OscPoseError(f"OSC address {msg.address!r} is not /tracking/<source>/pose")
    if len(params) not in (6, 8):
        raise OscPoseError(f"OSC pose {msg.address} has {len(params)} arguments, expected 6 or 8")
    values: list[float] = []
    for i, p in enumerate(params):
        if isinstance(p, bool) or not isinstance(p, int | float) or not math.isfinite(p):
            raise OscPoseError(f"OSC pose {msg.address} argument {i} = {p!r} is not a number")
        values.append(float(p))
    zoom = focus = None
    if len(values) == 8:
        zoom, focus = values[6], values[7]
    x, y, z, pan, tilt, roll = values[:6]
    return OscPose(m.group(1), x, y, z, pan, tilt, roll, zoom_norm=zoom, focus_norm=focus)


def decode(dgram: bytes) -> list[OscPose]:
    """Decode a datagram (a message or a bundle) into its poses.

    Raises:
        OscPoseError: malformed datagram, wrong address or arguments.
    """
    if OscBundle.dgram_is_bundle(dgram):
        try:
            bundle = OscBundle(dgram)
            contents = list(bundle)
        except Exception as exc:  # python-osc raises several types on malformed input
            raise OscPoseError(f"OSC bundle does not parse: {exc}") from exc
        poses: list[OscPose] = []
        for item in contents:
            if isinstance(item, OscBundle):
                poses.extend(decode(item.dgram))
            else:
                poses.append(_decode_message(item.dgram))
        if not poses:
            raise OscPoseError("OSC bundle holds no pose message")
        return poses
    return [_decode_message(dgram)]
