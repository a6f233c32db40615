"""``stagectl estop``, ``stagectl arm ...`` and ``stagectl cue ...`` (the arm, safety and cues).

Imported at the bottom of :mod:`stagectl.cli.main` (it reuses that module's helpers).
``stagectl estop`` works for every role, viewer included; moving, arming and resetting need
operator or engineer (``docs/decisions/0042-who-may-estop-and-reset.md``).
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Annotated, Any

import typer

from stagectl.cli.main import (
    CLI_HINTS,
    ConfigOpt,
    JsonOpt,
    RoleOpt,
    _call,
    _fail,
    _load,
    out,
)
from stagectl.config import DEFAULT_CONFIG

arm_app: typer.Typer = typer.Typer(help="Drive the robotic camera arm through the engine; stage "
                      "interlocks (arm/disarm, talent).", no_args_is_help=True)
talent_app = typer.Typer(help="Set or clear 'talent on stage' (stops and refuses motion).",
                         no_args_is_help=True)
arm_app.add_typer(talent_app, name="talent")
cue_app: typer.Typer = typer.Typer(help="The stage's cue list: GO, back, jump, list.",
                                   no_args_is_help=True)

ArmOpt = Annotated[str | None, typer.Option(
    "--device", "-d", help="Arm device name (default: the stage's first arm).")]
ProfileOpt = Annotated[str, typer.Option(help="trapezoid or scurve.")]
SpeedOpt = Annotated[float, typer.Option(help="Fraction of the arm's speed, 0.01..1.")]


def _show(result: Any, json_out: bool, text: str) -> None:
    if json_out:
        out.print_json(json.dumps(result))
    else:
        out.print(text, highlight=False)


def _with_device(args: dict[str, Any], device: str | None) -> dict[str, Any]:
    if device:
        args["device"] = device
    return args


def estop(config: ConfigOpt = DEFAULT_CONFIG,
          reason: Annotated[str, typer.Option(help="Why (goes into the audit log).")] = "",
          json_out: JsonOpt = False, role: RoleOpt = None) -> None:
    """E-STOP: stop every motion device now (any role); latches until `stagectl arm reset`."""
    cfg = _load(config)
    result = _call(cfg, "estop", {"reason": reason} if reason else {}, role)
    stopped = ", ".join(f"{n}{'' if ok else ' (NOT REACHED)'}"
                        for n, ok in result["motion_devices"].items()) or "no motion devices"
    led = ", ".join(f"{n}: {a}" for n, a in result["led"].items())
    _show(result, json_out, f"[bold red]E-STOP[/] sent: {stopped}"
          + (f"; LED {led}" if led else "") + "\nlatched: `stagectl arm reset` to clear")
    if result["unreachable"]:
        raise typer.Exit(1)


# ---- arm ----------------------------------------------------------------------------------

def _fmt(values: list[float] | None) -> str:
    return " ".join(f"{v:8.2f}" for v in values or [])


@arm_app.command("status")
def arm_status(config: ConfigOpt = DEFAULT_CONFIG, device: ArmOpt = None,
               json_out: JsonOpt = False, role: RoleOpt = None) -> None:
    """Arm state, joints (deg), tool pose (mm, deg) and what blocks motion."""
    cfg = _load(config)
    result = _call(cfg, "arm.status", _with_device({}, device), role or "viewer")
    state = result["state"]
    pose = state.get("tool_pose") or {}
    blockers = result.get("motion_problems") or []
    lease = result.get("lease") or {}
    control = "held by this engine" if lease.get("held") else \
        f"NOT held{': controlled by ' + str(lease['holder']) if lease.get('holder') else ''}"
    _show(result, json_out, "\n".join([
        f"{result['name']}: {state.get('state')} ({result['health']}"
        f"{': ' + result['health_reason'] if result['health_reason'] else ''})",
        f"joints deg  {_fmt(state.get('joints_deg'))}",
        "tool pose   " + "  ".join(f"{k}={v}" for k, v in pose.items()),
        f"control lease: {control}",
        "soft max    " + _fmt([a["soft_max"] for a in result.get("axes") or []])
        + "   (as the arm holds them)",
        "motion: " + ("allowed" if not blockers else _problems_text(blockers))]))


def _problems_text(problems: list[Any]) -> str:
    """Problem objects as one line, with the CLI command that clears an interlock."""
    parts = []
    for problem in problems:
        if not isinstance(problem, dict):
            parts.append(str(problem))
            continue
        hint = CLI_HINTS.get(str(problem.get("code")))
        parts.append(str(problem.get("message", "")) + (f" ({hint})" if hint else ""))
    return "; ".join(parts)


def _motion(config: Path, cmd: str, args: dict[str, Any], device: str | None, json_out: bool,
            role: str | None) -> None:
    cfg = _load(config)
    result = _call(cfg, cmd, _with_device(args, device), role)
    _show(result, json_out, f"{result['device']}: {result['cmd']} accepted, "
          f"{result.get('duration_s', 0):g} s"
          + (f" (starts in {result['starts_in_s']:g} s)" if result.get("starts_in_s") else ""))


@arm_app.command("home")
def arm_home(config: ConfigOpt = DEFAULT_CONFIG, device: ArmOpt = None,
             profile: ProfileOpt = "trapezoid", json_out: JsonOpt = False,
             role: RoleOpt = None) -> None:
    """Move the arm to its home position."""
    _motion(config, "arm.home", {"profile": profile}, device, json_out, role)


@arm_app.command("move-joints", context_settings={"ignore_unknown_options": True})
def arm_move_joints(joints: Annotated[list[float], typer.Argument(help="J1..J6 in degrees.")],
                    config: ConfigOpt = DEFAULT_CONFIG, device: ArmOpt = None,
                    track: Annotated[float | None, typer.Option(help="Track mm.")] = None,
                    profile: ProfileOpt = "trapezoid", speed: SpeedOpt = 1.0,
                    json_out: JsonOpt = False, role: RoleOpt = None) -> None:
    """Synchronised move to six joint angles, e.g. `stagectl arm move-joints 0 -60 90 0 0 0`."""
    if len(joints) != 6:
        _fail(f"move-joints needs 6 joint angles (deg), got {len(joints)}", 2)
    args: dict[str, Any] = {"joints_deg": joints, "profile": profile, "speed_scale": speed}
    if track is not None:
        args["track_mm"] = track
    _motion(config, "arm.move_joints", args, device, json_out, role)


@arm_app.command("move-pose", context_settings={"ignore_unknown_options": True})
def arm_move_pose(x_mm: float, y_mm: float, z_mm: float, roll_deg: float, pitch_deg: float,
                  yaw_deg: float, config: ConfigOpt = DEFAULT_CONFIG, device: ArmOpt = None,
                  profile: ProfileOpt = "trapezoid", speed: SpeedOpt = 1.0,
                  json_out: JsonOpt = False, role: RoleOpt = None) -> None:
    """Move the tool flange to a pose in the stage frame (mm, deg)."""
    pose = {"x_mm": x_mm, "y_mm": y_mm, "z_mm": z_mm, "roll_deg": roll_deg,
            "pitch_deg": pitch_deg, "yaw_deg": yaw_deg}
    _motion(config, "arm.move_pose", {"pose": pose, "profile": profile, "speed_scale": speed},
            device, json_out, role)


@arm_app.command("run-path")
def arm_run_path(path: Annotated[Path, typer.Argument(
                     help="JSON or TOML file with keyframes [{t_s, joints_deg}].")],
                 config: ConfigOpt = DEFAULT_CONFIG, device: ArmOpt = None,
                 at: Annotated[str | None, typer.Option(
                     help="Start on this stage timecode HH:MM:SS:FF.")] = None,
                 json_out: JsonOpt = False, role: RoleOpt = None) -> None:
    """Run a keyframed path (optionally starting on a timecode)."""
    try:
        text = path.read_text(encoding="utf-8")
        data = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except (OSError, ValueError) as exc:
        _fail(f"{path}: cannot read keyframes: {exc}", 2)
    frames = data.get("keyframes") if isinstance(data, dict) else data
    args: dict[str, Any] = {"keyframes": frames}
    if at:
        args["start_timecode"] = at
    _motion(config, "arm.run_path", args, device, json_out, role)


@arm_app.command("jog", context_settings={"ignore_unknown_options": True})
def arm_jog(axis: Annotated[str, typer.Argument(help="j1..j6 or track.")],
            velocity: Annotated[float, typer.Argument(help="deg/s (mm/s for the track).")],
            config: ConfigOpt = DEFAULT_CONFIG, device: ArmOpt = None,
            duration: Annotated[float, typer.Option(help="Seconds (max 2).")] = 0.5,
            json_out: JsonOpt = False, role: RoleOpt = None) -> None:
    """Jog one axis for a moment."""
    _motion(config, "arm.jog", {"axis": axis, "velocity": velocity, "duration_s": duration},
            device, json_out, role)


@arm_app.command("stop")
def arm_stop(config: ConfigOpt = DEFAULT_CONFIG, device: ArmOpt = None,
             json_out: JsonOpt = False, role: RoleOpt = None) -> None:
    """Controlled stop (any role)."""
    cfg = _load(config)
    result = _call(cfg, "arm.stop", _with_device({}, device), role)
    _show(result, json_out, f"{result['device']}: stop "
          f"{'sent' if result['stop_sent'] else 'NOT sent (unreachable)'}")


@arm_app.command("reset")
def arm_reset(config: ConfigOpt = DEFAULT_CONFIG, device: ArmOpt = None,
              reason: Annotated[str, typer.Option(help="Why (audit log).")] = "",
              json_out: JsonOpt = False, role: RoleOpt = None) -> None:
    """Clear the e-stop latch and reset the arm (operator/engineer)."""
    cfg = _load(config)
    result = _call(cfg, "arm.reset", _with_device({"reason": reason}, device), role)
    _show(result, json_out, f"reset: {result['devices']}")


def _interlock(config: Path, cmd: str, args: dict[str, Any], json_out: bool,
               role: str | None) -> None:
    cfg = _load(config)
    result = _call(cfg, cmd, args, role)
    _show(result, json_out, f"armed={result['armed']}  talent_on_stage="
          f"{result['talent_on_stage']}  estop_latched={result['estop_latched']}")


@arm_app.command("arm")
def arm_arm(config: ConfigOpt = DEFAULT_CONFIG, json_out: JsonOpt = False,
            role: RoleOpt = None) -> None:
    """Arm the stage: allow motion (operator/engineer)."""
    _interlock(config, "safety.arm", {}, json_out, role)


@arm_app.command("disarm")
def arm_disarm(config: ConfigOpt = DEFAULT_CONFIG, json_out: JsonOpt = False,
               role: RoleOpt = None) -> None:
    """Disarm the stage: controlled stop, refuse motion."""
    _interlock(config, "safety.disarm", {}, json_out, role)


@talent_app.command("on")
def talent_on(config: ConfigOpt = DEFAULT_CONFIG, json_out: JsonOpt = False,
              role: RoleOpt = None) -> None:
    """Talent on stage: stop and refuse arm motion (any role)."""
    _interlock(config, "safety.talent", {"on": True}, json_out, role)


@talent_app.command("off")
def talent_off(config: ConfigOpt = DEFAULT_CONFIG, json_out: JsonOpt = False,
               role: RoleOpt = None) -> None:
    """Stage clear of talent (operator/engineer)."""
    _interlock(config, "safety.talent", {"on": False}, json_out, role)


@arm_app.command("audit")
def arm_audit(config: ConfigOpt = DEFAULT_CONFIG,
              limit: Annotated[int, typer.Option(help="Rows.")] = 20,
              json_out: JsonOpt = False, role: RoleOpt = None) -> None:
    """The newest safety audit rows (e-stops, watchdog trips, refusals, resets)."""
    cfg = _load(config)
    rows = _call(cfg, "audit.tail", {"limit": limit}, role or "viewer")
    _show(rows, json_out, "\n".join(
        f"{r['time_iso']}  {r['event']:<13} {r['user']} ({r['role']})  "
        f"{r['device'] or '-'}  {r['reason']}" for r in rows) or "no safety events")


# ---- cues ---------------------------------------------------------------------------------

def _fired(result: dict[str, Any], json_out: bool) -> None:
    _show(result, json_out, f"GO cue {result['cue']} {result['name']!r}: "
          + ("; ".join(result["fired"]) or "nothing to do"))


@cue_app.command("go")
def cue_go(config: ConfigOpt = DEFAULT_CONFIG, json_out: JsonOpt = False,
           role: RoleOpt = None) -> None:
    """Fire the next cue (every precondition checked first; a failure fires nothing)."""
    _fired(_call(_load(config), "cue.go", {}, role), json_out)


@cue_app.command("back")
def cue_back(config: ConfigOpt = DEFAULT_CONFIG, json_out: JsonOpt = False,
             role: RoleOpt = None) -> None:
    """Fire the previous cue again."""
    _fired(_call(_load(config), "cue.back", {}, role), json_out)


@cue_app.command("jump")
def cue_jump(number: Annotated[int, typer.Argument(help="Cue number.")],
             config: ConfigOpt = DEFAULT_CONFIG, json_out: JsonOpt = False,
             role: RoleOpt = None) -> None:
    """Fire cue N."""
    _fired(_call(_load(config), "cue.jump", {"number": number}, role), json_out)


@cue_app.command("list")
def cue_list(config: ConfigOpt = DEFAULT_CONFIG, json_out: JsonOpt = False,
             role: RoleOpt = None) -> None:
    """The cue list: current cue, and what would block each cue now."""
    result = _call(_load(config), "cue.list", {}, role or "viewer")
    lines = []
    for cue in result["cues"]:
        mark = ">" if cue["number"] == result["current"] else " "
        blockers = _problems_text(cue["problems"]) or "ready"
        lines.append(f"{mark} {cue['number']:>4}  {cue['name']:<28} {blockers}")
    _show(result, json_out, "\n".join(lines) or "no cues loaded")
