"""Shared helpers for the vendor LED driver and simulator tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


async def wait_for(cond: Callable[[], object], timeout: float = 3.0, step: float = 0.02) -> bool:
    """Poll ``cond`` until it is truthy or ``timeout`` passes; returns the last truth value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        await asyncio.sleep(step)
    return bool(cond())
