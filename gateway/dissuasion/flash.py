"""The dissuasion flash over the gateway's own binds to the SMSC, and its acknowledgement coming back.

A warning is a class-0 UCS2 short message (data_coding 0x18) shown on the display (dest_addr_subunit 1),
asking for both the SMSC delivery receipt and the SME manual/user acknowledgement (registered_delivery
0x01 | 0x08): the acknowledgement is how the handset says the person read it and pressed OK. UCS2 is
used even for a text GSM 7 could carry, so that every warning looks the same on every handset.

Matching the answer: an acknowledgement (esm_class message type 0x10) names the flash by its SMSC
message id (receipted_message_id, or ``id:`` in the text); some SMSCs send only the
user_message_reference we set, so that, with the handset's number, is kept too (in memory: an
acknowledgement of that kind for a flash sent before a restart is not matched, the next attempt's is).
"""

from __future__ import annotations

import itertools
import re
from collections import OrderedDict
from collections.abc import Awaitable, Callable

from gateway.dissuasion.engine import FAMILY_OWNER_PREFIX, OWNER_PREFIX
from gateway.logs import get_logger
from protocols.smpp import text
from protocols.smpp.constants import EsmClass, RegisteredDelivery, Tag
from protocols.smpp.pdu import DataSm, DeliverSm, Pdu, SubmitSm, SubmitSmResp, Tlv

log = get_logger("afgw.dissuasion")

#: Delivery receipt on final state plus the SME manual/user acknowledgement (SMPP 3.4 5.2.17).
REGISTERED_DELIVERY = RegisteredDelivery.RECEIPT_ON_FINAL | 0x08
_MAX_REFERENCES = 100_000
_ID_IN_TEXT = re.compile(rb"id:([0-9A-Za-z\-]+)")


def _receipted_id(pdu: DeliverSm | DataSm) -> str | None:
    """The flash a receipt or acknowledgement is about: the TLV, else ``id:`` in the text."""
    value = pdu.tlv(Tag.RECEIPTED_MESSAGE_ID)
    if value is not None:
        return value.rstrip(b"\x00").decode("latin-1")
    match = _ID_IN_TEXT.search(pdu.payload)
    return match.group(1).decode("ascii") if match else None


class SmppFlashSender:
    """``FlashSender`` through ``submit`` (the SMSC pool's): the SMSC's message id of the first part."""

    def __init__(self, submit: Callable[[Pdu], Awaitable[Pdu]], *, sender: str = "12381") -> None:
        self._submit = submit
        self.sender = sender
        self._refs = itertools.count(1)
        self._by_reference: OrderedDict[tuple[str, int], str] = OrderedDict()

    def pdus(self, recipient: str, message: str, reference: int) -> list[SubmitSm]:
        _, segments = text.split(message, alphabet=text.Alphabet.UCS2)
        flash = text.data_coding_for(text.Alphabet.UCS2, flash=True)
        tlvs = (
            *(Tlv(tag, value) for tag, value in text.FLASH_TLVS),
            Tlv(Tag.USER_MESSAGE_REFERENCE, reference.to_bytes(2, "big")),
        )
        return [
            SubmitSm(
                source_addr=self.sender,
                destination_addr=recipient,
                esm_class=EsmClass.UDHI if segment.esm_class_udhi else 0,
                data_coding=flash,
                registered_delivery=REGISTERED_DELIVERY,
                short_message=segment.short_message,
                tlvs=tlvs,
            )
            for segment in segments
        ]

    async def send_flash(self, recipient: str, message: str, case_id: str) -> str | None:
        reference = next(self._refs) % 0x10000 or next(self._refs)
        ids: list[str] = []
        for pdu in self.pdus(recipient, message, reference):
            resp = await self._submit(pdu)
            if resp.command_status != 0 or not isinstance(resp, SubmitSmResp):
                log.warning("dissuasion.flash_refused", case_id=case_id, status=resp.command_status)
                return None
            ids.append(resp.message_id)
        self._by_reference[(recipient, reference)] = ids[0]
        while len(self._by_reference) > _MAX_REFERENCES:
            self._by_reference.popitem(last=False)
        return ids[0]

    def acknowledged_id(self, pdu: DeliverSm | DataSm) -> str | None:
        """The message id of the flash a manual/user acknowledgement answers; None for anything else."""
        if pdu.esm_class & EsmClass.TYPE_MASK != EsmClass.TYPE_MANUAL_ACK:
            return None
        if (message_id := _receipted_id(pdu)) is not None:
            return message_id
        umr = pdu.tlv(Tag.USER_MESSAGE_REFERENCE)
        if umr is None or len(umr) != 2:
            return None
        return self._by_reference.get((pdu.source_addr, int.from_bytes(umr, "big")))


def _ours(owner: str | None) -> bool:
    """Whether a receipt-routing owner is one of the gateway's own warning flashes."""
    return owner is not None and owner.startswith((OWNER_PREFIX, FAMILY_OWNER_PREFIX))


class AckHook:
    """What the SMPP proxy asks about a receipt nobody else owns: is it a dissuasion flash's?

    ``handle`` answers True when the receipt was for a warning flash (then it is consumed, not relayed):
    an acknowledgement handles the case, a delivery receipt is only logged.
    """

    def __init__(
        self,
        sender: SmppFlashSender,
        acknowledged: Callable[[str, float], Awaitable[bool]],
        owner: Callable[[str, float], Awaitable[str | None]],
        clock: Callable[[], float],
        receipt: Callable[[str, str, float], Awaitable[None]] | None = None,
    ) -> None:
        self.sender = sender
        #: Told of a warning flash's delivery receipt (message id, owner, now): the case's timeline.
        self._receipt = receipt
        self._acknowledged = acknowledged
        self._owner = owner
        self._clock = clock

    async def handle(self, pdu: DeliverSm | DataSm) -> bool:
        now = self._clock()
        if (message_id := self.sender.acknowledged_id(pdu)) is not None:
            if await self._acknowledged(message_id, now):
                return True
            # An acknowledgement for a case already handled or closed, or a relative's, is still ours.
            return _ours(await self._owner(message_id, now))
        message_id = _receipted_id(pdu)
        if message_id is None:
            return False
        owner = await self._owner(message_id, now)
        if owner is None or not _ours(owner):
            return False
        log.info("dissuasion.flash_receipt", message_id=message_id, owner=owner, esm_class=pdu.esm_class)
        if self._receipt is not None:
            await self._receipt(message_id, owner, now)
        return True


__all__ = ["REGISTERED_DELIVERY", "AckHook", "SmppFlashSender"]
