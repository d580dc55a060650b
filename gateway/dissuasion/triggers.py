"""What every source of risk hands the dissuasion engine: one subscriber, how much risk, and why.

The sources (MQTT instructions from the anti-fraud centre, the gateway's own risk scores, an operator's
``afgw case open``) and the engine meet only here, so that each can be built and tested without the other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

Source = Literal["centre", "score", "operator"]


@dataclass(frozen=True, slots=True)
class Trigger:
    subscriber: str  # the person at risk, as a national or E.164 number
    tier: str  # low | medium | high (gateway.store.TIERS)
    fraud_type: str  # a category name as the rule packs use it, e.g. 冒充公检法 or police
    source: Source
    reference: str = ""  # the centre's reference id: the same one twice is one trigger
    family: tuple[str, ...] = ()  # family contacts (亲情号) to warn as well
    expires_at: float | None = None  # epoch seconds after which the instruction no longer holds
    detail: str = ""  # what led to it (rule ids, the score), for the case's timeline


class TriggerSink(Protocol):
    async def trigger(self, trigger: Trigger, now: float) -> None:
        """Open a case for the subscriber, or update the open one (never a second loop)."""


class TriggerRouter:
    """Hands every trigger to the dissuasion engine once one runs, and to ``fallback`` until then.

    The sources are built with the gateway, the engine only when it starts (it needs the SMSC binds);
    without an engine (no ``dissuasion:`` section), the fallback still opens and updates cases.
    """

    def __init__(self, fallback: TriggerSink) -> None:
        self.fallback = fallback
        self.engine: TriggerSink | None = None

    async def trigger(self, trigger: Trigger, now: float) -> None:
        await (self.engine or self.fallback).trigger(trigger, now)
