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
from drivers.device import Device
from drivers.led import protocol as ledp
from drivers.led.driver import OscLedProcessor
from drivers.tracking.timecode import parse_timecode, timecode_to_frames
from stagectl.config import format_validation_error
from stagectl.engine.commands import CommandFailure

if TYPE_CHECKING:
    from stagectl.engine.engine import Engine

CUES_TOPIC = "stage.cues"
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


def _device(engine: Engine, name: str | None, kind: str) -> Device | str:
    """The device, or a problem naming it."""
    if name is None:
        for device in engine.devices.values():
            if device.kind == kind:
                return device
        return f"this stage has no {kind} device"
    found = engine.devices.get(name)
    if found is None:
        return f"no device named {name!r}"
    if found.kind != kind:
        return f"{name} is a {found.kind} device, not {kind}"
    return found


class CueList:
    """The loaded cues and where the show is in them."""

    def __init__(self, cues: CueFile, source: str = "") -> None:
        self.cues = cues.cues
        self.source = source
        self.current: int | None = None  # index of the last cue fired
        self.marks: list[dict[str, Any]] = []

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

    async def listing(self, engine: Engine) -> dict[str, Any]:
        """The cue list with what is current and what each cue would need now."""
        return {"source": self.source,
                "current": None if self.current is None else self.cues[self.current].number,
                "cues": [{"number": c.number, "name": c.name,
                          "led": None if c.led is None else c.led.model_dump(exclude_none=True),
                          "arm": None if c.arm is None else c.arm.command()[0],
                          "mark": c.mark, "problems": (await self.problems(engine, c))[0]}
                         for c in self.cues],
                "marks": self.marks[-20:]}

    async def problems(self, engine: Engine, cue: Cue) -> tuple[list[str], list[Any]]:
        """Every precondition a cue fails now, and the prepared actions when none fail.

        An arm move or path is checked in slices (the engine keeps serving meanwhile).
        """
        problems: list[str] = []
        actions: list[Any] = []
        if cue.arm is not None:
            found = _device(engine, cue.arm.device, "arm")
            if isinstance(found, str):
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
                        problems.append(f"{found.name}: {exc}")
        if cue.led is not None:
            led = _device(engine, cue.led.device, "led")
            if isinstance(led, str):
                problems.append(led)
            elif not led.online:
                problems.append(f"{led.name} is offline: {led.health.reason or 'not connected'}")
            else:
                assert isinstance(led, OscLedProcessor)
                try:
                    if cue.led.preset is not None:
                        actions.append(("preset", led, ledp.validate_preset(cue.led.preset,
                                                                          led.name)))
                    for key in ("brightness_nits", "colour_temperature_k"):
                        value = getattr(cue.led, key)
                        if value is not None:
                            actions.append(("set", led, key, led.validate(key, value)))
                except ValueError as exc:
                    problems.append(str(exc))
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
            if cue.arm is not None:
                engine.safety.refuse(f"{label} (arm)", user, role, "; ".join(problems),
                                     cue.arm.device, {"cue": cue.number})
            raise CommandFailure("precondition_failed",
                                 f"{label} not fired: {'; '.join(problems)}", cue=cue.number,
                                 problems=problems)
        fired: list[str] = []
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
                fired.append(f"{arm.name}: {cmd}")
        for action in actions:
            if action[0] == "preset":
                await action[1].recall_preset(action[2])
                fired.append(f"{action[1].name}: preset {action[2]}")
            elif action[0] == "set":
                await action[1].set(action[2], action[3])
                fired.append(f"{action[1].name}: {action[2]}={action[3]}")
        if cue.mark:
            self.marks.append({"cue": cue.number, "mark": cue.mark, "t_utc": time.time(),
                               "timecode": str(engine.clock.now()), "user": user})
            fired.append(f"take marked: {cue.mark}")
        self.current = index
        engine.safety.event(f"GO {label} by {user} ({role}): {'; '.join(fired) or 'nothing'}")
        engine.safety.publish(CUES_TOPIC, {"type": "delta", "device": None,
                                           "data": {"current": cue.number, "name": cue.name}})
        return {"cue": cue.number, "name": cue.name, "fired": fired}

    async def go(self, engine: Engine, user: str, role: str) -> dict[str, Any]:
        """Fire the next cue."""
        nxt = 0 if self.current is None else self.current + 1
        if nxt >= len(self.cues):
            raise CommandFailure("end_of_list", "no next cue: the list is finished"
                                 if self.cues else "no cues loaded for this stage")
        return await self.fire(engine, nxt, user, role)

    async def back(self, engine: Engine, user: str, role: str) -> dict[str, Any]:
        """Fire the previous cue again (restores its look and arm position)."""
        if self.current is None or self.current == 0:
            raise CommandFailure("start_of_list", "no previous cue")
        return await self.fire(engine, self.current - 1, user, role)

    async def jump(self, engine: Engine, number: int, user: str, role: str) -> dict[str, Any]:
        """Fire cue ``number``."""
        return await self.fire(engine, self.index_of(number), user, role)
