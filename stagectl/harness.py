"""Run simulators and an engine on a background event loop (tests, benchmarks, demos).

The console and blocking clients need the engine on another thread; this keeps that plumbing
in one place. Ports are whatever the config says; :func:`free_port_config` makes a config with
fresh loopback ports so parallel runs never collide.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Awaitable, Callable, Coroutine
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

from stagectl.config import StageConfig, parse_config
from stagectl.engine.engine import Engine
from stagectl.simulate import SimulatorSet

T = TypeVar("T")


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A currently free loopback port (TCP by default, UDP with ``socket.SOCK_DGRAM``)."""
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def free_port_config(stage: str = "test-stage", devices: int = 1, mqtt: bool = False,
                     mqtt_broker: str = "embedded", latency_ms: float = 1.0,
                     extra_engine: dict[str, Any] | None = None, arms: int = 0,
                     safety: dict[str, Any] | None = None, cues_file: str = "",
                     arm_options: dict[str, Any] | None = None) -> StageConfig:
    """A simulated stage with ``devices`` LED processors and ``arms`` camera arms.

    Every port is a fresh loopback one; the safety audit log is in memory unless ``safety``
    says otherwise.
    """
    data: dict[str, Any] = {
        "stage": {"name": stage, "site": "Huangpu", "timezone": "Asia/Shanghai",
                  "frame_rate": 25},
        "engine": {"command": f"tcp://127.0.0.1:{free_port()}",
                   "state": f"tcp://127.0.0.1:{free_port()}", **(extra_engine or {})},
        "mqtt": {"enabled": mqtt, "broker": mqtt_broker,
                 "embedded_bind": f"127.0.0.1:{free_port()}"},
        "devices": [], "simulators": [],
        "safety": {"audit_db": ":memory:", **(safety or {})},
        "cues": {"file": cues_file},
    }
    for i in range(arms):
        name = "arm-a" if i == 0 else f"arm-{chr(ord('a') + i)}"
        command, telemetry = (f"tcp://127.0.0.1:{free_port()}",
                              f"tcp://127.0.0.1:{free_port()}")
        data["devices"].append({"name": name, "kind": "arm", "command": command,
                                "telemetry": telemetry, "heartbeat_s": 0.05,
                                "watchdog_s": 0.3, "timeout_s": 0.4, **(arm_options or {})})
        data["simulators"].append({"name": f"{name}-sim", "kind": "arm", "command": command,
                                   "telemetry": telemetry, "watchdog_s": 0.3})
    for i in range(devices):
        port = free_port(socket.SOCK_DGRAM)
        name = "led-main" if i == 0 else f"led-{i + 1}"
        data["devices"].append({"name": name, "kind": "led", "driver": "osc",
                                "address": f"127.0.0.1:{port}", "max_brightness_nits": 1500})
        data["simulators"].append({"name": f"{name}-sim", "kind": "led",
                                   "listen": f"127.0.0.1:{port}", "latency_ms": latency_ms})
    return parse_config(data)


class LoopThread:
    """An asyncio loop on a daemon thread; submit coroutines from any thread."""

    def __init__(self, name: str = "stagectl-loop") -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def submit(self, coro: Coroutine[Any, Any, T]) -> Future[T]:
        """Schedule ``coro`` on the loop."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 10.0) -> T:
        """Run ``coro`` on the loop and wait for its result."""
        return self.submit(coro).result(timeout)

    def call(self, fn: Callable[[], T], timeout: float = 10.0) -> T:
        """Run a plain function on the loop thread and return its result."""
        async def wrapper() -> T:
            return fn()
        return self.run(wrapper(), timeout)

    def close(self) -> None:
        """Stop the loop and join the thread."""
        async def drain() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        if self.loop.is_running():
            self.run(drain())
            self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        self.loop.close()


class StageHarness:
    """Simulators plus an engine for ``config``, running on a :class:`LoopThread`."""

    def __init__(self, config: StageConfig, base_dir: Path | None = None,
                 with_simulators: bool = True,
                 on_engine: Callable[[Engine], Awaitable[None]] | None = None) -> None:
        self.config = config
        self.base_dir = base_dir
        self.with_simulators = with_simulators
        self.loop = LoopThread()
        self.sims: SimulatorSet | None = None
        self.engine: Engine | None = None
        self._on_engine = on_engine

    def start(self, wait_online_s: float = 5.0) -> StageHarness:
        """Start simulators and engine; wait for the devices to come online."""
        async def up() -> None:
            if self.with_simulators:
                self.sims = SimulatorSet(self.config)
                await self.sims.start()
            self.engine = Engine(self.config, self.base_dir)
            await self.engine.start()
            if self._on_engine is not None:
                await self._on_engine(self.engine)
            if self.with_simulators:
                for device in self.engine.devices.values():
                    await device.wait_online(wait_online_s)
        self.loop.run(up(), timeout=wait_online_s + 10)
        return self

    def stop(self) -> None:
        """Stop the engine (devices safe), then the simulators, then the loop."""
        async def down() -> None:
            if self.engine is not None:
                await self.engine.stop()
            if self.sims is not None:
                await self.sims.stop()
        try:
            self.loop.run(down(), timeout=15)
        finally:
            self.loop.close()

    def __enter__(self) -> StageHarness:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
