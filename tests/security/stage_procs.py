"""Helpers for the process-lifecycle tests: the sample stage on free ports, real processes.

Every process a test starts, and every process whose command line names the test's config
(the demo's children), is killed in :meth:`Stack.close`, which tests run in ``finally``
(the ``stack`` fixture, made by :func:`closed_after`, which the farm tests use too).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any, Protocol, TypeVar

import pytest

from stagectl.cli.ports import Endpoint, engine_endpoints, in_use, simulator_endpoints
from stagectl.client import ClientIdentity, EngineClient, EngineError, EngineUnavailable
from stagectl.config import StageConfig, load_config
from stagectl.harness import free_port

REPO = Path(__file__).resolve().parents[2]
STAGECTL = [sys.executable, "-m", "stagectl"]
UDP_PORTS = {"9000", "40000"}  # the sample stage's LED and tracking ports


class Closable(Protocol):
    def close(self) -> None: ...


C = TypeVar("C", bound=Closable)


def closed_after(make: Callable[[Path], C], name: str) -> Any:
    """A pytest fixture ``name``: ``make(tmp_path)``, closed after the test whatever happens."""

    def fixture(tmp_path: Path) -> Iterator[C]:
        made = make(tmp_path)
        try:
            yield made
        finally:
            made.close()

    return pytest.fixture(fixture, name=name)


def sample_stage(tmp_path: Path) -> Path:
    """``configs/sim-stage.toml`` (LED, arm, tracking, embedded MQTT) with fresh ports."""
    text = (REPO / "configs" / "sim-stage.toml").read_text(encoding="utf-8")
    ports: dict[str, int] = {}

    def fresh(match: re.Match[str]) -> str:
        old = match.group(1)
        if old not in ports:
            ports[old] = free_port(socket.SOCK_DGRAM if old in UDP_PORTS else
                                   socket.SOCK_STREAM)
        return f"127.0.0.1:{ports[old]}"

    text = re.sub(r"127\.0\.0\.1:(\d+)", fresh, text)
    text = text.replace("port = 40000", f"port = {ports['40000']}")
    text = text.replace('"configs/cues/sim-stage.toml"',
                        f'"{REPO / "configs" / "cues" / "sim-stage.toml"}"')
    text = text.replace('"var/audit.sqlite"', f'"{tmp_path / "audit.sqlite"}"')
    text = text.replace('"var/takes"', f'"{tmp_path / "takes"}"')
    path = tmp_path / "stage.toml"
    path.write_text(text, encoding="utf-8")
    return path


def pids_naming(config: Path) -> list[int]:
    """Processes (not this one) whose command line contains ``config``."""
    needle = str(config).encode()
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            argv = Path(f"/proc/{entry.name}/cmdline").read_bytes()
            state = Path(f"/proc/{entry.name}/stat").read_text().rsplit(")", 1)[1].split()[0]
            if needle in argv and state != "Z":
                found.append(int(entry.name))
    return found


class Stack:
    """Processes started for one test on one config."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.config_path = sample_stage(tmp_path)
        self.config: StageConfig = load_config(self.config_path)
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self._logs: list[IO[bytes]] = []

    def start(self, name: str, *args: str, stderr: Any = None,
              env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        """``python -m stagectl ARGS --config CONFIG``.

        stdout and stderr go to ``tmp/NAME.log`` unless ``stderr`` is given (then stdout is
        discarded).
        """
        stdout: Any = subprocess.DEVNULL
        if stderr is None:
            log = (self.tmp_path / f"{name}.log").open("wb")
            self._logs.append(log)
            stdout = stderr = log
        proc = subprocess.Popen([*STAGECTL, *args, "--config", str(self.config_path)],
                                stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr,
                                env={**os.environ, "TMPDIR": str(self.tmp_path), **(env or {})})
        self.procs[name] = proc
        return proc

    def log(self, name: str) -> str:
        return (self.tmp_path / f"{name}.log").read_text(encoding="utf-8", errors="replace")

    def wait_online(self, timeout_s: float = 30.0) -> None:
        """Until the engine answers and every device is online."""
        deadline = time.monotonic() + timeout_s
        last: Any = None
        with EngineClient(self.config, ClientIdentity("test", "viewer"), timeout_s=1.0) as c:
            while time.monotonic() < deadline:
                for name, proc in self.procs.items():
                    assert proc.poll() is None, f"{name} exited ({proc.returncode})"
                try:
                    last = c.call("status")
                    if all(d["health"] != "offline" for d in last["devices"]):
                        return
                except (EngineUnavailable, EngineError) as exc:
                    last = exc
                time.sleep(0.2)
        raise AssertionError(f"stage not online within {timeout_s} s: {last}")

    def endpoints(self) -> list[Endpoint]:
        return engine_endpoints(self.config) + simulator_endpoints(self.config)

    def held(self, endpoints: list[Endpoint] | None = None) -> list[str]:
        chosen = self.endpoints() if endpoints is None else endpoints
        return [e.url for e in chosen if in_use(e)]

    def close(self) -> None:
        """Kill everything this test started or that names its config (SIGCONT first)."""
        pids = {p.pid for p in self.procs.values() if p.poll() is None}
        pids |= set(pids_naming(self.config_path))
        for pid in pids:
            for sig in (signal.SIGCONT, signal.SIGKILL):
                with contextlib.suppress(OSError):
                    os.kill(pid, sig)
        for proc in self.procs.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(5)
            for stream in (proc.stdout, proc.stderr):
                if stream is not None:
                    stream.close()
        for log in self._logs:
            log.close()


def wait_exit(proc: subprocess.Popen[bytes], limit_s: float) -> tuple[int | None, float]:
    """(exit code or None if still running after ``limit_s``, seconds taken)."""
    start = time.monotonic()
    try:
        code: int | None = proc.wait(limit_s)
    except subprocess.TimeoutExpired:
        code = None
    return code, time.monotonic() - start


def wait_gone(config: Path, limit_s: float) -> list[int]:
    """Processes still naming ``config`` after up to ``limit_s`` (empty: all gone)."""
    deadline = time.monotonic() + limit_s
    while True:
        left = pids_naming(config)
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.1)


def wait_freed(stack: Stack, endpoints: list[Endpoint], limit_s: float = 3.0) -> list[str]:
    deadline = time.monotonic() + limit_s
    while True:
        held = stack.held(endpoints)
        if not held or time.monotonic() > deadline:
            return held
        time.sleep(0.1)
