"""Rate limits run on the injected clock: the tests step time by hand."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gateway.limits import KeyedBuckets, TokenBucket


def test_token_bucket_allows_the_rate_and_refuses_the_excess():
    bucket = TokenBucket(rate=10, now=0.0)
    assert sum(bucket.take(0.0) for _ in range(15)) == 10  # a burst of one second's worth
    assert not bucket.take(0.05)
    assert bucket.take(0.1)  # one token back after 1/rate seconds
    assert sum(bucket.take(1.1) for _ in range(20)) == 10


@given(rate=st.floats(0.1, 10), burst=st.integers(1, 50), extra=st.integers(1, 100))
def test_keyed_buckets_count_every_attempt_and_come_back_within_one_over_rate(rate, burst, extra):
    buckets = KeyedBuckets(rate, burst)
    # Attempts in one instant (in parallel) are counted one by one, whatever their outcome.
    assert sum(buckets.take("10.0.0.1", 0.0) for _ in range(burst + extra)) == burst
    assert buckets.take("10.0.0.2", 0.0)  # another key is not affected
    assert buckets.take("10.0.0.1", 1.0 / rate)  # the lock-out lasts no more than 1/rate seconds


def test_keyed_buckets_give_back_and_forget_the_oldest():
    buckets = KeyedBuckets(1.0, 2, max_keys=2)
    assert buckets.take("a", 0.0)
    assert buckets.take("a", 0.0)
    assert not buckets.take("a", 0.0)
    buckets.give_back("a")
    assert buckets.take("a", 0.0)
    buckets.take("b", 0.0)
    buckets.take("c", 0.0)  # "a" is forgotten: it starts full again
    assert len(buckets._buckets) == 2
    assert buckets.take("a", 0.0)
    assert buckets.take("a", 0.0)
