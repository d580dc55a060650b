"""The anti-fraud centre's desk on MQTT: it sends instructions and follows what becomes of them.

The desk publishes instructions in the form ``gateway/dissuasion/instruction.schema.json`` states
(version 1) on the instruction topic, and subscribes to the gateway's events (``afgw/v1/events/#``)
and to the errors about its instructions. From the events it keeps a view of every case, the way a
centre's console would show them: opened, each attempt, family contacts warned, robot call
outcomes, handled (how), escalated (why). Tests and the demo report read that view.

Events come with QoS 1, so one may arrive twice (the gateway re-sends what was in flight when a
connection broke): a payload already seen is not applied again.

    desk = CentreDesk("127.0.0.1", 1883)
    await desk.start()
    reference = await desk.instruct("8613800000001", "high", "冒充公检法", family=["8613800000002"])
    await desk.until(lambda view: view.case_of("8613800000001").state == "handled")
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import json
import statistics
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import aiomqtt

from gateway.tasks import cancel_and_wait

__all__ = ["CaseView", "CentreDesk", "CentreView"]

INSTRUCTION_SCHEMA = 1
#: Bounds on what the view keeps, so a long run cannot grow it without end.
MAX_EVENTS = 100_000
MAX_ERRORS = 10_000


@dataclass
class CaseView:
    """One case as the centre follows it from the gateway's events."""

    case_id: str
    subscriber: str
    state: str = "open"
    tier: str = ""
    reference: str | None = None
    opened_at: float | None = None
    attempts: int = 0
    #: (attempt number, what became of the call: placed, quiet_hours, failed), in order.
    attempt_log: list[tuple[int, str]] = field(default_factory=list)
    #: (contact, "first" or "escalation").
    family_warned: list[tuple[str, str]] = field(default_factory=list)
    #: The robot calls' outcomes (answered, confirmed, unconfirmed, no_answer, busy, ...), in order.
    robot_calls: list[str] = field(default_factory=list)
    #: Flashes the gateway reported sent for this case: the person's at each attempt, the family's.
    flashes_sent: int = 0
    handled_at: float | None = None
    handled_how: str | None = None
    #: (reason, final): high_risk (people called in at once, robot goes on), no_response, opted_out.
    escalations: list[tuple[str, bool]] = field(default_factory=list)
    unconfirmed_answers: int = 0

    @property
    def escalated(self) -> bool:
        return bool(self.escalations)


@dataclass
class CentreView:
    """Everything the desk has seen: raw event documents, errors, and the cases they describe."""

    events: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    cases: dict[str, CaseView] = field(default_factory=dict)
    duplicates: int = 0

    def named(self, name: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("event") == name]

    def case_of(self, subscriber: str) -> CaseView | None:
        """The latest case of ``subscriber``."""
        found = [c for c in self.cases.values() if c.subscriber == subscriber]
        return max(found, key=lambda c: c.opened_at or 0.0) if found else None

    def in_state(self, state: str) -> list[CaseView]:
        return [c for c in self.cases.values() if c.state == state]

    def error_for(self, reference: str) -> dict[str, Any] | None:
        return next((e for e in self.errors if e.get("reference") == reference), None)

    def summary(self) -> dict[str, int]:
        """Counts: cases opened, handled, escalated to people (also high risk, at once), errors answered."""
        return {
            "opened": len(self.cases),
            "handled": len(self.in_state("handled")),
            "escalated": sum(1 for c in self.cases.values() if c.escalated),
            "errors": len(self.errors),
        }

    def figures(self) -> dict[str, float | int]:
        """The demo report's ``dissuasion`` figures, counted from the events that arrived."""
        cases = list(self.cases.values())
        handled = [c for c in cases if c.state == "handled"]
        waits = [c.handled_at - c.opened_at for c in handled if c.handled_at is not None and c.opened_at is not None]
        return {
            "cases": len(cases),
            "handled": len(handled),
            "escalated": sum(1 for c in cases if c.escalated),
            "success_rate": round(len(handled) / len(cases), 4) if cases else 0.0,
            "flash_sent": sum(c.flashes_sent for c in cases),
            "calls_placed": sum(1 for c in cases for _, call in c.attempt_log if call == "placed"),
            "family_notified": sum(len(c.family_warned) for c in cases),
            "median_attempts": statistics.median(c.attempts for c in cases) if cases else 0,
            "median_time_to_handle_s": statistics.median(waits) if waits else 0.0,
        }

    def apply(self, doc: dict[str, Any]) -> None:
        """Fold one event document into the view of its case."""
        if len(self.events) < MAX_EVENTS:
            self.events.append(doc)
        name, fields = doc.get("event"), doc.get("fields")
        if not isinstance(name, str) or not name.startswith("case.") or not isinstance(fields, dict):
            return
        case_id = str(fields.get("case_id", ""))
        if not case_id:
            return
        case = self.cases.get(case_id)
        if case is None:
            case = self.cases[case_id] = CaseView(case_id, str(fields.get("subscriber", "")))
        if name == "case.robot_call":  # the robot's report carries only the call, not the case's state
            case.robot_calls.append(str(fields.get("outcome", "")))
            return
        if name == "case.robot_ringing":  # nor does its ringing; the outcome follows
            return
        case.tier = str(fields.get("tier", case.tier))
        case.attempts = max(case.attempts, int(fields.get("attempts", 0)))
        if name == "case.opened":
            case.opened_at = _float(doc.get("at"))
            case.reference = fields.get("reference") or case.reference
        elif name == "case.attempt":
            case.attempt_log.append((int(fields.get("attempt", 0)), str(fields.get("call", ""))))
            case.flashes_sent += bool(fields.get("flash_message_id"))
        elif name == "case.family_warned":
            case.family_warned.append((str(fields.get("contact", "")), str(fields.get("when", ""))))
            case.flashes_sent += bool(fields.get("flash_message_id"))
        elif name == "case.handled":
            case.handled_at = _float(doc.get("at"))
            case.handled_how = str(fields.get("how", ""))
        elif name == "case.escalated":
            case.escalations.append((str(fields.get("reason", "")), bool(fields.get("final", False))))
        elif name == "case.call_unconfirmed":
            case.unconfirmed_answers += 1
        # A case that ended (handled, escalated, closed) stays so: an event of the attempt that was
        # under way when the person answered can arrive after case.handled, still saying "open".
        state = str(fields.get("state", case.state))
        if case.state == "open" or (state != "open" and name != "case.updated"):
            case.state = state


def _float(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) else None


class CentreDesk:
    """An MQTT client of the centre: instructions out, events and errors in."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 1883,
        *,
        instructions_topic: str = "afgw/v1/instructions",
        errors_topic: str = "afgw/v1/instructions/errors",
        events_topic: str = "afgw/v1/events",
        client_id: str = "afc-desk",
        username: str | None = None,
        password: str | None = None,
        reference_prefix: str = "FZ",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.host, self.port = host, port
        self.instructions_topic = instructions_topic
        self.errors_topic = errors_topic
        self.events_topic = events_topic.rstrip("/")
        self.client_id = client_id
        self._username, self._password = username, password
        self.reference_prefix = reference_prefix
        self.clock = clock
        self.view = CentreView()
        self.sent: list[bytes] = []
        self._numbers = itertools.count(1)
        #: Digests of the payloads seen lately (bounded), to drop QoS 1 repeats.
        self._seen: OrderedDict[bytes, None] = OrderedDict()
        self._client: aiomqtt.Client | None = None
        self._reader: asyncio.Task[None] | None = None
        self._changed = asyncio.Condition()

    async def start(self) -> None:
        """Connect and subscribe; events published after this returns are seen."""
        client = aiomqtt.Client(
            self.host,
            self.port,
            identifier=self.client_id,
            username=self._username,
            password=self._password,
            timeout=10.0,
        )
        await client.__aenter__()
        self._client = client
        await client.subscribe(f"{self.events_topic}/#", qos=1)
        await client.subscribe(self.errors_topic, qos=1)
        self._reader = asyncio.get_running_loop().create_task(self._read(client))

    async def stop(self) -> None:
        await cancel_and_wait(self._reader)
        self._reader = None
        if self._client is not None:
            with contextlib.suppress(aiomqtt.MqttError):
                await self._client.__aexit__(None, None, None)
            self._client = None

    async def __aenter__(self) -> CentreDesk:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # --- sending ---------------------------------------------------------------------------------------

    def instruction(
        self,
        subscriber: str,
        tier: str,
        fraud_type: str,
        *,
        family: Iterable[str] = (),
        reference: str | None = None,
        expires_at: float | str | None = None,
    ) -> dict[str, Any]:
        """An instruction document (schema version 1); a fresh reference unless one is given."""
        doc: dict[str, Any] = {
            "schema": INSTRUCTION_SCHEMA,
            "reference": reference or f"{self.reference_prefix}-{next(self._numbers):06d}",
            "subscriber": subscriber,
            "tier": tier,
            "fraud_type": fraud_type,
        }
        if contacts := list(family):
            doc["family"] = contacts
        if expires_at is not None:
            doc["expires_at"] = expires_at
        return doc

    async def instruct(
        self,
        subscriber: str,
        tier: str,
        fraud_type: str,
        *,
        family: Iterable[str] = (),
        reference: str | None = None,
        expires_at: float | str | None = None,
    ) -> str:
        """Publish an instruction; returns its reference."""
        doc = self.instruction(subscriber, tier, fraud_type, family=family, reference=reference, expires_at=expires_at)
        await self.publish(json.dumps(doc, ensure_ascii=False).encode())
        return str(doc["reference"])

    async def publish(self, payload: bytes) -> None:
        """Publish ``payload`` as it is on the instruction topic (also what a faulty centre sends)."""
        if self._client is None:
            raise RuntimeError("the desk is not connected: call start() first")
        self.sent.append(payload)
        await self._client.publish(self.instructions_topic, payload, qos=1)

    # --- what comes back -------------------------------------------------------------------------------

    async def until(self, predicate: Callable[[CentreView], bool], within: float = 10.0) -> CentreView:
        """Wait until ``predicate(view)`` holds; TimeoutError after ``within`` seconds."""
        async with asyncio.timeout(within), self._changed:
            await self._changed.wait_for(lambda: predicate(self.view))
        return self.view

    async def _read(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            raw = message.payload
            payload = bytes(raw) if isinstance(raw, bytes | bytearray) else str(raw).encode()
            topic = str(message.topic)
            key = hashlib.sha256(topic.encode() + b"\x00" + payload).digest()
            if key in self._seen:
                self.view.duplicates += 1
                continue
            self._seen[key] = None
            if len(self._seen) > MAX_EVENTS:
                self._seen.popitem(last=False)
            try:
                doc = json.loads(payload)
            except ValueError:
                continue
            if not isinstance(doc, dict):
                continue
            if message.topic.matches(self.errors_topic):
                if len(self.view.errors) < MAX_ERRORS:
                    self.view.errors.append(doc)
            else:
                self.view.apply(doc)
            async with self._changed:
                self._changed.notify_all()
