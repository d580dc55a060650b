"""The dissuasion flash through the gateway's own SMSC binds, and the handset's acknowledgement back."""

from __future__ import annotations

import time
from dataclasses import replace

from gateway.dissuasion import templates
from gateway.dissuasion.engine import DissuasionConfig
from gateway.dissuasion.triggers import Trigger
from gateway.store import MemoryStore
from protocols.smpp.constants import CommandStatus, DataCoding, EsmClass, Tag
from protocols.smpp.pdu import Tlv
from tests.e2e.smpp_harness import eventually, make_config, running_gateway

VICTIM = "8613900000071"
FAMILY = "8613700000072"
TEMPLATES = templates.load(templates.DEFAULT_PATH)


def _config(smsc):
    return replace(make_config(smsc.port), dissuasion=DissuasionConfig(poll_interval=0.02, templates=TEMPLATES))


async def test_flash_reaches_the_handset_and_its_acknowledgement_handles_the_case(smsc):
    store = MemoryStore()
    async with running_gateway(_config(smsc), store=store) as gw:
        assert gw.dissuasion is not None
        await gw.dissuasion.trigger(Trigger(VICTIM, "medium", "loan", "centre", family=(FAMILY,)), time.time())
        await eventually(lambda: smsc.inbox(VICTIM) and smsc.inbox(FAMILY))
        [warning] = smsc.inbox(VICTIM)
        assert warning.flash
        assert warning.source == "12381"
        assert warning.data_coding == DataCoding.UCS2_CLASS0
        assert warning.text == TEMPLATES.render("loan", "victim", VICTIM)
        assert (Tag.DEST_ADDR_SUBUNIT, b"\x01") in [(t.tag, t.value) for t in warning.tlvs]
        [relative] = smsc.inbox(FAMILY)
        assert relative.text == TEMPLATES.render("loan", "family", VICTIM)
        mid = warning.message_id.encode() + b"\x00"

        # The SMSC's delivery receipt for the flash is the gateway's own: taken, not refused or retried.
        receipt = await smsc.inject_mo(
            VICTIM, "12381", b"", esm_class=EsmClass.TYPE_DELIVERY_RECEIPT, tlvs=(Tlv(Tag.RECEIPTED_MESSAGE_ID, mid),)
        )
        assert receipt == CommandStatus.ESME_ROK
        case = await store.open_case_of(VICTIM)
        assert case is not None

        # A stranger's acknowledgement (no flash of ours) is refused as unrouted, as before.
        stray = await smsc.inject_mo(
            VICTIM, "12381", b"", esm_class=EsmClass.TYPE_MANUAL_ACK, tlvs=(Tlv(Tag.RECEIPTED_MESSAGE_ID, b"99\0"),)
        )
        assert stray == CommandStatus.ESME_RX_P_APPN

        # The person pressed OK on the flash: the handset's manual/user acknowledgement.
        ack = await smsc.inject_mo(
            VICTIM, "12381", b"", esm_class=EsmClass.TYPE_MANUAL_ACK, tlvs=(Tlv(Tag.RECEIPTED_MESSAGE_ID, mid),)
        )
        assert ack == CommandStatus.ESME_ROK
        assert (await store.get_case(case.id)).state == "handled"
        [handled] = gw.events.named("case.handled")  # type: ignore[attr-defined]
        assert handled.fields["how"] == "flash_ack"


async def test_an_acknowledgement_by_reference_alone_is_matched(smsc):
    store = MemoryStore()
    async with running_gateway(_config(smsc), store=store) as gw:
        assert gw.dissuasion is not None
        await gw.dissuasion.trigger(Trigger(VICTIM, "low", "investment", "centre"), time.time())
        await eventually(lambda: smsc.inbox(VICTIM))
        [warning] = smsc.inbox(VICTIM)
        reference = dict((t.tag, t.value) for t in warning.tlvs)[Tag.USER_MESSAGE_REFERENCE]
        ack = await smsc.inject_mo(
            VICTIM, "12381", b"", esm_class=EsmClass.TYPE_MANUAL_ACK, tlvs=(Tlv(Tag.USER_MESSAGE_REFERENCE, reference),)
        )
        assert ack == CommandStatus.ESME_ROK
        assert await store.open_case_of(VICTIM) is None


async def test_an_acknowledgement_the_smsc_sends_twice_is_taken_once(smsc):
    store = MemoryStore()
    async with running_gateway(_config(smsc), store=store) as gw:
        assert gw.dissuasion is not None
        await gw.dissuasion.trigger(Trigger(VICTIM, "low", "investment", "centre"), time.time())
        await eventually(lambda: smsc.inbox(VICTIM))
        [warning] = smsc.inbox(VICTIM)
        case = await store.open_case_of(VICTIM)
        assert case is not None
        mid = Tlv(Tag.RECEIPTED_MESSAGE_ID, warning.message_id.encode() + b"\x00")
        # The same deliver_sm twice (the SMSC retries it, or sends it on another bind): both are the
        # gateway's and answered ESME_ROK, so that the SMSC stops; the case tells of the first alone.
        for _ in range(2):
            ack = await smsc.inject_mo(VICTIM, "12381", b"", esm_class=EsmClass.TYPE_MANUAL_ACK, tlvs=(mid,))
            assert ack == CommandStatus.ESME_ROK
        after = await store.get_case(case.id)
        read = [(t.event, t.detail) for t in after.transitions if t.event in ("handled", "flash_acknowledged")]
        assert read == [("handled", "flash_ack")]
        assert len(gw.events.named("case.handled")) == 1  # type: ignore[attr-defined]
