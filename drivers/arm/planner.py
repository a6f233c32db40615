"""Turn a validated motion command into a checked trajectory (driver and controller alike).

:func:`plan` is the single place where a command becomes motion: it computes the whole
trajectory from the arm's present position and checks it against the :class:`Envelope`
(soft limits, velocity and acceleration caps, payload) *before* anything moves. The driver
runs it on the last reported position before sending; the controller runs it again on
receipt with its true position, so a stale driver never gets a crossing motion through.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from drivers.arm import protocol as p
from drivers.arm.kinematics import UR10_DH, DhRow, IkError, Pose, inverse
from drivers.arm.motion import (
    Axis,
    LimitError,
    Trajectory,
    Vector,
    check_positions,
    check_trajectory,
    default_axes,
    plan_move,
    plan_path,
    with_soft_limits,
)

MAX_PAYLOAD_KG = 12.0


@dataclass(frozen=True)
class Envelope:
    """What the arm may do: axes (with soft limits), DH geometry, speed and payload."""

    axes: tuple[Axis, ...] = field(default_factory=lambda: default_axes(False))
    dh: tuple[DhRow, ...] = UR10_DH
    velocity_scale: float = 1.0
    payload_kg: float = 0.0
    max_payload_kg: float = MAX_PAYLOAD_KG

    @property
    def track(self) -> bool:
        """Whether the arm rides on a linear track (a 7th axis)."""
        return len(self.axes) > p.N_JOINTS

    @property
    def acceleration_scale(self) -> float:
        """A heavier payload accelerates more gently (half the caps at full payload)."""
        return 1.0 - 0.5 * min(1.0, self.payload_kg / self.max_payload_kg)

    @property
    def home(self) -> Vector:
        """Home: every joint at 0, clamped into the soft range; track where it is."""
        return np.array([min(max(0.0, a.soft_min), a.soft_max) for a in self.axes])

    def with_limits(self, args: dict[str, object]) -> Envelope:
        """Apply validated ``set_limits`` arguments.

        Raises:
            ArmProtocolError: a soft range outside the hard range, or too much payload.
        """
        env = self
        soft_min, soft_max = args.get("soft_min"), args.get("soft_max")
        if soft_min is not None or soft_max is not None:
            try:
                axes = with_soft_limits(self.axes, soft_min if isinstance(soft_min, list)
                                        else None, soft_max if isinstance(soft_max, list)
                                        else None)
            except ValueError as exc:
                raise p.ArmProtocolError(p.INVALID_VALUE, f"set_limits: {exc}",
                                         param="soft_min/soft_max") from None
            env = replace(env, axes=axes)
        scale = args.get("velocity_scale")
        if isinstance(scale, float):
            env = replace(env, velocity_scale=scale)
        payload = args.get("payload_kg")
        if isinstance(payload, float):
            if payload > self.max_payload_kg:
                raise p.ArmProtocolError(
                    p.INVALID_VALUE, f"setting payload_kg to {payload:g}: expected "
                    f"0..{self.max_payload_kg:g} kg (this arm's rated payload)",
                    param="payload_kg", value=payload)
            env = replace(env, payload_kg=payload)
        return env


def _limit_error(exc: LimitError) -> p.ArmProtocolError:
    return p.ArmProtocolError(exc.code, str(exc), **exc.details())


def target_of(env: Envelope, cmd: str, args: dict[str, object], position: Vector) -> Vector:
    """The end position of a point-to-point command (home, move_joints, move_pose, jog).

    Raises:
        ArmProtocolError: ``unreachable`` for a pose out of reach.
    """
    n = len(env.axes)
    if cmd == "home":
        return env.home
    if cmd == "move_joints":
        target = np.array(position[:n], dtype=np.float64)
        target[:p.N_JOINTS] = np.asarray(args["joints_deg"], dtype=np.float64)
        track = args.get("track_mm")
        if env.track and isinstance(track, float):
            target[p.N_JOINTS] = track
        return target
    if cmd == "move_pose":
        pose = args["pose"]
        assert isinstance(pose, dict)
        track_mm = float(position[p.N_JOINTS]) if env.track else 0.0
        try:
            joints = inverse(env.dh, Pose(**pose), position[:p.N_JOINTS], track_mm)
        except IkError as exc:
            raise p.ArmProtocolError(p.UNREACHABLE, f"move_pose: {exc}; nothing moved",
                                     pose=pose) from None
        target = np.array(position[:n], dtype=np.float64)
        target[:p.N_JOINTS] = joints
        return target
    if cmd == "jog":
        name, velocity, duration = args["axis"], args["velocity"], args["duration_s"]
        assert isinstance(velocity, float) and isinstance(duration, float)
        index = [a.name for a in env.axes].index(str(name))
        target = np.array(position[:n], dtype=np.float64)
        target[index] += velocity * duration
        return target
    raise p.ArmProtocolError(p.BAD_REQUEST, f"{cmd} is not a point-to-point move")


def plan(env: Envelope, cmd: str, args: dict[str, object], position: Vector) -> Trajectory:
    """The checked trajectory for a validated motion command, from ``position``.

    Raises:
        ArmProtocolError: ``soft_limit`` / ``velocity_limit`` / ``acceleration_limit``
            (naming the axis, the limit and the value) or ``unreachable``; nothing moved.
    """
    position = np.asarray(position, dtype=np.float64)
    axes = env.axes
    try:
        if cmd == "run_path":
            frames = args["keyframes"]
            assert isinstance(frames, list)
            times, points = [], []
            for frame in frames:
                point = np.array(position, dtype=np.float64)
                point[:p.N_JOINTS] = frame["joints_deg"]
                if env.track and frame.get("track_mm") is not None:
                    point[p.N_JOINTS] = frame["track_mm"]
                check_positions(axes, point, float(frame["t_s"]))
                if frame["t_s"] == 0.0 and float(np.max(np.abs(point - position))) > 0.5:
                    raise p.ArmProtocolError(
                        p.INVALID_VALUE, "run_path: keyframe 0 at t_s=0 is away from where "
                        "the arm is (it would jump); start it later or move there first",
                        param="keyframes[0]")
                times.append(float(frame["t_s"]))
                points.append(point)
            trajectory: Trajectory = plan_path(position, times, points)
        else:
            target = target_of(env, cmd, args, position)
            check_positions(axes, target)
            profile = str(args.get("profile", "trapezoid"))
            speed = env.velocity_scale * float(str(args.get("speed_scale", 1.0)))
            max_velocity = None
            if cmd == "jog":
                max_velocity = np.full(len(axes), abs(float(str(args["velocity"]))))
            trajectory = plan_move(axes, position, target, profile, speed,
                                   env.acceleration_scale, max_velocity)
        check_trajectory(axes, trajectory, speed_scale=env.velocity_scale,
                         acceleration_scale=env.acceleration_scale)
    except LimitError as exc:
        raise _limit_error(exc) from None
    return trajectory
