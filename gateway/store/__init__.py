"""The store: where the gateway keeps what must outlive one PDU or one call.

``MemoryStore`` (tests, the demo), ``SqliteStore`` (the default: one file in the data directory) and
``RedisStore`` (several gateway instances) implement one interface, ``StateStore``; the proxies use
its synchronous part, ``Store``. See gateway/store/base.py for what each call promises.
"""

from __future__ import annotations

from gateway.store.base import (
    CASE_STATES,
    CLOSED,
    ESCALATED,
    HANDLED,
    OPEN,
    TIERS,
    AuditRecord,
    CampaignCopy,
    CampaignPolicy,
    CampaignSeen,
    Case,
    ConsoleSession,
    LeaseLost,
    Registration,
    RiskScore,
    StateStore,
    Store,
    Transition,
    UnknownCase,
    canonical_message_id,
    message_id_keys,
    recipient_key,
)
from gateway.store.memory import MemoryStore
from gateway.store.sqlite import SqliteStore

__all__ = [
    "CASE_STATES",
    "CLOSED",
    "ESCALATED",
    "HANDLED",
    "OPEN",
    "TIERS",
    "AuditRecord",
    "CampaignCopy",
    "CampaignPolicy",
    "CampaignSeen",
    "Case",
    "ConsoleSession",
    "LeaseLost",
    "MemoryStore",
    "Registration",
    "RiskScore",
    "SqliteStore",
    "StateStore",
    "Store",
    "Transition",
    "UnknownCase",
    "canonical_message_id",
    "message_id_keys",
    "recipient_key",
]
