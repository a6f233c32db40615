"""Shared fixtures: tool requirements (fail under CI, skip on laptops) and leak checks."""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

# No per-example deadline: a 2-core CI machine running socket tests beside the fuzzers can
# pause any example past hypothesis's 200 ms default; examples still count as they were.
settings.register_profile("stagectl", deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("stagectl")

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
REPO = Path(__file__).resolve().parent.parent


def require_tool(name: str, extra_paths: tuple[str, ...] = ("/usr/sbin",)) -> str:
    """Path of a system tool; skip without it on a laptop, fail under CI=true."""
    found = shutil.which(name)
    if found is None:
        for folder in extra_paths:
            candidate = Path(folder) / name
            if candidate.exists():
                found = str(candidate)
                break
    if found is None:
        message = (f"{name} is not installed (Debian: apt-get install "
                   f"{ {'oscsend': 'liblo-tools'}.get(name, name) })")
        if IN_CI:
            pytest.fail(f"CI=true: {message}; .ci/run must install it")
        pytest.skip(message)
    return found


def _threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate()
            if t.is_alive() and not t.name.startswith(("asyncio_", "ThreadPoolExecutor",
                                                      "Dummy", "pydevd", "QThread"))}


@pytest.fixture(autouse=True)
def no_leaked_threads() -> Iterator[None]:
    """Fail a test that leaves threads running (stopped harnesses join theirs)."""
    before = _threads()
    yield
    deadline = time.monotonic() + 3.0
    leaked = _threads() - before
    while leaked and time.monotonic() < deadline:
        time.sleep(0.05)
        leaked = _threads() - before
    assert not leaked, f"test leaked threads: {[t.name for t in leaked]}"


def require_path(path: Path, what: str = "shared reference data") -> Path:
    """A file the tests read from ``../shared``; skip on a laptop without it, fail under CI."""
    if not path.exists():
        message = f"{what} not found at {path}"
        if IN_CI:
            pytest.fail(f"CI=true: {message}")
        pytest.skip(message)
    return path


from tests.pg import booking_db, pg_server, pg_url  # noqa: E402,F401 - fixtures for every test
