"""SMPP 3.4 PDUs as frozen dataclasses, one per command, named as the specification names them.

Each class declares its mandatory body as a table (``BODY``) that the codec walks; the classes carry
no encoding logic of their own. Octet strings that the specification calls C-Octet Strings are held as
``str`` decoded as Latin-1, so that every byte sequence round-trips exactly. Optional parameters are
kept as an ordered tuple of ``Tlv`` so that a relayed PDU carries them byte for byte, vendor tags and
all, in the order the peer sent them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import Enum
from typing import ClassVar, NamedTuple

from protocols.smpp.constants import RESPONSE_BIT, CommandId, CommandStatus, Tag


class Tlv(NamedTuple):
    """One optional parameter: a tag and its raw value, relayed untouched."""

    tag: int
    value: bytes


class Kind(Enum):
    """How a mandatory body field is laid out on the wire."""

    CSTR = "cstr"  # C-Octet String with a maximum length that includes the NUL
    U8 = "u8"
    SM = "sm"  # sm_length (1 octet) followed by that many octets of short_message
    DESTS = "dests"  # submit_multi: number_of_dests then dest_address structures
    UNSUCCESS = "unsuccess"  # submit_multi_resp: no_unsuccess then unsuccess_sme structures


class Field(NamedTuple):
    name: str
    kind: Kind
    #: For CSTR, the maximum length including the terminating NUL (SMPP 3.4 section 4).
    size: int = 0
    #: The command_status that answers a bad value in this field.
    error: CommandStatus = CommandStatus.ESME_RINVCMDLEN


def _cstr(name: str, size: int, error: CommandStatus = CommandStatus.ESME_RINVPARLEN) -> Field:
    return Field(name, Kind.CSTR, size, error)


def _u8(name: str) -> Field:
    return Field(name, Kind.U8)


_S = CommandStatus


@dataclass(frozen=True, slots=True)
class DestAddress:
    """A submit_multi destination that is an SME address (dest_flag 1)."""

    ton: int
    npi: int
    addr: str


@dataclass(frozen=True, slots=True)
class DistributionList:
    """A submit_multi destination that is a distribution list name (dest_flag 2)."""

    name: str


@dataclass(frozen=True, slots=True)
class UnsuccessSme:
    """A destination that submit_multi could not deliver to (submit_multi_resp)."""

    ton: int
    npi: int
    addr: str
    error_status_code: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Pdu:
    """Fields every PDU has. ``command_length`` is not stored: the codec computes it."""

    command_id: ClassVar[CommandId]
    BODY: ClassVar[tuple[Field, ...]] = ()

    sequence_number: int = 0
    command_status: int = 0
    tlvs: tuple[Tlv, ...] = ()
    #: The octets this PDU was decoded from, so that relaying it unchanged costs a sequence-number patch
    #: and is byte-exact by construction. A PDU built or changed with ``dataclasses.replace`` has none and
    #: is encoded from its fields.
    wire: bytes | None = field(default=None, init=False, repr=False, compare=False)

    #: Whether the class is a response, fixed per class (see __init_subclass__).
    is_response: ClassVar[bool] = False

    def __init_subclass__(cls) -> None:
        # No super() call: dataclass(slots=True) rebuilds the class, which breaks zero-argument super(),
        # and object.__init_subclass__ has nothing to do.
        command_id = cls.__dict__.get("command_id")
        if command_id is not None:
            cls.is_response = bool(command_id & RESPONSE_BIT)

    def tlv(self, tag: int) -> bytes | None:
        """The value of the first optional parameter with this tag, or None."""
        for t in self.tlvs:
            if t.tag == tag:
                return t.value
        return None


def tlv_int(value: bytes | None) -> int | None:
    """An integer TLV value (1, 2 or 4 octets, big-endian), or None when absent."""
    return None if value is None else int.from_bytes(value, "big")


def without_tags(tlvs: Iterable[Tlv], tags: Iterable[int]) -> tuple[Tlv, ...]:
    drop = set(tags)
    return tuple(t for t in tlvs if t.tag not in drop)


# --- session management -------------------------------------------------------------------------------

_BIND_BODY = (
    _cstr("system_id", 16, _S.ESME_RINVSYSID),
    _cstr("password", 9, _S.ESME_RINVPASWD),
    _cstr("system_type", 13, _S.ESME_RINVSYSTYP),
    _u8("interface_version"),
    _u8("addr_ton"),
    _u8("addr_npi"),
    _cstr("address_range", 41),
)


@dataclass(frozen=True, slots=True, kw_only=True)
class _Bind(Pdu):
    BODY: ClassVar[tuple[Field, ...]] = _BIND_BODY
    system_id: str = ""
    password: str = field(default="", repr=False)  # never in a log line
    system_type: str = ""
    interface_version: int = 0x34
    addr_ton: int = 0
    addr_npi: int = 0
    address_range: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class BindTransmitter(_Bind):
    command_id: ClassVar[CommandId] = CommandId.BIND_TRANSMITTER


@dataclass(frozen=True, slots=True, kw_only=True)
class BindReceiver(_Bind):
    command_id: ClassVar[CommandId] = CommandId.BIND_RECEIVER


@dataclass(frozen=True, slots=True, kw_only=True)
class BindTransceiver(_Bind):
    command_id: ClassVar[CommandId] = CommandId.BIND_TRANSCEIVER


@dataclass(frozen=True, slots=True, kw_only=True)
class _BindResp(Pdu):
    BODY: ClassVar[tuple[Field, ...]] = (_cstr("system_id", 16, _S.ESME_RINVSYSID),)
    system_id: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class BindTransmitterResp(_BindResp):
    command_id: ClassVar[CommandId] = CommandId.BIND_TRANSMITTER_RESP


@dataclass(frozen=True, slots=True, kw_only=True)
class BindReceiverResp(_BindResp):
    command_id: ClassVar[CommandId] = CommandId.BIND_RECEIVER_RESP


@dataclass(frozen=True, slots=True, kw_only=True)
class BindTransceiverResp(_BindResp):
    command_id: ClassVar[CommandId] = CommandId.BIND_TRANSCEIVER_RESP


@dataclass(frozen=True, slots=True, kw_only=True)
class Outbind(Pdu):
    command_id: ClassVar[CommandId] = CommandId.OUTBIND
    BODY: ClassVar[tuple[Field, ...]] = (
        _cstr("system_id", 16, _S.ESME_RINVSYSID),
        _cstr("password", 9, _S.ESME_RINVPASWD),
    )
    system_id: str = ""
    password: str = field(default="", repr=False)  # never in a log line


@dataclass(frozen=True, slots=True, kw_only=True)
class Unbind(Pdu):
    command_id: ClassVar[CommandId] = CommandId.UNBIND


@dataclass(frozen=True, slots=True, kw_only=True)
class UnbindResp(Pdu):
    command_id: ClassVar[CommandId] = CommandId.UNBIND_RESP


@dataclass(frozen=True, slots=True, kw_only=True)
class EnquireLink(Pdu):
    command_id: ClassVar[CommandId] = CommandId.ENQUIRE_LINK


@dataclass(frozen=True, slots=True, kw_only=True)
class EnquireLinkResp(Pdu):
    command_id: ClassVar[CommandId] = CommandId.ENQUIRE_LINK_RESP


@dataclass(frozen=True, slots=True, kw_only=True)
class GenericNack(Pdu):
    command_id: ClassVar[CommandId] = CommandId.GENERIC_NACK


# --- message submission and delivery ------------------------------------------------------------------

_SM_BODY = (
    _cstr("service_type", 6, _S.ESME_RINVSERTYP),
    _u8("source_addr_ton"),
    _u8("source_addr_npi"),
    _cstr("source_addr", 21, _S.ESME_RINVSRCADR),
    _u8("dest_addr_ton"),
    _u8("dest_addr_npi"),
    _cstr("destination_addr", 21, _S.ESME_RINVDSTADR),
    _u8("esm_class"),
    _u8("protocol_id"),
    _u8("priority_flag"),
    _cstr("schedule_delivery_time", 17, _S.ESME_RINVSCHED),
    _cstr("validity_period", 17, _S.ESME_RINVEXPIRY),
    _u8("registered_delivery"),
    _u8("replace_if_present_flag"),
    _u8("data_coding"),
    _u8("sm_default_msg_id"),
    Field("short_message", Kind.SM, 254, _S.ESME_RINVMSGLEN),
)


@dataclass(frozen=True, slots=True, kw_only=True)
class _ShortMessage(Pdu):
    """The body shared by submit_sm and deliver_sm."""

    BODY: ClassVar[tuple[Field, ...]] = _SM_BODY
    service_type: str = ""
    source_addr_ton: int = 0
    source_addr_npi: int = 0
    source_addr: str = ""
    dest_addr_ton: int = 0
    dest_addr_npi: int = 0
    destination_addr: str = ""
    esm_class: int = 0
    protocol_id: int = 0
    priority_flag: int = 0
    schedule_delivery_time: str = ""
    validity_period: str = ""
    registered_delivery: int = 0
    replace_if_present_flag: int = 0
    data_coding: int = 0
    sm_default_msg_id: int = 0
    short_message: bytes = b""

    @property
    def payload(self) -> bytes:
        """The message octets, from message_payload when short_message is empty."""
        if self.short_message:
            return self.short_message
        return self.tlv(Tag.MESSAGE_PAYLOAD) or b""


@dataclass(frozen=True, slots=True, kw_only=True)
class SubmitSm(_ShortMessage):
    command_id: ClassVar[CommandId] = CommandId.SUBMIT_SM


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliverSm(_ShortMessage):
    command_id: ClassVar[CommandId] = CommandId.DELIVER_SM


_MESSAGE_ID = _cstr("message_id", 65, _S.ESME_RINVMSGID)


@dataclass(frozen=True, slots=True, kw_only=True)
class _MessageIdResp(Pdu):
    BODY: ClassVar[tuple[Field, ...]] = (_MESSAGE_ID,)
    message_id: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class SubmitSmResp(_MessageIdResp):
    command_id: ClassVar[CommandId] = CommandId.SUBMIT_SM_RESP


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliverSmResp(_MessageIdResp):
    command_id: ClassVar[CommandId] = CommandId.DELIVER_SM_RESP


@dataclass(frozen=True, slots=True, kw_only=True)
class DataSmResp(_MessageIdResp):
    command_id: ClassVar[CommandId] = CommandId.DATA_SM_RESP


@dataclass(frozen=True, slots=True, kw_only=True)
class DataSm(Pdu):
    command_id: ClassVar[CommandId] = CommandId.DATA_SM
    BODY: ClassVar[tuple[Field, ...]] = (
        _cstr("service_type", 6, _S.ESME_RINVSERTYP),
        _u8("source_addr_ton"),
        _u8("source_addr_npi"),
        _cstr("source_addr", 65, _S.ESME_RINVSRCADR),
        _u8("dest_addr_ton"),
        _u8("dest_addr_npi"),
        _cstr("destination_addr", 65, _S.ESME_RINVDSTADR),
        _u8("esm_class"),
        _u8("registered_delivery"),
        _u8("data_coding"),
    )
    service_type: str = ""
    source_addr_ton: int = 0
    source_addr_npi: int = 0
    source_addr: str = ""
    dest_addr_ton: int = 0
    dest_addr_npi: int = 0
    destination_addr: str = ""
    esm_class: int = 0
    registered_delivery: int = 0
    data_coding: int = 0

    @property
    def payload(self) -> bytes:
        return self.tlv(Tag.MESSAGE_PAYLOAD) or b""


@dataclass(frozen=True, slots=True, kw_only=True)
class SubmitMulti(Pdu):
    command_id: ClassVar[CommandId] = CommandId.SUBMIT_MULTI
    BODY: ClassVar[tuple[Field, ...]] = (
        _cstr("service_type", 6, _S.ESME_RINVSERTYP),
        _u8("source_addr_ton"),
        _u8("source_addr_npi"),
        _cstr("source_addr", 21, _S.ESME_RINVSRCADR),
        Field("dest_addresses", Kind.DESTS, 21, _S.ESME_RINVDSTADR),
        _u8("esm_class"),
        _u8("protocol_id"),
        _u8("priority_flag"),
        _cstr("schedule_delivery_time", 17, _S.ESME_RINVSCHED),
        _cstr("validity_period", 17, _S.ESME_RINVEXPIRY),
        _u8("registered_delivery"),
        _u8("replace_if_present_flag"),
        _u8("data_coding"),
        _u8("sm_default_msg_id"),
        Field("short_message", Kind.SM, 254, _S.ESME_RINVMSGLEN),
    )
    service_type: str = ""
    source_addr_ton: int = 0
    source_addr_npi: int = 0
    source_addr: str = ""
    dest_addresses: tuple[DestAddress | DistributionList, ...] = ()
    esm_class: int = 0
    protocol_id: int = 0
    priority_flag: int = 0
    schedule_delivery_time: str = ""
    validity_period: str = ""
    registered_delivery: int = 0
    replace_if_present_flag: int = 0
    data_coding: int = 0
    sm_default_msg_id: int = 0
    short_message: bytes = b""

    @property
    def payload(self) -> bytes:
        if self.short_message:
            return self.short_message
        return self.tlv(Tag.MESSAGE_PAYLOAD) or b""


@dataclass(frozen=True, slots=True, kw_only=True)
class SubmitMultiResp(Pdu):
    command_id: ClassVar[CommandId] = CommandId.SUBMIT_MULTI_RESP
    BODY: ClassVar[tuple[Field, ...]] = (
        _MESSAGE_ID,
        Field("unsuccess_smes", Kind.UNSUCCESS, 21, _S.ESME_RINVDSTADR),
    )
    message_id: str = ""
    unsuccess_smes: tuple[UnsuccessSme, ...] = ()


# --- ancillary operations -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class QuerySm(Pdu):
    command_id: ClassVar[CommandId] = CommandId.QUERY_SM
    BODY: ClassVar[tuple[Field, ...]] = (
        _MESSAGE_ID,
        _u8("source_addr_ton"),
        _u8("source_addr_npi"),
        _cstr("source_addr", 21, _S.ESME_RINVSRCADR),
    )
    message_id: str = ""
    source_addr_ton: int = 0
    source_addr_npi: int = 0
    source_addr: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class QuerySmResp(Pdu):
    command_id: ClassVar[CommandId] = CommandId.QUERY_SM_RESP
    BODY: ClassVar[tuple[Field, ...]] = (
        _MESSAGE_ID,
        _cstr("final_date", 17),
        _u8("message_state"),
        _u8("error_code"),
    )
    message_id: str = ""
    final_date: str = ""
    message_state: int = 0
    error_code: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class CancelSm(Pdu):
    command_id: ClassVar[CommandId] = CommandId.CANCEL_SM
    BODY: ClassVar[tuple[Field, ...]] = (
        _cstr("service_type", 6, _S.ESME_RINVSERTYP),
        _MESSAGE_ID,
        _u8("source_addr_ton"),
        _u8("source_addr_npi"),
        _cstr("source_addr", 21, _S.ESME_RINVSRCADR),
        _u8("dest_addr_ton"),
        _u8("dest_addr_npi"),
        _cstr("destination_addr", 21, _S.ESME_RINVDSTADR),
    )
    service_type: str = ""
    message_id: str = ""
    source_addr_ton: int = 0
    source_addr_npi: int = 0
    source_addr: str = ""
    dest_addr_ton: int = 0
    dest_addr_npi: int = 0
    destination_addr: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class CancelSmResp(Pdu):
    command_id: ClassVar[CommandId] = CommandId.CANCEL_SM_RESP


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplaceSm(Pdu):
    command_id: ClassVar[CommandId] = CommandId.REPLACE_SM
    BODY: ClassVar[tuple[Field, ...]] = (
        _MESSAGE_ID,
        _u8("source_addr_ton"),
        _u8("source_addr_npi"),
        _cstr("source_addr", 21, _S.ESME_RINVSRCADR),
        _cstr("schedule_delivery_time", 17, _S.ESME_RINVSCHED),
        _cstr("validity_period", 17, _S.ESME_RINVEXPIRY),
        _u8("registered_delivery"),
        _u8("sm_default_msg_id"),
        Field("short_message", Kind.SM, 254, _S.ESME_RINVMSGLEN),
    )
    message_id: str = ""
    source_addr_ton: int = 0
    source_addr_npi: int = 0
    source_addr: str = ""
    schedule_delivery_time: str = ""
    validity_period: str = ""
    registered_delivery: int = 0
    sm_default_msg_id: int = 0
    short_message: bytes = b""


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplaceSmResp(Pdu):
    command_id: ClassVar[CommandId] = CommandId.REPLACE_SM_RESP


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertNotification(Pdu):
    command_id: ClassVar[CommandId] = CommandId.ALERT_NOTIFICATION
    BODY: ClassVar[tuple[Field, ...]] = (
        _u8("source_addr_ton"),
        _u8("source_addr_npi"),
        _cstr("source_addr", 65, _S.ESME_RINVSRCADR),
        _u8("esme_addr_ton"),
        _u8("esme_addr_npi"),
        _cstr("esme_addr", 65, _S.ESME_RINVDSTADR),
    )
    source_addr_ton: int = 0
    source_addr_npi: int = 0
    source_addr: str = ""
    esme_addr_ton: int = 0
    esme_addr_npi: int = 0
    esme_addr: str = ""


PDU_CLASSES: dict[int, type[Pdu]] = {
    cls.command_id: cls
    for cls in (
        GenericNack,
        BindTransmitter,
        BindTransmitterResp,
        BindReceiver,
        BindReceiverResp,
        BindTransceiver,
        BindTransceiverResp,
        Outbind,
        Unbind,
        UnbindResp,
        EnquireLink,
        EnquireLinkResp,
        SubmitSm,
        SubmitSmResp,
        DeliverSm,
        DeliverSmResp,
        DataSm,
        DataSmResp,
        SubmitMulti,
        SubmitMultiResp,
        QuerySm,
        QuerySmResp,
        CancelSm,
        CancelSmResp,
        ReplaceSm,
        ReplaceSmResp,
        AlertNotification,
    )
}

#: The response class that answers each request (outbind and alert_notification have none).
RESPONSE_FOR: dict[int, type[Pdu]] = {
    cid & ~RESPONSE_BIT: cls for cid, cls in PDU_CLASSES.items() if cid & RESPONSE_BIT and cid != CommandId.GENERIC_NACK
}


def response_to(request: Pdu, status: int = 0, **fields: object) -> Pdu:
    """The response that answers ``request``, or a generic_nack where the request has no response."""
    return response_for(request.command_id, request.sequence_number, status, **fields)


def response_for(command_id: int, sequence_number: int, status: int = 0, **fields: object) -> Pdu:
    """The response to the request ``command_id``, or a generic_nack where that request has none."""
    cls = RESPONSE_FOR.get(command_id, GenericNack)
    return cls(sequence_number=sequence_number, command_status=status, **fields)  # type: ignore[arg-type]
