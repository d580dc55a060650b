"""Rate limits driven by an injected clock: a token bucket per account, a back-off per failing source."""

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

    def take(self, now: float) -> bool:
        tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now
        if tokens >= 1.0:
            self._tokens = tokens - 1.0
            return True
        self._tokens = tokens
        return False


class FailureBackoff:
    """Slows down a source after failed logins: each failure doubles the delay before the next answer.

    The delay starts at ``base`` seconds after ``free`` failures and is capped at ``cap``; a success or
    ``forget_after`` seconds of quiet clear the record. At most ``max_sources`` are tracked (oldest
    forgotten first), so a scan from many addresses cannot grow memory without bound.
    """

    def __init__(
        self,
        *,
        free: int = 2,
        base: float = 0.5,
        cap: float = 30.0,
        forget_after: float = 900.0,
        max_sources: int = 65536,
    ) -> None:
        self.free, self.base, self.cap = free, base, cap
        self.forget_after = forget_after
        self.max_sources = max_sources
        self._failures: OrderedDict[str, tuple[int, float]] = OrderedDict()

    def delay(self, source: str, now: float) -> float:
        """Seconds to hold back the answer to ``source``'s next login attempt."""
        count, last = self._failures.get(source, (0, now))
        if now - last > self.forget_after:
            self._failures.pop(source, None)
            return 0.0
        if count == 0 or count < self.free:
            return 0.0
        return float(min(self.cap, self.base * (2 ** (count - max(self.free, 1)))))

    def failed(self, source: str, now: float) -> None:
        count, last = self._failures.pop(source, (0, now))
        if now - last > self.forget_after:
            count = 0
        self._failures[source] = (count + 1, now)
        while len(self._failures) > self.max_sources:
            self._failures.popitem(last=False)

    def succeeded(self, source: str) -> None:
        self._failures.pop(source, None)
