"""Asyncio UDP ingest of one tracking source, unicast or multicast.

One :class:`TrackingIngest` per source: it owns a UDP socket, decodes each datagram
with the source's codec, feeds the source's :class:`~drivers.tracking.stats.SourceStats`
and hands each pose to a callback as a :class:`~drivers.tracking.sample.TrackingSample`.
A bad datagram is counted by kind and dropped; nothing a sender does can raise out of
the ingest, and an exception in the callback is logged and counted, not propagated.

Multicast: the socket binds the group address (so two sources on the same port but
different groups do not see each other's traffic), joins it on ``interface`` with
``IP_ADD_MEMBERSHIP``, and on Linux clears ``IP_MULTICAST_ALL``. Joining on
``127.0.0.1`` works on the loopback interface for tests.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import sys
import time
from collections.abc import Callable
from typing import Any, Final

from drivers.tracking import freed, opentrackio, osc_pose
from drivers.tracking.sample import (
    DEFAULT_AXIS_MAP,
    FreeDAxisMap,
    Protocol,
    SampleFormatError,
    TrackingSample,
    sample_from_freed,
    sample_from_opentrackio,
)
from drivers.tracking.stats import SourceStats, StatsSnapshot

log = logging.getLogger(__name__)

DEFAULT_OSC_PORT: Final = 55556
_IP_MULTICAST_ALL: Final = getattr(socket, "IP_MULTICAST_ALL", 49)
_RCVBUF_BYTES: Final = 1 << 20

# Reassembler counter -> the error kind it is reported as in the source's statistics.
_REASSEMBLY_ERRORS: Final = {
    "incomplete": "incomplete",  # samples given up: a segment never came
    "duplicates": "duplicate",  # identical datagrams dropped (the spec: process one)
    "late": "late_segment",  # segments of a sample already given up
    "malformed": "bad_segment",  # segments that fit no sample
}

SampleCallback = Callable[[TrackingSample], None]
DatagramCallback = Callable[[bytes, Any, float], None]


def default_port(protocol: Protocol, freed_profile: freed.FreeDProfile | None = None) -> int:
    """Default UDP port of a protocol (FreeD: the vendor profile's)."""
    if protocol == "freed":
        return (freed_profile or freed.profile("generic")).default_port
    if protocol == "opentrackio":
        return opentrackio.DEFAULT_PORT
    return DEFAULT_OSC_PORT


def open_udp_socket(
    port: int,
    *,
    host: str = "0.0.0.0",
    group: str | None = None,
    interface: str = "0.0.0.0",
) -> socket.socket:
    """A non-blocking UDP socket bound for unicast, or joined to a multicast group.

    Args:
        port: UDP port (0 picks a free one, unicast only makes sense then).
        host: local address to bind for unicast.
        group: multicast group to join (e.g. ``239.135.1.1``); None for unicast.
        interface: local interface address to join the group on (``127.0.0.1`` for
            loopback, ``0.0.0.0`` to let the kernel pick by route).

    Raises:
        OSError: the port is taken, the address is not local, or the join fails; the
            message names group, interface and port.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
    try:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _RCVBUF_BYTES)
        except OSError:  # pragma: no cover - a smaller buffer still works
            pass
        if group is None:
            sock.bind((host, port))
        else:
            # Several receivers (e.g. the engine and `tracking inspect`) may share a group.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if hasattr(socket, "SO_REUSEPORT"):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind((host if sys.platform == "win32" else group, port))
            mreq = socket.inet_aton(group) + socket.inet_aton(interface)
            try:
                sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
            except OSError as exc:
                raise OSError(
                    exc.errno,
                    f"joining multicast group {group} on interface {interface} "
                    f"(port {port}) failed: {exc.strerror}",
                ) from exc
            if sys.platform.startswith("linux"):
                sock.setsockopt(socket.IPPROTO_IP, _IP_MULTICAST_ALL, 0)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, ingest: TrackingIngest) -> None:
        self._ingest = ingest

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self._ingest.handle_datagram(data, addr, self._ingest.clock())

    def error_received(self, exc: Exception) -> None:
        self._ingest.stats.on_error("socket")
        log.warning("tracking source %s: socket error %s", self._ingest.source, exc)

    def connection_lost(self, exc: Exception | None) -> None:
        self._ingest._on_closed()


class TrackingIngest:
    """UDP ingest of one tracking source.

    Args:
        source: stage name of the source (carried into every sample).
        protocol: ``freed``, ``opentrackio`` or ``osc``.
        on_sample: called with each decoded sample, in the event loop thread.
        port: UDP port; the protocol's (vendor's) default when None, 0 for any free one.
        host: local address for unicast.
        multicast_group: group to join, e.g. ``opentrackio.multicast_group(1)``.
        interface: local interface address for the multicast join.
        freed_profile: FreeD vendor profile (name or object).
        axis_map: FreeD-to-stage axis mapping.
        nominal_rate_hz: expected source rate (for loss by gaps and jitter).
        stage_frame_period_s: stage frame period for the silent alarm.
        reassembly_timeout_s: how long to wait for the segments of a sample.
        on_datagram: optional hook called with every raw datagram before decoding
            (raw take recording, packet inspection).
        clock: monotonic clock for arrival stamps.
    """

    def __init__(
        self,
        source: str,
        protocol: Protocol,
        on_sample: SampleCallback,
        *,
        port: int | None = None,
        host: str = "0.0.0.0",
        multicast_group: str | None = None,
        interface: str = "0.0.0.0",
        freed_profile: freed.FreeDProfile | str = "generic",
        axis_map: FreeDAxisMap = DEFAULT_AXIS_MAP,
        nominal_rate_hz: float | None = None,
        stage_frame_period_s: float | None = None,
        reassembly_timeout_s: float = 0.1,
        on_datagram: DatagramCallback | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if protocol not in ("freed", "opentrackio", "osc"):
            raise ValueError(f"tracking source {source}: unknown protocol {protocol!r}")
        self.source = source
        self.protocol: Protocol = protocol
        self.on_sample = on_sample
        self.on_datagram = on_datagram
        self.freed_profile = (
            freed.profile(freed_profile) if isinstance(freed_profile, str) else freed_profile
        )
        self.port = default_port(protocol, self.freed_profile) if port is None else port
        self.host = host
        self.multicast_group = multicast_group
        self.interface = interface
        self.axis_map = axis_map
        self.clock = clock
        # OpenTrackIO: the header's 16-bit sequence numbers datagrams, not samples (a sample
        # may take several); a sample's own counter is timing.sequenceNumber, a u32.
        bits = {"opentrackio": 32, "freed": self.freed_profile.sequence_bits, "osc": None}
        self.stats = SourceStats(
            source,
            nominal_rate_hz=nominal_rate_hz,
            stage_frame_period_s=stage_frame_period_s,
            sequence_bits=bits[protocol],
        )
        self.reassembler = opentrackio.Reassembler(timeout_s=reassembly_timeout_s)
        self.callback_errors = 0
        self._transport: asyncio.DatagramTransport | None = None
        self._closed: asyncio.Future[None] | None = None
        self._reassembly_seen: dict[str, int] = dict.fromkeys(_REASSEMBLY_ERRORS, 0)
        self._reassembly_total = 0

    # -- lifecycle ----------------------------------------------------------------

    async def start(self) -> None:
        """Open the socket and start receiving.

        Raises:
            OSError: the socket cannot be bound or the group joined.
        """
        if self._transport is not None:
            return
        loop = asyncio.get_running_loop()
        sock = open_udp_socket(
            self.port, host=self.host, group=self.multicast_group, interface=self.interface
        )
        self._closed = loop.create_future()
        try:
            transport, _ = await loop.create_datagram_endpoint(lambda: _Protocol(self), sock=sock)
        except BaseException:
            sock.close()
            raise
        self._transport = transport
        log.info("tracking source %s: %s on %s", self.source, self.protocol, self.local_address)

    async def close(self) -> None:
        """Stop receiving and close the socket (idempotent)."""
        transport, self._transport = self._transport, None
        if transport is None:
            return
        transport.close()
        if self._closed is not None:
            await self._closed

    def _on_closed(self) -> None:
        if self._closed is not None and not self._closed.done():
            self._closed.set_result(None)

    async def __aenter__(self) -> TrackingIngest:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def local_address(self) -> tuple[str, int]:
        """Bound address (useful with ``port=0``).

        Raises:
            RuntimeError: not started.
        """
        if self._transport is None:
            raise RuntimeError(f"tracking source {self.source} is not started")
        host, port = self._transport.get_extra_info("sockname")[:2]
        return str(host), int(port)

    # -- the datagram path ----------------------------------------------------------

    def handle_datagram(self, data: bytes, addr: Any, arrival_s: float) -> int:
        """Decode one datagram and deliver its samples; returns how many were delivered.

        Never raises: bad datagrams are counted in ``stats.errors`` by kind.
        """
        if self.on_datagram is not None:
            try:
                self.on_datagram(data, addr, arrival_s)
            except Exception:
                self.callback_errors += 1
                log.exception("tracking source %s: datagram hook failed", self.source)
        try:
            samples = self._decode(data, addr, arrival_s)
        except freed.FreeDChecksumError:
            self.stats.on_error("checksum")
            return 0
        except freed.FreeDLengthError:
            self.stats.on_error("length")
            return 0
        except freed.FreeDTypeError:
            self.stats.on_error("type")
            return 0
        except opentrackio.OpenTrackIOChecksumError:
            self.stats.on_error("checksum")
            return 0
        except opentrackio.OpenTrackIOLengthError:
            self.stats.on_error("length")
            return 0
        except (opentrackio.OpenTrackIOMagicError, opentrackio.OpenTrackIOEncodingError):
            self.stats.on_error("type")
            return 0
        except (opentrackio.OpenTrackIOPayloadError, SampleFormatError, osc_pose.OscPoseError):
            self.stats.on_error("payload")
            return 0
        except Exception:  # a codec bug must not take the ingest down
            self.stats.on_error("internal")
            log.exception("tracking source %s: decoder failed on %r", self.source, data[:64])
            return 0
        for sample in samples:
            self.stats.on_sample(arrival_s, sample.sequence)
            try:
                self.on_sample(sample)
            except Exception:
                self.callback_errors += 1
                log.exception("tracking source %s: sample callback failed", self.source)
        return len(samples)

    def _decode(self, data: bytes, addr: Any, arrival_s: float) -> list[TrackingSample]:
        if self.protocol == "freed":
            packet = freed.decode(data)
            return [
                sample_from_freed(
                    packet,
                    source=self.source,
                    arrival_s=arrival_s,
                    freed_profile=self.freed_profile,
                    axis_map=self.axis_map,
                )
            ]
        if self.protocol == "opentrackio":
            packet_ot = opentrackio.decode_packet(data)
            done = self.reassembler.feed(packet_ot, arrival_s, sender=addr)
            self._sync_reassembly()
            if done is None:
                return []
            doc = opentrackio.decode_payload(done.payload, done.encoding)
            # the sample's sequence is its timing.sequenceNumber (None when it has none)
            return [sample_from_opentrackio(doc, source=self.source, arrival_s=arrival_s)]
        return [pose.to_sample(arrival_s, self.source) for pose in osc_pose.decode(data)]

    def _sync_reassembly(self) -> None:
        r = self.reassembler
        total = r.incomplete + r.duplicates + r.late + r.malformed
        if total == self._reassembly_total:  # the usual case: nothing new to count
            return
        self._reassembly_total = total
        for counter, kind in _REASSEMBLY_ERRORS.items():
            now = getattr(self.reassembler, counter)
            new = now - self._reassembly_seen[counter]
            if new:
                self.stats.errors[kind] += new
                self._reassembly_seen[counter] = now

    def snapshot(self, now_s: float | None = None) -> StatsSnapshot:
        """Health of this source now (expires stale partial samples first)."""
        now = self.clock() if now_s is None else now_s
        self.reassembler.expire(now)
        self._sync_reassembly()
        return self.stats.snapshot(now)
