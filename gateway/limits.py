"""Rate limits driven by an injected clock: a token bucket per account, a bucket per key for login attempts."""

from __future__ import annotations

from collections import OrderedDict


class TokenBucket:
    """Allows ``rate`` events per second on average, with bursts up to ``burst``."""

    __slots__ = ("_stamp", "_tokens", "burst", "rate")

    def __init__(self, rate: float, burst: float | None = None, *, now: float = 0.0) -> None:
        self.rate = rate
        self.burst = max(1.0, burst if burst is not None else rate)
        self._tokens = self.burst
        self._stamp = now

    def give_back(self) -> None:
        self._tokens = min(self.burst, self._tokens + 1.0)

    def take(self, now: float) -> bool:
        tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now
        if tokens >= 1.0 - 1e-9:  # (1 / rate) * rate may round to just under one token
            self._tokens = max(0.0, tokens - 1.0)
            return True
        self._tokens = tokens
        return False


class KeyedBuckets:
    """A token bucket per key (a source address, a system_id), created full on first use.

    At most ``max_keys`` are kept, the least recently used forgotten first, so that a scan from many
    addresses or under many names cannot grow memory without bound.
    """

    def __init__(self, rate: float, burst: float, *, max_keys: int = 65536) -> None:
        self.rate, self.burst, self.max_keys = rate, burst, max_keys
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    def take(self, key: str, now: float) -> bool:
        bucket = self._buckets.pop(key, None)
        if bucket is None:
            bucket = TokenBucket(self.rate, self.burst, now=now)
        self._buckets[key] = bucket
        while len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
        return bucket.take(now)

    def give_back(self, key: str) -> None:
        """Return the token ``take`` spent, for an attempt that turned out not to count."""
        bucket = self._buckets.get(key)
        if bucket is not None:
            bucket.give_back()
