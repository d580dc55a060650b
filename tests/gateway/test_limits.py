"""Rate limits run on the injected clock: the tests step time by hand."""

from __future__ import annotations

from gateway.limits import FailureBackoff, TokenBucket


def test_token_bucket_allows_the_rate_and_refuses_the_excess():
    bucket = TokenBucket(rate=10, now=0.0)
    assert sum(bucket.take(0.0) for _ in range(15)) == 10  # a burst of one second's worth
    assert not bucket.take(0.05)
    assert bucket.take(0.1)  # one token back after 1/rate seconds
    assert sum(bucket.take(1.1) for _ in range(20)) == 10


def test_failed_logins_slow_down_one_source_only():
    backoff = FailureBackoff(free=2, base=0.5, cap=4.0)
    for _ in range(2):
        backoff.failed("10.0.0.1", 0.0)
    assert backoff.delay("10.0.0.1", 0.0) == 0.5
    backoff.failed("10.0.0.1", 0.0)
    assert backoff.delay("10.0.0.1", 0.0) == 1.0
    for _ in range(10):
        backoff.failed("10.0.0.1", 0.0)
    assert backoff.delay("10.0.0.1", 0.0) == 4.0  # capped
    assert backoff.delay("10.0.0.2", 0.0) == 0.0


def test_success_or_quiet_clears_the_record():
    backoff = FailureBackoff(free=0, base=1.0, forget_after=60.0)
    backoff.failed("a", 0.0)
    assert backoff.delay("a", 1.0) == 1.0
    backoff.succeeded("a")
    assert backoff.delay("a", 1.0) == 0.0
    backoff.failed("b", 0.0)
    assert backoff.delay("b", 61.0) == 0.0


def test_tracked_sources_are_bounded():
    backoff = FailureBackoff(free=0, max_sources=100)
    for i in range(1000):
        backoff.failed(f"10.0.{i // 256}.{i % 256}", 0.0)
    assert len(backoff._failures) == 100
