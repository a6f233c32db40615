"""Admission of engine requests: per-client bounds, round robin, and the urgent path.

The queue itself (:class:`stagectl.engine.admission.FairQueue`) is checked directly; the urgent path
over a real socket: a make-safer request runs ahead of queued work, and nothing queued before
it (a ``safety.reset``, a motion) takes effect after it.
"""

from __future__ import annotations

from collections.abc import Iterator

import orjson
import pytest
import zmq

from stagectl.client import ClientIdentity, EngineClient
from stagectl.engine.admission import FairQueue, Limits, Refused
from stagectl.harness import StageHarness, free_port_config


def test_bounds_refuse_instead_of_buffering() -> None:
    queue: FairQueue[int] = FairQueue(Limits(per_client=3, total=5, total_bytes=1000,
                                             running_per_client=1, running_total=10))
    for i in range(3):
        queue.offer("a", i, 10)
    with pytest.raises(Refused) as info:
        queue.offer("a", 3, 10)
    assert info.value.bound == "client" and "max_inflight_per_client" in str(info.value)
    queue.offer("b", 0, 10)
    queue.offer("c", 0, 10)
    queue.offer("c", 1, 10)
    with pytest.raises(Refused) as info:
        queue.offer("c", 2, 10)
    assert info.value.bound == "total"
    with pytest.raises(Refused) as info:
        queue.offer("d", 0, 5000)  # a large request gets no reserve
    assert info.value.bound == "total"
    queue.offer("d", 0, 10)  # past the total: a client's first small requests are reserved
    queue.offer("d", 1, 10)
    with pytest.raises(Refused):
        queue.offer("d", 2, 10)
    assert queue.next() == ("a", 0)  # running counts as in flight: "a" still has 3
    with pytest.raises(Refused):
        queue.offer("a", 9, 10)
    big: FairQueue[int] = FairQueue(Limits(total_bytes=10_000))
    big.offer("a", 0, 6000)
    with pytest.raises(Refused) as info:
        big.offer("b", 0, 6000)
    assert info.value.bound == "bytes"
    big.offer("b", 0, 600)  # small: reserved


def test_round_robin_and_running_caps() -> None:
    queue: FairQueue[str] = FairQueue(Limits(per_client=100, running_per_client=2,
                                             running_total=4))
    for i in range(10):
        queue.offer("flood", f"f{i}", 1)
    queue.offer("op", "o0", 1)
    queue.offer("op", "o1", 1)
    order = [queue.next() for _ in range(5)]
    assert order == [("flood", "f0"), ("op", "o0"), ("flood", "f1"), ("op", "o1"), None]
    queue.done("op")
    assert queue.next() is None  # "flood" is at its running cap of 2; "op" has nothing
    queue.done("flood")
    assert queue.next() == ("flood", "f2")
    assert queue.in_flight("flood") == 9 and queue.in_flight("op") == 1
    assert [c for c, _ in queue.drain()] == ["flood"] * 7
    assert queue.queued == 0 and queue.queued_bytes == 0


@pytest.fixture(scope="module")
def stage() -> Iterator[StageHarness]:
    harness = StageHarness(free_port_config(stage="admission")).start()
    yield harness
    harness.stop()


def test_reset_queued_before_an_estop_never_undoes_it(stage: StageHarness) -> None:
    assert stage.engine is not None
    engine = stage.engine
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(stage.config.engine.command)
    try:
        for round_ in range(20):
            urgent = engine.counters["urgent"]
            batch = [b'{"id": "s%d", "cmd": "status"}' % i for i in range(10)]
            batch += [b'{"id": "reset", "cmd": "safety.reset", "role": "operator"}',
                      b'{"id": "stop", "cmd": "estop", "role": "viewer"}']
            for payload in batch:
                sock.send(payload)
            replies = {}
            while len(replies) < len(batch):
                assert sock.poll(3000), f"round {round_}: missing replies"
                reply = orjson.loads(sock.recv())
                replies[reply["id"]] = reply
            assert replies["stop"]["ok"], replies["stop"]
            assert replies["reset"]["ok"] or replies["reset"]["error"]["code"] == "superseded"
            assert engine.safety.estop_latched, f"round {round_}: the e-stop was undone"
            assert engine.counters["urgent"] == urgent + 1
    finally:
        sock.close()
    # the batch arrives in one read: the reset waited in the queue and was answered instead
    assert engine.counters["superseded"] >= 1
    with EngineClient(stage.config, ClientIdentity("op", "operator")) as c:
        c.call("safety.reset")
        assert not c.call("safety.status")["estop_latched"]
