"""Fixtures for the tracking tests: shared data paths and leak checks."""

from __future__ import annotations

import asyncio
import gc
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "opentrackio"
SCHEMA_PATH = SHARED / "OpenTrackIO_schema.json"


def _open_sockets() -> set[str]:
    fds = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:"):
            fds.add(f"{fd}:{target}")
    return fds


@pytest.fixture
def no_leaks() -> Iterator[None]:
    """Fail a test that leaves sockets open or asyncio tasks pending.

    Requested first by socket tests, so it is set up before the event loop and torn
    down after it: the loop's own self-pipe sockets are closed by then.
    """
    before = _open_sockets()
    yield
    gc.collect()
    leaked = _open_sockets() - before
    assert not leaked, f"test leaked sockets: {sorted(leaked)}"


async def assert_no_stray_tasks() -> None:
    """Fail if tasks other than the current one are still pending."""
    await asyncio.sleep(0)
    current = asyncio.current_task()
    stray = [t for t in asyncio.all_tasks() if t is not current and not t.done()]
    assert not stray, f"test left tasks running: {stray}"


@pytest.fixture(scope="session")
def schema() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text())


@pytest.fixture(scope="session")
def validator(schema: dict[str, Any]) -> Any:
    """A draft 2020-12 validator for the shared OpenTrackIO schema.

    The schema leaves the top level open (no ``additionalProperties: false``), so a typo
    in a top-level key would pass; the strict copy closes it to the known keys.
    """
    import jsonschema

    strict = dict(schema)
    strict["additionalProperties"] = False
    # the reference implementation's complete example carries a top-level "custom"
    # object that the schema does not list; allow exactly that one
    strict["properties"] = dict(schema["properties"]) | {"custom": {"type": "object"}}
    jsonschema.Draft202012Validator.check_schema(strict)
    return jsonschema.Draft202012Validator(
        strict, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


def example(name: str) -> dict[str, Any]:
    return json.loads((SHARED / f"{name}.json").read_text())
