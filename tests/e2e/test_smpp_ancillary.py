"""data_sm, query_sm, cancel_sm and replace_sm through the proxy, who may use them, and the inspection hook."""

from __future__ import annotations

import pytest

from gateway.inspection import PASS, Action, Decision, SmsMessage
from gateway.store import MemoryStore
from protocols.smpp.pdu import (
    CancelSm,
    CancelSmResp,
    DataSm,
    DataSmResp,
    QuerySm,
    QuerySmResp,
    ReplaceSm,
    ReplaceSmResp,
    SubmitSm,
    Tlv,
)
from simulator.esme import SimulatedEsme
from simulator.smsc import DELETED, DELIVERED
from tests.e2e.smpp_harness import (
    SmpplibEsme,
    eventually,
    gateway_port,
    in_thread,
    make_config,
    make_esme,
    running_gateway,
)

UCS2 = 0x08
ESME_RQUERYFAIL, ESME_RCANCELFAIL, ESME_RREPLACEFAIL = 0x67, 0x11, 0x13
ESME_RSUBMITFAIL, ESME_RX_P_APPN = 0x45, 0x65


def ancillary_received(smsc) -> list:
    return [p for p in smsc.received if isinstance(p, QuerySm | CancelSm | ReplaceSm)]


async def test_data_sm_query_replace_cancel_relayed_for_the_owner(smsc):
    async with running_gateway(make_config(smsc.port)) as gw:
        bank = SimulatedEsme("127.0.0.1", gateway_port(gw), "bank", "bankpw")
        await bank.bind()
        [resp] = await bank.submit("10690", "8613800000011", "您的快递已到，请凭取件码 8842 领取")
        assert resp.command_status == 0
        message_id = resp.message_id

        # data_sm: message_payload and a vendor TLV, relayed as sent; data_sm_resp carries the SMSC's id.
        payload = "数据短信：账户变动提醒".encode("utf-16-be")
        tlvs = (Tlv(0x0424, payload), Tlv(0x1401, b"\x00\x01"))
        data_resp = await bank.send(
            DataSm(source_addr="10690", destination_addr="8613800000012", data_coding=UCS2, tlvs=tlvs)
        )
        assert isinstance(data_resp, DataSmResp)
        assert data_resp.command_status == 0
        assert smsc.by_id[data_resp.message_id].text == "数据短信：账户变动提醒"
        [relayed] = [p for p in smsc.received if isinstance(p, DataSm)]
        assert relayed.tlvs == tlvs
        assert relayed.destination_addr == "8613800000012"

        query = await bank.send(QuerySm(message_id=message_id, source_addr="10690"))
        assert isinstance(query, QuerySmResp)
        assert (query.command_status, query.message_id, query.message_state) == (0, message_id, DELIVERED)

        replacement = "您的快递已改派，请凭取件码 9913 领取".encode("utf-16-be")
        replaced = await bank.send(ReplaceSm(message_id=message_id, source_addr="10690", short_message=replacement))
        assert isinstance(replaced, ReplaceSmResp)
        assert replaced.command_status == 0
        assert smsc.by_id[message_id].text == "您的快递已改派，请凭取件码 9913 领取"

        cancelled = await bank.send(
            CancelSm(message_id=message_id, source_addr="10690", destination_addr="8613800000011")
        )
        assert isinstance(cancelled, CancelSmResp)
        assert cancelled.command_status == 0
        assert smsc.by_id[message_id].state == DELETED
        assert [type(p).__name__ for p in ancillary_received(smsc)] == ["QuerySm", "ReplaceSm", "CancelSm"]
        assert all(p.message_id == message_id for p in ancillary_received(smsc))

        # smpplib's query_sm gets the SMSC's answer too.
        client = SmpplibEsme(gateway_port(gw), "bank", "bankpw")
        await in_thread(client.connect)
        client.listen_in_background()
        seq = await in_thread(client.send, "query_sm", message_id=message_id, source_addr="10690")
        await eventually(lambda: seq in client.by_seq)
        answer = client.by_seq[seq]
        assert answer.command == "query_sm_resp"
        assert answer.status == 0
        assert answer.message_state == DELETED
        await in_thread(client.close)
        await bank.unbind()


async def test_only_the_submitting_account_may_query_cancel_or_replace(smsc):
    async with running_gateway(make_config(smsc.port)) as gw:
        bank = SimulatedEsme("127.0.0.1", gateway_port(gw), "bank", "bankpw")
        shop = SimulatedEsme("127.0.0.1", gateway_port(gw), "shop", "shoppw")
        await bank.bind()
        await shop.bind()
        [resp] = await bank.submit("10690", "8613800000013", "bank only")
        message_id = resp.message_id
        assert resp.command_status == 0

        for pdu, refused in (
            (QuerySm(message_id=message_id, source_addr="10690"), ESME_RQUERYFAIL),
            (CancelSm(message_id=message_id, source_addr="10690"), ESME_RCANCELFAIL),
            (ReplaceSm(message_id=message_id, source_addr="10690", short_message=b"hijack"), ESME_RREPLACEFAIL),
            # The same id in another case is still bank's message.
            (CancelSm(message_id=message_id.lower(), source_addr="10690"), ESME_RCANCELFAIL),
        ):
            answer = await shop.send(pdu)
            assert answer.command_id == pdu.command_id | 0x80000000
            assert answer.command_status == refused, type(pdu).__name__
        # An id nobody submitted is nobody's.
        answer = await bank.send(QuerySm(message_id="DEADBEEF", source_addr="10690"))
        assert answer.command_status == ESME_RQUERYFAIL

        assert ancillary_received(smsc) == []
        assert smsc.by_id[message_id].state == DELIVERED
        assert smsc.by_id[message_id].text == "bank only"
        await bank.unbind()
        await shop.unbind()


# --- the inspection hook ----------------------------------------------------------------------------


class BlockSafeAccount:
    """Blocks any message that asks for a transfer to a "安全账户"; records what it saw."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, str]] = []

    async def inspect_sms(self, message: SmsMessage) -> Decision:
        self.seen.append((message.direction, message.system_id, message.text))
        if "安全账户" in message.text:
            return Decision(Action.BLOCK, risk="high", rules=("test-rule",), reason="safe account")
        return PASS


FRAUD = "【公安局】您涉嫌洗钱，请立即将资金转入安全账户 6222 0000 1234"
HAM = "【工商银行】您尾号 1234 的卡消费 88.00 元"


@pytest.mark.parametrize("esme_kind", ["smpplib", "smpp34"])
async def test_blocked_message_refused_quarantined_and_never_relayed(smsc, esme_kind):
    inspector = BlockSafeAccount()
    store = MemoryStore()
    async with running_gateway(make_config(smsc.port), inspector=inspector, store=store) as gw:
        esme = make_esme(esme_kind, gateway_port(gw), "bank", "bankpw")
        await esme.connect()
        try:
            status, _ = await esme.submit(
                source="10690",
                destination="8613800000021",
                short_message=FRAUD.encode("utf-16-be"),
                data_coding=UCS2,
            )
            assert status == ESME_RSUBMITFAIL
            assert not [p for p in smsc.received if isinstance(p, SubmitSm)]
            [record] = store.audit_log
            assert record.kind == "sms.blocked"
            assert record.fields["text"] == FRAUD
            assert record.fields["rules"] == ["test-rule"]
            assert record.fields["system_id"] == "bank"
            assert record.fields["destinations"] == ["8613800000021"]

            status, _ = await esme.submit(
                source="10690",
                destination="8613800000021",
                short_message=HAM.encode("utf-16-be"),
                data_coding=UCS2,
            )
            assert status == 0
            assert [sms.text for sms in smsc.inbox("8613800000021")] == [HAM]
            assert ("mt", "bank", FRAUD) in inspector.seen
            assert ("mt", "bank", HAM) in inspector.seen

            # Mobile-originated fraud is inspected too: the SMSC is told to give up, the ESME gets nothing.
            status = await smsc.inject_mo("8613900000021", "10690", FRAUD)
            assert status == ESME_RX_P_APPN
            assert ("mo", "bank", FRAUD) in inspector.seen
            assert store.audit_log[-1].fields["text"] == FRAUD
            assert store.audit_log[-1].fields["direction"] == "mo"
            status = await smsc.inject_mo("8613900000021", "10690", HAM)
            assert status == 0
            await eventually(lambda: esme.deliveries)
            assert [d.short_message.decode("utf-16-be") for d in esme.deliveries] == [HAM]
        finally:
            await esme.close()


async def test_pass_through_lets_everything_by(smsc):
    store = MemoryStore()
    async with running_gateway(make_config(smsc.port), store=store) as gw:
        esme = SimulatedEsme("127.0.0.1", gateway_port(gw), "bank", "bankpw")
        await esme.bind()
        for text in (FRAUD, HAM):
            [resp] = await esme.submit("10690", "8613800000022", text)
            assert resp.command_status == 0
        assert [sms.text for sms in smsc.inbox("8613800000022")] == [FRAUD, HAM]
        assert await smsc.inject_mo("8613900000022", "10690", FRAUD) == 0
        await eventually(lambda: esme.delivered)
        assert store.audit_log == []
        await esme.unbind()
