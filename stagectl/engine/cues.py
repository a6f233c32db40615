"""The stage's cue list: GO, back and jump, each checked in full before anything fires.

A cue list is a TOML file (``[cues] file`` in the stage config)::

    [[cues]]
    number = 1
    name = "Opening wide"
    mark = "scene 12 wide"                 # optional: mark the take
    led = { preset = 2 }                   # or brightness_nits / colour_temperature_k
    arm = { joints_deg = [0, -60, 90, -30, 0, 0], profile = "scurve" }
    # or arm = { pose = { x_mm = ..., ... } }, or
    # arm = { path = [{ t_s = 2, joints_deg = [...] }, ...], start_timecode = "10:00:00:00" }

Before a cue fires, every precondition is checked: each device it names exists and is
online, the LED values are valid, and for arm motion the stage interlocks are clear and the
whole motion plans within the envelope from where the arm is now. If anything fails the
reply names the device or interlock and *nothing* fires. Then the arm is commanded first
(it can still refuse), then the LED, then the take mark.
"""

from __future__ import annotations

import time
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from drivers.arm.driver import ArmRefused, ZmqArm
from drivers.arm.motion import LimitError
from drivers.device import Device
from drivers.led import protocol as ledp
from drivers.led.model import LedDevice, Unsupported
from drivers.messages import Message, as_message
from drivers.tracking.timecode import parse_timecode, timecode_to_frames
from stagectl.config import format_validation_error
from stagectl.engine.commands import CommandFailure
from stagectl.engine.messages import message as msg

if TYPE_CHECKING:
    from stagectl.engine.engine import Engine

CUES_TOPIC = "stage.cues"
MOTION_STATES = ("MOVING", "HOMING", "STOPPING")
MAX_TIMECODE_AHEAD_S = 3600.0


class CueFileError(ValueError):
    """A cue file that cannot be used; names the file and the key path."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LedCue(_Model):
    """What a cue does to an LED wall."""

    device: str | None = None
    preset: int | None = Field(default=None, ge=ledp.PRESET_MIN, le=ledp.PRESET_MAX)
    brightness_nits: float | None = None
    colour_temperature_k: int | None = None


class Keyframe(_Model):
    """One path keyframe (seconds from the path start, joint angles, track)."""

    t_s: float = Field(ge=0)
    joints_deg: list[float]
    track_mm: float | None = None


class ArmCue(_Model):
    """What a cue does to an arm: exactly one of joints, pose or path."""

    device: str | None = None
    joints_deg: list[float] | None = None
    track_mm: float | None = None
    pose: dict[str, float] | None = None
    path: list[Keyframe] | None = None
    start_timecode: str | None = None
    profile: Literal["trapezoid", "scurve"] = "scurve"
    speed_scale: float = Field(default=1.0, gt=0, le=1)

    @model_validator(mode="after")
    def _one_motion(self) -> ArmCue:
        given = [k for k in ("joints_deg", "pose", "path") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("exactly one of joints_deg, pose or path")
        if self.start_timecode is not None and self.path is None:
            raise ValueError("start_timecode applies to a path only")
        return self

    def command(self) -> tuple[str, dict[str, Any]]:
        """The arm command and arguments (without a start time)."""
        if self.path is not None:
            frames = [k.model_dump(exclude_none=True) for k in self.path]
            return "run_path", {"keyframes": frames}
        if self.pose is not None:
            return "move_pose", {"pose": dict(self.pose), "profile": self.profile,
                                 "speed_scale": self.speed_scale}
        args: dict[str, Any] = {"joints_deg": list(self.joints_deg or []),
                                "profile": self.profile, "speed_scale": self.speed_scale}
        if self.track_mm is not None:
            args["track_mm"] = self.track_mm
        return "move_joints", args


class Cue(_Model):
    """One cue."""

    number: int = Field(ge=0)
    name: str = ""
    led: LedCue | None = None
    arm: ArmCue | None = None
    mark: str | None = None


class CueFile(_Model):
    """A whole cue list."""

    cues: list[Cue] = Field(default_factory=list)

    @model_validator(mode="after")
    def _ordered(self) -> CueFile:
        numbers = [c.number for c in self.cues]
        if numbers != sorted(set(numbers)):
            raise ValueError("cue numbers must be unique and in ascending order")
        return self


def load_cue_file(path: Path) -> CueFile:
    """Read and validate a cue list.

    Raises:
        CueFileError: unreadable, bad TOML or invalid cues (file and key path named).
    """
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise CueFileError(f"{path}: cannot read cue list: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise CueFileError(f"{path}: TOML syntax error: {exc}") from None
    try:
        return CueFile.model_validate(data)
    except ValidationError as exc:
        raise CueFileError("\n".join(f"{path}: {line}"
                                     for line in format_validation_error(exc))) from None


def _device(engine: Engine, name: str | None, kind: str) -> Device | Message:
    """The device, or a problem naming it."""
    if name is None:
        for device in engine.devices.values():
            if device.kind == kind:
                return device
        return msg("no_device_of_kind", kind=kind)
    found = engine.devices.get(name)
    if found is None:
        return msg("no_such_device", device=name)
    if found.kind != kind:
        return msg("wrong_device_kind", device=name, kind=found.kind, wanted=kind)
    return found


LIMIT_CODES = ("soft_limit", "velocity_limit", "acceleration_limit")


def _motion_problem(device: str, exc: Exception) -> Message:
    """Why the arm's own check refused a cue's motion (a limit crossed, by how much)."""
    code = getattr(exc, "code", "invalid_value")
    details = exc.details() if isinstance(exc, LimitError) else getattr(exc, "details", {})
    if code in LIMIT_CODES and isinstance(details, dict) and "axis" in details:
        unit = "mm" if details["axis"] == "track" else "°"
        if code != "soft_limit":
            unit += "/s" if code == "velocity_limit" else "/s²"
        return msg("arm_limit", device=device, axis=details["axis"], value=details.get("value"),
                   unit=unit, at_s=details.get("at_s"), limit_kind=details.get("limit"),
                   limit_value=details.get("limit_value"))
    return msg("arm_motion_refused", device=device, refusal=code,
               reason=str(exc).removeprefix(f"{device}: "))


def _actions(engine: Engine, cue: Cue) -> list[dict[str, Any]]:
    """What a cue does, device by device (for the cue sheet)."""
    out: list[dict[str, Any]] = []
    if cue.arm is not None:
        found = _device(engine, cue.arm.device, "arm")
        out.append({"device": found.name if isinstance(found, Device) else cue.arm.device,
                    "kind": "arm", "what": cue.arm.command()[0]})
    if cue.led is not None:
        found = _device(engine, cue.led.device, "led")
        name = found.name if isinstance(found, Device) else cue.led.device
        for key in ("preset", "brightness_nits", "colour_temperature_k"):
            value = getattr(cue.led, key)
            if value is not None:
                out.append({"device": name, "kind": "led", "what": key, "value": value})
    if cue.mark:
        out.append({"device": None, "kind": "take", "what": "mark", "value": cue.mark})
    return out


class CueList:
    """The loaded cues and where the show is in them."""

    def __init__(self, cues: CueFile, source: str = "") -> None:
        self.cues = cues.cues
        self.source = source
        self.current: int | None = None  # index of the last cue fired
        self.marks: list[dict[str, Any]] = []
        self.running_arm: str | None = None  # the arm the last cue fired set moving

    @classmethod
    def for_stage(cls, file: str, base_dir: Path) -> CueList:
        """The stage's cue list (empty when the config names none)."""
        if not file:
            return cls(CueFile())
        path = Path(file) if Path(file).is_absolute() else base_dir / file
        return cls(load_cue_file(path), str(path))

    def index_of(self, number: int) -> int:
        """Position of cue ``number`` in the list."""
        for i, cue in enumerate(self.cues):
            if cue.number == number:
                return i
        raise CommandFailure("unknown_cue", f"no cue {number}; cues are "
                             f"{', '.join(str(c.number) for c in self.cues) or 'none'}",
                             cue=number)

    def next_index(self) -> int | None:
        """Index of the cue GO would fire (None at the end of the list)."""
        nxt = 0 if self.current is None else self.current + 1
        return nxt if nxt < len(self.cues) else None

    def running(self, engine: Engine) -> dict[str, Any] | None:
        """The last cue fired while its arm motion still runs, with the arm's progress."""
        if self.current is None or self.running_arm is None:
            return None
        arm = engine.devices.get(self.running_arm)
        if arm is None or not arm.online or arm.reported.get("state") not in MOTION_STATES:
            return None
        progress = arm.reported.get("progress")
        return {"cue": self.cues[self.current].number, "device": arm.name,
                "progress": float(progress) if isinstance(progress, (int, float)) else None}

    async def listing(self, engine: Engine) -> dict[str, Any]:
        """The cue list: what is current and next, and what each cue does and needs now.

        The shape is in ``docs/protocols/console-state.md`` ("Cue readiness").
        """
        cues = []
        for c in self.cues:
            problems = (await self.problems(engine, c))[0]
            cues.append({"number": c.number, "name": c.name, "mark": c.mark,
                         "led": None if c.led is None else c.led.model_dump(exclude_none=True),
                         "arm": None if c.arm is None else c.arm.command()[0],
                         "actions": _actions(engine, c), "ready": not problems,
                         "problems": problems})
        nxt = self.next_index()
        return {"source": self.source,
                "current": None if self.current is None else self.cues[self.current].number,
                "next": None if nxt is None else self.cues[nxt].number,
                "running": self.running(engine),
                "cues": cues, "marks": self.marks[-20:]}

    async def problems(self, engine: Engine, cue: Cue) -> tuple[list[Message], list[Any]]:
        """Every precondition a cue fails now, and the prepared actions when none fail.

        Problems are message objects. An arm move or path is checked in slices (the engine
        keeps serving meanwhile).
        """
        problems: list[Message] = []
        actions: list[Any] = []
        if cue.arm is not None:
            found = _device(engine, cue.arm.device, "arm")
            if not isinstance(found, Device):
                problems.append(found)
            else:
                problems.extend(engine.safety.motion_problems(found))
                if not problems:
                    assert isinstance(found, ZmqArm)
                    cmd, args = cue.arm.command()
                    try:
                        if cue.arm.start_timecode is not None:
                            args["start_utc_s"] = self.start_utc(engine, cue.arm.start_timecode)
                        actions.append(("arm", found, cmd, await found.check_async(cmd, args)))
                    except (ArmRefused, ValueError) as exc:
                        problems.append(_motion_problem(found.name, exc))
        if cue.led is not None:
            led = _device(engine, cue.led.device, "led")
            if not isinstance(led, Device):
                problems.append(led)
            elif not led.online:
                problems.append(msg("device_offline", device=led.name,
                                    reason=as_message(led.health.reason)
                                    or msg("not_connected")))
            else:
                assert isinstance(led, LedDevice)
                try:
                    if cue.led.preset is not None:
                        actions.append(("preset", led, led.validate_preset(cue.led.preset)))
                    for key in ("brightness_nits", "colour_temperature_k"):
                        value = getattr(cue.led, key)
                        if value is not None:
                            actions.append(("set", led, key, led.validate(key, value)))
                except Unsupported as exc:
                    problems.append(msg("led_value_invalid", device=led.name, reason=str(exc)))
                except ledp.ValidationError as exc:
                    problems.append(msg("led_value_out_of_range", device=led.name,
                                        param=exc.param, value=exc.value,
                                        expected=exc.expected))
                except ValueError as exc:
                    problems.append(msg("led_value_invalid", device=led.name, reason=str(exc)))
        return problems, actions

    def start_utc(self, engine: Engine, text: str) -> float:
        """Wall time of the next occurrence of a stage timecode (within an hour)."""
        clock = engine.clock
        target = timecode_to_frames(parse_timecode(text, clock.rate))
        per_day = clock.rate.frames_per_day
        now_mono = time.monotonic()
        ahead = (target - clock.frame_at(now_mono)) % per_day
        seconds = ahead / clock.rate.fps
        if seconds > MAX_TIMECODE_AHEAD_S:
            raise ValueError(f"start timecode {text} is {seconds / 3600:.1f} h away "
                             "(passed, or more than an hour ahead)")
        return time.time() + seconds

    async def fire(self, engine: Engine, index: int, user: str, role: str) -> dict[str, Any]:
        """Check every precondition of cue ``index``, then fire it (or nothing)."""
        cue = self.cues[index]
        problems, actions = await self.problems(engine, cue)
        label = f"cue {cue.number}{' ' + repr(cue.name) if cue.name else ''}"
        if problems:
            why = "; ".join(p["message"] for p in problems)
            if cue.arm is not None:
                engine.safety.refuse(f"{label} (arm)", user, role, why, cue.arm.device,
                                     {"cue": cue.number})
            raise CommandFailure("precondition_failed", f"{label} not fired: {why}",
                                 cue=cue.number, problems=problems)
        fired: list[Message] = []
        self.running_arm = None
        for action in actions:  # the arm first: it may still refuse, before anything else
            if action[0] == "arm":
                _, arm, cmd, args = action
                try:
                    await arm.request(cmd, args)
                except ArmRefused as exc:
                    engine.safety.refuse(f"{label} (arm)", user, role, str(exc), arm.name,
                                         {"cue": cue.number, **exc.details})
                    raise CommandFailure(exc.code, f"{label} not fired: {exc}",
                                         cue=cue.number, device=arm.name,
                                         **exc.details) from None
                fired.append(msg("cue_fired_arm", device=arm.name, what=cmd))
                self.running_arm = arm.name
        for action in actions:
            if action[0] == "preset":
                await action[1].recall_preset(action[2])
                fired.append(msg("cue_fired_preset", device=action[1].name, value=action[2]))
            elif action[0] == "set":
                await action[1].set(action[2], action[3])
                fired.append(msg("cue_fired_set", device=action[1].name, key=action[2],
                                 value=action[3]))
        if cue.mark:
            self.marks.append({"cue": cue.number, "mark": cue.mark, "t_utc": time.time(),
                               "timecode": str(engine.clock.now()), "user": user})
            fired.append(msg("cue_fired_mark", value=cue.mark))
        self.current = index
        engine.safety.event(msg("cue_go", cue=cue.number, name=cue.name, user=user, role=role,
                                fired=fired or msg("cue_fired_nothing")))
        engine.cues_changed()
        return {"cue": cue.number, "name": cue.name,
                "fired": [f["message"] for f in fired]}

    async def go(self, engine: Engine, user: str, role: str) -> dict[str, Any]:
        """Fire the next cue."""
        nxt = self.next_index()
        if nxt is None:
            raise CommandFailure("end_of_list", msg("end_of_list" if self.cues
                                                    else "no_cues")["message"])
        return await self.fire(engine, nxt, user, role)

    async def back(self, engine: Engine, user: str, role: str) -> dict[str, Any]:
        """Fire the previous cue again (restores its look and arm position)."""
        if self.current is None or self.current == 0:
            raise CommandFailure("start_of_list", "no previous cue")
        return await self.fire(engine, self.current - 1, user, role)

    async def jump(self, engine: Engine, number: int, user: str, role: str) -> dict[str, Any]:
        """Fire cue ``number``."""
        return await self.fire(engine, self.index_of(number), user, role)
