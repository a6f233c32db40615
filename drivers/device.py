"""The device model shared by every device family.

A :class:`Device` holds a *desired* state (what the stage asked for), a *reported* state
(what the device last said), and a health (online / degraded / offline, with a reason).
It reconnects with exponential backoff and re-applies the desired state after every
(re)connection. Every change is announced to listeners as a :class:`DeviceEvent`, so the
engine, the bus and tests observe devices the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar

from drivers.messages import Message, as_message, message

log = logging.getLogger(__name__)


class Health(StrEnum):
    """Coarse health of a device."""

    ONLINE = "online"
    DEGRADED = "degraded"
    OFFLINE = "offline"


@dataclass(frozen=True, slots=True)
class HealthStatus:
    """Health with the reason an operator needs and the wall time it began.

    ``problems`` carries the same reason machine-readably (``[{"code", "params"}]``) so a
    console can show it in the operator's language; ``reason`` stays the English sentence.
    """

    state: Health
    reason: str = ""
    since: float = field(default_factory=time.time)
    problems: tuple[dict[str, Any], ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"state": self.state.value, "reason": self.reason, "since": self.since,
                "problems": [dict(p) for p in self.problems]}


class Problem(str):
    """A health reason that is also machine-readable.

    The English text plus a code and parameters, e.g. ``Problem("12 of 240 panels offline",
    "panels_offline", offline=12, total=240)``. It is a ``str``, so code that joins reasons
    keeps working.
    """

    code: str
    params: dict[str, Any]

    def __new__(cls, text: str, code: str, **params: Any) -> Problem:  # noqa: D102
        obj = super().__new__(cls, text)
        obj.code = code
        obj.params = params
        return obj

    def as_dict(self) -> dict[str, Any]:
        """``{"code", "params"}`` for the wire."""
        return {"code": self.code, "params": dict(self.params)}


def problem_dicts(reasons: list[str] | tuple[str, ...]) -> tuple[dict[str, Any], ...]:
    """The machine-readable part of reasons (plain strings have none)."""
    return tuple(r.as_dict() for r in reasons if isinstance(r, Problem))


@dataclass(frozen=True, slots=True)
class DeviceEvent:
    """Something a device announces.

    ``kind`` is ``"delta"`` (``data`` holds changed reported keys), ``"desired"`` (changed
    desired keys), ``"health"`` (``data`` is the health dict) or ``"event"`` (``data`` has a
    ``message`` and a ``level``).
    """

    device: str
    kind: str
    data: dict[str, Any]
    t: float = field(default_factory=time.time)


Listener = Callable[[DeviceEvent], None]


@dataclass
class Backoff:
    """Exponential backoff between reconnect attempts."""

    initial_s: float = 0.1
    factor: float = 2.0
    max_s: float = 1.0
    _next: float = 0.0

    def reset(self) -> None:
        """Start again from the initial delay."""
        self._next = self.initial_s

    def next_delay(self) -> float:
        """Return the delay to wait now and grow the next one."""
        delay = self._next or self.initial_s
        self._next = min(self.max_s, delay * self.factor)
        return delay


class CommandError(Exception):
    """A device command that could not be carried out (device, what, why)."""

    def __init__(self, device: str, message: str, code: str = "device_error") -> None:
        self.device = device
        self.code = code
        super().__init__(f"{device}: {message}")


class Device(ABC):
    """Base class for a stage device driver.

    Subclasses implement :meth:`_open`, :meth:`_close`, :meth:`_link_alive`,
    :meth:`_send_desired`, :meth:`validate` and :meth:`safe_shutdown`.
    """

    kind: ClassVar[str] = "device"
    # Upper bound on safe_shutdown() when the process stops (a family's own controlled stop
    # must fit inside it: the arm waits up to 3 s for its stop to finish).
    safe_shutdown_s: ClassVar[float] = 3.5

    def __init__(self, name: str, backoff: Backoff | None = None) -> None:
        self.name = name
        self.desired: dict[str, Any] = {}
        self.reported: dict[str, Any] = {}
        self.health = HealthStatus(Health.OFFLINE, "not started",
                                   problems=({"code": "not_started", "params": {}},))
        self.counters: Counter[str] = Counter()
        self.backoff = backoff or Backoff()
        self._listeners: list[Listener] = []
        self._task: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()
        self._lost = asyncio.Event()

    # ---- observation ----------------------------------------------------------------

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener`` on every event; returns an unsubscribe function."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def _emit(self, kind: str, data: dict[str, Any]) -> None:
        event = DeviceEvent(self.name, kind, data)
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:  # a broken listener must not stop the device
                self.counters["listener_errors"] += 1
                log.exception("%s: listener failed", self.name)

    def _report(self, changes: dict[str, Any]) -> None:
        """Merge reported values, announcing only what actually changed."""
        delta = {k: v for k, v in changes.items() if self.reported.get(k, _MISSING) != v}
        if delta:
            self.reported.update(delta)
            self._emit("delta", delta)

    def _set_health(self, state: Health, reason: str = "",
                    problems: tuple[dict[str, Any], ...] | None = None) -> None:
        if state == self.health.state and reason == self.health.reason:
            return
        if problems is None:
            problems = problem_dicts([reason]) if reason else ()
        self.health = HealthStatus(state, str(reason), problems=problems)
        log.info("%s: %s %s", self.name, state.value, reason)
        self._emit("health", self.health.as_dict())

    def event(self, message: Message, level: str = "info") -> None:
        """Announce a notable event (operator-visible log line).

        Args:
            message: a message object (:func:`drivers.messages.message`): code, params and
                the English sentence, so consoles render it in their language.
            level: ``info``, ``warning`` or ``error``.
        """
        self._emit("event", {**message, "level": level})

    def snapshot(self) -> dict[str, Any]:
        """JSON-ready view: name, kind, health, reported and desired state, counters."""
        return {
            "name": self.name,
            "kind": self.kind,
            "health": self.health.state.value,
            "health_reason": self.health.reason,
            "health_problems": [dict(p) for p in self.health.problems],
            "state": dict(self.reported),
            "desired": dict(self.desired),
            "counters": dict(self.counters),
        }

    @property
    def online(self) -> bool:
        """True when the link is up (online or degraded)."""
        return self.health.state != Health.OFFLINE

    # ---- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        """Open the transport and start the connection manager."""
        await self._open()
        self._task = asyncio.create_task(self._run(), name=f"device-{self.name}")

    async def stop(self) -> None:
        """Leave the device safe (within :attr:`safe_shutdown_s`), then close the link.

        A peer that never answers cannot hold the process: the safe shutdown is abandoned
        after :attr:`safe_shutdown_s` (an error event and the ``safe_shutdown_timeouts``
        counter say so) and the link is closed anyway.
        """
        try:
            if self.online:
                try:
                    await asyncio.wait_for(self.safe_shutdown(), self.safe_shutdown_s)
                except TimeoutError:
                    self.counters["safe_shutdown_timeouts"] += 1
                    self.event(message("safe_shutdown_late",
                                       seconds=f"{self.safe_shutdown_s:g}"), "error")
        finally:
            if self._task is not None:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
                self._task = None
            await self._close()
            self._set_health(Health.OFFLINE, Problem("stopped", "stopped"))

    async def wait_online(self, timeout: float) -> bool:
        """Wait until the device is connected; False on timeout."""
        try:
            await asyncio.wait_for(self._connected.wait(), timeout)
            return True
        except TimeoutError:
            return False

    def _link_up(self, reconnected_because: Message) -> None:
        """Called by subclasses when the peer answers; re-applies desired state on (re)connect."""
        first = not self._connected.is_set()
        self._connected.set()
        self._lost.clear()
        self.backoff.reset()
        if first:
            self.counters["connects"] += 1
            if self.desired:
                self.counters["reapplies"] += 1
                self.event(message("connected_reapplying", why=reconnected_because,
                                   keys=", ".join(sorted(self.desired))))
                self._send_desired(dict(self.desired))
            else:
                self.event(message("connected", why=reconnected_because))
        self._update_health()

    def _link_down(self, reason: str) -> None:
        if self._connected.is_set():
            self.counters["disconnects"] += 1
            self.event(message("link_lost", reason=as_message(reason)), "warning")
        self._connected.clear()
        self._lost.set()
        self._set_health(Health.OFFLINE, reason)

    async def _run(self) -> None:
        """Probe the peer with backoff while offline; watch liveness while online."""
        self.backoff.reset()
        while True:
            if not self._connected.is_set():
                self._probe()
                delay = self.backoff.next_delay()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._connected.wait(), delay)
                continue
            await asyncio.sleep(self._keepalive_interval())
            if not self._link_alive():
                self._link_down(self._silence_reason())
            else:
                self._probe()

    def _update_health(self) -> None:
        """Recompute online/degraded from reported state (subclasses refine)."""
        if self._connected.is_set():
            problems = self._problems()
            if problems:
                self._set_health(Health.DEGRADED, "; ".join(problems), problem_dicts(problems))
            else:
                self._set_health(Health.ONLINE, "")

    def _problems(self) -> list[str]:
        return []

    def _keepalive_interval(self) -> float:
        return 0.5

    def _silence_reason(self) -> str:
        return "no reply"

    # ---- commands --------------------------------------------------------------------

    async def set(self, key: str, value: object) -> Any:
        """Validate and set one parameter; returns the normalised value.

        The value becomes desired state at once and is sent if the link is up; when offline
        it is applied on reconnect.

        Raises:
            ValueError: (a subclass) when the value is invalid; nothing is sent.
        """
        normalised = self.validate(key, value)
        self.desired[key] = normalised
        self._emit("desired", {key: normalised})
        if self._connected.is_set():
            self._send_desired({key: normalised})
        return normalised

    @abstractmethod
    def validate(self, key: str, value: object) -> Any:
        """Return the normalised value or raise a ``ValueError`` naming device/param/value."""

    @abstractmethod
    async def _open(self) -> None: ...

    @abstractmethod
    async def _close(self) -> None: ...

    @abstractmethod
    def _probe(self) -> None:
        """Send a keepalive / subscription request to the peer."""

    @abstractmethod
    def _link_alive(self) -> bool:
        """Whether the peer has been heard from recently."""

    @abstractmethod
    def _send_desired(self, values: dict[str, Any]) -> None:
        """Send validated values to the device."""

    @abstractmethod
    async def safe_shutdown(self) -> None:
        """Leave the device in its safe state (runs on every exit path)."""


_MISSING = object()
