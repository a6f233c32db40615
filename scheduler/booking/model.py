"""The booking model: stages, pools, bookings, plans.

Plain frozen dataclasses, built by :mod:`scheduler.booking.parse` from JSON or by
:mod:`scheduler.booking.store` from SQLite. Every time is a timezone-aware ``datetime``;
internally the planners work in whole minutes since the Unix epoch (:func:`epoch_minutes`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

DEFAULT_TIMEZONE = "Asia/Shanghai"


class Status(StrEnum):
    """Lifecycle state of a booking (see docs/booking-json.md)."""

    REQUESTED = "requested"
    HOLD = "hold"
    CONFIRMED = "confirmed"
    COMPLETED = "completed"
    RELEASED = "released"
    EXPIRED = "expired"
    CANCELLED = "cancelled"
    REJECTED = "rejected"


#: States that still want stage time.
ACTIVE = frozenset({Status.REQUESTED, Status.HOLD, Status.CONFIRMED})
#: States the optimiser may place (the rest are fixed or gone).
PLANNABLE = frozenset({Status.REQUESTED, Status.HOLD})


@dataclass(frozen=True)
class Window:
    """A half-open time window ``[start, end)``."""

    start: datetime
    end: datetime

    def overlaps(self, start: datetime, end: datetime) -> bool:
        """True when ``[start, end)`` shares any instant with this window."""
        return start < self.end and self.start < end


@dataclass(frozen=True)
class Stage:
    """An LED stage at a site, with what it can do and when it can be used."""

    id: str
    capabilities: frozenset[str] = frozenset()
    changeover_minutes: int = 0
    open: tuple[Window, ...] = ()
    outages: tuple[Window, ...] = ()
    site: str = ""
    timezone: str = DEFAULT_TIMEZONE
    day_rate_cny: float = 0.0
    prelight_strike_rate_cny: float = 0.0
    wall_width_m: float | None = None
    wall_height_m: float | None = None
    pixel_pitch_mm: float | None = None

    @property
    def tz(self) -> ZoneInfo:
        """The site's time zone."""
        return ZoneInfo(self.timezone)


@dataclass(frozen=True)
class Pool:
    """A resource shared across stages (crew role or equipment kit) with a capacity."""

    id: str
    capacity: int
    kind: str = ""


@dataclass(frozen=True)
class Phase:
    """One contiguous part of a booking (prelight, shoot, strike)."""

    name: str
    duration_minutes: int


@dataclass(frozen=True)
class Booking:
    """A request for stage time, a hold on it, or a confirmed booking.

    For ``requested``/``hold`` bookings, ``stage`` and ``start`` (when given) are the current
    placement that a re-plan tries to keep; for ``confirmed`` ones they are fixed.
    """

    id: str
    priority: int
    duration_minutes: int
    earliest_start: datetime
    latest_end: datetime
    status: Status = Status.REQUESTED
    hold_rank: int | None = None
    requires: frozenset[str] = frozenset()
    stages: tuple[str, ...] = ()
    pools: tuple[tuple[str, int], ...] = ()
    stage: str | None = None
    start: datetime | None = None
    production: str = ""
    contact: str = ""
    phases: tuple[Phase, ...] = ()
    prefer_stages: tuple[str, ...] = ()

    @property
    def end(self) -> datetime | None:
        """End of the current placement, if any."""
        if self.start is None:
            return None
        return self.start + timedelta(minutes=self.duration_minutes)

    @property
    def weight(self) -> int:
        """Priority x minutes: the primary objective contribution when placed."""
        return self.priority * self.duration_minutes


@dataclass(frozen=True)
class Problem:
    """Everything a planner needs: the slot grid, stages, pools and bookings."""

    slot_minutes: int
    stages: tuple[Stage, ...]
    pools: tuple[Pool, ...]
    bookings: tuple[Booking, ...]

    def stage_by_id(self) -> dict[str, Stage]:
        """Stages keyed by id."""
        return {s.id: s for s in self.stages}

    def pool_by_id(self) -> dict[str, Pool]:
        """Pools keyed by id."""
        return {p.id: p for p in self.pools}

    def booking_by_id(self) -> dict[str, Booking]:
        """Bookings keyed by id."""
        return {b.id: b for b in self.bookings}


@dataclass(frozen=True)
class Assignment:
    """A booking placed on a stage over ``[start, end)``."""

    id: str
    stage: str
    start: datetime
    end: datetime


@dataclass(frozen=True)
class Rejection:
    """A booking that was not placed, and why."""

    id: str
    reason: str


@dataclass
class Plan:
    """A planner's answer. ``objective`` and ``bound`` are in priority x hours."""

    assignments: list[Assignment]
    rejected: list[Rejection]
    objective: float
    bound: float
    greedy_objective: float
    status: str = "feasible"
    solve_seconds: float = 0.0
    source: str = "greedy"
    moved: list[str] = field(default_factory=list)

    def assignment_by_id(self) -> dict[str, Assignment]:
        """Assignments keyed by booking id."""
        return {a.id: a for a in self.assignments}

    def to_json(self, problem: Problem) -> dict[str, Any]:
        """The output contract of ``stagectl book solve`` (docs/booking-json.md)."""
        stages = problem.stage_by_id()

        def local(dt: datetime, stage_id: str) -> str:
            return dt.astimezone(stages[stage_id].tz).isoformat()

        return {
            "status": self.status,
            "objective": round(self.objective, 4),
            "bound": round(self.bound, 4),
            "greedy_objective": round(self.greedy_objective, 4),
            "solve_seconds": round(self.solve_seconds, 3),
            "source": self.source,
            "assignments": [
                {
                    "id": a.id,
                    "stage": a.stage,
                    "start": local(a.start, a.stage),
                    "end": local(a.end, a.stage),
                }
                for a in sorted(self.assignments, key=lambda a: (a.start, a.stage, a.id))
            ],
            "rejected": [{"id": r.id, "reason": r.reason} for r in self.rejected],
        }


def epoch_minutes(dt: datetime) -> int:
    """Whole minutes since the Unix epoch (times are validated to whole minutes)."""
    return int(dt.timestamp()) // 60


def from_epoch_minutes(minutes: int) -> datetime:
    """Inverse of :func:`epoch_minutes`, as an aware UTC datetime."""
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(minutes=minutes)


def priority_hours(bookings: list[Booking] | tuple[Booking, ...]) -> float:
    """Sum of priority x hours over ``bookings``."""
    return sum(b.weight for b in bookings) / 60.0


def capable_stages(problem: Problem, booking: Booking) -> list[Stage]:
    """Stages the booking may use: allowed (or any) and having every required capability."""
    allowed = set(booking.stages)
    return [
        s
        for s in problem.stages
        if (not allowed or s.id in allowed) and booking.requires <= s.capabilities
    ]
