"""Long checks as generators, so they can run on an I/O loop without stalling it.

Validating a 10,000-keyframe path and sampling a long trajectory at 250 Hz take tens to
hundreds of milliseconds. An event loop that runs them in one piece holds back every e-stop,
heartbeat and telemetry sample for that long; a thread does not help (the work holds the GIL).
So the heavy functions are written as generators that ``yield`` every few hundred
microseconds of work: :func:`finish` runs one to the end (scripts, tests, cues), and
:func:`finish_async` runs it on the loop, giving the loop back whenever its time slice is
spent (``docs/decisions/0045-arm-planning-off-the-estop-path.md``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Generator
from typing import TypeVar

T = TypeVar("T")
Steps = Generator[None, None, T]

SLICE_S = 0.0005  # the loop gets control back at least every ~0.5 ms of checking


def finish(steps: Steps[T]) -> T:
    """Run a generator of steps to the end; its return value."""
    while True:
        try:
            next(steps)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]


async def finish_async(steps: Steps[T], slice_s: float = SLICE_S) -> T:
    """Run a generator of steps on the loop, yielding to it after every ``slice_s``."""
    deadline = time.perf_counter() + slice_s
    while True:
        try:
            next(steps)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        if time.perf_counter() >= deadline:
            await asyncio.sleep(0)
            deadline = time.perf_counter() + slice_s
