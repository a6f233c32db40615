"""Engine commands for camera tracking: delay compensation and takes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from drivers.tracking.device import TrackingSource
from stagectl.engine.commands import ALL_ROLES, CONTROL, CommandFailure, command
from stagectl.engine.takes import TakeError

if TYPE_CHECKING:
    from stagectl.engine.engine import Engine


def _source(engine: Engine, args: dict[str, Any]) -> TrackingSource:
    name = args.get("device")
    sources = {n: d for n, d in engine.devices.items() if isinstance(d, TrackingSource)}
    if name is None and len(sources) == 1:
        return next(iter(sources.values()))
    if not isinstance(name, str) or name not in sources:
        raise CommandFailure("unknown_device", f"no tracking source {name!r}; this stage has "
                             f"{', '.join(sources) or 'none'}", device=name)
    return sources[name]


@command("tracking.delay", CONTROL,
         "Set a source's delay compensation: args device, frames (0..10, 0.1 steps).")
async def _delay(engine: Engine, args: dict[str, Any]) -> Any:
    source = _source(engine, args)
    frames = await source.set("delay_frames", args.get("frames"))
    return {"device": source.name, "delay_frames": frames}


@command("tracking.sources", ALL_ROLES, "Tracking sources with their statistics.", query=True)
async def _sources(engine: Engine, args: dict[str, Any]) -> Any:
    return [d.snapshot() for d in engine.devices.values() if isinstance(d, TrackingSource)]


@command("take.start", CONTROL, "Start recording a take: args slate, take.")
async def _take_start(engine: Engine, args: dict[str, Any]) -> Any:
    try:
        info = engine.takes.start(args.get("slate"), args.get("take"),
                                  str(args.get("_user", "")))
    except TakeError as exc:
        raise CommandFailure("invalid_value", str(exc)) from None
    except OSError as exc:
        raise CommandFailure("internal", f"cannot create the take file: {exc}") from None
    return info


@command("take.stop", CONTROL, "Stop the take being recorded.")
async def _take_stop(engine: Engine, args: dict[str, Any]) -> Any:
    try:
        return engine.takes.stop()
    except TakeError as exc:
        raise CommandFailure("no_take", str(exc)) from None


@command("take.status", ALL_ROLES, "Whether a take is recording.", query=True)
async def _take_status(engine: Engine, args: dict[str, Any]) -> Any:
    return engine.takes.status()
