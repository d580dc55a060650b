"""Instructions from the anti-fraud centre over MQTT: who is at risk, how much, and from what.

The centre publishes one JSON object per instruction on ``afgw/v1/instructions`` (``events.mqtt.
instructions_topic``), in the versioned form that ``SCHEMA`` states and ``instruction.schema.json``
(next to this file) publishes for the centre's developers::

    {"schema": 1, "reference": "FZ-2026-0001", "subscriber": "8613800000001", "tier": "high",
     "fraud_type": "冒充公检法", "family": ["8613800000002"], "expires_at": "2026-12-07T00:00:00Z"}

``family`` and ``expires_at`` (epoch seconds, or ISO 8601 with a time zone) may be left out. A valid
instruction becomes one :class:`Trigger` (source ``centre``). Anything else is answered on
``afgw/v1/instructions/errors`` with one JSON object naming the fault (``error``: a code,
``message``: for people, ``field`` and ``reference`` when they could be read) and is otherwise
ignored: no payload, however broken, stops the intake or the gateway.

The same reference twice is one instruction, also after a restart and across the gateways that
share one store: references are kept in the store (``references``, a :class:`ReferenceBook`; the
gateway passes its store) for ``retention`` seconds (7 days by default) after the instruction was
acted on. Before acting, the intake claims the reference in the store, atomically: of two gateways
that receive the same instruction at once (each subscribed to the topic), or of a gateway and the
broker's redelivery, exactly one hands it to the engine. A claim is held ``claim_hold`` seconds
until the trigger is done; an instruction that could not be acted on is released at once (the
centre may send it again), and one whose gateway died in between is new again once the hold lapses.
Past the retention a repeat reaches the engine again, which is still harmless: a trigger for a
subscriber with an open case only updates that case and never starts a second loop
(``TriggerSink``'s promise).

The intake subscribes with QoS 1 and a persistent session (clean_session false), so instructions the
broker received while the gateway was away are delivered when it is back; it reconnects with
exponential backoff between ``backoff_initial`` and ``backoff_max`` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import aiomqtt

from gateway.dissuasion.triggers import Trigger, TriggerSink
from gateway.events.memory import EventSink
from gateway.logs import get_logger
from gateway.store.memory import MemoryReferences
from gateway.tasks import cancel_and_wait

log = get_logger("afgw.dissuasion")

SCHEMA_VERSION = 1
TIERS = ("low", "medium", "high")
MAX_PAYLOAD = 4096
MAX_FAMILY = 5
#: How long a repeat of an instruction that was acted on is ignored: a week.
RETENTION = 7 * 86_400.0
#: How long a reference is held while its instruction is being acted on (seconds, far more than it takes).
CLAIM_HOLD = 60.0
NUMBER = r"^\+?[0-9]{3,20}$"
REFERENCE = r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$"
FRAUD_TYPE = r"^[^\x00-\x1f\x7f]{1,64}$"
ISO_8601 = (
    r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])[T ]([01][0-9]|2[0-3]):[0-5][0-9]"
    r"(:[0-5][0-9](\.[0-9]+)?)?(Z|[+-]([01][0-9]|2[0-3]):?[0-5][0-9])$"
)

#: The one statement of the form: the parser below checks exactly this, and the committed
#: instruction.schema.json is this object written out (a test holds the two together).
SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://afgw.invalid/schema/instruction/v1.json",
    "title": "afgw anti-fraud centre instruction, version 1",
    "type": "object",
    "additionalProperties": False,
    "required": ["schema", "reference", "subscriber", "tier", "fraud_type"],
    "properties": {
        "schema": {"const": SCHEMA_VERSION, "description": "version of this form"},
        "reference": {"type": "string", "pattern": REFERENCE, "description": "the centre's id; repeats are one"},
        "subscriber": {"type": "string", "pattern": NUMBER, "description": "the person at risk"},
        "tier": {"enum": list(TIERS)},
        "fraud_type": {"type": "string", "pattern": FRAUD_TYPE, "description": "e.g. 冒充公检法"},
        "family": {
            "type": "array",
            "maxItems": MAX_FAMILY,
            "items": {"type": "string", "pattern": NUMBER},
            "description": "family contacts (亲情号) to warn as well",
        },
        "expires_at": {
            "oneOf": [
                {"type": "number", "minimum": 0},
                {"type": "string", "pattern": ISO_8601},
            ],
            "description": (
                "epoch seconds or ISO 8601 with a time zone (a real calendar date); after it the instruction is void"
            ),
        },
    },
}


class InstructionError(ValueError):
    """An instruction that cannot be followed: ``code`` for machines, the message for people."""

    def __init__(self, code: str, message: str, *, field: str = "", reference: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.field = field
        self.reference = reference

    def to_json(self, at: float) -> str:
        doc = {
            "schema": SCHEMA_VERSION,
            "error": self.code,
            "message": str(self),
            "field": self.field or None,
            "reference": self.reference,
            "at": at,
        }
        return json.dumps(doc, ensure_ascii=False, separators=(",", ":"))


def _reject_constant(name: str) -> None:
    raise InstructionError("bad_number", f"{name} is not a number JSON allows")


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    for key, value in pairs:
        if key in doc:
            raise InstructionError("bad_json", f"field {key!r} is given twice", field=key)
        doc[key] = value
    return doc


def parse_instruction(payload: bytes, now: float, *, max_bytes: int = MAX_PAYLOAD) -> Trigger:
    """The trigger an instruction asks for; InstructionError naming the first fault otherwise."""
    if len(payload) > max_bytes:
        raise InstructionError("too_large", f"payload of {len(payload)} bytes is over the limit of {max_bytes}")
    try:
        doc = json.loads(payload.decode("utf-8"), object_pairs_hook=_no_duplicate_keys, parse_constant=_reject_constant)
    except UnicodeDecodeError:
        raise InstructionError("bad_json", "payload is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise InstructionError("bad_json", f"not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    if not isinstance(doc, dict):
        raise InstructionError("not_object", "an instruction is a JSON object")
    raw_ref = doc.get("reference")
    reference = raw_ref if isinstance(raw_ref, str) and re.fullmatch(REFERENCE, raw_ref) else None
    try:
        return _check(doc, now, reference)
    except InstructionError as exc:
        exc.reference = reference
        raise


def _check(doc: dict[str, Any], now: float, reference: str | None) -> Trigger:
    props: dict[str, Any] = SCHEMA["properties"]
    # The version first: a newer form may legitimately carry fields this one does not know.
    if "schema" not in doc:
        raise InstructionError("missing_field", "missing field 'schema'", field="schema")
    version = doc["schema"]
    if version != SCHEMA_VERSION or isinstance(version, bool):
        raise InstructionError(
            "unknown_schema", f"schema version {version!r} is not supported (this gateway reads {SCHEMA_VERSION})"
        )
    for key in doc:
        if key not in props:
            raise InstructionError("unknown_field", f"unknown field {key!r}", field=key)
    for key in SCHEMA["required"]:
        if key not in doc:
            raise InstructionError("missing_field", f"missing field {key!r}", field=key)
    _string(doc, "reference", REFERENCE, "bad_value", "a reference id (letters, digits, . _ : / -, up to 128)")
    subscriber = _string(doc, "subscriber", NUMBER, "bad_number", "a phone number (digits, optional +)")
    tier = doc["tier"]
    if not isinstance(tier, str):
        raise InstructionError("wrong_type", f"tier: expected a string, got {_kind(tier)}", field="tier")
    if tier not in TIERS:
        raise InstructionError("unknown_tier", f"tier: {tier!r} is not one of {', '.join(TIERS)}", field="tier")
    fraud_type = _string(doc, "fraud_type", FRAUD_TYPE, "bad_value", "a fraud type name (1 to 64 characters)")
    family: list[str] = []
    if "family" in doc:
        items = doc["family"]
        if not isinstance(items, list):
            raise InstructionError("wrong_type", f"family: expected a list, got {_kind(items)}", field="family")
        if len(items) > MAX_FAMILY:
            raise InstructionError("bad_value", f"family: at most {MAX_FAMILY} contacts", field="family")
        for item in items:
            if not isinstance(item, str):
                raise InstructionError("wrong_type", f"family: expected strings, got {_kind(item)}", field="family")
            if not re.fullmatch(NUMBER, item):
                raise InstructionError("bad_number", f"family: {item!r} is not a phone number", field="family")
            family.append(item)
    expires_at = _expiry(doc["expires_at"]) if "expires_at" in doc else None
    if expires_at is not None and expires_at <= now:
        raise InstructionError("expired", f"expired at {expires_at:.0f}, before it arrived", field="expires_at")
    return Trigger(
        subscriber=subscriber,
        tier=tier,
        fraud_type=fraud_type,
        source="centre",
        reference=doc["reference"],
        family=tuple(dict.fromkeys(family)),
        expires_at=expires_at,
        detail=f"centre instruction {doc['reference']}",
    )


def _string(doc: dict[str, Any], key: str, pattern: str, code: str, what: str) -> str:
    value = doc[key]
    if not isinstance(value, str):
        raise InstructionError("wrong_type", f"{key}: expected a string, got {_kind(value)}", field=key)
    if not re.fullmatch(pattern, value):
        raise InstructionError(code, f"{key}: {value!r} is not {what}", field=key)
    return value


def _expiry(value: Any) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        if not math.isfinite(value) or value < 0:
            raise InstructionError("bad_number", f"expires_at: {value!r} is not epoch seconds", field="expires_at")
        return float(value)
    if isinstance(value, str):
        if re.fullmatch(ISO_8601, value):
            with contextlib.suppress(ValueError):
                return datetime.fromisoformat(value).timestamp()
        raise InstructionError(
            "bad_value", f"expires_at: {value!r} is not ISO 8601 with a time zone", field="expires_at"
        )
    raise InstructionError(
        "wrong_type", f"expires_at: expected a number or a string, got {_kind(value)}", field="expires_at"
    )


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "a list", dict: "an object"}[
        type(value)
    ]


class ReferenceBook(Protocol):
    """Where references are held (the store's part of that name): see ``StateStore.claim_reference``."""

    async def claim_reference(self, reference: str, now: float, until: float) -> bool: ...
    async def hold_reference(self, reference: str, now: float, until: float) -> None: ...
    async def drop_reference(self, reference: str) -> None: ...


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one payload led to: a trigger handed on, a duplicate ignored, or an error answered."""

    trigger: Trigger | None = None
    duplicate: bool = False
    error: InstructionError | None = None


class InstructionIntake:
    """Subscribes to the instruction topic and hands each valid, new instruction to ``sink``."""

    def __init__(
        self,
        sink: TriggerSink,
        host: str = "127.0.0.1",
        port: int = 1883,
        *,
        topic: str = "afgw/v1/instructions",
        error_topic: str = "afgw/v1/instructions/errors",
        client_id: str = "afgw",
        username: str | None = None,
        password: str | None = None,
        max_bytes: int = MAX_PAYLOAD,
        references: ReferenceBook | None = None,
        remember: int = 100_000,
        retention: float = RETENTION,
        claim_hold: float = CLAIM_HOLD,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
        events: EventSink | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.sink = sink
        self.host, self.port = host, port
        self.topic, self.error_topic = topic, error_topic
        # Its own MQTT session, apart from the event publisher's: a broker drops the older of two
        # connections that share an identifier.
        self.client_id = f"{client_id}-instructions"
        self._username, self._password = username, password
        self.max_bytes = max_bytes
        #: Without a store (tests, a gateway with no durable state): ``remember`` references in memory.
        self.references: ReferenceBook = references if references is not None else MemoryReferences(remember)
        self.retention, self.claim_hold = retention, claim_hold
        self.backoff_initial, self.backoff_max = backoff_initial, backoff_max
        self.events = events
        self._clock = clock
        self._task: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()
        self.accepted = self.duplicates = self.rejected = self.reconnects = 0

    async def handle(self, payload: bytes) -> Outcome:
        """Check one payload and hand it on; never raises (a sink failure is an error outcome too)."""
        now = self._clock()
        try:
            trigger = parse_instruction(payload, now, max_bytes=self.max_bytes)
        except InstructionError as exc:
            self.rejected += 1
            log.warning("instruction.rejected", error=exc.code, reason=str(exc), reference=exc.reference)
            self._emit("instruction.rejected", error=exc.code, reason=str(exc), reference=exc.reference)
            return Outcome(error=exc)
        reference = trigger.reference
        try:
            new = await self.references.claim_reference(reference, now, now + self.claim_hold)
        except Exception as exc:
            return self._failed(trigger, "store", exc)
        if not new:
            self.duplicates += 1
            log.info("instruction.duplicate", reference=reference)
            return Outcome(trigger=trigger, duplicate=True)
        try:
            await self.sink.trigger(trigger, now)
        except Exception as exc:
            # Released: the centre may send it again once whatever failed is fixed.
            with contextlib.suppress(Exception):
                await self.references.drop_reference(reference)
            return self._failed(trigger, "engine", exc)
        try:
            await self.references.hold_reference(reference, now, now + self.retention)
        except Exception as exc:
            # Acted on: a repeat after the claim's hold lapses would only update the open case.
            log.warning("instruction.reference_unsaved", reference=reference, error=str(exc))
        self.accepted += 1
        log.info("instruction.accepted", reference=trigger.reference, tier=trigger.tier, fraud_type=trigger.fraud_type)
        self._emit(
            "instruction.accepted",
            reference=trigger.reference,
            subscriber=trigger.subscriber,
            tier=trigger.tier,
            fraud_type=trigger.fraud_type,
        )
        return Outcome(trigger=trigger)

    def _failed(self, trigger: Trigger, where: str, exc: Exception) -> Outcome:
        self.rejected += 1
        log.error("instruction.failed", reference=trigger.reference, where=where, error=str(exc))
        error = InstructionError("internal", "the gateway could not act on it; send it again later")
        error.reference = trigger.reference
        return Outcome(error=error)

    def _emit(self, name: str, **fields: Any) -> None:
        if self.events is not None:
            self.events.emit(name, **fields)

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None
        self.connected.clear()

    async def _run(self) -> None:
        delay = self.backoff_initial
        while True:
            try:
                async with aiomqtt.Client(
                    self.host,
                    self.port,
                    identifier=self.client_id,
                    username=self._username,
                    password=self._password,
                    clean_session=False,
                    timeout=10.0,
                ) as client:
                    await client.subscribe(self.topic, qos=1)
                    delay = self.backoff_initial
                    self.connected.set()
                    log.info("instruction.mqtt_connected", host=self.host, port=self.port, topic=self.topic)
                    async for message in client.messages:
                        raw = message.payload
                        outcome = await self.handle(bytes(raw) if isinstance(raw, bytes | bytearray) else b"")
                        if outcome.error is not None:
                            await client.publish(self.error_topic, outcome.error.to_json(self._clock()), qos=1)
            except (aiomqtt.MqttError, OSError) as exc:
                if self.connected.is_set():
                    log.warning("instruction.mqtt_disconnected", error=str(exc))
                self.connected.clear()
            self.reconnects += 1
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.backoff_max)
