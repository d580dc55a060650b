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

Redis away (refused, timed out, any error): the message is not held. ``count`` answers None, the
caller counts in its own memory for a while as a lone instance does (``retry_after``, then Redis is
asked again), every failed round trip is counted in ``errors`` (``afgw_store_errors_total
{operation="velocity"}``) and a warning is logged at most once per ``log_every`` seconds.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import time
from collections.abc import Callable, Sequence

import redis.asyncio as aioredis

from gateway.logs import get_logger
from gateway.store.batch import TurnBatcher
from rules.velocity import Counted, Question

log = get_logger("afgw.store")

#: ARGV: prefix, keep, then for each message: its time, its member, how many counters; for each counter:
#: its key, the score at or below which events are dropped, the key's time to live (ms), how many windows,
#: then the exclusive lower bound of each window. Answers one count per window, in order.
_RECORD_AND_COUNT = """
local p, keep = ARGV[1], tonumber(ARGV[2])
local out = {}
local k = 3
while k <= #ARGV do
  local now, member, counters = ARGV[k], ARGV[k + 1], tonumber(ARGV[k + 2])
  k = k + 3
  for _ = 1, counters do
    local key, oldest, ttl, windows = p .. ARGV[k], ARGV[k + 1], ARGV[k + 2], tonumber(ARGV[k + 3])
    k = k + 4
    redis.call('ZADD', key, now, member)
    redis.call('ZREMRANGEBYSCORE', key, '-inf', oldest)
    redis.call('ZREMRANGEBYRANK', key, 0, -(keep + 1))
    redis.call('PEXPIRE', key, ttl)
    for _ = 1, windows do
      table.insert(out, redis.call('ZCOUNT', key, ARGV[k], '+inf'))
      k = k + 1
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
            async with asyncio.timeout(self.timeout):
                found = await self._batches.submit((now, questions))
        except (aioredis.RedisError, OSError, TimeoutError) as exc:
            self._failed(exc)
            return None
        counts: dict[tuple[str, float], int] = {}
        answers = iter(found)
        for q in questions:
            for window in q.windows:
                counts[q.key, window] = next(answers)
        return Counted(counts)

    async def _record_and_count(self, batch: list[Batch]) -> list[list[int] | Exception]:
        args: list[str | int] = [self.p, self.keep]
        sizes: list[int] = []
        for now, questions in batch:
            # Members must differ for every event, or two at the same time would count once.
            args += [repr(now), f"{self.instance}:{next(self._serial)}", len(questions)]
            for q in questions:
                horizon = max(q.windows)
                args += [q.key, repr(now - horizon), max(1, math.ceil(horizon * 1000)), len(q.windows)]
                args += ["(" + repr(now - window) for window in q.windows]
            sizes.append(sum(len(q.windows) for q in questions))
        flat = [int(n) for n in await self._script(args=args)]
        answers: list[list[int] | Exception] = []
        start = 0
        for size in sizes:
            answers.append(flat[start : start + size])
            start += size
        return answers

    def _failed(self, exc: BaseException) -> None:
        self.errors += 1
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
