"""The stage engine: owns the devices and serves clients over ZeroMQ.

``stagectl serve --config FILE`` runs one :class:`Engine`. Clients send JSON commands to the
ROUTER socket and watch the PUB socket (topic per device). Every exit path stops the devices
through their safe shutdown.

Requests are admitted with bounds (``docs/decisions/0046-engine-admission-and-urgent-path.md``):
a message over ``[engine] max_message_bytes`` drops the sender's connection before it is
buffered; make-safer commands (:data:`URGENT_COMMANDS`) run the moment they are read, ahead of
everything queued; the rest waits in per-client queues (:mod:`stagectl.engine.admission`)
served round robin, and a request over a bound is answered ``overloaded`` at once. Every request
read gets a reply, malformed ones a structured error and a ``bad_<kind>`` counter.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib
import logging
import time
from collections import Counter
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import zmq
import zmq.asyncio
from zmq.auth.asyncio import AsyncioAuthenticator
from zmq.utils.monitor import parse_monitor_message

from drivers.device import Device, DeviceEvent
from drivers.led.driver import OscLedProcessor
from drivers.led.http import read_credentials
from drivers.steps import finish_async
from drivers.tracking.device import TrackingSource
from drivers.tracking.timecode import RATES, StageClock
from drivers.transport import parse_address
from stagectl import bus
from stagectl.config import LedDeviceConfig, StageConfig, StageSection, TrackingDeviceConfig
from stagectl.engine import tracking as tracking_commands  # noqa: F401  (registers its commands)
from stagectl.engine.admission import FairQueue, Limits, Refused
from stagectl.engine.arm import build_arm  # also registers arm, safety and cue commands
from stagectl.engine.commands import COMMANDS, failure_from
from stagectl.engine.cues import CueList
from stagectl.engine.messages import event_data
from stagectl.engine.readiness import Readiness
from stagectl.engine.safety import Safety
from stagectl.engine.takes import TakeManager
from stagectl.engine.telemetry import MqttTelemetry
from stagectl.keys import Identity, authorized_identities, load_pair

log = logging.getLogger(__name__)

HEARTBEAT_S = 0.25  # consoles call the engine stale after 0.75 s of silence

# Make-safer commands: read, decoded and run at once, never queued behind other work
# (``safety.talent`` only with ``on: true``). Their handlers do not wait on devices.
URGENT_COMMANDS = frozenset({"estop", "arm.stop", "safety.disarm", "safety.talent"})
URGENT_PROBE_BYTES = 4096  # larger requests are never urgent: decoded when their turn comes
# Queued control commands older than an urgent one are answered ``superseded``, not run:
# nothing sent before an e-stop may take effect after it.
SAFETY_PREFIXES = ("arm.", "safety.", "cue.")  # audited when refused; superseded by e-stop
RECV_BATCH = 64  # messages read per turn of the loop ...
RECV_SLICE_S = 0.002  # ... or this long, whichever comes first, then the loop runs the rest
START_BATCH = 8  # queued requests started per turn of the loop
ROUTER_RCVHWM = 100  # messages buffered per client connection before ZeroMQ pushes back
PUB_MAX_MESSAGE_BYTES = 65536  # what a SUB may send the PUB socket (subscriptions)
LAG_PROBE_S = 0.01  # the loop-lag probe's period ...
LAG_STALL_S = 0.02  # ... and a wake-up this late counts as a stall (``loop_stalls``)
_SEND_MORE = int(zmq.SNDMORE | zmq.NOBLOCK)  # PUB frames: topic ...
_SEND_LAST = int(zmq.NOBLOCK)  # ... then the message
_gc_frozen = False


# driver word -> (module, class) of the vendor HTTP drivers, imported when a stage uses one
LED_VENDOR_DRIVERS = {
    "tessera": ("drivers.led.tessera.driver", "TesseraProcessor"),
    "helios": ("drivers.led.helios.driver", "HeliosProcessor"),
    "novastar": ("drivers.led.novastar.driver", "NovastarProcessor"),
}


def _build_led(cfg: Any, engine: Engine) -> Device:
    assert isinstance(cfg, LedDeviceConfig)
    if cfg.driver == "osc":
        return OscLedProcessor(cfg.name, parse_address(cfg.address),
                               timeout_s=cfg.link_timeout_s,
                               max_brightness_nits=cfg.max_brightness_nits)
    module, cls = LED_VENDOR_DRIVERS[cfg.driver]
    driver = getattr(importlib.import_module(module), cls)
    host, port = parse_address(cfg.address)
    try:
        credentials = read_credentials(cfg.credentials_file, cfg.credentials_env)
    except ValueError as exc:
        raise ValueError(f"{cfg.name}: {exc}") from None
    options: dict[str, Any] = {}
    for key in ("websocket", "screens", "brightness_write", "group_cabinets"):
        if getattr(cfg, key) is not None:
            options[key] = getattr(cfg, key)
    device: Device = driver(
        cfg.name, f"http://{host}:{port}", max_brightness_nits=cfg.max_brightness_nits,
        poll_interval_s=cfg.poll_interval_s, timeout_s=cfg.link_timeout_s,
        request_timeout_s=cfg.request_timeout_s, credentials=credentials, auth=cfg.auth,
        **options)
    return device


def _build_tracking(cfg: Any, engine: Engine) -> Device:
    assert isinstance(cfg, TrackingDeviceConfig)
    options: dict[str, Any] = {"host": cfg.host, "interface": cfg.interface,
                               "freed_profile": cfg.freed_profile}
    if cfg.port is not None:
        options["port"] = cfg.port
    if cfg.multicast_group:
        options["multicast_group"] = cfg.multicast_group
    return TrackingSource(cfg.name, cfg.driver, engine.clock, rate_hz=cfg.rate_hz,
                          delay_frames=cfg.delay_frames, **options)


# kind -> factory taking that kind's config entry and the engine (for its stage clock);
# each device family registers here.
DEVICE_BUILDERS: dict[str, Callable[[Any, Engine], Device]] = {
    "led": _build_led, "tracking": _build_tracking, "arm": build_arm}


def build_device(cfg: Any, engine: Engine) -> Device:
    """Create the driver a ``[[devices]]`` entry names."""
    builder = DEVICE_BUILDERS.get(cfg.kind)
    if builder is None:  # pragma: no cover - config validation only admits known kinds
        raise ValueError(f"no driver for kind {cfg.kind!r}")
    return builder(cfg, engine)


@dataclass(slots=True)
class _Pending:
    """A request read from the ROUTER and queued: decoded already when small."""

    envelope: list[bytes]
    payload: bytes
    request: bus.Request | None
    user_id: str | None
    arrival: int


def is_urgent(request: bus.Request) -> bool:
    """Whether ``request`` makes the stage safer (runs ahead of every queue)."""
    if request.cmd not in URGENT_COMMANDS:
        return False
    return request.cmd != "safety.talent" or request.args.get("on") is True


def split_frames(frames: list[bytes]) -> tuple[list[bytes], bytes | None]:
    """(routing envelope, payload) of what a ROUTER read; payload None for a bad shape.

    A DEALER's request arrives as ``[identity, payload]``, a REQ's as ``[identity, b"",
    payload]`` (proxies add identities before the empty delimiter). Anything else (a DEALER
    sending several frames) gets an error sent back to the envelope found.
    """
    if len(frames) == 2:
        return frames[:1], frames[1]
    for i in range(1, len(frames)):
        if not frames[i]:
            return frames[:i + 1], (frames[-1] if i == len(frames) - 2 else None)
    return frames[:1], None


def _shown_args(args: dict[str, Any]) -> dict[str, Any]:
    """A command's arguments as an event shows them: scalars as sent, the rest summarised."""
    shown: dict[str, Any] = {}
    for key, value in list(args.items())[:8]:
        if isinstance(value, str):
            shown[str(key)[:40]] = value[:80]
        elif value is None or isinstance(value, (bool, int, float)) and \
                (not isinstance(value, int) or abs(value) < 2**53):
            shown[str(key)[:40]] = value
        else:
            shown[str(key)[:40]] = bus.short(value, 80)
    return shown


def _freeze_gc() -> None:
    """Move everything alive at start-up out of the collector's sight (once per process).

    A full collection walks every tracked object; after a 10,000-keyframe upload it ran for
    up to 60 ms on the loop, holding back e-stops and heartbeats. Start-up objects (modules,
    config, drivers) live for the whole run, so the collector need never walk them again.
    """
    global _gc_frozen
    if not _gc_frozen:
        gc.collect()
        gc.freeze()
        _gc_frozen = True


def stage_clock(stage: StageSection) -> StageClock:
    """The stage's timecode clock: its frame rate, time of day in its time zone."""
    offset = datetime.now(ZoneInfo(stage.timezone)).utcoffset()
    rate = min(RATES.values(), key=lambda r: abs(r.fps - stage.frame_rate))
    return StageClock(rate, utc_offset_s=offset.total_seconds() if offset else 0.0)


class Engine:
    """Devices plus the command and state sockets.

    Args:
        config: the validated stage.
        base_dir: where relative paths in the config (keys) are resolved.
    """

    def __init__(self, config: StageConfig, base_dir: Path | None = None) -> None:
        self.config = config
        self.base_dir = base_dir or Path.cwd()
        self.clock = stage_clock(config.stage)
        self.devices: dict[str, Device] = {d.name: build_device(d, self) for d in config.devices}
        self.counters: Counter[str] = Counter()
        self.started_at = time.time()
        self._ctx = zmq.asyncio.Context()
        self._router: zmq.asyncio.Socket | None = None
        self._pub: zmq.asyncio.Socket | None = None
        self._pub_send: zmq.Socket[bytes] | None = None
        self._auth: AsyncioAuthenticator | None = None
        self._identities: dict[str, Identity] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._seq = 0
        self._listeners: list[Any] = []
        self._stopped = asyncio.Event()
        self.telemetry: MqttTelemetry | None = None
        self.takes = TakeManager(
            config.stage.name, config.stage.timezone, config.stage.frame_rate,
            self.base_dir / config.takes.dir,
            [d for d in self.devices.values() if isinstance(d, TrackingSource)])
        self.safety = Safety(config, self.base_dir, self._publish)
        self.safety.attach(self.devices.values())
        self.cues = CueList.for_stage(config.cues.file, self.base_dir)
        self.readiness = Readiness(self)
        self.safety.on_change = self.readiness.changed
        self._inflight: set[asyncio.Task[None]] = set()
        engine_cfg = config.engine
        self.limits = Limits(per_client=engine_cfg.max_inflight_per_client,
                             total=engine_cfg.max_queued_total,
                             total_bytes=engine_cfg.max_queued_bytes)
        self._queue: FairQueue[_Pending] = FairQueue(self.limits)
        self._work = asyncio.Event()
        self._large_decode = asyncio.Lock()
        self._arrivals = 0
        self._last_urgent = 0  # arrival number of the last urgent request
        self._last_urgent_cmd = ""
        self._monitor: zmq.asyncio.Socket | None = None
        self.loop_lag_max_ms = 0.0  # the longest the loop was held (lag probe), since start

    # ---- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        """Bind the sockets, then start every device."""
        _freeze_gc()  # before any device link is live: the one full collection pauses nothing
        self._bind()
        if self.config.mqtt.enabled:
            self.telemetry = MqttTelemetry(self.config.mqtt, self.config.stage.name)
            self.telemetry.seed([d.snapshot() for d in self.devices.values()])
            self.add_listener(self.telemetry.on_state)
            try:
                await self.telemetry.start()
            except OSError as exc:
                self._close_sockets()
                raise RuntimeError(f"cannot start the embedded MQTT broker on "
                                   f"{self.config.mqtt.embedded_bind}: {exc}") from exc
        for device in self.devices.values():
            device.subscribe(self._on_device_event)
            device.subscribe(self.readiness.on_device_event)
            await device.start()
        self._tasks = [
            asyncio.create_task(self._command_loop(), name="engine-commands"),
            asyncio.create_task(self._dispatch_loop(), name="engine-dispatch"),
            asyncio.create_task(self._heartbeat_loop(), name="engine-heartbeat"),
            asyncio.create_task(self._lag_probe(), name="engine-lag-probe"),
            asyncio.create_task(self.readiness.run(), name="engine-readiness"),
        ]
        if self._monitor is not None:
            self._tasks.append(asyncio.create_task(self._monitor_loop(self._monitor),
                                                   name="engine-connections"))
        log.info("engine for stage %s: commands on %s, state on %s",
                 self.config.stage.name, self.config.engine.command, self.config.engine.state)

    def _bind(self) -> None:
        engine_cfg = self.config.engine
        router = self._ctx.socket(zmq.ROUTER)
        pub = self._ctx.socket(zmq.PUB)
        for sock in (router, pub):
            sock.setsockopt(zmq.LINGER, 0)
        router.setsockopt(zmq.ROUTER_HANDOVER, 1)
        # a longer message drops the sender's connection as its header arrives: never buffered
        router.setsockopt(zmq.MAXMSGSIZE, engine_cfg.max_message_bytes)
        router.setsockopt(zmq.RCVHWM, ROUTER_RCVHWM)
        router.setsockopt(zmq.ROUTER_MANDATORY, 1)  # a reply to a full client raises: counted
        pub.setsockopt(zmq.MAXMSGSIZE, PUB_MAX_MESSAGE_BYTES)
        pub.setsockopt(zmq.SNDHWM, 10000)
        try:
            self._secure(router, pub)
            router.bind(engine_cfg.command)
            pub.bind(engine_cfg.state)
        except zmq.ZMQError as exc:
            router.close()
            pub.close()
            raise RuntimeError(f"cannot bind engine sockets ({engine_cfg.command}, "
                               f"{engine_cfg.state}): {exc}; is another engine running?") from exc
        except Exception:
            router.close()
            pub.close()
            raise
        self._router, self._pub = router, pub
        self._pub_send = zmq.Socket.shadow(pub.underlying)
        self._monitor = router.get_monitor_socket(zmq.EVENT_ACCEPTED | zmq.EVENT_DISCONNECTED)

    def _secure(self, router: zmq.asyncio.Socket, pub: zmq.asyncio.Socket) -> None:
        """Switch on CURVE (required off loopback) with the keys from ``keys_dir``."""
        engine_cfg = self.config.engine
        if not engine_cfg.needs_curve:
            return
        keys_dir = self.base_dir / engine_cfg.keys_dir
        public, secret = load_pair(keys_dir, "server")
        self._identities = authorized_identities(keys_dir)
        if not self._identities:
            raise RuntimeError(f"{keys_dir / 'authorized'}: no authorised client keys; run "
                               f"`stagectl keys generate --name NAME --role operator "
                               f"--dir {keys_dir}`")
        self._auth = AsyncioAuthenticator(self._ctx)
        self._auth.start()
        self._auth.configure_curve(domain="*", location=str(keys_dir / "authorized"))
        for sock in (router, pub):
            sock.curve_secretkey = secret
            sock.curve_publickey = public
            sock.curve_server = True

    async def stop(self) -> None:
        """Stop serving and leave every device safe (idempotent)."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        for _client, pending in self._queue.drain():  # every request read gets a reply
            await self._reply(pending.envelope, bus.error_reply(
                pending.request.id if pending.request else bus.request_id_of(pending.payload),
                "unavailable", "engine stopping; the request was not run"))
        for task in (*self._tasks, *self._inflight):
            task.cancel()
        for task in (*self._tasks, *self._inflight):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.takes.recorder is not None:
            with contextlib.suppress(Exception):
                log.info("take stopped on shutdown: %s", self.takes.stop())

        async def leave_safe(device: Device) -> None:
            try:
                await device.stop()
            except Exception:
                log.exception("%s: safe shutdown failed", device.name)

        # all at once: each is bounded (Device.safe_shutdown_s) and one slow device never
        # eats another's time within the process's stop budget (decision 0047)
        await asyncio.gather(*(leave_safe(d) for d in self.devices.values()))
        self._publish(bus.ENGINE_TOPIC, {"type": "event", "device": None,
                                         "data": event_data("engine_stopped", "warning")})
        if self.telemetry is not None:
            await self.telemetry.stop()
        self.safety.close()
        self._close_sockets()

    def _close_sockets(self) -> None:
        if self._monitor is not None:
            if self._router is not None:
                with contextlib.suppress(zmq.ZMQError):
                    self._router.disable_monitor()
            self._monitor.close(linger=0)
            self._monitor = None
        for sock in (self._router, self._pub):
            if sock is not None:
                sock.close(linger=0)
        self._router = self._pub = None
        self._pub_send = None
        if self._auth is not None:
            self._auth.stop()
            self._auth = None
        if not self._ctx.closed:
            self._ctx.term()

    async def run_until(self, stop: asyncio.Event) -> None:
        """Serve until ``stop`` is set, then shut down safely."""
        await self.start()
        try:
            await stop.wait()
        finally:
            await self.stop()

    # ---- state -------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """The JSON shape of ``stagectl status --json``."""
        stage = self.config.stage
        return {
            "stage": {"name": stage.name, "site": stage.site, "timezone": stage.timezone,
                      "frame_rate": stage.frame_rate},
            "engine": {"uptime_s": round(time.time() - self.started_at, 1),
                       "counters": dict(self.counters),
                       "loop_lag_max_ms": round(self.loop_lag_max_ms, 1),
                       "requests": {"running": self._queue.running,
                                    "queued": self._queue.queued,
                                    "queued_bytes": self._queue.queued_bytes,
                                    "clients": self._queue.clients},
                       "limits": {"max_message_bytes": self.config.engine.max_message_bytes,
                                  "max_inflight_per_client": self.limits.per_client,
                                  "max_queued_total": self.limits.total,
                                  "max_queued_bytes": self.limits.total_bytes},
                       "mqtt": None if self.telemetry is None else {
                           "broker": f"{self.telemetry.host}:{self.telemetry.port}",
                           "connected": self.telemetry.connected,
                           "session": self.telemetry.session,
                           "counters": dict(self.telemetry.counters)}},
            "devices": [d.snapshot() for d in self.devices.values()],
        }

    def add_listener(self, listener: Any) -> None:
        """Also hand every device event to ``listener(topic, message)`` (telemetry)."""
        self._listeners.append(listener)

    def publish_state(self, topic: str, message: dict[str, Any]) -> None:
        """Publish ``message`` on the state socket under ``topic`` (``seq`` and ``t`` added)."""
        self._publish(topic, message)

    def cues_changed(self) -> None:
        """A cue fired or the list changed: re-evaluate readiness and publish it."""
        self.readiness.changed()

    def _publish(self, topic: str, message: dict[str, Any]) -> None:
        self._seq += 1
        message = {**message, "seq": self._seq, "t": message.get("t", time.time())}
        for listener in self._listeners:
            try:
                listener(topic, message)
            except Exception:
                self.counters["listener_errors"] += 1
                log.exception("state listener failed")
        if self._pub_send is None or self._pub_send.closed:
            return
        try:
            payload = bus.dumps(message)
            # a plain (shadow) socket: PUB never blocks, and skipping the asyncio wrapper
            # halves the cost of publishing a tracking sample; two sends with the flags as
            # plain ints, not send_multipart (its per-frame checks and enum arithmetic cost
            # as much as encoding the sample: decision 0065)
            self._pub_send.send(topic.encode(), _SEND_MORE)
            self._pub_send.send(payload, _SEND_LAST)
            self.counters["published"] += 1
        except zmq.ZMQError:
            self.counters["publish_dropped"] += 1
        except (TypeError, ValueError):
            # a value bus.dumps cannot encode (a >64-bit int beside a NaN): count it, and
            # never raise into the device that published it
            self.counters["publish_unencodable"] += 1
            log.warning("%s: state message not encodable; dropped", topic)

    def _on_device_event(self, event: DeviceEvent) -> None:
        if event.kind == "sample":  # high-rate tracking samples get their own topic
            self._publish(bus.TRACKING_TOPIC_PREFIX + event.device,
                          {"type": "sample", "device": event.device, "t": event.t,
                           "data": event.data})
            return
        self._publish(bus.device_topic(event.device),
                      {"type": event.kind, "device": event.device, "t": event.t,
                       "data": event.data})

    async def _lag_probe(self) -> None:
        """Measure how late the loop wakes a sleeper: anything holding it shows here."""
        while True:
            before = time.perf_counter()
            await asyncio.sleep(LAG_PROBE_S)
            lag = time.perf_counter() - before - LAG_PROBE_S
            self.loop_lag_max_ms = max(self.loop_lag_max_ms, lag * 1000)
            if lag > LAG_STALL_S:
                self.counters["loop_stalls"] += 1

    async def _heartbeat_loop(self) -> None:
        while True:
            self._publish(bus.ENGINE_TOPIC, {
                "type": "heartbeat", "device": None,
                "data": {"stage": self.config.stage.name,
                         "devices": {n: d.health.state.value for n, d in self.devices.items()}},
            })
            await asyncio.sleep(HEARTBEAT_S)

    # ---- commands ----------------------------------------------------------------------

    async def _command_loop(self) -> None:
        """Read requests: at most a batch or a slice of time per turn of the loop."""
        assert self._router is not None
        router = self._router
        while True:
            frames = await router.recv_multipart(copy=False)
            started = time.perf_counter()
            await self._receive(frames)
            for _ in range(RECV_BATCH - 1):
                if time.perf_counter() - started > RECV_SLICE_S:
                    break
                try:
                    frames = await router.recv_multipart(flags=zmq.NOBLOCK, copy=False)
                except zmq.Again:
                    break
                await self._receive(frames)
            await asyncio.sleep(0)  # device links, heartbeats and running requests go next

    async def _receive(self, frames: list[zmq.Frame]) -> None:
        """Admit one request: run it now (urgent), queue it, or answer it at once."""
        self._arrivals += 1
        self.counters["requests"] += 1
        envelope, payload = split_frames([f.bytes for f in frames])
        if payload is None:
            await self._reply(envelope, self._bad_request(bus.ProtocolError(
                f"a request is one frame of JSON after the routing envelope; got "
                f"{len(frames) - len(envelope)} frames", "frames")))
            return
        user_id = None
        if self._auth is not None:
            with contextlib.suppress(zmq.ZMQError, KeyError):
                found = frames[-1].get("User-Id")
                user_id = None if found is None else str(found)
        request = None
        if len(payload) <= URGENT_PROBE_BYTES:  # small: cheap to decode now and classify
            try:
                request = self._decode(payload)
            except bus.ProtocolError as exc:
                await self._reply(envelope, self._bad_request(exc))
                return
            if is_urgent(request):
                self.counters["urgent"] += 1
                self._last_urgent, self._last_urgent_cmd = self._arrivals, request.cmd
                await self._reply(envelope, await self._execute(request, user_id))
                return
        client: Hashable = user_id if user_id is not None else envelope[0]
        try:
            self._queue.offer(client, _Pending(envelope, payload, request, user_id,
                                               self._arrivals), len(payload))
        except Refused as exc:
            self.counters[f"overloaded_{exc.bound}"] += 1
            rid = request.id if request is not None else bus.request_id_of(payload)
            await self._reply(envelope, bus.error_reply(rid, "overloaded", str(exc),
                                                        bound=exc.bound, **exc.details))
            return
        self._work.set()

    async def _dispatch_loop(self) -> None:
        """Start queued requests, round robin over clients, a few per turn of the loop."""
        while True:
            await self._work.wait()
            self._work.clear()
            for _ in range(START_BATCH):
                found = self._queue.next()
                if found is None:
                    break
                task = asyncio.create_task(self._run_queued(*found))
                self._inflight.add(task)
                task.add_done_callback(self._inflight.discard)
            else:
                self._work.set()  # there may be more: the next turn
            await asyncio.sleep(0)

    async def _run_queued(self, client: Hashable, pending: _Pending) -> None:
        try:
            request = pending.request
            if request is None:  # a large request: one decode per turn of the loop
                async with self._large_decode:
                    try:
                        request = await self._decode_in_steps(pending.payload)
                    except bus.ProtocolError as exc:
                        await self._reply(pending.envelope, self._bad_request(exc))
                        return
                    finally:
                        await asyncio.sleep(0)  # let the loop run between decodes
            command = COMMANDS.get(request.cmd)
            if (pending.arrival < self._last_urgent and command is not None
                    and not command.query and not is_urgent(request)
                    and request.cmd.startswith(SAFETY_PREFIXES)):
                self.counters["superseded"] += 1
                await self._reply(pending.envelope, bus.error_reply(
                    request.id, "superseded", f"{request.cmd} not run: "
                    f"{self._last_urgent_cmd} arrived while it waited; send it again if it "
                    "is still wanted"))
                return
            await self._reply(pending.envelope, await self._execute(request, pending.user_id))
        except asyncio.CancelledError:  # the engine is stopping: still answer
            await self._reply(pending.envelope, bus.error_reply(
                pending.request.id if pending.request else bus.request_id_of(pending.payload),
                "unavailable", "engine stopping; the request may not have completed"))
            raise
        finally:
            self._queue.done(client)
            self._work.set()

    async def _reply(self, envelope: list[bytes], reply: bytes) -> None:
        router = self._router
        if router is None or router.closed:
            self.counters["reply_dropped"] += 1
            return
        try:
            await router.send_multipart([*envelope, reply], flags=zmq.NOBLOCK)
        except zmq.Again:  # the client does not read its replies: its queue is full
            self.counters["reply_dropped_client_full"] += 1
        except zmq.ZMQError as exc:  # client vanished
            self.counters["reply_dropped"] += 1
            log.debug("reply dropped: %s", exc)

    async def _monitor_loop(self, monitor: zmq.asyncio.Socket) -> None:
        """Count client connections opened and closed (ZeroMQ closes an oversized sender's)."""
        while True:
            event = parse_monitor_message(await monitor.recv_multipart())
            if event["event"] == zmq.EVENT_ACCEPTED:
                self.counters["connections_opened"] += 1
            else:
                self.counters["connections_closed"] += 1

    def _decode(self, payload: bytes) -> bus.Request:
        return bus.decode_request(payload, self.config.engine.max_message_bytes)

    async def _decode_in_steps(self, payload: bytes) -> bus.Request:
        """Decode a large request in slices, letting the loop (and any e-stop) run between."""
        return await finish_async(
            bus.decode_request_steps(payload, self.config.engine.max_message_bytes), slice_s=0)

    def _bad_request(self, exc: bus.ProtocolError) -> bytes:
        self.counters["bad_requests"] += 1
        self.counters[f"bad_{exc.kind}"] += 1
        return bus.error_reply(exc.request_id, "bad_request", str(exc), kind=exc.kind)

    async def handle(self, payload: bytes, curve_user: str | None = None) -> bytes:
        """Decode, authorise and run one request; always returns a reply (never raises)."""
        self.counters["requests"] += 1
        try:
            request = self._decode(payload)
        except bus.ProtocolError as exc:
            return self._bad_request(exc)
        return await self._execute(request, curve_user)

    async def _execute(self, request: bus.Request, curve_user: str | None) -> bytes:
        """Authorise and run a decoded request; always returns a reply (never raises)."""
        role, user = request.role, request.user
        if self._auth is not None:
            identity = self._identities.get(curve_user or "")
            if identity is None:
                self.counters["forbidden"] += 1
                return bus.error_reply(request.id, "forbidden", "unknown client key")
            role, user = identity.role, identity.user
        command = COMMANDS.get(request.cmd)
        if command is None:
            self.counters["unknown_commands"] += 1
            return bus.error_reply(request.id, "unknown_command",
                                   f"unknown command {request.cmd!r}; try 'commands'")
        if role not in command.roles:
            self.counters["forbidden"] += 1
            self._publish(bus.ENGINE_TOPIC, {"type": "event", "device": None, "data": event_data(
                "command_refused_role", "warning", user=user, role=role, cmd=request.cmd)})
            if request.cmd.startswith(SAFETY_PREFIXES):
                self.safety.refuse(request.cmd, user, role, f"role {role!r} not allowed")
            return bus.error_reply(request.id, "forbidden",
                                   f"role {role!r} may not run {request.cmd}; allowed: "
                                   f"{', '.join(sorted(command.roles))}", role=role)
        try:
            # handlers that need it read who asked from _user/_role (never from the client)
            result = await command.handler(self, {**request.args, "_user": user,
                                                  "_role": role})
        except Exception as exc:
            failure = failure_from(exc)
            self.counters[f"failed_{failure.code}"] += 1
            if failure.code == "internal":
                log.exception("command %s failed", request.cmd)
            reply = bus.error_reply(request.id, failure.code, str(failure), **failure.details)
            # failure may be exc: its traceback holds this frame, which holds it and the
            # request (a 10,000-keyframe path is 40,000 objects): break the cycle now, or the
            # garbage collector must find it, walking all of them on the loop
            exc.__traceback__ = failure.__traceback__ = None
            del failure
            return reply
        self.counters["commands_ok"] += 1
        if not (command.query or command.announces):  # changes are announced (once)
            self._publish(bus.ENGINE_TOPIC, {"type": "event", "device": None, "data": event_data(
                "command_done", user=user, role=role, cmd=request.cmd,
                args=_shown_args(request.args))})
        try:
            return bus.ok_reply(request.id, result, self._seq)
        except (TypeError, ValueError, RecursionError) as exc:
            return bus.error_reply(request.id, "internal", f"unencodable result: {exc}")
