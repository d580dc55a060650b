"""The rule engine behind the SMPP proxy: what each verdict does to a message on the wire and on the handset."""

from __future__ import annotations

import textwrap

import pytest

from gateway.config import EsmeAccount, RulesConfig
from protocols.smpp.constants import CommandStatus, DataCoding, Tag
from protocols.smpp.pdu import SubmitSm
from simulator.esme import SimulatedEsme
from tests.e2e.smpp_harness import eventually, gateway_port, make_config, running_gateway

VICTIM = "8613800000051"
ACCOUNTS = (EsmeAccount(system_id="bank", password="bankpw", throughput=1000, window=10, mo_prefixes=("10690",)),)


def ucs2(source: str, text: str, destination: str = VICTIM) -> SubmitSm:
    return SubmitSm(
        source_addr=source,
        destination_addr=destination,
        data_coding=DataCoding.UCS2,
        short_message=text.encode("utf-16-be"),
    )


def flashes(smsc, number: str):
    return [sms for sms in smsc.inbox(number) if sms.flash]


def ordinary(smsc, number: str):
    return [sms for sms in smsc.inbox(number) if not sms.flash]


@pytest.fixture
def rules_config():
    return RulesConfig(reload_interval=0, warning_interval=300)


async def test_block_refuses_audits_and_warns_the_recipient(smsc, rules_config):
    config = make_config(smsc.port, accounts=ACCOUNTS, rules=rules_config)
    async with running_gateway(config) as gw:
        esme = SimulatedEsme("127.0.0.1", gateway_port(gw), "bank", "bankpw")
        await esme.bind()
        fraud = "【公安局】您涉嫌洗钱，请将资金转入安全账户配合调查"
        resp = await esme.send(ucs2("10690", fraud))
        assert resp.command_status == CommandStatus.ESME_RSUBMITFAIL

        await eventually(lambda: flashes(smsc, VICTIM))
        assert ordinary(smsc, VICTIM) == []  # the fraud text never reached the handset
        (warning,) = flashes(smsc, VICTIM)
        assert warning.source == "12381"
        assert warning.data_coding == DataCoding.UCS2_CLASS0
        assert (Tag.DEST_ADDR_SUBUNIT, b"\x01") in [(t.tag, t.value) for t in warning.tlvs]
        assert "96110" in warning.text

        assert gw.smpp is not None
        (record,) = [r for r in gw.smpp.store.audit_log if r.kind == "sms.blocked"]  # type: ignore[attr-defined]
        assert record.fields["text"] == fraud
        assert "police.safe-account" in record.fields["rules"]
        await esme.unbind()


async def test_warn_delivers_and_sends_a_flash_warning_once(smsc, rules_config):
    config = make_config(smsc.port, accounts=ACCOUNTS, rules=rules_config)
    async with running_gateway(config) as gw:
        esme = SimulatedEsme("127.0.0.1", gateway_port(gw), "bank", "bankpw")
        await esme.bind()
        text = "妈，我手机掉水里了，这是我新号码，先别打电话，急用钱，帮我转3000块给同学"
        first = await esme.send(ucs2("17012344001", text))
        second = await esme.send(ucs2("17012344001", text))
        assert first.command_status == second.command_status == CommandStatus.ESME_ROK
        await eventually(lambda: len(ordinary(smsc, VICTIM)) == 2 and flashes(smsc, VICTIM))
        assert [sms.text for sms in ordinary(smsc, VICTIM)] == [text, text]
        assert len(flashes(smsc, VICTIM)) == 1  # one pop-up per person per interval, not one per message
        await esme.unbind()


async def test_label_prefixes_international_sms_and_pass_leaves_text_alone(smsc, rules_config):
    config = make_config(smsc.port, accounts=ACCOUNTS, rules=rules_config)
    async with running_gateway(config) as gw:
        esme = SimulatedEsme("127.0.0.1", gateway_port(gw), "bank", "bankpw")
        await esme.bind()
        intl = await esme.send(ucs2("+85291234567", "Hi, see you at 8pm"))
        code = await esme.send(ucs2("10690", "【某银行】您的验证码是123456，5分钟内有效，请勿泄露。"))
        assert intl.command_status == code.command_status == CommandStatus.ESME_ROK
        await eventually(lambda: len(ordinary(smsc, VICTIM)) == 2)
        texts = [sms.text for sms in ordinary(smsc, VICTIM)]
        assert texts == ["【境外短信】Hi, see you at 8pm", "【某银行】您的验证码是123456，5分钟内有效，请勿泄露。"]
        assert flashes(smsc, VICTIM) == []
        await esme.unbind()


async def test_tag_prefixes_the_text_from_a_pack_given_in_config(smsc, tmp_path):
    pack = tmp_path / "tag.yaml"
    pack.write_text(
        textwrap.dedent(
            """\
            pack: local
            rules:
              - id: local.lottery
                title: 中奖领取
                status: stable
                author: test
                category: other
                risk: low
                channel: sms
                detection:
                  sel:
                    text|contains: [恭喜您中奖]
                  condition: sel
                action: tag
            """
        ),
        encoding="utf-8",
    )
    config = make_config(smsc.port, accounts=ACCOUNTS, rules=RulesConfig(packs=(str(pack),), reload_interval=0))
    async with running_gateway(config) as gw:
        esme = SimulatedEsme("127.0.0.1", gateway_port(gw), "bank", "bankpw")
        await esme.bind()
        resp = await esme.send(ucs2("10690", "恭喜您中奖，请点击链接领取"))
        assert resp.command_status == CommandStatus.ESME_ROK
        await eventually(lambda: ordinary(smsc, VICTIM))
        assert [sms.text for sms in ordinary(smsc, VICTIM)] == ["【疑似诈骗】恭喜您中奖，请点击链接领取"]
        await esme.unbind()


async def test_fraud_in_a_mobile_originated_message_is_refused_to_the_smsc(smsc, rules_config):
    config = make_config(smsc.port, accounts=ACCOUNTS, rules=rules_config)
    async with running_gateway(config) as gw:
        esme = SimulatedEsme("127.0.0.1", gateway_port(gw), "bank", "bankpw")
        await esme.bind()
        status = await smsc.inject_mo("8613900000001", "10690", "【公安局】您涉嫌洗钱，请将资金转入安全账户配合调查")
        assert status == CommandStatus.ESME_RX_P_APPN
        assert esme.delivered == []
        await esme.unbind()


async def test_a_concatenated_message_is_inspected_as_a_whole(smsc, rules_config):
    config = make_config(smsc.port, accounts=ACCOUNTS, rules=rules_config)
    async with running_gateway(config) as gw:
        esme = SimulatedEsme("127.0.0.1", gateway_port(gw), "bank", "bankpw")
        await esme.bind()
        # A bank's reminder whose disclaimer is in the first part and "安全账户" in the second passes whole.
        reminder = "【某银行】尊敬的客户：银行工作人员不会以任何理由要求您转账。" + "请妥善保管您的银行卡和密码，" * 4
        reminder += "也不会让您把钱转到所谓“安全账户”。遇到可疑情况请拨打96110。"
        answers = await esme.submit("10690", VICTIM, reminder)
        assert len(answers) > 1
        assert {a.command_status for a in answers} == {CommandStatus.ESME_ROK}
        await eventually(lambda: ordinary(smsc, VICTIM))
        assert [sms.text for sms in ordinary(smsc, VICTIM)] == [reminder]

        # A fraud text whose keyword is cut in two by the part boundary is caught on the part that completes
        # it, and every later part of that message is refused too.
        other = "8613800000052"
        # UCS2 parts carry 67 characters: 安全 end the first part, 账户 begin the second.
        fraud = ("您好，今天下午三点的会议改到明天上午，请大家相互转告，谢谢。" * 3)[:65]
        fraud += "安全账户已开通，请立即把钱转过去配合调查。" * 4
        answers = await esme.submit("17012340000", other, fraud)
        statuses = [a.command_status for a in answers]
        assert statuses[0] == CommandStatus.ESME_ROK  # the first part alone says nothing fraudulent
        assert set(statuses[1:]) == {CommandStatus.ESME_RSUBMITFAIL}
        await eventually(lambda: flashes(smsc, other))  # and the intended victim is warned
        assert not any(sms.text == fraud for sms in smsc.inbox(other))
        await esme.unbind()
