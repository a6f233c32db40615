"""Start the simulators a stage config declares (``stagectl sim``)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol

from drivers.led.simulator import LedSimSettings, LedSimulator
from drivers.transport import parse_address
from stagectl.config import LedSimulatorConfig, StageConfig

log = logging.getLogger(__name__)


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


def _build_led(cfg: Any) -> Simulator:
    assert isinstance(cfg, LedSimulatorConfig)
    host, port = parse_address(cfg.listen)
    return LedSimulator(LedSimSettings(
        name=cfg.name, host=host, port=port, panels_total=cfg.panels,
        max_brightness_nits=cfg.max_brightness_nits, latency_ms=cfg.latency_ms,
        ramp_nits_per_s=cfg.ramp_nits_per_s))


# kind -> factory taking that kind's ``[[simulators]]`` entry.
SIMULATOR_BUILDERS: dict[str, Callable[[Any], Simulator]] = {"led": _build_led}


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
        """Stop every simulator."""
        for sim in self.simulators:
            await sim.stop()

    def by_name(self, name: str) -> Simulator:
        """The simulator called ``name``."""
        for sim in self.simulators:
            if sim.name == name:
                return sim
        raise KeyError(name)
