"""Run the desk: :func:`serve` (the CLI, until a signal) and :class:`DeskServer` (a thread).

``DeskServer`` binds its socket before uvicorn starts (port 0: a free port, known at once),
runs uvicorn on a background thread, and stops it within a bounded time: uvicorn is told to
exit, open connections get ``graceful_s`` to finish, the thread is joined and the app's
store connections are closed. Nothing is left running.

With ``tls_cert``/``tls_key`` in the configuration uvicorn serves HTTPS on the same socket
(the pair was checked when the configuration was read, :mod:`stagectl.desk.config`).
"""

from __future__ import annotations

import logging
import signal
import socket
import threading
import time
from collections.abc import Callable
from datetime import datetime
from types import TracebackType

import uvicorn
from fastapi import FastAPI

from stagectl.desk.app import close_app, create_app
from stagectl.desk.config import DeskConfig

__all__ = ["DeskServer", "serve"]

log = logging.getLogger("stagectl.desk")
HARD_EXIT_S_AFTER_GRACE = 6.0  # a stop signal to exit, whatever still runs


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on such sockets (and on the
    # connections they accept); without it every reply waits ~40 ms for a delayed ACK
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.listen(256)
    sock.set_inheritable(True)
    return sock


def _uvicorn(app: FastAPI, graceful_s: float, config: DeskConfig) -> uvicorn.Server:
    tls = config.tls_cert is not None and config.tls_key is not None
    cfg = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off",
                         timeout_graceful_shutdown=max(1, int(graceful_s)),
                         timeout_keep_alive=5, server_header=False,
                         limit_concurrency=512,
                         ssl_certfile=str(config.tls_cert) if tls else None,
                         ssl_keyfile=str(config.tls_key) if tls else None)
    return uvicorn.Server(cfg)


class DeskServer:
    """The desk on a background thread (tests, the demo).

    Args:
        config: the desk's configuration (``port`` 0: any free port).
        clock: "now" for the store and sessions.
        graceful_s: how long stopping waits for open requests.

    Example::

        with DeskServer(config) as desk:
            httpx.get(desk.url + "/api/v1/me", headers=...)
    """

    def __init__(self, config: DeskConfig, *, clock: Callable[[], datetime] | None = None,
                 graceful_s: float = 3.0) -> None:
        self.config = config
        self.clock = clock
        self.graceful_s = graceful_s
        self.app: FastAPI | None = None
        self.port = 0
        self._sock: socket.socket | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        """``http://host:port``, or ``https://`` with TLS (no trailing slash)."""
        host = f"[{self.config.host}]" if ":" in self.config.host else self.config.host
        return f"{self.config.scheme}://{host}:{self.port}"

    def start(self, timeout_s: float = 10.0) -> DeskServer:
        """Open the store, bind, start uvicorn and wait until it serves.

        Raises:
            RuntimeError: uvicorn did not start in time (its error chained).
            OSError: the address cannot be bound.
        """
        self.app = create_app(self.config, clock=self.clock)
        try:
            self._sock = _bind(self.config.host, self.config.port)
        except OSError:
            close_app(self.app)
            raise
        self.port = int(self._sock.getsockname()[1])
        self._server = _uvicorn(self.app, self.graceful_s, self.config)
        self._thread = threading.Thread(target=self._run, name=f"desk-{self.port}",
                                        daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the desk did not start on {self.url}") from self._error
            time.sleep(0.01)
        return self

    def _run(self) -> None:
        assert self._server is not None and self._sock is not None
        try:
            self._server.run(sockets=[self._sock])
        except BaseException as exc:  # reported by start()/stop()
            self._error = exc
            log.exception("desk server stopped with an error")

    def stop(self) -> None:
        """Stop serving, join the thread, close the socket and the store (idempotent)."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(self.graceful_s + 5.0)
            if self._thread.is_alive() and self._server is not None:
                self._server.force_exit = True
                self._thread.join(5.0)
            self._thread = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        if self.app is not None:
            close_app(self.app)

    def __enter__(self) -> DeskServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def serve(config: DeskConfig, on_ready: Callable[[str], None] | None = None) -> None:
    """Serve until SIGINT, SIGTERM or SIGHUP, then stop within a bound (exit 0).

    uvicorn runs on a :class:`DeskServer` thread; the main thread waits for a signal. The
    stop (open requests get ``graceful_s``) is bounded by
    :data:`stagectl.cli.lifecycle.HARD_EXIT_S` more seconds, after which
    :class:`~stagectl.cli.lifecycle.ExitDeadline` ends the process, as every stagectl
    service does (docs/decisions/0047-processes-always-stop.md).

    Args:
        config: the desk's configuration.
        on_ready: called with the URL once the desk serves.

    Raises:
        RuntimeError: uvicorn stopped by itself (its error chained).
    """
    from stagectl.cli.lifecycle import HANDLED_SIGNALS, ExitDeadline

    stop = threading.Event()
    deadline = ExitDeadline("desk", HARD_EXIT_S_AFTER_GRACE)

    def on_signal(signum: int, frame: object) -> None:
        deadline.arm()
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in HANDLED_SIGNALS}
    try:
        server = DeskServer(config, graceful_s=2.0).start()
        try:
            if on_ready is not None:
                on_ready(server.url)
            while not stop.wait(0.5):
                if server._thread is None or not server._thread.is_alive():
                    raise RuntimeError("the desk's server stopped by itself") \
                        from server._error
        finally:
            server.stop()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        deadline.cancel()
