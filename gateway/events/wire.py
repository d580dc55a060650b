"""The serialised form of an event, the same in the local log and on MQTT."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

#: Bumped when a field changes meaning or disappears; adding a field keeps the version.
SCHEMA_VERSION = 1


def event_json(name: str, at: float, fields: Mapping[str, Any], instance: str = "") -> str:
    doc: dict[str, Any] = {"schema": SCHEMA_VERSION, "event": name, "at": at, "fields": dict(fields)}
    if instance:
        doc["instance"] = instance
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":"), default=str)
