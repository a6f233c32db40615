"""The farm agent: one per GPU node; runs the tasks the controller assigns to its slots.

A DEALER to the controller's ROUTER. It registers (node id, slots, VRAM, speed, GPUs from
NVML), heartbeats with the attempts it is running, and runs each assignment's argv (never a
shell) on a worker thread with ``CUDA_VISIBLE_DEVICES`` set to the slot. Output lines go back
as log batches, ``PROGRESS <fraction>`` lines as progress. A result is kept and re-sent until
the controller acknowledges it, so a controller restart loses no completion; when the
controller restarts it asks the agent to register again and the agent lists what it runs.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import re
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import zmq

from scheduler.dispatch import limits as lim
from scheduler.dispatch import protocol as p
from scheduler.dispatch.curve import client_keys
from scheduler.dispatch.gpu import Gpu, discover_gpus
from scheduler.dispatch.runner import Result, TaskRun, finish, start

log = logging.getLogger("stagectl.farm.agent")
_PROGRESS = re.compile(r"^PROGRESS\s+([0-9]*\.?[0-9]+)\s*$")
STOP_S = 3.0
"""On stop, how long the agent waits for its tasks' threads after killing their process
groups (the whole stop stays well inside the 5 s a supervisor gives it)."""


class AgentError(Exception):
    """The agent cannot start or lost its controller for good; the message says why."""


@dataclass
class _Running:
    attempt: int
    slot: int
    run: TaskRun
    thread: threading.Thread | None = None
    proc: subprocess.Popen[str] | None = None
    cancelled: bool = False
    lines: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class AgentSpec:
    """What the agent declares; slots and VRAM default to what NVML finds."""

    node_id: str
    slots: int
    vram_gb: float
    speed: float
    gpus: tuple[Gpu, ...]


def describe_node(node_id: str | None = None, slots: int | None = None,
                  vram_gb: float | None = None, speed: float = 1.0,
                  nvml_module: str = "pynvml") -> AgentSpec:
    """Declared capacity, filled in from NVML: one slot per GPU, the smallest GPU's VRAM.

    With no GPU (or no driver) the agent has zero GPUs and runs CPU work on ``slots``
    (default 1) slots with ``vram_gb`` (default 0).
    """
    gpus = tuple(discover_gpus(nvml_module))
    if slots is None:
        slots = len(gpus) or 1
    if vram_gb is None:
        vram_gb = min((g.vram_gb for g in gpus), default=0.0)
    node = node_id or socket.gethostname()
    try:
        lim.registration({"node_id": node, "slots": slots, "vram_gb": vram_gb, "speed": speed})
    except lim.FieldError as exc:
        option = {"node_id": "--node-id", "slots": "--slots", "vram_gb": "--vram-gb",
                  "speed": "--speed"}.get(exc.field, exc.field)
        raise AgentError(f"{option}: got {exc.value}; expected {exc.allowed}") from exc
    return AgentSpec(node, slots, vram_gb, speed, gpus)


class Agent:
    """Connects to ``controller`` and serves until :meth:`stop`."""

    def __init__(self, controller: str, spec: AgentSpec, keys_dir: Path | None = None,
                 key_name: str | None = None, register_timeout_s: float = 10.0,
                 workdir: Path | None = None) -> None:
        self.controller = controller
        self.spec = spec
        self.register_timeout_s = register_timeout_s
        self.workdir = workdir
        self._ctx = zmq.Context()
        self._sock = self._ctx.socket(zmq.DEALER)
        self._sock.linger = 0
        self._sock.sndhwm = self._sock.rcvhwm = 10_000
        # one routing id for the agent process: after a TCP drop ZeroMQ reconnects under the
        # same id (the controller's ROUTER hands the id over to the new connection), so the
        # controller still sees this session and keeps its running attempts. A nonzero first
        # byte: ids starting with zero are reserved for ZeroMQ's own.
        self._sock.routing_id = b"\x01" + os.urandom(15)
        if keys_dir is not None:
            client_keys(self._sock, keys_dir, key_name or spec.node_id)
        self._sock.connect(controller)
        self._events: queue.Queue[dict[str, Any]] = queue.Queue()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        self._running: dict[int, _Running] = {}
        self._unacked: dict[int, dict[str, Any]] = {}
        self._stopping = threading.Event()
        self._heartbeat_s = 1.0
        self._registered = False
        self._last_register = 0.0

    # ------------------------------------------------------------------ loop

    def stop(self) -> None:
        """Ask :meth:`serve` to return (safe from a signal handler)."""
        self._stopping.set()
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"x")

    def serve(self) -> None:
        """Register, then run assignments until stopped; kills its commands on the way out.

        Raises:
            AgentError: when the controller does not answer the first registration in time,
                or refuses the agent.
        """
        poller = zmq.Poller()
        poller.register(self._sock, zmq.POLLIN)
        poller.register(self._wake_r, zmq.POLLIN)
        started = time.monotonic()
        last_beat = 0.0
        last_resend = time.monotonic()
        try:
            self._register()
            while not self._stopping.is_set():
                now = time.monotonic()
                if not self._registered and now - started > self.register_timeout_s:
                    raise AgentError(
                        f"no farm controller answered at {self.controller} within "
                        f"{self.register_timeout_s:g} s (off loopback the controller requires "
                        "CURVE: give --keys-dir with an authorised key)")
                if self._registered and now - last_beat >= self._heartbeat_s:
                    last_beat = now
                    self._send({"type": p.HEARTBEAT, "node_id": self.spec.node_id,
                                "running": sorted(self._running)})
                if self._unacked and now - last_resend > 3 * self._heartbeat_s:
                    last_resend = now
                    for msg in self._unacked.values():
                        self._send(msg)
                for sock, _ in poller.poll(int(self._heartbeat_s * 250)):
                    if sock is self._sock:
                        self._drain_socket()
                    else:
                        with contextlib.suppress(BlockingIOError):
                            os.read(self._wake_r, 4096)
                self._drain_events()
        finally:
            self._shutdown()

    def _register(self) -> None:
        self._last_register = time.monotonic()
        self._send({
            "type": p.REGISTER, "node_id": self.spec.node_id, "slots": self.spec.slots,
            "vram_gb": self.spec.vram_gb, "speed": self.spec.speed,
            "gpus": [{"index": g.index, "model": g.model, "vram_gb": g.vram_gb}
                     for g in self.spec.gpus],
            "running": sorted(self._running), "finished": list(self._unacked.values()),
            "version": p.PROTOCOL_VERSION})

    def _send(self, msg: dict[str, Any]) -> None:
        with contextlib.suppress(zmq.Again):
            self._sock.send(p.encode(msg), zmq.NOBLOCK)

    def _drain_socket(self) -> None:
        while True:
            try:
                frame = self._sock.recv(zmq.NOBLOCK)
            except zmq.Again:
                return
            try:
                msg = p.decode(frame)
            except p.ProtocolError:
                continue
            kind = msg["type"]
            if kind == p.WELCOME:
                self._registered = True
                self._heartbeat_s = float(msg.get("heartbeat_s", 1.0))
                log.info("registered with %s as %s", self.controller, self.spec.node_id)
            elif kind == p.REREGISTER:
                if time.monotonic() - self._last_register > self._heartbeat_s:
                    self._register()
            elif kind == p.REFUSE:
                raise AgentError(f"controller refused {self.spec.node_id}: {msg.get('reason')}")
            elif kind == p.ASSIGN:
                try:
                    self._start(msg)
                except (KeyError, TypeError, ValueError) as exc:
                    log.warning("ignored a malformed assignment: %r", exc)
            elif kind == p.CANCEL:
                self._cancel(int(msg["attempt"]))
            elif kind == p.ACK:
                self._unacked.pop(int(msg["attempt"]), None)

    def _drain_events(self) -> None:
        while True:
            try:
                msg = self._events.get_nowait()
            except queue.Empty:
                return
            if msg["type"] == p.FINISHED:
                r = self._running.pop(int(msg["attempt"]), None)
                if r is not None and r.cancelled:
                    msg = {**msg, "ok": False, "error": "cancelled"}
                self._unacked[int(msg["attempt"])] = msg
            self._send(msg)

    # ------------------------------------------------------------------ tasks

    def _start(self, msg: dict[str, Any]) -> None:
        aid = int(msg["attempt"])
        if aid in self._running or aid in self._unacked:
            return  # a duplicate assignment
        run = TaskRun(str(msg["task"]), aid, tuple(str(a) for a in msg["argv"]),
                      int(msg["frame_start"]), int(msg["frame_end"]), msg.get("output"))
        slot = int(msg["slot"])
        running = _Running(aid, slot, run)
        running.thread = threading.Thread(target=self._work, args=(running,),
                                          name=f"farm-task-{aid}", daemon=True)
        self._running[aid] = running
        running.thread.start()

    def _work(self, r: _Running) -> None:
        """Run one attempt; whatever happens, a ``finished`` report comes out of it."""
        t0 = time.monotonic()
        try:
            self._run(r, t0)
        except Exception as exc:  # the slot must never stay busy with a dead thread
            log.exception("attempt %d failed in the agent", r.attempt)
            self._kill(r)
            self._emit_finished(r, Result(False, None, f"agent error running the task: {exc!r}"),
                                t0)

    def _run(self, r: _Running, t0: float) -> None:
        env = {"CUDA_VISIBLE_DEVICES": str(r.slot), "STAGECTL_NODE_ID": self.spec.node_id,
               "STAGECTL_ATTEMPT": str(r.attempt), "STAGECTL_TASK": r.run.task_id,
               "STAGECTL_SLOT": str(r.slot)}
        try:
            proc, stage = start(r.run, env)
        except (OSError, ValueError, subprocess.SubprocessError) as exc:
            # missing program, permission denied, a NUL byte in an argument, ...
            self._emit_finished(r, Result(False, None, f"cannot start {r.run.argv[0]!r}: {exc}"),
                                t0)
            return
        r.proc = proc
        if r.cancelled:
            self._kill(r)
        assert proc.stdout is not None
        batch: list[str] = []
        last_flush = time.monotonic()
        last_progress = 0.0
        for line in proc.stdout:
            line = line.rstrip("\n")
            r.lines.append(line)
            del r.lines[:-20]
            match = _PROGRESS.match(line)
            now = time.monotonic()
            if match:
                if now - last_progress > 0.1:
                    last_progress = now
                    self._emit({"type": p.PROGRESS, "attempt": r.attempt,
                                "fraction": float(match.group(1))})
                continue
            batch.append(line[:500])
            if now - last_flush > 0.2 or len(batch) >= 50:
                self._emit({"type": p.LOG, "attempt": r.attempt, "lines": batch})
                batch, last_flush = [], now
        proc.stdout.close()
        code = proc.wait()
        if batch:
            self._emit({"type": p.LOG, "attempt": r.attempt, "lines": batch})
        self._emit_finished(r, finish(r.run, code, stage), t0)

    def _emit_finished(self, r: _Running, result: Result, t0: float) -> None:
        self._emit({"type": p.FINISHED, "node_id": self.spec.node_id, "attempt": r.attempt,
                    "ok": result.ok, "exit_code": result.exit_code, "error": result.error,
                    "elapsed_s": round(time.monotonic() - t0, 3), "lines": r.lines[-5:]})

    def _emit(self, msg: dict[str, Any]) -> None:
        self._events.put(msg)
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"x")

    @staticmethod
    def _kill(r: _Running) -> None:
        """SIGKILL the attempt's whole process group (its command and anything it started)."""
        if r.proc is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(r.proc.pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            r.proc.kill()

    def _cancel(self, aid: int) -> None:
        r = self._running.get(aid)
        if r is None:
            return
        r.cancelled = True
        self._kill(r)

    def _shutdown(self) -> None:
        for r in list(self._running.values()):
            r.cancelled = True
            self._kill(r)
        deadline = time.monotonic() + STOP_S
        for r in list(self._running.values()):
            if r.thread is not None:
                r.thread.join(timeout=max(deadline - time.monotonic(), 0.0))
        if self._registered:
            with contextlib.suppress(zmq.ZMQError):
                self._sock.send(p.encode({"type": p.BYE, "node_id": self.spec.node_id}),
                                zmq.NOBLOCK)
                time.sleep(0.05)
        self._sock.close(0)
        self._ctx.term()
        os.close(self._wake_r)
        os.close(self._wake_w)
