"""Stage safety: the one e-stop, the motion interlocks and the audit trail.

* **E-stop** (:meth:`Safety.estop`) sends ``estop`` to every motion device first, each on
  its driver's dedicated socket without waiting for any reply, then (if configured) freezes
  or blacks out the LED walls, then writes the audit row. It latches and disarms the stage:
  motion stays refused until a ``reset`` by an operator or engineer *and* a separate
  ``safety.arm`` (ISO 13850: resetting an e-stop must not by itself allow motion again).
  Anyone who can reach the engine may e-stop
  (``docs/decisions/0042-who-may-estop-and-reset.md``).
* **Interlocks** (:meth:`Safety.motion_problems`): arm motion is refused while the stage is
  not armed, while "talent on stage" is set, while the e-stop is latched, and while the arm
  is offline, faulted or e-stopped. The stage starts disarmed. Every change is pushed to the
  arm controllers at once (and with every heartbeat), which refuse motion themselves
  (``docs/decisions/0044-arm-lease-and-interlocks-at-the-arm.md``).
* **Audit**: every e-stop, watchdog trip, refused move and reset goes to
  :class:`~stagectl.engine.audit.AuditLog` with time, user, role and reason.

State changes are published on the engine's PUB socket under topic :data:`SAFETY_TOPIC`
(``type: delta``) so consoles show them at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from drivers.device import Device, DeviceEvent
from drivers.messages import Message, as_message
from stagectl.config import StageConfig
from stagectl.engine.audit import AuditLog
from stagectl.engine.commands import CommandFailure
from stagectl.engine.messages import message as msg

log = logging.getLogger(__name__)

SAFETY_TOPIC = "stage.safety"
SYSTEM_USER = "system"
MOVING_STATES = ("MOVING", "HOMING", "STOPPING")
RESET_SETTLE_S = 1.0  # how long a reset waits for an e-stopped arm to show it is at rest
Publish = Callable[[str, dict[str, Any]], None]


@runtime_checkable
class MotionDevice(Protocol):
    """A device that moves things on the stage and can be e-stopped without waiting."""

    name: str

    def estop_now(self, reason: str = "") -> bool:
        """Send the device's e-stop at once; False when it could not leave."""
        ...

    def stop_now(self) -> bool:
        """Send a controlled stop at once."""
        ...

    async def reset(self) -> dict[str, Any]:
        """Clear the device's ESTOP or FAULT."""
        ...

    def set_interlocks(self, armed: bool, talent_on_stage: bool, estop_latched: bool) -> bool:
        """Push the stage interlocks to the device's controller now."""
        ...


def motion_devices(devices: Iterable[Device]) -> list[Any]:
    """The devices that can move (every one an e-stop must reach): :class:`MotionDevice` s."""
    return [d for d in devices if isinstance(d, MotionDevice)]


class Safety:
    """Stage-wide safety state plus the audit log.

    Args:
        config: the stage (``[safety]`` section).
        base_dir: where a relative audit path is resolved.
        publish: the engine's publisher ``(topic, message)``.
    """

    def __init__(self, config: StageConfig, base_dir: Path, publish: Publish) -> None:
        self.config = config.safety
        path = config.safety.audit_db
        self.audit = AuditLog(path if path == ":memory:" else base_dir / path,
                              config.stage.name)
        self._publish = publish
        self.armed = False
        self.talent_on_stage = False
        self.estop_latched = False
        self.estop_reason = ""
        self._estop_reason_shown: Message | str = ""
        self.estop_by = ""
        self.estop_user = self.estop_role = ""  # who latched it, for consoles to translate
        self._motion: list[Any] = []
        self.on_change: Callable[[], None] | None = None  # the engine's readiness watcher

    # ---- state ------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """JSON view of the interlocks."""
        return {"armed": self.armed, "talent_on_stage": self.talent_on_stage,
                "estop_latched": self.estop_latched, "estop_reason": self.estop_reason,
                "estop_by": self.estop_by, "estop_user": self.estop_user,
                "estop_role": self.estop_role, "estop_led_action": self.config.estop_led_action}

    def publish(self, topic: str, message: dict[str, Any]) -> None:
        """Publish on the engine's state socket."""
        self._publish(topic, message)

    def event(self, message: Message, level: str = "info") -> None:
        """An operator-visible engine event (a message object: code, params, English)."""
        self._publish("engine", {"type": "event", "device": None,
                                 "data": {**message, "level": level}})

    def _announce(self, message: Message, level: str) -> None:
        self.event(message, level)
        self._publish(SAFETY_TOPIC, {"type": "delta", "device": None, "data": self.status()})
        if self.on_change is not None:
            self.on_change()

    def attach(self, devices: Iterable[Device]) -> None:
        """Watch motion devices for watchdog trips and faults (audited as ``system``)."""
        self._motion = motion_devices(devices)
        for device in self._motion:
            device.subscribe(self._on_device_event)
        self._push_interlocks()

    def _push_interlocks(self) -> None:
        """Send the interlocks to every motion device (its controller enforces them too)."""
        for device in self._motion:
            device.set_interlocks(armed=self.armed, talent_on_stage=self.talent_on_stage,
                                  estop_latched=self.estop_latched)

    def _on_device_event(self, event: DeviceEvent) -> None:
        if event.kind != "delta" or event.data.get("state") != "FAULT":
            return
        fault = str(event.data.get("fault", ""))
        kind = "watchdog_trip" if fault.startswith("watchdog") else "fault"
        self.audit.record(kind, user=SYSTEM_USER, role=SYSTEM_USER, device=event.device,
                          reason=fault or "controller reported FAULT")
        self._announce(msg("device_watchdog_trip" if kind == "watchdog_trip" else "device_fault",
                           device=event.device, fault=fault), "error")

    # ---- e-stop -----------------------------------------------------------------------

    async def estop(self, devices: dict[str, Device], user: str, role: str,
                    reason: str = "") -> dict[str, Any]:
        """Stop every motion device now, then apply the LED action; latches until reset."""
        why = reason or msg("estop_default_reason")["message"]
        sent = {d.name: d.estop_now(why)  # who pressed it is in the audit row and the event
                for d in motion_devices(devices.values())}
        self.estop_latched = True
        was_armed, self.armed = self.armed, False  # reset will not re-arm (ISO 13850)
        self.estop_reason, self.estop_by = why, f"{user} ({role})"
        self.estop_user, self.estop_role = user, role
        self._estop_reason_shown = reason or msg("estop_default_reason")
        self._push_interlocks()
        led_results: dict[str, str] = {}
        action = self.config.estop_led_action
        if action != "none":
            for device in devices.values():
                if device.kind != "led":
                    continue
                try:
                    await device.set(action, True)
                    led_results[device.name] = action if device.online else \
                        f"{action} (applied on reconnect)"
                except Exception as exc:  # the arm is already stopped; report, carry on
                    led_results[device.name] = f"failed: {exc}"
        unreachable = sorted(name for name, ok in sent.items() if not ok)
        self.audit.record("estop", user=user, role=role, reason=why,
                          details={"motion_devices": sent, "led": led_results,
                                   "unreachable": unreachable})
        shown_reason = reason or msg("estop_default_reason")
        if unreachable:
            text = msg("estop_unreached", user=user, role=role, reason=shown_reason,
                       devices=", ".join(unreachable))
        else:
            text = msg("estop_disarmed" if was_armed else "estop", user=user, role=role,
                       reason=shown_reason)
        log.warning(text["message"])
        self._announce(text, "error")
        return {"estop": True, "motion_devices": sent, "led": led_results,
                "unreachable": unreachable, "reason": why}

    async def reset(self, devices: dict[str, Device], user: str, role: str,
                    reason: str = "") -> dict[str, Any]:
        """Clear the stage latch and reset every e-stopped or faulted arm at rest.

        The stage stays disarmed: motion needs a separate ``safety.arm``.
        """
        results: dict[str, str] = {}
        shown: list[Message] = []  # the same per device, for the console
        moving: list[str] = []

        def note(name: str, text: Message) -> None:
            shown.append(text)
            results[name] = text["message"].removeprefix(f"{name} ")

        for device in motion_devices(devices.values()):
            state = await self._settled(device)
            if state in MOVING_STATES:
                moving.append(device.name)
                note(device.name, msg("reset_device_moving", device=device.name, state=state))
                continue
            if state not in ("ESTOP", "FAULT"):
                note(device.name, msg("reset_device_nothing", device=device.name,
                                      state=str(state)))
                continue
            try:
                reply = await device.reset()
                note(device.name, msg("reset_device", device=device.name,
                                      was=str(reply.get("was", state)),
                                      state=str(reply.get("state"))))
            except Exception as exc:
                note(device.name, msg("reset_device_failed", device=device.name,
                                      reason=str(exc)))
        was = self.estop_latched
        if moving:  # a reset must never be done on a machine that is still moving
            self.audit.record("reset_refused", user=user, role=role, reason=reason or "reset",
                              details={"estop_was_latched": was, "devices": results})
            self._announce(msg("reset_refused", user=user, role=role,
                               devices=", ".join(moving)), "error")
            raise CommandFailure("busy", f"reset refused: {', '.join(moving)} still moving "
                                 f"{RESET_SETTLE_S:g} s after the request; stop it, wait "
                                 "for rest and reset again", devices=results)
        self.estop_latched = False
        self.estop_reason = self.estop_by = self.estop_user = self.estop_role = ""
        self._push_interlocks()
        self.audit.record("reset", user=user, role=role, reason=reason or "reset",
                          details={"estop_was_latched": was, "devices": results})
        self._announce(msg("reset_done" if self.armed else "reset_done_disarmed", user=user,
                           role=role, devices=shown or msg("reset_no_motion_devices")),
                       "warning")
        return {"reset": True, "estop_was_latched": was, "devices": results,
                "armed": self.armed}

    @staticmethod
    async def _settled(device: Any) -> str | None:
        """The device's state once its telemetry shows it out of motion (or after a wait).

        An e-stop's reply leaves before the arm's next sample: a reset sent straight after it
        would otherwise see MOVING, skip the arm and leave it in ESTOP.
        """
        deadline = time.monotonic() + RESET_SETTLE_S
        state = device.reported.get("state")
        while state in MOVING_STATES and device.online and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
            state = device.reported.get("state")
        return None if state is None else str(state)

    # ---- interlocks -------------------------------------------------------------------

    def set_armed(self, armed: bool, devices: dict[str, Device], user: str,
                  role: str) -> dict[str, Any]:
        """Arm or disarm the stage; disarming stops motion (controlled)."""
        if armed and self.estop_latched:
            raise CommandFailure("interlock", "cannot arm: e-stop latched "
                                 f"({self.estop_reason}); reset first", interlock="estop")
        self.armed = armed
        if not armed:
            for device in motion_devices(devices.values()):
                device.stop_now()
        self._push_interlocks()
        self.audit.record("armed" if armed else "disarmed", user=user, role=role,
                          reason="stage armed" if armed else "stage disarmed")
        self._announce(msg("stage_armed" if armed else "stage_disarmed", user=user, role=role),
                       "warning" if armed else "info")
        return self.status()

    def set_talent(self, on_stage: bool, devices: dict[str, Device], user: str,
                   role: str) -> dict[str, Any]:
        """Set "talent on stage"; setting it stops motion (controlled)."""
        self.talent_on_stage = on_stage
        if on_stage:
            for device in motion_devices(devices.values()):
                device.stop_now()
        self._push_interlocks()
        self.audit.record("talent_on" if on_stage else "talent_off", user=user, role=role,
                          reason="talent on stage" if on_stage else "stage clear of talent")
        self._announce(msg("talent_on" if on_stage else "talent_clear", user=user, role=role),
                       "warning")
        return self.status()

    def stage_problems(self) -> dict[str, Message | None]:
        """Each stage-level motion interlock: None when clear, else why not."""
        return {
            "estop_clear": msg("interlock_estop", interlock="estop",
                               reason=self._estop_reason_shown)
            if self.estop_latched else None,
            "armed": None if self.armed else msg("interlock_not_armed", interlock="not_armed"),
            "talent_clear": msg("interlock_talent", interlock="talent_on_stage")
            if self.talent_on_stage else None,
        }

    @staticmethod
    def device_problem(device: Device) -> Message | None:
        """Why ``device`` cannot move now (offline, e-stopped, faulted), or None."""
        state = device.reported.get("state")
        if not device.online:
            return msg("device_offline", device=device.name,
                       reason=as_message(device.health.reason) or msg("not_connected"))
        if state in ("ESTOP", "FAULT"):
            fault = str(device.reported.get("fault") or "")
            if fault and state == "FAULT":  # an ESTOP's "fault" repeats the e-stop reason
                return msg("device_in_state_fault", device=device.name, state=state,
                           fault=fault)
            return msg("device_in_state", device=device.name, state=state)
        return None

    def motion_problems(self, device: Device | None = None) -> list[Message]:
        """Why motion is not allowed now (empty when it is), naming the interlock/device.

        Each problem is a message object (code, params, English ``message``).
        """
        problems = [p for p in self.stage_problems().values() if p is not None]
        if device is not None:
            problem = self.device_problem(device)
            if problem is not None:
                problems.append(problem)
        return problems

    def require_motion(self, device: Device, user: str, role: str, what: str) -> None:
        """Raise (and audit) when an interlock forbids ``what`` on ``device``."""
        problems = self.motion_problems(device)
        if problems:
            why = "; ".join(p["message"] for p in problems)
            self.refuse(what, user, role, why, device.name)
            # the first problem names the interlock (stage ones come first, in priority order)
            interlock = problems[0]["params"].get("interlock", "device")
            raise CommandFailure("interlock", f"{what} refused: {why}", device=device.name,
                                 interlock=interlock, problems=problems)

    def refuse(self, what: str, user: str, role: str, reason: str,
               device: str | None = None, details: dict[str, Any] | None = None) -> None:
        """Audit a refused motion command."""
        self.audit.record("refused_move", user=user, role=role, device=device,
                          reason=f"{what}: {reason}", details=details)

    def close(self) -> None:
        """Close the audit log."""
        self.audit.close()
