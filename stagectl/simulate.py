"""Start the simulators a stage config declares (``stagectl sim``)."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
from collections.abc import Callable
from typing import Any, Protocol

from drivers.arm.simulator import ArmSimSettings, ArmSimulator
from drivers.led.http import read_credentials
from drivers.led.simhttp import VendorSimSettings
from drivers.led.simulator import LedSimSettings, LedSimulator
from drivers.tracking.simulator import Faults, TrackingSimulator
from drivers.transport import parse_address
from stagectl.arm_keys import simulator_settings
from stagectl.config import (
    ArmSimulatorConfig,
    LedSimulatorConfig,
    StageConfig,
    TrackingSimulatorConfig,
)

log = logging.getLogger(__name__)

STOP_WAIT_S = 1.5


class Simulator(Protocol):
    """What every simulator offers: a name, start and stop."""

    @property
    def name(self) -> str:
        """The simulator's name from the config."""
        ...

    async def start(self) -> None:
        """Bind sockets and start serving."""
        ...

    async def stop(self) -> None:
        """Stop serving and release sockets."""
        ...


# protocol word -> (module, class) of the vendor simulators
LED_VENDOR_SIMULATORS = {
    "tessera": ("drivers.led.tessera.simulator", "TesseraSimulator"),
    "helios": ("drivers.led.helios.simulator", "HeliosSimulator"),
    "novastar": ("drivers.led.novastar.simulator", "NovastarSimulator"),
}


def _build_led(cfg: Any) -> Simulator:
    assert isinstance(cfg, LedSimulatorConfig)
    host, port = parse_address(cfg.listen)
    if cfg.protocol != "osc":
        module, cls = LED_VENDOR_SIMULATORS[cfg.protocol]
        simulator = getattr(importlib.import_module(module), cls)
        sim: Simulator = simulator(VendorSimSettings(
            name=cfg.name, host=host, port=port, panels_total=cfg.panels,
            max_brightness_nits=cfg.max_brightness_nits, latency_ms=cfg.latency_ms,
            ramp_nits_per_s=cfg.ramp_nits_per_s, groups=cfg.groups,
            credentials=read_credentials(cfg.credentials_file, cfg.credentials_env),
            auth=cfg.auth, options=dict(cfg.options)))
        return sim
    return LedSimulator(LedSimSettings(
        name=cfg.name, host=host, port=port, panels_total=cfg.panels,
        max_brightness_nits=cfg.max_brightness_nits, latency_ms=cfg.latency_ms,
        ramp_nits_per_s=cfg.ramp_nits_per_s))


class TrackingSimulatorRunner:
    """A :class:`TrackingSimulator` as a start/stop server (its ``run`` as a task)."""

    def __init__(self, cfg: TrackingSimulatorConfig) -> None:
        host, port = parse_address(cfg.target)
        self._name = cfg.name
        self.sim = TrackingSimulator(
            cfg.protocol, host, port, cfg.rate_hz, freed_profile=cfg.freed_profile,
            source_number=cfg.source_number, seed=cfg.seed,
            faults=Faults(loss_pct=cfg.loss_pct, jitter_ms=cfg.jitter_ms,
                          burst_per_s=cfg.burst_per_s, bad_checksum_pct=cfg.bad_checksum_pct,
                          reorder_pct=cfg.reorder_pct))
        self._task: asyncio.Task[Any] | None = None

    @property
    def name(self) -> str:
        """The simulator's name."""
        return self._name

    async def start(self) -> None:
        """Start sending samples."""
        self._task = asyncio.create_task(self.sim.run(), name=f"tracking-sim-{self._name}")
        await asyncio.sleep(0)
        if self._task.done():
            self._task.result()  # surface a socket error now

    async def stop(self) -> None:
        """Stop sending and wait for the socket to close."""
        self.sim.stop()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(self._task, 2.0)
            self._task = None


def _build_tracking(cfg: Any) -> Simulator:
    assert isinstance(cfg, TrackingSimulatorConfig)
    return TrackingSimulatorRunner(cfg)


def _build_arm(cfg: Any) -> Simulator:
    assert isinstance(cfg, ArmSimulatorConfig)
    return ArmSimulator(ArmSimSettings(
        name=cfg.name, command=cfg.command, telemetry=cfg.telemetry, rate_hz=cfg.rate_hz,
        track=cfg.track, watchdog_s=cfg.watchdog_s, payload_kg=cfg.payload_kg,
        repeatability_deg=cfg.repeatability_deg, max_message_bytes=cfg.max_message_bytes,
        max_in_flight=cfg.max_in_flight, **simulator_settings(cfg)))


# kind -> factory taking that kind's ``[[simulators]]`` entry.
SIMULATOR_BUILDERS: dict[str, Callable[[Any], Simulator]] = {
    "led": _build_led, "tracking": _build_tracking, "arm": _build_arm}


def build_simulator(cfg: Any) -> Simulator:
    """A simulator object for one ``[[simulators]]`` entry (not started)."""
    return SIMULATOR_BUILDERS[cfg.kind](cfg)


class SimulatorSet:
    """All simulators of a stage, started and stopped together."""

    def __init__(self, config: StageConfig) -> None:
        self.simulators = [build_simulator(s) for s in config.simulators]

    async def start(self) -> None:
        """Bind every simulator; on a failure, stop those already started."""
        started: list[Simulator] = []
        try:
            for sim in self.simulators:
                await sim.start()
                started.append(sim)
        except OSError as exc:
            for sim in started:
                await sim.stop()
            raise RuntimeError(f"cannot start simulator: {exc}") from exc

    async def stop(self) -> None:
        """Stop every simulator, each within ``STOP_WAIT_S``; one failing never keeps the rest."""
        for sim in self.simulators:
            try:
                await asyncio.wait_for(sim.stop(), STOP_WAIT_S)
            except TimeoutError:
                log.warning("%s: did not stop within %g s", sim.name, STOP_WAIT_S)
            except Exception:
                log.exception("%s: stop failed", sim.name)

    def by_name(self, name: str) -> Simulator:
        """The simulator called ``name``."""
        for sim in self.simulators:
            if sim.name == name:
                return sim
        raise KeyError(name)
