"""LED-processor driver over OSC/UDP (the stagectl LED address space).

The link is a subscription: the driver sends ``/led/subscribe`` as a keepalive; the processor
answers ``/led/session <id>`` and pushes every change from any client. Silence for
``timeout_s`` means offline; a new session id means the processor restarted. Either way,
when the peer answers again the desired state is re-applied (see :class:`drivers.device.Device`).

Only the configured processor speaks for the wall: a datagram from any other address or port
(another loopback address, another process on the same machine) is counted as
``rejected_datagrams`` and never keeps the link alive (``docs/protocols/led-osc.md``).

A bundle from the processor is applied at its OSC time tag (held until then, bounded, as the
simulator does); one refused for its time tags is counted as ``refused_bundles``.
"""

from __future__ import annotations

import re
import time
from typing import Any

from drivers.device import Backoff, CommandError, Problem
from drivers.led import protocol as p
from drivers.led.model import (
    Capabilities,
    LedDevice,
    Unsupported,
    feature_of,
    wall_problems,
)
from drivers.messages import Message, message
from drivers.osc import (
    BundleHold,
    OscDecodeError,
    OscMessage,
    OscTimingError,
    decode_datagram,
    encode_message,
)
from drivers.transport import Addr, UdpTransport

REJECTED_SOURCES_NAMED = 16  # distinct impostor sources announced as events; later ones counted
MAX_ALERTS, ALERT_CHARS = 32, 200  # what one alerts report may hold (one datagram, bounded)
_PANELS_ALERT = re.compile(r"panels offline: (\d+)$")
_TEMPERATURE_ALERT = re.compile(r"over temperature: (-?\d+(?:\.\d+)?) C$")
# simulator faults (docs/protocols/led-osc.md): name -> OSC address
SIM_FAULTS = {"panels_offline": "/sim/fault/panels_offline", "mute": "/sim/fault/mute",
              "temperature_offset": "/sim/fault/temperature_offset"}
OSC_CAPABILITIES = Capabilities("osc", unsupported={
    "input": "the stagectl LED OSC address space has no input selection",
    "group_brightness": "the stagectl LED OSC address space has no groups",
})


def alert_message(text: str) -> Message:
    """A processor alert as a message object (known alerts get their own code)."""
    found = _PANELS_ALERT.match(text)
    if found:
        return message("led_alert_panels_offline", count=int(found.group(1)))
    found = _TEMPERATURE_ALERT.match(text)
    if found:
        return message("led_alert_over_temperature", temperature_c=float(found.group(1)))
    return message("led_alert", text=text)


class OscLedProcessor(LedDevice):
    """An LED processor reached over OSC.

    Args:
        name: device name from the stage config.
        remote: processor (host, port).
        timeout_s: silence after which the link is declared lost.
        max_brightness_nits: the wall's limit; commands above it are refused before sending.
    """

    capabilities = OSC_CAPABILITIES

    def __init__(self, name: str, remote: Addr, *, timeout_s: float = 1.5,
                 keepalive_s: float = 0.5, max_brightness_nits: float = p.MAX_BRIGHTNESS_NITS,
                 backoff: Backoff | None = None) -> None:
        super().__init__(name, backoff or Backoff(initial_s=0.1, max_s=0.5))
        self.remote = remote
        self.timeout_s = timeout_s
        self.keepalive_s = keepalive_s
        self.max_brightness_nits = max_brightness_nits
        self.session: str | None = None
        self._last_rx = 0.0
        self._rejected_sources: set[Addr] = set()
        self._hold: BundleHold[None] = BundleHold(self._apply_due)
        self._transport = UdpTransport(remote, self._datagram, self._transport_error,
                                       on_rejected=self._rejected)

    # ---- Device hooks -----------------------------------------------------------------

    def validate(self, key: str, value: object) -> Any:
        """Validate one parameter against the address-space table and the wall's limit."""
        why = self.capabilities.unsupported.get(feature_of(key)) if isinstance(key, str) else None
        if why is not None:
            raise Unsupported(self.name, feature_of(key), why, self.capabilities.vendor)
        param = p.PARAMS.get(key)
        if param is None:
            raise p.ValidationError(key, value, "one of " + ", ".join(p.PARAMS), self.name)
        normalised = param.validate(value, self.name)
        if key == "brightness_nits" and normalised > self.max_brightness_nits:
            raise p.ValidationError(key, value, f"0..{self.max_brightness_nits:g} nits "
                                    "(this wall's maximum)", self.name)
        return normalised

    async def _open(self) -> None:
        await self._transport.open()

    async def _close(self) -> None:
        self._hold.clear()
        if self._transport.is_open:
            self._transport.send(encode_message(p.UNSUBSCRIBE))
        self._transport.close()

    def _probe(self) -> None:
        self._transport.send(encode_message(p.SUBSCRIBE))

    def _keepalive_interval(self) -> float:
        return self.keepalive_s

    def _link_alive(self) -> bool:
        return time.monotonic() - self._last_rx < self.timeout_s

    def _silence_reason(self) -> str:
        host, port = self.remote
        return Problem(f"no reply from udp://{host}:{port} for {self.timeout_s:g} s",
                       "no_reply", address=f"udp://{host}:{port}", seconds=self.timeout_s)

    def _send_desired(self, values: dict[str, Any]) -> None:
        for key, value in values.items():
            self._transport.send(p.PARAMS[key].encode(value))
            self.counters["commands_sent"] += 1

    async def safe_shutdown(self) -> None:
        """An LED wall is safe when it holds its picture: nothing is changed on exit."""
        self.event(message("led_stopping"))

    def _problems(self) -> list[str]:
        return wall_problems(self.reported)

    # ---- actions ----------------------------------------------------------------------

    async def recall_preset(self, number: object) -> int:
        """Recall a preset 1..128 (an action: it is not kept as desired state)."""
        preset = self.validate_preset(number)
        if not self.online:
            raise CommandError(self.name, f"cannot recall preset {preset}: "
                               f"{self.health.reason or 'offline'}", "device_offline")
        self._transport.send(encode_message(p.PRESET_RECALL, (("i", preset),)))
        self.counters["commands_sent"] += 1
        return preset

    def send_raw(self, address: str, args: tuple[tuple[str, Any], ...] = ()) -> None:
        """Send an arbitrary OSC message (simulator fault injection, diagnostics)."""
        self._transport.send(encode_message(address, args))

    async def inject_fault(self, fault: str, value: float) -> None:
        """Send a simulator fault (``/sim/fault/...``); only the OSC simulator's are known."""
        address = SIM_FAULTS.get(fault)
        if address is None:
            raise CommandError(self.name, f"the OSC simulator has no fault {fault!r}; it has "
                               + ", ".join(SIM_FAULTS), "invalid_value")
        self.send_raw(address, (("f", float(value)),))

    # ---- receive ----------------------------------------------------------------------

    def _transport_error(self, exc: Exception) -> None:
        self.counters["transport_errors"] += 1
        if self._connected.is_set():
            self._link_down(f"udp://{self.remote[0]}:{self.remote[1]}: {exc}")

    def _rejected(self, source: Addr) -> None:
        """A datagram from someone other than the processor: counted, announced once."""
        self.counters["rejected_datagrams"] += 1
        if source in self._rejected_sources or \
                len(self._rejected_sources) >= REJECTED_SOURCES_NAMED:
            return
        self._rejected_sources.add(source)
        host, port = self.remote
        self.event(message("led_foreign_datagrams", host=source[0], port=source[1],
                           expected=f"udp://{host}:{port}"), "warning")

    def _datagram(self, data: bytes) -> None:
        try:
            packet = decode_datagram(data)
        except OscDecodeError:
            self.counters["malformed"] += 1
            return
        self._last_rx = time.monotonic()
        try:
            held = self._hold.receive(packet, None)
        except OscTimingError:
            self.counters["refused_bundles"] += 1
            return
        if held:
            self.counters["held_bundles"] += held

    def _apply_due(self, messages: tuple[OscMessage, ...], _context: None) -> None:
        for msg in messages:
            try:
                self._message(msg)
            except (p.ValidationError, TypeError, ValueError, IndexError, OverflowError):
                self.counters["bad_reports"] += 1

    def _message(self, msg: OscMessage) -> None:
        param = p.BY_ADDRESS.get(msg.address)
        if param is not None:
            self._report({param.key: p.coerce_wire(param, msg)})
            return
        address, args = msg.address, msg.args
        if address == p.SESSION:
            session = str(args[0])
            if self.session is not None and session != self.session:
                self.event(message("led_restarted", old=self.session, new=session), "warning")
                self._connected.clear()  # force a re-apply
                self.session = session
                self._link_up(message("why_restart"))
                return
            self.session = session
            if not self._connected.is_set():
                self._link_up(message("why_subscribed"))
        elif not self._connected.is_set():
            return  # pushes before the session reply are ignored until subscribed
        elif address == p.STATUS_OUTPUT:
            self._report({"brightness_output_nits": round(float(args[0]), 3)})
        elif address == p.STATUS_TEMPERATURE:
            self._report({"temperature_c": round(float(args[0]), 3)})
            self._update_health()
        elif address == p.STATUS_PANELS:
            online, total = int(args[0]), int(args[1])
            self._report({"panels_online": online, "panels_total": total})
            self._update_health()
        elif address == p.STATUS_ALERTS:
            alerts = [str(a)[:ALERT_CHARS] for a in args[:MAX_ALERTS]]
            self._report({"alerts": alerts, "alert_problems": [alert_message(a) for a in alerts]})
        elif address == p.STATUS_PRESET:
            self._report({"preset": int(args[0])})
        elif address == p.ERROR:
            self.counters["errors_from_device"] += 1
            what = str(args[0]) if args else "?"
            why = str(args[1]) if len(args) > 1 else ""
            self.event(message("led_refused", what=what[:80], why=why[:200]), "warning")
        elif address == p.DUMP + "/end":
            pass
        else:
            self.counters["unknown_messages"] += 1
