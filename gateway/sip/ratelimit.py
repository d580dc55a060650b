"""Per-source request limits: a token bucket per IP address, in a table of bounded size.

Up to ``rate`` requests per second (bursts to ``burst``) are served; past that, up to ``hard_limit``
per second in all are answered 503 with Retry-After; anything beyond is dropped without an answer,
because answering a flood only amplifies it. The table keeps at most ``max_sources`` addresses, the
least recently seen forgotten first, so a scan from a whole network cannot grow memory.
"""

from __future__ import annotations

import enum
from collections import OrderedDict

from gateway.limits import TokenBucket


class Verdict(enum.Enum):
    ALLOW = "allow"
    THROTTLE = "throttle"  # answer 503 + Retry-After
    DROP = "drop"


class SourceLimiter:
    def __init__(self, *, rate: float, burst: float, hard_limit: float, max_sources: int) -> None:
        self.rate = rate
        self.burst = burst
        self.hard_limit = hard_limit
        self.max_sources = max_sources
        self._buckets: OrderedDict[str, tuple[TokenBucket, TokenBucket]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def check(self, source: str, now: float) -> Verdict:
        pair = self._buckets.get(source)
        if pair is None:
            served = TokenBucket(self.rate, self.burst, now=now)
            answered = TokenBucket(max(1.0, self.hard_limit - self.rate), now=now)
            pair = self._buckets[source] = (served, answered)
            while len(self._buckets) > self.max_sources:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(source)
        served, answered = pair
        if served.take(now):
            return Verdict.ALLOW
        if answered.take(now):
            return Verdict.THROTTLE
        return Verdict.DROP
