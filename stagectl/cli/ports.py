"""Which ports a stage's processes bind, whether they are free, and who holds them.

``stagectl serve``, ``sim`` and ``demo`` check their ports before starting, so a second stack
on the same config is refused with one line naming the port and the process holding it,
instead of a traceback or (for the demo) silently driving the stack already running.
The holder is found from ``/proc`` (Linux); elsewhere only the port is named.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from drivers.transport import parse_address
from stagectl.config import ArmSimulatorConfig, LedSimulatorConfig, StageConfig


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One socket a process binds: who binds it, the protocol, host and port."""

    what: str
    proto: str  # "tcp" or "udp"
    host: str
    port: int

    @property
    def url(self) -> str:
        """``tcp://host:port`` / ``udp://host:port``."""
        return f"{self.proto}://{self.host}:{self.port}"


def _zmq(url: str, what: str) -> Endpoint | None:
    parsed = urlparse(url)
    if parsed.scheme != "tcp" or parsed.port is None:
        return None  # ipc:// and friends: nothing to check here
    host = parsed.hostname or "0.0.0.0"
    return Endpoint(what, "tcp", "0.0.0.0" if host == "*" else host, parsed.port)


def engine_endpoints(config: StageConfig) -> list[Endpoint]:
    """What ``stagectl serve`` binds: the command and state sockets, the embedded broker."""
    found = [_zmq(config.engine.command, "engine"), _zmq(config.engine.state, "engine")]
    if config.mqtt.enabled and config.mqtt.broker == "embedded":
        host, port = parse_address(config.mqtt.embedded_bind)
        found.append(Endpoint("engine (MQTT broker)", "tcp", host, port))
    return [e for e in found if e is not None]


def simulator_endpoints(config: StageConfig) -> list[Endpoint]:
    """What ``stagectl sim`` binds: LED processors (UDP) and arm controllers (TCP)."""
    found: list[Endpoint | None] = []
    for sim in config.simulators:
        if isinstance(sim, LedSimulatorConfig):
            host, port = parse_address(sim.listen)
            found.append(Endpoint(sim.name, "udp" if sim.protocol == "osc" else "tcp", host, port))
        elif isinstance(sim, ArmSimulatorConfig):
            found += [_zmq(sim.command, sim.name), _zmq(sim.telemetry, sim.name)]
    return [e for e in found if e is not None and e.port != 0]


def in_use(endpoint: Endpoint) -> bool:
    """Whether binding ``endpoint`` fails because something else holds it.

    TCP is tried with ``SO_REUSEADDR``, as ZeroMQ and asyncio bind: connections left in
    TIME_WAIT by a stopped process do not count, a listener does. Other bind errors (an
    address this machine does not have) are left for the real bind to report.
    """
    kind = socket.SOCK_STREAM if endpoint.proto == "tcp" else socket.SOCK_DGRAM
    family = socket.AF_INET6 if ":" in endpoint.host else socket.AF_INET
    with socket.socket(family, kind) as sock:
        if endpoint.proto == "tcp":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((endpoint.host, endpoint.port))
        except OSError as exc:
            return exc.errno == errno.EADDRINUSE
    return False


def _socket_inodes(proto: str, port: int) -> set[str]:
    inodes: set[str] = set()
    for table in (f"/proc/net/{proto}", f"/proc/net/{proto}6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if len(fields) < 10:
                    continue
                local_port = int(fields[1].rsplit(":", 1)[1], 16)
                listening = proto == "udp" or fields[3] == "0A"  # 0A: TCP LISTEN
                if local_port == port and listening and fields[9] != "0":
                    inodes.add(fields[9])
    return inodes


def describe_process(pid: int) -> str:
    """``pid N stagectl serve --config X`` from ``/proc/N/cmdline`` (just ``pid N`` if hidden)."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return f"pid {pid}"
    words = [a.decode(errors="replace") for a in argv if a]
    for i, word in enumerate(words):
        if word == "-m" and i + 1 < len(words) and words[i + 1] == "stagectl":
            words = ["stagectl", *words[i + 2:]]
            break
    else:
        if words and os.path.basename(words[0]) == "stagectl":
            words = ["stagectl", *words[1:]]
    text = " ".join(words)
    return f"pid {pid} {text[:120]}".rstrip()


def holder(endpoint: Endpoint) -> str | None:
    """The process holding ``endpoint`` (``pid N command``), or None when it can't be seen."""
    inodes = _socket_inodes(endpoint.proto, endpoint.port)
    if not inodes:
        return None
    targets = {f"socket:[{inode}]" for inode in inodes}
    with contextlib.suppress(OSError):
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            with contextlib.suppress(OSError):
                for fd in os.scandir(f"/proc/{entry.name}/fd"):
                    with contextlib.suppress(OSError):
                        if os.readlink(fd.path) in targets:
                            return describe_process(int(entry.name))
    return None


def busy(endpoints: list[Endpoint]) -> list[str]:
    """One line per endpoint already held by another process (empty: all free)."""
    lines: list[str] = []
    seen: set[tuple[str, int]] = set()
    for endpoint in endpoints:
        if (endpoint.proto, endpoint.port) in seen or not in_use(endpoint):
            continue
        seen.add((endpoint.proto, endpoint.port))
        who = holder(endpoint)
        held = f"held by {who}" if who else "held by another process"
        lines.append(f"{endpoint.what}: cannot bind {endpoint.url}: address in use ({held})")
    return lines
