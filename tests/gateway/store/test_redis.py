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
