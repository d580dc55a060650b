"""Builds a gateway on loopback between test ESMEs and a test SMSC, and drives the real peers.

ESMEs: smpplib (blocking, in a thread, as ESME software runs it), smpp34 (async Client) and our
SimulatedEsme. SMSCs: our SimulatedSmsc and smpp34's Server. Whatever each side received is turned
into the same plain record (``Sm``) so that one test can check byte for byte what crossed the gateway,
whichever peers stood at the two ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import struct
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field, replace
from typing import Any

import smpp34
import smpplib.client
import smpplib.consts
import smpplib.gsm
import smpplib.smpp

from gateway.app import Gateway
from gateway.config import EsmeAccount, GatewayConfig, Listen, SmppConfig, SmscPeer
from gateway.inspection import SmsInspector
from gateway.smpp.connection import SmppConnection
from gateway.store import MemoryStore
from protocols.smpp.pdu import DeliverSm, Pdu, SubmitSm, Tlv
from simulator.smsc import SimulatedSmsc

LOCALHOST = "127.0.0.1"


def make_config(smsc_port: int, **smpp_overrides: Any) -> GatewayConfig:
    accounts = smpp_overrides.pop(
        "accounts",
        (
            EsmeAccount(system_id="bank", password="bankpw", throughput=100000, window=50, mo_prefixes=("10690",)),
            EsmeAccount(system_id="shop", password="shoppw", throughput=100000, window=50, mo_prefixes=("10691",)),
        ),
    )
    peer: dict[str, Any] = {
        "host": LOCALHOST,
        "port": smsc_port,
        "system_id": "afgw",
        "password": "secret",
        "binds": smpp_overrides.pop("binds", 2),
        "reconnect_initial": 0.05,
        "reconnect_max": 0.5,
    }
    peer.update(smpp_overrides.pop("smsc_peer", {}))
    smpp = SmppConfig(listen=Listen(LOCALHOST, 0), accounts=accounts, smsc=SmscPeer(**peer), response_timeout=5.0)
    rules = smpp_overrides.pop("rules", None)
    return GatewayConfig(smpp=replace(smpp, **smpp_overrides), rules=rules)


@asynccontextmanager
async def running_gateway(
    config: GatewayConfig, *, inspector: SmsInspector | None = None, store: MemoryStore | None = None
) -> AsyncIterator[Gateway]:
    gw = Gateway(config, inspector=inspector, store=store)
    await gw.start()
    assert gw.smpp is not None
    try:
        await asyncio.wait_for(gw.smpp.pool.up.wait(), 5)
        yield gw
    finally:
        await gw.stop()


def gateway_port(gw: Gateway) -> int:
    assert gw.smpp is not None
    return gw.smpp.server.port


async def in_thread(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    return await asyncio.get_running_loop().run_in_executor(None, lambda: fn(*args, **kwargs))


async def eventually(predicate: Callable[[], bool], within: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)


# --- what a peer received, whoever the peer is ---------------------------------------------------


@dataclass(frozen=True)
class Sm:
    """A submit_sm or deliver_sm as one end received it."""

    source_addr: str
    destination_addr: str
    esm_class: int
    data_coding: int
    registered_delivery: int
    short_message: bytes
    tlvs: tuple[tuple[int, bytes], ...]

    def tlv(self, tag: int) -> bytes | None:
        return next((v for t, v in self.tlvs if t == tag), None)


def sm_from_ours(pdu: SubmitSm | DeliverSm) -> Sm:
    return Sm(
        pdu.source_addr,
        pdu.destination_addr,
        pdu.esm_class,
        pdu.data_coding,
        pdu.registered_delivery,
        pdu.short_message,
        tuple((t.tag, t.value) for t in pdu.tlvs),
    )


def sm_from_smpp34(ev: Any) -> Sm:
    """From smpp34's SubmitSmEvent, DeliverSmEvent, or a codec SubmitSm / DeliverSm."""
    return Sm(
        ev.source_addr,
        ev.destination_addr,
        ev.esm_class,
        ev.data_coding,
        ev.registered_delivery,
        bytes(ev.short_message),
        tuple((t.tag, bytes(t.value)) for t in ev.tlvs),
    )


def encode_tlvs(tlvs: tuple[tuple[int, bytes], ...] | list[tuple[int, bytes]]) -> bytes:
    """Optional parameters as octets, written by hand (no codec of ours involved)."""
    return b"".join(struct.pack(">HH", tag, len(value)) + value for tag, value in tlvs)


# --- raw PDUs, built by hand for bad-input tests and for independent checks ---------------------------


def raw_pdu(command_id: int, sequence_number: int, body: bytes = b"", status: int = 0) -> bytes:
    return struct.pack(">IIII", 16 + len(body), command_id, status, sequence_number) + body


def cstr(value: str | bytes) -> bytes:
    return (value.encode("latin-1") if isinstance(value, str) else value) + b"\x00"


def raw_bind(command_id: int, seq: int, system_id: str, password: str) -> bytes:
    body = cstr(system_id) + cstr(password) + cstr("") + bytes((0x34, 0, 0)) + cstr("")
    return raw_pdu(command_id, seq, body)


def raw_submit(seq: int, source: str, destination: str, message: bytes, data_coding: int = 0) -> bytes:
    body = (
        cstr("")  # service_type
        + bytes((0, 0))
        + cstr(source)
        + bytes((1, 1))
        + cstr(destination)
        + bytes((0, 0, 0))  # esm_class, protocol_id, priority_flag
        + cstr("")  # schedule_delivery_time
        + cstr("")  # validity_period
        + bytes((0, 0, data_coding, 0, len(message)))
        + message
    )
    return raw_pdu(0x00000004, seq, body)


class RawPeer:
    """A TCP client that writes octets and reads whole PDUs: (command_id, status, seq, body)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def connect(cls, port: int, source: str | None = None) -> RawPeer:
        """``source`` another loopback address (127.0.0.2, ...) to connect from, for per-address limits."""
        local = (source, 0) if source is not None else None
        reader, writer = await asyncio.open_connection(LOCALHOST, port, local_addr=local)
        return cls(reader, writer)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def read_pdu(self, within: float = 5.0) -> tuple[int, int, int, bytes]:
        header = await asyncio.wait_for(self.reader.readexactly(16), within)
        length, command_id, status, seq = struct.unpack(">IIII", header)
        body = await asyncio.wait_for(self.reader.readexactly(length - 16), within) if length > 16 else b""
        return command_id, status, seq, body

    async def closed_by_peer(self, within: float = 5.0) -> bool:
        """True when the far end closed the connection (EOF) with nothing more to read."""
        try:
            rest = await asyncio.wait_for(self.reader.read(), within)
        except ConnectionResetError:
            return True
        return rest == b""

    def close(self) -> None:
        self.writer.close()


# --- ESMEs ------------------------------------------------------------------------------------------


class _LockedSequence:
    """smpplib's sequence generator, safe when the reader thread answers while another thread sends."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seq = 0

    @property
    def sequence(self) -> int:
        return self._seq

    def next_sequence(self) -> int:
        with self._lock:
            self._seq = self._seq % 0x7FFFFFFF + 1
            return self._seq


class _RecordingClient(smpplib.client.Client):  # type: ignore[misc]
    """smpplib's client, keeping the raw octets of every PDU it reads."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.raw_in: list[bytes] = []

    def read_pdu(self) -> Any:
        raw_len = self._recv_exact(4)
        (length,) = struct.unpack(">L", raw_len)
        raw = raw_len + self._recv_exact(length - 4)
        self.raw_in.append(raw)
        pdu = smpplib.smpp.parse_pdu(raw, client=self, allow_unknown_opt_params=True)
        if not pdu.is_error() and pdu.command in smpplib.consts.STATE_SETTERS:
            self.state = smpplib.consts.STATE_SETTERS[pdu.command]
        return pdu


class SmpplibEsme:
    """A blocking smpplib client; after ``connect`` a reader thread handles what arrives.

    ``by_seq`` maps the sequence number of each response read to the smpplib PDU; deliveries are
    answered by smpplib itself and kept raw in ``delivered_raw`` (decoded with smpp34's codec, an
    independent one, by ``deliveries``).
    """

    def __init__(self, port: int, system_id: str, password: str, bind: str = "transceiver") -> None:
        self.client = _RecordingClient(
            LOCALHOST, port, timeout=10, allow_unknown_opt_params=True, sequence_generator=_LockedSequence()
        )
        self.system_id, self.password, self.bind = system_id, password, bind
        self.responses: list[Any] = []
        self.delivered: list[Any] = []
        self.by_seq: dict[int, Any] = {}
        self.client.set_message_sent_handler(lambda pdu: self.responses.append(pdu))
        self.client.set_message_received_handler(lambda pdu: self.delivered.append(pdu))
        # Error statuses are results to check, not exceptions to die of in the reader thread.
        self.client.set_error_pdu_handler(lambda pdu: None)
        self._thread: threading.Thread | None = None
        original = self.client.read_pdu

        def read_and_index() -> Any:
            pdu = original()
            if pdu.command != "deliver_sm":
                self.by_seq[pdu.sequence] = pdu
            return pdu

        self.client.read_pdu = read_and_index

    def connect(self) -> None:
        self.client.connect()
        getattr(self.client, f"bind_{self.bind}")(system_id=self.system_id, password=self.password)

    def listen_in_background(self) -> None:
        def loop() -> None:
            # The socket closes under it at the end of a test.
            with contextlib.suppress(Exception):
                self.client.listen()

        self._thread = threading.Thread(target=loop, daemon=True)
        self._thread.start()

    def send(self, command: str, *, extra_tlvs: bytes = b"", **kwargs: Any) -> int:
        """Send a request made by smpplib, with optional parameters appended as raw octets."""
        pdu = smpplib.smpp.make_pdu(command, client=self.client, **kwargs)
        if extra_tlvs:
            generate = pdu.generate_params
            pdu.generate_params = lambda: generate() + extra_tlvs
        self.client.send_pdu(pdu)
        return int(pdu.sequence)

    @property
    def deliveries(self) -> list[Sm]:
        out = []
        for raw in list(self.client.raw_in):
            if struct.unpack_from(">I", raw, 4)[0] == 0x00000005:
                out.append(sm_from_smpp34(smpp34.decode(raw)))
        return out

    def close(self) -> None:
        if self._thread is None:
            with suppress(Exception):
                self.client.unbind()
        else:
            with suppress(Exception):
                seq = self.send("unbind")
                for _ in range(500):
                    if seq in self.by_seq:
                        break
                    threading.Event().wait(0.01)
        self.client.disconnect()


class Esme:
    """The one interface tests use for any ESME kind: connect, submit, see deliveries, close."""

    kind = ""

    async def connect(self) -> None:
        raise NotImplementedError

    async def submit(
        self,
        *,
        source: str,
        destination: str,
        short_message: bytes,
        data_coding: int = 0,
        esm_class: int = 0,
        registered_delivery: int = 0,
        tlvs: tuple[tuple[int, bytes], ...] = (),
    ) -> tuple[int, str]:
        """Submit one submit_sm; returns the (command_status, message_id) the ESME was answered."""
        raise NotImplementedError

    @property
    def deliveries(self) -> list[Sm]:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError


class SmpplibDriver(Esme):
    kind = "smpplib"

    def __init__(self, port: int, system_id: str, password: str) -> None:
        self.esme = SmpplibEsme(port, system_id, password)

    async def connect(self) -> None:
        await in_thread(self.esme.connect)
        self.esme.listen_in_background()

    async def submit(
        self,
        *,
        source: str,
        destination: str,
        short_message: bytes,
        data_coding: int = 0,
        esm_class: int = 0,
        registered_delivery: int = 0,
        tlvs: tuple[tuple[int, bytes], ...] = (),
    ) -> tuple[int, str]:
        seq = await in_thread(
            self.esme.send,
            "submit_sm",
            extra_tlvs=encode_tlvs(tlvs),
            source_addr=source,
            destination_addr=destination,
            short_message=short_message,
            data_coding=data_coding,
            esm_class=esm_class,
            registered_delivery=registered_delivery,
        )
        await eventually(lambda: seq in self.esme.by_seq)
        resp = self.esme.by_seq[seq]
        assert resp.command == "submit_sm_resp", resp.command
        message_id = resp.message_id or b""
        return int(resp.status), message_id.decode("latin-1") if isinstance(message_id, bytes) else message_id

    @property
    def deliveries(self) -> list[Sm]:
        return self.esme.deliveries

    async def close(self) -> None:
        await in_thread(self.esme.close)


class Smpp34Driver(Esme):
    kind = "smpp34"

    def __init__(self, port: int, system_id: str, password: str, bind_type: str = "TRX") -> None:
        self.client = smpp34.Client(LOCALHOST, port, system_id, password, bind_type=bind_type)
        self.smsc: Any = None
        self._deliveries: list[Sm] = []
        self._pump: asyncio.Task[None] | None = None

    async def connect(self) -> None:
        self.smsc = await self.client.connect()
        self._pump = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        while True:
            ev = await self.smsc.next()
            if isinstance(ev, smpp34.Disconnected):
                return
            self._deliveries.append(sm_from_smpp34(ev))

    async def submit(
        self,
        *,
        source: str,
        destination: str,
        short_message: bytes,
        data_coding: int = 0,
        esm_class: int = 0,
        registered_delivery: int = 0,
        tlvs: tuple[tuple[int, bytes], ...] = (),
    ) -> tuple[int, str]:
        resp = await self.smsc.submit_sm(
            destination,
            short_message,
            source_addr=source,
            data_coding=data_coding,
            esm_class=esm_class,
            registered_delivery=registered_delivery,
            tlvs=[smpp34.Tlv(t, v) for t, v in tlvs],
        )
        return int(resp.command_status), resp.message_id or ""

    @property
    def deliveries(self) -> list[Sm]:
        return list(self._deliveries)

    async def close(self) -> None:
        with suppress(Exception):
            await asyncio.wait_for(self.smsc.unbind(), 5)
        with suppress(Exception):
            await self.client.stop()
        if self._pump is not None:
            self._pump.cancel()
            with suppress(asyncio.CancelledError, Exception):
                await self._pump


def make_esme(kind: str, port: int, system_id: str, password: str) -> Esme:
    return SmpplibDriver(port, system_id, password) if kind == "smpplib" else Smpp34Driver(port, system_id, password)


# --- SMSCs ------------------------------------------------------------------------------------------


class Smsc:
    """The one interface tests use for any SMSC kind."""

    kind = ""
    port = 0

    @property
    def submits(self) -> list[Sm]:
        raise NotImplementedError

    def accepted_ids(self) -> set[str]:
        """Every message_id the SMSC answered a submit with."""
        raise NotImplementedError

    def refuse(self, status: int) -> None:
        raise NotImplementedError

    async def deliver(
        self,
        *,
        source: str,
        destination: str,
        short_message: bytes,
        data_coding: int = 0,
        esm_class: int = 0,
        tlvs: tuple[tuple[int, bytes], ...] = (),
    ) -> int:
        """Send a deliver_sm through one of the gateway's binds; returns the deliver_sm_resp status."""
        raise NotImplementedError

    async def stop(self) -> None:
        """Go down (the test may bring the SMSC back)."""
        raise NotImplementedError

    async def close(self) -> None:
        """Go down for good, at the end of a test."""
        await self.stop()


class HeldSmsc(SimulatedSmsc):
    """A SimulatedSmsc that, while ``holding``, leaves submits unanswered until ``release``."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.holding = False
        self.held: list[tuple[SmppConnection, Pdu]] = []

    def event(self, conn: SmppConnection, pdu: Pdu) -> None:
        if self.holding and isinstance(pdu, SubmitSm):
            self.received.append(pdu)
            self.held.append((conn, pdu))
            return
        super().event(conn, pdu)

    def _new_id(self) -> str:
        # Hexadecimal ids with letters in them, so that a receipt quoting one in lower case differs.
        message_id = super()._new_id()
        return "ABC" + message_id if self.id_format == "hex" else message_id

    def _quoted(self, message_id: str) -> str:
        # Also the reverse of "dec": decimal ids quoted in hexadecimal in receipts.
        if self.receipt_id_format == "hex" and self.id_format == "dec":
            return format(int(message_id), "X")
        return super()._quoted(message_id)

    def release(self) -> None:
        self.holding = False
        held, self.held = self.held, []
        for conn, pdu in held:
            self.record = False
            try:
                super().event(conn, pdu)
            finally:
                self.record = True


class SimSmsc(Smsc):
    kind = "sim"

    def __init__(self, sim: SimulatedSmsc) -> None:
        self.sim = sim

    @classmethod
    async def start(cls, **kwargs: Any) -> SimSmsc:
        sim = HeldSmsc(system_id="afgw", password="secret", **kwargs)
        await sim.start(LOCALHOST, 0)
        return cls(sim)

    @property
    def port(self) -> int:  # type: ignore[override]
        return self.sim.port

    @property
    def submits(self) -> list[Sm]:
        return [sm_from_ours(p) for p in self.sim.received if isinstance(p, SubmitSm)]

    def accepted_ids(self) -> set[str]:
        return set(self.sim.by_id)

    def refuse(self, status: int) -> None:
        self.sim.refuse_status = status

    async def deliver(
        self,
        *,
        source: str,
        destination: str,
        short_message: bytes,
        data_coding: int = 0,
        esm_class: int = 0,
        tlvs: tuple[tuple[int, bytes], ...] = (),
    ) -> int:
        assert esm_class == 0, "the simulated SMSC makes its own receipts"
        return await self.sim.inject_mo(
            source,
            destination,
            short_message,
            data_coding=data_coding,
            tlvs=tuple(Tlv(t, v) for t, v in tlvs),
        )

    async def stop(self) -> None:
        await self.sim.stop()


class Smpp34Smsc(Smsc):
    """smpp34's Server as the SMSC. It accepts any bind; submits are answered by ``policy``.

    ``policy(event)`` returns a message_id to accept with, an int status to reject with, or None to
    hold the event unanswered (in ``held``) until ``release``.
    """

    kind = "smpp34"

    def __init__(self, port: int, policy: Callable[[Any], str | int | None] | None = None) -> None:
        self.port = port
        self._ids = itertools.count(0x5A3F0001)
        self.policy = policy or (lambda ev: self.next_id())
        self.events: list[Any] = []
        self.accepted: dict[int, str] = {}  # index in events -> message_id
        self.held: list[Any] = []
        self.esmes: list[Any] = []
        self.server: Any = None
        self.down = False
        self._pumps: list[asyncio.Task[None]] = []
        self._unbinding: set[asyncio.Future[None]] = set()

    def next_id(self) -> str:
        return format(next(self._ids), "X")

    @classmethod
    async def start(cls, port: int, **kwargs: Any) -> Smpp34Smsc:
        smsc = cls(port, **kwargs)
        await smsc.listen()
        return smsc

    async def listen(self) -> None:
        self.down = False
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 5
        while True:
            server = smpp34.Server(LOCALHOST, self.port, system_id="smpp34", inbound_capacity=4096)
            try:
                await server.start()
                break
            except smpp34.SmppError:
                # The old listener closes in the background: wait for the port to be free.
                if loop.time() > deadline:
                    raise
                await asyncio.sleep(0.02)
        self.server = server
        self._pumps.append(loop.create_task(self._read(server)))

    async def _read(self, server: Any) -> None:
        while True:
            ev = await server.next()
            if isinstance(ev, smpp34.Esme):
                if self.down:  # bound just as the SMSC went down: it goes down too
                    self._unbinding.add(asyncio.ensure_future(self._drop(ev)))
                else:
                    self.esmes.append(ev)
            elif isinstance(ev, smpp34.Unbound):
                self.esmes = [e for e in self.esmes if e.session_id != ev.session_id]
            elif isinstance(ev, smpp34.SubmitSmEvent):
                self.events.append(ev)
                self._answer(len(self.events) - 1, ev)

    @staticmethod
    async def _drop(esme: Any) -> None:
        with suppress(Exception):
            await asyncio.wait_for(esme.unbind(), 2)

    def _answer(self, index: int, ev: Any) -> None:
        decision = self.policy(ev)
        if decision is None:
            self.held.append((index, ev))
        elif isinstance(decision, str):
            ev.accept(decision)
            self.accepted[index] = decision
        else:
            ev.reject(decision)

    def release(self, policy: Callable[[Any], str | int | None] | None = None) -> None:
        if policy is not None:
            self.policy = policy
        held, self.held = self.held, []
        for index, ev in held:
            self._answer(index, ev)

    @property
    def submits(self) -> list[Sm]:
        return [sm_from_smpp34(ev) for ev in self.events]

    def accepted_ids(self) -> set[str]:
        return set(self.accepted.values())

    def refuse(self, status: int) -> None:
        self.policy = lambda ev: status

    async def deliver(
        self,
        *,
        source: str,
        destination: str,
        short_message: bytes,
        data_coding: int = 0,
        esm_class: int = 0,
        tlvs: tuple[tuple[int, bytes], ...] = (),
    ) -> int:
        esme = next(e for e in self.esmes if e.can_receive)
        resp = await esme.deliver_sm(
            destination,
            short_message,
            source_addr=source,
            data_coding=data_coding,
            esm_class=esm_class,
            tlvs=[smpp34.Tlv(t, v) for t, v in tlvs],
        )
        return int(resp.command_status)

    async def stop(self) -> None:
        """Go down as a crashed SMSC does: stop listening and end every session.

        smpp34's own stop leaves bound sessions up, so each is unbound, including any that binds while
        the listener closes.
        """
        self.down = True
        if self.server is not None:
            await self.server.stop()
            self.server = None
        esmes, self.esmes = self.esmes, []
        await asyncio.gather(*(self._drop(e) for e in esmes))

    async def close(self) -> None:
        await self.stop()
        await asyncio.gather(*self._unbinding, return_exceptions=True)
        for pump in self._pumps:
            pump.cancel()
        await asyncio.gather(*self._pumps, return_exceptions=True)
        self._pumps = []


async def start_smsc(kind: str, port: int, **kwargs: Any) -> Smsc:
    if kind == "sim":
        return await SimSmsc.start(**kwargs)
    return await Smpp34Smsc.start(port, **kwargs)


@dataclass
class Pair:
    """A gateway between one SMSC and ESMEs of one kind."""

    gw: Gateway
    smsc: Smsc
    esme_kind: str
    esmes: list[Esme] = field(default_factory=list)

    async def esme(self, system_id: str = "bank", password: str = "bankpw") -> Esme:
        esme = make_esme(self.esme_kind, gateway_port(self.gw), system_id, password)
        await esme.connect()
        self.esmes.append(esme)
        return esme


@asynccontextmanager
async def relay(
    esme_kind: str, smsc_kind: str, port: int, *, smsc_kwargs: dict[str, Any] | None = None, **config: Any
) -> AsyncIterator[Pair]:
    smsc = await start_smsc(smsc_kind, port, **(smsc_kwargs or {}))
    try:
        async with running_gateway(make_config(smsc.port, **config)) as gw:
            pair = Pair(gw, smsc, esme_kind)
            try:
                yield pair
            finally:
                for esme in pair.esmes:
                    await esme.close()
    finally:
        await smsc.close()
