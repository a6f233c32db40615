"""Turn a validated motion command into a checked trajectory (driver and controller alike).

:func:`plan` is the single place where a command becomes motion: it computes the whole
trajectory from the arm's present position and checks it against the :class:`Envelope`
(soft limits, velocity and acceleration caps, payload) *before* anything moves. The driver
runs it on the last reported position before sending; the controller runs it again on
receipt with its true position, so a stale driver never gets a crossing motion through.

:func:`plan_steps` is the same work as a generator of steps (:mod:`drivers.steps`), so the
controller and the driver can plan a 10,000-keyframe path on their I/O loop without holding
back an e-stop or a heartbeat for more than a fraction of a millisecond.
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
    check_trajectory_steps,
    default_axes,
    plan_move,
    plan_path,
    with_soft_limits,
)
from drivers.steps import Steps, finish

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

    An axis already outside its soft range may move towards it, never further out
    (:func:`drivers.arm.motion.check_positions`).

    Raises:
        ArmProtocolError: ``soft_limit`` / ``velocity_limit`` / ``acceleration_limit``
            (naming the axis, the limit and the value) or ``unreachable``; nothing moved.
    """
    return finish(plan_steps(env, cmd, args, position))


PATH_CHUNK = 128  # keyframes gathered per step


def plan_steps(env: Envelope, cmd: str, args: dict[str, object], position: Vector
               ) -> Steps[Trajectory]:
    """:func:`plan` as a generator of steps (see :mod:`drivers.steps`)."""
    position = np.asarray(position, dtype=np.float64)
    axes = env.axes
    n = len(axes)
    try:
        if cmd == "run_path":
            frames = args["keyframes"]
            assert isinstance(frames, list)
            times = np.empty(len(frames))
            points = np.tile(position[:n], (len(frames), 1))
            for first in range(0, len(frames), PATH_CHUNK):
                chunk = frames[first:first + PATH_CHUNK]
                times[first:first + len(chunk)] = [float(f["t_s"]) for f in chunk]
                points[first:first + len(chunk), :p.N_JOINTS] = [f["joints_deg"] for f in chunk]
                if env.track:
                    for k, f in enumerate(chunk):
                        if f.get("track_mm") is not None:
                            points[first + k, p.N_JOINTS] = float(f["track_mm"])
                yield
            lo_hi_start = position
            for k in range(0, len(frames), PATH_CHUNK * 8):
                block = points[k:k + PATH_CHUNK * 8]
                try:
                    check_positions(axes, block.min(axis=0), 0.0, lo_hi_start)
                    check_positions(axes, block.max(axis=0), 0.0, lo_hi_start)
                except LimitError:  # find the first offending keyframe for the message
                    for j, point in enumerate(block):
                        check_positions(axes, point, float(times[k + j]), lo_hi_start)
                    raise
            if len(frames) and times[0] == 0.0 and \
                    float(np.max(np.abs(points[0] - position[:n]))) > 0.5:
                raise p.ArmProtocolError(
                    p.INVALID_VALUE, "run_path: keyframe 0 at t_s=0 is away from where "
                    "the arm is (it would jump); start it later or move there first",
                    param="keyframes[0]")
            trajectory: Trajectory = plan_path(position[:n], times, points)
            yield
        else:
            target = target_of(env, cmd, args, position)
            check_positions(axes, target, 0.0, position)
            profile = str(args.get("profile", "trapezoid"))
            speed = env.velocity_scale * float(str(args.get("speed_scale", 1.0)))
            max_velocity = None
            if cmd == "jog":
                max_velocity = np.full(len(axes), abs(float(str(args["velocity"]))))
            trajectory = plan_move(axes, position, target, profile, speed,
                                   env.acceleration_scale, max_velocity)
        yield from check_trajectory_steps(axes, trajectory, speed_scale=env.velocity_scale,
                                          acceleration_scale=env.acceleration_scale,
                                          start=position)
    except LimitError as exc:
        raise _limit_error(exc) from None
    return trajectory
