"""Several sinks behind one: every event goes to each, and one failing sink does not starve the rest."""

from __future__ import annotations

from typing import Any

from gateway.events.memory import Event, EventSink
from gateway.logs import get_logger

log = get_logger("afgw.events")


class FanOut:
    def __init__(self, *sinks: EventSink) -> None:
        self.sinks = sinks

    def emit(self, name: str, /, **fields: Any) -> None:
        for sink in self.sinks:
            try:
                sink.emit(name, **fields)
            except Exception as exc:
                log.error("events.sink_failed", sink=type(sink).__name__, event_name=name, error=str(exc))

    def named(self, name: str) -> list[Event]:
        """The recent events called ``name``, from the sinks that keep them in memory."""
        found: list[Event] = []
        for sink in self.sinks:
            if (named := getattr(sink, "named", None)) is not None:
                found += named(name)
        return found
