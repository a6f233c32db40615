"""Message size cap and bounded memory on the engine's command socket.

Measured before: there was no size cap; ten 100 MB messages grew the engine to 1.28 GB. Now
ZeroMQ's MAXMSGSIZE (``[engine] max_message_bytes``, 1 MB by default) drops the sender's
connection as soon as an oversized message's header arrives, before anything is buffered;
the engine counts the closed connection and keeps serving everyone else.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
import zmq

from stagectl.client import ClientIdentity, EngineClient, EngineError
from stagectl.config import load_config
from stagectl.harness import StageHarness, free_port_config
from tests.stage_toml import write_stage_toml


@pytest.fixture(scope="module")
def stage() -> Iterator[StageHarness]:
    harness = StageHarness(free_port_config(stage="limits")).start()
    yield harness
    harness.stop()


def dealer(endpoint: str) -> zmq.Socket[bytes]:
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(endpoint)
    return sock


def ping_padded(size: int, rid: str = "big") -> bytes:
    head = b'{"id": "%s", "cmd": "ping", "args": {"pad": "' % rid.encode()
    return head + b"x" * (size - len(head) - 3) + b'"}}'


def test_oversized_message_drops_only_its_sender(stage: StageHarness) -> None:
    assert stage.engine is not None
    engine = stage.engine
    endpoint = stage.config.engine.command
    limit = stage.config.engine.max_message_bytes
    assert limit == 1_000_000
    sender = dealer(endpoint)
    try:
        sender.send(ping_padded(limit - 1000, "under"))  # just under the cap: served
        assert sender.poll(3000) and orjson.loads(sender.recv())["id"] == "under"
        closed = engine.counters["connections_closed"]
        sender.send(ping_padded(limit + 1000, "over"))
        deadline = time.monotonic() + 3
        while engine.counters["connections_closed"] == closed:
            assert time.monotonic() < deadline, "the oversized sender was not disconnected"
            time.sleep(0.01)
        assert not sender.poll(300), "an oversized message must not be read, let alone answered"
        with EngineClient(stage.config, ClientIdentity("other", "viewer")) as other:
            assert other.call("ping")["pong"] is True
        # the sender's DEALER reconnects by itself and is served again
        sender.send(b'{"id": "again", "cmd": "ping"}')
        assert sender.poll(5000) and orjson.loads(sender.recv())["id"] == "again"
    finally:
        sender.close()
    assert engine.counters["connections_opened"] >= 2


def test_client_refuses_to_send_over_the_cap(stage: StageHarness) -> None:
    with EngineClient(stage.config, ClientIdentity("op", "operator")) as c:
        with pytest.raises(EngineError) as info:
            c.call("led.set", {"key": "gamma", "value": "x" * 1_100_000})
        assert info.value.code == "too_large"
        assert "max_message_bytes" in str(info.value)
        assert c.call("ping")["pong"] is True


def _peak_rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM in /proc status")


def test_ten_100mb_messages_leave_memory_bounded(tmp_path: Path) -> None:
    config = write_stage_toml(tmp_path / "stage.toml", "memory")
    cfg = load_config(config)
    proc = subprocess.Popen([sys.executable, "-m", "stagectl", "serve", "--config",
                             str(config)], stderr=subprocess.DEVNULL, cwd=tmp_path)
    pings: list[float] = []
    stop = threading.Event()
    try:
        with EngineClient(cfg, ClientIdentity("t", "viewer"), timeout_s=0.5) as probe:
            deadline = time.monotonic() + 30
            while True:
                try:
                    probe.call("ping")
                    break
                except Exception:
                    assert proc.poll() is None and time.monotonic() < deadline, "no engine"
            before = _peak_rss_kb(proc.pid)

            def keep_pinging() -> None:
                with EngineClient(cfg, ClientIdentity("p", "viewer"), timeout_s=5) as c:
                    while not stop.is_set():
                        t0 = time.monotonic()
                        c.call("ping")
                        pings.append(time.monotonic() - t0)
                        time.sleep(0.02)

            pinger = threading.Thread(target=keep_pinging, name="pinger")
            pinger.start()
            big = b"{" + b" " * (100 * 1024 * 1024)
            sender = dealer(cfg.engine.command)
            try:
                deadline = time.monotonic() + 60
                for i in range(10):  # one at a time: this process holds one copy, not ten
                    sender.send(big)
                    while probe.call("engine.counters")["engine"].get(
                            "connections_closed", 0) <= i:
                        assert time.monotonic() < deadline, f"message {i + 1} not dropped"
                        time.sleep(0.05)
            finally:
                sender.close()
                stop.set()
                pinger.join(10)
            after = _peak_rss_kb(proc.pid)
            assert probe.call("ping")["pong"] is True
    finally:
        proc.terminate()
        proc.wait(10)
    grown_mb = (after - before) / 1024
    assert grown_mb < 50, f"peak RSS grew {grown_mb:.0f} MB under ten 100 MB messages"
    assert pings and max(pings) < 1.0, f"another client waited up to {max(pings):.2f} s"
