"""Megapixel HELIOS: the driver (:class:`HeliosProcessor`) and its simulator.

See ``docs/protocols/helios-http.md``.
"""

from drivers.led.helios.driver import HeliosProcessor
from drivers.led.helios.simulator import HeliosSimulator

__all__ = ["HeliosProcessor", "HeliosSimulator"]
