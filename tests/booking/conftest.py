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
def store(tmp_path: Path, clock: Clock) -> Iterator[BookingStore]:
    s = BookingStore(tmp_path / "booking.sqlite", clock=clock)
    s.setup(stages_doc())
    yield s
    s.close()
