"""The farm controller's socket: size cap, per-peer limits, structured errors for junk.

Before, malformed frames got no answer at all, there was no size cap (ZeroMQ read messages of
any size into memory) and one peer's flood was handled in full before anyone else.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import orjson
import pytest

from scheduler.dispatch.client import FarmClient
from scheduler.dispatch.config import ControllerConfig
from scheduler.dispatch.controller import Controller
from tests.dispatch.conftest import Farm, free_port
from tests.security.farm_peers import RawPeer, farm

__all__ = ["farm"]


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def test_malformed_messages_get_structured_errors(farm: Farm) -> None:
    farm.start_controller()
    cases = [
        ([b'{"type": "status", "req": 1, "n": ' + b"9" * 5000 + b"}"], "bad_message"),
        ([b"[" * 5000 + b"]" * 5000], "bad_message"),
        ([b'{"type": "\xff\xfe"}'], "bad_message"),
        ([b"\x00\x01binary"], "bad_message"),
        ([b"[1, 2, 3]"], "bad_message"),
        ([b'{"type": "status"}', b"extra"], "bad_frames"),
        ([b""], "bad_message"),
        ([orjson.dumps({"type": "launch", "req": 7})], "unknown_type"),
        ([orjson.dumps({"type": "events", "req": 8, "limit": 10**18})], "bad_value"),
        ([orjson.dumps({"type": "cancel_job", "req": 9, "job": ["x"]})], "bad_value"),
        ([orjson.dumps({"type": "submit", "req": 10, "jobs": "x"})], "bad_value"),
        ([orjson.dumps({"type": "progress", "attempt": 1, "fraction": "NaN"})], "bad_value"),
        ([orjson.dumps({"type": "finished", "attempt": 1.5})], "bad_value"),
        ([b'{"type": "finished", "attempt": 18446744073709551615}'], "bad_value"),
        ([orjson.dumps({"type": "heartbeat", "node_id": {"a": 1}})], "bad_value"),
    ]
    with RawPeer(farm.address) as peer:
        for frames, code in cases:
            peer.send_raw(*frames)
            reply = peer.recv(timeout_s=5)
            assert reply["type"] == "reply" and reply["ok"] is False, (frames[0][:40], reply)
            assert reply["code"] == code and reply["error"], (frames[0][:40], reply)
        peer.send({"type": "status", "req": "after"})
        assert peer.recv()["req"] == "after"
    counters = farm.request("ping")["counters"]
    assert sum(counters.values()) >= len(cases)
    assert farm.controller is not None and farm.controller.poll() is None


def test_oversized_messages_drop_the_peer_and_memory_stays_bounded(farm: Farm) -> None:
    farm.start_controller()
    assert farm.controller is not None
    pid = farm.controller.pid
    farm.request("ping")
    before = _peak_rss_mb(pid)
    big = b'{"type": "status", "pad": "' + b"x" * (40 << 20) + b'"}'
    peers = [RawPeer(farm.address) for _ in range(10)]
    try:
        for peer in peers:
            peer.send_raw(big)
        time.sleep(3.0)
        for peer in peers:
            assert not peer.sock.poll(10)  # dropped, never answered
    finally:
        for peer in peers:
            peer.close()
    assert _peak_rss_mb(pid) - before < 64, "the controller buffered oversized messages"
    # just under the 1 MB default is fine
    with RawPeer(farm.address) as peer:
        peer.send_raw(b'{"type": "ping", "req": 1, "pad": "' + b"x" * 1_000_000 + b'"}')
        assert peer.recv()["ok"] is True
    assert farm.request("ping")["ok"] is True


def test_message_cap_is_configurable(tmp_path: Path) -> None:
    cfg = ControllerConfig(bind=f"tcp://127.0.0.1:{free_port()}", max_message_bytes=4096)
    ctl = Controller(tmp_path / "farm.sqlite", cfg)
    thread = threading.Thread(target=ctl.serve, name="controller-under-test")
    thread.start()
    try:
        with RawPeer(cfg.bind) as peer:
            peer.send_raw(b'{"type": "ping", "req": 1, "pad": "' + b"x" * 8000 + b'"}')
            assert not peer.sock.poll(1000)
        with RawPeer(cfg.bind) as peer:
            peer.send_raw(b'{"type": "ping", "req": 2, "pad": "' + b"x" * 3000 + b'"}')
            assert peer.recv()["req"] == 2
    finally:
        ctl.stop()
        thread.join(timeout=10)


@pytest.mark.parametrize("count", [3000])
def test_flood_from_one_peer_never_starves_another(farm: Farm, count: int) -> None:
    farm.start_controller()
    # the flooder buffers every reply on its side (0: no limit); the controller queues at most
    # 10,000 per peer, so a peer that never reads cannot grow it
    with RawPeer(farm.address, rcvhwm=0) as flood, \
            FarmClient(farm.address, timeout_s=5) as other:
        for i in range(count):
            flood.send({"type": "status", "req": i})
        t0 = time.monotonic()
        other.request("ping")
        assert time.monotonic() - t0 < 2.0, "a flood from one peer delayed another's reply"
        replies: dict[int, str] = {}
        deadline = time.monotonic() + 30
        while len(replies) < count and time.monotonic() < deadline:
            if flood.sock.poll(500):
                reply = flood.recv()
                replies[reply["req"]] = "ok" if reply["ok"] else reply["code"]
    assert sorted(replies) == list(range(count)), "every request gets a reply"
    assert set(replies.values()) <= {"ok", "busy"}
    assert "busy" in replies.values(), "one peer's flood was handled in full"
