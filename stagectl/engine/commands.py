"""The engine's command table: every command declares the roles it allows.

Handlers validate their arguments and raise :class:`CommandFailure` with a code; the engine
turns that into a structured error reply. Nothing here touches sockets.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from drivers.device import CommandError, Device
from drivers.led import protocol as ledp
from drivers.led.model import GROUP_PREFIX, LedDevice, Unsupported

if TYPE_CHECKING:
    from stagectl.engine.engine import Engine

Handler = Callable[["Engine", dict[str, Any]], Awaitable[Any]]

ALL_ROLES = frozenset({"operator", "engineer", "producer", "viewer"})
CONTROL = frozenset({"operator", "engineer"})
ENGINEER = frozenset({"engineer"})


class CommandFailure(Exception):
    """A command that was refused or failed; ``details`` go into the error reply."""

    def __init__(self, code: str, message: str, **details: object) -> None:
        self.code = code
        self.details = details
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class Command:
    """A command name, its handler, who may run it and a one-line help.

    ``query`` commands change nothing; the engine does not announce them as events, nor
    ``announces`` ones, whose handler publishes its own event (e-stop, arming, cues).
    ``needs`` names the interlocks that must be clear for it to be accepted now (published
    to consoles, ``docs/protocols/console-state.md``; the handler checks them again).
    """

    name: str
    handler: Handler
    roles: frozenset[str]
    help: str
    query: bool = False
    needs: tuple[str, ...] = ()
    announces: bool = False


COMMANDS: dict[str, Command] = {}


MOTION_NEEDS: tuple[str, ...] = ("estop_clear", "armed", "talent_clear", "device_ready")


def command(name: str, roles: frozenset[str], help: str, query: bool = False,
            needs: tuple[str, ...] = (), announces: bool = False
            ) -> Callable[[Handler], Handler]:
    """Register a handler under ``name`` for ``roles``.

    ``query``: it changes nothing; ``needs``: the interlocks it requires (see :class:`Command`).
    """

    def register(handler: Handler) -> Handler:
        COMMANDS[name] = Command(name, handler, roles, help, query, needs, announces)
        return handler

    return register


def _device(engine: Engine, args: dict[str, Any], kind: str) -> Device:
    name = args.get("device")
    if name is None:
        for device in engine.devices.values():
            if device.kind == kind:
                return device
        raise CommandFailure("unknown_device", f"this stage has no {kind} device")
    if not isinstance(name, str) or name not in engine.devices:
        raise CommandFailure("unknown_device", f"no device named {name!r}; this stage has "
                             f"{', '.join(engine.devices) or 'no devices'}", device=name)
    device = engine.devices[name]
    if device.kind != kind:
        raise CommandFailure("wrong_kind", f"{name} is a {device.kind} device, not {kind}",
                             device=name)
    return device


def _led(engine: Engine, args: dict[str, Any]) -> LedDevice:
    device = _device(engine, args, "led")
    assert isinstance(device, LedDevice)
    return device


@command("ping", ALL_ROLES, "Check the engine is alive.", query=True)
async def _ping(engine: Engine, args: dict[str, Any]) -> Any:
    return {"stage": engine.config.stage.name, "time": time.time(), "pong": True}


@command("status", ALL_ROLES, "Devices, health and key state.", query=True)
async def _status(engine: Engine, args: dict[str, Any]) -> Any:
    return engine.status()


@command("commands", ALL_ROLES, "List commands and the roles they allow.", query=True)
async def _commands(engine: Engine, args: dict[str, Any]) -> Any:
    return [{"name": c.name, "roles": sorted(c.roles), "help": c.help}
            for c in COMMANDS.values()]


@command("led.set", CONTROL, "Set an LED parameter: args device?, key, value.")
async def _led_set(engine: Engine, args: dict[str, Any]) -> Any:
    device = _led(engine, args)
    key = args.get("key")
    if not isinstance(key, str):
        raise CommandFailure("bad_request", "led.set needs a 'key' string; one of "
                             + ", ".join((*ledp.PARAMS, "input", GROUP_PREFIX + "<group>")))
    if "value" not in args:
        raise CommandFailure("bad_request", f"led.set {key} needs a 'value'")
    value = await device.set(key, args["value"])
    return {"device": device.name, "key": key, "value": value, "applied": device.online,
            "note": "" if device.online else "device offline: applied when it reconnects"}


@command("led.preset", CONTROL, "Recall an LED preset: args device?, number.")
async def _led_preset(engine: Engine, args: dict[str, Any]) -> Any:
    device = _led(engine, args)
    number = await device.recall_preset(args.get("number"))
    return {"device": device.name, "preset": number}


@command("led.adopt", CONTROL, "Accept another client's LED changes as the desired state.")
async def _led_adopt(engine: Engine, args: dict[str, Any]) -> Any:
    device = _led(engine, args)
    return {"device": device.name, "desired": device.adopt_reported()}


FAULT_NAME = re.compile(r"^[a-z][a-z_]{0,31}$")


@command("sim.fault", ENGINEER, "Inject a simulator fault: args device?, fault, value.")
async def _sim_fault(engine: Engine, args: dict[str, Any]) -> Any:
    device = _led(engine, args)
    fault, value = args.get("fault"), args.get("value", 1)
    if not isinstance(fault, str) or not FAULT_NAME.match(fault):
        raise CommandFailure("invalid_value", "fault must be a fault name such as "
                             "panels_offline, mute or temperature_offset", value=fault)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or \
            not math.isfinite(value):
        raise CommandFailure("invalid_value", "fault value must be a number", value=value)
    await device.inject_fault(fault, float(value))
    return {"device": device.name, "fault": fault, "value": value}


@command("engine.counters", CONTROL | {"viewer"}, "Engine and device counters.", query=True)
async def _counters(engine: Engine, args: dict[str, Any]) -> Any:
    return {"engine": dict(engine.counters),
            "devices": {n: dict(d.counters) for n, d in engine.devices.items()}}


def failure_from(exc: Exception) -> CommandFailure:
    """Map driver exceptions to structured failures."""
    if isinstance(exc, CommandFailure):
        return exc
    if isinstance(exc, RecursionError):  # a value nested hundreds of levels (the decoder
        # admits 1024): checking or quoting it ran out of stack; nothing was sent
        return CommandFailure("bad_request", "a value in the request nests too deeply to "
                              "check; send plain numbers, strings and shallow lists")
    if isinstance(exc, ValueError) and hasattr(exc, "param"):  # a driver's validation error
        return CommandFailure("invalid_value", str(exc), device=getattr(exc, "device", None),
                              param=exc.param, value=getattr(exc, "value", None),
                              expected=getattr(exc, "expected", None))
    if isinstance(exc, ValueError):
        return CommandFailure("invalid_value", str(exc))
    if isinstance(exc, Unsupported):
        return CommandFailure("unsupported", str(exc), device=exc.device, feature=exc.feature,
                              vendor=exc.vendor)
    if isinstance(exc, CommandError):
        return CommandFailure(exc.code, str(exc), device=exc.device)
    return CommandFailure("internal", f"{type(exc).__name__}: {exc}")
