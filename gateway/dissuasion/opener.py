"""Triggers into cases: the one way a case is opened or updated, whoever asks.

``CaseOpener`` is a ``TriggerSink`` that does what the engine does with a trigger before any attempt:
open the subscriber's case through the store, due at once (or update the open one: tier raised,
fraud type added, schedule untouched), and publish ``case.opened`` or ``case.updated``. The gateway
uses it when it is given no other taker of triggers; ``afgw case open`` uses it always, so a case an
operator opens is the same as one the centre asked for.
"""

from __future__ import annotations

from typing import Protocol

from gateway.dissuasion.triggers import Trigger
from gateway.events.memory import EventSink
from gateway.logs import get_logger
from gateway.store.base import Case

log = get_logger("afgw.dissuasion")


class CaseStore(Protocol):
    async def open_or_update_case(
        self, subscriber: str, tier: str, fraud_type: str, now: float, due_at: float, family: tuple[str, ...] = ()
    ) -> tuple[Case, bool]: ...


class CaseOpener:
    def __init__(self, store: CaseStore, events: EventSink) -> None:
        self.store = store
        self.events = events

    async def trigger(self, trigger: Trigger, now: float) -> None:
        await self.open(trigger, now)

    async def open(self, trigger: Trigger, now: float) -> tuple[Case, bool] | None:
        """The case and whether it was opened; None for an instruction that has expired."""
        if trigger.expires_at is not None and trigger.expires_at <= now:
            log.info("case.trigger_expired", subscriber=trigger.subscriber, reference=trigger.reference)
            return None
        case, opened = await self.store.open_or_update_case(
            trigger.subscriber, trigger.tier, trigger.fraud_type, now, due_at=now, family=trigger.family
        )
        self.events.emit(
            "case.opened" if opened else "case.updated",
            id=case.id,
            subscriber=case.subscriber,
            tier=case.tier,
            fraud_types=list(case.fraud_types),
            family=list(trigger.family),
            source=trigger.source,
            reference=trigger.reference,
            detail=trigger.detail,
        )
        return case, opened
