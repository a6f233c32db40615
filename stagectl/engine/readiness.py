"""What each control needs now and whether each cue could fire: published as it changes.

A console must never show a control as usable, or a cue as ready, when the engine would
refuse it. The engine therefore publishes both, derived from its own state and command table
(``docs/protocols/console-state.md``):

* ``stage.controls`` (``type: controls``): every command's roles and the interlocks it
  needs, and each interlock's state (``None`` or the problem that blocks it);
* ``stage.cues`` (``type: cues``): the cue listing with each cue's live readiness.

:class:`Readiness` re-evaluates both when something they depend on changes (a safety change,
a device's health, an arm's state, a cue fired), at most every :data:`MIN_INTERVAL_S`, and
publishes only what differs from what it published last.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

from drivers.device import DeviceEvent
from drivers.messages import Message
from stagectl.engine.arm import who
from stagectl.engine.commands import ALL_ROLES, COMMANDS, command
from stagectl.engine.cues import CUES_TOPIC, MOTION_STATES
from stagectl.engine.messages import message as msg
from stagectl.engine.safety import motion_devices

if TYPE_CHECKING:
    from stagectl.engine.engine import Engine

log = logging.getLogger(__name__)

CONTROLS_TOPIC = "stage.controls"
MIN_INTERVAL_S = 0.1  # at most 10 evaluations a second, however busy the stage
# Pseudo-commands: a control whose roles differ from its command's (clearing talent).
PSEUDO_COMMANDS: dict[str, tuple[str, frozenset[str]]] = {
    "safety.talent.off": ("safety.talent", frozenset({"operator", "engineer"})),
}


def command_table() -> dict[str, dict[str, Any]]:
    """Every command's (and pseudo-command's) roles and needs, as ``controls`` shows them."""
    commands: dict[str, dict[str, Any]] = {
        c.name: {"roles": sorted(c.roles), "needs": list(c.needs)} for c in COMMANDS.values()}
    for name, (base, roles) in PSEUDO_COMMANDS.items():
        if base in COMMANDS:
            commands[name] = {"roles": sorted(roles), "needs": []}
    return commands


class Readiness:
    """Controls and cue readiness for one engine.

    Args:
        engine: the engine whose state is read and on whose PUB socket results go.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._dirty = asyncio.Event()
        self._last_controls: dict[str, Any] | None = None
        self._last_cues: dict[str, Any] | None = None
        self.evaluations = 0
        self._ignored = frozenset(n for n, d in engine.devices.items() if d.kind == "tracking")
        self._commands = command_table()  # fixed once the engine is built: computed once

    # ---- inputs --------------------------------------------------------------------------

    def changed(self) -> None:
        """Something readiness depends on changed: controls now, cues re-evaluated soon.

        The controls are cheap and are published at once, right after the safety delta that
        caused them, so no console shows a control enabled that an interlock just closed.
        """
        self.publish_controls()
        self._dirty.set()

    def on_device_event(self, event: DeviceEvent) -> None:
        """Health changes and arm state changes affect readiness; other deltas do not.

        Tracking sources are read by no control and no cue: their health (which can flap
        under packet loss) never costs a re-evaluation.
        """
        if event.device in self._ignored:
            return
        if event.kind == "health" or (event.kind == "delta" and "state" in event.data
                                      and isinstance(event.data.get("state"), str)):
            self.changed()

    # ---- outputs -------------------------------------------------------------------------

    def controls(self) -> dict[str, Any]:
        """Every command's roles and needs, and each interlock's state now."""
        engine = self.engine
        safety = engine.safety
        devices: dict[str, dict[str, Message | None]] = {}
        any_resettable = False
        for device in motion_devices(engine.devices.values()):
            state = device.reported.get("state")
            ready = safety.device_problem(device)
            if state in MOTION_STATES:
                resettable: Message | None = msg("device_moving", device=device.name)
            elif device.online and state in ("ESTOP", "FAULT"):
                resettable = None
                any_resettable = True
            else:
                resettable = msg("nothing_to_reset")
            devices[device.name] = {"device_ready": ready, "device_resettable": resettable}
        interlocks: dict[str, Message | None] = dict(safety.stage_problems())
        interlocks["resettable"] = None if safety.estop_latched or any_resettable \
            else msg("nothing_to_reset")
        cues = engine.cues
        nxt = cues.next_index()
        interlocks["next_cue"] = msg("end_of_list" if cues.cues else "no_cues") \
            if nxt is None else None
        interlocks["previous_cue"] = msg("start_of_list") \
            if cues.current is None or cues.current == 0 else None
        return {"commands": self._commands, "interlocks": interlocks, "devices": devices}

    def current_controls(self) -> dict[str, Any]:
        """The controls now; GO's readiness as of the last cue evaluation."""
        controls = self.controls()
        listing = self._last_cues
        if listing is not None and controls["interlocks"]["next_cue"] is None:
            nxt = listing.get("next")
            for cue in listing["cues"]:  # GO is blocked when the cue it would fire is not ready
                if cue["number"] == nxt and not cue["ready"]:
                    controls["interlocks"]["next_cue"] = msg(
                        "cue_not_ready", cue=cue["number"], problems=cue["problems"])
        return controls

    def publish_controls(self) -> dict[str, Any]:
        """Publish the controls if they differ from the last published; returns them."""
        controls = self.current_controls()
        if controls != self._last_controls:
            self._last_controls = controls
            self.engine.publish_state(CONTROLS_TOPIC, {"type": "controls", "device": None,
                                                       "data": controls})
        return controls

    async def evaluate(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """Re-evaluate every cue, then publish what changed (cues, and controls with them)."""
        self.evaluations += 1
        engine = self.engine
        listing = await engine.cues.listing(engine)
        changed = listing != self._last_cues
        self._last_cues = listing
        controls = self.publish_controls()
        if changed:
            self._last_cues = listing
            engine.publish_state(CUES_TOPIC, {"type": "cues", "device": None,
                                              "data": listing})
        return controls, listing

    async def run(self) -> None:
        """Re-evaluate whenever marked changed (coalesced); runs until cancelled."""
        self._dirty.set()  # the first publication, at start
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            started = time.monotonic()
            try:
                await self.evaluate()
            except Exception:  # readiness must never take the engine down
                engine = self.engine
                engine.counters["readiness_errors"] += 1
                log.exception("readiness evaluation failed")
            await asyncio.sleep(max(0.0, MIN_INTERVAL_S - (time.monotonic() - started)))


@command("controls", ALL_ROLES, "Each command's roles and needs, the interlocks now, and who "
         "you are to the engine.", query=True)
async def _controls(engine: Engine, args: dict[str, Any]) -> Any:
    user, role = who(args)
    controls = engine.readiness.current_controls()
    return {"you": {"user": user, "role": role}, **controls}
