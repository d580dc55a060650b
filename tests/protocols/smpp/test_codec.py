"""Tests of protocols.smpp.codec: spec vectors, a captured interop trace, field limits and framing.

The vectors live in tests/vectors/smpp/ with their provenance; no PDU octets are written inline here.
"""

from __future__ import annotations

import dataclasses
import os
import random
import shutil
import struct
import subprocess
import xml.etree.ElementTree as ET
from collections import defaultdict, deque
from pathlib import Path
from typing import Any

import pytest
import yaml

from protocols.errors import LocalProtocolError, RemoteProtocolError
from protocols.smpp.codec import InvalidPdu, PduFramer, decode, encode, peek_header
from protocols.smpp.constants import (
    DEFAULT_MAX_PDU_SIZE,
    HEADER_LENGTH,
    MAX_SEQUENCE_NUMBER,
    CommandId,
    CommandStatus,
    Tag,
)
from protocols.smpp.pdu import (
    PDU_CLASSES,
    AlertNotification,
    BindReceiver,
    BindReceiverResp,
    BindTransceiver,
    BindTransceiverResp,
    BindTransmitter,
    BindTransmitterResp,
    CancelSm,
    DataSm,
    DataSmResp,
    DeliverSm,
    DeliverSmResp,
    DestAddress,
    DistributionList,
    Outbind,
    Pdu,
    QuerySm,
    QuerySmResp,
    ReplaceSm,
    SubmitMulti,
    SubmitMultiResp,
    SubmitSm,
    SubmitSmResp,
    Tlv,
    UnsuccessSme,
)

VECTORS = Path(__file__).resolve().parents[2] / "vectors" / "smpp"
S = CommandStatus


def _load(name: str) -> dict[str, Any]:
    with (VECTORS / name).open(encoding="utf-8") as f:
        data: dict[str, Any] = yaml.safe_load(f)
    return data


SPEC: list[dict[str, Any]] = _load("spec.yaml")["vectors"]
TRACE: dict[str, Any] = _load("trace_smpplib_smpp34.yaml")


def octets(vector: dict[str, Any]) -> bytes:
    return bytes.fromhex(vector["hex"])


def spec(name: str) -> dict[str, Any]:
    return next(v for v in SPEC if v["name"] == name)


def _hex(value: str) -> bytes:
    return bytes.fromhex(value)


def expected_pdu(cls: type[Pdu], fields: dict[str, Any]) -> Pdu:
    """The PDU a vector's `fields` describe, built directly from the dataclass (no codec involved)."""
    kwargs: dict[str, Any] = {}
    for key, value in fields.items():
        if key == "tlvs":
            kwargs[key] = tuple(Tlv(tag, _hex(v)) for tag, v in value)
        elif key == "short_message":
            kwargs[key] = _hex(value)
        elif key == "dest_addresses":
            kwargs[key] = tuple(
                DestAddress(d["ton"], d["npi"], d["addr"]) if d["dest_flag"] == 1 else DistributionList(d["name"])
                for d in value
            )
        elif key == "unsuccess_smes":
            kwargs[key] = tuple(UnsuccessSme(**d) for d in value)
        else:
            kwargs[key] = value
    return cls(**kwargs)


def relength(data: bytes | bytearray) -> bytes:
    """The same octets with command_length rewritten to match their length."""
    return struct.pack(">I", len(data)) + bytes(data[4:])


# --- the spec vectors ---------------------------------------------------------------------------------------


def test_spec_vectors_cover_every_command_id() -> None:
    seen = {peek_header(octets(v))[1] for v in SPEC}
    assert seen == set(CommandId)
    assert len(CommandId) == 27


def test_spec_vectors_cover_the_awkward_bodies() -> None:
    multi = decode(octets(spec("submit_multi")))
    assert isinstance(multi, SubmitMulti)
    assert {type(d) for d in multi.dest_addresses} == {DestAddress, DistributionList}
    multi_resp = decode(octets(spec("submit_multi_resp with unsuccess_smes")))
    assert isinstance(multi_resp, SubmitMultiResp)
    assert len(multi_resp.unsuccess_smes) == 2
    data_sm = decode(octets(spec("data_sm with message_payload")))
    assert isinstance(data_sm, DataSm)
    assert data_sm.payload.decode("utf-16-be").startswith("【反诈中心】")
    assert decode(octets(spec("query_sm_resp"))).command_id == CommandId.QUERY_SM_RESP
    assert decode(octets(spec("alert_notification"))).command_id == CommandId.ALERT_NOTIFICATION


@pytest.mark.parametrize("vector", SPEC, ids=[v["name"] for v in SPEC])
def test_spec_vector_has_provenance(vector: dict[str, Any]) -> None:
    assert vector["provenance"].startswith("SMPP v3.4 Issue 1.2 section 4.")
    length = peek_header(octets(vector))[0]
    assert length == len(octets(vector))


@pytest.mark.parametrize("vector", SPEC, ids=[v["name"] for v in SPEC])
def test_spec_vector_decodes_to_its_fields(vector: dict[str, Any]) -> None:
    data = octets(vector)
    cls = PDU_CLASSES[peek_header(data)[1]]
    # The vector names every field of the class, so a default can never hide a decoding slip.
    assert set(vector["fields"]) == {f.name for f in dataclasses.fields(cls) if f.init}
    assert decode(data) == expected_pdu(cls, vector["fields"])


@pytest.mark.parametrize("vector", SPEC, ids=[v["name"] for v in SPEC])
def test_spec_vector_encodes_byte_for_byte(vector: dict[str, Any]) -> None:
    data = octets(vector)
    pdu = expected_pdu(PDU_CLASSES[peek_header(data)[1]], vector["fields"])
    assert encode(pdu) == data
    assert encode(decode(data)) == data


def test_vendor_tlvs_are_kept_byte_exact_and_in_order() -> None:
    data = octets(spec("submit_sm with vendor TLVs in order"))
    pdu = decode(data)
    assert [t.tag for t in pdu.tlvs] == [0x1400, Tag.USER_MESSAGE_REFERENCE, 0x3FFF, 0x1400, Tag.SOURCE_PORT]
    assert pdu.tlvs[0].value == b"\x00\xff\x00"
    assert pdu.tlvs[2].value == b""
    assert pdu.tlv(0x1400) == b"\x00\xff\x00"  # the first of two
    # Relayed under another sequence number, everything after the header is untouched: from the octets
    # it arrived in, and equally when encoded again from its fields.
    relayed = encode(pdu, sequence_number=0x7FFFFFFF)
    assert relayed[HEADER_LENGTH:] == data[HEADER_LENGTH:]
    assert relayed[12:16] == b"\x7f\xff\xff\xff"
    rebuilt = dataclasses.replace(pdu)
    assert rebuilt.wire is None
    assert encode(rebuilt, sequence_number=0x7FFFFFFF) == relayed
    assert peek_header(relayed)[3] == 0x7FFFFFFF


# --- the spec vectors as Wireshark's SMPP dissector reads them ------------------------------------------------

TSHARK_PORT = 2775


def require_peer(program: str) -> str:
    """As tests/conftest.py's: skip without the program, fail instead under AFGW_REQUIRE_PEERS=1."""
    path = shutil.which(program)
    if path is None:
        reason = f"{program} is not installed (Debian package; .ci/run installs it)"
        if os.environ.get("AFGW_REQUIRE_PEERS") == "1":
            pytest.fail(f"AFGW_REQUIRE_PEERS=1 but {reason}")
        pytest.skip(reason)
    return path


def _pcap(pdus: list[bytes]) -> bytes:
    """A classic pcap (LINKTYPE_RAW, IPv4) carrying each PDU in its own TCP segment, 127.0.0.1 to itself."""
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 101)]
    seq = 1
    for i, pdu in enumerate(pdus):
        tcp = struct.pack(">HHIIBBHHH", 40000, TSHARK_PORT, seq, 1, 5 << 4, 0x18, 65535, 0, 0) + pdu
        ip = bytearray(
            struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), i, 0x4000, 64, 6, 0, b"\x7f\0\0\x01", b"\x7f\0\0\x01")
        )
        total = sum(struct.unpack(">10H", ip))
        total = (total & 0xFFFF) + (total >> 16)
        ip[10:12] = struct.pack(">H", ~((total & 0xFFFF) + (total >> 16)) & 0xFFFF)
        packet = bytes(ip) + tcp
        out.append(struct.pack("<IIII", 1_800_000_000 + i, 0, len(packet), len(packet)) + packet)
        seq += len(pdu)
    return b"".join(out)


def _cstr_hex(value: str) -> str:
    return (value.encode("latin-1") + b"\0").hex()


#: Our field names that tshark shows under another name, and masked bit fields (read unmasked).
_TSHARK_MASKED = {
    "esm_class": "smpp.esm.submit.msg_mode",
    "registered_delivery": "smpp.regdel.receipt",
    "replace_if_present_flag": "smpp.replace_if_present_flag",
}
_TSHARK_TIMES = {
    "smpp.schedule_delivery_time",
    "smpp.schedule_delivery_time_r",
    "smpp.validity_period",
    "smpp.validity_period_r",
    "smpp.final_date",
}


def _tshark_expectations(fields: dict[str, Any], data: bytes) -> list[tuple[str, str]]:
    """(tshark field, raw octets as hex) in wire order, from a vector's fields."""
    want = [("smpp.command_length", f"{len(data):08x}"), ("smpp.command_id", data[4:8].hex())]
    want.append(("smpp.sequence_number", f"{fields['sequence_number']:08x}"))
    if data[4] & 0x80:
        want.append(("smpp.command_status", f"{fields['command_status']:08x}"))
    for key, value in fields.items():
        if key in ("sequence_number", "command_status", "tlvs"):
            continue
        if key in ("schedule_delivery_time", "validity_period", "final_date"):
            want.append(("time", _cstr_hex(value)))
        elif key == "short_message":
            message = _hex(value).hex()
            want.append(("smpp.sm_length", f"{len(message) // 2:02x}"))
            if message:
                want.append(("smpp.message", message))
        elif key in ("dest_addresses", "unsuccess_smes"):
            for d in value:
                if d.get("dest_flag", 1) == 2:
                    want.append(("smpp.dl_name", _cstr_hex(d["name"])))
                    continue
                want += [("smpp.dest_addr_ton", f"{d['ton']:02x}"), ("smpp.dest_addr_npi", f"{d['npi']:02x}")]
                want.append(("smpp.destination_addr", _cstr_hex(d["addr"])))
                if "error_status_code" in d:
                    want.append(("smpp.error_status_code", f"{d['error_status_code']:08x}"))
        elif key in _TSHARK_MASKED:
            want.append((_TSHARK_MASKED[key], f"{value:02x}"))
        elif isinstance(value, str):
            if value:  # tshark leaves out some empty C-Octet Strings
                want.append((f"smpp.{key}", _cstr_hex(value)))
        else:
            want.append((f"smpp.{key}", f"{value:02x}"))
    for tag, value in fields["tlvs"]:
        want.append(("tlv", f"{tag:04x}{len(_hex(value)):04x}{_hex(value).hex()}"))
    return want


@pytest.mark.peer("tshark")
def test_spec_vectors_agree_with_wiresharks_smpp_dissector(tmp_path: Path) -> None:
    tshark = require_peer("tshark")
    pdus = [octets(v) for v in SPEC]
    capture = tmp_path / "spec.pcap"
    capture.write_bytes(_pcap(pdus))
    pdml = subprocess.run(
        [tshark, "-n", "-r", str(capture), "-d", f"tcp.port=={TSHARK_PORT},smpp", "-T", "pdml"],
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout
    assert b"_ws.malformed" not in pdml
    root = ET.fromstring(pdml)
    protos = [p for packet in root.iter("packet") for p in packet.iter("proto") if p.get("name") == "smpp"]
    assert len(protos) == len(SPEC)
    for vector, proto in zip(SPEC, protos, strict=True):
        assert not [e for e in proto.iter("field") if e.get("name", "").startswith("_ws.expert")], vector["name"]
        shown: defaultdict[str, deque[str]] = defaultdict(deque)
        for element in proto.iter("field"):
            name = element.get("name", "")
            raw = element.get("unmaskedvalue") or element.get("value") or ""
            if name in _TSHARK_TIMES:
                name = "time"  # tshark labels times by format; submit_multi's validity_period as a schedule
            elif name == "smpp.opt_param":
                raw = "".join(k.get("value") or "" for k in element if k.tag == "field")
                name = "tlv"
            shown[name].append(raw)
        for name, raw in _tshark_expectations(vector["fields"], octets(vector)):
            assert shown[name], (vector["name"], name, "not shown")
            assert shown[name].popleft() == raw, (vector["name"], name)
        assert not shown["tlv"], vector["name"]


# --- the captured trace (smpplib client -> smpp34 server) ---------------------------------------------------


def test_trace_has_provenance() -> None:
    assert TRACE["provenance"] == (
        "captured on loopback: smpplib 2.2.4 client -> smpp34 1.5.0 server, tshark 4.0.17, 2026-11-23"
    )
    assert [p["direction"] for p in TRACE["pdus"]] == ["esme->smsc", "smsc->esme"] * 4 + ["esme->smsc"]


@pytest.mark.parametrize("entry", TRACE["pdus"], ids=[f"{i}-{p['name']}" for i, p in enumerate(TRACE["pdus"])])
def test_trace_pdu_decodes_as_tshark_did_and_round_trips(entry: dict[str, Any]) -> None:
    data = octets(entry)
    pdu = decode(data)
    assert CommandId(pdu.command_id).name.lower() == entry["name"]
    for key, want in entry["tshark"].items():
        got = getattr(pdu, key)
        if key == "tlvs":
            want = tuple(Tlv(tag, _hex(v)) for tag, v in want)
        elif key == "short_message":
            want = _hex(want)
        assert got == want, key
    assert encode(pdu) == data


def test_trace_carries_ucs2_chinese_and_the_vendor_tag() -> None:
    ucs2 = decode(octets(TRACE["pdus"][4]))
    assert isinstance(ucs2, SubmitSm)
    assert ucs2.data_coding == 8
    assert ucs2.short_message.decode("utf-16-be") == "您好，请勿向陌生人转账"
    assert ucs2.tlvs == (Tlv(0x1400, b"afgw"),)


def test_trace_stream_framed_one_byte_at_a_time() -> None:
    stream = b"".join(octets(p) for p in TRACE["pdus"])
    framer = PduFramer()
    out = []
    for i in range(len(stream)):
        framer.feed(stream[i : i + 1])
        while (raw := framer.next_pdu()) is not None:
            out.append(raw)
    assert out == [octets(p) for p in TRACE["pdus"]]
    assert framer.buffered == 0


# --- C-Octet String limits ----------------------------------------------------------------------------------

MARK = "Zq7"  # a value that occurs nowhere else in the PDUs below

#: (a PDU with MARK in the field, field, maximum length including the NUL, status that answers it)
#: Maximum lengths from the PDU tables of SMPP 3.4 section 4; statuses from section 5.1.3.
CSTR_LIMITS: list[tuple[Pdu, str, int, int]] = [
    *(
        (cls(system_id=MARK), "system_id", 16, S.ESME_RINVSYSID)
        for cls in (BindTransmitter, BindReceiver, BindTransceiver)
    ),
    (BindTransmitter(password=MARK), "password", 9, S.ESME_RINVPASWD),
    (BindReceiver(system_type=MARK), "system_type", 13, S.ESME_RINVSYSTYP),
    (BindTransceiver(address_range=MARK), "address_range", 41, S.ESME_RINVPARLEN),
    *(
        (cls(system_id=MARK), "system_id", 16, S.ESME_RINVSYSID)
        for cls in (BindTransmitterResp, BindReceiverResp, BindTransceiverResp)
    ),
    (Outbind(system_id=MARK), "system_id", 16, S.ESME_RINVSYSID),
    (Outbind(password=MARK), "password", 9, S.ESME_RINVPASWD),
    *(
        (cls(**{field: MARK}), field, size, status)  # type: ignore[arg-type]
        for cls in (SubmitSm, DeliverSm)
        for field, size, status in (
            ("service_type", 6, S.ESME_RINVSERTYP),
            ("source_addr", 21, S.ESME_RINVSRCADR),
            ("destination_addr", 21, S.ESME_RINVDSTADR),
            ("schedule_delivery_time", 17, S.ESME_RINVSCHED),
            ("validity_period", 17, S.ESME_RINVEXPIRY),
        )
    ),
    *(
        (cls(message_id=MARK), "message_id", 65, S.ESME_RINVMSGID)
        for cls in (SubmitSmResp, DeliverSmResp, DataSmResp, SubmitMultiResp, QuerySmResp, QuerySm, CancelSm)
    ),
    (ReplaceSm(message_id=MARK), "message_id", 65, S.ESME_RINVMSGID),
    (DataSm(service_type=MARK), "service_type", 6, S.ESME_RINVSERTYP),
    (DataSm(source_addr=MARK), "source_addr", 65, S.ESME_RINVSRCADR),
    (DataSm(destination_addr=MARK), "destination_addr", 65, S.ESME_RINVDSTADR),
    (
        SubmitMulti(service_type=MARK, dest_addresses=(DistributionList("x"),)),
        "service_type",
        6,
        S.ESME_RINVSERTYP,
    ),
    (
        SubmitMulti(source_addr=MARK, dest_addresses=(DistributionList("x"),)),
        "source_addr",
        21,
        S.ESME_RINVSRCADR,
    ),
    (SubmitMulti(dest_addresses=(DestAddress(1, 1, MARK),)), "dest_address", 21, S.ESME_RINVDSTADR),
    (SubmitMulti(dest_addresses=(DistributionList(MARK),)), "dl_name", 21, S.ESME_RINVDLNAME),
    (
        SubmitMulti(schedule_delivery_time=MARK, dest_addresses=(DistributionList("x"),)),
        "schedule_delivery_time",
        17,
        S.ESME_RINVSCHED,
    ),
    (
        SubmitMulti(validity_period=MARK, dest_addresses=(DistributionList("x"),)),
        "validity_period",
        17,
        S.ESME_RINVEXPIRY,
    ),
    (
        SubmitMultiResp(unsuccess_smes=(UnsuccessSme(1, 1, MARK, 0),)),
        "unsuccess_sme addr",
        21,
        S.ESME_RINVDSTADR,
    ),
    (QuerySm(source_addr=MARK), "source_addr", 21, S.ESME_RINVSRCADR),
    (QuerySmResp(final_date=MARK), "final_date", 17, S.ESME_RINVPARLEN),
    (CancelSm(service_type=MARK), "service_type", 6, S.ESME_RINVSERTYP),
    (CancelSm(source_addr=MARK), "source_addr", 21, S.ESME_RINVSRCADR),
    (CancelSm(destination_addr=MARK), "destination_addr", 21, S.ESME_RINVDSTADR),
    (ReplaceSm(source_addr=MARK), "source_addr", 21, S.ESME_RINVSRCADR),
    (ReplaceSm(schedule_delivery_time=MARK), "schedule_delivery_time", 17, S.ESME_RINVSCHED),
    (ReplaceSm(validity_period=MARK), "validity_period", 17, S.ESME_RINVEXPIRY),
    (AlertNotification(source_addr=MARK), "source_addr", 65, S.ESME_RINVSRCADR),
    (AlertNotification(esme_addr=MARK), "esme_addr", 65, S.ESME_RINVDSTADR),
]
CSTR_IDS = [f"{type(p).__name__}.{field}" for p, field, _, _ in CSTR_LIMITS]


def _with_value(template: Pdu, value: str, seq: int = 77) -> bytes:
    """The template's octets with MARK replaced by ``value`` (which may break the limit)."""
    data = encode(template, seq)
    marked = MARK.encode() + b"\0"
    assert data.count(marked) == 1
    return relength(data.replace(marked, value.encode("latin-1") + b"\0"))


@pytest.mark.parametrize(("template", "field", "size", "status"), CSTR_LIMITS, ids=CSTR_IDS)
def test_cstr_at_its_maximum_is_accepted(template: Pdu, field: str, size: int, status: int) -> None:
    longest = "9" * (size - 1)
    pdu = decode(_with_value(template, longest))
    assert encode(pdu, 77) == _with_value(template, longest)


@pytest.mark.parametrize(("template", "field", "size", "status"), CSTR_LIMITS, ids=CSTR_IDS)
def test_cstr_over_its_maximum_is_answered_with_its_status(template: Pdu, field: str, size: int, status: int) -> None:
    with pytest.raises(InvalidPdu) as info:
        decode(_with_value(template, "9" * size))
    assert info.value.answer == status
    assert info.value.command_id == template.command_id
    assert info.value.sequence_number == 77
    assert not info.value.close


@pytest.mark.parametrize(("template", "field", "size", "status"), CSTR_LIMITS, ids=CSTR_IDS)
def test_encode_refuses_an_over_long_cstr(template: Pdu, field: str, size: int, status: int) -> None:
    attr = {"dest_address": "dest_addresses", "dl_name": "dest_addresses"}.get(field, field)
    if field == "dest_address":
        bad = dataclasses.replace(template, dest_addresses=(DestAddress(1, 1, "9" * size),))  # type: ignore[call-arg]
    elif field == "dl_name":
        bad = dataclasses.replace(template, dest_addresses=(DistributionList("9" * size),))  # type: ignore[call-arg]
    elif field == "unsuccess_sme addr":
        bad = dataclasses.replace(template, unsuccess_smes=(UnsuccessSme(1, 1, "9" * size, 0),))  # type: ignore[call-arg]
    else:
        bad = dataclasses.replace(template, **{attr: "9" * size})  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError):
        encode(bad)


# --- other malformed bodies ---------------------------------------------------------------------------------


def test_sm_length_past_the_end_is_rinvmsglen() -> None:
    data = bytearray(octets(spec("submit_sm")))  # no TLVs: short_message ends the PDU
    sm_length_at = len(data) - len(b"Hello from SMPP 3.4") - 1
    assert data[sm_length_at] == len(b"Hello from SMPP 3.4")
    for bad_length in (20, 200, 254, 255):
        data[sm_length_at] = bad_length
        with pytest.raises(InvalidPdu) as info:
            decode(bytes(data))
        assert info.value.answer == S.ESME_RINVMSGLEN
        assert info.value.sequence_number == 7


def test_sm_length_over_254_is_rinvmsglen_even_when_the_octets_are_there() -> None:
    base = encode(SubmitSm(sequence_number=3, short_message=b"x"))
    data = bytearray(base[:-2]) + bytes([255]) + b"x" * 255
    with pytest.raises(InvalidPdu) as info:
        decode(relength(data))
    assert info.value.answer == S.ESME_RINVMSGLEN


#: Vectors without TLVs, cut short inside their mandatory body; where the cut falls inside
#: short_message's octets the answer is ESME_RINVMSGLEN instead, so those cuts are left out.
TRUNCATABLE = [
    "bind_transmitter",
    "bind_receiver",
    "outbind",
    "submit_sm",
    "submit_multi",
    "submit_multi_resp with unsuccess_smes",
    "deliver_sm_resp",
    "query_sm",
    "query_sm_resp",
    "cancel_sm",
    "replace_sm",
]


@pytest.mark.parametrize("name", TRUNCATABLE)
def test_truncated_mandatory_field_is_rinvcmdlen(name: str) -> None:
    data = octets(spec(name))
    pdu = decode(data)
    message = getattr(pdu, "short_message", b"")
    first_message_octet = len(data) - len(message)
    is_response = bool(pdu.command_id & 0x80000000)
    for cut in range(HEADER_LENGTH, len(data)):
        if message and cut >= first_message_octet:
            continue
        if is_response and cut == HEADER_LENGTH:
            continue  # an empty-bodied response is allowed (next test)
        with pytest.raises(InvalidPdu) as info:
            decode(relength(data[:cut]))
        assert info.value.answer == S.ESME_RINVCMDLEN, cut
        assert info.value.command_id == pdu.command_id
        assert info.value.sequence_number == pdu.sequence_number
        assert not info.value.close


def test_submit_multi_with_zero_destinations_or_a_bad_dest_flag() -> None:
    data = bytearray(octets(spec("submit_multi")))
    count_at = HEADER_LENGTH + 1 + 2 + len("12381") + 1
    assert data[count_at] == 3
    data[count_at] = 0
    with pytest.raises(InvalidPdu) as info:
        decode(bytes(data))
    assert info.value.answer == S.ESME_RINVNUMDESTS
    data[count_at] = 3
    data[count_at + 1] = 3  # dest_flag 3
    with pytest.raises(InvalidPdu) as info:
        decode(bytes(data))
    assert info.value.answer == S.ESME_RINVDESTFLAG


@pytest.mark.parametrize("junk", ["01", "0102", "140000", "14000005aabb", "0204ffff", "00000001"])
def test_bad_tlv_stream_is_rinvoptparstream(junk: str) -> None:
    data = relength(octets(spec("submit_sm")) + bytes.fromhex(junk))
    with pytest.raises(InvalidPdu) as info:
        decode(data)
    assert info.value.answer == S.ESME_RINVOPTPARSTREAM
    assert info.value.command_id == CommandId.SUBMIT_SM
    assert info.value.sequence_number == 7
    assert not info.value.close


@pytest.mark.parametrize(
    ("tag", "value"),
    [
        (Tag.USER_MESSAGE_REFERENCE, b"\x07"),
        (Tag.SAR_MSG_REF_NUM, b"\x00\x00\x01"),
        (Tag.SAR_TOTAL_SEGMENTS, b""),
        (Tag.DEST_ADDR_SUBUNIT, b"\x01\x01"),
        (Tag.QOS_TIME_TO_LIVE, b"\x00\x01"),
        (Tag.NETWORK_ERROR_CODE, b"\x03\x00"),
        (Tag.ALERT_ON_MESSAGE_DELIVERY, b"\x01"),
    ],
)
def test_wrong_fixed_tlv_length_is_rinvparlen(tag: int, value: bytes) -> None:
    data = encode(SubmitSm(sequence_number=5, tlvs=(Tlv(0x1400, b"v"), Tlv(tag, value))))
    with pytest.raises(InvalidPdu) as info:
        decode(data)
    assert info.value.answer == S.ESME_RINVPARLEN
    assert info.value.sequence_number == 5


def test_tlv_lengths_are_not_policed_in_responses() -> None:
    # A response cannot be answered with a status; what the peer sent is passed on untouched.
    data = encode(SubmitSmResp(sequence_number=5, message_id="a", tlvs=(Tlv(Tag.NETWORK_ERROR_CODE, b"\x03"),)))
    assert decode(data).tlvs == (Tlv(Tag.NETWORK_ERROR_CODE, b"\x03"),)


@pytest.mark.parametrize("command_id", [0x00000000, 0x0000000A, 0x00000099, 0x80000099, 0x00000104, 0xFFFFFFFF])
def test_unknown_command_id_is_rinvcmdid(command_id: int) -> None:
    data = struct.pack(">IIII", 16, command_id, 0, 4242)
    with pytest.raises(InvalidPdu) as info:
        decode(data)
    assert isinstance(info.value, RemoteProtocolError)
    assert info.value.answer == S.ESME_RINVCMDID
    assert info.value.command_id == command_id
    assert info.value.sequence_number == 4242
    assert not info.value.close


def test_decode_refuses_a_length_mismatch_and_a_short_header() -> None:
    data = octets(spec("enquire_link"))
    for bad in (data[:15], data + b"\0", data[:-1]):
        with pytest.raises(InvalidPdu) as info:
            decode(bad)
        assert info.value.close
        assert info.value.answer == S.ESME_RINVCMDLEN


# --- responses without a body -------------------------------------------------------------------------------


def test_submit_sm_resp_with_error_status_has_no_body() -> None:
    assert encode(SubmitSmResp(sequence_number=8, command_status=S.ESME_RTHROTTLED)) == octets(
        spec("submit_sm_resp error without body")
    )
    # With optional parameters (SMPP 5.0 style) the body is kept so that they can follow it.
    with_tlv = encode(
        SubmitSmResp(
            sequence_number=8,
            command_status=S.ESME_RSYSERR,
            tlvs=(Tlv(Tag.NETWORK_ERROR_CODE, b"\x03\x00\x01"),),
        )
    )
    assert len(with_tlv) == HEADER_LENGTH + 1 + 4 + 3


def test_submit_sm_resp_error_with_a_message_id_relays_it() -> None:
    # Peers send a message_id with an error anyway; a relay must not lose it (fix in codec.encode).
    pdu = SubmitSmResp(sequence_number=8, command_status=S.ESME_RSUBMITFAIL, message_id="abc")
    assert decode(encode(pdu)) == pdu


@pytest.mark.parametrize("command_id", sorted(c for c in CommandId if c & 0x80000000))
def test_empty_bodied_response_decodes_to_defaults(command_id: int) -> None:
    data = struct.pack(">IIII", 16, command_id, S.ESME_RBINDFAIL, 9)
    pdu = decode(data)
    cls = PDU_CLASSES[command_id]
    assert pdu == cls(sequence_number=9, command_status=S.ESME_RBINDFAIL)
    assert decode(encode(pdu)) == pdu


# --- encode refuses what the wire cannot carry --------------------------------------------------------------


@pytest.mark.parametrize(
    "pdu",
    [
        SubmitSm(short_message=b"x" * 255),
        SubmitSm(source_addr="12\x0034"),
        SubmitSm(source_addr="诈骗"),
        SubmitSm(esm_class=256),
        SubmitSm(data_coding=-1),
        SubmitMulti(),
        SubmitMulti(dest_addresses=(DestAddress(1, 1, "1"),) * 256),
        SubmitMulti(dest_addresses=(DestAddress(256, 1, "1"),)),
        SubmitMultiResp(unsuccess_smes=(UnsuccessSme(1, 1, "1", 1 << 32),)),
        SubmitSm(tlvs=(Tlv(0x1400, b"x" * 0x10000),)),
        SubmitSm(tlvs=(Tlv(0x10000, b"x"),)),
        SubmitSm(sequence_number=-1),
        SubmitSm(sequence_number=1 << 32),
        SubmitSm(command_status=-1),
    ],
    ids=lambda pdu: type(pdu).__name__,
)
def test_encode_refuses_what_the_wire_cannot_carry(pdu: Pdu) -> None:
    with pytest.raises(LocalProtocolError):
        encode(pdu)


def test_encode_uses_the_sequence_number_given() -> None:
    data = encode(decode(octets(spec("enquire_link"))), sequence_number=MAX_SEQUENCE_NUMBER)
    assert peek_header(data) == (16, CommandId.ENQUIRE_LINK, 0, MAX_SEQUENCE_NUMBER)


# --- framing ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("length", [0, 1, 15, DEFAULT_MAX_PDU_SIZE + 1, 0x10000, 0xFFFFFFFF])
def test_framer_refuses_a_command_length_out_of_range(length: int) -> None:
    framer = PduFramer()
    framer.feed(struct.pack(">I", length)[:3])
    assert framer.next_pdu() is None  # not decided before four octets
    framer.feed(struct.pack(">I", length)[3:])
    with pytest.raises(InvalidPdu) as info:
        framer.next_pdu()
    assert info.value.close
    assert info.value.answer == S.ESME_RINVCMDLEN
    framer.feed(struct.pack(">III", CommandId.SUBMIT_SM, 0, 31))
    with pytest.raises(InvalidPdu) as info:
        framer.next_pdu()
    assert info.value.sequence_number == 31


def test_framer_accepts_the_bounds() -> None:
    framer = PduFramer()
    smallest = octets(spec("enquire_link"))
    room = DEFAULT_MAX_PDU_SIZE - len(encode(SubmitSm(tlvs=(Tlv(0x1400, b""),))))
    largest = encode(SubmitSm(tlvs=(Tlv(0x1400, b"x" * room),)))
    assert len(largest) == DEFAULT_MAX_PDU_SIZE
    framer.feed(smallest + largest)
    assert framer.next_pdu() == smallest
    assert framer.next_pdu() == largest
    assert framer.next_pdu() is None
    small = PduFramer(max_pdu_size=64)
    small.feed(struct.pack(">I", 65))
    with pytest.raises(InvalidPdu):
        small.next_pdu()


def _frame_all(framer: PduFramer, chunks: list[bytes]) -> list[bytes]:
    out = []
    for chunk in chunks:
        framer.feed(chunk)
        while (raw := framer.next_pdu()) is not None:
            out.append(raw)
    return out


def test_framer_one_byte_at_a_time_gives_the_same_pdus() -> None:
    pdus = [octets(v) for v in SPEC]
    stream = b"".join(pdus)
    assert _frame_all(PduFramer(), [stream]) == pdus
    assert _frame_all(PduFramer(), [stream[i : i + 1] for i in range(len(stream))]) == pdus
    rng = random.Random(1999)
    for _ in range(20):
        cuts = sorted(rng.sample(range(1, len(stream)), 40))
        chunks = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
        framer = PduFramer()
        assert _frame_all(framer, chunks) == pdus
        assert framer.buffered == 0


# --- no password in a repr ----------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", [BindTransmitter, BindReceiver, BindTransceiver, Outbind])
def test_repr_of_bind_pdus_never_contains_the_password(cls: type[Pdu]) -> None:
    secret = "S3cr3tPw"
    pdu = cls(system_id="afgw", password=secret)  # type: ignore[call-arg]
    assert pdu.password == secret  # type: ignore[attr-defined]
    assert secret not in repr(pdu)
    assert secret not in str(pdu)
    assert "afgw" in repr(pdu)
    assert secret not in repr(decode(encode(pdu)))
    assert secret not in repr([pdu])  # containers use repr too


@pytest.mark.parametrize("name", ["bind_transmitter", "bind_receiver", "bind_transceiver", "outbind"])
def test_repr_of_decoded_bind_vectors_hides_the_password(name: str) -> None:
    vector = spec(name)
    password = vector["fields"]["password"]
    assert password not in repr(decode(octets(vector)))


def test_a_changed_pdu_is_encoded_from_its_fields_not_its_old_octets() -> None:
    data = octets(spec("submit_sm with vendor TLVs in order"))
    pdu = decode(data)
    assert pdu.wire == data
    changed = dataclasses.replace(pdu, short_message=b"changed")
    assert changed.wire is None
    assert decode(encode(changed)).short_message == b"changed"
    assert decode(encode(changed)).tlvs == pdu.tlvs
