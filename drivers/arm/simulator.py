"""A simulated camera-arm controller speaking the stagectl arm ZeroMQ protocol.

It behaves like an industrial controller, not an echo: every motion is planned and checked
against the envelope before it starts (soft limits, velocity and acceleration caps, payload),
axes follow trapezoidal or S-curve profiles at a 250 Hz control rate, a lost heartbeat during
motion brings the arm to a controlled stop and FAULT, ``estop`` zeroes every velocity at once
(it jumps the command queue and is published without waiting for the next tick), and the
planned pose ``lookahead_s`` ahead is published with every sample so the render engine can
compensate the LED wall's pipeline delay. Settling adds a small repeatability noise (at most
:data:`~drivers.arm.motion.SETTLE_TOLERANCE_DEG`).

Motion enable lives here, not only in the engine (``docs/decisions/0044-arm-lease-and-
interlocks-at-the-arm.md``): one client holds the control lease, and only its requests move
the arm, reset it, change its limits or feed the watchdog; the lease holder pushes the stage
interlocks (armed, talent on stage, e-stop latched) and the controller refuses motion itself
when they forbid it, stopping a motion in progress when they drop. Until the first push the
stage counts as disarmed.

The command loop never holds back an e-stop (decision 0045): requests are taken off the
socket as they arrive, ``estop``/``stop`` first and the other clients round-robin; each client
has a bounded number of requests in flight; a message above the size cap is refused unread;
large messages are read only from the lease holder's connection while the arm is at rest; and
validation and planning run in slices of well under a millisecond between which the loop
serves whatever arrived.

Run one alone with ``python -m drivers.arm.simulator --command tcp://127.0.0.1:5570
--telemetry tcp://127.0.0.1:5571``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import zmq
import zmq.asyncio

from drivers.arm import protocol as p
from drivers.arm.kinematics import UR10_DH, DhRow, forward
from drivers.arm.motion import (
    SETTLE_TOLERANCE_DEG,
    SETTLE_TOLERANCE_MM,
    Axis,
    Trajectory,
    Vector,
    default_axes,
)
from drivers.arm.planner import Envelope, plan_steps
from drivers.steps import finish, finish_async

log = logging.getLogger(__name__)

MAX_STOP_RATE_PER_S = 50.0  # a controlled stop never takes less than 20 ms
SAFE_INTERLOCKS = {"armed": False, "talent_on_stage": False, "estop_latched": False}
URGENT_MAX_BYTES = 512  # an estop/stop request is small; bigger ones wait their turn
MAX_URGENT_QUEUED = 10_000
MAX_DRAIN = 256  # messages taken off the socket per wake-up before serving


def _is_stop(payload: bytes) -> bool:
    """Whether a small request really is ``estop`` or ``stop``.

    A substring match alone would let any client jump the queue with ``{"id": "stop", ...}``.
    """
    try:
        obj = json.loads(payload)
    except (ValueError, RecursionError):
        return False
    return isinstance(obj, dict) and obj.get("cmd") in ("estop", "stop")


@dataclass
class ArmSimSettings:
    """Behaviour of one simulated arm controller.

    ``max_message_bytes``: a request above it is refused unread (``too_large``); one above
    twice it closes the sender's connection (ZeroMQ ``MAXMSGSIZE``). ``max_in_flight``:
    requests one client may have queued or being planned (beyond: ``too_many_requests``).
    ``inline_bytes``: requests above it are read only from the lease holder's connection
    while the arm is at rest. CURVE: the controller's key pair (z85) and the client public
    keys allowed in (empty: any client key; the link is still encrypted).
    """

    name: str = "arm-sim"
    command: str = "tcp://127.0.0.1:5570"
    telemetry: str = "tcp://127.0.0.1:5571"
    rate_hz: float = 250.0
    track: bool = False
    axes: tuple[Axis, ...] | None = None
    dh: tuple[DhRow, ...] = UR10_DH
    watchdog_s: float = 0.5
    lookahead_s: float = 0.12
    payload_kg: float = 2.5
    repeatability_deg: float = 0.005
    seed: int | None = None
    max_message_bytes: int = p.MAX_MESSAGE_BYTES
    max_in_flight: int = 16
    inline_bytes: int = 64 * 1024
    curve_public_key: bytes | None = None
    curve_secret_key: bytes | None = None
    curve_clients: tuple[bytes, ...] = ()


@dataclass
class ArmSimCounters:
    """What the controller saw and did."""

    received: int = 0
    rejected: int = 0
    malformed: int = 0
    published: int = 0
    estops: int = 0
    watchdog_trips: int = 0
    motions: int = 0
    not_lease_holder: int = 0
    interlock_refusals: int = 0
    too_large: int = 0
    too_many_requests: int = 0
    lease_grants: int = 0
    lease_expiries: int = 0


@dataclass
class _Motion:
    trajectory: Trajectory
    t0: float  # monotonic time of trajectory t=0
    kind: str
    tau: float = 0.0  # trajectory time reached
    rate: float = 1.0  # time scaling (1 running, ramps to 0 while stopping)
    stop_rate_per_s: float = 0.0
    fault_after: str = ""


@dataclass
class _Arm:
    position: Vector
    velocity: Vector
    state: p.ArmState = p.ArmState.IDLE
    fault: str = ""
    motion: _Motion | None = None
    progress: float = 0.0
    last_heartbeat: float = field(default_factory=time.monotonic)


@dataclass
class _Lease:
    id: str
    holder: str
    ttl_s: float
    expires: float  # monotonic
    peers: set[bytes] = field(default_factory=set)  # connections that presented the lease


@dataclass
class _Queued:
    route: list[bytes]
    payload: bytes
    peer: bytes
    counted: bool = False  # counts against the client's requests in flight


class ArmSimulator:
    """One simulated arm controller: a ROUTER for commands, a PUB for telemetry."""

    def __init__(self, settings: ArmSimSettings) -> None:
        self.settings = settings
        self.counters = ArmSimCounters()
        axes = settings.axes or default_axes(settings.track)
        self.envelope = Envelope(axes=axes, dh=settings.dh, payload_kg=settings.payload_kg)
        self.watchdog_s = settings.watchdog_s
        self.lookahead_s = settings.lookahead_s
        self.arm = _Arm(self.envelope.home, np.zeros(len(axes)))
        self.interlocks: dict[str, bool] = dict(SAFE_INTERLOCKS)
        self._interlock_seq = -1  # of the last push applied (per lease)
        self.lease: _Lease | None = None
        self._rng = np.random.default_rng(settings.seed)
        self._ctx: zmq.asyncio.Context | None = None
        self._router: zmq.asyncio.Socket | None = None
        self._pub: zmq.asyncio.Socket | None = None
        self._auth: Any = None
        self._tasks: list[asyncio.Task[None]] = []
        self._seq = 0
        self._urgent: deque[_Queued] = deque()
        self._normal: OrderedDict[bytes, deque[_Queued]] = OrderedDict()
        self._in_flight: dict[bytes, int] = {}
        self._planning: asyncio.Task[None] | None = None
        self.muted = False  # fault injection: stop answering and publishing
        self.command_endpoint = settings.command
        self.telemetry_endpoint = settings.telemetry

    @property
    def name(self) -> str:
        """The simulator's name."""
        return self.settings.name

    @property
    def state(self) -> p.ArmState:
        """The controller state."""
        return self.arm.state

    @property
    def position(self) -> list[float]:
        """Axis positions now (deg, track mm last)."""
        return [float(v) for v in self.arm.position]

    @property
    def velocity(self) -> list[float]:
        """Axis velocities now."""
        return [float(v) for v in self.arm.velocity]

    # ---- lifecycle --------------------------------------------------------------------

    async def start(self) -> None:
        """Bind both sockets and start the control and command loops."""
        self._ctx = zmq.asyncio.Context()
        router, pub = self._ctx.socket(zmq.ROUTER), self._ctx.socket(zmq.PUB)
        for sock in (router, pub):
            sock.setsockopt(zmq.LINGER, 0)
        pub.setsockopt(zmq.SNDHWM, 2000)
        router.setsockopt(zmq.MAXMSGSIZE, 2 * self.settings.max_message_bytes)
        router.setsockopt(zmq.RCVHWM, 100)
        router.setsockopt(zmq.ROUTER_MANDATORY, 0)
        s = self.settings
        if s.curve_secret_key is not None:
            await self._start_curve(router, pub)
        try:
            router.bind(self.settings.command)
            pub.bind(self.settings.telemetry)
        except zmq.ZMQError as exc:
            router.close()
            pub.close()
            if self._auth is not None:
                self._auth.stop()
                self._auth = None
            self._ctx.term()
            self._ctx = None
            raise OSError(f"{self.name}: cannot bind {self.settings.command} / "
                          f"{self.settings.telemetry}: {exc}") from exc
        self.command_endpoint = router.getsockopt_string(zmq.LAST_ENDPOINT)
        self.telemetry_endpoint = pub.getsockopt_string(zmq.LAST_ENDPOINT)
        self._router, self._pub = router, pub
        self.arm.last_heartbeat = time.monotonic()
        self._tasks = [
            asyncio.create_task(self._control_loop(), name=f"{self.name}-control"),
            asyncio.create_task(self._command_loop(), name=f"{self.name}-commands"),
        ]
        log.info("%s: arm simulator, commands %s, telemetry %s%s", self.name,
                 self.command_endpoint, self.telemetry_endpoint,
                 " (CURVE)" if s.curve_secret_key is not None else "")

    async def _start_curve(self, router: zmq.asyncio.Socket, pub: zmq.asyncio.Socket) -> None:
        import zmq.auth
        from zmq.auth.asyncio import AsyncioAuthenticator

        s = self.settings
        assert self._ctx is not None and s.curve_secret_key is not None
        public = s.curve_public_key or zmq.curve_public(s.curve_secret_key)
        allowed = frozenset(s.curve_clients)
        self._auth = AsyncioAuthenticator(self._ctx)
        self._auth.start()
        if allowed:
            class _Allowed:
                def callback(self, domain: str, key: bytes) -> bool:  # key: z85
                    return key in allowed

            self._auth.configure_curve_callback(domain="*", credentials_provider=_Allowed())
        else:
            self._auth.configure_curve(domain="*", location=zmq.auth.CURVE_ALLOW_ANY)
        for sock in (router, pub):
            sock.curve_secretkey = s.curve_secret_key
            sock.curve_publickey = public
            sock.curve_server = True

    async def stop(self) -> None:
        """Stop the loops and close the sockets."""
        tasks = [*self._tasks, *([self._planning] if self._planning is not None else [])]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        self._planning = None
        for sock in (self._router, self._pub):
            if sock is not None:
                sock.close(linger=0)
        self._router = self._pub = None
        if self._auth is not None:
            self._auth.stop()
            self._auth = None
        if self._ctx is not None:
            self._ctx.term()
            self._ctx = None

    # ---- control loop -----------------------------------------------------------------

    async def _control_loop(self) -> None:
        period = 1.0 / self.settings.rate_hz
        next_tick = time.monotonic()
        while True:
            now = time.monotonic()
            self.step(now, period)
            self.publish(now)
            next_tick += period
            delay = next_tick - time.monotonic()
            if delay < -period:  # fell behind (a stalled loop): do not burst to catch up
                next_tick = time.monotonic()
                delay = 0.0
            await asyncio.sleep(max(0.0, delay))

    def step(self, now: float, dt: float) -> None:
        """Advance the arm by one control cycle."""
        self._live_lease(now)
        arm = self.arm
        motion = arm.motion
        if motion is None:
            return
        if arm.state in (p.ArmState.MOVING, p.ArmState.HOMING) and \
                now - arm.last_heartbeat > self.watchdog_s:
            self.counters.watchdog_trips += 1
            silence = now - arm.last_heartbeat
            self._begin_stop(f"watchdog: no heartbeat from the lease holder for {silence:.2f} s "
                             f"(limit {self.watchdog_s:g} s) during motion")
        if arm.state == p.ArmState.STOPPING:
            motion.rate = max(0.0, motion.rate - motion.stop_rate_per_s * dt)
            motion.tau = min(motion.trajectory.duration_s,
                             max(0.0, motion.tau) + motion.rate * dt)
        else:
            motion.tau = min(motion.trajectory.duration_s, now - motion.t0)
        if motion.tau < 0:  # a path waiting for its start time
            arm.velocity = np.zeros_like(arm.velocity)
            return
        pos, vel = motion.trajectory.sample(np.array([motion.tau]))
        arm.position = pos[0]
        arm.velocity = vel[0] * (motion.rate if arm.state == p.ArmState.STOPPING else 1.0)
        duration = motion.trajectory.duration_s
        arm.progress = 1.0 if duration <= 0 else round(motion.tau / duration, 4)
        finished = motion.tau >= duration
        stopped = arm.state == p.ArmState.STOPPING and motion.rate <= 0.0
        if finished or stopped:
            arm.velocity = np.zeros_like(arm.velocity)
            if finished and arm.state != p.ArmState.STOPPING:
                arm.position = arm.position + self._settle_noise(arm.position.size)
            arm.motion = None
            if motion.fault_after:
                arm.state, arm.fault = p.ArmState.FAULT, motion.fault_after
                log.warning("%s: FAULT: %s", self.name, motion.fault_after)
            else:
                arm.state = p.ArmState.IDLE

    def _settle_noise(self, n: int) -> Vector:
        """Repeatability noise, never more than the documented settle tolerance."""
        noise = self._rng.normal(0.0, self.settings.repeatability_deg, n)
        bound = np.full(n, SETTLE_TOLERANCE_DEG)
        if self.envelope.track:
            bound[p.N_JOINTS] = SETTLE_TOLERANCE_MM
        return np.asarray(np.clip(noise, -bound, bound), dtype=np.float64)

    def _begin_stop(self, fault_after: str = "") -> None:
        arm, motion = self.arm, self.arm.motion
        if motion is None:
            if fault_after or arm.state in p.MOTION_STATES:
                arm.state = p.ArmState.FAULT if fault_after else p.ArmState.IDLE
                arm.fault = fault_after
            return
        if arm.state != p.ArmState.STOPPING:
            if motion.tau < 0:  # not started yet: nothing to decelerate
                motion.rate, motion.stop_rate_per_s = 0.0, 1.0
            else:
                caps = np.array([a.max_acceleration for a in self.envelope.axes])
                caps = caps * self.envelope.acceleration_scale * 0.9
                speed = np.abs(arm.velocity)
                moving = speed > 1e-9
                rate = float(np.min(caps[moving] / speed[moving])) if moving.any() \
                    else MAX_STOP_RATE_PER_S
                motion.stop_rate_per_s = min(MAX_STOP_RATE_PER_S, rate)
            arm.state = p.ArmState.STOPPING
        if fault_after:
            motion.fault_after = fault_after

    def estop(self, reason: str = "") -> None:
        """Zero every velocity now and latch ESTOP until ``reset``."""
        self.counters.estops += 1
        arm = self.arm
        arm.motion = None
        arm.velocity = np.zeros_like(arm.velocity)
        arm.state = p.ArmState.ESTOP
        arm.fault = f"e-stop{': ' + reason if reason else ''}"
        self.publish(time.monotonic())  # do not wait for the next tick

    def publish(self, now: float) -> None:
        """Send one telemetry sample (positions, velocities, pose, planned pose ahead)."""
        if self._pub is None or self.muted:
            return
        arm, env = self.arm, self.envelope
        self._seq += 1
        planned = arm.position
        motion = arm.motion
        if motion is not None and arm.state != p.ArmState.STOPPING:
            ahead = (now - motion.t0) + self.lookahead_s
            planned = motion.trajectory.sample(np.array([max(0.0, ahead)]))[0][0]
        wall = time.time()
        track = env.track
        joints = [round(float(v), 4) for v in arm.position[:p.N_JOINTS]]
        sample = p.Telemetry(
            seq=self._seq, t_utc_s=wall, state=arm.state, joints_deg=joints,
            velocities_deg_s=[round(float(v), 4) for v in arm.velocity[:p.N_JOINTS]],
            tool_pose=self._pose(arm.position), planned_t_utc_s=wall + self.lookahead_s,
            planned_joints_deg=[round(float(v), 4) for v in planned[:p.N_JOINTS]],
            planned_tool_pose=self._pose(planned),
            track_mm=round(float(arm.position[p.N_JOINTS]), 3) if track else None,
            track_velocity_mm_s=round(float(arm.velocity[p.N_JOINTS]), 3) if track else None,
            fault=arm.fault, payload_kg=env.payload_kg, progress=arm.progress)
        try:
            self._pub.send_multipart(p.encode_telemetry(sample), flags=zmq.NOBLOCK)
            self.counters.published += 1
        except zmq.ZMQError:
            pass

    def _pose(self, position: Vector) -> dict[str, float]:
        track_mm = float(position[p.N_JOINTS]) if self.envelope.track else 0.0
        return forward(self.envelope.dh, position[:p.N_JOINTS], track_mm).as_dict()

    # ---- lease and interlocks -----------------------------------------------------------

    def _live_lease(self, now: float) -> _Lease | None:
        """The lease, after expiring it when its holder has gone quiet."""
        lease = self.lease
        if lease is not None and now > lease.expires:
            self.counters.lease_expiries += 1
            self.lease = None
            self.interlocks, self._interlock_seq = dict(SAFE_INTERLOCKS), -1
            log.warning("%s: control lease of %s expired", self.name, lease.holder)
            if self.arm.state in (p.ArmState.MOVING, p.ArmState.HOMING):
                self._begin_stop(f"control lease of {lease.holder} expired during motion")
            return None
        return lease

    def _lease_view(self, now: float, lease_id: str = "") -> dict[str, Any]:
        lease = self._live_lease(now)
        if lease is None:
            return {"holder": None, "yours": False}
        return {"holder": lease.holder, "yours": bool(lease_id) and lease_id == lease.id,
                "expires_in_s": round(max(0.0, lease.expires - now), 3), "ttl_s": lease.ttl_s}

    def _not_holder(self, cmd: str, now: float) -> p.ArmProtocolError:
        self.counters.not_lease_holder += 1
        lease = self._live_lease(now)
        if lease is None:
            return p.ArmProtocolError(
                p.NOT_LEASE_HOLDER, f"{cmd} needs the control lease and nobody holds it; "
                "take it with 'acquire' (the stage engine does this on connect)", holder=None)
        left = max(0.0, lease.expires - now)
        return p.ArmProtocolError(
            p.NOT_LEASE_HOLDER, f"{cmd} refused: the arm is controlled by {lease.holder} "
            f"(lease expires in {left:.2f} s unless renewed); only the lease holder may move, "
            "reset or set limits (anyone may estop, stop and read)", holder=lease.holder,
            expires_in_s=round(left, 3))

    def _authorise(self, request: p.Request, peer: bytes | None) -> bool:
        """Renew the lease when the request carries it; refuse holder-only commands otherwise.

        Only the lease holder's requests feed the watchdog.
        """
        now = time.monotonic()
        lease = self._live_lease(now)
        holder = lease is not None and bool(request.lease) and request.lease == lease.id
        if holder:
            assert lease is not None
            lease.expires = now + lease.ttl_s
            if peer is not None:
                lease.peers.add(peer)
            self.arm.last_heartbeat = now
        cmd = request.cmd
        needs = cmd in p.HOLDER_COMMANDS or (cmd == "heartbeat" and
                                             request.args.get("interlocks") is not None)
        if needs and not holder:
            raise self._not_holder(cmd, now)
        return holder

    def _acquire(self, args: dict[str, Any], peer: bytes | None) -> dict[str, Any]:
        now = time.monotonic()
        lease = self._live_lease(now)
        if lease is not None and lease.id != args["lease"]:
            left = max(0.0, lease.expires - now)
            raise p.ArmProtocolError(
                p.LEASE_HELD, f"the arm is controlled by {lease.holder} (lease live for "
                f"{left:.2f} s more unless renewed); it can be taken when it expires",
                holder=lease.holder, expires_in_s=round(left, 3))
        if lease is None:
            lease = _Lease(args["lease"], args["holder"], args["ttl_s"], now + args["ttl_s"])
            self.lease = lease
            self.interlocks, self._interlock_seq = dict(SAFE_INTERLOCKS), -1  # starts disarmed
            self.counters.lease_grants += 1
            log.info("%s: control lease taken by %s (ttl %g s)", self.name, lease.holder,
                     lease.ttl_s)
        lease.holder, lease.ttl_s = args["holder"], args["ttl_s"]
        lease.expires = now + lease.ttl_s
        if peer is not None:
            lease.peers.add(peer)
        self.arm.last_heartbeat = now
        return {"lease": lease.id, "holder": lease.holder, "ttl_s": lease.ttl_s,
                "state": self.arm.state.value, "interlocks": dict(self.interlocks),
                "limits": self.limits()}

    def _release(self) -> dict[str, Any]:
        lease, self.lease = self.lease, None
        self.interlocks, self._interlock_seq = dict(SAFE_INTERLOCKS), -1
        if self.arm.state in (p.ArmState.MOVING, p.ArmState.HOMING):
            self._begin_stop()
        if lease is not None:
            log.info("%s: control lease released by %s", self.name, lease.holder)
        return {"released": True, "state": self.arm.state.value}

    def set_interlocks(self, interlocks: dict[str, Any]) -> None:
        """Apply the stage interlocks the lease holder pushed; stop motion they forbid.

        A push with a ``seq`` older than one already applied is stale (it came the slow way
        round, on another socket) and is ignored.
        """
        seq = interlocks.get("seq")
        if isinstance(seq, int):
            if seq < self._interlock_seq:
                return
            self._interlock_seq = seq
        was = self.interlocks
        interlocks = {k: bool(interlocks[k]) for k in p.INTERLOCK_KEYS}
        self.interlocks = interlocks
        moving = self.arm.state in (p.ArmState.MOVING, p.ArmState.HOMING)
        if interlocks["estop_latched"] and not was["estop_latched"] and \
                self.arm.state in p.MOTION_STATES:
            self.estop("stage e-stop latched (interlock push)")
        elif moving and (not interlocks["armed"] or interlocks["talent_on_stage"]):
            self._begin_stop()

    def interlock_problem(self) -> tuple[str, str] | None:
        """(code, sentence) of the interlock forbidding motion now, or None."""
        return p.interlock_problem(self.interlocks)

    def _check_motion_allowed(self, cmd: str) -> None:
        arm = self.arm
        if arm.state == p.ArmState.ESTOP:
            raise p.ArmProtocolError(p.ESTOP_ACTIVE, "e-stop is latched; reset first",
                                     state=arm.state.value)
        if arm.state == p.ArmState.FAULT:
            raise p.ArmProtocolError(p.FAULTED, f"arm in FAULT ({arm.fault}); reset first",
                                     state=arm.state.value)
        if arm.state != p.ArmState.IDLE:
            raise p.ArmProtocolError(p.BUSY, f"arm is {arm.state.value}; stop it or wait",
                                     state=arm.state.value)
        problem = self.interlock_problem()
        if problem is not None:
            self.counters.interlock_refusals += 1
            raise p.ArmProtocolError(p.INTERLOCK, f"{cmd} refused by the arm: interlock: "
                                     f"{problem[1]}", interlock=problem[0],
                                     interlocks=dict(self.interlocks))

    # ---- commands ---------------------------------------------------------------------

    async def _command_loop(self) -> None:
        assert self._router is not None
        router = self._router
        while True:
            if not self._urgent and not self._normal:
                self._admit(await router.recv_multipart(copy=False))
            for _ in range(MAX_DRAIN):  # take what is queued so an e-stop jumps the rest
                if self._urgent:
                    break  # serve it before refusing the rest of a burst
                try:
                    self._admit(await router.recv_multipart(flags=zmq.NOBLOCK, copy=False))
                except zmq.Again:
                    break
            item = self._next()
            if item is not None:
                reply = self._serve(item)
                if reply is not None:
                    self._send(item.route, reply)
            await asyncio.sleep(0)  # the control loop and any planning get their turn

    def _send(self, route: list[bytes], reply: bytes) -> None:
        if self._router is None:
            return
        with contextlib.suppress(zmq.ZMQError):
            self._router.send_multipart([*route, reply], flags=zmq.NOBLOCK)

    def _refuse_unread(self, route: list[bytes], payload: zmq.Frame | bytes, code: str,
                       message: str, **details: object) -> None:
        self.counters.received += 1
        self.counters.rejected += 1
        head = bytes(payload.buffer[:256]) if isinstance(payload, zmq.Frame) else payload[:256]
        if not self.muted:
            self._send(route, p.error_reply(p.quick_id(head), code,
                                            f"{self.name}: {message}", **details))

    def _admit(self, parts: list[zmq.Frame]) -> None:
        """Queue one request, or answer it at once without reading (or copying) it."""
        n = len(parts)
        delimited = n > 1 and len(parts[1]) == 0
        route = [f.bytes for f in parts[:2 if delimited else 1]]
        if n != len(route) + 1:
            self.counters.malformed += 1
            self._refuse_unread(route, parts[-1] if n > len(route) else b"", p.BAD_REQUEST,
                                f"a request is one frame holding one JSON object; got "
                                f"{n - len(route)} frames", frames=n - len(route))
            return
        frame = parts[-1]
        peer = route[0]
        size = len(frame)
        if size > self.settings.max_message_bytes:
            self.counters.too_large += 1
            self._refuse_unread(route, frame, p.TOO_LARGE, f"request of {size} bytes; at "
                                f"most {self.settings.max_message_bytes}",
                                limit_bytes=self.settings.max_message_bytes)
            return
        if size <= URGENT_MAX_BYTES:
            payload = frame.bytes
            if (b'"estop"' in payload or b'"stop"' in payload) and _is_stop(payload) and \
                    len(self._urgent) < MAX_URGENT_QUEUED:
                self._urgent.append(_Queued(route, payload, peer))
                return
        if size > self.settings.inline_bytes:
            now = time.monotonic()
            lease = self._live_lease(now)
            if lease is None or peer not in lease.peers:
                self.counters.not_lease_holder += 1
                self._refuse_unread(
                    route, frame, p.NOT_LEASE_HOLDER, f"a request of {size} bytes is read only "
                    f"from a connection that has presented the live control lease (held by "
                    f"{lease.holder if lease else 'nobody'}); send a small request with the "
                    "lease on this connection first", holder=None if lease is None
                    else lease.holder)
                return
            if self.arm.state != p.ArmState.IDLE or self._planning is not None:
                self._refuse_unread(route, frame, p.BUSY, f"arm is {self.arm.state.value}"
                                    f"{' and planning' if self._planning else ''}; a motion "
                                    "is accepted only at rest", state=self.arm.state.value)
                return
        if self._in_flight.get(peer, 0) >= self.settings.max_in_flight:
            self.counters.too_many_requests += 1
            self._refuse_unread(route, frame, p.TOO_MANY_REQUESTS,
                                f"more than {self.settings.max_in_flight} requests in flight "
                                "from this client; wait for replies", limit=self.settings
                                .max_in_flight)
            return
        self._in_flight[peer] = self._in_flight.get(peer, 0) + 1
        queue = self._normal.get(peer)
        if queue is None:
            queue = self._normal[peer] = deque()
        queue.append(_Queued(route, frame.bytes, peer, counted=True))

    def _next(self) -> _Queued | None:
        """Urgent first; the rest round-robin between clients."""
        if self._urgent:
            return self._urgent.popleft()
        while self._normal:
            peer, queue = next(iter(self._normal.items()))
            item = queue.popleft()
            if queue:
                self._normal.move_to_end(peer)
            else:
                del self._normal[peer]
            return item
        return None

    def _done(self, peer: bytes) -> None:
        left = self._in_flight.get(peer, 0) - 1
        if left > 0:
            self._in_flight[peer] = left
        else:
            self._in_flight.pop(peer, None)

    def _serve(self, item: _Queued) -> bytes | None:
        """Serve one queued request; a motion request is planned in slices (reply later)."""
        request, reply = self._decode(item.payload)
        if request is not None and request.cmd in p.MOTION_COMMANDS:
            return self._begin_planning(item, request)
        if request is not None:
            reply = self._answer(request, item.peer)
        if item.counted:
            self._done(item.peer)
        return reply

    def _decode(self, payload: bytes) -> tuple[p.Request | None, bytes | None]:
        self.counters.received += 1
        if self.muted:
            return None, None
        try:
            return p.decode_request(payload, self.settings.max_message_bytes), None
        except p.ArmProtocolError as exc:
            self.counters.malformed += 1
            return None, p.error_reply(p.request_id_of(payload), exc.code, str(exc),
                                       **exc.details)

    def _error(self, request: p.Request, exc: p.ArmProtocolError) -> bytes:
        self.counters.rejected += 1
        return p.error_reply(request.id, exc.code, f"{self.name}: {exc}", **exc.details)

    def _answer(self, request: p.Request, peer: bytes | None) -> bytes:
        """Carry out a request that is not motion (or all of it, synchronously)."""
        try:
            self._authorise(request, peer)
            args = p.validate_args(request.cmd, request.args, self.envelope.track)
            if request.cmd in p.MOTION_COMMANDS:
                self._check_motion_allowed(request.cmd)
                envelope, position = self.envelope, self.arm.position.copy()
                trajectory = finish(plan_steps(envelope, request.cmd, args, position))
                result = self._start_motion(request, args, trajectory, envelope, position)
            elif request.cmd == "acquire":
                result = self._acquire(args, peer)
            else:
                result = self._execute(request.cmd, args, request.lease)
        except p.ArmProtocolError as exc:
            return self._error(request, exc)
        except Exception as exc:  # a controller bug must still answer, and not move
            log.exception("%s: %s failed", self.name, request.cmd)
            self.counters.rejected += 1
            return p.error_reply(request.id, "internal", f"{self.name}: {exc}")
        return p.ok_reply(request.id, result)

    def _begin_planning(self, item: _Queued, request: p.Request) -> bytes | None:
        try:
            self._authorise(request, item.peer)
            if self._planning is not None:
                raise p.ArmProtocolError(p.BUSY, "still planning the previous motion; wait "
                                         "for its reply", state=self.arm.state.value)
            self._check_motion_allowed(request.cmd)
        except p.ArmProtocolError as exc:
            if item.counted:
                self._done(item.peer)
            return self._error(request, exc)
        self._planning = asyncio.create_task(self._plan(item, request),
                                             name=f"{self.name}-planning")
        return None

    async def _plan(self, item: _Queued, request: p.Request) -> None:
        """Validate and plan a motion in slices, then start it if nothing changed meanwhile."""
        try:
            try:
                args = await finish_async(p.validate_args_steps(request.cmd, request.args,
                                                                self.envelope.track))
                envelope, position = self.envelope, self.arm.position.copy()
                trajectory = await finish_async(plan_steps(envelope, request.cmd, args,
                                                           position))
                lease = self._live_lease(time.monotonic())
                if lease is None or lease.id != request.lease:
                    raise self._not_holder(request.cmd, time.monotonic())
                self._check_motion_allowed(request.cmd)
                reply = p.ok_reply(request.id, self._start_motion(request, args, trajectory,
                                                                  envelope, position))
            except p.ArmProtocolError as exc:
                reply = self._error(request, exc)
            except Exception as exc:  # a controller bug must still answer, and not move
                log.exception("%s: %s failed", self.name, request.cmd)
                self.counters.rejected += 1
                reply = p.error_reply(request.id, "internal", f"{self.name}: {exc}")
            if not self.muted:
                self._send(item.route, reply)
        finally:
            self._planning = None
            if item.counted:
                self._done(item.peer)

    def handle(self, payload: bytes, peer: bytes | None = None) -> bytes | None:
        """Decode, validate and carry out one request; returns the reply (never raises).

        Synchronous (a motion is planned in one piece): for tests and tools. The command
        loop plans in slices instead.
        """
        request, reply = self._decode(payload)
        if request is None:
            return reply
        return self._answer(request, peer)

    def _start_motion(self, request: p.Request, args: dict[str, Any], trajectory: Trajectory,
                      envelope: Envelope, position: Vector) -> dict[str, Any]:
        arm, cmd = self.arm, request.cmd
        if envelope is not self.envelope or not np.array_equal(position, arm.position):
            raise p.ArmProtocolError(p.BUSY, "the limits or the position changed while the "
                                     "motion was planned; send it again")
        now = time.monotonic()
        t0 = now
        if cmd == "run_path" and "start_utc_s" in args:
            wait = float(args["start_utc_s"]) - time.time()
            if wait < -0.5:
                raise p.ArmProtocolError(p.INVALID_VALUE, f"run_path start_utc_s is "
                                         f"{-wait:.2f} s in the past", param="start_utc_s")
            t0 = now + max(0.0, wait)
        arm.motion = _Motion(trajectory, t0, cmd)
        arm.state = p.ArmState.HOMING if cmd == "home" else p.ArmState.MOVING
        arm.progress = 0.0
        arm.last_heartbeat = now
        self.counters.motions += 1
        end = trajectory.sample(np.array([trajectory.duration_s]))[0][0]
        return {"state": arm.state.value, "duration_s": round(trajectory.duration_s, 4),
                "starts_in_s": round(t0 - now, 4),
                "target": [round(float(v), 4) for v in end]}

    def _execute(self, cmd: str, args: dict[str, Any], lease_id: str = "") -> dict[str, Any]:
        arm = self.arm
        if cmd == "estop":
            self.estop(str(args.get("reason", "")))
            return {"state": arm.state.value}
        if cmd == "heartbeat":
            if "interlocks" in args:
                self.set_interlocks(args["interlocks"])
            return {"state": arm.state.value, "watchdog_s": self.watchdog_s,
                    "lease": self._lease_view(time.monotonic(), lease_id),
                    "interlocks": dict(self.interlocks)}
        if cmd == "stop":
            if arm.state in (p.ArmState.MOVING, p.ArmState.HOMING):
                self._begin_stop()
            return {"state": arm.state.value}
        if cmd == "release":
            return self._release()
        if cmd == "reset":
            if arm.state in p.MOTION_STATES:
                raise p.ArmProtocolError(p.BUSY, f"arm is {arm.state.value}; stop it first",
                                         state=arm.state.value)
            was = arm.state
            arm.state, arm.fault = p.ArmState.IDLE, ""
            return {"state": arm.state.value, "was": was.value}
        if cmd == "set_limits":
            if arm.state in p.MOTION_STATES or self._planning is not None:
                raise p.ArmProtocolError(p.BUSY, f"arm is {arm.state.value}"
                                         f"{' (planning a motion)' if self._planning else ''}"
                                         "; limits change only at rest; nothing applied",
                                         state=arm.state.value)
            self.envelope = self.envelope.with_limits(args)
            self.watchdog_s = float(args.get("watchdog_s", self.watchdog_s))
            self.lookahead_s = float(args.get("lookahead_s", self.lookahead_s))
            return self.limits()
        raise p.ArmProtocolError(p.UNKNOWN_COMMAND, f"unknown command {cmd[:40]!r}")

    def limits(self) -> dict[str, Any]:
        """The envelope as the controller applies it."""
        env = self.envelope
        return {"axes": [{"name": a.name, "unit": a.unit, "min": a.min, "max": a.max,
                          "soft_min": a.soft_min, "soft_max": a.soft_max,
                          "max_velocity": a.max_velocity,
                          "max_acceleration": a.max_acceleration} for a in env.axes],
                "velocity_scale": env.velocity_scale, "payload_kg": env.payload_kg,
                "watchdog_s": self.watchdog_s, "lookahead_s": self.lookahead_s}

    def with_settings(self, **changes: Any) -> ArmSimSettings:
        """A copy of the settings with ``changes`` (for restarts in fault tests)."""
        return replace(self.settings, **changes)


def main() -> None:  # pragma: no cover - manual use
    """Run one simulator from the command line until Ctrl-C."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--command", default="tcp://127.0.0.1:5570")
    parser.add_argument("--telemetry", default="tcp://127.0.0.1:5571")
    parser.add_argument("--track", action="store_true")
    ns = parser.parse_args()
    logging.basicConfig(level=logging.INFO)

    async def run() -> None:
        sim = ArmSimulator(ArmSimSettings(command=ns.command, telemetry=ns.telemetry,
                                          track=ns.track))
        await sim.start()
        try:
            await asyncio.Event().wait()
        finally:
            await sim.stop()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())


if __name__ == "__main__":  # pragma: no cover
    main()
