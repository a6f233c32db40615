from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from scheduler.booking.store import BookingStore
from tests.booking.helpers import stages_doc


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2031, 5, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(booking_db: Path | str, clock: Clock) -> Iterator[BookingStore]:
    """A store with the test stages, on SQLite and on PostgreSQL (each test runs on both)."""
    s = BookingStore(booking_db, clock=clock)
    s.setup(stages_doc())
    yield s
    s.close()
