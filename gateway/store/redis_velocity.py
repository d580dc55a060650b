"""Rule velocity counters in Redis, so that every gateway instance (and worker) on it counts together.

The rule engine is synchronous and asks its counters while it evaluates; Redis answers over the network.
So the question comes first: the engine says which counters a message touches and which windows its
rules read (``Engine.velocity_questions``), this module records the message and fetches those counts,
and the engine then evaluates with them (``rules.velocity.Counted``). Every message of one event-loop
turn goes to Redis in one script call (``TurnBatcher``): one round trip per turn, not per counter.

Each counter is a sorted set ``<prefix>:vel:<channel>|<by>|<number>`` of events scored by their time.
One script records and counts all the messages of a batch, one after the other, so it is exact across
instances: of N messages sent through several gateways within a window, the last one recorded counts N,
whichever gateway took it. An event whose time is later than the message's own (another instance's
clock, a little ahead) counts too. Memory is bounded: each record drops the events older than the
counter's largest window, keeps at most ``keep`` events (rule validation caps a threshold at 10,000),
and the key expires once idle for that window. Times are the callers' clocks, as everywhere in the
store; the key's expiry is Redis's, which only has to forget keys nobody counts any more.

Redis away (refused, timed out, any error): the message is not held. A round trip gives up after
``timeout``; ``count`` answers None and the caller counts in its own memory, as a lone instance does,
for ``retry_after`` seconds before Redis is asked again. Every failed round trip is counted in
``errors`` (``afgw_store_errors_total{operation="velocity"}``) and a warning is logged at most once per
``log_every`` seconds.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import time
from collections.abc import Callable, Sequence

import redis.asyncio as aioredis

from gateway.logs import get_logger
from gateway.store.batch import TurnBatcher
from rules.velocity import Counted, Question

log = get_logger("afgw.store")

#: ARGV: prefix, keep, then the batch as JSON: for each message [time, member, counter...], each counter
#: [key, the score at or below which events are dropped, time to live in ms, the exclusive lower bound of
#: each window...]. Times and bounds are strings, exact (Lua would print a number with 14 digits only).
#: Answers one count per window, in order. One JSON argument costs the client far less than one
#: argument per value, which it would encode one by one.
_RECORD_AND_COUNT = """
local p, keep = ARGV[1], tonumber(ARGV[2])
local out = {}
for _, m in ipairs(cjson.decode(ARGV[3])) do
  local now, member = m[1], m[2]
  for i = 3, #m do
    local c = m[i]
    local key = p .. c[1]
    redis.call('ZADD', key, now, member)
    redis.call('ZREMRANGEBYSCORE', key, '-inf', c[2])
    redis.call('ZREMRANGEBYRANK', key, 0, -(keep + 1))
    redis.call('PEXPIRE', key, c[3])
    for j = 4, #c do
      table.insert(out, redis.call('ZCOUNT', key, c[j], '+inf'))
    end
  end
end
return out
"""

Batch = tuple[float, Sequence[Question]]


class RedisVelocity:
    """Records messages in shared counters and fetches the counts their rules read."""

    def __init__(
        self,
        client: aioredis.Redis,
        prefix: str,
        instance: str,
        *,
        keep: int = 10_000,
        timeout: float = 0.5,
        retry_after: float = 1.0,
        log_every: float = 60.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.redis = client
        self.p = prefix + ":vel:"
        self.instance = instance
        self.keep = keep
        self.timeout = timeout
        self.retry_after = retry_after
        self.log_every = log_every
        self.monotonic = monotonic
        #: Round trips that failed: the messages they carried were counted in memory only.
        self.errors = 0
        self._script = client.register_script(_RECORD_AND_COUNT)
        self._batches: TurnBatcher[Batch, list[int]] = TurnBatcher(self._record_and_count)
        self._serial = itertools.count()
        self._away_until = -math.inf
        self._logged_at = -math.inf

    async def count(self, questions: Sequence[Question], now: float) -> Counted | None:
        """Record one message at ``now`` and answer its counts; None when Redis did not answer."""
        if self.monotonic() < self._away_until:
            return None
        try:
            found = await self._batches.submit((now, questions))
        except Exception as exc:  # whatever went wrong (network, timeout, an odd answer), the message goes on
            self._failed(exc)
            return None
        counts: dict[tuple[str, float], int] = {}
        answers = iter(found)
        for q in questions:
            for window in q.windows:
                counts[q.key, window] = next(answers)
        return Counted(counts)

    async def _record_and_count(self, batch: list[Batch]) -> list[list[int] | Exception]:
        messages: list[list[object]] = []
        sizes: list[int] = []
        for now, questions in batch:
            # Members must differ for every event, or two at the same time would count once.
            message: list[object] = [repr(now), f"{self.instance}:{next(self._serial)}"]
            for q in questions:
                horizon = max(q.windows)
                ttl = max(1, math.ceil(horizon * 1000))
                message.append([q.key, repr(now - horizon), ttl, *("(" + repr(now - w) for w in q.windows)])
            messages.append(message)
            sizes.append(sum(len(q.windows) for q in questions))
        try:
            # One timer for the whole batch: its messages wait together, so they give up together.
            async with asyncio.timeout(self.timeout):
                flat = await self._script(args=[self.p, self.keep, json.dumps(messages, separators=(",", ":"))])
        except Exception:
            self.errors += 1
            raise
        answers: list[list[int] | Exception] = []
        start = 0
        for size in sizes:
            answers.append([int(n) for n in flat[start : start + size]])
            start += size
        return answers

    def _failed(self, exc: BaseException) -> None:
        now = self.monotonic()
        self._away_until = now + self.retry_after
        if now - self._logged_at >= self.log_every:
            self._logged_at = now
            log.warning(
                "velocity.redis_unavailable",
                error=str(exc) or type(exc).__name__,
                errors=self.errors,
                detail="velocity counted in this process only until Redis answers",
            )

    async def close(self) -> None:
        await self._batches.close()
