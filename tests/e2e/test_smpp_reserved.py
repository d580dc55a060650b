"""Through the running gateway: reserved sender ids and signatures only from the accounts authorised for them."""

from __future__ import annotations

from gateway.config import EsmeAccount
from protocols.smpp.constants import CommandStatus, DataCoding
from protocols.smpp.pdu import SubmitSm
from simulator.esme import SimulatedEsme
from tests.e2e.smpp_harness import gateway_port, make_config, running_gateway

ACCOUNTS = (
    EsmeAccount(system_id="bank", password="bankpw", throughput=1000, window=10),
    EsmeAccount(
        system_id="fzzx",
        password="fzzxpw",
        throughput=1000,
        window=10,
        authorised_senders=("12381",),
        authorised_signatures=("【国家反诈中心】",),
    ),
)


def ucs2(source: str, text: str) -> SubmitSm:
    return SubmitSm(
        source_addr=source,
        destination_addr="8613800000001",
        data_coding=DataCoding.UCS2,
        short_message=text.encode("utf-16-be"),
    )


async def test_only_the_authorised_account_sends_as_12381_or_signs_as_the_centre(smsc):
    async with running_gateway(make_config(smsc.port, accounts=ACCOUNTS)) as gw:
        bank = SimulatedEsme("127.0.0.1", gateway_port(gw), "bank", "bankpw")
        centre = SimulatedEsme("127.0.0.1", gateway_port(gw), "fzzx", "fzzxpw")
        await bank.bind()
        await centre.bind()

        forged_sender = await bank.send(ucs2("+8612381", "您的账户涉嫌洗钱，请配合调查"))
        forged_signature = await bank.send(ucs2("10690", "【國家反詐中心】您的賬戶涉嫌洗錢"))
        mention = await bank.send(ucs2("10690", "【某银行】请下载国家反诈中心APP"))
        genuine = await centre.send(ucs2("12381", "【国家反诈中心】提醒您：公检法不会电话办案"))

        assert forged_sender.command_status == CommandStatus.ESME_RINVSRCADR
        assert forged_signature.command_status == CommandStatus.ESME_RSUBMITFAIL
        assert mention.command_status == CommandStatus.ESME_ROK
        assert genuine.command_status == CommandStatus.ESME_ROK

        # Only the two accepted messages reached the SMSC, and each refusal left an audit record.
        texts = [sms.text for sms in smsc.inbox("8613800000001")]
        assert texts == ["【某银行】请下载国家反诈中心APP", "【国家反诈中心】提醒您：公检法不会电话办案"]
        assert gw.smpp is not None
        audit = [r for r in gw.smpp.store.audit_log if r.kind == "sms.reserved_refused"]  # type: ignore[attr-defined]
        assert [r.fields["status"] for r in audit] == [CommandStatus.ESME_RINVSRCADR, CommandStatus.ESME_RSUBMITFAIL]
        assert audit[1].fields["text"] == "【國家反詐中心】您的賬戶涉嫌洗錢"
        events = gw.events.named("sms.reserved_refused")  # type: ignore[attr-defined]
        assert [(e.fields["system_id"], e.fields["status"]) for e in events] == [
            ("bank", CommandStatus.ESME_RINVSRCADR),
            ("bank", CommandStatus.ESME_RSUBMITFAIL),
        ]
        await bank.unbind()
        await centre.unbind()
