"""The store interface: where the gateway keeps what must outlive one PDU.

For now that is the map from SMSC message ids to the ESME that sent each message (to route receipts
back and to check who may query or cancel a message) and the audit trail of refused content. The
in-memory store is bounded; persistent stores implement the same interface.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Protocol

_HEX = re.compile(r"[0-9a-f]+")
_DEC = re.compile(r"[0-9]+")


def canonical_message_id(message_id: str) -> str:
    """The form under which an id is stored: no NULs or spaces, lower case, no leading zeros."""
    return message_id.strip().strip("\x00").lower().lstrip("0") or "0"


def message_id_keys(message_id: str) -> tuple[str, ...]:
    """The stored forms a receipt's id may stand for.

    SMSCs answer submit_sm with an id in one form and quote it in receipts in another: hexadecimal
    versus decimal, upper versus lower case, with or without leading zeros. The exact form is tried
    first, then the id read as decimal and written in hexadecimal, then the reverse.
    """
    mid = canonical_message_id(message_id)
    keys = [mid]
    if _DEC.fullmatch(mid):
        keys.append(format(int(mid), "x"))
    if _HEX.fullmatch(mid) and len(mid) <= 32:
        keys.append(str(int(mid, 16)))
    return tuple(dict.fromkeys(keys))


@dataclass(frozen=True, slots=True)
class AuditRecord:
    kind: str  # e.g. "sms.blocked"
    at: float
    fields: dict[str, Any] = field(default_factory=dict)


class Store(Protocol):
    def remember_message(self, message_id: str, system_id: str, now: float) -> None: ...
    def owner_of(self, message_id: str, now: float) -> str | None: ...
    def audit(self, record: AuditRecord) -> None: ...


class MemoryStore:
    """A bounded in-process store: the oldest ids go first when full, expired ones on lookup."""

    def __init__(self, *, ttl: float = 72 * 3600.0, max_entries: int = 1_000_000, max_audit: int = 100_000):
        self.ttl = ttl
        self.max_entries = max_entries
        self._owners: OrderedDict[str, tuple[str, float]] = OrderedDict()
        self.audit_log: list[AuditRecord] = []
        self._max_audit = max_audit

    def remember_message(self, message_id: str, system_id: str, now: float) -> None:
        # Stored once, in canonical form; the variants are tried at lookup, where receipts are rarer
        # than submissions.
        owners = self._owners
        key = canonical_message_id(message_id)
        if key in owners:
            owners.move_to_end(key)
        owners[key] = (system_id, now)
        if len(owners) > self.max_entries:
            owners.popitem(last=False)

    def owner_of(self, message_id: str, now: float) -> str | None:
        for key in message_id_keys(message_id):
            hit = self._owners.get(key)
            if hit is not None and now - hit[1] <= self.ttl:
                return hit[0]
        return None

    def audit(self, record: AuditRecord) -> None:
        self.audit_log.append(record)
        if len(self.audit_log) > self._max_audit:
            del self.audit_log[: len(self.audit_log) - self._max_audit]
