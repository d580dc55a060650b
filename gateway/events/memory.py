"""Events the gateway publishes for the anti-fraud centre: what it refused, what it vouched for.

An event is a name (``call.label_rejected``, ``call.label_verified`` ...) and a few flat fields
(call-id, status code, caller and callee numbers). Every event is also written as a structured log
line under its own name, so that an operator without a broker still sees them. The MQTT publisher
comes later and implements the same ``EventSink``; until then ``MemoryEvents`` keeps the most recent
events in memory (tests and the demo read them from there).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from gateway.logs import get_logger

__all__ = ["Event", "EventSink", "MemoryEvents"]

log = get_logger("afgw.events")


@dataclass(frozen=True, slots=True)
class Event:
    name: str
    at: float  # wall-clock epoch seconds
    fields: Mapping[str, Any] = field(default_factory=dict)


class EventSink(Protocol):
    def emit(self, name: str, /, **fields: Any) -> None: ...


class MemoryEvents:
    """Logs every event and keeps the last ``max_events`` of them, oldest first out."""

    def __init__(self, *, max_events: int = 10_000, clock: Callable[[], float] = time.time) -> None:
        self.events: deque[Event] = deque(maxlen=max_events)
        self._clock = clock

    def emit(self, name: str, /, **fields: Any) -> None:
        self.events.append(Event(name, self._clock(), fields))
        log.info(name, **fields)

    def named(self, name: str) -> list[Event]:
        return [event for event in self.events if event.name == name]
