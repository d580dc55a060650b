"""What crosses the SMPP proxy, checked at both ends with independent peers.

Every test runs with smpplib and with smpp34 as the ESME, and with our SimulatedSmsc and with smpp34's
Server as the SMSC: text, concatenation, vendor TLVs, statuses and message ids, receipts and MO routing.
"""

from __future__ import annotations

import pytest
import smpplib.consts
import smpplib.gsm

from simulator.esme import SimulatedEsme
from tests.e2e.smpp_harness import LOCALHOST, Pair, SimSmsc, Sm, Smpp34Smsc, eventually, gateway_port, relay

ESME_KINDS = ("smpplib", "smpp34")
SMSC_KINDS = ("sim", "smpp34")
UCS2 = 0x08
UDHI = 0x40
RECEIPT = 0x04
TAG_RECEIPTED_MESSAGE_ID = 0x001E
TAG_MESSAGE_STATE = 0x0427
SAR_REF, SAR_TOTAL, SAR_SEQ = 0x020C, 0x020E, 0x020F

pytestmark = [
    pytest.mark.parametrize("esme_kind", ESME_KINDS),
    pytest.mark.parametrize("smsc_kind", SMSC_KINDS),
]

CODE = "【工商银行】您的验证码是 123456，五分钟内有效。请勿向任何人透露，谨防诈骗！"
# 300 characters: five UCS2 parts of at most 67 characters.
LONG = ("国家反诈中心提醒您：凡是自称公检法要求转账到安全账户的都是诈骗。" * 10)[:300]


def sar_parts(text: str, ref: int) -> list[tuple[bytes, tuple[tuple[int, bytes], ...]]]:
    """UCS2 parts carried with sar_* TLVs (no UDH), built by hand."""
    data = text.encode("utf-16-be")
    chunks = [data[i : i + 134] for i in range(0, len(data), 134)]
    return [
        (
            chunk,
            (
                (SAR_REF, ref.to_bytes(2, "big")),
                (SAR_TOTAL, bytes((len(chunks),))),
                (SAR_SEQ, bytes((seq,))),
            ),
        )
        for seq, chunk in enumerate(chunks, 1)
    ]


def udh16_parts(text: str, ref: int) -> list[tuple[bytes, tuple[tuple[int, bytes], ...]]]:
    """UCS2 parts with the 16-bit reference UDH (06 08 04 ref_hi ref_lo total seq), built by hand."""
    data = text.encode("utf-16-be")
    chunks = [data[i : i + 132] for i in range(0, len(data), 132)]
    head = bytes((0x06, 0x08, 0x04, ref >> 8, ref & 0xFF, len(chunks)))
    return [(head + bytes((seq,)) + chunk, ()) for seq, chunk in enumerate(chunks, 1)]


def reassemble(parts: list[Sm]) -> str:
    """Join concatenated parts as a handset would (UDH IEI 00 or 08, or sar_* TLVs), independently of ours."""
    numbered: dict[int, bytes] = {}
    totals = set()
    for sm in parts:
        if sm.esm_class & UDHI:
            udhl = sm.short_message[0]
            udh, body = sm.short_message[1 : 1 + udhl], sm.short_message[1 + udhl :]
            assert udh[:2] in (b"\x00\x03", b"\x08\x04"), udh.hex()
            total, seq = udh[-2], udh[-1]
        else:
            total, seq = sm.tlv(SAR_TOTAL)[0], sm.tlv(SAR_SEQ)[0]  # type: ignore[index]
            body = sm.short_message
        totals.add(total)
        numbered[seq] = body
    assert len(totals) == 1
    assert sorted(numbered) == list(range(1, totals.pop() + 1))
    return b"".join(numbered[s] for s in sorted(numbered)).decode("utf-16-be")


async def test_chinese_ucs2_arrives_byte_for_byte(esme_kind, smsc_kind, port_factory):
    raw = CODE.encode("utf-16-be")
    async with relay(esme_kind, smsc_kind, port_factory()) as pair:
        esme = await pair.esme()
        status, message_id = await esme.submit(
            source="10690", destination="8613800000001", short_message=raw, data_coding=UCS2
        )
        assert status == 0
        [got] = pair.smsc.submits
        assert (got.source_addr, got.destination_addr, got.data_coding) == ("10690", "8613800000001", UCS2)
        assert got.short_message == raw
        assert message_id in pair.smsc.accepted_ids()
        if isinstance(pair.smsc, SimSmsc):
            [stored] = pair.smsc.sim.inbox("8613800000001")
            assert stored.text == CODE
            assert stored.message_id == message_id


@pytest.mark.parametrize("method", ["udh", "udh16", "sar"])
async def test_300_chinese_characters_split_and_reassembled_at_the_smsc(esme_kind, smsc_kind, method, port_factory):
    assert len(LONG) == 300
    if method == "udh":
        # smpplib's own splitter: 8-bit reference UDH (05 00 03 ref total seq), esm_class UDHI.
        chunks, coding, esm_class = smpplib.gsm.make_parts(LONG, encoding=smpplib.consts.SMPP_ENCODING_ISO10646)
        assert esm_class == UDHI
        assert coding == UCS2
        parts = [(chunk, ()) for chunk in chunks]
    elif method == "udh16":
        esm_class, parts = UDHI, udh16_parts(LONG, ref=0xBEEF)  # type: ignore[assignment]
    else:
        esm_class, parts = 0, sar_parts(LONG, ref=0x1234)  # type: ignore[assignment]
    assert len(parts) == 5
    async with relay(esme_kind, smsc_kind, port_factory()) as pair:
        esme = await pair.esme()
        for short_message, tlvs in parts:
            status, _ = await esme.submit(
                source="10690",
                destination="8613800000002",
                short_message=short_message,
                data_coding=UCS2,
                esm_class=esm_class,
                tlvs=tlvs,
            )
            assert status == 0
        received = pair.smsc.submits
        # Each part byte for byte: UDH, body and TLVs.
        assert [(sm.short_message, sm.esm_class, sm.tlvs) for sm in received] == [
            (short_message, esm_class, tlvs) for short_message, tlvs in parts
        ]
        assert reassemble(received) == LONG
        if isinstance(pair.smsc, SimSmsc):
            [stored] = pair.smsc.sim.inbox("8613800000002")
            assert stored.text == LONG
            assert stored.parts == 5


async def test_300_chinese_characters_in_message_payload(esme_kind, smsc_kind, port_factory):
    """Over 254 octets in one submit_sm: sm_length 0 and the text in message_payload (0x0424)."""
    payload = LONG.encode("utf-16-be")
    async with relay(esme_kind, smsc_kind, port_factory()) as pair:
        esme = await pair.esme()
        status, message_id = await esme.submit(
            source="10690",
            destination="8613800000005",
            short_message=b"",
            data_coding=UCS2,
            tlvs=((0x0424, payload),),
        )
        assert status == 0
        [got] = pair.smsc.submits
        assert got.short_message == b""
        assert got.tlvs == ((0x0424, payload),)
        if isinstance(pair.smsc, SimSmsc):
            assert pair.smsc.sim.by_id[message_id].text == LONG


VENDOR_TLVS = (
    (0x3FFF, b""),  # empty value
    (0x1400, b"\x00\xff\x00"),  # NULs and 0xFF, not a C string
    (0x0204, b"\x12\x34"),  # a standard TLV between vendor ones: order must hold
    (0x1400, bytes(range(256)) * 2),  # the same vendor tag again, 512 octets
    (0x3FFF, "签名".encode()),  # UTF-8 in a vendor tag
)


async def test_vendor_tlvs_relayed_unchanged_and_in_order(esme_kind, smsc_kind, port_factory):
    async with relay(esme_kind, smsc_kind, port_factory()) as pair:
        esme = await pair.esme()
        status, _ = await esme.submit(
            source="10690", destination="8613800000003", short_message=b"tlv test", tlvs=VENDOR_TLVS
        )
        assert status == 0
        [got] = pair.smsc.submits
        assert got.tlvs == VENDOR_TLVS
        assert got.short_message == b"tlv test"

        # The other way: a mobile-originated deliver_sm towards the ESME.
        reverse = tuple(reversed(VENDOR_TLVS))
        status = await pair.smsc.deliver(
            source="8613800000003", destination="10690", short_message=b"mo with tlvs", tlvs=reverse
        )
        assert status == 0
        await eventually(lambda: esme.deliveries)
        [mo] = esme.deliveries
        assert mo.tlvs == reverse
        assert (mo.source_addr, mo.destination_addr, mo.short_message) == (
            "8613800000003",
            "10690",
            b"mo with tlvs",
        )


async def test_submit_sm_resp_carries_the_smsc_status_and_message_id(esme_kind, smsc_kind, port_factory):
    async with relay(esme_kind, smsc_kind, port_factory()) as pair:
        esme = await pair.esme()
        if isinstance(pair.smsc, Smpp34Smsc):
            pair.smsc.policy = lambda ev: "aB-00017f"  # case and punctuation must survive
        status, message_id = await esme.submit(source="10690", destination="8613800000004", short_message=b"ok")
        assert status == 0
        if isinstance(pair.smsc, Smpp34Smsc):
            assert message_id == "aB-00017f"
        else:
            assert pair.smsc.sim.by_id[message_id].destination == "8613800000004"

        pair.smsc.refuse(0x0B)  # ESME_RINVDSTADR
        status, _ = await esme.submit(source="10690", destination="86138000000040", short_message=b"no")
        assert status == 0x0B
        assert len(pair.smsc.submits) == 2  # the refused one did reach the SMSC: the answer is the SMSC's

        pair.smsc.refuse(0x58)  # ESME_RTHROTTLED from the SMSC itself
        status, _ = await esme.submit(source="10690", destination="8613800000004", short_message=b"slow")
        assert status == 0x58


# --- receipts and MO routing ------------------------------------------------------------------------


def quote(message_id: str, fmt: str) -> str:
    if fmt == "lower":
        return message_id.lower()
    if fmt == "dec":
        return str(int(message_id, 16))
    if fmt == "hex":
        return format(int(message_id), "X")
    return message_id


async def craft_receipts(pair: Pair, fmt: str) -> None:
    """smpp34's Server sends no receipts: send one per accepted submit, by hand, as an SMSC would."""
    smsc = pair.smsc
    assert isinstance(smsc, Smpp34Smsc)
    for index, message_id in sorted(smsc.accepted.items()):
        ev = smsc.events[index]
        if not ev.registered_delivery & 0x01:
            continue
        quoted = quote(message_id, fmt)
        text = f"id:{quoted} sub:001 dlvrd:001 submit date:2611230200 done date:2611230200 stat:DELIVRD err:000"
        status = await smsc.deliver(
            source=ev.destination_addr,
            destination=ev.source_addr,
            short_message=text.encode("ascii") + b" text:",
            esm_class=RECEIPT,
            tlvs=((TAG_RECEIPTED_MESSAGE_ID, quoted.encode("ascii") + b"\x00"), (TAG_MESSAGE_STATE, b"\x02")),
        )
        assert status == 0


@pytest.mark.parametrize("receipt_id_format", ["same", "lower", "dec", "hex"])
async def test_receipts_go_back_to_the_esme_that_sent_the_message(
    esme_kind, smsc_kind, receipt_id_format, port_factory
):
    """same: as the SMSC gave it; lower: a hex id in lower case; dec: a hex id quoted in decimal; hex: a
    decimal id quoted in hexadecimal."""
    smsc_kwargs = {"receipt_id_format": receipt_id_format} if smsc_kind == "sim" else {}
    if smsc_kind == "sim" and receipt_id_format == "hex":
        smsc_kwargs["id_format"] = "dec"
    async with relay(esme_kind, smsc_kind, port_factory(), smsc_kwargs=smsc_kwargs) as pair:
        if isinstance(pair.smsc, Smpp34Smsc) and receipt_id_format == "hex":
            ids = iter(range(4_000_000_001, 4_000_000_100))
            pair.smsc.policy = lambda ev: str(next(ids))
        bank = await pair.esme("bank", "bankpw")
        shop = await pair.esme("shop", "shoppw")
        sent: dict[str, set[str]] = {"bank": set(), "shop": set()}
        for i in range(3):
            for name, esme, source in (("bank", bank, "10690"), ("shop", shop, "10691")):
                status, message_id = await esme.submit(
                    source=source,
                    destination=f"861380000010{i}",
                    short_message=f"{name} {i}".encode(),
                    registered_delivery=1,
                )
                assert status == 0
                sent[name].add(quote(message_id, receipt_id_format))
        if isinstance(pair.smsc, Smpp34Smsc):
            await craft_receipts(pair, receipt_id_format)
        await eventually(lambda: len(bank.deliveries) >= 3 and len(shop.deliveries) >= 3)
        for name, esme, source in (("bank", bank, "10690"), ("shop", shop, "10691")):
            receipts = esme.deliveries
            assert all(r.esm_class & 0x3C == RECEIPT for r in receipts)
            assert {r.destination_addr for r in receipts} == {source}
            quoted = {r.tlv(TAG_RECEIPTED_MESSAGE_ID).rstrip(b"\x00").decode() for r in receipts}  # type: ignore[union-attr]
            assert quoted == sent[name], f"{name} got receipts for {quoted}, sent {sent[name]}"
        assert sent["bank"].isdisjoint(sent["shop"])


async def test_mobile_originated_messages_routed_by_prefix(esme_kind, smsc_kind, port_factory):
    async with relay(esme_kind, smsc_kind, port_factory()) as pair:
        bank = await pair.esme("bank", "bankpw")
        shop = await pair.esme("shop", "shoppw")
        hello = "你好，我想查询余额".encode("utf-16-be")
        status = await pair.smsc.deliver(
            source="8613900000001", destination="1069012345", short_message=hello, data_coding=UCS2
        )
        assert status == 0
        status = await pair.smsc.deliver(source="8613900000002", destination="10691", short_message=b"TD")
        assert status == 0
        await eventually(lambda: bank.deliveries and shop.deliveries)
        [to_bank] = bank.deliveries
        [to_shop] = shop.deliveries
        assert (to_bank.destination_addr, to_bank.short_message, to_bank.data_coding) == (
            "1069012345",
            hello,
            UCS2,
        )
        assert (to_shop.source_addr, to_shop.short_message) == ("8613900000002", b"TD")

        # Nobody's prefix: refused for good, so that the SMSC does not retry forever.
        status = await pair.smsc.deliver(source="8613900000003", destination="10699", short_message=b"?")
        assert status == 0x65  # ESME_RX_P_APPN

        # shop's prefix while no bind of shop is up: try again later.
        await shop.close()
        pair.esmes.remove(shop)
        await eventually(lambda: pair.gw.smpp.registry.count("shop") == 0)  # type: ignore[union-attr]
        status = await pair.smsc.deliver(source="8613900000004", destination="106910001", short_message=b"x")
        assert status == 0x64  # ESME_RX_T_APPN

        # A transmitter bind cannot take deliveries either.
        transmitter = SimulatedEsme(LOCALHOST, gateway_port(pair.gw), "shop", "shoppw", bind_type="transmitter")
        await transmitter.bind()
        status = await pair.smsc.deliver(source="8613900000004", destination="106910001", short_message=b"y")
        assert status == 0x64
        assert transmitter.delivered == []
        await transmitter.unbind()
        assert len(bank.deliveries) == 1
