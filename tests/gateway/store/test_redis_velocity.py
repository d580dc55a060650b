"""Velocity counters in Redis: several engines on one Redis count one sender together, exactly, within
bounded memory; with Redis away the counting falls back and the failure is counted."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

import rules
from gateway.store.redis_velocity import RedisVelocity
from rules.velocity import Question
from tests.conftest import free_port
from tests.rules.helpers import rule_yaml, sms

BURST = "sel:\n  velocity: {by: src, count: 3, within: 60}\ncondition: sel"


@pytest.fixture
async def client(redis_port: int) -> AsyncIterator[aioredis.Redis]:
    c = aioredis.Redis(port=redis_port, decode_responses=True)
    yield c
    await c.aclose()


@pytest.fixture
def prefix() -> str:
    return f"t{uuid.uuid4().hex[:8]}"


def ruleset(tmp_path: Path, *items: str) -> rules.RuleSet:
    path = tmp_path / "rules.yaml"
    path.write_text("rules:\n" + "".join(items), encoding="utf-8")
    return rules.build([path])


async def hits(engine: rules.Engine, shared: RedisVelocity, message: rules.Message) -> tuple[str, ...]:
    counted = await shared.count(engine.velocity_questions(message), message.now or 0.0)
    assert counted is not None
    return engine.evaluate(message, velocity=counted).rules


async def test_two_engines_on_one_redis_count_a_sender_together(
    client: aioredis.Redis, prefix: str, tmp_path: Path
) -> None:
    rs = ruleset(tmp_path, rule_yaml(BURST))
    one, two = rules.Engine(rs), rules.Engine(rs)
    shared = [RedisVelocity(client, prefix, "one"), RedisVelocity(client, prefix, "two")]
    # the times of the in-memory test of the same rule (tests/rules/test_selectors.py), alternating
    times = (0.0, 10.0, 20.0, 21.0, 59.0, 80.0, 81.0)
    got = []
    for i, t in enumerate(times):
        engine = (one, two)[i % 2]
        got.append(await hits(engine, shared[i % 2], sms("x", src="A", now=t)))
    assert got == [(), (), ("t.rule",), ("t.rule",), ("t.rule",), ("t.rule",), ("t.rule",)]
    # another sender has its own count, through either engine
    assert await hits(one, shared[0], sms("x", src="B", now=82.0)) == ()
    assert await hits(two, shared[1], sms("x", src="B", now=83.0)) == ()
    assert await hits(one, shared[0], sms("x", src="A", now=140.0)) == ()  # (80, 140]: 81 and 140


async def test_messages_of_one_loop_turn_are_counted_one_after_the_other(client: aioredis.Redis, prefix: str) -> None:
    shared = RedisVelocity(client, prefix, "one")
    ask = (Question("sms|src|A", (60.0,)),)
    # same time, same turn: each still counts as one event, and each sees those recorded before it
    counted = await asyncio.gather(*(shared.count(ask, 100.0) for _ in range(5)))
    assert sorted(c.counts[("sms|src|A", 60.0)] for c in counted if c is not None) == [1, 2, 3, 4, 5]


async def test_a_counter_keeps_its_largest_window_and_expires_when_idle(client: aioredis.Redis, prefix: str) -> None:
    shared = RedisVelocity(client, prefix, "one", keep=4)
    ask = (Question("sms|dst|D", (10.0, 600.0)),)
    for t in (0.0, 100.0, 650.0):
        await shared.count(ask, t)
    key = f"{prefix}:vel:sms|dst|D"
    assert await client.zrange(key, 0, -1, withscores=True) == [("one:1", 100.0), ("one:2", 650.0)]
    assert 0 < await client.pttl(key) <= 600_000
    for t in range(700, 710):
        counted = await shared.count(ask, float(t))
    assert await client.zcard(key) == 4  # at most ``keep`` events
    assert counted is not None
    assert counted.counts == {("sms|dst|D", 10.0): 4, ("sms|dst|D", 600.0): 4}


async def test_redis_away_answers_none_at_once_counts_the_error_and_logs_once(
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    c = aioredis.Redis(port=free_port(), decode_responses=True)  # nobody listens there
    clock = [0.0]
    shared = RedisVelocity(c, "t", "one", retry_after=1.0, log_every=60.0, monotonic=lambda: clock[0])
    ask = (Question("sms|src|A", (60.0,)),)
    try:
        assert await shared.count(ask, 1.0) is None
        assert shared.errors == 1
        assert await shared.count(ask, 2.0) is None  # within retry_after: Redis is not asked again
        assert shared.errors == 1
        clock[0] = 2.0
        assert await shared.count(ask, 3.0) is None
        assert shared.errors == 2
    finally:
        await shared.close()
        await c.aclose()
    said = capsys.readouterr().err + caplog.text
    assert said.count("velocity.redis_unavailable") == 1
