"""Transports: the only place a driver touches a socket.

A driver builds bytes with a codec and hands them to a transport; the transport hands received
datagrams back. Swapping the transport (a simulator on loopback, a real processor on the stage
network) never changes the driver.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

log = logging.getLogger(__name__)

Addr = tuple[str, int]


def parse_address(text: str, default_host: str = "127.0.0.1") -> Addr:
    """Parse ``host:port`` (``[v6]:port`` allowed) into a tuple.

    Raises:
        ValueError: with the expected form when the text is not an address.
    """
    host, sep, port_text = text.rpartition(":")
    if not sep:
        raise ValueError(f"expected host:port, got {text!r}")
    host = host.strip("[]") or default_host
    try:
        port = int(port_text)
    except ValueError:
        raise ValueError(f"expected host:port with a numeric port, got {text!r}") from None
    if not 0 <= port <= 65535:
        raise ValueError(f"port must be 0..65535, got {port}")
    return host, port


@dataclass
class TransportCounters:
    """Datagram counts for health displays and tests."""

    sent: int = 0
    received: int = 0
    send_errors: int = 0
    rejected: int = 0


class UdpTransport(asyncio.DatagramProtocol):
    """A connected-style UDP endpoint: one remote peer, datagrams in both directions.

    Only datagrams whose source is exactly the peer's address (its host resolved once at
    :meth:`open`, and its port) are handed on; any other source is counted as ``rejected``
    and reported to ``on_rejected``. Another process on the same machine, another loopback
    address or another port therefore cannot speak for the peer.
    """

    def __init__(self, remote: Addr, on_datagram: Callable[[bytes], None],
                 on_error: Callable[[Exception], None] | None = None,
                 local: Addr = ("0.0.0.0", 0),
                 on_rejected: Callable[[Addr], None] | None = None) -> None:
        self.remote = remote
        self.local = local
        self.counters = TransportCounters()
        self.peer: Addr | None = None  # ``remote`` with its host resolved to an address
        self._on_datagram = on_datagram
        self._on_error = on_error
        self._on_rejected = on_rejected
        self._transport: asyncio.DatagramTransport | None = None

    async def open(self) -> None:
        """Resolve the peer, then bind a local port (ephemeral unless given).

        Raises:
            OSError: the peer's host does not resolve (the message names it), or the bind
                failed.
        """
        loop = asyncio.get_running_loop()
        host, port = self.remote
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        try:
            infos = await loop.getaddrinfo(host, port, family=family, type=socket.SOCK_DGRAM)
        except socket.gaierror as exc:
            raise OSError(f"cannot resolve udp://{host}:{port}: {exc.strerror}") from exc
        resolved = infos[0][4]
        self.peer = (str(resolved[0]), int(resolved[1]))
        local = self.local
        if self.peer[0].startswith("127."):
            local = ("127.0.0.1", local[1])
        elif family == socket.AF_INET6 and local[0] == "0.0.0.0":
            local = ("::", local[1])
        await loop.create_datagram_endpoint(lambda: self, local_addr=local)

    @property
    def is_open(self) -> bool:
        """Whether the socket is bound."""
        return self._transport is not None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:  # noqa: D102
        self._transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: Addr) -> None:  # noqa: D102
        if self.peer is None or (addr[0], addr[1]) != self.peer:
            self.counters.rejected += 1
            if self._on_rejected is not None:
                self._on_rejected((addr[0], addr[1]))
            return
        self.counters.received += 1
        self._on_datagram(data)

    def error_received(self, exc: Exception) -> None:  # noqa: D102
        self.counters.send_errors += 1
        if self._on_error is not None:
            self._on_error(exc)

    def send(self, data: bytes) -> None:
        """Send one datagram to the peer; errors are counted, never raised."""
        if self._transport is None or self.peer is None:
            self.counters.send_errors += 1
            return
        try:
            self._transport.sendto(data, self.peer)
            self.counters.sent += 1
        except OSError as exc:
            self.error_received(exc)

    def close(self) -> None:
        """Close the socket."""
        if self._transport is not None:
            self._transport.close()
            self._transport = None
