"""What the vendor simulators (Tessera, HELIOS, NovaStar) share: the wall, the server, the faults.

:class:`Wall` is the simulated processor's look and physics in stagectl's model units (nits,
kelvin, flags, the model's test-pattern names, ``input``, ``group_brightness.<g>``): brightness
ramps towards its setting, the processor temperature follows the light output with a thermal
lag, panels drop out under fault injection, presets recall whole looks, and a restart brings
the power-on look back. Each vendor simulator translates its own tree to and from the wall, so
the three behave alike where the processors do, and differ only on the wire.

:class:`VendorSimulator` is a real aiohttp HTTP server on loopback with one catch-all route (the
vendor's handler), a processing latency, optional Basic or Digest auth, and the faults every
vendor shares, set with ``POST /__sim__/fault`` ``{"fault": name, "value": number}`` (always
answered, even while muted):

========================  ===================================================================
``mute``                  1: accept connections, never answer (the driver's timeout)
``html``                  1: answer every request with a login page (a captive portal)
``redirect``              1: answer ``302`` to ``/login.html``
``malformed``             1: answer ``200 application/json`` with a truncated body
``http_error``            a status code (e.g. 500) to answer with; 0 clears
``panels_offline``        how many panels drop out
``temperature_offset``    degrees C added to the thermal model
``restart``               1: restart now (uptime back to 0, power-on look)
========================  ===================================================================

Vendor simulators add their own (``ip_control_disabled``, ``no_project``, ``locked``,
``busy``) through :meth:`VendorSimulator.vendor_fault`.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import json
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from drivers.led import protocol as p
from drivers.led.http import SIM_FAULT_PATH
from drivers.led.model import GROUP_PREFIX, group_key
from drivers.led.simulator import step_physics

log = logging.getLogger(__name__)

Addr = tuple[str, int]
MAX_REQUEST_BYTES = 256 * 1024
MAX_WS_CLIENTS = 32

WALL_DEFAULTS: dict[str, Any] = {
    "brightness_nits": 1000.0,
    "colour_temperature_k": 6500,
    "gamma": 2.4,
    "blackout": False,
    "freeze": False,
    "test_pattern": "off",
    "input": "sdi:1",
}


def factory_presets() -> dict[int, dict[str, Any]]:
    """Presets 1..4, each a whole look (not just a brightness)."""
    return {
        1: {"brightness_nits": 1000.0, "colour_temperature_k": 6500, "gamma": 2.4,
            "blackout": False, "freeze": False, "test_pattern": "off"},
        2: {"brightness_nits": 600.0, "colour_temperature_k": 3200, "gamma": 2.4,
            "blackout": False, "freeze": False, "test_pattern": "off"},
        3: {"brightness_nits": 1200.0, "colour_temperature_k": 5600, "gamma": 2.2,
            "blackout": False, "freeze": False, "test_pattern": "off"},
        4: {"brightness_nits": 300.0, "colour_temperature_k": 4300, "gamma": 2.6,
            "blackout": False, "freeze": False, "test_pattern": "grid"},
    }


@dataclass
class VendorSimSettings:
    """Behaviour of one simulated vendor processor."""

    name: str = "led-sim"
    host: str = "127.0.0.1"
    port: int = 0
    panels_total: int = 240
    max_brightness_nits: float = 1500.0
    latency_ms: float = 2.0
    ramp_nits_per_s: float = 3000.0
    ambient_c: float = 27.0
    thermal_tau_s: float = 20.0
    over_temperature_c: float = 60.0
    groups: int = 4
    credentials: tuple[str, str] | None = None
    auth: str = "basic"  # or "digest" (HELIOS offers both)
    options: dict[str, Any] = field(default_factory=dict)  # vendor-specific knobs


Listener = Callable[[dict[str, Any]], None]


class Wall:
    """The simulated look and physics, in model units (see the module doc)."""

    def __init__(self, settings: VendorSimSettings) -> None:
        self.settings = settings
        self.values: dict[str, Any] = {}
        self.presets = factory_presets()
        self.preset = 0
        self.output_nits = 0.0
        self.temperature_c = settings.ambient_c
        self.panels_offline = 0
        self.temperature_offset_c = 0.0
        self.booted = time.monotonic()
        self._listeners: list[Listener] = []
        self._recalling = False
        self.power_on()

    def power_on(self) -> None:
        """The look a processor comes up with (and returns to on a restart)."""
        self.values = dict(WALL_DEFAULTS)
        for g in range(1, self.settings.groups + 1):
            self.values[group_key(g)] = self.settings.max_brightness_nits
        self.preset = 0
        self.output_nits = float(self.values["brightness_nits"])
        self.booted = time.monotonic()

    @property
    def uptime_s(self) -> float:
        """Seconds since power-on (or the last restart)."""
        return time.monotonic() - self.booted

    @property
    def groups(self) -> list[str]:
        """The group ids present (``"1"``, ``"2"``, ...)."""
        return [k[len(GROUP_PREFIX):] for k in self.values if k.startswith(GROUP_PREFIX)]

    @property
    def panels_online(self) -> int:
        """Panels answering."""
        return self.settings.panels_total - self.panels_offline

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener(changes)`` after every change from any client."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def set(self, changes: dict[str, Any]) -> dict[str, Any]:
        """Apply model-unit changes (already checked by the vendor handler); returns the delta."""
        delta = {k: v for k, v in changes.items() if self.values.get(k) != v}
        self.values.update(delta)
        if delta and not self._recalling and any(not k.startswith(GROUP_PREFIX) for k in delta):
            self.preset = 0  # the look is no longer the recalled preset's
        if delta:
            for listener in list(self._listeners):
                try:
                    listener(delta)
                except Exception:
                    log.exception("%s: listener failed", self.settings.name)
        return delta

    def recall(self, number: int) -> dict[str, Any]:
        """Apply preset ``number`` (a whole look); KeyError when the slot is empty."""
        look = self.presets[number]
        self._recalling = True
        try:
            delta = self.set(dict(look))
        finally:
            self._recalling = False
        self.preset = number
        return delta

    def target_output(self) -> float:
        """The light the wall is heading for."""
        return 0.0 if self.values["blackout"] else float(self.values["brightness_nits"])

    def tick(self, dt: float) -> None:
        """Advance the brightness ramp and the thermal model by ``dt`` seconds."""
        self.output_nits, self.temperature_c = step_physics(
            self.settings, self.output_nits, self.target_output(),
            bool(self.values["blackout"]), self.temperature_c, self.temperature_offset_c, dt)

    def alerts(self) -> list[tuple[str, str]]:
        """Current alerts as ``(key, English text)``."""
        out: list[tuple[str, str]] = []
        if self.panels_offline:
            out.append(("panelsOffline", f"panels offline: {self.panels_offline}"))
        if self.temperature_c >= self.settings.over_temperature_c:
            out.append(("overTemp", f"over temperature: {self.temperature_c:.1f} C"))
        return out


def float32(value: float) -> float:
    """``value`` as a float32 widened back to a double (HELIOS echoes numbers this way)."""
    import struct

    return float(struct.unpack("<f", struct.pack("<f", float(value)))[0])


@dataclass
class SimCounters:
    """What a vendor simulator saw."""

    requests: int = 0
    refused: int = 0  # answered with an error (bad body, unknown path, out of range, ...)
    unauthorised: int = 0
    faults: int = 0
    ws_messages: int = 0
    by_reason: dict[str, int] = field(default_factory=dict)

    def refuse(self, reason: str) -> None:
        """Count one refused request under ``reason``."""
        self.refused += 1
        if reason in self.by_reason or len(self.by_reason) < 64:
            self.by_reason[reason] = self.by_reason.get(reason, 0) + 1


class VendorSimulator:
    """A vendor processor's HTTP server on loopback (see the module doc).

    Subclasses implement :meth:`handle` (every request that passed auth and faults) and may
    override :meth:`vendor_fault` and :meth:`disabled_reply`.
    """

    protocol = "http"

    def __init__(self, settings: VendorSimSettings) -> None:
        self.settings = settings
        self.wall = Wall(settings)
        self.counters = SimCounters()
        self.faults: dict[str, float] = {}
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._released = asyncio.Event()
        self._nonces: dict[str, float] = {}

    # ---- lifecycle --------------------------------------------------------------------

    @property
    def name(self) -> str:
        """The simulator's name."""
        return self.settings.name

    @property
    def address(self) -> Addr:
        """The bound (host, port); real even when port 0 was asked for."""
        if self._site is not None and self._site._server is not None:
            sockets = getattr(self._site._server, "sockets", None) or []
            if sockets:
                host, port = sockets[0].getsockname()[:2]
                return (host, port)
        return (self.settings.host, self.settings.port)

    @property
    def url(self) -> str:
        """``http://host:port``."""
        host, port = self.address
        return f"http://{host}:{port}"

    async def start(self) -> None:
        """Bind the port and start the physics loop."""
        app = web.Application(client_max_size=MAX_REQUEST_BYTES,
                              middlewares=[self._middleware])
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        self._released = asyncio.Event()
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False,
                                     shutdown_timeout=0.5)
        await self._runner.setup()
        self._site = web.TCPSite(self._runner, self.settings.host, self.settings.port,
                                 reuse_address=True)
        try:
            await self._site.start()
        except OSError:
            await self._runner.cleanup()
            self._runner = self._site = None
            raise
        self._tasks = [asyncio.create_task(self._physics_loop(),
                                           name=f"{self.settings.name}-physics")]
        await self.started()
        log.info("%s: %s simulator on %s", self.settings.name, self.protocol, self.url)

    async def started(self) -> None:
        """Hook for subclasses (start their own loops)."""

    async def stop(self) -> None:
        """Stop serving and release the port."""
        self._released.set()  # muted handlers return
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        await self.stopping()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = self._site = None

    async def stopping(self) -> None:
        """Hook for subclasses (close WebSockets) before the server goes."""

    async def _physics_loop(self) -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(0.05)
            now = time.monotonic()
            self.wall.tick(now - last)
            last = now

    # ---- faults -----------------------------------------------------------------------

    def fault(self, name: str, value: float) -> None:
        """Set a fault (see the module doc); raises ValueError for an unknown one."""
        if name == "panels_offline":
            self.wall.panels_offline = max(0, min(self.settings.panels_total, int(value)))
        elif name == "temperature_offset":
            self.wall.temperature_offset_c = max(-100.0, min(200.0, float(value)))
        elif name == "restart":
            if value:
                self.restart()
        elif name in ("mute", "html", "redirect", "malformed", "http_error"):
            self.faults[name] = float(value)
            if name == "mute" and not value:
                self._released.set()
                self._released = asyncio.Event()
        elif not self.vendor_fault(name, value):
            raise ValueError(f"unknown fault {name!r}")
        self.counters.faults += 1

    def vendor_fault(self, name: str, value: float) -> bool:
        """A vendor-specific fault; return False when ``name`` is not one."""
        return False

    def restart(self) -> None:
        """Restart: uptime back to zero and the power-on look."""
        self.wall.power_on()

    def disabled_reply(self) -> web.StreamResponse | None:
        """A vendor's reply while control is switched off (None: control is on)."""
        return None

    async def _fault_endpoint(self, request: web.Request) -> web.Response:
        try:
            body = json.loads(await request.read())
            name, value = body["fault"], body.get("value", 1)
            if not isinstance(name, str) or isinstance(value, bool) or \
                    not isinstance(value, (int, float)):
                raise ValueError("fault must be a string and value a number")
            self.fault(name, float(value))
        except (ValueError, KeyError, TypeError) as exc:
            return web.json_response({"error": str(exc)[:200]}, status=400)
        return web.json_response({"fault": name, "value": value})

    # ---- request path -----------------------------------------------------------------

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.counters.requests += 1
        if request.path == SIM_FAULT_PATH and request.method == "POST":
            return await self._fault_endpoint(request)
        if self.faults.get("mute"):
            released = self._released
            with contextlib.suppress(asyncio.CancelledError):
                await released.wait()
            raise web.HTTPServiceUnavailable()  # only reached on unmute or stop
        if self.settings.latency_ms:
            await asyncio.sleep(self.settings.latency_ms / 1000.0)
        if self.faults.get("html"):
            return web.Response(text="<!DOCTYPE html><html><head><title>Log in</title></head>"
                                "<body><form action='/login'>Network login</form></body></html>",
                                content_type="text/html")
        if self.faults.get("redirect"):
            return web.Response(status=302, headers={"Location": "/login.html"})
        if self.faults.get("malformed"):
            return web.Response(body=b'{"api": {"output": {"global-colour": {"brightn',
                                content_type="application/json")
        status = int(self.faults.get("http_error", 0))
        if 400 <= status <= 599:
            return web.Response(status=status, text=f"simulated HTTP {status}")
        denied = self._check_auth(request)
        if denied is not None:
            self.counters.unauthorised += 1
            return denied
        disabled = self.disabled_reply()
        if disabled is not None:
            return disabled
        try:
            response: web.StreamResponse = await handler(request)
        except web.HTTPException:
            raise
        except Exception:  # a simulator bug answers 500 and is logged; the server keeps going
            log.exception("%s: handler failed for %s %s", self.name, request.method,
                          request.path_qs[:200])
            self.counters.refuse("internal")
            return web.Response(status=500, text="internal error")
        return response

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        return await self.handle(request)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """The vendor API (every request that passed auth and the faults)."""
        raise NotImplementedError

    # ---- auth -------------------------------------------------------------------------

    def _check_auth(self, request: web.Request) -> web.Response | None:
        creds = self.settings.credentials
        if creds is None:
            return None
        header = request.headers.get("Authorization", "")
        if self.settings.auth == "digest":
            if header.startswith("Digest ") and self._digest_ok(request, header[7:], creds):
                return None
            nonce = secrets.token_hex(16)
            now = time.monotonic()
            self._nonces = {n: t for n, t in self._nonces.items() if now - t < 300}
            if len(self._nonces) < 1024:
                self._nonces[nonce] = now
            return web.Response(status=401, text="Unauthorized", headers={
                "WWW-Authenticate": f'Digest realm="M8 Processor", qop="auth", '
                                    f'nonce="{nonce}", algorithm=MD5'})
        if header.startswith("Basic "):
            try:
                user, _, password = base64.b64decode(header[6:], validate=True).decode(
                    "utf-8").partition(":")
            except (ValueError, UnicodeDecodeError):
                user, password = "", ""
            if secrets.compare_digest(user, creds[0]) and \
                    secrets.compare_digest(password, creds[1]):
                return None
        return web.Response(status=401, text="Unauthorized",
                            headers={"WWW-Authenticate": 'Basic realm="M8 Processor"'})

    def _digest_ok(self, request: web.Request, header: str, creds: tuple[str, str]) -> bool:
        fields: dict[str, str] = {}
        for part in header.split(","):
            key, _, value = part.strip().partition("=")
            fields[key.strip().lower()] = value.strip().strip('"')
        nonce = fields.get("nonce", "")
        if nonce not in self._nonces or fields.get("username") != creds[0]:
            return False
        realm = fields.get("realm", "")
        ha1 = hashlib.md5(f"{creds[0]}:{realm}:{creds[1]}".encode()).hexdigest()
        ha2 = hashlib.md5(f"{request.method}:{fields.get('uri', '')}".encode()).hexdigest()
        if fields.get("qop"):
            expected = hashlib.md5(
                f"{ha1}:{nonce}:{fields.get('nc', '')}:{fields.get('cnonce', '')}:"
                f"{fields.get('qop')}:{ha2}".encode()).hexdigest()
        else:
            expected = hashlib.md5(f"{ha1}:{nonce}:{ha2}".encode()).hexdigest()
        return secrets.compare_digest(expected, fields.get("response", ""))


def check_model(key: str, value: Any, max_nits: float) -> Any:
    """Check a model-unit value as a processor would (None when out of range or wrong type)."""
    try:
        if key == "brightness_nits" or key.startswith(GROUP_PREFIX):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                return None
            return float(value) if 0 <= float(value) <= max_nits else None
        if key in p.PARAMS:
            return p.PARAMS[key].validate(value)
    except (p.ValidationError, ValueError, TypeError):
        return None
    return value


# ---- running one simulator from the command line ----------------------------------------

def simulator_parser(description: str, default_listen: str) -> argparse.ArgumentParser:
    """The options every vendor simulator takes (``--listen``, ``--panels``, ``--latency-ms``)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--listen", default=default_listen, help="host:port to bind")
    parser.add_argument("--panels", type=int, default=240)
    parser.add_argument("--latency-ms", type=float, default=2.0)
    return parser


def settings_from(args: argparse.Namespace, name: str, **extra: Any) -> VendorSimSettings:
    """:class:`VendorSimSettings` from the common options plus a vendor's ``extra`` fields."""
    host, _, port = str(args.listen).rpartition(":")
    return VendorSimSettings(name=name, host=host or "127.0.0.1", port=int(port),
                             panels_total=args.panels, latency_ms=args.latency_ms, **extra)


def run_forever(simulator: Callable[[VendorSimSettings], VendorSimulator],
                settings: VendorSimSettings, path: str = "") -> None:
    """Serve one simulator until Ctrl-C, printing where it listens."""
    async def serve() -> None:
        sim = simulator(settings)
        await sim.start()
        print(f"{sim.protocol} simulator on {sim.url}{path}", flush=True)
        try:
            await asyncio.Event().wait()
        finally:
            await sim.stop()

    logging.basicConfig(level=logging.INFO)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())
