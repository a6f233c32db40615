"""Megapixel HELIOS: the driver (:class:`HeliosProcessor`) and its simulator.

See ``docs/protocols/helios-http.md``. Import ``drivers.led.helios.driver`` or
``drivers.led.helios.simulator``; the names here are loaded on first use, so that
``python -m drivers.led.helios.simulator`` runs the module once.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["HeliosProcessor", "HeliosSimulator"]
_WHERE = {"HeliosProcessor": "drivers.led.helios.driver",
          "HeliosSimulator": "drivers.led.helios.simulator"}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
