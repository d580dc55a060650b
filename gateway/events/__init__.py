"""Events the gateway publishes for the anti-fraud centre: what it refused, what it vouched for.

``MemoryEvents`` keeps the latest in memory (tests, the demo), ``JsonlEvents`` appends them to a
local event log, ``MqttEvents`` publishes them to a broker; ``FanOut`` sends each to several.
"""

from __future__ import annotations

from gateway.events.fanout import FanOut
from gateway.events.jsonl import JsonlEvents
from gateway.events.memory import Event, EventSink, MemoryEvents
from gateway.events.wire import SCHEMA_VERSION, event_json

__all__ = ["SCHEMA_VERSION", "Event", "EventSink", "FanOut", "JsonlEvents", "MemoryEvents", "event_json"]
