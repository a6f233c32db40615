"""A simulated camera-arm controller speaking the stagectl arm ZeroMQ protocol.

It behaves like an industrial controller, not an echo: every motion is planned and checked
against the envelope before it starts (soft limits, velocity and acceleration caps, payload),
axes follow trapezoidal or S-curve profiles at a 250 Hz control rate, a lost heartbeat during
motion brings the arm to a controlled stop and FAULT, ``estop`` zeroes every velocity at once
(it jumps the command queue and is published without waiting for the next tick), and the
planned pose ``lookahead_s`` ahead is published with every sample so the render engine can
compensate the LED wall's pipeline delay. Settling adds a small repeatability noise.

Run one alone with ``python -m drivers.arm.simulator --command tcp://127.0.0.1:5570
--telemetry tcp://127.0.0.1:5571``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import zmq
import zmq.asyncio

from drivers.arm import protocol as p
from drivers.arm.kinematics import UR10_DH, DhRow, forward
from drivers.arm.motion import Axis, Trajectory, Vector, default_axes
from drivers.arm.planner import Envelope, plan

log = logging.getLogger(__name__)

MAX_STOP_RATE_PER_S = 50.0  # a controlled stop never takes less than 20 ms


@dataclass
class ArmSimSettings:
    """Behaviour of one simulated arm controller."""

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
        self._rng = np.random.default_rng(settings.seed)
        self._ctx: zmq.asyncio.Context | None = None
        self._router: zmq.asyncio.Socket | None = None
        self._pub: zmq.asyncio.Socket | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._seq = 0
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
        try:
            router.bind(self.settings.command)
            pub.bind(self.settings.telemetry)
        except zmq.ZMQError as exc:
            router.close()
            pub.close()
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
        log.info("%s: arm simulator, commands %s, telemetry %s", self.name,
                 self.command_endpoint, self.telemetry_endpoint)

    async def stop(self) -> None:
        """Stop the loops and close the sockets."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        for sock in (self._router, self._pub):
            if sock is not None:
                sock.close(linger=0)
        self._router = self._pub = None
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
        arm = self.arm
        motion = arm.motion
        if motion is None:
            return
        if arm.state in (p.ArmState.MOVING, p.ArmState.HOMING) and \
                now - arm.last_heartbeat > self.watchdog_s:
            self.counters.watchdog_trips += 1
            silence = now - arm.last_heartbeat
            self._begin_stop(f"watchdog: no heartbeat for {silence:.2f} s "
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
                noise = self._rng.normal(0.0, self.settings.repeatability_deg, arm.position.size)
                arm.position = arm.position + noise
            arm.motion = None
            if motion.fault_after:
                arm.state, arm.fault = p.ArmState.FAULT, motion.fault_after
                log.warning("%s: FAULT: %s", self.name, motion.fault_after)
            else:
                arm.state = p.ArmState.IDLE

    def _begin_stop(self, fault_after: str = "") -> None:
        arm, motion = self.arm, self.arm.motion
        if motion is None:
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

    # ---- commands ---------------------------------------------------------------------

    async def _command_loop(self) -> None:
        assert self._router is not None
        router = self._router
        while True:
            batch = [await router.recv_multipart()]
            while True:  # drain what is queued so an e-stop jumps ahead of the rest
                try:
                    batch.append(await router.recv_multipart(flags=zmq.NOBLOCK))
                except zmq.Again:
                    break
            batch.sort(key=lambda frames: 0 if b'"estop"' in frames[-1] else 1)
            for frames in batch:
                if len(frames) < 2:
                    continue
                reply = self.handle(frames[-1])
                if reply is None:
                    continue
                with contextlib.suppress(zmq.ZMQError):
                    await router.send_multipart([*frames[:-1], reply])

    def handle(self, payload: bytes) -> bytes | None:
        """Decode, validate and carry out one request; returns the reply (never raises)."""
        self.counters.received += 1
        if self.muted:
            return None
        try:
            request = p.decode_request(payload)
        except p.ArmProtocolError as exc:
            self.counters.malformed += 1
            return p.error_reply(p.request_id_of(payload), exc.code, str(exc), **exc.details)
        self.arm.last_heartbeat = time.monotonic()
        try:
            result = self._execute(request.cmd, p.validate_args(request.cmd, request.args,
                                                                self.envelope.track))
        except p.ArmProtocolError as exc:
            self.counters.rejected += 1
            return p.error_reply(request.id, exc.code, f"{self.name}: {exc}", **exc.details)
        except Exception as exc:  # a controller bug must still answer, and not move
            log.exception("%s: %s failed", self.name, request.cmd)
            self.counters.rejected += 1
            return p.error_reply(request.id, "internal", f"{self.name}: {exc}")
        return p.ok_reply(request.id, result)

    def _execute(self, cmd: str, args: dict[str, Any]) -> dict[str, Any]:
        arm = self.arm
        if cmd == "estop":
            self.estop(str(args.get("reason", "")))
            return {"state": arm.state.value}
        if cmd == "heartbeat":
            return {"state": arm.state.value, "watchdog_s": self.watchdog_s}
        if cmd == "stop":
            if arm.state in (p.ArmState.MOVING, p.ArmState.HOMING):
                self._begin_stop()
            return {"state": arm.state.value}
        if cmd == "reset":
            if arm.state in p.MOTION_STATES:
                raise p.ArmProtocolError(p.BUSY, f"arm is {arm.state.value}; stop it first",
                                         state=arm.state.value)
            was = arm.state
            arm.state, arm.fault = p.ArmState.IDLE, ""
            return {"state": arm.state.value, "was": was.value}
        if cmd == "set_limits":
            if arm.state in p.MOTION_STATES:
                raise p.ArmProtocolError(p.BUSY, f"arm is {arm.state.value}; limits change "
                                         "only at rest", state=arm.state.value)
            self.envelope = self.envelope.with_limits(args)
            self.watchdog_s = float(args.get("watchdog_s", self.watchdog_s))
            self.lookahead_s = float(args.get("lookahead_s", self.lookahead_s))
            return self.limits()
        # motion
        if arm.state == p.ArmState.ESTOP:
            raise p.ArmProtocolError(p.ESTOP_ACTIVE, "e-stop is latched; reset first",
                                     state=arm.state.value)
        if arm.state == p.ArmState.FAULT:
            raise p.ArmProtocolError(p.FAULTED, f"arm in FAULT ({arm.fault}); reset first",
                                     state=arm.state.value)
        if arm.state != p.ArmState.IDLE:
            raise p.ArmProtocolError(p.BUSY, f"arm is {arm.state.value}; stop it or wait",
                                     state=arm.state.value)
        trajectory = plan(self.envelope, cmd, args, arm.position)
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
        self.counters.motions += 1
        end = trajectory.sample(np.array([trajectory.duration_s]))[0][0]
        return {"state": arm.state.value, "duration_s": round(trajectory.duration_s, 4),
                "starts_in_s": round(t0 - now, 4),
                "target": [round(float(v), 4) for v in end]}

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
