"""Start the simulators a stage config declares (``stagectl sim``)."""

from __future__ import annotations

import logging

from drivers.led.simulator import LedSimSettings, LedSimulator
from drivers.transport import parse_address
from stagectl.config import LedSimulatorConfig, StageConfig

log = logging.getLogger(__name__)


def build_simulator(cfg: LedSimulatorConfig) -> LedSimulator:
    """A simulator object for one ``[[simulators]]`` entry (not started)."""
    host, port = parse_address(cfg.listen)
    return LedSimulator(LedSimSettings(
        name=cfg.name, host=host, port=port, panels_total=cfg.panels,
        max_brightness_nits=cfg.max_brightness_nits, latency_ms=cfg.latency_ms,
        ramp_nits_per_s=cfg.ramp_nits_per_s))


class SimulatorSet:
    """All simulators of a stage, started and stopped together."""

    def __init__(self, config: StageConfig) -> None:
        self.simulators = [build_simulator(s) for s in config.simulators]

    async def start(self) -> None:
        """Bind every simulator; on a failure, stop those already started."""
        started: list[LedSimulator] = []
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

    def by_name(self, name: str) -> LedSimulator:
        """The simulator called ``name``."""
        for sim in self.simulators:
            if sim.settings.name == name:
                return sim
        raise KeyError(name)
