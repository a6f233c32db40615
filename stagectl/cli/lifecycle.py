"""Processes that always stop: bounded shutdown, a hard exit deadline, children that die with us.

``stagectl serve`` and ``sim`` run :func:`serve_until_signal`: SIGINT, SIGTERM or SIGHUP (at
any time, also while starting) begins an orderly stop (devices left safe first) bounded by
:data:`STOP_BUDGET_S`; a deadline thread ends the process at :data:`HARD_EXIT_S` after the
stop began even if the event loop is blocked or a peer never answers. ``stagectl demo``
runs its simulators, engine and console as a :class:`ChildGroup`: stopped in reverse order
on every exit path, and (Linux) told by the kernel to stop when the demo dies, even by
SIGKILL (``PR_SET_PDEATHSIG``, see :func:`die_with_parent`).
See ``docs/decisions/0047-processes-always-stop.md``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

log = logging.getLogger(__name__)

STOP_BUDGET_S = 4.0  # orderly stop: devices safe, sockets closed
HARD_EXIT_S = 4.7  # from the start of the stop: exit whatever is still running
HANDLED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
PARENT_ENV = "STAGECTL_PARENT_PID"  # set for the demo's children: die with that process
PR_SET_PDEATHSIG = 1


class ExitDeadline:
    """A daemon timer that ends the process if an orderly stop overruns.

    It writes one line with ``os.write`` (no locks, no logging) and calls ``os._exit``: the
    last resort for a loop blocked in a system call or a thread that never returns.
    """

    def __init__(self, what: str, seconds: float | None) -> None:
        self.what = what
        self.seconds = seconds
        self._timer: threading.Timer | None = None

    def arm(self) -> None:
        """Start the countdown (once; later calls keep the first deadline)."""
        if self.seconds is None or self._timer is not None:
            return
        self._timer = threading.Timer(self.seconds, self._expire)
        self._timer.name = "stagectl-exit-deadline"
        self._timer.daemon = True
        self._timer.start()

    def cancel(self) -> None:
        """Stop the countdown (in-process callers that keep running)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer.join()
            self._timer = None

    def _expire(self) -> None:
        line = (f"error: {self.what}: did not stop within {self.seconds:g} s of the stop "
                "request; exiting now\n").encode()
        # stderr may be the very thing that blocks (a full pipe): write from a thread of its
        # own, give it a moment, and exit either way.
        writer = threading.Thread(target=_write_stderr, args=(line,), daemon=True,
                                  name="stagectl-exit-message")
        writer.start()
        writer.join(0.2)
        os._exit(1)


def _write_stderr(data: bytes) -> None:
    with contextlib.suppress(OSError):
        os.write(2, data)


class SignalWatch:
    """Notices SIGINT/SIGTERM/SIGHUP even while the main thread is stuck.

    A Python signal handler runs in the main thread between bytecodes; a signal that the
    kernel delivers to another thread (ZeroMQ's, an executor's) while the main thread is
    blocked in a system call (a write to a full stderr pipe) is never acted on, and
    ``loop.add_signal_handler`` callbacks need the loop itself to run. The C-level handler
    does write the signal number to the wakeup fd from whichever thread got it: a thread
    reading that fd calls ``on_signal`` (which must be thread-safe).
    """

    def __init__(self, on_signal: Callable[[int], None]) -> None:
        self._on_signal = on_signal
        self._read_fd, self._write_fd = os.pipe()
        os.set_blocking(self._write_fd, False)
        self._previous_fd = -1
        self._previous: dict[int, Any] = {}
        self._thread = threading.Thread(target=self._watch, name="stagectl-signal-watch",
                                        daemon=True)

    def __enter__(self) -> SignalWatch:
        self._previous = {sig: signal.signal(sig, self._python_handler)
                          for sig in HANDLED_SIGNALS}
        self._previous_fd = signal.set_wakeup_fd(self._write_fd, warn_on_full_buffer=False)
        self._thread.start()
        return self

    def _python_handler(self, signum: int, frame: Any) -> None:
        self._on_signal(signum)  # the main thread got it and can run: act at once too

    def _watch(self) -> None:
        while True:
            try:
                data = os.read(self._read_fd, 64)
            except OSError:
                return
            if not data:
                return
            for signum in data:
                if signum in HANDLED_SIGNALS:
                    self._on_signal(signum)

    def __exit__(self, *exc: object) -> None:
        signal.set_wakeup_fd(self._previous_fd)
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        os.close(self._write_fd)  # the watcher reads EOF and ends
        self._thread.join(1.0)
        os.close(self._read_fd)


async def serve_until_signal(start: Callable[[], Awaitable[None]],
                             stop: Callable[[], Awaitable[None]], what: str,
                             report: Callable[[str], None], *,
                             stop_budget_s: float = STOP_BUDGET_S,
                             hard_exit_s: float | None = HARD_EXIT_S) -> int:
    """Start, serve until a signal, stop within a bound; returns the exit code.

    Args:
        start: binds sockets and starts devices; a failure is reported as one line, exit 1.
        stop: the orderly stop (devices safe); it runs on every path once start began.
        what: the process's name in messages (``engine``, ``simulators``).
        report: prints one error line for the operator.
        stop_budget_s: how long ``stop`` may take before the process gives up on it.
        hard_exit_s: the :class:`ExitDeadline` from the start of the stop (None: none).
    """
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    deadline = ExitDeadline(what, hard_exit_s)

    def on_signal(signum: int) -> None:  # any thread
        deadline.arm()
        with contextlib.suppress(RuntimeError):  # the loop already closed
            loop.call_soon_threadsafe(stopping.set)

    with SignalWatch(on_signal):
        code = 0
        start_task = asyncio.ensure_future(start())
        stop_wait = asyncio.ensure_future(stopping.wait())
        await asyncio.wait({start_task, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
        if not start_task.done():  # a signal while starting: stop what has started
            start_task.cancel()
            await asyncio.gather(start_task, return_exceptions=True)
        elif start_task.exception() is not None:
            exc = start_task.exception()
            report(f"{what}: {exc}")
            log.debug("%s: start failed", what, exc_info=exc)
            code = 1
        else:
            await stop_wait
        stop_wait.cancel()
        deadline.arm()
        log.info("%s: shutting down", what)
        try:
            await asyncio.wait_for(stop(), stop_budget_s)
        except TimeoutError:
            report(f"{what}: shutdown did not finish within {stop_budget_s:g} s; exiting "
                   "anyway (check the devices)")
            code = 1
        except Exception as exc:
            report(f"{what}: shutdown failed: {exc}")
            log.debug("%s: shutdown failed", what, exc_info=exc)
            code = 1
        return code


# ---- children ------------------------------------------------------------------------------

def die_with_parent() -> None:
    """In a child of ``stagectl demo``: get SIGTERM when the demo dies (Linux).

    The demo sets ``STAGECTL_PARENT_PID``; if that process is already gone (it died before
    we got here), exit at once.
    """
    parent = os.environ.pop(PARENT_ENV, None)
    if parent is None or not parent.isdigit():
        return
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
    if os.getppid() != int(parent):
        os._exit(1)


@dataclass
class Child:
    """One child process and the file its output goes to."""

    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path
    stop_wait_s: float = 1.0  # how long it may take to stop after SIGTERM
    _log: IO[bytes] | None = field(default=None, repr=False)

    def tail(self, lines: int = 6) -> str:
        """The last lines of the child's output (what it said before it exited)."""
        with contextlib.suppress(OSError):
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
            return "\n".join(text.strip().splitlines()[-lines:])
        return ""

    def reason(self) -> str:
        """``exit code N`` or ``killed by SIGABRT`` plus its last output line."""
        code = self.proc.returncode
        if code is None:
            return "still running"
        if code >= 0:
            how = f"exit code {code}"
        else:
            try:
                how = f"killed by {signal.Signals(-code).name}"
            except ValueError:
                how = f"killed by signal {-code}"
        lines = self.tail(20).splitlines()
        telling = [ln for ln in lines if any(w in ln.lower() for w in ("error", "fail", "could not",
                                                                      "cannot"))]
        last = (telling or lines or [""])[-1].strip()
        return f"{how}: {last}" if last else how


class ChildGroup:
    """``stagectl`` child processes started in order and stopped in reverse, within a bound.

    Each child runs in its own process group (a terminal's Ctrl-C reaches only the parent,
    which then stops the children in order: console, engine, then simulators, so the engine
    can still reach the simulated devices while it leaves them safe) and dies with the
    parent (:func:`die_with_parent`). Output goes to ``log_dir/NAME.log``, never to a pipe
    nobody reads (a full pipe blocks a child's logging and with it its event loop).
    """

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.children: list[Child] = []

    def spawn(self, name: str, args: list[str], stop_wait_s: float = 1.0) -> Child:
        """Start ``python -m stagectl ARGS`` as child ``name``.

        ``stop_wait_s`` is its share of the stop budget (the engine's safe shutdown needs the
        most).
        """
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"{name}.log"
        out = log_path.open("wb")
        env = {**os.environ, PARENT_ENV: str(os.getpid())}
        try:
            proc = subprocess.Popen([sys.executable, "-m", "stagectl", *args],
                                    stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                    env=env, process_group=0)
        except BaseException:
            out.close()
            raise
        child = Child(name, proc, log_path, stop_wait_s, out)
        self.children.append(child)
        return child

    def exited(self) -> Child | None:
        """The first child that has exited, if any."""
        for child in self.children:
            if child.proc.poll() is not None:
                return child
        return None

    def stop(self, budget_s: float = STOP_BUDGET_S) -> bool:
        """SIGTERM each child, newest first, waiting for it; SIGKILL what is left at the end.

        A child stopped with SIGSTOP also gets SIGCONT so it can act on the SIGTERM. Every
        child has had SIGKILL and been reaped when this returns.

        Returns:
            True when every child exited 0 (their logs are then of no interest).
        """
        end = time.monotonic() + budget_s
        pending = list(reversed(self.children))
        for i, child in enumerate(pending):
            if child.proc.poll() is None:
                with contextlib.suppress(OSError):
                    child.proc.send_signal(signal.SIGTERM)
                    child.proc.send_signal(signal.SIGCONT)
            # its own share, keeping at least 0.3 s for each one after it
            left = end - time.monotonic() - 0.3 * (len(pending) - 1 - i)
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.proc.wait(max(0.1, min(child.stop_wait_s, left)))
        for child in pending:
            if child.proc.poll() is None:
                log.warning("%s did not stop within %.1f s; killing it", child.name, budget_s)
                with contextlib.suppress(OSError):
                    child.proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.proc.wait(2)
            if child._log is not None:
                child._log.close()
                child._log = None
        return all(child.proc.returncode == 0 for child in pending)

    def remove_logs(self) -> None:
        """Delete the log folder (after a clean run)."""
        shutil.rmtree(self.log_dir, ignore_errors=True)


class StopSignals:
    """While entered, SIGTERM and SIGHUP act like Ctrl-C (KeyboardInterrupt): ``finally`` runs.

    :meth:`shield` makes the three signals log and do nothing, for a teardown that must not be
    interrupted (it is bounded itself); leaving restores the previous handlers.
    """

    def __init__(self) -> None:
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopSignals:
        self._previous = {sig: signal.signal(sig, self._interrupt) for sig in HANDLED_SIGNALS}
        return self

    @staticmethod
    def _interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    def shield(self) -> None:
        """Ignore (and log) further stop signals until exit."""
        for sig in HANDLED_SIGNALS:
            signal.signal(sig, lambda signum, frame: log.info("already stopping"))

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
