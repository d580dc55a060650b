"""Byte-exact encoding and decoding of SMPP 3.4 PDUs, and stream framing.

``decode`` turns one complete PDU into a ``Pdu`` or raises ``InvalidPdu``, which says what to answer:
the response that matches the request with the status that names the fault (ESME_RINVSRCADR for a
source_addr that is too long, ESME_RINVMSGLEN for an sm_length that runs past the body, ...), or a
generic_nack with ESME_RINVCMDID for a command nobody defined. ``PduFramer`` cuts a TCP byte stream
into PDUs and refuses a command_length outside 16..max_pdu_size, after which the stream cannot be
trusted and the connection must close.
"""

from __future__ import annotations

import dataclasses
import struct
from collections.abc import Callable
from typing import Any

from protocols.errors import LocalProtocolError, RemoteProtocolError
from protocols.smpp.constants import (
    DEFAULT_MAX_PDU_SIZE,
    HEADER_LENGTH,
    MAX_SHORT_MESSAGE,
    RESPONSE_BIT,
    CommandId,
    CommandStatus,
    Tag,
)
from protocols.smpp.pdu import (
    PDU_CLASSES,
    DestAddress,
    DistributionList,
    Field,
    Kind,
    Pdu,
    Tlv,
    UnsuccessSme,
)

_HEADER = struct.Struct(">IIII")
_TAG_LEN = struct.Struct(">HH")
_U32 = struct.Struct(">I")
#: ``Tlv(tag, value)`` without the Python-level ``__new__`` a NamedTuple's call goes through.
_new_tlv = tuple.__new__

#: Standard tags whose value has a fixed length (SMPP 3.4 section 5.3.2); a request that gives them
#: another length is answered ESME_RINVPARLEN. Vendor and variable-length tags pass unchecked.
_FIXED_TLV_LENGTH: dict[int, int] = {
    Tag.DEST_ADDR_SUBUNIT: 1,
    Tag.DEST_NETWORK_TYPE: 1,
    Tag.DEST_BEARER_TYPE: 1,
    Tag.DEST_TELEMATICS_ID: 2,
    Tag.SOURCE_ADDR_SUBUNIT: 1,
    Tag.SOURCE_NETWORK_TYPE: 1,
    Tag.SOURCE_BEARER_TYPE: 1,
    Tag.SOURCE_TELEMATICS_ID: 1,
    Tag.QOS_TIME_TO_LIVE: 4,
    Tag.PAYLOAD_TYPE: 1,
    Tag.MS_MSG_WAIT_FACILITIES: 1,
    Tag.PRIVACY_INDICATOR: 1,
    Tag.USER_MESSAGE_REFERENCE: 2,
    Tag.USER_RESPONSE_CODE: 1,
    Tag.SOURCE_PORT: 2,
    Tag.DESTINATION_PORT: 2,
    Tag.SAR_MSG_REF_NUM: 2,
    Tag.LANGUAGE_INDICATOR: 1,
    Tag.SAR_TOTAL_SEGMENTS: 1,
    Tag.SAR_SEGMENT_SEQNUM: 1,
    Tag.SC_INTERFACE_VERSION: 1,
    Tag.CALLBACK_NUM_PRES_IND: 1,
    Tag.NUMBER_OF_MESSAGES: 1,
    Tag.DPF_RESULT: 1,
    Tag.SET_DPF: 1,
    Tag.MS_AVAILABILITY_STATUS: 1,
    Tag.NETWORK_ERROR_CODE: 3,
    Tag.DELIVERY_FAILURE_REASON: 1,
    Tag.MORE_MESSAGES_TO_SEND: 1,
    Tag.MESSAGE_STATE: 1,
    Tag.USSD_SERVICE_OP: 1,
    Tag.DISPLAY_TIME: 1,
    Tag.SMS_SIGNAL: 2,
    Tag.MS_VALIDITY: 1,
    Tag.ALERT_ON_MESSAGE_DELIVERY: 0,
    Tag.ITS_REPLY_TYPE: 1,
    Tag.ITS_SESSION_INFO: 2,
}

#: "The submit_sm_resp PDU Body is not returned if the command_status field contains a non-zero
#: value" (SMPP 3.4 section 4.4.2). Peers that send one anyway are still understood.
_BODYLESS_ON_ERROR = frozenset({CommandId.SUBMIT_SM_RESP})


class InvalidPdu(RemoteProtocolError):
    """A PDU the peer sent cannot be accepted.

    ``answer`` is the command_status to put in the reply; ``command_id`` and ``sequence_number`` say
    which request it answers (the reply is that request's response, or generic_nack when there is none).
    """

    def __init__(
        self,
        message: str,
        *,
        answer: int,
        command_id: int = 0,
        sequence_number: int = 0,
        close: bool = False,
    ) -> None:
        super().__init__(message, answer=answer, close=close)
        self.command_id = command_id
        self.sequence_number = sequence_number


# --- decoding -----------------------------------------------------------------------------------------


def decode(data: bytes) -> Pdu:
    """Decode exactly one PDU; ``len(data)`` must equal its command_length."""
    size = len(data)
    if size < HEADER_LENGTH:
        raise InvalidPdu("PDU shorter than its header", answer=CommandStatus.ESME_RINVCMDLEN, close=True)
    length, command_id, status, seq = _HEADER.unpack_from(data)
    # The common case in one lookup: a PDU with a body, of a command decoded before.
    known = _BY_COMMAND_ID.get(command_id)
    if known is not None and length == size > HEADER_LENGTH:
        return known[0](data, command_id, status, seq, known[1])
    if length != size:
        raise InvalidPdu(
            f"command_length {length} does not match the {len(data)} octets received",
            answer=CommandStatus.ESME_RINVCMDLEN,
            command_id=command_id,
            sequence_number=seq,
            close=True,
        )
    cls = PDU_CLASSES.get(command_id)
    if cls is None:
        raise InvalidPdu(
            f"unknown command_id {command_id:#010x}",
            answer=CommandStatus.ESME_RINVCMDID,
            command_id=command_id,
            sequence_number=seq,
        )
    is_response = bool(command_id & RESPONSE_BIT)
    if is_response and len(data) == HEADER_LENGTH:
        # Responses may omit their body (always so on error for some commands): take the defaults.
        pdu = cls(sequence_number=seq, command_status=status)
        object.__setattr__(pdu, "wire", bytes(data))
        return pdu
    decoder = _DECODERS.get(cls) or _decoder(cls)
    _BY_COMMAND_ID[command_id] = (decoder, not is_response)
    return decoder(data, command_id, status, seq, not is_response)


def _truncated(command_id: int, seq: int, field: Field) -> InvalidPdu:
    return InvalidPdu(
        f"body ends inside mandatory field {field.name}",
        answer=CommandStatus.ESME_RINVCMDLEN,
        command_id=command_id,
        sequence_number=seq,
    )


def _decode_cstr(data: bytes, pos: int, field: Field, command_id: int, seq: int) -> tuple[str, int]:
    limit = pos + field.size
    nul = data.find(0, pos, limit)
    if nul < 0:
        if limit <= len(data):
            raise InvalidPdu(
                f"{field.name} longer than {field.size - 1} octets",
                answer=field.error,
                command_id=command_id,
                sequence_number=seq,
            )
        raise _truncated(command_id, seq, field)
    return data[pos:nul].decode("latin-1"), nul + 1


#: One step of a body's decoding plan: the field kind as a small int (an Enum member lookup costs more
#: than the rest of the step on CPython 3.11), the field name (for a run of one-octet fields, the names
#: of the whole run), how many octets the run takes, and the field for error reporting.
_Step = tuple[int, str | tuple[str, ...], int, Field]
_CSTR, _U8, _SM, _DESTS, _UNSUCCESS = range(5)
_KIND_CODE = {Kind.CSTR: _CSTR, Kind.U8: _U8, Kind.SM: _SM, Kind.DESTS: _DESTS, Kind.UNSUCCESS: _UNSUCCESS}
_PLANS: dict[type[Pdu], tuple[_Step, ...]] = {}


def _plan(cls: type[Pdu]) -> tuple[_Step, ...]:
    """The class's body table compiled once: consecutive one-octet fields become one slice."""
    steps: list[_Step] = []
    for field in cls.BODY:
        if field.kind is Kind.U8 and steps and steps[-1][0] == _U8:
            kind, names, count, first = steps[-1]
            assert isinstance(names, tuple)
            steps[-1] = (kind, (*names, field.name), count + 1, first)
        elif field.kind is Kind.U8:
            steps.append((_U8, (field.name,), 1, field))
        else:
            steps.append((_KIND_CODE[field.kind], field.name, field.size, field))
    plan = _PLANS[cls] = tuple(steps)
    return plan


#: Each class's whole decoding, body, optional parameters and the PDU itself, as one function written
#: from its plan the first time the class is decoded (the way ``dataclasses`` writes ``__init__``): the
#: plan walked step by step, and the PDU built from a dict of keywords, cost twice what the octets do.
_Decoder = Callable[[bytes, int, int, int, bool], Pdu]
_DECODERS: dict[type[Pdu], _Decoder] = {}
#: By command_id, once a command has been decoded: its decoder, and whether its optional parameters'
#: lengths are checked (in requests only).
_BY_COMMAND_ID: dict[int, tuple[_Decoder, bool]] = {}


def _decoder(cls: type[Pdu]) -> _Decoder:
    """``cls``'s decoder: each step of its plan in order (a C-Octet String up to its NUL within its
    maximum size, a run of one-octet fields, sm_length and short_message, submit_multi's lists), each
    with the check and the answer that names its fault; then the optional parameters; then every
    field of the PDU set as its ``__init__`` would, the values not in the body at their defaults."""
    env: dict[str, Any] = {
        "_truncated": _truncated,
        "_decode_cstr": _decode_cstr,
        "_decode_dests": _decode_dests,
        "_decode_unsuccess": _decode_unsuccess,
        "_decode_tlvs": _decode_tlvs,
        "InvalidPdu": InvalidPdu,
        "MAX_SHORT_MESSAGE": MAX_SHORT_MESSAGE,
        "_new": object.__new__,
        "cls": cls,
    }
    lines = [
        "def decode(data, command_id, status, seq, check_lengths):",
        f"    pos = {HEADER_LENGTH}",
        "    end = len(data)",
    ]
    body: set[str] = set()
    for i, (kind, name, size, field) in enumerate(_PLANS.get(cls) or _plan(cls)):
        env[f"F{i}"] = field
        if kind == _CSTR:
            body.add(field.name)
            lines += [
                f"    nul = data.find(0, pos, pos + {size})",
                "    if nul < 0:",
                f"        _decode_cstr(data, pos, F{i}, command_id, seq)",  # raises
                f"    v_{field.name} = data[pos:nul].decode('latin-1')",
                "    pos = nul + 1",
            ]
        elif kind == _U8:
            assert isinstance(name, tuple)
            body.update(name)
            lines += [f"    if pos + {size} > end:", f"        raise _truncated(command_id, seq, F{i})"]
            lines += [f"    v_{one} = data[pos + {k}]" for k, one in enumerate(name)]
            lines.append(f"    pos += {size}")
        elif kind == _SM:
            body.add(field.name)
            lines += [
                "    if pos >= end:",
                f"        raise _truncated(command_id, seq, F{i})",
                "    n = data[pos]",
                "    if n > MAX_SHORT_MESSAGE or pos + 1 + n > end:",
                "        raise InvalidPdu(",
                "            f'sm_length {n} runs past the end of the PDU',",
                f"            answer=F{i}.error,",
                "            command_id=command_id,",
                "            sequence_number=seq,",
                "        )",
                f"    v_{field.name} = data[pos + 1 : pos + 1 + n]",
                "    pos += 1 + n",
            ]
        else:
            body.add(field.name)
            helper = "_decode_dests" if kind == _DESTS else "_decode_unsuccess"
            lines.append(f"    v_{field.name}, pos = {helper}(data, pos, F{i}, command_id, seq)")
    lines += [
        "    tlvs = _decode_tlvs(data, pos, end, command_id, seq, check_lengths=check_lengths) if pos < end else ()",
        "    pdu = _new(cls)",
    ]
    given = {"sequence_number": "seq", "command_status": "status", "tlvs": "tlvs", "wire": "bytes(data)"}
    for f in dataclasses.fields(cls):
        # A slot's descriptor sets it on a frozen instance, as the generated __init__ does.
        env[f"S_{f.name}"] = getattr(cls, f.name).__set__
        if f.name in body:
            value = f"v_{f.name}"
        elif f.name in given:
            value = given[f.name]
        elif f.default is not dataclasses.MISSING:
            env[f"D_{f.name}"] = f.default
            value = f"D_{f.name}"
        elif f.default_factory is not dataclasses.MISSING:
            env[f"D_{f.name}"] = f.default_factory
            value = f"D_{f.name}()"
        else:
            raise LocalProtocolError(f"{cls.__name__}.{f.name} is neither in the body nor has a default")
        lines.append(f"    S_{f.name}(pdu, {value})")
    lines.append("    return pdu")
    exec("\n".join(lines), env)  # our own tables, never a peer's octets
    decoder: _Decoder = env["decode"]
    _DECODERS[cls] = decoder
    return decoder


def _decode_dests(
    data: bytes, pos: int, field: Field, command_id: int, seq: int
) -> tuple[tuple[DestAddress | DistributionList, ...], int]:
    if pos >= len(data):
        raise _truncated(command_id, seq, field)
    count = data[pos]
    pos += 1
    if count == 0:
        raise InvalidPdu(
            "submit_multi with no destination",
            answer=CommandStatus.ESME_RINVNUMDESTS,
            command_id=command_id,
            sequence_number=seq,
        )
    dests: list[DestAddress | DistributionList] = []
    for _ in range(count):
        if pos >= len(data):
            raise _truncated(command_id, seq, field)
        flag = data[pos]
        pos += 1
        if flag == 1:
            if pos + 2 > len(data):
                raise _truncated(command_id, seq, field)
            ton, npi = data[pos], data[pos + 1]
            addr, pos = _decode_cstr(data, pos + 2, field, command_id, seq)
            dests.append(DestAddress(ton, npi, addr))
        elif flag == 2:
            name, pos = _decode_cstr(data, pos, field._replace(error=CommandStatus.ESME_RINVDLNAME), command_id, seq)
            dests.append(DistributionList(name))
        else:
            raise InvalidPdu(
                f"dest_flag {flag} is neither 1 (SME address) nor 2 (distribution list)",
                answer=CommandStatus.ESME_RINVDESTFLAG,
                command_id=command_id,
                sequence_number=seq,
            )
    return tuple(dests), pos


def _decode_unsuccess(
    data: bytes, pos: int, field: Field, command_id: int, seq: int
) -> tuple[tuple[UnsuccessSme, ...], int]:
    if pos >= len(data):
        raise _truncated(command_id, seq, field)
    count = data[pos]
    pos += 1
    smes: list[UnsuccessSme] = []
    for _ in range(count):
        if pos + 2 > len(data):
            raise _truncated(command_id, seq, field)
        ton, npi = data[pos], data[pos + 1]
        addr, pos = _decode_cstr(data, pos + 2, field, command_id, seq)
        if pos + 4 > len(data):
            raise _truncated(command_id, seq, field)
        (code,) = _U32.unpack_from(data, pos)
        pos += 4
        smes.append(UnsuccessSme(ton, npi, addr, code))
    return tuple(smes), pos


def _decode_tlvs(data: bytes, pos: int, end: int, command_id: int, seq: int, *, check_lengths: bool) -> tuple[Tlv, ...]:
    tlvs: list[Tlv] = []
    while pos < end:
        if end - pos < 4:
            raise InvalidPdu(
                "stray octets after the last optional parameter",
                answer=CommandStatus.ESME_RINVOPTPARSTREAM,
                command_id=command_id,
                sequence_number=seq,
            )
        tag, length = _TAG_LEN.unpack_from(data, pos)
        pos += 4
        if pos + length > end:
            raise InvalidPdu(
                f"optional parameter {tag:#06x} claims {length} octets past the end of the PDU",
                answer=CommandStatus.ESME_RINVOPTPARSTREAM,
                command_id=command_id,
                sequence_number=seq,
            )
        if check_lengths:
            expected = _FIXED_TLV_LENGTH.get(tag)
            if expected is not None and expected != length:
                raise InvalidPdu(
                    f"optional parameter {tag:#06x} has length {length}, the specification says {expected}",
                    answer=CommandStatus.ESME_RINVPARLEN,
                    command_id=command_id,
                    sequence_number=seq,
                )
        tlvs.append(_new_tlv(Tlv, (tag, data[pos : pos + length])))
        pos += length
    return tuple(tlvs)


def peek_header(data: bytes) -> tuple[int, int, int, int]:
    """command_length, command_id, command_status and sequence_number of a PDU's header."""
    length, command_id, status, seq = _HEADER.unpack_from(data)
    return length, command_id, status, seq


# --- encoding -----------------------------------------------------------------------------------------


def encode(pdu: Pdu, sequence_number: int | None = None) -> bytes:
    """The PDU's octets. ``sequence_number`` overrides the one the PDU carries (for relaying)."""
    seq = pdu.sequence_number if sequence_number is None else sequence_number
    wire = pdu.wire
    if wire is not None:
        if seq == pdu.sequence_number:
            return wire
        if not 0 <= seq <= 0xFFFFFFFF:
            raise LocalProtocolError(f"sequence_number {seq} does not fit in 32 bits")
        return wire[:12] + seq.to_bytes(4, "big") + wire[16:]
    out = bytearray(HEADER_LENGTH)
    # An error response with nothing to carry goes without a body; a message_id the peer sent anyway
    # is relayed rather than silently dropped.
    bodyless = pdu.command_id in _BODYLESS_ON_ERROR and not getattr(pdu, "message_id", "")
    try:
        if not (pdu.command_status and bodyless and not pdu.tlvs):
            _encode_body(pdu, out)
            for tag, value in pdu.tlvs:
                if len(value) > 0xFFFF:
                    raise LocalProtocolError(f"optional parameter {tag:#06x} longer than 65535 octets")
                out += _TAG_LEN.pack(tag, len(value))
                out += value
        _HEADER.pack_into(out, 0, len(out), pdu.command_id, pdu.command_status, seq)
    except (ValueError, struct.error) as exc:  # UnicodeEncodeError is a ValueError
        raise LocalProtocolError(f"cannot encode {type(pdu).__name__}: {exc}") from exc
    return bytes(out)


def _put_cstr(out: bytearray, value: str, field: Field) -> None:
    raw = value.encode("latin-1")
    if len(raw) >= field.size or 0 in raw:
        raise ValueError(f"{field.name} must be under {field.size} octets with no NUL")
    out += raw
    out.append(0)


def _encode_body(pdu: Pdu, out: bytearray) -> None:
    for kind, names, _size, field in _PLANS.get(type(pdu)) or _plan(type(pdu)):
        if kind == _U8:
            # A run of one-octet fields: ValueError from bytes() when one is outside 0..255.
            out += bytes(getattr(pdu, name) for name in names)
            continue
        value = getattr(pdu, field.name)
        if kind == _CSTR:
            _put_cstr(out, value, field)
        elif kind == _SM:
            if len(value) > MAX_SHORT_MESSAGE:
                raise ValueError(f"short_message over {MAX_SHORT_MESSAGE} octets; use message_payload")
            out.append(len(value))
            out += value
        elif kind == _DESTS:
            if not 1 <= len(value) <= 255:
                raise ValueError("submit_multi needs 1 to 255 destinations")
            out.append(len(value))
            for dest in value:
                if isinstance(dest, DestAddress):
                    out += bytes((1, dest.ton, dest.npi))
                    _put_cstr(out, dest.addr, field)
                else:
                    out.append(2)
                    _put_cstr(out, dest.name, field)
        else:
            out.append(len(value))
            for sme in value:
                out += bytes((sme.ton, sme.npi))
                _put_cstr(out, sme.addr, field)
                out += _U32.pack(sme.error_status_code)


# --- framing ------------------------------------------------------------------------------------------


class PduFramer:
    """Cuts a byte stream into whole PDUs, refusing a command_length outside 16..max_pdu_size."""

    def __init__(self, max_pdu_size: int = DEFAULT_MAX_PDU_SIZE) -> None:
        self.max_pdu_size = max_pdu_size
        self._buffer = bytearray()

    def feed(self, data: bytes) -> None:
        self._buffer += data

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def next_pdu(self) -> bytes | None:
        """The next complete PDU's octets, or None until more data arrives."""
        buf = self._buffer
        if len(buf) < 4:
            return None
        (length,) = _U32.unpack_from(buf)  # int.from_bytes of a slice costs three times this
        if length < HEADER_LENGTH or length > self.max_pdu_size:
            seq = int.from_bytes(buf[12:16], "big") if len(buf) >= HEADER_LENGTH else 0
            raise InvalidPdu(
                f"command_length {length} outside {HEADER_LENGTH}..{self.max_pdu_size}",
                answer=CommandStatus.ESME_RINVCMDLEN,
                sequence_number=seq,
                close=True,
            )
        if len(buf) < length:
            return None
        pdu = bytes(buf[:length])
        del buf[:length]
        return pdu
