"""The in-memory velocity store, driven by explicit times (no wall clock anywhere)."""

from __future__ import annotations

from rules.velocity import MemoryVelocity, VelocityStore


def test_at_least_counts_events_in_the_window() -> None:
    store = MemoryVelocity()
    for t in (0.0, 10.0, 20.0, 30.0):
        store.record("k", t)
    assert store.at_least("k", 4, 60, 30.0)
    assert not store.at_least("k", 5, 60, 30.0)
    assert store.at_least("k", 3, 20.5, 30.0)  # 10, 20, 30 are within (9.5, 30]
    assert not store.at_least("k", 3, 20.0, 30.0)  # (10, 30] holds 20 and 30 only
    assert store.count("k", 20.0, 30.0) == 2
    assert store.count("k", 1000, 30.0) == 4
    assert not store.at_least("other", 1, 60, 30.0)
    assert store.count("other", 60, 30.0) == 0


def test_keep_bounds_the_events_per_key() -> None:
    store = MemoryVelocity(keep=3)
    for t in range(10):
        store.record("k", float(t))
    assert store.count("k", 100, 9.0) == 3
    assert store.at_least("k", 3, 100, 9.0)
    assert not store.at_least("k", 4, 100, 9.0)


def test_idle_keys_are_swept_after_the_horizon() -> None:
    store = MemoryVelocity(horizon=60, sweep_every=2)
    store.record("old", 0.0)
    store.record("new", 100.0)  # the second record sweeps: "old" is 100 s stale
    assert len(store) == 1
    assert store.count("new", 60, 100.0) == 1


def test_memory_store_satisfies_the_protocol() -> None:
    store: VelocityStore = MemoryVelocity()
    store.record("k", 1.0)
    assert store.at_least("k", 1, 1.0, 1.0)
