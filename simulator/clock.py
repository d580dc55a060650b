"""The simulation's clock: what time it is and when the people holding the handsets act.

Everything a simulated person does after a delay (picks up a ringing phone, presses a key, reads a
flash and presses OK) waits on a ``SimClock``, never on ``asyncio.sleep``: with :class:`ManualClock`
a test or the scenario runner moves time on by five minutes in one step and every action that falls
in those minutes happens, in order, at once. The clock is also a plain ``() -> float`` of epoch
seconds, so the same object is the gateway's injected wall clock and both sides agree on the time.

Protocol timers (SIP retransmissions, registration refreshes) stay on the event loop: they are the
handset's machinery, not the person's behaviour.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

__all__ = ["LoopClock", "ManualClock", "SimClock", "Timer"]


class Timer(Protocol):
    def cancel(self) -> None: ...


class SimClock(Protocol):
    def __call__(self) -> float:
        """Now, in epoch seconds."""

    def call_later(self, delay: float, callback: Callable[[], None]) -> Timer:
        """Run ``callback`` once ``delay`` seconds of this clock have passed."""


class LoopClock:
    """Real time: epoch seconds from ``now``, delays on the running event loop."""

    def __init__(self, now: Callable[[], float] = time.time) -> None:
        self._now = now

    def __call__(self) -> float:
        return self._now()

    def call_later(self, delay: float, callback: Callable[[], None]) -> Timer:
        return asyncio.get_running_loop().call_later(max(0.0, delay), callback)


@dataclass(order=True)
class _Due:
    at: float
    seq: int
    callback: Callable[[], None] = field(compare=False)
    cancelled: bool = field(default=False, compare=False)

    def cancel(self) -> None:
        self.cancelled = True


class ManualClock:
    """Time that moves only when told to (:meth:`advance`); ``now`` may also be set directly.

    A callback due now or earlier runs on the next turn of the event loop, as ``call_later(0)`` would;
    the rest wait until :meth:`advance` passes their time. Callbacks run in time order (ties in the
    order they were scheduled), each seeing ``now`` set to its own due time.
    """

    def __init__(self, now: float) -> None:
        self.now = now
        self._queue: list[_Due] = []
        self._seq = itertools.count()

    def __call__(self) -> float:
        return self.now

    def call_later(self, delay: float, callback: Callable[[], None]) -> Timer:
        due = _Due(self.now + max(0.0, delay), next(self._seq), callback)
        if delay <= 0:
            asyncio.get_running_loop().call_soon(self._fire, due)
        else:
            heapq.heappush(self._queue, due)
        return due

    @property
    def pending(self) -> int:
        """Callbacks still waiting for their time."""
        return sum(1 for due in self._queue if not due.cancelled)

    def advance(self, seconds: float) -> None:
        """Move time on by ``seconds``, running every callback that falls due on the way."""
        self.advance_to(self.now + seconds)

    def advance_to(self, when: float) -> None:
        while self._queue and self._queue[0].at <= when:
            due = heapq.heappop(self._queue)
            self.now = max(self.now, due.at)
            self._fire(due)
        self.now = max(self.now, when)

    @staticmethod
    def _fire(due: _Due) -> None:
        if not due.cancelled:
            due.cancelled = True
            due.callback()
