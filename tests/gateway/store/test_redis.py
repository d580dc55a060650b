"""The Redis backend's hot path when Redis is away: answers locally, bounds what waits, never raises."""

from __future__ import annotations

import asyncio

from gateway.store import AuditRecord
from gateway.store.redis_store import RedisStore
from tests.conftest import free_port


async def test_hot_path_survives_redis_being_away():
    store = RedisStore(f"redis://127.0.0.1:{free_port()}/0", max_pending=5)
    for i in range(6):
        store.remember_message(f"{i:X}", "bank", now=1.0)
    store.audit(AuditRecord("sms.blocked", 1.0, {}))
    store.audit(AuditRecord("sms.blocked", 1.0, {}))
    await asyncio.sleep(0.05)
    assert store.owner_of("5", now=2.0) == "bank"  # answered from the local map
    assert store.dropped == 3
    assert len(store._pending) == 5
    if store._flusher is not None:
        store._flusher.cancel()
    await store.redis.aclose()


async def test_registrations_written_before_the_expiry_index_are_indexed_and_expire(redis_port):
    import json

    store = RedisStore(f"redis://127.0.0.1:{redis_port}/0", prefix="afgw-old-reg")
    # As a gateway of the previous release wrote them: the hash and the set, no expiry index.
    for aor, port, expires in (("alice", 5070, 200.0), ("bob", 5071, 900.0)):
        row = [f"sip:{aor}@127.0.0.1:{port}", expires, f"udp:127.0.0.1:{port}", "", "c1", 1, 1.0]
        await store.redis.hset(f"afgw-old-reg:reg:{aor}", row[0], json.dumps(row))
        await store.redis.sadd("afgw-old-reg:aors", aor)
    assert await store.expire_registrations(now=300.0) == 0  # not indexed yet
    assert sorted(await store.all_registrations(now=100.0)) == ["alice", "bob"]  # a restart reloads them
    assert await store.expire_registrations(now=300.0) == 1
    assert sorted(await store.all_registrations(now=100.0)) == ["bob"]
    assert await store.redis.smembers("afgw-old-reg:aors") == {"bob"}
    await store.close()


async def test_routes_written_together_come_back_through_another_instance(redis_port):
    url, prefix = f"redis://127.0.0.1:{redis_port}/0", "afgw-routes"
    first = RedisStore(url, prefix=prefix)
    for i in range(1200):  # more than one flush takes
        first.remember_message(f"{i:X}", f"esme{i % 3}", now=100.0 + i)
    first.remember_message("odd\x00id", "tab\tin\tname", now=100.0)  # no SMSC sends these; stored all the same
    await first.close()
    second = RedisStore(url, prefix=prefix)
    for i in (0, 1, 599, 1199):
        assert await second.route_owner(f"{i:x}", now=2000.0) == f"esme{i % 3}"
    assert await second.route_owner("odd\x00id", now=2000.0) == "tab\tin\tname"
    assert await second.route_owner("4B1", now=2000.0) is None
    await second.close()
