"""The farm controller: durable task state, plan-following dispatch, retries, requeues.

One thread owns a ROUTER socket and the SQLite store. Each turn of the loop drains the
messages waiting, handles them and dispatches free slots inside one ``BEGIN IMMEDIATE``
transaction, commits, and only then sends what the turn produced (assignments, acks,
replies): nothing leaves the controller that the file does not already hold, so a kill at any
moment loses nothing acknowledged. Planning runs on a worker thread with a short time limit;
dispatch follows the latest plan (a node takes the tasks planned on it first, pool tasks are
submitted to their pool) and keeps going in priority/deadline order while a plan is pending
or for tasks beyond the planning cap (docs/decisions/0051-farm-plan-as-guide.md).
"""

from __future__ import annotations

import contextlib
import logging
import math
import sqlite3
import sys
import time
from collections import Counter, deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import zmq

from scheduler.dispatch import limits as lim
from scheduler.dispatch import protocol as p
from scheduler.dispatch import roles
from scheduler.dispatch.config import ControllerConfig, PoolConfig
from scheduler.dispatch.curve import authorized_identities, is_loopback, server_keys
from scheduler.dispatch.jobfile import JobFileError, JobSpec, job_from_wire, unchecked_job
from scheduler.dispatch.pool import TERMINAL, PoolBackend, cost_cny, open_backend
from scheduler.dispatch.runner import declared_outputs
from scheduler.dispatch.store import FarmStore
from scheduler.farm.model import UNBOUNDED_S, Farm, Job, Node, Pool, Task
from scheduler.farm.planner import plan_farm

log = logging.getLogger("stagectl.farm.controller")

LOOKAHEAD = 64
"""How far down the ready order a free node looks for a task the plan put on it."""
RUNNABLE = ("QUEUED", "PLANNED")
BUSY_MIN_S = 30
"""A running attempt past its estimate is still planned to hold its slot this much longer."""
BUSY_BUCKET_S = 60
"""Busy slots' expected free times are rounded up to this (fewer planning resources)."""
TURN_MESSAGES = 5000
TURN_BYTES = 64 << 20
"""At most this many messages and bytes are read per loop turn (memory stays bounded)."""


@dataclass(frozen=True)
class Peer:
    """Who sent a message: the connection, and with CURVE the certificate behind it."""

    rid: bytes
    """ZeroMQ routing id: names the agent's session (an agent keeps its id across
    reconnections; a client or raw peer gets one per connection)."""
    key: str | None = None
    """The sender's z85 CURVE public key (None without CURVE)."""
    user: str | None = None
    role: str | None = None
    """The certificate's farm role; None without CURVE (loopback: every request allowed)."""


@dataclass
class JobRec:
    """A job in memory (the store holds the durable copy)."""

    spec: JobSpec
    seq: int
    state: str  # active | cancelled
    task_ids: list[str] = field(default_factory=list)
    done: int = 0
    predicted_finish_utc: float | None = None


@dataclass
class TaskRec:
    """A task in memory."""

    id: str
    job_id: str
    seq: int
    frame_start: int
    frame_end: int
    state: str
    failures: int = 0
    attempt_id: int | None = None
    reason: str = ""
    planned_resource: str | None = None
    planned_start_utc: float | None = None
    done_utc: float | None = None

    @property
    def frames(self) -> int:
        """Frames in the chunk."""
        return self.frame_end - self.frame_start + 1


@dataclass
class AttemptRec:
    """A running attempt: progress and recent log lines live only here."""

    id: int
    task_id: str
    job_id: str
    resource: str
    slot: int
    started_utc: float
    pool_job_id: str | None = None
    sent_mono: float = 0.0
    reported: bool = False
    progress: float = 0.0
    elapsed_s: float = 0.0
    overran: bool = False
    log: deque[str] = field(default_factory=lambda: deque(maxlen=40))


@dataclass
class NodeRec:
    """A registered agent."""

    id: str
    routing_id: bytes
    slots: int
    vram_gb: float
    speed: float
    gpus: list[dict[str, Any]]
    last_seen: float
    running: dict[int, int] = field(default_factory=dict)  # slot -> attempt id
    key: str | None = None
    """The CURVE key that registered this session (None without CURVE)."""


@dataclass
class PoolRec:
    """A compute pool and its attempts in flight."""

    config: PoolConfig
    backend: PoolBackend
    running: dict[int, int] = field(default_factory=dict)  # attempt id -> gpus


class Controller:
    """The farm controller; :meth:`serve` runs it until :meth:`stop`."""

    def __init__(self, db: Path, config: ControllerConfig | None = None,
                 backends: dict[str, PoolBackend] | None = None) -> None:
        self.config = config or ControllerConfig()
        self.store = FarmStore(db)
        self._ctx = zmq.Context()
        self._router = self._ctx.socket(zmq.ROUTER)
        self._router.linger = 0
        self._router.rcvhwm = self.config.peer_queue
        # replies and assignments queued per peer (above TURN_MESSAGES, so one turn's answers
        # all fit); beyond it ZeroMQ drops: a peer that never reads cannot grow the controller
        # without bound, and agents' work is reconciled by heartbeats
        self._router.sndhwm = 2 * TURN_MESSAGES
        self._router.setsockopt(zmq.MAXMSGSIZE, self.config.max_message_bytes)
        # an agent reconnecting under its own routing id (after a TCP drop) replaces its old
        # connection instead of being ignored: the same session, its attempts carry over; a
        # peer with another id is still a new session (a takeover, see _on_register)
        self._router.router_handover = 1
        self._auth = None
        self._identities: dict[str, tuple[str, str | None]] = {}
        self.curve = self.config.curve or not is_loopback(self.config.bind)
        if self.curve:
            if self.config.keys_dir is None:
                self._router.close()
                self._ctx.term()
                raise ValueError(f"{self.config.bind} is not loopback: CURVE keys are required "
                                 "(--keys-dir, see `stagectl keys generate`)")
            self._auth = server_keys(self._ctx, self._router, Path(self.config.keys_dir))
            self._identities = authorized_identities(Path(self.config.keys_dir))
        self.output_root = Path(self.config.output_root or Path(db).parent).resolve()
        self.counters: Counter[str] = Counter()
        """Refused or dropped input by kind (bad_frames, bad_message, forbidden, ...)."""
        self._router.bind(self.config.bind)
        self.endpoint = self._router.getsockopt_string(zmq.LAST_ENDPOINT)
        self._stopping = False
        self._out: list[tuple[bytes, dict[str, Any]]] = []
        self._t0 = time.monotonic()
        self.jobs: dict[str, JobRec] = {}
        self.tasks: dict[str, TaskRec] = {}
        self.attempts: dict[int, AttemptRec] = {}
        self.nodes: dict[str, NodeRec] = {}
        self.failures: dict[tuple[str, str], int] = {}
        self.pools: dict[str, PoolRec] = {}
        for pc in self.config.pools:
            backend = (backends or {}).get(pc.id) or open_backend(
                pc.backend, {"max_slots": pc.max_slots, **pc.options})
            self.pools[pc.id] = PoolRec(pc, backend)
        self._free: dict[tuple[str, int], None] = {}
        self._order: list[str] = []
        self._order_pos = 0
        self._order_dirty = True
        self._order_version = 0
        self._no_work: dict[str, int] = {}
        self._replan: str | None = "startup"
        self._last_plan = -1e9
        self._plan_future: Future[Any] | None = None
        self._executor = ThreadPoolExecutor(max_workers=1)
        self._plan_info: dict[str, Any] = {}
        self._last_tick = 0.0
        self._last_pool_poll = 0.0
        self.assignments_sent = 0
        try:
            self._load()
        except BaseException:
            self.close()  # sockets, pools, store: a failed start leaves the file as it was
            raise

    # ------------------------------------------------------------------ state

    def _load(self) -> None:
        invalid: list[tuple[str, str]] = []
        for row in self.store.jobs():
            try:
                raw = orjson.loads(row["spec"])
                state = row["state"]
                try:
                    spec = job_from_wire(raw, self.output_root)
                except JobFileError as exc:  # stored before today's checks: keep, never run
                    spec = unchecked_job(raw)
                    if state != "cancelled":
                        state = "cancelled"
                        invalid.append((spec.id, str(exc)))
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, OverflowError,
                    AttributeError) as exc:
                # sqlite3.DatabaseError: the CLI reports it as one line naming the file
                raise sqlite3.DatabaseError(
                    f"stored job {row['id']!r} cannot be read ({type(exc).__name__}: "
                    f"{str(exc)[:120]})") from None
            self.jobs[row["id"]] = JobRec(spec, row["seq"], state)
        for row in self.store.tasks():
            t = TaskRec(row["id"], row["job_id"], row["seq"], row["frame_start"],
                        row["frame_end"], row["state"], row["failures"], row["attempt_id"],
                        row["reason"], row["planned_resource"], row["planned_start_utc"],
                        row["done_utc"])
            self.tasks[t.id] = t
            job = self.jobs.get(t.job_id)
            if job is None:
                raise sqlite3.DatabaseError(f"stored task {t.id!r} names job {t.job_id!r}, "
                                            "which is not stored")
            job.task_ids.append(t.id)
            job.done += t.state == "DONE"
        now = time.monotonic()
        for row in self.store.attempts("RUNNING"):
            a = AttemptRec(row["id"], row["task_id"], row["job_id"], row["resource"], row["slot"],
                           row["started_utc"], row["pool_job_id"], sent_mono=now)
            self.attempts[a.id] = a
            if a.resource in self.pools and a.pool_job_id is not None:
                self.pools[a.resource].running[a.id] = self.jobs[a.job_id].spec.gpus
        self.failures = self.store.failures()
        if invalid:
            # cancelled as `farm cancel` does: its RUNNING attempts end CANCELLED (a pool job is
            # cancelled in its pool; no node is registered yet to tell) and its tasks not DONE
            # become BLOCKED "job cancelled"
            replan = self._replan
            with self.store.transaction():
                for job_id, why in invalid:
                    self.store.event("job_invalid", job_id=job_id,
                                     detail=f"cancelled at startup: {why}")
                    self._cancel_job(job_id)
            self._replan = replan

    def _job_blocker(self, job: JobRec) -> str | None:
        """Why a job's tasks cannot run now (None: they can)."""
        if job.state == "cancelled":
            return "job cancelled"
        for dep_id in job.spec.after:
            dep = self.jobs.get(dep_id)
            if dep is None:
                return f"waits for unknown job {dep_id}"
            if dep.state == "cancelled":
                return f"job {dep_id} it waits for was cancelled"
            if any(self.tasks[t].state == "FAILED" for t in dep.task_ids):
                return f"job {dep_id} it waits for has failed tasks"
            if dep.done < len(dep.task_ids):
                return "waiting"
        return None

    def _refresh_order(self) -> None:
        """Rebuild the ready order and move tasks in and out of BLOCKED."""
        blockers = {jid: self._job_blocker(j) for jid, j in self.jobs.items()}
        changed = []
        ready = []
        for t in self.tasks.values():
            why = blockers[t.job_id]
            if t.state in RUNNABLE and why not in (None, "waiting"):
                t.state, t.reason = "BLOCKED", str(why)
                changed.append(t)
            elif t.state == "BLOCKED" and why in (None, "waiting") and \
                    not t.reason.startswith("no eligible"):
                t.state, t.reason = "QUEUED", ""
                changed.append(t)
            if t.state in RUNNABLE and why is None:
                ready.append(t)
        if changed:
            self.store.update_tasks([(t.state, t.reason, t.id) for t in changed],
                                    ("state", "reason"))
        inf = math.inf
        ready.sort(key=lambda t: (
            t.planned_start_utc if t.planned_start_utc is not None else inf,
            -self.jobs[t.job_id].spec.priority,
            self.jobs[t.job_id].spec.deadline_utc or inf,
            self.jobs[t.job_id].seq, t.seq))
        self._order = [t.id for t in ready]
        self._order_pos = 0
        self._order_dirty = False
        self._order_version += 1

    def _requeue(self, task: TaskRec, reason: str) -> None:
        task.state, task.attempt_id, task.reason = "QUEUED", None, reason
        task.planned_resource = task.planned_start_utc = None
        self.store.update_task(task.id, state="QUEUED", attempt_id=None, reason=reason,
                               planned_resource=None, planned_start_utc=None)
        self._order_dirty = True

    def _end_attempt(self, a: AttemptRec, state: str, **kw: Any) -> None:
        self.attempts.pop(a.id, None)
        node = self.nodes.get(a.resource)
        if node is not None and node.running.get(a.slot) == a.id:
            del node.running[a.slot]
            self._free[(node.id, a.slot)] = None
        pool = self.pools.get(a.resource)
        if pool is not None:
            pool.running.pop(a.id, None)
        self.store.end_attempt(a.id, state, log_tail="\n".join(a.log), **kw)

    def _lose(self, a: AttemptRec, why: str) -> None:
        """An attempt whose runner vanished: requeue its task (not counted as a failure).

        After ``lost_limit`` lost attempts the task fails instead, so a chunk that crashes
        every agent it lands on cannot loop forever.
        """
        self._end_attempt(a, "LOST", error=why)
        task = self.tasks[a.task_id]
        if task.attempt_id == a.id and task.state == "RUNNING":
            lost = self.store.lost_attempts(task.id)
            if lost >= self.config.lost_limit:
                reason = (f"lost {lost} times (its agent died or vanished each time); "
                          f"last: {why}")
                task.state, task.attempt_id, task.reason = "FAILED", None, reason
                self.store.update_task(task.id, state="FAILED", attempt_id=None, reason=reason)
                self.store.event("task_failed", job_id=a.job_id, task_id=a.task_id,
                                 resource=a.resource, detail=reason)
                self._order_dirty = True
                return
            self._requeue(task, why)
            self.store.event("task_requeued", job_id=a.job_id, task_id=a.task_id,
                             resource=a.resource, detail=why)
            if a.resource in self.pools:
                self._replan = self._replan or "pool task lost"

    def _fail(self, a: AttemptRec, error: str, exit_code: int | None, cost: float = 0.0) -> None:
        self._end_attempt(a, "FAILED", error=error, exit_code=exit_code, cost_cny=cost)
        task = self.tasks[a.task_id]
        job = self.jobs[a.job_id]
        task.failures += 1
        count = self.store.add_failure(a.job_id, a.resource)
        self.failures[(a.job_id, a.resource)] = count
        self.store.event("task_failed", job_id=a.job_id, task_id=a.task_id, resource=a.resource,
                         detail=f"attempt {a.id}: {error}")
        if count == self.config.blocklist_after:
            self.store.event("node_blocklisted", job_id=a.job_id, resource=a.resource,
                             detail=f"{count} failures of this job there")
            self._replan = self._replan or "node blocklisted"
        if task.failures >= job.spec.max_attempts:
            task.state, task.attempt_id, task.reason = "FAILED", None, error
            self.store.update_task(task.id, state="FAILED", attempt_id=None, reason=error,
                                   failures=task.failures)
            self._order_dirty = True
        else:
            self.store.update_task(task.id, failures=task.failures)
            self._requeue(task, f"retry after: {error}")
            if a.resource in self.pools:  # a pool runs only planned tasks: plan it again
                self._replan = self._replan or "pool task failed"

    def _complete(self, a: AttemptRec, cost: float = 0.0, exit_code: int | None = 0) -> None:
        self._end_attempt(a, "DONE", exit_code=exit_code, cost_cny=cost)
        task = self.tasks[a.task_id]
        now = time.time()
        task.state, task.reason, task.done_utc = "DONE", "", now
        self.store.update_task(task.id, state="DONE", reason="", done_utc=now)
        job = self.jobs[a.job_id]
        job.done += 1
        if job.done == len(job.task_ids):
            self.store.event("job_done", job_id=job.spec.id)
            if any(job.spec.id in j.spec.after for j in self.jobs.values()):
                self._order_dirty = True

    # ------------------------------------------------------------------ loop

    def stop(self) -> None:
        """Ask :meth:`serve` to return (safe from a signal handler)."""
        self._stopping = True

    def serve(self, until: Callable[[], bool] | None = None) -> None:
        """Run until :meth:`stop` (or ``until()`` is true); closes everything on the way out."""
        try:
            while not self._stopping and not (until is not None and until()):
                self.turn(50)
        finally:
            self.close()

    def turn(self, timeout_ms: int) -> None:
        """One loop turn: receive, handle, dispatch and commit, then send."""
        incoming: list[tuple[Peer, list[bytes]]] = []
        if self._router.poll(timeout_ms):
            size = 0
            while len(incoming) < TURN_MESSAGES and size < TURN_BYTES:
                try:
                    frames = self._router.recv_multipart(zmq.NOBLOCK, copy=False)
                except zmq.Again:
                    break
                parts = [f.bytes for f in frames[1:]]
                size += sum(len(b) for b in parts)
                incoming.append((self._peer(frames), parts))
        with self.store.transaction():
            per_peer: Counter[bytes] = Counter()
            for peer, parts in incoming:
                per_peer[peer.rid] += 1
                self._receive(peer, parts,
                              busy=per_peer[peer.rid] > self.config.peer_messages_per_turn)
            now = time.monotonic()
            if now - self._last_tick >= 0.2:
                self._last_tick = now
                self._tick(now)
            self._dispatch()
        out, self._out = self._out, []
        for rid, msg in out:
            try:
                self._router.send_multipart([rid, p.encode(msg)], zmq.NOBLOCK)
            except zmq.Again:
                pass  # peer's queue full: reconciliation resends what matters
        self._maybe_plan()

    def close(self) -> None:
        """Close sockets, the planner thread, local pools and the store."""
        self._executor.shutdown(wait=True, cancel_futures=True)
        for pool in self.pools.values():
            closer = getattr(pool.backend, "close", None)
            if closer is not None and pool.config.backend == "local":
                closer()
        self._router.close(0)
        if self._auth is not None:
            self._auth.stop()
        self._ctx.term()
        self.store.close()

    # ------------------------------------------------------------------ messages

    def _send(self, rid: bytes, msg: dict[str, Any]) -> None:
        self._out.append((rid, msg))

    def _peer(self, frames: list[zmq.Frame]) -> Peer:
        rid = frames[0].bytes
        if self._auth is None:
            return Peer(rid)
        key = None
        with contextlib.suppress(zmq.ZMQError, KeyError):
            key = frames[-1].get("User-Id")
        user, role = self._identities.get(str(key), (None, None)) if key else (None, None)
        return Peer(rid, None if key is None else str(key), user, roles.role_of(role))

    def _reject(self, rid: bytes, req: Any, code: str, error: str, **extra: Any) -> None:
        """Answer a message the controller will not act on, and count it."""
        self.counters[code] += 1
        self._send(rid, {"type": p.REPLY, "req": req, "ok": False, "code": code,
                         "error": error, **extra})

    def _receive(self, peer: Peer, parts: list[bytes], busy: bool = False) -> None:
        """Decode, authorise and handle one message; every refusal is a structured reply."""
        if len(parts) != 1:
            self._reject(peer.rid, None, "bad_frames",
                         f"expected 1 frame after the routing id, got {len(parts)}: send one "
                         "JSON object per message")
            return
        try:
            msg = p.decode(parts[0], self.config.max_message_bytes)
        except p.ProtocolError as exc:
            self._reject(peer.rid, None, "bad_message", f"{exc}"[:300])
            return
        req = msg.get("req")
        if not (req is None or isinstance(req, int) and not isinstance(req, bool)
                or isinstance(req, str) and len(req) <= 64):
            req = None
        kind = msg["type"]
        if busy:
            self._reject(peer.rid, req, "busy",
                         f"more than {self.config.peer_messages_per_turn} messages from this "
                         "peer in one turn: send fewer requests at once and retry")
            return
        allowed = roles.allowed_roles(kind)
        if not allowed:
            self._reject(peer.rid, req, "unknown_type", f"unknown message type {kind[:64]!r}")
            return
        if not roles.may(peer.role, kind):
            error = (f"forbidden: role {peer.role} may not send {kind} "
                     f"(allowed: {', '.join(allowed)})")
            self.counters["forbidden"] += 1
            log.warning("refused %s from %s (role %s)", kind, peer.user, peer.role)
            reply = {"type": p.REFUSE if kind == p.REGISTER else p.REPLY, "req": req,
                     "ok": False, "code": "forbidden", "error": error, "reason": error,
                     "role": peer.role, "allowed_roles": list(allowed)}
            self._send(peer.rid, reply)
            return
        self._handle(peer, msg, req)

    def _handle(self, peer: Peer, msg: dict[str, Any], req: Any) -> None:
        kind = msg["type"]
        try:
            if kind in p.CLIENT_REQUESTS:
                reply = self._client(kind, msg)
                self._send(peer.rid, {"type": p.REPLY, "req": req, "ok": True, **reply})
                return
            handler = {p.REGISTER: self._on_register, p.HEARTBEAT: self._on_heartbeat,
                       p.PROGRESS: self._on_progress, p.LOG: self._on_log,
                       p.FINISHED: self._on_finished, p.BYE: self._on_bye}[kind]
            handler(peer, msg)
        except (_Refused, lim.FieldError) as exc:
            fields = exc.to_wire()
            self.counters[fields["code"]] += 1
            if kind == p.REGISTER:
                self._send(peer.rid, {"type": p.REFUSE, "reason": str(exc), **fields})
            else:
                self._send(peer.rid, {"type": p.REPLY, "req": req, "ok": False,
                                      "error": str(exc), **fields})
        except Exception as exc:  # a bug must not stop the farm: answer, count, log
            log.exception("%s from %r failed", kind, peer.rid)
            self._reject(peer.rid, req, "internal", f"{kind} failed in the controller: {exc!r}"
                         [:300] + " (a bug: the controller log has the traceback)")

    def _holds(self, peer: Peer, a: AttemptRec) -> bool:
        """Whether ``peer``'s session is the agent session an attempt was assigned to."""
        node = self.nodes.get(a.resource)
        return node is not None and node.routing_id == peer.rid \
            and node.running.get(a.slot) == a.id

    def _foreign(self, peer: Peer, kind: str, aid: int) -> None:
        self.counters["foreign_report"] += 1
        if self.counters["foreign_report"] <= 20 or self.counters["foreign_report"] % 1000 == 0:
            log.warning("ignored %s for attempt %d from a session that does not hold it "
                        "(%d so far)", kind, aid, self.counters["foreign_report"])

    def _on_register(self, peer: Peer, msg: dict[str, Any]) -> None:
        reg = lim.registration(msg)
        node_id = reg.node_id
        if node_id in self.pools:
            raise _Refused(f"node_id {node_id!r} is a pool id; give the agent another --node-id")
        if peer.user is not None and peer.user != node_id:
            raise _Refused(f"forbidden: certificate {peer.user!r} may register only as node "
                           f"{peer.user!r}, not {node_id!r} (run the agent with --node-id "
                           f"{peer.user}, or give it a key of its own)", code="forbidden")
        old = self.nodes.pop(node_id, None)
        takeover = old is not None and old.routing_id != peer.rid
        if old is not None:
            for slot in range(old.slots):
                self._free.pop((node_id, slot), None)
        node = NodeRec(node_id, peer.rid, reg.slots, reg.vram_gb, reg.speed, reg.gpus,
                       time.monotonic(), key=peer.key)
        self.nodes[node_id] = node
        mine = [a for a in self.attempts.values() if a.resource == node_id]
        if takeover:
            # A new connection for a live node: nothing of the old session carries over, so
            # a peer that claims a node's name cannot report that node's attempts.
            why = (f"agent {node_id} registered again from a new connection; attempts of its "
                   "previous session do not carry over")
            self.counters["session_replaced"] += 1
            self.store.event("node_session_replaced", resource=node_id, detail=why)
            for a in mine:
                self._lose(a, why)
            mine = []
        else:
            by_id = {a.id: a for a in mine}
            for fin in reg.finished:
                if fin.attempt in by_id:
                    self._ack_finished(peer, by_id.pop(fin.attempt), fin)
                else:
                    self._send(peer.rid, {"type": p.ACK, "attempt": fin.attempt})
            mine = list(by_id.values())
        for a in mine:
            if a.id in reg.running and self.tasks[a.task_id].attempt_id == a.id \
                    and a.slot < reg.slots and a.slot not in node.running:
                node.running[a.slot] = a.id
                a.reported = True
            else:
                self._lose(a, f"agent {node_id} re-registered without attempt {a.id}")
        for aid in reg.running:
            if aid not in node.running.values():
                self._send(peer.rid, {"type": p.CANCEL, "attempt": aid})
        for slot in range(reg.slots):
            if slot not in node.running:
                self._free[(node_id, slot)] = None
        self.store.event("node_up", resource=node_id,
                         detail=f"{reg.slots} slots, {node.vram_gb:g} GB, speed {node.speed:g}")
        self._send(peer.rid, {"type": p.WELCOME, "heartbeat_s": self.config.heartbeat_s,
                              "version": p.PROTOCOL_VERSION})
        self._replan = self._replan or "node up"

    def _on_heartbeat(self, peer: Peer, msg: dict[str, Any]) -> None:
        node = self.nodes.get(lim.node_id(msg))
        running = lim.attempt_ids(msg, "running", lim.MAX_SLOTS)
        if node is None or node.routing_id != peer.rid:
            if node is not None:  # another connection speaks for this node
                self.counters["foreign_heartbeat"] += 1
            self._send(peer.rid, {"type": p.REREGISTER})
            return
        node.last_seen = time.monotonic()
        rid = peer.rid
        now = time.monotonic()
        for aid in list(node.running.values()):
            a = self.attempts[aid]
            if aid in running:
                a.reported = True
            elif now - a.sent_mono > self.config.assign_grace_s:
                self._lose(a, f"agent {node.id} is not running attempt {aid}")
        current = set(node.running.values())
        for aid in running - current:
            self._send(rid, {"type": p.CANCEL, "attempt": aid})

    def _on_progress(self, peer: Peer, msg: dict[str, Any]) -> None:
        aid = lim.attempt_id(msg)
        fraction = lim.number(msg, "fraction", -math.inf, math.inf)
        a = self.attempts.get(aid)
        if a is None:
            return
        if not self._holds(peer, a):
            self._foreign(peer, p.PROGRESS, aid)
            return
        a.progress = min(max(fraction, 0.0), 1.0)
        a.reported = True

    def _on_log(self, peer: Peer, msg: dict[str, Any]) -> None:
        aid = lim.attempt_id(msg)
        lines = lim.lines(msg)
        a = self.attempts.get(aid)
        if a is None:
            return
        if not self._holds(peer, a):
            self._foreign(peer, p.LOG, aid)
            return
        a.log.extend(lines)

    def _on_finished(self, peer: Peer, msg: dict[str, Any]) -> None:
        fin = lim.finished(msg)
        a = self.attempts.get(fin.attempt)
        if a is None:  # already settled (a re-sent result, or after a restart)
            self.counters["stale_completion"] += 1
            self._send(peer.rid, {"type": p.ACK, "attempt": fin.attempt})
            return
        if not self._holds(peer, a):
            self._foreign(peer, p.FINISHED, fin.attempt)
            return
        self.nodes[a.resource].last_seen = time.monotonic()
        self._ack_finished(peer, a, fin)

    def _ack_finished(self, peer: Peer, a: AttemptRec, fin: lim.Finished) -> None:
        """Settle an attempt its own session reported ended (the ack leaves after commit)."""
        self._send(peer.rid, {"type": p.ACK, "attempt": a.id})
        a.log.extend(fin.lines)
        task = self.tasks[a.task_id]
        if task.attempt_id != a.id or task.state != "RUNNING":
            self._end_attempt(a, "CANCELLED", error="finished after it was superseded")
            return
        if not fin.ok:
            self._fail(a, fin.error or "failed", fin.exit_code)
            return
        if self._settle_success(a, "the agent", fin.exit_code) is not None:
            self.counters["outputs_missing"] += 1

    def _on_bye(self, peer: Peer, msg: dict[str, Any]) -> None:
        node = self.nodes.get(lim.node_id(msg))
        if node is not None and node.routing_id == peer.rid:
            self._node_lost(node, "agent stopped")

    def _node_lost(self, node: NodeRec, why: str) -> None:
        self.nodes.pop(node.id, None)
        for slot in range(node.slots):
            self._free.pop((node.id, slot), None)
        for a in [a for a in self.attempts.values() if a.resource == node.id]:
            self._lose(a, f"node {node.id} lost: {why}")
        self.store.event("node_lost", resource=node.id, detail=why)
        self._replan = "node lost"

    # ------------------------------------------------------------------ periodic

    def _tick(self, now: float) -> None:
        for node in list(self.nodes.values()):
            if now - node.last_seen > self.config.node_timeout_s:
                self._node_lost(node, f"no heartbeat for {now - node.last_seen:.1f} s")
        if now - self._t0 > self.config.node_timeout_s:
            # after a restart: attempts on nodes that never came back
            for a in list(self.attempts.values()):
                if a.resource not in self.nodes and a.resource not in self.pools:
                    self._lose(a, f"node {a.resource} did not come back")
                elif a.resource in self.pools and a.pool_job_id is None:
                    self._lose(a, "pool submission not recorded")
        for a in self.attempts.values():
            if a.overran or a.resource in self.pools:
                continue
            live = self.nodes.get(a.resource)
            if live is None:
                continue
            expected = self._duration_s(self.tasks[a.task_id], live.speed)
            a.elapsed_s = time.time() - a.started_utc
            if a.elapsed_s > max(self.config.overrun_factor * expected, expected + 5):
                a.overran = True
                self.store.event("task_overran", job_id=a.job_id, task_id=a.task_id,
                                 resource=a.resource,
                                 detail=f"{a.elapsed_s:.0f} s against {expected:.0f} s")
                self._replan = self._replan or "task overran"
        if self.pools and now - self._last_pool_poll >= self.config.pool_poll_s:
            self._last_pool_poll = now
            self._poll_pools()
        if self._order_dirty:
            self._refresh_order()

    def _poll_pools(self) -> None:
        for pool in self.pools.values():
            ids = {self.attempts[aid].pool_job_id: aid for aid in pool.running
                   if aid in self.attempts and self.attempts[aid].pool_job_id}
            if not ids:
                continue
            try:
                states = pool.backend.poll([str(k) for k in ids])
            except Exception as exc:  # the batch system is down: keep waiting
                self.store.event("pool_poll_failed", resource=pool.config.id, detail=repr(exc))
                continue
            for job_id, st in states.items():
                a = self.attempts.get(ids[job_id])
                if a is None:
                    continue
                a.elapsed_s = st.elapsed_s
                if st.state == "RUNNING":
                    a.reported = True
                    a.progress = max(a.progress, 0.01)
                if st.state not in TERMINAL:
                    continue
                gpus = self.jobs[a.job_id].spec.gpus
                cost = cost_cny(st.elapsed_s, gpus, pool.config.cost_per_gpu_hour_cny)
                task = self.tasks[a.task_id]
                if task.attempt_id != a.id:
                    self._end_attempt(a, "CANCELLED", cost_cny=cost, exit_code=st.exit_code)
                elif st.state == "COMPLETED":
                    self._settle_success(a, f"pool job {job_id}", st.exit_code, cost)
                else:
                    why = f"pool job {job_id} {st.state.lower()}"
                    self._fail(a, f"{why}: {st.reason}" if st.reason else why, st.exit_code,
                               cost)

    def _settle_success(self, a: AttemptRec, source: str, exit_code: int | None,
                        cost: float = 0.0) -> str | None:
        """Settle an attempt ``source`` reported successful: DONE only with its outputs.

        Returns:
            None when the attempt completed; else the declared output that is missing or
            empty (the attempt failed, counted against the task like any failure).
        """
        missing = self._missing_outputs(self.tasks[a.task_id])
        if missing is not None:
            self._fail(a, f"{source} reported success but declared output {missing} is "
                          "missing or empty", exit_code, cost)
            return missing
        self._complete(a, cost, exit_code)
        return None

    def _missing_outputs(self, task: TaskRec) -> str | None:
        spec = self.jobs[task.job_id].spec
        for path in declared_outputs(spec.output, task.frame_start, task.frame_end):
            f = Path(path)
            if not f.is_file() or f.stat().st_size == 0:
                return path
        return None

    # ------------------------------------------------------------------ dispatch

    def _duration_s(self, task: TaskRec, speed: float) -> float:
        return self.jobs[task.job_id].spec.estimate_s * task.frames / speed

    def _eligible(self, task: TaskRec, resource: str, vram_gb: float) -> bool:
        spec = self.jobs[task.job_id].spec
        return spec.vram_gb <= vram_gb and \
            self.failures.get((task.job_id, resource), 0) < self.config.blocklist_after

    def _dispatch(self) -> None:
        if self._order_dirty:
            self._refresh_order()
        if self._free and self._order_pos < len(self._order):
            for node_id, slot in list(self._free):
                if self._no_work.get(node_id) == self._order_version:
                    continue
                node = self.nodes[node_id]
                task = self._pick(node)
                if task is None:
                    self._no_work[node_id] = self._order_version
                    continue
                self._assign_node(task, node, slot)
        if self.pools and self._order_pos < len(self._order):
            self._dispatch_pools()

    def _pick(self, node: NodeRec) -> TaskRec | None:
        order, tasks = self._order, self.tasks
        while self._order_pos < len(order) and tasks[order[self._order_pos]].state not in RUNNABLE:
            self._order_pos += 1
        first: TaskRec | None = None
        end = min(len(order), self._order_pos + LOOKAHEAD)
        i = self._order_pos
        while i < len(order):
            t = tasks[order[i]]
            if t.state in RUNNABLE and self._eligible(t, node.id, node.vram_gb):
                if t.planned_resource == node.id or t.planned_resource is None:
                    return t
                if first is None:
                    first = t
            if i >= end and first is not None:
                break
            i += 1
        return first

    def _assign_node(self, task: TaskRec, node: NodeRec, slot: int) -> None:
        spec = self.jobs[task.job_id].spec
        now = time.time()
        aid = self.store.new_attempt(task.id, task.job_id, node.id, slot, 1, now)
        task.state, task.attempt_id, task.reason = "RUNNING", aid, ""
        self.store.update_task(task.id, state="RUNNING", attempt_id=aid, reason="")
        self.attempts[aid] = AttemptRec(aid, task.id, task.job_id, node.id, slot, now,
                                        sent_mono=time.monotonic())
        node.running[slot] = aid
        del self._free[(node.id, slot)]
        self._send(node.routing_id, {
            "type": p.ASSIGN, "attempt": aid, "task": task.id, "job": task.job_id,
            "slot": slot, "argv": list(spec.argv), "frame_start": task.frame_start,
            "frame_end": task.frame_end, "output": spec.output})
        self.assignments_sent += 1

    def _dispatch_pools(self) -> None:
        now = time.time()
        for i in range(self._order_pos, len(self._order)):
            task = self.tasks[self._order[i]]
            if task.state not in RUNNABLE or task.planned_resource not in self.pools:
                continue
            pool = self.pools[task.planned_resource]
            spec = self.jobs[task.job_id].spec
            if sum(pool.running.values()) + spec.gpus > pool.config.max_slots:
                continue
            if (task.planned_start_utc or now) > now + self.config.pool_poll_s:
                continue
            if not self._eligible(task, pool.config.id, pool.config.vram_gb):
                continue
            self._submit_pool(task, pool, spec, now)

    def _submit_pool(self, task: TaskRec, pool: PoolRec, spec: JobSpec, now: float) -> None:
        aid = self.store.new_attempt(task.id, task.job_id, pool.config.id, 0, spec.gpus, now)
        argv = [sys.executable, "-m", "scheduler.dispatch.runner", "--task", task.id,
                "--attempt", str(aid), "--frame-start", str(task.frame_start),
                "--frame-end", str(task.frame_end)]
        if spec.output is not None:
            argv += ["--output", spec.output]
        argv += ["--", *spec.argv]
        workdir = Path(pool.config.workdir).resolve()
        deadline = (datetime.fromtimestamp(spec.deadline_utc, UTC)
                    if spec.deadline_utc is not None else None)
        try:
            pool_job_id = pool.backend.submit(f"stagectl-{task.id}", argv, gpus=spec.gpus,
                                              after=[], deadline_utc=deadline, workdir=workdir)
        except Exception as exc:
            self.store.end_attempt(aid, "FAILED", error=f"submit failed: {exc!r}")
            self.store.event("pool_submit_failed", job_id=task.job_id, task_id=task.id,
                             resource=pool.config.id, detail=repr(exc))
            task.planned_resource = None  # let a node take it
            return
        self.store.set_pool_job(aid, pool_job_id)
        task.state, task.attempt_id = "RUNNING", aid
        self.store.update_task(task.id, state="RUNNING", attempt_id=aid, reason="")
        self.attempts[aid] = AttemptRec(aid, task.id, task.job_id, pool.config.id, 0, now,
                                        pool_job_id, sent_mono=time.monotonic())
        pool.running[aid] = spec.gpus
        self.store.event("pool_submitted", job_id=task.job_id, task_id=task.id,
                         resource=pool.config.id, detail=f"pool job {pool_job_id}")

    # ------------------------------------------------------------------ planning

    def _maybe_plan(self) -> None:
        fut = self._plan_future
        if fut is not None and fut.done():
            self._plan_future = None
            try:
                plan, t_plan, info = fut.result()
            except Exception as exc:  # PlanningError, or a bug: never stops dispatch
                with self.store.transaction():
                    self.store.event("plan_failed", detail=repr(exc)[:500])
            else:
                with self.store.transaction():
                    self._apply_plan(plan, t_plan, info)
        if self._replan is None or self._plan_future is not None:
            return
        if time.monotonic() - self._last_plan < self.config.replan_min_interval_s:
            return
        farm, t_plan, info = self._snapshot()
        reason, self._replan = self._replan, None
        if farm is None:
            return
        self._last_plan = time.monotonic()
        info["reason"] = reason
        limit = self.config.plan_time_limit_s

        def work() -> tuple[Any, float, dict[str, Any]]:
            return plan_farm(farm, "cost", time_limit_s=limit, num_workers=1), t_plan, info

        self._plan_future = self._executor.submit(work)

    def _snapshot(self) -> tuple[Farm | None, float, dict[str, Any]]:
        """The planning problem now: live nodes, pools, runnable tasks (capped, whole jobs)."""
        now = time.time()
        nodes, pools, aliases = self._capacity_now(now)
        if not nodes and not pools:
            return None, now, {}
        resources = [(n.id, n.vram_gb, n.speed) for n in nodes]
        resources += [(q.id, q.vram_gb, q.speed) for q in pools]
        jobs: list[Job] = []
        included: set[str] = set()
        partial: set[str] = set()
        count = 0
        ordered = sorted(self.jobs.values(), key=lambda j: (
            -j.spec.priority, j.spec.deadline_utc or math.inf, j.seq))
        for job in ordered:
            if job.state != "active":
                continue
            if self._job_blocker(job) not in (None, "waiting"):
                continue
            pending = [self.tasks[t] for t in job.task_ids if self.tasks[t].state in RUNNABLE]
            room = self.config.plan_max_tasks - count
            if not pending or room <= 0:
                continue
            whole = len(pending) <= room
            pending = pending[:room]  # the first chunks of a big job; the rest follow in order
            after = [d for d in job.spec.after if d in included]
            if any(d in partial or (d not in included and self._unfinished(d))
                   for d in job.spec.after):
                continue  # waits for a job left out of this plan
            dep_tasks = tuple(t.id for d in after for t in jobs_by_id(jobs, d).tasks)
            tasks = []
            for t in pending:
                work = max(self._duration_s(t, 1.0), 1.0)
                allowed = {rid: math.ceil(work / speed) for rid, vram, speed in resources
                           if self._eligible(t, aliases.get(rid, rid), vram)}
                if not allowed:
                    continue
                tasks.append(Task(t.id, work, allowed, dep_tasks))
            if not tasks:
                continue
            deadline = None if job.spec.deadline_utc is None else \
                max(int(job.spec.deadline_utc - now), 0)
            jobs.append(Job(job.spec.id, tuple(tasks), job.spec.priority, deadline, 0.0))
            if whole and len(tasks) == len(pending):
                included.add(job.spec.id)
            else:
                partial.add(job.spec.id)
            count += len(tasks)
        if not jobs:
            return None, now, {}
        farm = Farm(nodes, pools, tuple(jobs), self.config.late_cost_cny_per_hour)
        return farm, now, {"tasks": count, "aliases": aliases}

    def _capacity_now(self, now: float) -> tuple[tuple[Node, ...], tuple[Pool, ...],
                                                 dict[str, str]]:
        """Nodes and pools as the planner should see them now, with running work in place.

        Slots busy with a running attempt become available only when that attempt is
        expected to end (its estimate on that resource minus the time it has run, at least
        BUSY_MIN_S for one that has overrun, rounded up to BUSY_BUCKET_S so that slots
        freeing at about the same time share one planning resource). Such slots are planned
        as extra resources named ``<id>~<seconds>``; ``aliases`` maps them back.
        """
        nodes: list[Node] = []
        pools: list[Pool] = []
        aliases: dict[str, str] = {}
        taken = set(self.nodes) | set(self.pools)

        def alias_of(rid: str, left: int) -> str:
            alias = f"{rid}~{left}"
            while alias in taken:  # a real resource already has that name
                alias += "~"
            taken.add(alias)
            aliases[alias] = rid
            return alias

        def busy_until(gpus_by_attempt: list[tuple[int, int]], speed: float) -> dict[int, int]:
            """Seconds until each busy slot frees (bucketed) -> how many slots free then."""
            busy: dict[int, int] = {}
            for aid, gpus in gpus_by_attempt:
                a = self.attempts.get(aid)
                left = 0
                if a is not None:
                    expected = self._duration_s(self.tasks[a.task_id], speed)
                    ran = max(now - a.started_utc, a.elapsed_s)
                    left = math.ceil(max(expected - ran, BUSY_MIN_S) / BUSY_BUCKET_S) \
                        * BUSY_BUCKET_S
                busy[left] = busy.get(left, 0) + gpus
            return busy

        for n in self.nodes.values():
            busy = busy_until([(aid, 1) for aid in n.running.values()], n.speed)
            free = n.slots - sum(busy.values())
            if free > 0:
                nodes.append(Node(n.id, free, n.vram_gb, n.speed))
            for left, count in sorted(busy.items()):
                nodes.append(Node(alias_of(n.id, left), count, n.vram_gb, n.speed,
                                  ((left, UNBOUNDED_S),)))
        for pc in self.pools.values():
            cfg = pc.config
            busy = busy_until(list(pc.running.items()), cfg.speed)
            free = cfg.max_slots - sum(busy.values())
            if free > 0:
                pools.append(Pool(cfg.id, free, cfg.vram_gb, cfg.speed,
                                  cfg.cost_per_gpu_hour_cny, cfg.startup_s))
            for left, count in sorted(busy.items()):
                pools.append(Pool(alias_of(cfg.id, left), count, cfg.vram_gb, cfg.speed,
                                  cfg.cost_per_gpu_hour_cny, max(cfg.startup_s, left)))
        return tuple(nodes), tuple(pools), aliases

    def _unfinished(self, job_id: str) -> bool:
        dep = self.jobs[job_id]
        return dep.done < len(dep.task_ids) and any(
            self.tasks[t].state in RUNNABLE for t in dep.task_ids)

    def _apply_plan(self, plan: Any, t_plan: float, info: dict[str, Any]) -> None:
        rows = []
        planned: set[str] = set()
        aliases: dict[str, str] = info.pop("aliases", {})
        real = {a.task: aliases.get(a.resource, a.resource) for a in plan.assignments}
        for a in plan.assignments:
            t = self.tasks.get(a.task)
            if t is None or t.state not in RUNNABLE:
                continue
            resource = real[a.task]
            t.state, t.planned_resource = "PLANNED", resource
            t.planned_start_utc = t_plan + a.start_s
            planned.add(t.id)
            rows.append(("PLANNED", resource, t.planned_start_utc, t.id))
        for t in self.tasks.values():
            if t.state == "PLANNED" and t.id not in planned:
                t.state, t.planned_resource, t.planned_start_utc = "QUEUED", None, None
                rows.append(("QUEUED", None, None, t.id))
        self.store.update_tasks(rows, ("state", "planned_resource", "planned_start_utc"))
        for jf in plan.jobs:
            if jf.id in self.jobs:
                self.jobs[jf.id].predicted_finish_utc = t_plan + jf.finish_s
        self._plan_info = {**info, "status": plan.status, "objective": plan.objective,
                           "cost_cny": plan.cost_cny, "at_utc": t_plan,
                           "solve_seconds": round(plan.solve_seconds, 3),
                           "pool_tasks": {task: rid for task, rid in real.items()
                                          if rid in self.pools}}
        self.store.event("planned", detail=f"{info.get('reason')}: {len(rows)} tasks, "
                         f"status {plan.status}, pool cost {plan.cost_cny:.2f} CNY")
        self._order_dirty = True

    # ------------------------------------------------------------------ client requests

    def _client(self, kind: str, msg: dict[str, Any]) -> dict[str, Any]:
        if kind == "ping":
            return {"endpoint": self.endpoint, "curve": self.curve,
                    "counters": dict(self.counters)}
        if kind == "submit":
            jobs = msg.get("jobs")
            if not isinstance(jobs, list) or not 1 <= len(jobs) <= lim.MAX_JOBS_PER_SUBMIT:
                raise lim.FieldError("jobs", jobs,
                                     f"a list of 1 to {lim.MAX_JOBS_PER_SUBMIT} jobs")
            return self._submit(jobs)
        if kind == "status":
            return {"jobs": self._job_status(), "plan": {
                k: v for k, v in self._plan_info.items() if k != "pool_tasks"}}
        if kind == "nodes":
            return {"nodes": self._node_status()}
        if kind == "cancel_job":
            return self._cancel_job(lim.text(msg, "job", 64))
        if kind == "retry_job":
            return self._retry_job(lim.text(msg, "job", 64))
        if kind == "cost":
            return self._cost()
        if kind == "events":
            return {"events": self.store.events(
                lim.integer(msg, "limit", 1, lim.MAX_EVENTS, default=50))}
        raise _Refused(f"unknown request {kind!r}", code="unknown_type")

    def _submit(self, raw_jobs: list[dict[str, Any]]) -> dict[str, Any]:
        specs = []
        for i, raw in enumerate(raw_jobs):
            try:
                spec = job_from_wire(raw, self.output_root)
            except JobFileError as exc:
                path = exc.path.replace("job", f"jobs[{i}]", 1)
                raise _Refused(f"{path}: got {exc.value!r}; expected {exc.expected}",
                               code="bad_job") from exc
            if spec.id in self.jobs:
                raise _Refused(f"jobs[{i}].id: job {spec.id!r} already exists "
                               "(use `farm retry` to run it again)")
            specs.append(spec)
        tasks = sum(len(s.tasks) for s in specs)
        if tasks > lim.MAX_TASKS_PER_SUBMIT:
            raise lim.FieldError("jobs", f"{len(specs)} jobs of {tasks} tasks",
                                 f"at most {lim.MAX_TASKS_PER_SUBMIT} tasks per submit")
        new_ids = {s.id for s in specs}
        for i, spec in enumerate(specs):
            for dep in spec.after:
                if dep not in self.jobs and dep not in new_ids:
                    raise _Refused(f"jobs[{i}].after: unknown job {dep!r}")
        for spec in specs:
            self.store.add_job(spec.to_wire(), [(t.id, t.frame_start, t.frame_end)
                                                for t in spec.tasks])
            seq = len(self.jobs) + 1
            job = JobRec(spec, seq, "active", [t.id for t in spec.tasks])
            self.jobs[spec.id] = job
            for i, t in enumerate(spec.tasks):
                self.tasks[t.id] = TaskRec(t.id, spec.id, i, t.frame_start, t.frame_end,
                                           "QUEUED")
        self._order_dirty = True
        self._replan = "job added"
        return {"jobs": [s.id for s in specs], "tasks": sum(len(s.tasks) for s in specs)}

    def _cancel_job(self, job_id: str) -> dict[str, Any]:
        job = self.jobs.get(job_id)
        if job is None:
            raise _Refused(f"unknown job {job_id!r}")
        job.state = "cancelled"
        self.store.set_job_state(job_id, "cancelled")
        cancelled = 0
        for a in [a for a in self.attempts.values() if a.job_id == job_id]:
            node = self.nodes.get(a.resource)
            if node is not None:
                self._send(node.routing_id, {"type": p.CANCEL, "attempt": a.id})
            pool = self.pools.get(a.resource)
            if pool is not None and a.pool_job_id:
                pool.backend.cancel(a.pool_job_id)
                # left running: the next poll ends it with the time it really ran (billed)
                # and its exit code, even if it had already finished (task.attempt_id below)
                cancelled += 1
                continue
            self._end_attempt(a, "CANCELLED", error="job cancelled")
            cancelled += 1
        rows = []
        for tid in job.task_ids:
            t = self.tasks[tid]
            if t.state != "DONE":
                t.state, t.attempt_id, t.reason = "BLOCKED", None, "job cancelled"
                rows.append(("BLOCKED", None, "job cancelled", tid))
        self.store.update_tasks(rows, ("state", "attempt_id", "reason"))
        self.store.event("job_cancelled", job_id=job_id, detail=f"{cancelled} attempts stopped")
        self._order_dirty = True
        self._replan = "job cancelled"
        return {"job": job_id, "stopped": cancelled}

    def _retry_job(self, job_id: str) -> dict[str, Any]:
        job = self.jobs.get(job_id)
        if job is None:
            raise _Refused(f"unknown job {job_id!r}")
        job.state = "active"
        self.store.set_job_state(job_id, "active")
        self.store.clear_failures(job_id)
        for key in [k for k in self.failures if k[0] == job_id]:
            del self.failures[key]
        rows = []
        for tid in job.task_ids:
            t = self.tasks[tid]
            if t.state in ("FAILED", "BLOCKED"):
                t.state, t.failures, t.reason = "QUEUED", 0, ""
                rows.append(("QUEUED", 0, "", tid))
        self.store.update_tasks(rows, ("state", "failures", "reason"))
        self.store.event("job_retried", job_id=job_id, detail=f"{len(rows)} tasks requeued")
        self._order_dirty = True
        self._replan = "job retried"
        return {"job": job_id, "requeued": len(rows)}

    def _job_status(self) -> list[dict[str, Any]]:
        out = []
        now = time.time()
        for job in sorted(self.jobs.values(), key=lambda j: j.seq):
            counts = dict.fromkeys(("QUEUED", "PLANNED", "RUNNING", "DONE", "FAILED",
                                    "BLOCKED"), 0)
            frames_total = frames_done = 0
            progress = 0.0
            finish = 0.0
            unknown = False
            for tid in job.task_ids:
                t = self.tasks[tid]
                counts[t.state] += 1
                frames_total += t.frames
                if t.state == "DONE":
                    frames_done += t.frames
                    progress += t.frames
                    finish = max(finish, t.done_utc or now)
                elif t.state == "RUNNING" and t.attempt_id in self.attempts:
                    a = self.attempts[t.attempt_id]
                    progress += t.frames * a.progress
                    node = self.nodes.get(a.resource)
                    speed = node.speed if node else 1.0
                    finish = max(finish, a.started_utc + self._duration_s(t, speed), now)
                elif t.state == "PLANNED" and t.planned_start_utc is not None:
                    finish = max(finish, t.planned_start_utc + self._duration_s(t, 1.0))
                else:
                    unknown = True
            if job.state == "cancelled":
                state = "cancelled"
            elif counts["DONE"] == len(job.task_ids):
                state = "done"
            elif counts["FAILED"] or counts["BLOCKED"]:
                state = "stalled"
            else:
                state = "active"
            predicted = None
            if state in ("active", "done") and not unknown:
                predicted = finish
            elif state == "active" and job.predicted_finish_utc is not None:
                predicted = job.predicted_finish_utc
            reasons = sorted({self.tasks[t].reason for t in job.task_ids
                              if self.tasks[t].state in ("FAILED", "BLOCKED")})
            out.append({
                "id": job.spec.id, "state": state, "priority": job.spec.priority,
                "tasks": len(job.task_ids), "counts": counts, "frames": frames_total,
                "frames_done": frames_done,
                "progress": round(progress / frames_total, 4) if frames_total else 1.0,
                "deadline_utc": job.spec.deadline_utc, "predicted_finish_utc": predicted,
                "late": bool(predicted and job.spec.deadline_utc
                             and predicted > job.spec.deadline_utc),
                "after": list(job.spec.after), "reasons": reasons[:3],
                "vram_gb": job.spec.vram_gb,  # `farm status`: "no agent can run it"
            })
        return out

    def _node_status(self) -> list[dict[str, Any]]:
        now = time.monotonic()
        out = []
        for n in sorted(self.nodes.values(), key=lambda n: n.id):
            out.append({
                "id": n.id, "slots": n.slots, "busy": len(n.running), "vram_gb": n.vram_gb,
                "speed": n.speed, "gpus": n.gpus, "last_seen_s": round(now - n.last_seen, 2),
                "running": [{"slot": s, "attempt": aid, "task": self.attempts[aid].task_id,
                             "progress": round(self.attempts[aid].progress, 3)}
                            for s, aid in sorted(n.running.items())],
                "blocklisted_for": sorted(j for (j, r), c in self.failures.items()
                                          if r == n.id and c >= self.config.blocklist_after),
            })
        for pool in self.pools.values():
            out.append({"id": pool.config.id, "pool": True, "backend": pool.config.backend,
                        "slots": pool.config.max_slots, "busy": sum(pool.running.values()),
                        "vram_gb": pool.config.vram_gb, "speed": pool.config.speed,
                        "cost_per_gpu_hour_cny": pool.config.cost_per_gpu_hour_cny})
        return out

    def _cost(self) -> dict[str, Any]:
        spent = self.store.pool_cost()
        pools: list[dict[str, Any]] = []
        pool_tasks = self._plan_info.get("pool_tasks", {})
        for pool in self.pools.values():
            pc = pool.config
            running = sum(cost_cny(self.attempts[aid].elapsed_s, gpus, pc.cost_per_gpu_hour_cny)
                          for aid, gpus in pool.running.items() if aid in self.attempts)
            remaining = 0.0
            for aid, gpus in pool.running.items():
                a = self.attempts.get(aid)
                if a is not None:
                    left = self._duration_s(self.tasks[a.task_id], pc.speed) - a.elapsed_s
                    remaining += cost_cny(max(left, 0.0), gpus, pc.cost_per_gpu_hour_cny)
            for tid, rid in pool_tasks.items():
                t = self.tasks.get(tid)
                if rid == pc.id and t is not None and t.state in RUNNABLE:
                    gpus = self.jobs[t.job_id].spec.gpus
                    remaining += cost_cny(self._duration_s(t, pc.speed), gpus,
                                          pc.cost_per_gpu_hour_cny)
            done = spent.get(pc.id, 0.0)
            pools.append({"pool": pc.id, "cost_per_gpu_hour_cny": pc.cost_per_gpu_hour_cny,
                          "spent_cny": round(done + running, 4),
                          "forecast_cny": round(done + running + remaining, 4)})
        return {"pools": pools,
                "spent_cny": round(sum(x["spent_cny"] for x in pools), 4),
                "forecast_cny": round(sum(x["forecast_cny"] for x in pools), 4)}


def jobs_by_id(jobs: list[Job], job_id: str) -> Job:
    """The planner job with ``job_id`` (it is in ``jobs``)."""
    for job in jobs:
        if job.id == job_id:
            return job
    raise KeyError(job_id)


class _Refused(Exception):
    """A request the controller turns down (the message and ``code`` go back in the reply)."""

    def __init__(self, message: str, code: str = "refused") -> None:
        super().__init__(message)
        self.code = code

    def to_wire(self) -> dict[str, Any]:
        """The error's fields for a reply."""
        return {"code": self.code}
