"""Admission of engine requests: per-client queues, served round robin, with hard bounds.

The engine's command socket is shared by every console, CLI and script on the stage. Without
bounds one client's flood fills the event loop and everything else (other clients, the arm's
heartbeats) waits behind it. :class:`FairQueue` holds the requests that are not running yet:

* one FIFO per client (ROUTER identity, or the CURVE key's user), so a client's requests keep
  their order among themselves;
* at most ``per_client`` requests of one client in flight (queued plus running), at most
  ``total`` queued over all clients and at most ``total_bytes`` of queued payloads; a request
  over a bound is refused at once (the engine answers ``overloaded``), never buffered;
* a client's first ``reserve`` small requests in flight are admitted even when the overall
  bounds are reached, so a console polling ``status`` keeps working while many connections
  flood;
* :meth:`FairQueue.next` hands out work round robin over the clients that have some, at most
  ``running_per_client`` running for one client and ``running_total`` overall, so a client
  with 30 queued requests gets one turn like a client with one.

Make-safer requests (``estop``, ``arm.stop``, ...) never enter this queue: the engine runs
them the moment it reads them (``docs/decisions/0046-engine-admission-and-urgent-path.md``).
Nothing here touches sockets or the event loop.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds of a :class:`FairQueue` (the ``[engine]`` settings plus running caps)."""

    per_client: int = 32
    total: int = 1024
    total_bytes: int = 64_000_000
    running_per_client: int = 4
    running_total: int = 64
    reserve: int = 2  # small requests per client admitted past ``total`` / ``total_bytes``
    reserve_bytes: int = 4096


@dataclass(slots=True)
class _Client(Generic[T]):
    queued: deque[tuple[T, int]] = field(default_factory=deque)
    running: int = 0


class Refused(Exception):
    """A request over one of the bounds.

    ``bound`` names which (``client``, ``total``, ``bytes``); the message says what to do.
    """

    def __init__(self, bound: str, message: str, **details: object) -> None:
        self.bound = bound
        self.details = details
        super().__init__(message)


class FairQueue(Generic[T]):
    """Per-client FIFOs served round robin; see the module docstring."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self._clients: dict[Hashable, _Client[T]] = {}
        self._turns: deque[Hashable] = deque()  # clients that have queued work, in turn order
        self.queued = 0
        self.queued_bytes = 0
        self.running = 0

    def in_flight(self, client: Hashable) -> int:
        """Queued plus running requests of ``client``."""
        entry = self._clients.get(client)
        return 0 if entry is None else len(entry.queued) + entry.running

    @property
    def clients(self) -> int:
        """Clients with anything queued or running."""
        return len(self._clients)

    def offer(self, client: Hashable, item: T, size: int) -> None:
        """Queue ``item`` (a request of ``size`` bytes) for ``client``.

        Raises:
            Refused: the client, the queue or its bytes are at their bound; nothing queued.
        """
        limits = self.limits
        mine = self.in_flight(client)
        if mine >= limits.per_client:
            raise Refused("client", f"engine busy: this client already has {mine} requests in "
                          f"flight (limit {limits.per_client}, [engine] "
                          "max_inflight_per_client); wait for replies before sending more",
                          in_flight=mine, limit=limits.per_client)
        reserved = mine < limits.reserve and size <= limits.reserve_bytes
        if self.queued >= limits.total and not reserved:
            raise Refused("total", f"engine overloaded: {self.queued} requests queued from "
                          f"{len(self._clients)} clients (limit {limits.total}, [engine] "
                          "max_queued_total); retry in a moment",
                          queued=self.queued, limit=limits.total)
        if self.queued_bytes + size > limits.total_bytes and not reserved:
            raise Refused("bytes", f"engine overloaded: {self.queued_bytes} bytes of requests "
                          f"queued (limit {limits.total_bytes}, [engine] max_queued_bytes); "
                          "retry in a moment", queued_bytes=self.queued_bytes,
                          limit=limits.total_bytes)
        entry = self._clients.get(client)
        if entry is None:
            entry = self._clients[client] = _Client()
        if not entry.queued:
            self._turns.append(client)
        entry.queued.append((item, size))
        self.queued += 1
        self.queued_bytes += size

    def next(self) -> tuple[Hashable, T] | None:
        """The next request to run, round robin over clients; None when nothing may start.

        The caller must call :meth:`done` with the client once that request finished.
        """
        if self.running >= self.limits.running_total:
            return None
        for _ in range(len(self._turns)):
            client = self._turns.popleft()
            entry = self._clients[client]
            if entry.running >= self.limits.running_per_client:
                self._turns.append(client)  # its turn comes again when one of its finishes
                continue
            item, size = entry.queued.popleft()
            if entry.queued:
                self._turns.append(client)
            entry.running += 1
            self.running += 1
            self.queued -= 1
            self.queued_bytes -= size
            return client, item
        return None

    def done(self, client: Hashable) -> None:
        """One running request of ``client`` finished."""
        entry = self._clients.get(client)
        if entry is None or entry.running <= 0:  # pragma: no cover - caller bug
            return
        entry.running -= 1
        self.running -= 1
        if not entry.running and not entry.queued:
            del self._clients[client]

    def drain(self) -> list[tuple[Hashable, T]]:
        """Remove and return everything still queued (engine shutdown)."""
        out: list[tuple[Hashable, T]] = []
        for client, entry in self._clients.items():
            out.extend((client, item) for item, _ in entry.queued)
            entry.queued.clear()
        self._clients = {k: v for k, v in self._clients.items() if v.running}
        self._turns.clear()
        self.queued = self.queued_bytes = 0
        return out
