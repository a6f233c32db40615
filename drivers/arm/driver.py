"""Camera-arm driver over ZeroMQ (the stagectl arm protocol, ``docs/protocols/arm-zmq.md``).

Two DEALER sockets reach the controller's ROUTER: one for ordinary commands and one used only
for ``estop`` and ``stop``, so a safety stop never queues behind a large path upload. A SUB
socket receives telemetry at 250 Hz; silence for ``timeout_s`` means offline (state
DISCONNECTED). Heartbeats go out every ``heartbeat_s`` while the link is up; the controller
stops the arm and faults if they stop during motion.

Control lease (``docs/decisions/0044-arm-lease-and-interlocks-at-the-arm.md``): on every
(re)connect the driver takes the controller's lease (``acquire`` with a random lease id, its
name and a ttl), renews it with every heartbeat, re-takes it after a controller restart and
releases it at shutdown. Each heartbeat carries the stage interlocks (armed, talent on stage,
e-stop latched), and :meth:`ZmqArm.set_interlocks` pushes them at once when Safety changes
them, so the controller itself refuses motion the stage does not allow.

Every command is validated *before* it is sent: argument types and ranges by the protocol
codec, and for motion the whole trajectory is planned from the last reported position and
checked against the envelope (soft limits, caps); the engine's commands do this in slices
(:meth:`ZmqArm.request`), so heartbeats and e-stops keep flowing while a long path is checked.
The controller checks again on receipt. The desired state is the envelope (``set_limits``),
sent on every (re)connect; the envelope the driver checks against is the one the controller
confirmed in its reply. Safe shutdown is a controlled stop, waited for.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import secrets
import socket
import time
from dataclasses import dataclass, replace
from typing import Any, cast

import numpy as np
import zmq
import zmq.asyncio

from drivers.arm import protocol as p
from drivers.arm.motion import Vector
from drivers.arm.planner import Envelope, plan_steps
from drivers.device import Backoff, CommandError, Device, Health, Problem, problem_dicts
from drivers.messages import message
from drivers.steps import Steps, finish, finish_async

log = logging.getLogger(__name__)

REPORT_INTERVAL_S = 0.04  # joints/pose deltas to the engine at 25 Hz; state changes at once
LIMIT_KEYS = ("soft_min", "soft_max", "velocity_scale", "watchdog_s", "lookahead_s",
              "payload_kg")


@dataclass(frozen=True, slots=True)
class ArmCurveKeys:
    """CURVE keys of the arm link (z85): the controller's public key and the driver's pair."""

    server_public: bytes
    client_public: bytes
    client_secret: bytes


class ArmRefused(CommandError):
    """The driver or the controller refused a command; nothing moved.

    ``details`` name the field, axis, limit and value (they go into the engine's error reply).
    """

    def __init__(self, device: str, message: str, code: str, **details: object) -> None:
        super().__init__(device, message, code)
        self.details = details


class ZmqArm(Device):
    """A robotic camera arm reached over ZeroMQ.

    Args:
        name: device name from the stage config.
        command: the controller's command endpoint (ROUTER).
        telemetry: the controller's telemetry endpoint (PUB).
        envelope: limits the stage allows (validated before sending, sent as ``set_limits``).
        heartbeat_s: heartbeat period.
        watchdog_s: the controller's heartbeat watchdog period (sent with the limits).
        lookahead_s: how far ahead the controller publishes its planned pose.
        timeout_s: telemetry silence after which the link is declared lost.
        reply_timeout_s: how long to wait for a command reply.
        lease_ttl_s: how long the control lease lives without a heartbeat (a restarted engine
            waits at most this long to take control after a crash).
        holder: who the lease names (default: device name, host and process id).
        curve: CURVE keys (required by the config off loopback).
    """

    kind = "arm"

    def __init__(self, name: str, command: str, telemetry: str, *,
                 envelope: Envelope | None = None, heartbeat_s: float = 0.1,
                 watchdog_s: float = 0.5, lookahead_s: float = 0.12, timeout_s: float = 0.5,
                 reply_timeout_s: float = 1.0, backoff: Backoff | None = None,
                 lease_ttl_s: float = p.DEFAULT_LEASE_TTL_S, holder: str | None = None,
                 curve: ArmCurveKeys | None = None) -> None:
        super().__init__(name, backoff or Backoff(initial_s=0.1, max_s=0.5))
        self.command_endpoint = command
        self.telemetry_endpoint = telemetry
        self.envelope = envelope or Envelope()
        self.heartbeat_s = heartbeat_s
        self.timeout_s = timeout_s
        self.reply_timeout_s = reply_timeout_s
        self.heartbeats_enabled = True  # fault injection: a hung controller host
        self.last: p.Telemetry | None = None
        self._last_rx = 0.0
        self._last_report = 0.0
        self._ids = itertools.count(1)
        self._pending: dict[str, asyncio.Future[p.Reply]] = {}
        self._ctx: zmq.asyncio.Context | None = None
        self._dealer: zmq.asyncio.Socket | None = None
        self._urgent: zmq.asyncio.Socket | None = None
        self._sub: zmq.asyncio.Socket | None = None
        self._readers: list[asyncio.Task[None]] = []
        self.curve = curve
        self.lease_id = secrets.token_hex(16)
        self.lease_ttl_s = max(lease_ttl_s, 2 * heartbeat_s)
        self.holder = holder or f"{name} (stagectl on {socket.gethostname()}, pid {os.getpid()})"
        self.lease_held = False
        self.lease_holder: str | None = None  # who holds it when we do not
        self._lease_ready = asyncio.Event()
        self._background: set[asyncio.Task[Any]] = set()
        self._establishing: asyncio.Task[None] | None = None
        self.interlocks: dict[str, bool] = {"armed": False, "talent_on_stage": False,
                                            "estop_latched": False}
        self._interlock_seq = 0
        self.desired["limits"] = self.validate("limits", {
            "soft_min": [a.soft_min for a in self.envelope.axes],
            "soft_max": [a.soft_max for a in self.envelope.axes],
            "velocity_scale": self.envelope.velocity_scale, "watchdog_s": watchdog_s,
            "lookahead_s": lookahead_s, "payload_kg": self.envelope.payload_kg})
        self.reported["state"] = p.ArmState.DISCONNECTED.value

    # ---- Device hooks -----------------------------------------------------------------

    def validate(self, key: str, value: object) -> Any:
        """Only ``limits`` is desired state; it is checked like a ``set_limits`` command."""
        if key != "limits":
            raise p.ValidationError(key, value, "limits", self.name)
        if not isinstance(value, dict):
            raise p.ValidationError(key, value, "an object of " + ", ".join(LIMIT_KEYS),
                                    self.name)
        try:
            args = p.validate_args("set_limits", value, self.envelope.track)
            self.envelope.with_limits(args)
        except p.ArmProtocolError as exc:
            raise p.ValidationError(str(exc.details.get("param", key)), value, str(exc),
                                    self.name) from None
        return args

    async def _open(self) -> None:
        self._ctx = zmq.asyncio.Context()
        dealer, urgent = self._ctx.socket(zmq.DEALER), self._ctx.socket(zmq.DEALER)
        sub = self._ctx.socket(zmq.SUB)
        for sock in (dealer, urgent, sub):
            sock.setsockopt(zmq.LINGER, 0)
            sock.setsockopt(zmq.MAXMSGSIZE, 2 * p.MAX_MESSAGE_BYTES)  # a broken peer's junk
            if self.curve is not None:
                sock.curve_serverkey = self.curve.server_public
                sock.curve_publickey = self.curve.client_public
                sock.curve_secretkey = self.curve.client_secret
        for sock in (dealer, urgent):
            sock.setsockopt(zmq.IMMEDIATE, 1)  # never queue a command for a missing arm
            sock.setsockopt(zmq.RECONNECT_IVL, 50)
            sock.setsockopt(zmq.RECONNECT_IVL_MAX, 500)
            sock.connect(self.command_endpoint)
        sub.setsockopt(zmq.RCVHWM, 1000)
        sub.setsockopt(zmq.RECONNECT_IVL, 50)
        sub.setsockopt(zmq.RECONNECT_IVL_MAX, 500)
        sub.setsockopt(zmq.SUBSCRIBE, p.TELEMETRY_TOPIC)
        sub.connect(self.telemetry_endpoint)
        self._dealer, self._urgent, self._sub = dealer, urgent, sub
        self._readers = [
            asyncio.create_task(self._read_replies(dealer), name=f"{self.name}-replies"),
            asyncio.create_task(self._read_replies(urgent), name=f"{self.name}-urgent"),
            asyncio.create_task(self._read_telemetry(sub), name=f"{self.name}-telemetry"),
        ]

    async def _close(self) -> None:
        tasks = [*self._readers, *self._background]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._readers = []
        self._background.clear()
        self._lost_lease()
        for future in self._pending.values():
            if not future.done():
                future.cancel()
        self._pending.clear()
        for sock in (self._dealer, self._urgent, self._sub):
            if sock is not None:
                sock.close(linger=0)
        self._dealer = self._urgent = self._sub = None
        if self._ctx is not None:
            self._ctx.term()
            self._ctx = None

    def _probe(self) -> None:
        if not self.heartbeats_enabled:
            return
        if self.lease_held:  # renews the lease, feeds the watchdog, carries the interlocks
            self._fire(self._urgent, "heartbeat", {"interlocks": self._interlock_args()})
        else:
            self._fire(self._urgent, "heartbeat", {})
            if self._connected.is_set():
                self._start_establish()

    def _keepalive_interval(self) -> float:
        return self.heartbeat_s

    def _link_alive(self) -> bool:
        return time.monotonic() - self._last_rx < self.timeout_s

    def _silence_reason(self) -> str:
        return Problem(f"no telemetry from {self.telemetry_endpoint} for {self.timeout_s:g} s",
                       "no_reply", address=self.telemetry_endpoint, seconds=self.timeout_s)

    def _link_down(self, reason: str) -> None:
        super()._link_down(reason)
        self._report({"state": p.ArmState.DISCONNECTED.value})

    def _send_desired(self, values: dict[str, Any]) -> None:
        """Take the lease first (on connect); then the envelope, confirmed by the reply."""
        if not self.lease_held:
            self._start_establish()
            return
        limits = values.get("limits")
        if isinstance(limits, dict):
            self._spawn(self._push_limits(limits), "limits")

    def _spawn(self, coro: Any, what: str) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro, name=f"{self.name}-{what}")
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    # ---- control lease and interlocks ---------------------------------------------------

    def _start_establish(self) -> None:
        if self._establishing is None or self._establishing.done():
            self._establishing = self._spawn(self._establish(), "lease")

    def _lost_lease(self) -> None:
        if self.lease_held:
            self.lease_held = False
            self._lease_ready.clear()
            self._report({"lease": {"held": False, "holder": None}})

    async def _establish(self) -> None:
        """Take the control lease, then push the interlocks and the stage envelope.

        Retries while another live holder has the lease; adopts the limits the controller
        confirms.
        """
        while self._connected.is_set() and not self.lease_held:
            try:
                result = await self._call(self._urgent, "acquire", {
                    "lease": self.lease_id, "holder": self.holder, "ttl_s": self.lease_ttl_s})
            except ArmRefused as exc:
                holder = exc.details.get("holder")
                if holder != self.lease_holder:
                    self.lease_holder = str(holder) if holder else None
                    self.event(message("arm_lease_refused", reason=str(exc)), "warning")
                    self._report({"lease": {"held": False, "holder": self.lease_holder}})
                    self._update_health()
                await asyncio.sleep(max(self.heartbeat_s, 0.05))
                continue
            except CommandError:
                await asyncio.sleep(max(self.heartbeat_s, 0.05))
                continue
            self.lease_held, self.lease_holder = True, self.holder
            self._report({"lease": {"held": True, "holder": self.holder,
                                    "ttl_s": self.lease_ttl_s}})
            self.counters["leases"] += 1
            self._adopt_limits(result.get("limits"))
            self._push_interlocks()
            limits = self.desired.get("limits")
            if isinstance(limits, dict):
                await self._push_limits(limits)
            self._lease_ready.set()
            self._update_health()

    def set_interlocks(self, armed: bool, talent_on_stage: bool, estop_latched: bool) -> bool:
        """The stage interlocks; pushed to the controller at once (and with every heartbeat).

        Returns:
            Whether the push left now (it also goes with the next heartbeat either way).
        """
        self.interlocks = {"armed": bool(armed), "talent_on_stage": bool(talent_on_stage),
                           "estop_latched": bool(estop_latched)}
        self._interlock_seq += 1
        self._report({"interlocks": dict(self.interlocks)})
        return self._push_interlocks()

    def _interlock_args(self) -> dict[str, Any]:
        return {**self.interlocks, "seq": self._interlock_seq}

    def _push_interlocks(self) -> bool:
        """Push on both sockets, numbered.

        The urgent socket, so a drop is never behind an upload; the command socket, so a
        motion sent after arming never overtakes the arming push. The controller ignores a
        push older (by ``seq``) than one it applied, so the slower copy changes nothing.
        """
        if not self.lease_held:
            return False
        args = {"interlocks": self._interlock_args()}
        urgent = self._fire(self._urgent, "heartbeat", args)
        return self._fire(self._dealer, "heartbeat", args) or urgent

    async def _push_limits(self, limits: dict[str, Any]) -> bool:
        try:
            result = await self._call(self._dealer, "set_limits", limits)
        except CommandError as exc:
            self.event(message("arm_envelope_not_applied", reason=str(exc)), "warning")
            return False
        self._adopt_limits(result)
        return True

    def _adopt_limits(self, limits: object) -> None:
        """Make the envelope the driver checks against the one the controller holds."""
        if not isinstance(limits, dict):
            return
        given = {a.get("name"): a for a in limits.get("axes", []) if isinstance(a, dict)}
        axes = []
        for ax in self.envelope.axes:
            got = given.get(ax.name)
            if got is not None and all(isinstance(got.get(k), (int, float)) and
                                       not isinstance(got.get(k), bool)
                                       for k in ("soft_min", "soft_max")):
                ax = replace(ax, soft_min=float(got["soft_min"]),
                             soft_max=float(got["soft_max"]))
            axes.append(ax)
        env = replace(self.envelope, axes=tuple(axes))
        scale, payload = limits.get("velocity_scale"), limits.get("payload_kg")
        if isinstance(scale, (int, float)) and not isinstance(scale, bool):
            env = replace(env, velocity_scale=float(scale))
        if isinstance(payload, (int, float)) and not isinstance(payload, bool):
            env = replace(env, payload_kg=float(payload))
        self.envelope = env
        self._report({"limits": {
            "soft_min": [a.soft_min for a in env.axes], "soft_max": [a.soft_max for a in env.axes],
            "velocity_scale": env.velocity_scale, "payload_kg": env.payload_kg,
            "watchdog_s": limits.get("watchdog_s"), "lookahead_s": limits.get("lookahead_s")}})

    async def apply_limits(self, limits: dict[str, Any]) -> dict[str, Any]:
        """``set_limits`` confirmed by the controller before it counts as applied.

        Returns:
            ``{"applied": True, "limits": <what the arm holds>}``, or, offline,
            ``{"applied": False, "pending": True}`` (sent on reconnect).

        Raises:
            ArmRefused: invalid, or refused by the arm (moving: ``busy``); nothing changed.
        """
        clean = self.validate("limits", limits)
        if not self.online:
            self.desired["limits"] = clean
            self._emit("desired", {"limits": clean})
            return {"applied": False, "pending": True,
                    "reason": f"{self.health.reason or 'offline'}; applied on reconnect"}
        await self._wait_lease()
        try:
            result = await self._call(self._dealer, "set_limits", clean)
        except ArmRefused as exc:
            self.counters["refused_by_arm"] += 1
            raise ArmRefused(self.name, f"set_limits not applied: {exc}", exc.code,
                             **exc.details) from None
        self.desired["limits"] = clean
        self._emit("desired", {"limits": clean})
        self._adopt_limits(result)
        return {"applied": True, "limits": self.reported.get("limits")}

    async def _wait_lease(self) -> None:
        if not self.lease_held and self._connected.is_set():
            self._start_establish()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._lease_ready.wait(), self.reply_timeout_s)

    async def wait_online(self, timeout: float) -> bool:
        """Wait until connected, then (within the same timeout) for the control lease.

        False when not connected in time; a lease still held by another engine is shown in
        health and waited for again by every command that needs it.
        """
        start = time.monotonic()
        if not await super().wait_online(timeout):
            return False
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._lease_ready.wait(),
                                   max(0.0, timeout - (time.monotonic() - start)))
        return True

    async def safe_shutdown(self) -> None:
        """A controlled stop, waited for (up to 3 s): the arm is left at rest.

        ``stop`` is sent even when the last sample showed the arm at rest: a motion accepted
        a moment ago may not have shown in telemetry yet.
        """
        sent_at = time.monotonic()
        if not self._fire(self._urgent, "stop", {}):
            self.event(message("arm_stop_unreachable"), "warning")
            return
        deadline = sent_at + 3.0
        while time.monotonic() < deadline and self.online and (
                self._last_rx < sent_at + 0.01 or self.state in p.MOTION_STATES):
            await asyncio.sleep(0.01)
        if self.state in p.MOTION_STATES:
            self.estop_now("controlled stop did not finish within 3 s at shutdown")
        else:
            self.event(message("arm_stopping_at_rest", state=self.state.value))
        if self.lease_held:  # a restarted engine takes control at once, not after the ttl
            with contextlib.suppress(CommandError, TimeoutError):  # it expires anyway
                await asyncio.wait_for(self._call(self._urgent, "release", {}), 0.2)
            self._lost_lease()

    def _problems(self) -> list[str]:
        state = self.reported.get("state")
        if not self.lease_held and self.lease_holder and self.lease_holder != self.holder:
            return [Problem(f"no control: the arm is controlled by {self.lease_holder}",
                            "arm_lease_held", holder=self.lease_holder)]
        if state == p.ArmState.ESTOP.value:
            return [Problem("e-stop latched", "estop_latched")]
        if state == p.ArmState.FAULT.value:
            fault = str(self.reported.get("fault") or "unknown")
            return [Problem(f"FAULT: {fault}", "arm_fault", fault=fault)]
        return []

    # ---- state ------------------------------------------------------------------------

    @property
    def state(self) -> p.ArmState:
        """The controller's last reported state (DISCONNECTED when not heard)."""
        if not self.online or self.last is None:
            return p.ArmState.DISCONNECTED
        return self.last.state

    @property
    def position(self) -> Vector | None:
        """Last reported axis positions (deg; track mm last), or None."""
        if self.last is None:
            return None
        values = list(self.last.joints_deg)
        if self.envelope.track:
            values.append(self.last.track_mm or 0.0)
        return np.array(values, dtype=np.float64)

    # ---- commands ---------------------------------------------------------------------

    def _fire(self, sock: zmq.asyncio.Socket | None, cmd: str, args: dict[str, Any]) -> bool:
        """Send without waiting for the reply; False when it could not leave."""
        if sock is None or sock.closed:
            return False
        rid = f"{self.name}-{next(self._ids)}"
        try:
            sent: asyncio.Future[Any] | None = cast(
                "asyncio.Future[Any]", sock.send(p.encode_request(rid, cmd, args, self.lease_id),
                                                 flags=zmq.NOBLOCK))
        except zmq.ZMQError:
            sent = None
        # pyzmq's asyncio socket tries a NOBLOCK send at once and keeps any error in the future
        if sent is None or (sent.done() and sent.exception() is not None):
            self.counters["send_failed"] += 1
            return False
        if not sent.done():
            sent.add_done_callback(lambda f: f.cancelled() or f.exception())
        self.counters["commands_sent"] += 1
        return True

    def estop_now(self, reason: str = "") -> bool:
        """Send ``estop`` at once on the urgent socket (no validation, no waiting).

        Returns:
            Whether the message left (False when the controller is unreachable).
        """
        sent = self._fire(self._urgent, "estop", {"reason": reason[:200]})
        self.event(message("arm_estop_sent", reason=reason) if sent
                   else message("arm_estop_not_sent", reason=reason), "error")
        return sent

    def stop_now(self) -> bool:
        """Send a controlled ``stop`` on the urgent socket without waiting."""
        return self._fire(self._urgent, "stop", {})

    def check(self, cmd: str, args: dict[str, Any]) -> dict[str, Any]:
        """Validate a command and, for motion, plan it from the last reported position.

        Returns:
            The normalised arguments, ready to send.

        Raises:
            ArmRefused: invalid arguments, a plan crossing a limit, an unreachable pose, no
                telemetry yet (the position is unknown) or no control lease; nothing is sent.
        """
        return finish(self._check_steps(cmd, args))

    async def check_async(self, cmd: str, args: dict[str, Any]) -> dict[str, Any]:
        """:meth:`check` in slices, so the loop keeps serving while a long path is checked."""
        return await finish_async(self._check_steps(cmd, args))

    def _check_steps(self, cmd: str, args: dict[str, Any]) -> Steps[dict[str, Any]]:
        try:
            clean = yield from p.validate_args_steps(cmd, args, self.envelope.track)
            if cmd in p.MOTION_COMMANDS:
                position = self.position
                if position is None or not self.online:
                    raise ArmRefused(self.name, f"cannot {cmd}: "
                                     f"{self.health.reason or 'no telemetry yet'}",
                                     "device_offline")
                if not self.lease_held:
                    holder = self.lease_holder if self.lease_holder != self.holder else None
                    raise ArmRefused(self.name, f"cannot {cmd}: the engine does not hold the "
                                     "arm's control lease"
                                     + (f" (controlled by {holder})" if holder else
                                        " (taking it)"), p.NOT_LEASE_HOLDER, holder=holder)
                yield from plan_steps(self.envelope, cmd, clean, position)
            if cmd == "set_limits":
                self.envelope.with_limits(clean)
        except p.ArmProtocolError as exc:
            self.counters["refused_locally"] += 1
            raise ArmRefused(self.name, f"{cmd}: {exc}", exc.code, **exc.details) from None
        return clean

    async def _call(self, sock: zmq.asyncio.Socket | None, cmd: str, args: dict[str, Any]
                    ) -> dict[str, Any]:
        """Send one request and wait for its reply (no checks).

        Raises:
            ArmRefused: the controller refused it.
            CommandError: not sent, or no reply in time.
        """
        if sock is None or sock.closed:
            raise CommandError(self.name, f"cannot {cmd}: not started", "device_offline")
        rid = f"{self.name}-{next(self._ids)}"
        future: asyncio.Future[p.Reply] = asyncio.get_running_loop().create_future()
        self._pending[rid] = future
        try:
            try:
                await sock.send(p.encode_request(rid, cmd, args, self.lease_id),
                                flags=zmq.NOBLOCK)
            except zmq.ZMQError as exc:
                raise CommandError(self.name, f"{cmd} not sent to {self.command_endpoint}: "
                                   f"{exc}", "device_offline") from None
            self.counters["commands_sent"] += 1
            try:
                reply = await asyncio.wait_for(future, self.reply_timeout_s)
            except TimeoutError:
                raise CommandError(self.name, f"no reply to {cmd} from "
                                   f"{self.command_endpoint} within {self.reply_timeout_s:g} s",
                                   "device_timeout") from None
        finally:
            self._pending.pop(rid, None)
        if not reply.ok:
            if reply.code == p.NOT_LEASE_HOLDER:
                self._lost_lease()
            raise ArmRefused(self.name, reply.message, reply.code, **reply.details)
        return reply.result

    async def request(self, cmd: str, args: dict[str, Any] | None = None) -> dict[str, Any]:
        """Validate (in slices), send and wait for the controller's reply.

        Raises:
            ArmRefused: refused here (nothing sent) or by the controller.
            CommandError: offline, or no reply in time.
        """
        if cmd in p.MOTION_COMMANDS or cmd in ("reset", "set_limits"):
            await self._wait_lease()
        clean = await self.check_async(cmd, dict(args or {}))
        if not self.online:
            raise CommandError(self.name, f"cannot {cmd}: {self.health.reason or 'offline'}",
                               "device_offline")
        problem = p.interlock_problem(self.interlocks) if cmd in p.MOTION_COMMANDS else None
        if problem is not None:  # changed while the lease was awaited or the plan checked
            self.counters["refused_locally"] += 1
            raise ArmRefused(self.name, f"{cmd} refused: interlock: {problem[1]}; nothing sent",
                             p.INTERLOCK, interlock=problem[0])
        sock = self._urgent if cmd in ("estop", "stop") else self._dealer
        if cmd == "run_path":  # a big request is read only from a connection known to hold
            self._fire(self._dealer, "heartbeat", {})  # the lease (it may have reconnected)
        try:
            result = await self._call(sock, cmd, clean)
        except ArmRefused:
            self.counters["refused_by_arm"] += 1
            raise
        if cmd == "set_limits":
            self.desired["limits"] = {**self.desired.get("limits", {}), **clean}
            self._adopt_limits(result)
        if cmd == "reset":  # the next sample confirms; motion may be commanded right away
            self._report({"state": str(result.get("state", "IDLE")), "fault": ""})
            self._update_health()
        return result

    async def home(self, profile: str = "trapezoid") -> dict[str, Any]:
        """Move to the home position."""
        return await self.request("home", {"profile": profile})

    async def move_joints(self, joints_deg: list[float], track_mm: float | None = None,
                          profile: str = "trapezoid", speed_scale: float = 1.0
                          ) -> dict[str, Any]:
        """Synchronised move to joint angles (deg) and track position (mm)."""
        args: dict[str, Any] = {"joints_deg": joints_deg, "profile": profile,
                                "speed_scale": speed_scale}
        if track_mm is not None:
            args["track_mm"] = track_mm
        return await self.request("move_joints", args)

    async def move_pose(self, pose: dict[str, float], profile: str = "trapezoid",
                        speed_scale: float = 1.0) -> dict[str, Any]:
        """Move the flange to a pose in the stage frame (mm, deg)."""
        return await self.request("move_pose", {"pose": pose, "profile": profile,
                                                "speed_scale": speed_scale})

    async def run_path(self, keyframes: list[dict[str, Any]],
                       start_utc_s: float | None = None) -> dict[str, Any]:
        """Run keyframes ``{t_s, joints_deg[, track_mm]}``, optionally starting at a time."""
        args: dict[str, Any] = {"keyframes": keyframes}
        if start_utc_s is not None:
            args["start_utc_s"] = start_utc_s
        return await self.request("run_path", args)

    async def jog(self, axis: str, velocity: float, duration_s: float = 0.5) -> dict[str, Any]:
        """Jog one axis at ``velocity`` (deg/s, mm/s for the track) for ``duration_s``."""
        return await self.request("jog", {"axis": axis, "velocity": velocity,
                                          "duration_s": duration_s})

    async def reset(self) -> dict[str, Any]:
        """Clear ESTOP or FAULT (the arm must be at rest)."""
        return await self.request("reset")

    # ---- receive ----------------------------------------------------------------------

    async def _read_replies(self, sock: zmq.asyncio.Socket) -> None:
        while True:
            payload = await sock.recv()
            try:
                reply = p.decode_reply(payload)
            except p.ArmProtocolError:
                self.counters["bad_replies"] += 1
                continue
            future = self._pending.get(reply.id or "")
            if future is not None and not future.done():
                future.set_result(reply)
            elif not reply.ok:  # a fire-and-forget command the arm refused
                self.counters["refused_by_arm"] += 1
                if reply.code == p.NOT_LEASE_HOLDER and self.lease_held:
                    self.event(message("arm_lease_lost", reason=reply.message), "warning")
                    self._lost_lease()
                    if self._connected.is_set():
                        self._start_establish()
                else:
                    self.event(message("arm_command_refused", reason=reply.message), "warning")

    async def _read_telemetry(self, sock: zmq.asyncio.Socket) -> None:
        while True:
            frames = await sock.recv_multipart()
            try:
                sample = p.decode_telemetry(frames[-1])
            except p.ArmProtocolError:
                self.counters["bad_telemetry"] += 1
                continue
            self._on_sample(sample)

    def _on_sample(self, sample: p.Telemetry) -> None:
        previous = self.last
        self.last = sample
        self._last_rx = time.monotonic()
        self.counters["telemetry"] += 1
        if previous is not None and sample.seq < previous.seq:
            self.event(message("arm_controller_restarted"), "warning")
            self._connected.clear()  # take the lease again, re-apply the envelope
            self._lost_lease()
        if not self._connected.is_set():
            self._link_up(message("why_telemetry"))
        changed_state = previous is None or previous.state != sample.state \
            or previous.fault != sample.fault
        now = time.monotonic()
        if changed_state:
            self._report({"state": sample.state.value, "fault": sample.fault})
            if sample.fault.startswith("watchdog"):
                self.event(message("arm_watchdog_tripped", fault=sample.fault), "error")
            self._update_health()
        if changed_state or now - self._last_report >= REPORT_INTERVAL_S:
            self._last_report = now
            changes: dict[str, Any] = {
                "joints_deg": [round(v, 2) for v in sample.joints_deg],
                "velocities_deg_s": [round(v, 2) for v in sample.velocities_deg_s],
                "tool_pose": {k: round(v, 1) for k, v in sample.tool_pose.items()},
                "planned_tool_pose": {k: round(v, 1) for k, v in
                                      sample.planned_tool_pose.items()},
                "progress": round(sample.progress, 3), "payload_kg": sample.payload_kg}
            if sample.track_mm is not None:
                changes["track_mm"] = round(sample.track_mm, 1)
            self._report(changes)

    def _update_health(self) -> None:
        if self._connected.is_set():
            problems = self._problems()
            self._set_health(Health.DEGRADED if problems else Health.ONLINE, "; ".join(problems),
                             problem_dicts(problems))
