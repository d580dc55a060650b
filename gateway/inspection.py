"""The inspection hooks every SMS and every call pass through, and the decision they return.

The SMPP proxy calls ``inspect_sms`` for every submit_sm, submit_multi, data_sm and deliver_sm before
relaying it; the SIP proxy calls ``inspect_call`` for every initial INVITE before forwarding it. The
hook may answer at once with a ``Decision`` or return an awaitable of one (for an
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
from protocols.smpp.constants import EsmClass, Tag
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
    #: Calls only. BLOCK: the SIP status the caller hears (``reason`` is its text, sent in a Reason
    #: header too). LABEL: the informational label (e.g. 境外来电) shown on the handset.
    status: int = 603
    label: str | None = None
    #: The campaign (near-duplicates to many recipients) this message is a copy of, once one is open.
    campaign: str | None = None

    @classmethod
    def reject_call(cls, status: int, reason: str, *, rules: tuple[str, ...] = ()) -> Decision:
        """Refuse a call with a final SIP status (4xx-6xx) and a reason text."""
        if not 400 <= status <= 699:
            raise ValueError(f"a rejected call needs a 4xx-6xx status, not {status}")
        return cls(action=Action.BLOCK, status=status, reason=reason, rules=rules, risk="high")

    @classmethod
    def label_call(cls, label: str, *, rules: tuple[str, ...] = ()) -> Decision:
        """Let a call through with an informational label for the handset's screen."""
        return cls(action=Action.LABEL, label=label, rules=rules)


PASS = Decision()

_UDHI = int(EsmClass.UDHI)
_SAR_TAGS = frozenset({int(Tag.SAR_MSG_REF_NUM), int(Tag.SAR_TOTAL_SEGMENTS), int(Tag.SAR_SEGMENT_SEQNUM)})
_MESSAGE_PAYLOAD = int(Tag.MESSAGE_PAYLOAD)


class SmsMessage:
    """One SMS as the inspector sees it: who sent it to whom, over which bind, and its text."""

    __slots__ = ("_text", "destinations", "direction", "pdu", "source", "system_id")

    def __init__(
        self,
        pdu: Pdu,
        *,
        direction: str,
        system_id: str,
        source: str,
        destinations: tuple[str, ...],
        text: str | None = None,
    ):
        self.pdu = pdu
        self.direction = direction  # "mt" (from an ESME), "mo" or "receipt" (from the SMSC)
        self.system_id = system_id
        self.source = source
        self.destinations = destinations
        #: Given for a part of a concatenated message: the text of its message received so far.
        self._text: str | None = text

    @property
    def text(self) -> str:
        """The message text, decoded once on first use; UDH stripped from concatenated parts."""
        if self._text is None:
            pdu = self.pdu
            raw: bytes = getattr(pdu, "short_message", b"") or (pdu.tlv(_MESSAGE_PAYLOAD) or b"")
            esm_class: int = getattr(pdu, "esm_class", 0)
            body = raw
            # Most messages are one part: no UDH and no sar_* parameter, nothing to take off. A loop
            # rather than any() over a generator: this runs for every message.
            concat = bool(esm_class & _UDHI)
            if not concat:
                for tlv in pdu.tlvs:
                    if tlv.tag in _SAR_TAGS:
                        concat = True
                        break
            if concat:
                try:
                    _info, body = text.parse_concat(raw, esm_class, pdu.tlvs)
                except Exception:  # a malformed UDH still gets inspected as raw text
                    body = raw
            self._text = text.decode(body, getattr(pdu, "data_coding", 0))
        return self._text


class Call:
    """One initial INVITE as the inspector sees it: who calls whom, from where, and the request itself.

    ``caller`` is the From user (the calling number), ``display_name`` the From display name,
    ``callee`` the Request-URI user, ``asserted`` the P-Asserted-Identity value if any. ``trusted`` is
    true when the INVITE came from a configured trunk peer. ``attestation`` is A, B or C when the STIR
    policy verified a PASSporT for the calling number, else empty. ``request`` is the parsed
    :class:`protocols.sip.Request` for anything else (Identity header, SDP ...); do not modify it.
    """

    __slots__ = (
        "asserted",
        "attestation",
        "call_id",
        "callee",
        "caller",
        "display_name",
        "request",
        "source",
        "trusted",
    )

    def __init__(
        self,
        *,
        call_id: str,
        caller: str,
        callee: str,
        display_name: str | None,
        asserted: str | None,
        source: str,
        trusted: bool,
        request: object,
        attestation: str = "",
    ) -> None:
        self.attestation = attestation
        self.call_id = call_id
        self.caller = caller
        self.callee = callee
        self.display_name = display_name
        self.asserted = asserted
        self.source = source
        self.trusted = trusted
        self.request = request

    def __repr__(self) -> str:
        return f"Call({self.call_id!r}, {self.caller!r} -> {self.callee!r}, trusted={self.trusted})"


class SmsInspector(Protocol):
    def inspect_sms(self, message: SmsMessage) -> Decision | Awaitable[Decision]: ...


class CallInspector(Protocol):
    def inspect_call(self, call: Call) -> Decision | Awaitable[Decision]: ...


class PassThrough:
    """Lets every message and call by: the gateway's behaviour with no rules loaded."""

    def inspect_sms(self, message: SmsMessage) -> Decision:
        return PASS

    def inspect_call(self, call: Call) -> Decision:
        return PASS


async def decide(inspector: SmsInspector, message: SmsMessage) -> Decision:
    """The inspector's decision, awaited if it needs awaiting."""
    result = inspector.inspect_sms(message)
    return result if isinstance(result, Decision) else await result


async def decide_call(inspector: CallInspector, call: Call) -> Decision:
    """The call inspector's decision, awaited if it needs awaiting."""
    result = inspector.inspect_call(call)
    return result if isinstance(result, Decision) else await result
