"""Fixtures for the console tests: a simulated stage, a bridge and the main window.

Every fixture stops what it started, and :func:`no_leaked_threads` fails a test that leaves a
Python thread behind (napari's habit); the bridge fixture also checks its QThread ended.
"""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from pytestqt.qtbot import QtBot

from gui import i18n
from gui.app import MainWindow
from gui.bridge import LIVE_TIMEOUT_S, EngineBridge
from gui.led_panel import LedPanel
from stagectl.client import ClientIdentity
from stagectl.config import StageConfig, parse_config
from stagectl.engine.engine import HEARTBEAT_S
from stagectl.harness import StageHarness, free_port, free_port_config

OPERATOR = ClientIdentity(user="gui-test", role="operator")
# The console's liveness limit, or three heartbeats of an engine that beats more slowly.
LIVE_S = max(LIVE_TIMEOUT_S, 3 * HEARTBEAT_S)


def _live_threads() -> set[threading.Thread]:
    # _DummyThread entries are foreign threads (QThread, zmq) that once called into
    # threading; Python never removes them, so they are not leaks.
    return {t for t in threading.enumerate() if not isinstance(t, threading._DummyThread)}


@pytest.fixture(autouse=True)
def no_leaked_threads() -> Iterator[None]:
    before = _live_threads()
    yield
    deadline = time.monotonic() + 3.0
    while (extra := _live_threads() - before) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not extra, f"test leaked threads: {sorted(t.name for t in extra)}"


@pytest.fixture(autouse=True)
def english() -> Iterator[None]:
    """Tests read English labels unless they choose otherwise."""
    i18n.set_language("en")
    yield
    i18n.set_language(None)


@pytest.fixture
def harness() -> Iterator[StageHarness]:
    h = StageHarness(free_port_config(stage="gui-stage")).start()
    try:
        yield h
    finally:
        h.stop()


def wait_for(predicate: Callable[[], bool], timeout_s: float = 3.0) -> None:
    """Wait (blocking) until ``predicate()`` holds; fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


@pytest.fixture
def arm_stage() -> Iterator[StageHarness]:
    """An LED wall and a camera arm, simulated."""
    h = StageHarness(free_port_config(stage="gui-arm", arms=1)).start()
    try:
        yield h
    finally:
        h.stop()


def with_tracking(config: StageConfig, rate_hz: int = 100) -> StageConfig:
    """``config`` plus a simulated FreeD tracking source ``cam-a`` on a free UDP port."""
    data = config.model_dump()
    port = free_port(socket.SOCK_DGRAM)
    data["devices"].append({"name": "cam-a", "kind": "tracking", "driver": "freed",
                            "port": port, "host": "127.0.0.1", "rate_hz": rate_hz})
    data["simulators"].append({"name": "cam-a-sim", "kind": "tracking", "protocol": "freed",
                               "target": f"127.0.0.1:{port}", "rate_hz": rate_hz})
    return parse_config(data)


def sim_values(harness: StageHarness) -> dict[str, object]:
    assert harness.sims is not None
    values: dict[str, object] = getattr(harness.sims.simulators[0], "values")  # noqa: B009
    return values


def sim_address(harness: StageHarness) -> tuple[str, int]:
    assert harness.sims is not None
    host, port = getattr(harness.sims.simulators[0], "address")  # noqa: B009
    return host, port


@dataclass
class Console:
    window: MainWindow
    bridge: EngineBridge
    harness: StageHarness

    @property
    def led(self) -> LedPanel:
        return self.window.led_panels["led-main"]


def make_bridge(harness: StageHarness, **kwargs: Any) -> EngineBridge:
    kwargs.setdefault("heartbeat_timeout_s", LIVE_S)
    kwargs.setdefault("identity", OPERATOR)
    return EngineBridge(harness.config, **kwargs)


def stop_bridge(bridge: EngineBridge) -> None:
    assert bridge.stop(), "the bridge's listener thread did not end"
    assert not bridge.running


def open_window(qtbot: QtBot, harness: StageHarness,
                **kwargs: Any) -> tuple[MainWindow, EngineBridge]:
    """A shown main window on a started bridge to ``harness`` (stop the bridge after)."""
    bridge = make_bridge(harness, **kwargs)
    window = MainWindow(harness.config, bridge)
    qtbot.addWidget(window)
    window.show()
    bridge.start()
    return window, bridge


@pytest.fixture
def console(qtbot: QtBot, harness: StageHarness) -> Iterator[Console]:
    window, bridge = open_window(qtbot, harness)
    try:
        qtbot.waitUntil(lambda: bridge.connected, timeout=3000)
        panel = window.led_panels["led-main"]
        qtbot.waitUntil(lambda: "brightness_nits" in panel.reported, timeout=3000)
        yield Console(window, bridge, harness)
    finally:
        stop_bridge(bridge)
        window.close()
