"""A simulated SMSC: accepts binds, stores each message in the inbox of the handset it is for,
answers with message ids, sends delivery receipts when asked, and can inject mobile-originated
messages. It keeps its store across ``restart``, as a real SMSC keeps its queue across a reboot.

With ``people`` (a :class:`~simulator.behaviour.Population`), a flash that asks for the SME
manual/user acknowledgement (registered_delivery 0x08) pops up in front of the person with that
number. If their :class:`~simulator.behaviour.FlashHabit` says they read it, then after their delay
(on the population's clock) the handset answers as a phone does when OK is pressed: a deliver_sm to
the flash's sender whose esm_class message type is 0x10 (SMPP 3.4 5.2.12), naming the flash by its
message id (receipted_message_id) and by the user_message_reference the sender set.
"""

from __future__ import annotations

import asyncio
import hmac
import itertools
import ssl
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

from gateway.smpp.connection import ConnectionGone, ResponseTimeout, SmppConnection
from protocols.smpp import text
from protocols.smpp.constants import CommandStatus, DataCoding, EsmClass, Tag
from protocols.smpp.pdu import (
    BindReceiver,
    BindTransceiver,
    BindTransmitter,
    CancelSm,
    DataSm,
    DeliverSm,
    Pdu,
    QuerySm,
    ReplaceSm,
    SubmitMulti,
    SubmitSm,
    Tlv,
    response_to,
)
from protocols.smpp.session import Role, SessionConfig, SmppSession
from simulator.behaviour import Population

_S = CommandStatus
# message_state values (SMPP 3.4 section 5.2.28)
ENROUTE, DELIVERED, DELETED = 1, 2, 4


@dataclass
class StoredSms:
    """One message as the handset's inbox holds it (concatenated parts already joined)."""

    message_id: str
    source: str
    destination: str
    text: str
    data_coding: int
    flash: bool
    tlvs: tuple[Tlv, ...]
    parts: int = 1
    state: int = DELIVERED
    system_id: str = ""


@dataclass
class SmscStats:
    submitted: int = 0
    refused: int = 0
    receipts_sent: int = 0
    mo_sent: int = 0
    acks_sent: int = 0


@dataclass(frozen=True)
class Arrival:
    """One part of a concatenated message as it reached the SMSC: on which bind, which part of what."""

    bind: int  # the connection, numbered from 0 in the order the SMSC accepted them
    source: str
    destination: str
    ref: int
    seq: int
    total: int


@dataclass(frozen=True)
class FlashAck:
    """A handset's manual/user acknowledgement of a flash, as sent, and how the ESME answered it."""

    message_id: str  # the flash's (its first part's) message id
    handset: str
    to: str  # the flash's sender
    at: float  # on the population's clock
    status: int | None  # the deliver_sm_resp status; None: no bind could take it


#: SMPP 3.4 5.2.17: the SME manual/user acknowledgement is requested.
MANUAL_ACK_REQUESTED = 0x08
ACK_NAMES = ("both", "id", "reference")


@dataclass
class _Bind:
    system_id: str
    bind_type: str


@dataclass
class SimulatedSmsc:
    system_id: str = "afgw"
    password: str = "secret"
    #: How message ids look: "hex" (upper case), "dec", or "uuid"-like text.
    id_format: str = "hex"
    #: How receipts quote the id: "same", "lower" or "dec" (to exercise id matching in relays).
    receipt_id_format: str = "same"
    receipt_delay: float = 0.0
    window: int = 100
    #: Refuse every submit with this status (0: accept); for tests of error relaying.
    refuse_status: int = 0
    inboxes: dict[str, list[StoredSms]] = field(default_factory=dict)
    by_id: dict[str, StoredSms] = field(default_factory=dict)
    #: Every PDU received, as decoded, for tests that check byte-exact relaying.
    received: list[Pdu] = field(default_factory=list)
    #: Every part of a concatenated message, in the order the parts arrived (over all binds).
    arrivals: list[Arrival] = field(default_factory=list)
    stats: SmscStats = field(default_factory=SmscStats)
    record: bool = True
    #: Keep message contents in the inboxes; a benchmark turns this off to measure the relay alone.
    keep_messages: bool = True
    #: Called with each message as it enters an inbox (a concatenated one once, when whole).
    on_stored: Callable[[StoredSms], None] | None = None
    #: The people holding the handsets, who read (or ignore) the flashes that reach them.
    people: Population | None = None
    #: How an acknowledgement names its flash: "both" (receipted_message_id and user_message_reference),
    #: "id" or "reference" alone, as SMSCs differ.
    ack_names: str = "both"
    #: Every acknowledgement a handset sent, in order.
    acknowledgements: list[FlashAck] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.ack_names not in ACK_NAMES:
            raise ValueError(f"ack_names: {self.ack_names!r} is not one of {', '.join(ACK_NAMES)}")
        self._ids = itertools.count(0x10000)
        self._server: asyncio.AbstractServer | None = None
        self._conns: set[SmppConnection] = set()
        self._reassembler = text.Reassembler()
        self._parts: dict[tuple[str, str, int], list[str]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._conn_numbers: dict[SmppConnection, int] = {}
        self._conn_count = itertools.count()
        self.host = "127.0.0.1"
        self.port = 0
        #: Set once a receiver or transceiver has bound: deliveries have somewhere to go.
        self.receiver_bound = asyncio.Event()

    # --- lifecycle ----------------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0, tls: ssl.SSLContext | None = None) -> None:
        loop = asyncio.get_running_loop()
        config = SessionConfig(window=self.window, inbound_window=self.window, enquire_link_interval=None)

        def make() -> SmppConnection:
            return SmppConnection(SmppSession(Role.SMSC, clock=loop.time, config=config), self, loop)

        self._server = await loop.create_server(make, host, port or self.port, reuse_address=True, ssl=tls)
        self.host = host
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        """Stop listening and drop every connection, as a crash would; the store survives."""
        if self._server is not None:
            self._server.close()
            for conn in list(self._conns):
                if conn.transport is not None:
                    conn.transport.abort()
            await self._server.wait_closed()
            self._server = None
        for task in list(self._tasks):
            task.cancel()

    async def restart(self, downtime: float = 0.0) -> None:
        await self.stop()
        if downtime:
            await asyncio.sleep(downtime)
        await self.start(self.host, self.port)

    # --- inspection for tests -----------------------------------------------------------------------

    @property
    def sending(self) -> int:
        """Receipts and acknowledgements on their way to the gateway, not answered yet."""
        return len(self._tasks)

    def inbox(self, number: str) -> list[StoredSms]:
        return self.inboxes.get(number, [])

    def arrived(self, source: str, destination: str, ref: int) -> list[Arrival]:
        """The parts of one concatenated message, in the order they reached the SMSC."""
        return [a for a in self.arrivals if (a.source, a.destination, a.ref) == (source, destination, ref)]

    @property
    def bound(self) -> int:
        return sum(1 for c in self._conns if c.session.bound)

    # --- Handler ------------------------------------------------------------------------------------

    def connected(self, conn: SmppConnection) -> None:
        self._conns.add(conn)
        self._conn_numbers[conn] = next(self._conn_count)

    def closed(self, conn: SmppConnection) -> None:
        self._conns.discard(conn)
        self._conn_numbers.pop(conn, None)

    def event(self, conn: SmppConnection, pdu: Pdu) -> None:
        if self.record:
            self.received.append(pdu)
        if isinstance(pdu, BindTransmitter | BindReceiver | BindTransceiver):
            ok = pdu.system_id == self.system_id and hmac.compare_digest(pdu.password, self.password)
            conn.send(response_to(pdu, _S.ESME_ROK if ok else _S.ESME_RINVPASWD, system_id="simsmsc"))
            if ok:
                conn.context = _Bind(pdu.system_id, type(pdu).__name__)
                if isinstance(pdu, BindReceiver | BindTransceiver):
                    self.receiver_bound.set()
            else:
                conn.close()
        elif isinstance(pdu, SubmitSm | DataSm):
            self._submit(conn, pdu, (pdu.destination_addr,))
        elif isinstance(pdu, SubmitMulti):
            self._submit(conn, pdu, tuple(getattr(d, "addr", "") for d in pdu.dest_addresses))
        elif isinstance(pdu, QuerySm):
            sms = self.by_id.get(pdu.message_id)
            if sms is None:
                conn.send(response_to(pdu, _S.ESME_RQUERYFAIL))
            else:
                conn.send(response_to(pdu, message_id=pdu.message_id, message_state=sms.state))
        elif isinstance(pdu, CancelSm):
            sms = self.by_id.get(pdu.message_id)
            if sms is None:
                conn.send(response_to(pdu, _S.ESME_RCANCELFAIL))
            else:
                sms.state = DELETED
                conn.send(response_to(pdu))
        elif isinstance(pdu, ReplaceSm):
            sms = self.by_id.get(pdu.message_id)
            if sms is None:
                conn.send(response_to(pdu, _S.ESME_RREPLACEFAIL))
            else:
                sms.text = text.decode(pdu.short_message, sms.data_coding)
                conn.send(response_to(pdu))
        elif not pdu.is_response:
            conn.send(response_to(pdu, _S.ESME_RINVCMDID))

    # --- messages -----------------------------------------------------------------------------------

    def _new_id(self) -> str:
        n = next(self._ids)
        if self.id_format == "dec":
            return str(n)
        return format(n, "X")

    def _submit(
        self, conn: SmppConnection, pdu: SubmitSm | DataSm | SubmitMulti, destinations: tuple[str, ...]
    ) -> None:
        if self.refuse_status:
            self.stats.refused += 1
            conn.send(response_to(pdu, self.refuse_status))
            return
        message_id = self._new_id()
        self.stats.submitted += 1
        if not self.keep_messages:
            conn.send(response_to(pdu, message_id=message_id))
            if pdu.registered_delivery & 0x03 == 0x01:  # the receipt still goes (the bench relays them)
                self._spawn(self._send_receipt(conn, pdu, message_id))
            return
        payload = pdu.payload
        esm_class = pdu.esm_class
        try:
            info, body = text.parse_concat(payload, esm_class, pdu.tlvs)
        except Exception:
            conn.send(response_to(pdu, _S.ESME_RINVMSGLEN))
            return
        conn.send(response_to(pdu, message_id=message_id))
        flash = pdu.data_coding in (DataCoding.GSM7_CLASS0, DataCoding.UCS2_CLASS0)
        system_id = conn.context.system_id if isinstance(conn.context, _Bind) else ""
        for dest in destinations:
            if info is not None:
                if self.record:
                    number = self._conn_numbers.get(conn, -1)
                    self.arrivals.append(Arrival(number, pdu.source_addr, dest, info.ref, info.seq, info.total))
                key = (pdu.source_addr, dest)
                self._parts.setdefault((pdu.source_addr, dest, info.ref), []).append(message_id)
                whole = self._reassembler.add(key, info, body, time.monotonic())
                if whole is None:
                    sms = StoredSms(message_id, pdu.source_addr, dest, "", pdu.data_coding, flash, pdu.tlvs, 0)
                    self.by_id[message_id] = sms
                    continue
                ids = self._parts.pop((pdu.source_addr, dest, info.ref), [message_id])
                sms = StoredSms(
                    message_id,
                    pdu.source_addr,
                    dest,
                    text.decode(whole, pdu.data_coding),
                    pdu.data_coding,
                    flash,
                    pdu.tlvs,
                    info.total,
                    system_id=system_id,
                )
                for mid in ids:
                    self.by_id[mid] = sms
                first_id = ids[0]
            else:
                sms = StoredSms(
                    message_id,
                    pdu.source_addr,
                    dest,
                    text.decode(body, pdu.data_coding),
                    pdu.data_coding,
                    flash,
                    pdu.tlvs,
                    system_id=system_id,
                )
                self.by_id[message_id] = sms
                first_id = message_id
            self.inboxes.setdefault(dest, []).append(sms)
            if self.on_stored is not None:
                self.on_stored(sms)
            if flash and pdu.registered_delivery & MANUAL_ACK_REQUESTED:
                self._popped_up(sms, first_id)
        if pdu.registered_delivery & 0x03 == 0x01:  # receipt on final outcome; this one succeeded
            self._spawn(self._send_receipt(conn, pdu, message_id))

    def _popped_up(self, sms: StoredSms, message_id: str) -> None:
        """The flash is on the handset's screen: its person reads it, or not, as their habit says."""
        person = self.people.get(sms.destination) if self.people is not None else None
        if person is None:
            return
        delay = person.read_flash(f"{sms.source}: {sms.text}")
        if delay is None:
            return
        reference = next((t.value for t in sms.tlvs if t.tag == Tag.USER_MESSAGE_REFERENCE), None)

        def pressed_ok() -> None:
            person.note("flash_read", message_id)
            self._spawn(self._acknowledge(sms, message_id, reference, person.clock()))

        person.clock.call_later(delay, pressed_ok)

    async def _acknowledge(self, sms: StoredSms, message_id: str, reference: bytes | None, at: float) -> None:
        tlvs: list[Tlv] = []
        if self.ack_names in ("both", "id"):
            tlvs.append(Tlv(Tag.RECEIPTED_MESSAGE_ID, self._quoted(message_id).encode("ascii") + b"\x00"))
        if self.ack_names in ("both", "reference") and reference is not None:
            tlvs.append(Tlv(Tag.USER_MESSAGE_REFERENCE, reference))
        ack = DeliverSm(
            source_addr=sms.destination,
            destination_addr=sms.source,
            esm_class=EsmClass.TYPE_MANUAL_ACK,
            tlvs=tuple(tlvs),
        )
        status: int | None = None
        target = self._receiver()
        if target is not None:
            try:
                status = (await target.request(ack)).command_status
                self.stats.acks_sent += 1
            except (ConnectionGone, ResponseTimeout):
                status = None
        self.acknowledgements.append(FlashAck(message_id, sms.destination, sms.source, at, status))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _quoted(self, message_id: str) -> str:
        if self.receipt_id_format == "lower":
            return message_id.lower()
        if self.receipt_id_format == "dec" and self.id_format == "hex":
            return str(int(message_id, 16))
        return message_id

    async def _send_receipt(self, conn: SmppConnection, pdu: SubmitSm | DataSm | SubmitMulti, message_id: str) -> None:
        if self.receipt_delay:
            await asyncio.sleep(self.receipt_delay)
        quoted = self._quoted(message_id)
        stamp = time.strftime("%y%m%d%H%M", time.gmtime())
        body = f"id:{quoted} sub:001 dlvrd:001 submit date:{stamp} done date:{stamp} stat:DELIVRD err:000 text:"
        receipt = DeliverSm(
            source_addr=getattr(pdu, "destination_addr", ""),
            destination_addr=pdu.source_addr,
            esm_class=EsmClass.TYPE_DELIVERY_RECEIPT,
            short_message=body.encode("ascii"),
            tlvs=(
                Tlv(Tag.RECEIPTED_MESSAGE_ID, quoted.encode("ascii") + b"\x00"),
                Tlv(Tag.MESSAGE_STATE, bytes([DELIVERED])),
            ),
        )
        target = conn if conn.is_open and conn.session.can_send(receipt.command_id) else self._receiver()
        if target is None:
            return
        try:
            await target.request(receipt)
            self.stats.receipts_sent += 1
        except (ConnectionGone, ResponseTimeout):
            pass

    def _receiver(self) -> SmppConnection | None:
        for conn in self._conns:
            if conn.is_open and conn.session.can_send(DeliverSm.command_id) and conn.session.window_available:
                return conn
        return None

    async def inject_mo(
        self,
        source: str,
        destination: str,
        message: str | bytes,
        *,
        data_coding: int | None = None,
        tlvs: tuple[Tlv, ...] = (),
        esm_class: int = 0,
    ) -> int:
        """Deliver a mobile-originated message to a bound receiver; returns the deliver_sm_resp status.
        With ``esm_class`` message type 0x10 it is a handset's manual/user acknowledgement instead."""
        if isinstance(message, str):
            alphabet = text.choose_alphabet(message)
            body = text.encode(message, alphabet)
            coding = text.data_coding_for(alphabet) if data_coding is None else data_coding
        else:
            body, coding = message, data_coding or 0
        conn = self._receiver()
        if conn is None:
            raise ConnectionGone("no bound receiver to deliver to")
        pdu = DeliverSm(
            source_addr=source,
            destination_addr=destination,
            esm_class=esm_class,
            data_coding=coding,
            short_message=body,
            tlvs=tlvs,
        )
        resp = await conn.request(pdu)
        self.stats.mo_sent += 1
        return resp.command_status


@dataclass(frozen=True)
class MoMessage:
    """A mobile-originated message to inject: ``FROM:TO:TEXT`` on the command line."""

    source: str
    destination: str
    text: str

    @classmethod
    def parse(cls, spec: str) -> MoMessage:
        source, sep, rest = spec.partition(":")
        destination, sep2, message = rest.partition(":")
        if not (sep and sep2 and source and destination):
            raise ValueError(f"expected FROM:TO:TEXT, got {spec!r}")
        # inject_mo sends one deliver_sm; a longer text would need concatenation it does not do.
        _coding, segments = text.split(message)
        if len(segments) > 1:
            raise ValueError(f"TEXT must fit one short message (160 GSM 7-bit or 70 UCS2 characters): {spec!r}")
        return cls(source, destination, message)


async def run_smsc(
    host: str,
    port: int,
    *,
    system_id: str,
    password: str,
    mo: Sequence[MoMessage] = (),
    receipt_delay: float = 0.0,
    mo_retry: float = 1.0,
    out: TextIO | None = None,
) -> None:
    """Run the simulated SMSC until interrupted, printing each message as it is stored; once a bind
    can take deliveries, inject ``mo`` in order and print how each was answered. A temporary refusal
    (nobody to deliver to yet) is retried every ``mo_retry`` seconds, as an SMSC keeps and retries."""
    stream = out or sys.stdout

    def say(line: str) -> None:
        print(line, file=stream, flush=True)

    def stored(sms: StoredSms) -> None:
        say(f"stored {sms.message_id}: {sms.source} -> {sms.destination}: {sms.text}")

    smsc = SimulatedSmsc(system_id=system_id, password=password, receipt_delay=receipt_delay, on_stored=stored)
    await smsc.start(host, port)
    say(f"simulated SMSC listening on {smsc.host}:{smsc.port} (system_id {system_id})")
    try:
        if mo:
            await smsc.receiver_bound.wait()
            for message in mo:
                await _deliver_mo(smsc, message, mo_retry, say)
        await asyncio.Event().wait()
    finally:
        await smsc.stop()


#: Answers after which a real SMSC keeps the message and tries again (the gateway answers
#: ESME_RX_T_APPN while no bind of the receiving ESME can take it).
_TEMPORARY = frozenset({_S.ESME_RX_T_APPN, _S.ESME_RTHROTTLED, _S.ESME_RMSGQFUL})


async def _deliver_mo(smsc: SimulatedSmsc, message: MoMessage, retry: float, say: Callable[[str], None]) -> None:
    where = f"{message.source} -> {message.destination}: {message.text}"
    deferred = False
    while True:
        try:
            status = await smsc.inject_mo(message.source, message.destination, message.text)
            why = _status_name(status)
        except (ConnectionGone, ResponseTimeout) as exc:
            status, why = None, type(exc).__name__
        if status == _S.ESME_ROK:
            say(f"mo delivered: {where} (ESME_ROK)")
            return
        if status is not None and status not in _TEMPORARY:
            say(f"mo refused: {where} ({why})")
            return
        if not deferred:
            say(f"mo deferred: {where} ({why}); retrying every {retry:g} s")
            deferred = True
        await asyncio.sleep(retry)


def _status_name(status: int) -> str:
    try:
        return CommandStatus(status).name
    except ValueError:
        return f"status {status:#010x}"
