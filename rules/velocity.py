"""Velocity counters: how many messages or calls one source sent (or one destination received) lately.

The engine records every message of a channel under ``channel|src|number`` and ``channel|dst|number``
(only the dimensions some rule uses), then asks whether at least N were seen within the last T seconds,
counting this one. Time is the message's ``now``: an injected clock, never the wall clock, so tests and
the simulator drive it. This module holds the interface and the in-memory store; the gateway's SQLite
store (gateway/store) implements the same two methods.

A store that lives across the network (Redis, shared by several gateways) cannot answer the engine's
synchronous questions. For it the engine says beforehand which counters a message touches and which
windows its rules read (:class:`Question`, ``Engine.velocity_questions``); the caller records the message
and fetches those counts in one round trip, then evaluates with :class:`Counted`, which answers from them.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol


class VelocityStore(Protocol):
    def record(self, key: str, now: float) -> None:
        """Count one event under ``key`` at time ``now`` (epoch seconds)."""

    def at_least(self, key: str, count: int, within: float, now: float) -> bool:
        """True when ``key`` has at least ``count`` events in ``(now - within, now]``."""


class MemoryVelocity:
    """Per-key ring of the most recent event times; bounded in keys' age and in events per key.

    ``keep`` bounds the events remembered per key, and so the largest threshold that can be answered
    (rule validation caps ``count`` at 10,000). ``horizon`` is how long an idle key is remembered; keys
    older than that are swept every ``sweep_every`` records.
    """

    def __init__(self, *, keep: int = 10_000, horizon: float = 86_400.0, sweep_every: int = 4096) -> None:
        self.keep = keep
        self.horizon = horizon
        self.sweep_every = sweep_every
        self._events: dict[str, deque[float]] = {}
        self._records = 0

    def __len__(self) -> int:
        return len(self._events)

    def record(self, key: str, now: float) -> None:
        events = self._events.get(key)
        if events is None:
            events = self._events[key] = deque(maxlen=self.keep)
        events.append(now)
        self._records += 1
        if self._records % self.sweep_every == 0:
            self.sweep(now)

    def at_least(self, key: str, count: int, within: float, now: float) -> bool:
        events = self._events.get(key)
        if events is None or len(events) < count:
            return False
        # events are appended in time order; the count-th most recent one decides
        return events[-count] > now - within

    def count(self, key: str, within: float, now: float) -> int:
        events = self._events.get(key)
        if not events:
            return 0
        since = now - within
        n = 0
        for t in reversed(events):
            if t <= since:
                break
            n += 1
        return n

    def sweep(self, now: float) -> None:
        """Forget keys whose latest event is older than the horizon."""
        cutoff = now - self.horizon
        stale = [key for key, events in self._events.items() if not events or events[-1] <= cutoff]
        for key in stale:
            del self._events[key]


@dataclass(frozen=True, slots=True)
class Question:
    """One counter a message touches, and the windows (seconds) the rules ask about it."""

    key: str
    windows: tuple[float, ...]


class Counted:
    """A message's counts fetched beforehand: ``(key, window) -> events in the window, this one included``.

    Whoever fetched the counts recorded the message with them; recording here goes only to ``local``
    when one is given (the engine's own counters, so that they are up to date should the shared ones
    become unreachable). A window nobody fetched (the rules were reloaded between the question and the
    evaluation) counts nothing.
    """

    __slots__ = ("counts", "local")

    def __init__(self, counts: Mapping[tuple[str, float], int], local: VelocityStore | None = None) -> None:
        self.counts = counts
        self.local = local

    def record(self, key: str, now: float) -> None:
        if self.local is not None:
            self.local.record(key, now)

    def at_least(self, key: str, count: int, within: float, now: float) -> bool:
        return self.counts.get((key, within), 0) >= count
