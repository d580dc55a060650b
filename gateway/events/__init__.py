"""Events the gateway publishes for the anti-fraud centre: what it refused, what it vouched for.

``MemoryEvents`` keeps the latest in memory (tests, the demo), ``JsonlEvents`` appends them to a
local event log, ``MqttEvents`` publishes them to a broker; ``FanOut`` sends each to several.
"""

from __future__ import annotations

from gateway.events.memory import Event, EventSink, MemoryEvents

__all__ = ["Event", "EventSink", "MemoryEvents"]
