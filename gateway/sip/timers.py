"""One loop timer for many deadlines: a heap of (when, callback), armed with a single ``loop.call_at``.

Thousands of transactions each have a deadline; a heap costs a push per re-arm and nothing to
cancel. Callbacks are allowed to fire early or for a deadline that has since moved (a sans-IO
``handle_timer(now)`` acts only on what is due), so stale entries need no bookkeeping: they fire
once as no-ops and are gone.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Callable

from gateway.logs import get_logger

log = get_logger("afgw.sip.timers")


class TimerQueue:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._heap: list[tuple[float, int, Callable[[float], None]]] = []
        self._seq = itertools.count()
        self._handle: asyncio.TimerHandle | None = None
        self._handle_at: float | None = None

    def __len__(self) -> int:
        return len(self._heap)

    def schedule(self, when: float, callback: Callable[[float], None]) -> None:
        heapq.heappush(self._heap, (when, next(self._seq), callback))
        if self._handle_at is None or when < self._handle_at:
            self._arm(when)

    def _arm(self, when: float) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self._handle_at = when
        self._handle = self.loop.call_at(when, self._fire)

    def _fire(self) -> None:
        self._handle = None
        self._handle_at = None
        now = self.loop.time()
        heap = self._heap
        while heap and heap[0][0] <= now:
            _, _, callback = heapq.heappop(heap)
            try:
                callback(now)
            except Exception:  # one broken transaction must not stop every other timer
                log.exception("sip.timer_failed")
        if heap:
            self._arm(heap[0][0])

    def close(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self._handle = None
        self._heap.clear()
