"""The replay cache: one token, one call, for as long as the token is fresh; bounded memory."""

from __future__ import annotations

import pytest

from protocols.stir import ReplayCache

KEY = ReplayCache.key(b"header.claims")


def test_same_call_passes_other_call_is_a_replay() -> None:
    cache = ReplayCache()
    assert cache.check_and_record(KEY, "a", expires=160, now=100)
    assert cache.check_and_record(KEY, "a", expires=160, now=101)  # retransmission or spiral
    assert not cache.check_and_record(KEY, "b", expires=160, now=102)
    assert len(cache) == 1


def test_entries_expire_with_the_injected_clock() -> None:
    cache = ReplayCache()
    cache.record(KEY, "a", expires=160, now=100)
    assert cache.seen_elsewhere(KEY, "b", now=159.9)
    assert not cache.seen_elsewhere(KEY, "b", now=160)
    assert len(cache) == 0


def test_memory_is_bounded_and_the_soonest_to_expire_goes_first() -> None:
    cache = ReplayCache(max_entries=3)
    for i, expires in enumerate([500, 200, 400, 300]):
        cache.record(ReplayCache.key(b"%d" % i), f"call-{i}", expires=expires, now=100)
    assert len(cache) == 3
    assert cache.evicted_live == 1
    assert not cache.seen_elsewhere(ReplayCache.key(b"1"), "other", now=100)  # expiring at 200: dropped
    assert all(cache.seen_elsewhere(ReplayCache.key(b"%d" % i), "other", now=100) for i in (0, 2, 3))


def test_expired_entries_make_room_without_counting_as_evictions() -> None:
    cache = ReplayCache(max_entries=2)
    cache.record(ReplayCache.key(b"1"), "a", expires=110, now=100)
    cache.record(ReplayCache.key(b"2"), "b", expires=120, now=100)
    cache.record(ReplayCache.key(b"3"), "c", expires=200, now=115)
    assert cache.evicted_live == 0
    assert len(cache) == 2


def test_the_first_call_keeps_the_token() -> None:
    cache = ReplayCache()
    cache.record(KEY, "a", expires=160, now=100)
    cache.record(KEY, "b", expires=160, now=100)
    assert cache.seen_elsewhere(KEY, "b", now=101)


def test_size_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        ReplayCache(max_entries=0)
