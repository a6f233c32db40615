"""The desk's API token cache: a second of grace elsewhere, none in this process."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from scheduler.booking.store import BookingStore
from stagectl.desk import auth
from stagectl.desk.auth import DeskUser, TokenCache
from tests.desk.conftest import Desk

ANN = DeskUser("ann", "producer")
BEN = DeskUser("ben", "viewer")


def test_a_token_is_kept_for_ttl_s_then_looked_up_again() -> None:
    now = [100.0]
    cache = TokenCache(ttl_s=1.0, clock=lambda: now[0])
    assert cache.get("sdt_a") is None
    cache.put("sdt_a", ANN, cache.stamp())
    assert cache.get("sdt_a") == ANN
    assert cache.get("sdt_b") is None
    now[0] += 0.999
    assert cache.get("sdt_a") == ANN
    now[0] += 0.001
    assert cache.get("sdt_a") is None
    assert len(cache) == 0  # an expired entry is dropped, not kept


def test_forgetting_a_user_drops_their_tokens_and_any_lookup_under_way() -> None:
    cache = TokenCache(clock=lambda: 0.0)
    cache.put("sdt_a1", ANN, cache.stamp())
    cache.put("sdt_a2", ANN, cache.stamp())
    cache.put("sdt_b", BEN, cache.stamp())
    stamp = cache.stamp()  # a lookup of ann's third token starts...
    cache.forget_user("ann")  # ...ann is disabled meanwhile...
    cache.put("sdt_a3", ANN, stamp)  # ...its answer, read before, is not kept
    assert cache.get("sdt_a1") is None and cache.get("sdt_a2") is None
    assert cache.get("sdt_a3") is None
    assert cache.get("sdt_b") == BEN
    cache.put("sdt_a3", ANN, cache.stamp())  # a lookup after the change is kept again
    assert cache.get("sdt_a3") == ANN


def test_the_cache_is_bounded_and_keeps_no_token() -> None:
    cache = TokenCache(max_entries=3, clock=lambda: 0.0)
    tokens = [f"sdt_secret_{i}" for i in range(5)]
    for t in tokens:
        cache.put(t, ANN, cache.stamp())
    assert len(cache) == 3
    assert [cache.get(t) for t in tokens] == [None, None, ANN, ANN, ANN]  # oldest dropped
    assert not any(t in repr(cache._users) for t in tokens)


def test_a_token_disabled_elsewhere_stops_within_the_ttl(desk: Desk) -> None:
    now = [0.0]
    assert desk.server.app is not None
    desk.server.app.state.desk.tokens = TokenCache(ttl_s=1.0, clock=lambda: now[0])
    client = desk.client("producer")
    assert client.get("/api/v1/me").json() == {"user": "producer", "role": "producer"}
    # another process (``stagectl desk users disable``) disables the user
    with BookingStore(desk.config.db, create=False) as other:
        assert auth.disable_user(other.conn, "producer")
    assert client.get("/api/v1/me").status_code == 200  # seen a moment ago: still known
    now[0] += 1.0
    r = client.get("/api/v1/me")
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthenticated"
    now[0] += 5.0  # an unknown answer is not kept: it stays refused
    assert client.get("/api/v1/me").status_code == 401


def test_a_token_disabled_through_the_desk_stops_at_once_under_load(desk: Desk) -> None:
    victim = desk.client("producer")
    assert victim.get("/api/v1/me").status_code == 200  # cached now

    def hammer(_: int) -> int:
        return int(victim.get("/api/v1/me").status_code)

    with ThreadPoolExecutor(4) as pool:
        running = [pool.submit(hammer, i) for i in range(40)]
        r = desk.client("admin").post("/api/v1/users/producer/disable")
        assert r.status_code == 200 and r.json()["disabled"] is True
        after = [pool.submit(hammer, i) for i in range(20)]
        assert {f.result() for f in running} <= {200, 401}
        assert {f.result() for f in after} == {401}
    assert victim.get("/api/v1/me").status_code == 401
