"""The SMPP proxy: ESMEs on one side, the SMSC on the other, every message inspected on the way.

Relay rules, all of which a carrier relies on:
- an ESME hears ESME_ROK only after the SMSC said so, with the SMSC's message_id; the SMSC's response
  is relayed as is, only its sequence number changes;
- requests are relayed PDU for PDU: every field and optional parameter byte for byte, in order;
- a receipt goes back to a bind of the ESME that sent the original message; a mobile-originated
  message goes to the account whose ``mo_prefixes`` match its destination (longest prefix wins);
- when the SMSC cannot take a message the ESME is told to retry (ESME_RTHROTTLED for a full window or
  a rate limit, ESME_RMSGQFUL when the SMSC is unreachable), never told yes and dropped;
- when no bind of the receiving ESME can take a delivery, it is handed to another gateway on the same
  store that holds one (gateway.smpp.handoff) and that ESME's answer is relayed; when none can, the
  SMSC is told ESME_RX_T_APPN so that it retries later;
- draining (SIGTERM): no new connection is accepted and a new submit is answered ESME_RTHROTTLED, but
  every submit already relayed waits for the SMSC's answer and gets it; only then is each ESME sent an
  unbind, and only after that is the SMSC unbound. A message the SMSC accepted is never answered
  with a retryable status (the ESME would send it again: delivered twice).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import re
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

from gateway.config import EsmeAccount, GatewayConfig
from gateway.events import EventSink, MemoryEvents
from gateway.inspection import Action, Decision, PassThrough, SmsInspector, SmsMessage, decide
from gateway.logs import get_logger
from gateway.metrics import GatewayMetrics
from gateway.smpp.concat_inspection import Blocked, Complete, ConcatInspection, Held, Streaming
from gateway.smpp.concat_inspection import Key as ConcatKey
from gateway.smpp.concat_inspection import Offer as ConcatOffer
from gateway.smpp.connection import ConnectionGone, RateLog, ResponseTimeout, SmppConnection
from gateway.smpp.esme_server import EsmeBind, EsmeRegistry, EsmeServer
from gateway.smpp.handoff import DeliveryHandoff
from gateway.smpp.rewrite import Rewritable, with_prefix
from gateway.smpp.sender_policy import Refusal, SenderPolicy
from gateway.smpp.smsc_pool import SmscBusy, SmscPool, SmscUnavailable
from gateway.store import AuditRecord, MemoryStore, Store
from protocols.smpp.constants import CommandId, CommandStatus, EsmClass, Tag
from protocols.smpp.pdu import (
    AlertNotification,
    CancelSm,
    DataSm,
    DeliverSm,
    Pdu,
    QuerySm,
    ReplaceSm,
    SubmitMulti,
    SubmitSm,
    response_to,
)

log = get_logger("afgw.proxy")

_S = CommandStatus
# Looked up once: an Enum member lookup costs more than the relay step that uses it on CPython 3.11.
_ROK = int(CommandStatus.ESME_ROK)
_BLOCK = Action.BLOCK
_PREFIXED = frozenset({Action.TAG, Action.LABEL})
_UDHI = int(EsmClass.UDHI)
_RECEIPT_TYPES = int(EsmClass.TYPE_MASK)
_SAR_MSG_REF_NUM = int(Tag.SAR_MSG_REF_NUM)
_RECEIPTED_MESSAGE_ID = int(Tag.RECEIPTED_MESSAGE_ID)
# Built once: ``isinstance(x, A | B)`` builds the union on every call, which costs more than the test.
_SUBMITS = (SubmitSm, SubmitMulti, DataSm)
_ANCILLARY = (QuerySm, CancelSm, ReplaceSm)
_DELIVERIES = (DeliverSm, DataSm)
_RECEIPT_ID = re.compile(rb"id:([0-9A-Za-z\-]+)")
_OWNED = {
    CommandId.QUERY_SM: _S.ESME_RQUERYFAIL,
    CommandId.CANCEL_SM: _S.ESME_RCANCELFAIL,
    CommandId.REPLACE_SM: _S.ESME_RREPLACEFAIL,
}


def receipted_message_id(pdu: DeliverSm | DataSm) -> str | None:
    """The id a receipt or acknowledgement refers to: the TLV if present, else the ``id:`` text."""
    value = pdu.tlv(_RECEIPTED_MESSAGE_ID)
    if value is not None:
        return value.rstrip(b"\x00").decode("latin-1")
    match = _RECEIPT_ID.search(pdu.payload)
    return match.group(1).decode("ascii") if match else None


def is_receipt(pdu: DeliverSm | DataSm) -> bool:
    """Delivery receipts, SME acknowledgements and intermediate notifications (esm_class bits 2-5)."""
    return bool(pdu.esm_class & _RECEIPT_TYPES)


@dataclass(frozen=True, slots=True)
class _Part:
    """A part of a concatenated message, held with what its answer needs."""

    conn: SmppConnection
    bind: EsmeBind
    pdu: Pdu
    #: Its message is complete with it: nothing more will come.
    last: bool = False


class SmppProxy:
    def __init__(
        self,
        config: GatewayConfig,
        *,
        inspector: SmsInspector | None = None,
        store: Store | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
        events: EventSink | None = None,
        clock: Callable[[], float] = time.time,
        metrics: GatewayMetrics | None = None,
    ) -> None:
        self.config = config
        self.events: EventSink = events or MemoryEvents()
        self.metrics = metrics or GatewayMetrics()
        self._latency = self.metrics.smpp_latency
        #: Wall-clock epoch seconds for what the store keeps (receipt routes, audit records): it outlives
        #: the process and is shared between instances, where the loop's monotonic clock means nothing.
        #: Timers (windows, rates, held parts) keep the loop's clock.
        self.clock = clock
        smpp = config.smpp
        self.loop = loop or asyncio.get_running_loop()
        self.inspector: SmsInspector = inspector or PassThrough()
        self.store: Store = store or MemoryStore(ttl=smpp.receipt_ttl, max_entries=smpp.receipt_max_entries)
        #: Asked about a receipt or acknowledgement no ESME owns; True: it was the gateway's own (a
        #: dissuasion flash's), consumed and answered here rather than refused as unrouted.
        self.receipt_hook: Callable[[DeliverSm | DataSm], Awaitable[bool]] | None = None
        #: Deliveries for ESMEs bound to another gateway on the same store, when there are several.
        self.handoff: DeliveryHandoff | None = None
        self._account_ids = frozenset(account.system_id for account in smpp.accounts)
        self.registry = EsmeRegistry()
        self.server = EsmeServer(smpp, self.registry, self._from_esme, self.loop, tap=self.metrics.smpp_esme)
        self.pool = SmscPool(smpp, self._from_smsc, self.loop, tap=self.metrics.smpp_smsc)
        # Longest prefix first, so that 1069012 wins over 10690.
        self._mo_routes = sorted(
            ((prefix, a.system_id) for a in smpp.accounts for prefix in a.mo_prefixes),
            key=lambda r: -len(r[0]),
        )
        self._tasks: set[asyncio.Task[None]] = set()
        #: Submits taken from an ESME and not yet answered: decided or relayed, awaiting the SMSC.
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        #: Set by ``drain``: new submits are answered ESME_RTHROTTLED.
        self.draining = False
        self._throttled_log = RateLog(self.loop, "sms.throttled", smpp.refusal_log_interval)
        self.senders = SenderPolicy(smpp.reserved_senders, smpp.reserved_signatures)
        self.concat: ConcatInspection[_Part] = ConcatInspection(
            hold=smpp.concat_hold,
            max_held_per_account=smpp.concat_max_held_per_account,
            max_held_parts=smpp.concat_max_held_parts,
        )
        self._hold_timers: dict[ConcatKey, asyncio.TimerHandle] = {}
        self._authorised = {
            a.system_id: (
                self.senders.authorised_senders(a.authorised_senders),
                self.senders.authorised_signatures(a.authorised_signatures),
            )
            for a in smpp.accounts
        }

    async def start(self) -> None:
        listen = self.config.smpp.listen
        await self.server.start(listen.host, listen.port, reuse_port=self.config.worker is not None)
        tls_listen, tls = self.config.smpp.tls_listen, self.config.smpp.tls
        if tls_listen is not None and tls is not None:
            await self.server.start_tls(tls_listen.host, tls_listen.port, tls)
            log.info("smpp.listening", host=tls_listen.host, port=self.server.tls_port, tls=True)
        self.pool.start()
        log.info("smpp.listening", host=listen.host, port=self.server.port)

    def replace_accounts(self, accounts: tuple[EsmeAccount, ...]) -> None:
        """Take new ESME accounts (a reload): the next bind is checked against them and their sender
        rights and MO routes apply to the next message. A bind already up keeps the account it bound
        with (its throughput and window) until it unbinds."""
        self.config = replace(self.config, smpp=replace(self.config.smpp, accounts=accounts))
        self.server.replace_accounts(accounts)
        self._account_ids = frozenset(a.system_id for a in accounts)
        self._mo_routes = sorted(
            ((prefix, a.system_id) for a in accounts for prefix in a.mo_prefixes), key=lambda r: -len(r[0])
        )
        authorised = {
            a.system_id: (
                self.senders.authorised_senders(a.authorised_senders),
                self.senders.authorised_signatures(a.authorised_signatures),
            )
            for a in accounts
        }
        # A bind whose account was removed still sends until it unbinds: with no rights to reserved senders.
        none = (self.senders.authorised_senders(()), self.senders.authorised_signatures(()))
        self._authorised = collections.defaultdict(lambda: none, authorised)

    async def drain(self, grace: float) -> None:
        """Stop taking work and finish what was taken (see the module docstring), within ``grace`` seconds."""
        loop = self.loop
        deadline = loop.time() + grace
        self.draining = True
        await self.server.stop_listening()
        log.info("smpp.draining", in_flight=self._in_flight, held_parts=self.concat.held_parts)
        # Held parts are decided when their hold ends (concat_hold) and then relayed like the rest.
        while self._in_flight or self.concat.held_parts:
            remaining = deadline - loop.time()
            if remaining <= 0:
                log.warning("smpp.drain_timeout", in_flight=self._in_flight, held_parts=self.concat.held_parts)
                break
            self._idle.clear()
            # Held parts end their hold on a timer of their own: look again soon.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), min(remaining, 0.05) if self.concat.held_parts else remaining)
        await self.server.unbind_all(max(0.1, min(deadline - loop.time(), self.config.smpp.response_timeout)))
        log.info("smpp.drained")

    def _took(self) -> None:
        self._in_flight += 1

    def _answered(self) -> None:
        self._in_flight -= 1
        if not self._in_flight:
            self._idle.set()

    async def stop(self) -> None:
        for timer in self._hold_timers.values():
            timer.cancel()
        self._hold_timers.clear()
        await self.server.stop()
        await self.pool.stop()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = self.loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- from the ESMEs -----------------------------------------------------------------------------

    def _from_esme(self, conn: SmppConnection, pdu: Pdu) -> None:
        bind = conn.context
        if not isinstance(bind, EsmeBind):  # the session refuses unbound traffic before it gets here
            conn.send(response_to(pdu, _S.ESME_RINVBNDSTS))
            return
        if isinstance(pdu, _SUBMITS):
            if self.draining:
                # Retryable: the ESME sends it again, to another gateway or to this one restarted.
                conn.send(response_to(pdu, _S.ESME_RTHROTTLED))
                self._throttled_log.add(log, system_id=bind.account.system_id, limit="draining")
                return
            if not bind.bucket.take(self.loop.time()):
                conn.send(response_to(pdu, _S.ESME_RTHROTTLED))
                self._throttled_log.add(log, system_id=bind.account.system_id, limit="throughput")
                return
            self._submit(conn, bind, pdu)
        elif isinstance(pdu, _ANCILLARY):
            self._took()
            self._spawn(self._ancillary(conn, bind, pdu))
        else:
            conn.send(response_to(pdu, _S.ESME_RINVCMDID))

    def _submit(self, conn: SmppConnection, bind: EsmeBind, pdu: SubmitSm | SubmitMulti | DataSm) -> None:
        # A chain of callbacks rather than a task per message: at full window the relay handles tens of
        # thousands of these a second, and a task costs more than the whole relay step.
        if pdu.esm_class & _UDHI or pdu.tlv(_SAR_MSG_REF_NUM) is not None:
            offer = self.concat.offer(bind.account.system_id, pdu, _Part(conn, bind, pdu), self.loop.time())
            if offer is not None:
                self._concat_part(conn, bind, pdu, offer)
                return
        self._decide(conn, bind, pdu, self._message(bind, pdu, None), None, started=self.loop.time())

    @staticmethod
    def _message(bind: EsmeBind, pdu: Pdu, text: str | None) -> SmsMessage:
        if isinstance(pdu, SubmitMulti):
            destinations = tuple(getattr(d, "addr", getattr(d, "name", "")) for d in pdu.dest_addresses)
        else:
            destinations = (getattr(pdu, "destination_addr", ""),)
        return SmsMessage(
            pdu,
            direction="mt",
            system_id=bind.account.system_id,
            source=getattr(pdu, "source_addr", ""),
            destinations=destinations,
            text=text,
        )

    def _decide(
        self,
        conn: SmppConnection,
        bind: EsmeBind,
        pdu: Pdu,
        message: SmsMessage,
        key: ConcatKey | None,
        parts: tuple[_Part, ...] = (),
        *,
        started: float | None = None,
    ) -> None:
        """Decide on one message (or on the ``parts`` held of one) and answer or relay each PDU.

        ``started``: when a message of one PDU arrived (the latency histogram measures from there)."""
        senders, signatures = self._authorised[bind.account.system_id]
        refusal = self.senders.check(
            message.source, message.text, authorised_senders=senders, authorised_signatures=signatures
        )
        if refusal is not None:
            self._refuse_reserved(conn, pdu, message, refusal)
            for part in parts[1:]:
                part.conn.send(response_to(part.pdu, refusal.status))
            return
        result = self.inspector.inspect_sms(message)
        if isinstance(result, Decision):
            self._relay_submit(conn, bind, pdu, message, result, key, parts, started)
        else:
            self._took()
            self._spawn(self._submit_after(conn, bind, pdu, message, result, key, parts, started))

    def _concat_part(self, conn: SmppConnection, bind: EsmeBind, pdu: Pdu, offer: ConcatOffer[_Part]) -> None:
        if isinstance(offer, Held):
            if offer.deadline is not None:
                self._hold_timers[offer.key] = self.loop.call_at(offer.deadline, self._hold_ended, offer.key)
        elif isinstance(offer, Complete):
            timer = self._hold_timers.pop(offer.key, None)
            if timer is not None:
                timer.cancel()
            self._decide_held(offer, complete=True)
        elif isinstance(offer, Streaming):
            message = self._message(bind, pdu, offer.text)
            self._decide(conn, bind, pdu, message, offer.key, (_Part(conn, bind, pdu, last=offer.complete),))
        elif isinstance(offer, Blocked):
            message = self._message(bind, pdu, None)
            # The message was announced when it was blocked: its later parts are refused and audited only.
            self._refuse(
                conn,
                pdu,
                bind.account.system_id,
                message,
                offer.decision.rules,
                "part of a blocked message",
                announce=False,
                campaign=offer.decision.campaign,
            )
        else:
            conn.log.info("smpp.part_throttled", reason=offer.reason)
            conn.send(response_to(pdu, _S.ESME_RTHROTTLED))

    def _hold_ended(self, key: ConcatKey) -> None:
        self._hold_timers.pop(key, None)
        released = self.concat.release(key, self.loop.time())
        if released is not None:
            self._decide_held(released, complete=False)

    def _decide_held(self, held: Complete[_Part], *, complete: bool) -> None:
        first = held.parts[0]
        if not complete:
            first.conn.log.info("smpp.parts_released", held=len(held.parts), total=held.key[4])
        parts = tuple(replace(p, last=complete) for p in held.parts)
        message = self._message(first.bind, first.pdu, held.text)
        self._decide(first.conn, first.bind, first.pdu, message, held.key, parts)

    def _refuse_reserved(self, conn: SmppConnection, pdu: Pdu, message: SmsMessage, refusal: Refusal) -> None:
        conn.send(response_to(pdu, refusal.status))
        fields = {
            "system_id": message.system_id,
            "source": message.source,
            "destinations": list(message.destinations),
            "text": message.text,
            "reason": refusal.reason,
            "status": refusal.status,
        }
        self.store.audit(AuditRecord("sms.reserved_refused", self.clock(), fields))
        self.events.emit(
            "sms.reserved_refused",
            system_id=message.system_id,
            source=message.source,
            destination=message.destinations[0] if message.destinations else "",
            status=int(refusal.status),
            reason=refusal.reason,
        )

    async def _submit_after(
        self,
        conn: SmppConnection,
        bind: EsmeBind,
        pdu: Pdu,
        message: SmsMessage,
        pending: Awaitable[Decision],
        key: ConcatKey | None,
        parts: tuple[_Part, ...],
        started: float | None,
    ) -> None:
        try:
            decision = await pending
        finally:
            self._answered()
        self._relay_submit(conn, bind, pdu, message, decision, key, parts, started)

    def _relay_submit(
        self,
        conn: SmppConnection,
        bind: EsmeBind,
        pdu: Pdu,
        message: SmsMessage,
        decision: Decision,
        key: ConcatKey | None = None,
        parts: tuple[_Part, ...] = (),
        started: float | None = None,
    ) -> None:
        system_id = bind.account.system_id
        if decision.action is _BLOCK:
            if key is not None:
                self.concat.block(key, decision, self.loop.time())
            # One refusal recorded per message; every part held of it hears the same answer.
            self._refuse(conn, pdu, system_id, message, decision.rules, decision.reason, campaign=decision.campaign)
            for part in parts[1:]:
                part.conn.send(response_to(part.pdu, _S.ESME_RSUBMITFAIL))
            return
        if key is not None and parts and parts[-1].last:
            self.concat.forget(key)
        if not parts:
            relayed = self._rewritten(pdu, decision)
            self._took()
            self.pool.submit_with(relayed, conn, partial(self._submitted, conn, system_id, pdu, started))
            return
        # In part order, each on its ESME session's bind: the SMSC receives them as the ESME sent them.
        for part in parts:
            if not part.conn.is_open:
                # Never told yes, the ESME sends the part again when it is back: relaying it now too
                # would deliver it twice.
                part.conn.log.info("smpp.part_dropped", reason="the ESME left while it was held")
                continue
            relayed = self._rewritten(part.pdu, decision)
            self._took()
            self.pool.submit_with(relayed, part.conn, partial(self._submitted, part.conn, system_id, part.pdu, None))

    @staticmethod
    def _rewritten(pdu: Pdu, decision: Decision) -> Pdu:
        """The message as it goes on: with the tag or label in front of its text when the rules say so."""
        if decision.label and decision.action in _PREFIXED and isinstance(pdu, Rewritable):
            return with_prefix(pdu, decision.label)
        return pdu

    def _submitted(
        self,
        conn: SmppConnection,
        system_id: str,
        pdu: Pdu,
        started: float | None,
        resp: Pdu | None,
        exc: Exception | None,
    ) -> None:
        """The SMSC's answer to a relayed submit (``resp``), or why there is none (``exc``)."""
        self._answered()
        if resp is None:
            if isinstance(exc, SmscBusy):
                conn.send(response_to(pdu, _S.ESME_RTHROTTLED))
            else:
                # The SMSC may or may not have the message: a temporary error makes the ESME retry, so
                # at worst it is sent twice, never lost.
                conn.log.info("smpp.submit_deferred", reason=type(exc).__name__)
                conn.send(response_to(pdu, _S.ESME_RMSGQFUL))
            return
        answered = self._answer_esme(conn, pdu, resp)
        if started is not None and answered:
            self._latency.observe(self.loop.time() - started)
        message_id = getattr(resp, "message_id", "")
        if resp.command_status == _ROK and message_id:
            self.store.remember_message(message_id, system_id, self.clock())
        if not answered and resp.command_status == _ROK:
            # The SMSC has the message and will deliver it, but the ESME closed, reset or unbound
            # first and never hears so: it may send it again. The id lets an operator match the two.
            conn.log.warning("sms.reply_undelivered", message_id=message_id, sequence_number=pdu.sequence_number)
        conn.log.debug("sms.relayed", message_id=message_id, status=resp.command_status)

    def _answer_esme(self, conn: SmppConnection, request: Pdu, resp: Pdu) -> bool:
        if resp.command_id == request.command_id | 0x80000000:
            return conn.send(resp, sequence_number=request.sequence_number)
        # A generic_nack from the SMSC still answers the ESME with the response it expects.
        return conn.send(response_to(request, resp.command_status))

    def _refuse(
        self,
        conn: SmppConnection,
        pdu: Pdu,
        system_id: str,
        message: SmsMessage,
        rules: tuple[str, ...],
        reason: str,
        *,
        announce: bool = True,
        campaign: str | None = None,
    ) -> None:
        conn.send(response_to(pdu, _S.ESME_RSUBMITFAIL))
        # A copy of an open campaign says which one, in the audit trail and in the event.
        extra = {"campaign": campaign} if campaign else {}
        self.store.audit(
            AuditRecord(
                "sms.blocked",
                self.clock(),
                {
                    "system_id": system_id,
                    "source": message.source,
                    "destinations": list(message.destinations),
                    "text": message.text,
                    "rules": list(rules),
                    "reason": reason,
                    **extra,
                },
            )
        )
        if not announce:
            return
        # The event sink writes the log line; one of our own here said it twice.
        self.events.emit(
            "sms.blocked",
            system_id=system_id,
            source=message.source,
            destination=message.destinations[0] if message.destinations else "",
            rules=list(rules),
            **extra,
        )

    async def _route_owner(self, message_id: str, now: float) -> str | None:
        """Who sent the message a receipt is about. A shared store (Redis) also knows the messages
        submitted through other instances, or before a restart, which this instance's map does not."""
        owner = self.store.owner_of(message_id, now)
        route_owner = getattr(self.store, "route_owner", None)
        if owner is None and route_owner is not None:
            found: str | None = await route_owner(message_id, now)
            return found
        return owner

    async def _ancillary(self, conn: SmppConnection, bind: EsmeBind, pdu: QuerySm | CancelSm | ReplaceSm) -> None:
        try:
            await self._ancillary_answer(conn, bind, pdu)
        finally:
            self._answered()

    async def _ancillary_answer(
        self, conn: SmppConnection, bind: EsmeBind, pdu: QuerySm | CancelSm | ReplaceSm
    ) -> None:
        # Only the ESME that submitted a message may query, cancel or replace it.
        owner = await self._route_owner(pdu.message_id, self.clock())
        if owner != bind.account.system_id:
            conn.log.info("smpp.not_owner", message_id=pdu.message_id, command=type(pdu).__name__)
            conn.send(response_to(pdu, _OWNED[pdu.command_id]))
            return
        try:
            resp = await self.pool.send(pdu)
        except SmscBusy:
            conn.send(response_to(pdu, _S.ESME_RTHROTTLED))
            return
        except (SmscUnavailable, ConnectionGone, ResponseTimeout):
            conn.send(response_to(pdu, _S.ESME_RMSGQFUL))
            return
        self._answer_esme(conn, pdu, resp)

    # --- from the SMSC ------------------------------------------------------------------------------

    def _from_smsc(self, conn: SmppConnection, pdu: Pdu) -> None:
        if isinstance(pdu, _DELIVERIES):
            try:
                self._deliver_now(conn, pdu)
            except Exception as exc:
                # Reported as a task's failure was, and the bind reads on: what went unanswered the SMSC
                # sends again.
                self.loop.call_exception_handler({"message": "SMPP delivery failed", "exception": exc})
        elif isinstance(pdu, AlertNotification):
            system_id = self._mo_route(pdu.esme_addr)
            target = self.registry.receiver(system_id) if system_id else None
            if target is not None:
                target.send(pdu, sequence_number=target.session.next_sequence_number())
            else:
                conn.log.info("smpp.alert_unrouted", esme_addr=pdu.esme_addr)
        else:
            conn.send(response_to(pdu, _S.ESME_RINVCMDID))

    def _mo_route(self, destination: str) -> str | None:
        for prefix, system_id in self._mo_routes:
            if destination.startswith(prefix):
                return system_id
        return None

    def _deliver_now(self, smsc: SmppConnection, pdu: DeliverSm | DataSm) -> None:
        """Relay a delivery without a task when its route is at hand (a receipt for a message this
        instance sent, or an MO message) and the decision is made in memory: sent on to a bind of its
        ESME's, whose answer is called back. A task takes the rest: a route asked of the shared store,
        the gateway's own receipts (``_deliver``), a decision that waits for the store, a handover to
        another gateway when no bind here can take it."""
        if is_receipt(pdu):
            kind, message_id = "receipt", receipted_message_id(pdu)
            system_id = self.store.owner_of(message_id, self.clock()) if message_id else None
            if system_id is not None and self.receipt_hook is not None and system_id not in self._account_ids:
                system_id = None  # perhaps the gateway's own warning flash: the hook is asked in the task
        else:
            kind, message_id = "mo", None
            system_id = self._mo_route(pdu.destination_addr)
        if system_id is None:
            self._spawn(self._deliver(smsc, pdu))
            return
        delivery = _Delivery(smsc, pdu, kind, message_id, system_id)
        message = delivery.message()
        result = self.inspector.inspect_sms(message)
        if isinstance(result, Decision):
            self._deliver_decided(delivery, message, result)
        else:
            self._spawn(self._deliver_after(delivery, message, result))

    async def _deliver_after(self, delivery: _Delivery, message: SmsMessage, pending: Awaitable[Decision]) -> None:
        self._deliver_decided(delivery, message, await pending)

    async def _deliver(self, smsc: SmppConnection, pdu: DeliverSm | DataSm) -> None:
        kind, message_id = _kind_of(pdu)
        if kind == "receipt":
            system_id = await self._route_owner(message_id, self.clock()) if message_id else None
        else:
            system_id = self._mo_route(pdu.destination_addr)
        # An owner that is no ESME account is the gateway itself (its warning flashes).
        hook = self.receipt_hook
        if kind == "receipt" and hook is not None and system_id not in self._account_ids and await hook(pdu):
            smsc.send(response_to(pdu, _ROK))
            return
        if system_id is None:
            # Nobody asked for it: tell the SMSC permanently, so that it does not retry forever.
            smsc.log.bind(kind=kind, message_id=message_id, system_id=None).warning(
                "smpp.delivery_unrouted", destination=pdu.destination_addr
            )
            smsc.send(response_to(pdu, _S.ESME_RX_P_APPN))
            return
        delivery = _Delivery(smsc, pdu, kind, message_id, system_id)
        message = delivery.message()
        decision = await decide(self.inspector, message)
        if not self._deliver_decided(delivery, message, decision, hand_over=False):
            await self._hand_over(delivery, decision)

    def _deliver_decided(
        self, delivery: _Delivery, message: SmsMessage, decision: Decision, *, hand_over: bool = True
    ) -> bool:
        """Refuse a blocked delivery, or send it to a bind of the ESME's; False when no bind can take
        it (with ``hand_over``, ``_hand_over`` is then started to try another gateway, in a task)."""
        if decision.action is _BLOCK:
            delivery.answer(_S.ESME_RX_P_APPN)
            pdu, rules = delivery.pdu, list(decision.rules)
            record = {"direction": delivery.kind, "source": pdu.source_addr, "text": message.text, "rules": rules}
            self.store.audit(AuditRecord("sms.blocked", self.clock(), record))
            delivery.log().warning("sms.blocked", rules=rules)
            return True
        target = self.registry.receiver(delivery.system_id)
        if target is None:
            if hand_over:
                self._spawn(self._hand_over(delivery, decision))
            return hand_over
        target.request_with(self._rewritten(delivery.pdu, decision), partial(self._delivered, delivery))
        return True

    async def _hand_over(self, delivery: _Delivery, decision: Decision) -> None:
        """A delivery decided on that no bind of its ESME's here can take: the ESME may receive through
        another gateway on the same store."""
        relayed = self._rewritten(delivery.pdu, decision)
        handoff = self.handoff
        handed = await handoff.deliver(delivery.system_id, relayed) if handoff is not None else None
        if handed is None:
            delivery.log().info("smpp.delivery_deferred", reason="no receiving bind with room")
            delivery.answer(_S.ESME_RX_T_APPN)
            return
        delivery.log().info("smpp.delivery_handed_over", status=handed.command_status)
        self._answer_smsc(delivery.smsc, delivery.pdu, handed)

    def _delivered(self, delivery: _Delivery, resp: Pdu | None, exc: Exception | None) -> None:
        """The ESME's answer to a delivery (``resp``), or why there is none (``exc``)."""
        if resp is None:
            delivery.log().info("smpp.delivery_deferred", reason=type(exc).__name__)
            delivery.answer(_S.ESME_RX_T_APPN)
            return
        self._answer_smsc(delivery.smsc, delivery.pdu, resp)

    @staticmethod
    def _answer_smsc(smsc: SmppConnection, pdu: Pdu, resp: Pdu) -> None:
        if resp.command_id == pdu.command_id | 0x80000000:
            smsc.send(resp, sequence_number=pdu.sequence_number)
        else:
            smsc.send(response_to(pdu, resp.command_status))


def _kind_of(pdu: DeliverSm | DataSm) -> tuple[str, str | None]:
    """ "receipt" with the id of the message it is about (None when it names none), or "mo"."""
    if is_receipt(pdu):
        return "receipt", receipted_message_id(pdu)
    return "mo", None


class _Delivery:
    """A deliver_sm or data_sm from the SMSC, routed to an ESME account, with what its answer to the
    SMSC and its log lines need."""

    __slots__ = ("kind", "message_id", "pdu", "smsc", "system_id")

    def __init__(
        self, smsc: SmppConnection, pdu: DeliverSm | DataSm, kind: str, message_id: str | None, system_id: str
    ) -> None:
        self.smsc = smsc
        self.pdu = pdu
        #: "receipt" (with the ``message_id`` it is about) or "mo".
        self.kind = kind
        self.message_id = message_id
        #: The account it goes to.
        self.system_id = system_id

    def message(self) -> SmsMessage:
        """The delivery as the rules see it. Receipts are inspected too: their text is the SMSC's, but a
        forged "receipt" is text all the same."""
        pdu = self.pdu
        return SmsMessage(
            pdu,
            direction=self.kind,
            system_id=self.system_id,
            source=pdu.source_addr,
            destinations=(pdu.destination_addr,),
        )

    def answer(self, status: int) -> None:
        """Answer the SMSC with ``status`` and nothing else."""
        self.smsc.send(response_to(self.pdu, status))

    def log(self) -> Any:
        """The SMSC bind's logger with the delivery's fields: bound only for a line to write (a bind copies
        the context, which cost more than a relayed receipt's own work when done for each one)."""
        return self.smsc.log.bind(kind=self.kind, message_id=self.message_id, system_id=self.system_id)
