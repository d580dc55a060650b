"""The one inspection hook every SMS passes through, and the decision it returns.

The proxies call ``inspect_sms`` for every submit_sm, submit_multi, data_sm and deliver_sm before
relaying it. The hook may answer at once with a ``Decision`` or return an awaitable of one (for an
inspector that must ask a remote store); the proxy awaits only in the second case, so that a
decision made in memory costs no task switch on the relay's hot path. The rule engine plugs in here;
until then ``PassThrough`` lets everything by.
"""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass
from enum import Enum
from typing import Protocol

from protocols.smpp import text
from protocols.smpp.constants import Tag
from protocols.smpp.pdu import Pdu


class Action(Enum):
    PASS = "pass"
    TAG = "tag"
    WARN = "warn"
    BLOCK = "block"
    LABEL = "label"


@dataclass(frozen=True, slots=True)
class Decision:
    action: Action = Action.PASS
    risk: str = "none"
    rules: tuple[str, ...] = ()
    category: str | None = None
    reason: str = ""


PASS = Decision()


class SmsMessage:
    """One SMS as the inspector sees it: who sent it to whom, over which bind, and its text."""

    __slots__ = ("_text", "destinations", "direction", "pdu", "source", "system_id")

    def __init__(self, pdu: Pdu, *, direction: str, system_id: str, source: str, destinations: tuple[str, ...]):
        self.pdu = pdu
        self.direction = direction  # "mt" (from an ESME towards handsets) or "mo" (from the SMSC)
        self.system_id = system_id
        self.source = source
        self.destinations = destinations
        self._text: str | None = None

    @property
    def text(self) -> str:
        """The message text, decoded once on first use; UDH stripped from concatenated parts."""
        if self._text is None:
            pdu = self.pdu
            raw: bytes = getattr(pdu, "short_message", b"") or (pdu.tlv(Tag.MESSAGE_PAYLOAD) or b"")
            esm_class: int = getattr(pdu, "esm_class", 0)
            try:
                _info, body = text.parse_concat(raw, esm_class, pdu.tlvs)
            except Exception:  # a malformed UDH still gets inspected as raw text
                body = raw
            self._text = text.decode(body, getattr(pdu, "data_coding", 0))
        return self._text


class SmsInspector(Protocol):
    def inspect_sms(self, message: SmsMessage) -> Decision | Awaitable[Decision]: ...


class PassThrough:
    """Lets every message by: the gateway's behaviour with no rules loaded."""

    def inspect_sms(self, message: SmsMessage) -> Decision:
        return PASS


async def decide(inspector: SmsInspector, message: SmsMessage) -> Decision:
    """The inspector's decision, awaited if it needs awaiting."""
    result = inspector.inspect_sms(message)
    return result if isinstance(result, Decision) else await result
