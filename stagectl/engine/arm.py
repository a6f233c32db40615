"""Engine commands for the camera arm, stage safety and cues, and the arm's device builder.

Who may do what (``docs/decisions/0042-who-may-estop-and-reset.md``):

* ``estop``, ``arm.stop`` and ``safety.talent on``: every role (making the stage safer is
  never refused);
* arming, moving, resetting, ``safety.talent off`` and cues: operator and engineer;
* ``arm.set_limits``: engineer.

Handlers read the requesting user and role from ``args["_user"]`` / ``args["_role"]``,
which the engine sets (a client cannot forge them).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from drivers.arm.driver import ArmRefused, ZmqArm
from drivers.arm.kinematics import UR10_DH, DhRow
from drivers.arm.motion import axis, default_axes
from drivers.arm.planner import Envelope
from drivers.device import Device
from scheduler.dbfile import DatabaseFileError
from stagectl.arm_keys import driver_keys
from stagectl.config import ArmDeviceConfig
from stagectl.engine.commands import (
    ALL_ROLES,
    CONTROL,
    ENGINEER,
    MOTION_NEEDS,
    CommandFailure,
    command,
)

if TYPE_CHECKING:
    from stagectl.engine.engine import Engine


def envelope_from_config(cfg: ArmDeviceConfig) -> Envelope:
    """The arm's envelope as the stage config sets it (defaults: the UR10-sized arm)."""
    if cfg.axes is None:
        axes = default_axes(cfg.track)
    else:
        axes = tuple(axis(a.name, "mm" if a.name == "track" else "deg", a.min, a.max,
                          a.max_velocity, a.max_acceleration, a.soft_margin) for a in cfg.axes)
        axes = tuple(replace(ax, soft_min=a.soft_min if a.soft_min is not None else ax.soft_min,
                             soft_max=a.soft_max if a.soft_max is not None else ax.soft_max)
                     for ax, a in zip(axes, cfg.axes, strict=True))
    dh = UR10_DH if cfg.dh is None else tuple(
        DhRow(r.a_mm, r.alpha_deg, r.d_mm, r.theta_offset_deg) for r in cfg.dh)
    return Envelope(axes=axes, dh=dh, velocity_scale=cfg.velocity_scale,
                    payload_kg=cfg.payload_kg)


def build_arm(cfg: Any, engine: Engine) -> Device:
    """The driver for an ``[[devices]]`` entry of kind ``arm``."""
    assert isinstance(cfg, ArmDeviceConfig)
    lookahead_s = cfg.pipeline_latency_frames / engine.config.stage.frame_rate
    return ZmqArm(cfg.name, cfg.command, cfg.telemetry, envelope=envelope_from_config(cfg),
                  heartbeat_s=cfg.heartbeat_s, watchdog_s=cfg.watchdog_s,
                  lookahead_s=min(1.0, lookahead_s), timeout_s=cfg.timeout_s,
                  lease_ttl_s=cfg.lease_ttl_s, curve=driver_keys(cfg, engine.base_dir))


def who(args: dict[str, Any]) -> tuple[str, str]:
    """The requesting user and role the engine put into ``args``."""
    return str(args.get("_user", "anonymous")), str(args.get("_role", "viewer"))


def _arm(engine: Engine, args: dict[str, Any]) -> ZmqArm:
    name = args.get("device")
    if name is None:
        for device in engine.devices.values():
            if isinstance(device, ZmqArm):
                return device
        raise CommandFailure("unknown_device", "this stage has no arm device")
    found = engine.devices.get(name) if isinstance(name, str) else None
    if found is None:
        raise CommandFailure("unknown_device", f"no device named {name!r}; this stage has "
                             f"{', '.join(engine.devices) or 'no devices'}", device=name)
    if not isinstance(found, ZmqArm):
        raise CommandFailure("wrong_kind", f"{name} is a {found.kind} device, not arm",
                             device=name)
    return found


def _public(args: dict[str, Any], *drop: str) -> dict[str, Any]:
    return {k: v for k, v in args.items() if not k.startswith("_") and k not in drop}


async def _motion(engine: Engine, args: dict[str, Any], cmd: str) -> Any:
    arm = _arm(engine, args)
    user, role = who(args)
    engine.safety.require_motion(arm, user, role, f"arm.{cmd}")
    payload = _public(args, "device")
    try:
        result = await arm.request(cmd, payload)
    except ArmRefused as exc:
        engine.safety.refuse(f"arm.{cmd}", user, role, str(exc), arm.name, exc.details)
        raise CommandFailure(exc.code, str(exc), device=arm.name, **exc.details) from None
    return {"device": arm.name, "cmd": cmd, **result}


# ---- stage safety ------------------------------------------------------------------------

@command("estop", ALL_ROLES, "E-STOP: stop every motion device now (+ LED action); latches.",
         announces=True)
async def _estop(engine: Engine, args: dict[str, Any]) -> Any:
    user, role = who(args)
    reason = args.get("reason")
    return await engine.safety.estop(engine.devices, user, role,
                                     reason[:200] if isinstance(reason, str) else "")


@command("safety.reset", CONTROL, "Clear the e-stop latch and reset e-stopped/faulted arms.",
         needs=("resettable",), announces=True)
async def _reset(engine: Engine, args: dict[str, Any]) -> Any:
    user, role = who(args)
    reason = args.get("reason")
    return await engine.safety.reset(engine.devices, user, role,
                                     reason if isinstance(reason, str) else "")


@command("safety.status", ALL_ROLES, "Interlocks: armed, talent on stage, e-stop latch.",
         query=True)
async def _safety_status(engine: Engine, args: dict[str, Any]) -> Any:
    return engine.safety.status()


@command("safety.arm", CONTROL, "Arm the stage (allow motion).", needs=("estop_clear",),
         announces=True)
async def _arm_stage(engine: Engine, args: dict[str, Any]) -> Any:
    user, role = who(args)
    return engine.safety.set_armed(True, engine.devices, user, role)


@command("safety.disarm", CONTROL, "Disarm the stage (controlled stop; refuse motion).",
         announces=True)
async def _disarm_stage(engine: Engine, args: dict[str, Any]) -> Any:
    user, role = who(args)
    return engine.safety.set_armed(False, engine.devices, user, role)


@command("safety.talent", ALL_ROLES,
         "Talent on stage: args on (true: anyone; false: operator/engineer).", announces=True)
async def _talent(engine: Engine, args: dict[str, Any]) -> Any:
    user, role = who(args)
    on = args.get("on")
    if not isinstance(on, bool):
        raise CommandFailure("bad_request", "safety.talent needs 'on': true or false",
                             value=on)
    if not on and role not in CONTROL:
        engine.safety.refuse("safety.talent off", user, role, "role may not clear talent")
        raise CommandFailure("forbidden", f"role {role!r} may not clear 'talent on stage'; "
                             f"allowed: {', '.join(sorted(CONTROL))}", role=role)
    return engine.safety.set_talent(on, engine.devices, user, role)


@command("audit.tail", ALL_ROLES, "Newest safety audit rows: args limit?, event?.", query=True)
async def _audit(engine: Engine, args: dict[str, Any]) -> Any:
    limit = args.get("limit", 50)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 1000:
        raise CommandFailure("invalid_value", "limit must be an integer 1..1000", value=limit)
    event = args.get("event")
    try:
        return engine.safety.audit.tail(limit, event if isinstance(event, str) else None)
    except DatabaseFileError as exc:  # the file broke while the engine ran: say so, once
        raise CommandFailure("audit_unreadable", str(exc), path=str(exc.path)) from None


# ---- arm ---------------------------------------------------------------------------------

@command("arm.status", ALL_ROLES, "Arm state, joints, pose and limits: args device?.", query=True)
async def _arm_status(engine: Engine, args: dict[str, Any]) -> Any:
    arm = _arm(engine, args)
    return {**arm.snapshot(), "motion_problems": engine.safety.motion_problems(arm),
            # the envelope as the arm confirmed it (set_limits replies), not as asked
            "axes": [{"name": a.name, "unit": a.unit, "soft_min": a.soft_min,
                      "soft_max": a.soft_max, "max_velocity": a.max_velocity}
                     for a in arm.envelope.axes],
            "lease": {"held": arm.lease_held, "holder": arm.lease_holder}}


@command("arm.home", CONTROL, "Move the arm home: args device?, profile?.",
         needs=MOTION_NEEDS)
async def _arm_home(engine: Engine, args: dict[str, Any]) -> Any:
    return await _motion(engine, args, "home")


@command("arm.move_joints", CONTROL,
         "Move to joints: args device?, joints_deg[6], track_mm?, profile?, speed_scale?.",
         needs=MOTION_NEEDS)
async def _arm_move_joints(engine: Engine, args: dict[str, Any]) -> Any:
    return await _motion(engine, args, "move_joints")


@command("arm.move_pose", CONTROL, "Move to a pose: args device?, pose{x_mm..yaw_deg}.",
         needs=MOTION_NEEDS)
async def _arm_move_pose(engine: Engine, args: dict[str, Any]) -> Any:
    return await _motion(engine, args, "move_pose")


@command("arm.run_path", CONTROL,
         "Run keyframes: args device?, keyframes[{t_s, joints_deg}], start_timecode?.",
         needs=MOTION_NEEDS)
async def _arm_run_path(engine: Engine, args: dict[str, Any]) -> Any:
    timecode = args.pop("start_timecode", None)
    if timecode is not None:
        if not isinstance(timecode, str):
            raise CommandFailure("invalid_value", "start_timecode must be HH:MM:SS:FF",
                                 value=timecode)
        try:
            args["start_utc_s"] = engine.cues.start_utc(engine, timecode)
        except ValueError as exc:
            raise CommandFailure("invalid_value", str(exc), param="start_timecode",
                                 value=timecode) from None
    return await _motion(engine, args, "run_path")


@command("arm.jog", CONTROL, "Jog one axis: args device?, axis, velocity, duration_s?.",
         needs=MOTION_NEEDS)
async def _arm_jog(engine: Engine, args: dict[str, Any]) -> Any:
    return await _motion(engine, args, "jog")


@command("arm.stop", ALL_ROLES, "Controlled stop of the arm: args device?.")
async def _arm_stop(engine: Engine, args: dict[str, Any]) -> Any:
    arm = _arm(engine, args)
    return {"device": arm.name, "stop_sent": arm.stop_now()}


@command("arm.reset", CONTROL, "Clear the stage e-stop latch and reset the arm(s).",
         needs=("resettable",), announces=True)
async def _arm_reset(engine: Engine, args: dict[str, Any]) -> Any:
    _arm(engine, args)  # there must be an arm
    return await _reset(engine, args)


@command("arm.set_limits", ENGINEER,
         "Narrow the envelope: args device?, soft_min?, soft_max?, velocity_scale?, ...")
async def _arm_set_limits(engine: Engine, args: dict[str, Any]) -> Any:
    arm = _arm(engine, args)
    user, role = who(args)
    limits = {**arm.desired.get("limits", {}), **_public(args, "device")}
    try:
        result = await arm.apply_limits(limits)
    except ArmRefused as exc:
        engine.safety.refuse("arm.set_limits", user, role, str(exc), arm.name, exc.details)
        raise CommandFailure(exc.code, str(exc), device=arm.name, applied=False,
                             **exc.details) from None
    except ValueError as exc:
        raise CommandFailure("invalid_value", str(exc), device=arm.name,
                             applied=False) from None
    # "limits": what the arm confirmed it holds (offline: nothing yet; sent on reconnect)
    return {"device": arm.name, **result}


# ---- cues --------------------------------------------------------------------------------

@command("cue.list", ALL_ROLES, "The cue list, the current cue and each cue's blockers.",
         query=True)
async def _cue_list(engine: Engine, args: dict[str, Any]) -> Any:
    return await engine.cues.listing(engine)


@command("cue.go", CONTROL, "GO: fire the next cue (all preconditions checked first).",
         needs=("next_cue",), announces=True)
async def _cue_go(engine: Engine, args: dict[str, Any]) -> Any:
    user, role = who(args)
    return await engine.cues.go(engine, user, role)


@command("cue.back", CONTROL, "Fire the previous cue again.", needs=("previous_cue",),
         announces=True)
async def _cue_back(engine: Engine, args: dict[str, Any]) -> Any:
    user, role = who(args)
    return await engine.cues.back(engine, user, role)


@command("cue.jump", CONTROL, "Fire cue N: args number.", announces=True)
async def _cue_jump(engine: Engine, args: dict[str, Any]) -> Any:
    user, role = who(args)
    number = args.get("number")
    if isinstance(number, bool) or not isinstance(number, int):
        raise CommandFailure("bad_request", "cue.jump needs an integer 'number'", value=number)
    return await engine.cues.jump(engine, number, user, role)
