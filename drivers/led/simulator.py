"""A simulated LED processor that speaks the stagectl LED OSC protocol on UDP.

It behaves like a processor, not an echo: brightness ramps towards its setting, commands take
a processing latency, the processor temperature follows the light output with a thermal lag,
panels can drop out under fault injection, and every change (from any client: the engine, a
front panel, ``oscsend``) is pushed to all subscribed clients.

Bundles follow OSC 1.0: one whose time tag is "immediately" or already past is applied at once
(its messages together), one with a future time tag is held and applied at that time
(:class:`drivers.osc.BundleHold`, bounded: ``max_bundle_ahead_s``, ``max_held_bundles``,
``max_held_messages``). Every refused datagram or message is answered with ``/led/error`` and
counted (``docs/protocols/led-osc.md``).

Run one alone with ``python -m drivers.led.simulator --listen 127.0.0.1:9000``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import secrets
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from drivers.led import protocol as p
from drivers.osc import (
    BUNDLE,
    BundleHold,
    OscArg,
    OscDecodeError,
    OscEncodeError,
    OscMessage,
    OscTimingError,
    decode_datagram,
)
from drivers.osc import encode_message as enc

log = logging.getLogger(__name__)

Addr = tuple[str, int]

# Simulator-only fault injection addresses (documented in docs/protocols/led-osc.md).
FAULT_PANELS = "/sim/fault/panels_offline"
FAULT_MUTE = "/sim/fault/mute"
FAULT_TEMPERATURE = "/sim/fault/temperature_offset"


@dataclass
class LedSimSettings:
    """Behaviour of one simulated processor."""

    name: str = "led-sim"
    host: str = "127.0.0.1"
    port: int = 9000
    panels_total: int = 240
    max_brightness_nits: float = 1500.0
    latency_ms: float = 2.0
    ramp_nits_per_s: float = 3000.0
    ambient_c: float = 27.0
    thermal_tau_s: float = 20.0
    over_temperature_c: float = 60.0
    subscription_ttl_s: float = p.SUBSCRIPTION_TTL_DEFAULT_S
    status_interval_s: float = 1.0
    max_bundle_ahead_s: float = 60.0
    max_held_bundles: int = 64
    max_held_messages: int = 1024


class PhysicsSettings(Protocol):
    """What the wall's ramp and thermal model read (every LED simulator's settings have it)."""

    ramp_nits_per_s: float
    max_brightness_nits: float
    ambient_c: float
    thermal_tau_s: float


def step_physics(settings: PhysicsSettings, output_nits: float, target_nits: float,
                 blackout: bool, temperature_c: float, temperature_offset_c: float,
                 dt: float) -> tuple[float, float]:
    """One step of a simulated wall: ``(light output, processor temperature)`` after ``dt`` s.

    Blackout cuts the light at once; otherwise it ramps towards ``target_nits`` at
    ``ramp_nits_per_s``. The processor heats with the light output (35 C above ambient at the
    wall's maximum) and follows with a first-order lag of ``thermal_tau_s``.
    """
    out = output_nits
    if blackout:
        out = 0.0
    elif out != target_nits:
        step = settings.ramp_nits_per_s * dt
        out = target_nits if abs(target_nits - out) <= step else \
            out + step * (1 if target_nits > out else -1)
    heat = 35.0 * out / max(settings.max_brightness_nits, 1.0)
    equilibrium = settings.ambient_c + heat + temperature_offset_c
    alpha = min(1.0, dt / max(settings.thermal_tau_s, 1e-3))
    return out, temperature_c + (equilibrium - temperature_c) * alpha


ERROR_REPLIES_PER_S = 20  # /led/error answers per sender per second; the rest are counted
ERROR_SENDERS_KEPT = 256  # senders whose answer budget is remembered


@dataclass
class SimCounters:
    """What the simulator saw on the wire.

    ``rejected`` counts every refusal; ``malformed``, ``unknown``, ``wrong_type`` and
    ``bundles_refused`` say why (each is also in ``rejected``). Each is answered with
    ``/led/error`` unless the sender has had :data:`ERROR_REPLIES_PER_S` answers in the last
    second (``errors_unanswered``): a spoofed flood must not turn the processor into an
    amplifier aimed at someone else.
    """

    received: int = 0
    malformed: int = 0
    rejected: int = 0
    unknown: int = 0
    wrong_type: int = 0
    bundles_held: int = 0
    bundles_refused: int = 0
    errors_unanswered: int = 0
    sent: int = 0


@dataclass
class _State:
    values: dict[str, Any] = field(default_factory=dict)
    output_nits: float = 0.0
    temperature_c: float = 27.0
    panels_offline: int = 0
    temperature_offset_c: float = 0.0
    preset: int = 0
    alerts: tuple[str, ...] = ()


DEFAULTS: dict[str, Any] = {
    "brightness_nits": 1000.0,
    "colour_temperature_k": 6500,
    "gamma": 2.4,
    "blackout": False,
    "freeze": False,
    "test_pattern": "off",
    "output_frame_rate_hz": 25.0,
    "genlock_source": "internal",
    "genlock_phase_deg": 0.0,
}


def _factory_presets() -> dict[int, dict[str, Any]]:
    return {
        1: {"brightness_nits": 1000.0, "colour_temperature_k": 6500, "gamma": 2.4},
        2: {"brightness_nits": 600.0, "colour_temperature_k": 3200, "gamma": 2.4},
        3: {"brightness_nits": 1200.0, "colour_temperature_k": 5600, "gamma": 2.2},
        4: {"brightness_nits": 300.0, "colour_temperature_k": 4300, "gamma": 2.6},
    }


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, sim: LedSimulator) -> None:
        self.sim = sim

    def datagram_received(self, data: bytes, addr: Addr) -> None:
        self.sim._datagram(data, (addr[0], addr[1]))

    def error_received(self, exc: Exception) -> None:  # ICMP from a vanished client
        log.debug("%s: send error %s", self.sim.settings.name, exc)


class LedSimulator:
    """One simulated LED processor bound to a UDP port."""

    def __init__(self, settings: LedSimSettings) -> None:
        self.settings = settings
        self.counters = SimCounters()
        self._error_budget: dict[Addr, tuple[float, int]] = {}  # sender: (second, answered)
        self.session = secrets.token_hex(4)
        self.state = _State(values=dict(DEFAULTS), temperature_c=settings.ambient_c)
        self.state.output_nits = float(DEFAULTS["brightness_nits"])
        self.presets = _factory_presets()
        self.subscribers: dict[Addr, float] = {}
        self.muted = False
        self._transport: asyncio.DatagramTransport | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._last_tick = time.monotonic()
        self._hold: BundleHold[Addr] = BundleHold(
            self._apply_due, max_ahead_s=settings.max_bundle_ahead_s,
            max_bundles=settings.max_held_bundles, max_messages=settings.max_held_messages)

    @property
    def held_bundles(self) -> int:
        """Parts of bundles waiting for their time tag."""
        return self._hold.held_bundles

    @property
    def name(self) -> str:
        """The simulator's name."""
        return self.settings.name

    @property
    def address(self) -> Addr:
        """The bound (host, port); the port is real even when 0 was asked for."""
        if self._transport is None:
            return (self.settings.host, self.settings.port)
        sock = self._transport.get_extra_info("sockname")
        return (sock[0], sock[1])

    @property
    def values(self) -> dict[str, Any]:
        """Current parameter settings (what a front panel shows)."""
        return dict(self.state.values)

    async def start(self) -> None:
        """Bind the UDP port and start the ramp/thermal/status loops."""
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _Protocol(self), local_addr=(self.settings.host, self.settings.port)
        )
        self._transport = transport
        self._last_tick = time.monotonic()
        self._tasks = [
            asyncio.create_task(self._physics_loop(), name=f"{self.settings.name}-physics"),
            asyncio.create_task(self._status_loop(), name=f"{self.settings.name}-status"),
        ]
        log.info("%s: LED simulator on udp://%s:%d", self.settings.name, *self.address)

    async def stop(self) -> None:
        """Close the socket and stop the loops; held bundles are dropped."""
        self._hold.clear()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        if self._transport is not None:
            self._transport.close()
            self._transport = None
            await asyncio.sleep(0)  # let the loop release the port before returning

    # ---- wire -------------------------------------------------------------------------

    def _send(self, addr: Addr, address: str, args: tuple[tuple[str, OscArg], ...] = ()) -> None:
        if self._transport is None or self.muted:
            return
        try:
            self._transport.sendto(enc(address, args), addr)
            self.counters.sent += 1
        except (OscEncodeError, OSError) as exc:
            log.debug("%s: send to %s failed: %s", self.settings.name, addr, exc)

    def _push(self, address: str, args: tuple[tuple[str, OscArg], ...] = ()) -> None:
        now = time.monotonic()
        for addr, expires in list(self.subscribers.items()):
            if expires < now:
                del self.subscribers[addr]
            else:
                self._send(addr, address, args)

    def _datagram(self, data: bytes, addr: Addr) -> None:
        self.counters.received += 1
        try:
            packet = decode_datagram(data)
        except OscDecodeError as exc:
            self.counters.malformed += 1
            log.debug("%s: malformed datagram from %s: %s", self.settings.name, addr, exc)
            self._reject(addr, exc.address or "", f"malformed OSC: {exc.reason}")
            return
        try:
            self.counters.bundles_held += self._hold.receive(packet, addr)
        except OscTimingError as exc:
            self.counters.bundles_refused += 1
            self._reject(addr, BUNDLE, str(exc))

    def _apply_due(self, messages: tuple[OscMessage, ...], addr: Addr) -> None:
        """A message, or a bundle whose time has come: its messages are handled together."""
        delay = self.settings.latency_ms / 1000.0
        if delay > 0:
            asyncio.get_running_loop().call_later(delay, self._handle_all, messages, addr)
        else:
            self._handle_all(messages, addr)

    def _handle_all(self, messages: tuple[OscMessage, ...], addr: Addr) -> None:
        for msg in messages:
            self._handle(msg, addr)

    def _reject(self, addr: Addr, address: str, reason: str) -> None:
        self.counters.rejected += 1
        now = time.monotonic()
        second, count = self._error_budget.get(addr, (now, 0))
        if now - second >= 1.0:
            second, count = now, 0
        if count >= ERROR_REPLIES_PER_S:
            self.counters.errors_unanswered += 1
            return
        if addr not in self._error_budget and len(self._error_budget) >= ERROR_SENDERS_KEPT:
            self._error_budget.clear()  # bounded: a spoofer cycling sources starts them afresh
        self._error_budget[addr] = (second, count + 1)
        self._send(addr, p.ERROR, (("s", address), ("s", reason[:200])))

    def _refuse(self, addr: Addr, address: str, exc: p.ValidationError) -> None:
        if isinstance(exc, p.WireTypeError):
            self.counters.wrong_type += 1
        self._reject(addr, address, str(exc))

    def _handle(self, msg: OscMessage, addr: Addr) -> None:
        if msg.address.startswith("/sim/"):
            self._handle_fault(msg, addr)
            return
        if self.muted:
            return
        param = p.BY_ADDRESS.get(msg.address)
        if param is not None:
            try:
                value = p.coerce_wire(param, msg)
                if param.key == "brightness_nits" and value > self.settings.max_brightness_nits:
                    raise p.ValidationError(
                        param.key, value, f"0..{self.settings.max_brightness_nits:g} nits "
                        "(panel maximum)")
            except p.ValidationError as exc:
                self._refuse(addr, msg.address, exc)
                return
            self._apply(param.key, value)
            return
        if msg.address == p.SUBSCRIBE:
            try:
                ttl = p.coerce_wire_ttl(msg, self.settings.subscription_ttl_s)
            except p.ValidationError as exc:
                self._refuse(addr, msg.address, exc)  # not subscribed: the sender must know
                return
            new = addr not in self.subscribers
            self.subscribers[addr] = time.monotonic() + ttl
            self._send(addr, p.SESSION, (("s", self.session),))
            if new:
                self._dump(addr)
        elif msg.address == p.UNSUBSCRIBE:
            self.subscribers.pop(addr, None)
        elif msg.address == p.DUMP:
            self._send(addr, p.SESSION, (("s", self.session),))
            self._dump(addr)
        elif msg.address == p.PRESET_RECALL:
            try:
                number = p.coerce_wire_preset(msg)
            except p.ValidationError as exc:
                self._refuse(addr, msg.address, exc)
                return
            preset = self.presets.get(number)
            if preset is None:
                self._reject(addr, msg.address, f"preset {number} is empty")
                return
            for key, value in preset.items():
                self._apply(key, value)
            self.state.preset = number
            self._push(p.STATUS_PRESET, (("i", number),))
        elif msg.address == p.PRESET_SAVE:
            try:
                number = p.coerce_wire_preset(msg)
            except p.ValidationError as exc:
                self._refuse(addr, msg.address, exc)
                return
            self.presets[number] = {k: self.state.values[k] for k in
                                    ("brightness_nits", "colour_temperature_k", "gamma")}
            self.state.preset = number
            self._push(p.STATUS_PRESET, (("i", number),))
        else:
            self.counters.unknown += 1
            self._reject(addr, msg.address, "unknown address")

    def _handle_fault(self, msg: OscMessage, addr: Addr) -> None:
        arg = msg.args[0] if msg.args else 0
        if len(msg.args) > 1 or msg.type_tags[:1] not in ("", "i", "f") or \
                not isinstance(arg, (int, float)) or isinstance(arg, bool):
            self.counters.wrong_type += 1
            self._reject(addr, msg.address, "one numeric argument ('i' or 'f') expected")
            return
        if msg.address == FAULT_PANELS:
            self.state.panels_offline = max(0, min(self.settings.panels_total, int(arg)))
            self._push_status()
        elif msg.address == FAULT_MUTE:
            self.muted = bool(arg)
        elif msg.address == FAULT_TEMPERATURE:
            self.state.temperature_offset_c = float(arg)
        else:
            self.counters.unknown += 1
            self._reject(addr, msg.address, "unknown simulator address")

    def _apply(self, key: str, value: Any) -> None:
        self.state.values[key] = value
        param = p.PARAMS[key]
        wire: OscArg = int(value) if param.tag == "i" else value
        self._push(param.address, ((param.tag, wire),))
        if key in ("blackout", "brightness_nits"):
            self._push_output()

    def _dump(self, addr: Addr) -> None:
        for key, param in p.PARAMS.items():
            value = self.state.values[key]
            wire: OscArg = int(value) if param.tag == "i" else value
            self._send(addr, param.address, ((param.tag, wire),))
        self._send(addr, p.STATUS_OUTPUT, (("f", self.state.output_nits),))
        self._send(addr, p.STATUS_PRESET, (("i", self.state.preset),))
        self._send_status(addr)
        self._send(addr, p.DUMP + "/end")

    # ---- physics ----------------------------------------------------------------------

    def _target_output(self) -> float:
        if self.state.values["blackout"]:
            return 0.0
        return float(self.state.values["brightness_nits"])

    def _push_output(self) -> None:
        self._push(p.STATUS_OUTPUT, (("f", round(self.state.output_nits, 1)),))

    def tick(self, dt: float) -> bool:
        """Advance the ramp and thermal model by ``dt`` seconds; True if the output moved."""
        target = self._target_output()
        blackout = bool(self.state.values["blackout"])
        before = self.state.output_nits
        moved = before != 0.0 if blackout else before != target
        self.state.output_nits, self.state.temperature_c = step_physics(
            self.settings, before, target, blackout, self.state.temperature_c,
            self.state.temperature_offset_c, dt)
        return moved

    async def _physics_loop(self) -> None:
        while True:
            await asyncio.sleep(0.05)
            now = time.monotonic()
            dt, self._last_tick = now - self._last_tick, now
            if self.tick(dt):
                self._push_output()

    def _alerts(self) -> tuple[str, ...]:
        alerts: list[str] = []
        if self.state.panels_offline:
            alerts.append(f"panels offline: {self.state.panels_offline}")
        if self.state.temperature_c >= self.settings.over_temperature_c:
            alerts.append(f"over temperature: {self.state.temperature_c:.1f} C")
        return tuple(alerts)

    def _status_args(self) -> list[tuple[str, tuple[tuple[str, OscArg], ...]]]:
        total = self.settings.panels_total
        online = total - self.state.panels_offline
        out: list[tuple[str, tuple[tuple[str, OscArg], ...]]] = [
            (p.STATUS_TEMPERATURE, (("f", round(self.state.temperature_c, 2)),)),
            (p.STATUS_PANELS, (("i", online), ("i", total))),
        ]
        out.append((p.STATUS_ALERTS, tuple(("s", a) for a in self._alerts())))
        return out

    def _send_status(self, addr: Addr) -> None:
        for address, args in self._status_args():
            self._send(addr, address, args)

    def _push_status(self) -> None:
        for address, args in self._status_args():
            self._push(address, args)

    async def _status_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.status_interval_s)
            self._push_status()


async def _amain(settings: LedSimSettings) -> None:
    sim = LedSimulator(settings)
    await sim.start()
    try:
        await asyncio.Event().wait()
    finally:
        await sim.stop()


def main() -> None:
    """Run one simulator from the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--listen", default="127.0.0.1:9000", help="host:port to bind")
    parser.add_argument("--panels", type=int, default=240)
    parser.add_argument("--latency-ms", type=float, default=2.0)
    args = parser.parse_args()
    host, _, port = args.listen.rpartition(":")
    settings = LedSimSettings(host=host, port=int(port), panels_total=args.panels,
                              latency_ms=args.latency_ms)
    logging.basicConfig(level=logging.INFO)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_amain(settings))


if __name__ == "__main__":
    main()
