"""The LED-processor device model every LED driver maps onto its processor's API.

One model, four wire protocols: stagectl's own OSC address space (``driver = "osc"``) and the
vendors' control APIs (``"tessera"``, ``"helios"``, ``"novastar"``). The engine, the CLI and the
console drive every wall through :class:`LedDevice` and never see the wire.

What a processor cannot do is declared, not discovered by failing: :class:`Capabilities` lists
the features a driver lacks with the reason, a command for one is refused before anything is
sent (:class:`Unsupported`, code ``unsupported``), and the console and ``stagectl led`` show the
control as *unsupported*, not broken.

Keys beyond :data:`drivers.led.protocol.PARAMS`:

- ``input``: the processor's input, in the processor's own words (``sdi:1`` on Tessera,
  ``sdi1`` on HELIOS, an input name on NovaStar); each driver checks its own form.
- ``group_brightness.<group>``: one group's brightness in nits (Tessera groups, NovaStar
  configured cabinet groups); ``<group>`` is the processor's group id.
"""

from __future__ import annotations

import math
import re
from abc import abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from drivers.device import CommandError, Device, Problem
from drivers.led import protocol as p

INPUT = "input"
GROUP_PREFIX = "group_brightness."
PRESET_RECALL = "preset_recall"
GROUP_BRIGHTNESS = "group_brightness"
# reported only (status a processor may or may not give)
TEMPERATURE = "temperature"
PANELS = "panels"
ALERTS = "alerts"
BRIGHTNESS_OUTPUT = "brightness_output"

FEATURES: tuple[str, ...] = (*p.PARAMS, INPUT, GROUP_BRIGHTNESS, PRESET_RECALL, TEMPERATURE,
                             PANELS, ALERTS, BRIGHTNESS_OUTPUT)
"""Every feature a driver may lack: the settable keys, the actions and the status reports."""

VENDORS: dict[str, str] = {
    "osc": "stagectl OSC",
    "tessera": "Brompton Tessera",
    "helios": "Megapixel HELIOS",
    "novastar": "NovaStar COEX",
}
_INPUT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9:_. -]{0,47}$")
_GROUP_RE = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


def feature_of(key: str) -> str:
    """The feature of a desired-state key (``group_brightness.3`` -> ``group_brightness``)."""
    return GROUP_BRIGHTNESS if key.startswith(GROUP_PREFIX) else key


def group_key(group: str | int) -> str:
    """The desired-state key of one group's brightness."""
    return f"{GROUP_PREFIX}{group}"


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What one driver's processor can do.

    Attributes:
        protocol: the config's ``driver`` word (``osc``, ``tessera``, ``helios``, ``novastar``).
        unsupported: feature -> why, in English (``"no output frame rate in the Tessera API"``).
        test_patterns: the model's test patterns this processor can show (``off`` always).
    """

    protocol: str
    unsupported: Mapping[str, str] = field(default_factory=dict)
    test_patterns: tuple[str, ...] = p.TEST_PATTERNS

    @property
    def vendor(self) -> str:
        """The processor family in words (``Brompton Tessera``)."""
        return VENDORS.get(self.protocol, self.protocol)

    def supports(self, feature: str) -> bool:
        """Whether ``feature`` (or a desired-state key) is available."""
        return feature_of(feature) not in self.unsupported

    def as_dict(self) -> dict[str, Any]:
        """JSON form, in every device snapshot as ``capabilities``."""
        return {"protocol": self.protocol, "vendor": self.vendor,
                "supported": [f for f in FEATURES if f not in self.unsupported],
                "unsupported": dict(self.unsupported),
                "test_patterns": list(self.test_patterns)}


class Unsupported(CommandError):
    """A command for a feature this processor does not have; nothing was sent."""

    def __init__(self, device: str, feature: str, why: str, vendor: str) -> None:
        self.feature = feature
        self.why = why
        self.vendor = vendor
        super().__init__(device, f"{feature} is not supported by {vendor}: {why}", "unsupported")


def validate_input(value: object, device: str | None = None) -> str:
    """An input name in the processor's words (checked further by each driver)."""
    if not isinstance(value, str) or not _INPUT_RE.match(value):
        raise p.ValidationError(INPUT, value, "an input name such as sdi:1, hdmi1 or 12G-SDI "
                                "(letters, digits, ':', '_', '.', '-', up to 48)", device)
    return value


def validate_group(key: str, device: str | None = None) -> str:
    """The group id of a ``group_brightness.<group>`` key."""
    group = key[len(GROUP_PREFIX):]
    if not _GROUP_RE.match(group):
        raise p.ValidationError(key, group, "group_brightness.<group id> (letters, digits, "
                                "'_' or '-', up to 32)", device)
    return group


def validate_nits(key: str, value: object, max_nits: float, device: str | None = None) -> float:
    """A brightness in nits, 0..the wall's maximum, normalised to 0.1 nit."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or \
            not math.isfinite(float(value)):
        raise p.ValidationError(key, value, "a number in nits", device)
    nits = round(float(value), 1)
    if not 0.0 <= nits <= max_nits:
        raise p.ValidationError(key, value, f"0..{max_nits:g} nits (this wall's maximum)",
                                device)
    return nits


def validate_key(key: str, value: object, caps: Capabilities, max_nits: float,
                 device: str) -> Any:
    """Validate one desired-state key for a processor with ``caps``.

    Refuses, in this order: an unknown key (:class:`drivers.led.protocol.ValidationError`), a
    feature the processor lacks (:class:`Unsupported`), a value out of range, a test pattern the
    processor cannot show (:class:`Unsupported`).

    Returns:
        The normalised value.
    """
    if not isinstance(key, str):
        raise p.ValidationError("key", key, "a parameter name", device)
    feature = feature_of(key)
    if feature not in p.PARAMS and feature not in (INPUT, GROUP_BRIGHTNESS):
        raise p.ValidationError(key, value, "one of " + ", ".join(
            (*p.PARAMS, INPUT, GROUP_PREFIX + "<group>")), device)
    if feature in caps.unsupported:
        raise Unsupported(device, feature, caps.unsupported[feature], caps.vendor)
    if feature == INPUT:
        return validate_input(value, device)
    if feature == GROUP_BRIGHTNESS:
        validate_group(key, device)
        return validate_nits(key, value, max_nits, device)
    if key == "brightness_nits":
        return validate_nits(key, value, max_nits, device)
    normalised = p.PARAMS[key].validate(value, device)
    if key == "test_pattern" and normalised not in caps.test_patterns:
        raise Unsupported(device, f"test_pattern {normalised}",
                          "this processor has no such pattern", caps.vendor)
    return normalised


DEGRADED_TEMPERATURE_C = 55.0


def wall_problems(reported: Mapping[str, Any]) -> list[str]:
    """What in an LED processor's reported status degrades it: panels offline, a hot processor."""
    problems: list[str] = []
    online, total = reported.get("panels_online"), reported.get("panels_total")
    if isinstance(online, int) and isinstance(total, int) and online < total:
        problems.append(Problem(f"{total - online} of {total} panels offline",
                                "panels_offline", offline=total - online, total=total))
    temp = reported.get("temperature_c")
    if isinstance(temp, float) and temp >= DEGRADED_TEMPERATURE_C:
        problems.append(Problem(f"processor at {temp:.1f} C", "processor_hot",
                                temperature_c=round(temp, 1)))
    return problems


class LedDevice(Device):
    """An LED processor, whatever its wire: the interface the engine drives.

    Subclasses set :attr:`capabilities` and implement :meth:`recall_preset` and
    :meth:`inject_fault`; :meth:`validate` and :meth:`adopt_reported` are shared.
    """

    kind = "led"
    capabilities: Capabilities
    max_brightness_nits: float

    def validate(self, key: str, value: object) -> Any:
        """Validate one desired-state key against the model, the wall and the processor."""
        return validate_key(key, value, self.capabilities, self.max_brightness_nits, self.name)

    def require(self, feature: str) -> None:
        """Raise :class:`Unsupported` unless this processor has ``feature``."""
        why = self.capabilities.unsupported.get(feature)
        if why is not None:
            raise Unsupported(self.name, feature, why, self.capabilities.vendor)

    def validate_preset(self, number: object) -> int:
        """A preset number this processor can recall (default 1..128)."""
        self.require(PRESET_RECALL)
        return p.validate_preset(number, self.name)

    def settable_keys(self) -> list[str]:
        """Reported keys that are desired-state keys (what :meth:`adopt_reported` takes)."""
        return [k for k in self.reported
                if (k in p.PARAMS or k == INPUT or k.startswith(GROUP_PREFIX))
                and self.capabilities.supports(k)]

    def adopt_reported(self) -> dict[str, Any]:
        """Make the reported settings the desired state (accept another client's changes).

        A reported value the model cannot command (a vendor-only test pattern such as
        ``tessera:smpte-bars``, a brightness above the wall's maximum) is left out.
        """
        adopted: dict[str, Any] = {}
        for key in self.settable_keys():
            try:
                adopted[key] = self.validate(key, self.reported[key])
            except (p.ValidationError, Unsupported):
                continue
        self.desired.update(adopted)
        self._emit("desired", adopted)
        return adopted

    def snapshot(self) -> dict[str, Any]:
        """The device snapshot plus ``capabilities`` (and ``processor``, when known)."""
        snap = super().snapshot()
        snap["capabilities"] = self.capabilities.as_dict()
        return snap

    @abstractmethod
    async def recall_preset(self, number: object) -> int:
        """Recall a preset (an action: not kept as desired state); returns its number."""

    @abstractmethod
    async def inject_fault(self, fault: str, value: float) -> None:
        """Ask a *simulated* processor to misbehave (``stagectl led fault``)."""
