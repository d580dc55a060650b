"""Rewriting a message's text for a tag or a label (【疑似诈骗】, 【境外短信】) without breaking it.

Only the first part of a concatenated message carries the prefix, so the handset shows it once at the
top. When the prefix cannot be written in the message's alphabet (a Chinese prefix on a GSM 7-bit
text), the part is re-encoded as UCS2, keeping message class 0 if it had it. When the result no longer
fits one short message, it moves to message_payload and the SMSC segments it, as SMPP 3.4 allows.
"""

from __future__ import annotations

import dataclasses

from protocols.smpp import text
from protocols.smpp.constants import MAX_SHORT_MESSAGE, DataCoding, EsmClass, Tag
from protocols.smpp.pdu import DataSm, DeliverSm, SubmitMulti, SubmitSm, Tlv

Rewritable = SubmitSm | DeliverSm | SubmitMulti | DataSm

#: Octets a single short message carries to the handset (GSM 03.40).
SINGLE_SM_OCTETS = 140
_GSM7 = {DataCoding.SMSC_DEFAULT, DataCoding.GSM7_CLASS0}
_UCS2 = {DataCoding.UCS2, DataCoding.UCS2_CLASS0}


def _encode_like(data_coding: int, value: str) -> tuple[int, bytes]:
    """``value`` in the message's own alphabet, or in UCS2 (same message class) when it cannot be."""
    try:
        if data_coding in _GSM7:
            return data_coding, text.gsm7_encode(value)
        if data_coding == DataCoding.LATIN1:
            return data_coding, value.encode("latin-1")
        if data_coding == DataCoding.IA5:
            return data_coding, value.encode("ascii")
    except ValueError:
        pass
    flash = data_coding in (DataCoding.GSM7_CLASS0, DataCoding.UCS2_CLASS0)
    if data_coding in _UCS2 or data_coding in _GSM7 or data_coding in (DataCoding.LATIN1, DataCoding.IA5):
        return (DataCoding.UCS2_CLASS0 if flash else DataCoding.UCS2), value.encode("utf-16-be", "replace")
    raise ValueError(f"data_coding {data_coding:#04x} is not text")


def with_prefix(pdu: Rewritable, prefix: str) -> Rewritable:
    """The same message with ``prefix`` before its text; other fields and TLVs unchanged."""
    in_payload = not getattr(pdu, "short_message", b"") and pdu.tlv(Tag.MESSAGE_PAYLOAD) is not None
    raw = pdu.payload
    info, body = text.parse_concat(raw, pdu.esm_class, pdu.tlvs)
    if info is not None and info.seq != 1:
        return pdu
    udh = raw[: len(raw) - len(body)] if pdu.esm_class & EsmClass.UDHI else b""
    try:
        data_coding, encoded = _encode_like(pdu.data_coding, prefix + text.decode(body, pdu.data_coding))
    except ValueError:
        return pdu  # binary content: nothing a person reads, nothing to prefix
    new = udh + encoded
    tlvs = tuple(t for t in pdu.tlvs if t.tag != Tag.MESSAGE_PAYLOAD)
    if isinstance(pdu, DataSm) or in_payload or len(new) > min(SINGLE_SM_OCTETS, MAX_SHORT_MESSAGE):
        tlvs = (*tlvs, Tlv(Tag.MESSAGE_PAYLOAD, new))
        if isinstance(pdu, DataSm):
            return dataclasses.replace(pdu, data_coding=data_coding, tlvs=tlvs)
        return dataclasses.replace(pdu, data_coding=data_coding, short_message=b"", tlvs=tlvs)
    return dataclasses.replace(pdu, data_coding=data_coding, short_message=new, tlvs=tlvs)
