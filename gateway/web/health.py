"""Readiness: what must be up before the gateway can carry traffic, each checked by a small probe.

A probe answers None when its part is ready, or a short text saying what is not (never a secret: the
text is served to whoever asks ``/readyz``). Probes run side by side, each within ``within`` seconds:
a store that hangs makes the gateway not ready, not ``/readyz`` slow.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from gateway.events.mqtt import MqttEvents
from gateway.smpp.smsc_pool import SmscPool
from gateway.store import SqliteStore, Store

Probe = Callable[[], Awaitable[str | None]]


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    probe: Probe


async def not_ready(checks: Sequence[Check], within: float = 1.0) -> dict[str, str]:
    """The checks that fail, by name, with why."""

    async def run(check: Check) -> str | None:
        try:
            return await asyncio.wait_for(check.probe(), within)
        except TimeoutError:
            return f"no answer within {within:g} s"
        except Exception as exc:  # a probe's own failure is the answer: not ready
            return f"{type(exc).__name__}: {exc}"[:200]

    answers = await asyncio.gather(*(run(check) for check in checks))
    return {check.name: answer for check, answer in zip(checks, answers, strict=True) if answer is not None}


def smsc_binds(pool: SmscPool) -> Check:
    """Ready with at least one bind to the SMSC: messages can go out (the others are being re-bound)."""

    async def probe() -> str | None:
        bound = pool.bound_count
        return None if bound else f"0 of {pool.peer.binds} binds to {pool.peer.host}:{pool.peer.port} are up"

    return Check("smsc", probe)


def store_reachable(store: Store) -> Check:
    """Redis answers PING; SQLite answers a query; the memory store is always there."""

    async def probe() -> str | None:
        if isinstance(store, SqliteStore):
            store.db.execute("SELECT 1").fetchone()
            return None
        # Loaded here, as build_store does: the redis package costs a gateway on SQLite half a second.
        from gateway.store.redis_store import RedisStore

        if isinstance(store, RedisStore):
            await store.redis.ping()
        return None

    return Check("store", probe)


def broker_connected(mqtt: MqttEvents) -> Check:
    async def probe() -> str | None:
        return None if mqtt.connected else f"not connected to the MQTT broker at {mqtt.host}:{mqtt.port}"

    return Check("broker", probe)
