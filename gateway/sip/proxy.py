"""The SIP proxy: a transaction-stateful, record-routing proxy and registrar for one domain.

Requests come from two sides. The trunk side is the set of ``trusted_peers`` (by source address):
they place calls without authenticating. Everyone else is a handset or a stranger: with digest
authentication on, nothing they send is served before they prove who they are (the same 401 or 407
for every user name, so scanners learn nothing, sent without a transaction: see ``_admit``), the
credentials the gateway checked go no further, and every source address is rate limited.

Where messages go (DESIGN "Network safety"): a request goes only to the flow a handset registered
from, or, inside a dialog, to the flow the other side used; a response goes back to the source of its
request as stamped on the Via (RFC 3581 for everyone). Host names in messages are never resolved.

Every initial request routed to a handset first passes the STIR policy (:mod:`gateway.sip.stir_policy`):
whatever a caller could use to assert an identity or a caller label (P-Asserted-Identity, Call-Info,
Identity, vendor label headers, verstat) is stripped, an Identity header is verified, and only a
verified call is stamped with the label (反诈名片) and ``verstat=TN-Validation-Passed``; a call that
shows a protected label without proof is refused with an RFC 9410 Reason, audited and published as a
``call.label_rejected`` event. Then every initial INVITE goes through the call inspection hook before
it is forwarded; its decision may reject the call with a status and reason, or label it for the
handset's screen.

This module is the server side: admission (rate limits, authentication), the registrar, routing
decisions and server transactions. :mod:`gateway.sip.forwarding` is the client side: branches,
client transactions and the responses that go back upstream.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable, Coroutine
from dataclasses import replace
from typing import Any

from gateway.config import SipConfig
from gateway.events import EventSink, MemoryEvents
from gateway.inspection import Action, Call, CallInspector, Decision, PassThrough
from gateway.labels import LabelsConfig
from gateway.logs import get_logger
from gateway.metrics import GatewayMetrics
from gateway.sip.auth import AuthOutcome, DigestAuthenticator
from gateway.sip.dialogs import DialogRoute, DialogTable
from gateway.sip.forwarding import Forwarder
from gateway.sip.location import Binding, LocationService, StoredRegistrations
from gateway.sip.messages import (
    ALLOW,
    ALLOW_METHODS,
    new_tag,
    reply,
    stamp_received,
    without_own_routes,
)
from gateway.sip.ratelimit import SourceLimiter, Verdict
from gateway.sip.registrar import Registrar
from gateway.sip.shared_replay import SharedReplay
from gateway.sip.state import CallLog, ResponseContext, ServerEntry
from gateway.sip.stir_policy import REPLAYED, Admit, Refuse, StirPolicy, build_call_verifier
from gateway.sip.timers import TimerQueue
from gateway.sip.transport import Flow, Transports
from gateway.store import AuditRecord, MemoryStore, StateStore, Store
from gateway.tls import client_context, server_context
from protocols.errors import LocalProtocolError, RemoteProtocolError
from protocols.sip import (
    LegacyServerTransactionKey,
    NameAddr,
    Request,
    Response,
    ServerInviteTransaction,
    ServerNonInviteTransaction,
    ServerTransactionKey,
    SipParseError,
    SipUri,
    TimedOut,
    TimerSettings,
    TransactionEvent,
    TransactionState,
    TransactionTerminated,
    cancel_target_key,
    create_response,
    server_transaction_key,
    unsupported_extensions,
    validate_request,
)
from protocols.stir import InvalidIdentityHeader, Verifier

log = get_logger("afgw.sip")

ServerKey = ServerTransactionKey | LegacyServerTransactionKey
# Methods whose initial request creates a dialog: the proxy record-routes them.
_DIALOG_CREATING = frozenset({"INVITE", "SUBSCRIBE", "REFER", "NOTIFY"})
_HOUSEKEEPING_INTERVAL = 5.0
#: Server transaction states that still owe the client a final answer.
_UNANSWERED = frozenset({TransactionState.TRYING, TransactionState.PROCEEDING})
#: Seconds a REGISTER's answer waits for its change to reach the store (well inside timer F, 32 s).
_SAVE_WAIT = 2.0
#: Hex digits in the To tag of a stateless answer (see _stateless_tag).
_STATELESS_TAG_LENGTH = 20


class SipProxy:
    def __init__(
        self,
        config: SipConfig,
        *,
        inspector: CallInspector | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
        verifier: Verifier | None = None,
        store: Store | None = None,
        events: EventSink | None = None,
        clock: Callable[[], float] = time.time,
        registrations: StateStore | None = None,
        shared_registrations: bool = False,
        metrics: GatewayMetrics | None = None,
        shared_replay: SharedReplay | None = None,
        reuse_port: bool = False,
    ) -> None:
        self.config = config
        self.metrics = metrics or GatewayMetrics()
        self._tally = self.metrics.sip
        #: Listen on ports shared with sibling workers (SO_REUSEPORT).
        self.reuse_port = reuse_port
        #: Where the PASSporTs accepted by every gateway on one store are claimed, one call each.
        self.shared_replay = shared_replay
        self.loop = loop or asyncio.get_event_loop()
        self.inspector: CallInspector = inspector or PassThrough()
        if verifier is None and config.labels is not None:
            verifier = build_call_verifier(config.labels)
        self.stir = StirPolicy(config.stir, verifier, domain=config.domain)
        self.store: Store = store if store is not None else MemoryStore()
        self.events: EventSink = events if events is not None else MemoryEvents(clock=clock)
        #: Wall-clock epoch seconds, for PASSporT iat and the audit trail (the loop clock is monotonic).
        self.clock = clock
        self.timers = TimerSettings(t1=config.t1, t2=max(4.0, 8 * config.t1), t4=max(5.0, 10 * config.t1))
        self.transports = Transports(
            self,
            self.loop,
            max_connections=config.max_tcp_connections,
            idle_timeout=config.tcp_idle_timeout,
            max_per_source=config.max_tcp_per_source,
            message_timeout=config.tcp_message_timeout,
            tally=self.metrics.sip,
            tls=(server_context(config.tls), client_context(config.tls)) if config.tls is not None else None,
        )
        self.location = LocationService(max_aors=config.registrar.max_aors, max_contacts=config.registrar.max_contacts)
        #: With a store, registrations are written through to it and reloaded at start (a restart
        #: does not make every handset register again before it can be called).
        self.stored_registrations: StoredRegistrations | None = None
        if registrations is not None:
            self.stored_registrations = StoredRegistrations(
                registrations, self.loop, wall_clock=clock, shared=shared_registrations
            )
            self.location.journal = self.stored_registrations
        self.dialogs = DialogTable(max_dialogs=config.max_dialogs, timeout=config.dialog_timeout)
        self.registrar = Registrar(
            config,
            self.location,
            self.is_our_host,
            keep_flow=self.transports.keep_open,
        )
        self.known_users = frozenset(u.user for u in config.registrar.users)
        self.auth: DigestAuthenticator | None = None
        if config.registrar.auth:
            self.auth = DigestAuthenticator(
                config.registrar.realm or config.domain,
                {u.user: u.password for u in config.registrar.users},
                nonce_ttl=config.registrar.nonce_ttl,
                algorithms=config.registrar.digest_algorithms,
            )
        rl = config.rate_limit
        self.limiter = SourceLimiter(rate=rl.rate, burst=rl.burst, hard_limit=rl.hard_limit, max_sources=rl.max_sources)
        self.timer_queue = TimerQueue(self.loop)
        self.forwarder = Forwarder(
            self.transports,
            self.dialogs,
            self.timer_queue,
            self.timers,
            self._send_upstream,
            self.loop,
            max_accepted=4 * config.max_transactions,
        )
        self._server: dict[ServerKey, ServerEntry] = {}
        self._tag_secret = secrets.token_bytes(16)
        # INVITEs answered 2xx: their server transaction is gone (RFC 3261), but retransmissions must
        # not become new calls; remembered for 64*T1 (what RFC 6026's Accepted state does).
        self._accepted: OrderedDict[ServerKey, float] = OrderedDict()
        self._hosts = {config.listen.host.lower(), config.domain.lower()}
        self._trusted: dict[str, bool] = {}
        self._housekeeping: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        #: Set by ``drain``: requests that would begin a dialog or a registration get 503.
        self.draining = False
        self._progress = asyncio.Event()
        self.stats = {
            "requests": 0,
            "responses": 0,
            "rejected_calls": 0,
            "dropped": 0,
            "label_rejected": 0,
            "label_verified": 0,
        }

    # --- lifecycle -------------------------------------------------------------------------------------

    async def start(self) -> None:
        listen = self.config.listen
        if self.stored_registrations is not None:
            # Before listening: a call that arrives first must find its handset.
            restored = await self.stored_registrations.restore(self.location)
            log.info("sip.registrations_restored", users=len(self.location), contacts=restored)
        await self.transports.start(
            listen.host,
            listen.udp_port,
            listen.tcp_port,
            listen.tls_port,
            reuse_port=self.reuse_port,
            own_udp_port=listen.worker_udp_port,
        )
        self._housekeeping = self.loop.call_later(_HOUSEKEEPING_INTERVAL, self._housekeep)
        log.info(
            "sip.listening",
            host=listen.host,
            udp_port=self.transports.udp_port,
            tcp_port=self.transports.tcp_port,
            tls_port=self.transports.tls_port if self.transports.tls is not None else None,
            worker_udp_port=self.transports.own_udp_port if self.transports.own_udp is not None else None,
            domain=self.config.domain,
            auth=self.auth is not None,
        )

    def replace_labels(self, labels: LabelsConfig | None) -> None:
        """Verify and protect calls against a new labels file (a reload), from the next call on. The
        replay cache carries over: a PASSporT seen before the reload is still a replay after it."""
        verifier = build_call_verifier(labels) if labels is not None else None
        old = self.stir.verifier
        if verifier is not None and old is not None:
            verifier.replay = old.replay
        self.stir = StirPolicy(self.config.stir, verifier, domain=self.config.domain)
        self.config = replace(self.config, labels=labels)

    async def drain(self, grace: float) -> None:
        """Take no new calls or registrations (503 with Retry-After, so that a client tries another
        gateway or this one later) and give the transactions under way up to ``grace`` seconds to
        reach their final answer; requests within a dialog (ACK, BYE, re-INVITE) and CANCEL are
        still served meanwhile."""
        self.draining = True
        deadline = self.loop.time() + grace
        while (busy := self.unanswered_transactions()) and (remaining := deadline - self.loop.time()) > 0:
            self._progress.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._progress.wait(), remaining)
        if busy:
            log.warning("sip.drain_timeout", unanswered=busy)
        log.info("sip.drained")

    def unanswered_transactions(self) -> int:
        """Server transactions that have not sent their final answer yet."""
        return sum(1 for e in self._server.values() if e.txn.state in _UNANSWERED)

    async def stop(self) -> None:
        if self._housekeeping is not None:
            self._housekeeping.cancel()
        for task in list(self._tasks):
            task.cancel()
        self.timer_queue.close()
        await self.transports.stop()
        if self.stored_registrations is not None:
            await self.stored_registrations.close()

    @property
    def udp_port(self) -> int:
        return self.transports.udp_port

    @property
    def tcp_port(self) -> int:
        return self.transports.tcp_port

    @property
    def tls_port(self) -> int:
        return self.transports.tls_port

    # --- who is who ------------------------------------------------------------------------------------

    def is_our_host(self, host: str) -> bool:
        return host.lower() in self._hosts

    def is_our_uri(self, uri: SipUri) -> bool:
        """A URI naming this proxy: a Route or Record-Route entry of ours, or a Request-URI at us.

        The host alone does not say it: softphones and trunks on the gateway's own host have URIs
        with its address and their own port. A port (and a transport, when given) must be one we
        listen on; a URI without a port names us only by the domain, or by the address when we
        listen on the default port (RFC 3263 would find us there)."""
        if not uri.is_sip or not self.is_our_host(uri.host):
            return False
        udp, tcp = self.transports.udp_port, self.transports.tcp_port
        tls = self.transports.tls_port if self.transports.tls is not None else None
        if uri.port is None:
            if uri.host.lower() == self.config.domain.lower():
                return True
            default = 5061 if uri.scheme == "sips" else 5060
            return default in (udp, tcp, tls)
        transport = (uri.transport or "").lower()
        if transport == "tls" or uri.scheme == "sips":
            # Without a TLS listener, sips: names the TCP one (as it did before TLS was configurable).
            return uri.port == (tls if tls is not None else tcp)
        if transport == "tcp":
            return uri.port == tcp
        if transport == "udp":
            return uri.port == udp
        return uri.port in (udp, tcp, tls)

    # --- transport sink --------------------------------------------------------------------------------

    def message_received(self, message: Request | Response, flow: Flow) -> None:
        try:
            if isinstance(message, Request):
                self.stats["requests"] += 1
                self._tally.request_received(message.method)
                self._on_request(message, flow)
            else:
                self.stats["responses"] += 1
                self._tally.response_received(message.status)
                self.forwarder.response_received(message, flow)
        except RemoteProtocolError as exc:
            if isinstance(message, Request) and exc.answer is not None and message.method != "ACK":
                self._answer_statelessly(message.headers, exc.answer, str(exc), flow)
            else:
                log.debug("sip.discarded", error=str(exc), peer=str(flow))
        except Exception:  # a bug here must cost one message, never the proxy
            log.exception("sip.internal_error", peer=str(flow))

    def bad_message(self, error: SipParseError, flow: Flow) -> None:
        log.debug("sip.unparseable", error=str(error), peer=str(flow))
        if error.answer is None or error.headers is None or not error.is_request:
            return
        if self._limited(flow, ack=False):
            return
        self._answer_statelessly(error.headers, error.answer, str(error), flow)

    def _answer_statelessly(self, headers: Any, status: int, reason: str, flow: Flow) -> None:
        try:
            response = create_response(headers, status, reason[:80] or None, to_tag=new_tag())
            if not response.headers.get_all("Via"):
                return  # nowhere to send it in SIP terms; the RFC's answer needs a Via
            self.transports.send(flow, response.serialise())
        except (RemoteProtocolError, LocalProtocolError) as exc:
            log.debug("sip.unanswerable", error=str(exc), peer=str(flow))

    def is_trunk(self, flow: Flow) -> bool:
        """The trunk side: by its source address, or over TLS, when ``trunk_names`` is set, by the name
        its verified client certificate carries (and then by that alone: an address does not stand in
        for a missing or wrong certificate)."""
        names = self.config.tls_trunk_names
        if flow.transport == "TLS" and names:
            return not names.isdisjoint(self.transports.peer_names(flow))
        return self.is_trusted(flow.host)

    def is_trusted(self, host: str) -> bool:
        trusted = self._trusted.get(host)
        if trusted is None:
            if len(self._trusted) > 4096:
                self._trusted.clear()
            trusted = self._trusted[host] = self.config.is_trusted(host)
        return trusted

    def _limited(self, flow: Flow, *, ack: bool, headers: Any = None) -> bool:
        """Apply the per-source limit; True when the request must go no further."""
        if not self.config.rate_limit.limit_trusted and self.is_trunk(flow):
            return False
        verdict = self.limiter.check(flow.host, self.loop.time())
        if verdict is Verdict.ALLOW:
            return False
        self.stats["dropped"] += 1
        if verdict is Verdict.THROTTLE and headers is not None and not ack:
            try:
                response = create_response(headers, 503, to_tag=new_tag())
                response.headers.add("Retry-After", str(self.config.rate_limit.retry_after))
                self.transports.send(flow, response.serialise())
            except (RemoteProtocolError, LocalProtocolError):
                pass
        return True

    # --- requests --------------------------------------------------------------------------------------

    def _on_request(self, request: Request, flow: Flow) -> None:
        now = self.loop.time()
        if self._limited(flow, ack=request.method == "ACK", headers=request.headers):
            return
        validate_request(request, forwarding=False)
        stamp_received(request, flow)
        if request.method == "ACK":
            self._on_ack(request, flow, now)
            return
        key = server_transaction_key(request)
        entry = self._server.get(key)
        if entry is not None:
            self._server_events(entry, entry.txn.receive_request(request, now), now)
            return
        if key in self._accepted:
            return  # a retransmitted INVITE already answered 2xx: the 2xx retransmissions answer it
        if self.draining and request.method != "CANCEL" and request.to_tag is None:
            self._reply_statelessly(request, flow, 503, [("Retry-After", str(self.config.overload_retry_after))])
            return
        admitted, auth_user = self._admit(request, flow, now)
        if not admitted:
            return
        if len(self._server) >= self.config.max_transactions:
            # Stateless, for the reason the challenge is: past the cap, memory is what we lack.
            self._reply_statelessly(request, flow, 503, [("Retry-After", str(self.config.overload_retry_after))])
            return
        reliable = flow.reliable
        txn: ServerInviteTransaction | ServerNonInviteTransaction
        if request.method == "INVITE":
            txn = ServerInviteTransaction(request, reliable=reliable, timers=self.timers)
        else:
            txn = ServerNonInviteTransaction(request, reliable=reliable, timers=self.timers)
        entry = ServerEntry(txn, flow, new_tag(), CallLog(log, request.call_id), auth_user=auth_user)
        self._server[key] = entry
        if request.method == "INVITE":
            if request.to_tag is None:
                entry.invite_at = now
            self._respond(entry, 100)
        if request.method == "CANCEL":
            self._on_cancel(entry, request, now)
            return
        self._route(entry, request, flow, now)

    # --- admission: the stateless part --------------------------------------------------------------
    #
    # A request that has not proved who sent it is answered without a server transaction, as a
    # stateless UAS (RFC 3261 8.2.7) or stateless proxy (16.11) may: no 100 Trying first, no record,
    # no retransmission of the answer. RFC 3261 allows it and nothing is lost:
    # - 22.1 and 22.3 only ask that a challenge be a 401/407 with a fresh nonce; 8.2.6 and 16.2 do
    #   not require a transaction to answer a request the element declines to process.
    # - 17.2.1: over UDP, a server transaction retransmits a non-2xx final only to survive its
    #   loss; here a lost challenge is healed by the client's own retransmission of the request
    #   (Timer A/E), which is simply challenged again, so the answer still arrives.
    # - The ACK for a non-2xx final answer is hop-by-hop and matched by the server transaction that
    #   no longer exists: it is recognised by the stateless To tag (8.2.7: a stateless UAS derives
    #   the tag from the request, so that every retransmission gets the same one) and absorbed,
    #   neither answered nor forwarded (8.2.7: a stateless UAS ignores ACK).
    # A spoofed request therefore draws exactly one response per copy and costs no memory, as
    # with Kamailio's sl module; the same holds for the 503 past the transaction cap.

    def _admit(self, request: Request, flow: Flow, now: float) -> tuple[bool, str | None]:
        """Authenticate a handset's request before it costs anything: (admitted, user it proved)."""
        method = request.method
        if self.auth is None or method == "CANCEL":
            return True, None  # a CANCEL is tied to its INVITE's source by _on_cancel
        if method != "REGISTER":
            if self.is_trunk(flow):
                return True, None
            from_tag, to_tag = request.from_tag, request.to_tag
            if from_tag is not None and to_tag is not None:
                dialog = self.dialogs.get(request.call_id, from_tag, to_tag, now)
                if dialog is not None and dialog.towards(to_tag).flow.host == flow.host:
                    return True, None  # a party to a dialog the gateway let through
        uri = request.uri
        # A registrar, or the gateway as the UAS a request is addressed to, challenges with 401 and
        # reads Authorization; a proxy with 407 and Proxy-Authorization (RFC 3261 22.2, 22.3),
        # leaving Authorization to the UAS it is for.
        registering = method == "REGISTER" or (uri.is_sip and uri.user is None and self.is_our_host(uri.host))
        header = "Authorization" if registering else "Proxy-Authorization"
        result = self.auth.check(request, flow.host, now, header=header)
        if not result.ok:
            stale = result.outcome is AuthOutcome.STALE
            challenge = "WWW-Authenticate" if registering else "Proxy-Authenticate"
            values = self.auth.challenges(now, flow.host, stale=stale)
            self._reply_statelessly(request, flow, 401 if registering else 407, [(challenge, v) for v in values])
            return False, None
        if result.consumed is not None and method != "REGISTER":
            # The gateway's own credentials go no further: the digest response is an offline
            # guessing oracle for the caller's password in anyone else's hands.
            request.headers.remove_value(*result.consumed)
        return True, result.username

    def _stateless_tag(self, request: Request) -> str:
        """The To tag of a stateless answer: the same for a request, its retransmissions and the
        ACK of the answer (they share Call-ID, From tag, CSeq number and the top Via branch)."""
        material = "\x00".join(
            (request.call_id, request.from_tag or "", str(request.cseq.number), request.top_via.branch or "")
        )
        return hmac.new(self._tag_secret, material.encode(), hashlib.sha256).hexdigest()[:_STATELESS_TAG_LENGTH]

    def _reply_statelessly(self, request: Request, flow: Flow, status: int, headers: list[tuple[str, str]]) -> None:
        try:
            response = reply(request, status, to_tag=self._stateless_tag(request))
            for name, value in headers:
                response.headers.add(name, value)
            self.transports.send(flow, response.serialise())
        except (RemoteProtocolError, LocalProtocolError) as exc:
            log.debug("sip.unanswerable", error=str(exc), peer=str(flow))

    def _respond(self, entry: ServerEntry, status: int, reason: str | None = None, **headers: str) -> Response:
        response = reply(entry.txn.request, status, reason, to_tag=entry.to_tag)
        for name, value in headers.items():
            response.headers.add(name.replace("_", "-"), value)
        self._send_upstream(entry, response)
        return response

    def _send_upstream(self, entry: ServerEntry, response: Response) -> None:
        now = self.loop.time()
        if entry.invite_at is not None and response.status > 100:
            self.metrics.invite_latency.observe(now - entry.invite_at)
            entry.invite_at = None
        if entry.txn.terminated:
            self.transports.send(entry.flow, response.serialise())
            return
        events = entry.txn.send_response(response, now)
        if response.is_success and isinstance(entry.txn, ServerInviteTransaction):
            self._accepted[entry.txn.key] = now + 64 * self.timers.t1
            if len(self._accepted) > 4 * self.config.max_transactions:
                self._accepted.popitem(last=False)
        self._server_events(entry, events, now)

    def _route(self, entry: ServerEntry, request: Request, flow: Flow, now: float) -> None:
        method = request.method
        uri = request.uri
        trusted = self.is_trunk(flow)
        in_dialog = request.to_tag is not None
        dialog: DialogRoute | None = None
        if in_dialog:
            without_own_routes(request.headers, self.is_our_uri)
            from_tag = request.from_tag
            if from_tag is not None and request.to_tag is not None:
                dialog = self.dialogs.get(request.call_id, from_tag, request.to_tag, now)
        auth_user = entry.auth_user
        if auth_user is not None and method != "REGISTER" and not in_dialog and request.from_addr.uri.user != auth_user:
            # A handset calls as itself: a caller number it may not use is the spoofing this
            # gateway exists to stop.
            self._respond(entry, 403, "Caller Identity Mismatch")
            return
        if method == "REGISTER":
            if not (uri.is_sip and uri.user is None and self.is_our_host(uri.host)):
                self._respond(entry, 404)
                return
            response = self.registrar.handle(request, flow, now, auth_user, entry.to_tag)
            entry.log.info("sip.register", status=response.status, peer=str(flow))
            stored = self.stored_registrations
            if stored is not None and stored.done < stored.queued:
                # The 200 OK tells the handset it need not register again: not before a restart
                # (or a crash) would find the change in the store.
                self._spawn(self._answer_when_saved(entry, response, stored, stored.queued))
                return
            self._send_upstream(entry, response)
            return
        if uri.user is None and self.is_our_uri(uri):
            # Addressed to the gateway itself, as a UAS.
            if method == "OPTIONS":
                self._respond(entry, 200, Allow=ALLOW, Accept="application/sdp")
            elif method not in ALLOW_METHODS:
                self._respond(entry, 405, Allow=ALLOW)
            else:
                self._respond(entry, 404)
            return
        if request.max_forwards == 0:
            self._respond(entry, 483)
            return
        unsupported = unsupported_extensions(request, ())
        if unsupported:
            self._respond(entry, 420, Unsupported=", ".join(unsupported))
            return
        if in_dialog:
            self._route_in_dialog(entry, request, dialog, now)
        else:
            self._route_initial(entry, request, flow, trusted, now)

    def _route_in_dialog(self, entry: ServerEntry, request: Request, dialog: DialogRoute | None, now: float) -> None:
        self.stir.strip_in_dialog(request)
        if dialog is not None:
            leg = dialog.towards(request.from_tag)
            target = request.uri
            if (not request.routes) and self.is_our_uri(target) and leg.target is not None:
                target = leg.target  # sent to us as if we were the far end (sipp's UAC does so)
            self.dialogs.touch(dialog, now)
            if request.method == "BYE":
                self.dialogs.ending(dialog, now)
            self.forwarder.forward(entry, request, [(target, leg.flow)], now, record_route=False, keep_routes=True)
            return
        # A dialog we do not know (forgotten, or set up before a restart): route by the Request-URI,
        # if it is a registered contact or one of our users; still only to registered addresses.
        uri = request.uri
        binding = self.location.by_contact(uri, now)
        if binding is None and uri.user and self.is_our_uri(uri):
            bindings = self.location.lookup(uri.user, now)
            binding = bindings[0] if bindings else None
            uri = binding.contact if binding is not None else uri
        if binding is not None:
            self.forwarder.forward(entry, request, [(uri, binding.flow)], now, record_route=False, keep_routes=True)
            return
        self._respond(entry, 481)

    def _route_initial(self, entry: ServerEntry, request: Request, flow: Flow, trusted: bool, now: float) -> None:
        uri = request.uri
        # Another domain's user is nobody here: the gateway relays to no one but its own handsets.
        ours = uri.scheme == "tel" or self.is_our_uri(uri)
        user = uri.user if ours else None
        if not user:
            self._respond(entry, 404)
            return
        bindings = self.location.lookup(user, now)
        if not bindings:
            stored = self.stored_registrations
            if stored is not None and stored.shared:
                # Several gateways on one store: the handset may have registered through another.
                # A context in "inspecting" state lets a CANCEL meanwhile end the call with 487.
                entry.context = ResponseContext(entry, request, inspecting=True)
                self._spawn(self._route_from_store(entry, request, flow, trusted, user, stored))
                return
            self._respond(entry, 480 if user in self.known_users else 404)
            return
        self._route_to(entry, request, flow, trusted, user, bindings, now)

    async def _answer_when_saved(
        self, entry: ServerEntry, response: Response, stored: StoredRegistrations, seq: int
    ) -> None:
        if not await stored.saved(seq, _SAVE_WAIT):
            # The store is away: the binding holds in memory, the handset is not kept waiting.
            entry.log.warning("sip.registration_unsaved", pending=stored.queued - stored.done)
        if not entry.txn.terminated:
            self._send_upstream(entry, response)

    async def _route_from_store(
        self, entry: ServerEntry, request: Request, flow: Flow, trusted: bool, user: str, stored: StoredRegistrations
    ) -> None:
        try:
            bindings = await stored.fetch(self.location, user)
        except Exception as exc:  # the store's errors differ by backend: the call goes on without it
            self.metrics.store_errors.inc(("registration_lookup",))
            entry.log.warning("sip.registrations_store_unavailable", error=str(exc))
            bindings = []
        if entry.txn.terminated or (entry.context is not None and entry.context.final_sent):
            return
        entry.context = None
        if not bindings:
            self._respond(entry, 480 if user in self.known_users else 404)
            return
        self._route_to(entry, request, flow, trusted, user, bindings, self.loop.time())

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = self.loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _route_to(
        self,
        entry: ServerEntry,
        request: Request,
        flow: Flow,
        trusted: bool,
        user: str,
        bindings: list[Binding],
        now: float,
    ) -> None:
        if request.headers.get("Route") is not None:
            entry.log.info("sip.preloaded_route_dropped", peer=str(flow))
        targets = [(b.contact, b.flow) for b in bindings]
        verdict = self.stir.screen(request, user, self.clock())
        if isinstance(verdict, Admit) and verdict.used and self.shared_replay is not None:
            # Other gateways may have seen these tokens: ask the store before anything goes on.
            entry.context = ResponseContext(entry, request, inspecting=True)
            self._spawn(self._claim_then_route(entry, request, flow, trusted, user, targets, verdict))
            return
        self._screened(entry, request, flow, trusted, user, targets, verdict)

    async def _claim_then_route(
        self,
        entry: ServerEntry,
        request: Request,
        flow: Flow,
        trusted: bool,
        user: str,
        targets: list[tuple[SipUri, Flow]],
        verdict: Admit,
    ) -> None:
        assert self.shared_replay is not None
        try:
            fresh = await self.shared_replay.claim_passports(verdict.used, request.call_id, self.clock())
        except Exception as exc:  # the store's errors differ by backend: the local check still stands
            entry.log.warning("sip.replay_store_unavailable", error=str(exc))
            fresh = True
        if entry.txn.terminated or (entry.context is not None and entry.context.final_sent):
            return
        entry.context = None
        screened: Admit | Refuse = verdict
        if not fresh:
            shown = frozenset({verdict.label}) if verdict.label else frozenset()
            screened = Refuse.of(InvalidIdentityHeader(REPLAYED), shown)
        self._screened(entry, request, flow, trusted, user, targets, screened)

    def _screened(
        self,
        entry: ServerEntry,
        request: Request,
        flow: Flow,
        trusted: bool,
        user: str,
        targets: list[tuple[SipUri, Flow]],
        verdict: Admit | Refuse,
    ) -> None:
        if isinstance(verdict, Refuse):
            self._refuse_label(entry, request, user, verdict, flow)
            return
        self.stir.stamp(request, verdict)
        if verdict.label is not None:
            self.stats["label_verified"] += 1
            self.metrics.label_verified()
            entry.log.debug("sip.label_verified", label=verdict.label)
            self.events.emit("call.label_verified", call_id=request.call_id, label=verdict.label, callee=user)
        if request.method != "INVITE":
            dialog_creating = request.method in _DIALOG_CREATING
            self.forwarder.forward(entry, request, targets, self.loop.time(), record_route=dialog_creating)
            return
        call = Call(
            call_id=request.call_id,
            caller=request.from_addr.uri.user or "",
            callee=user,
            display_name=request.from_addr.display,
            asserted=request.headers.get("P-Asserted-Identity"),
            source=flow.host,
            trusted=trusted,
            request=request,
            # proof for the rules: set only when a PASSporT verified for this From number (orig) came
            attestation=verdict.attest or "",
        )
        context = ResponseContext(entry, request, inspecting=True, verified_label=verdict.label)
        entry.context = context
        result = self.inspector.inspect_call(call)
        if isinstance(result, Decision):
            self._decided(entry, request, targets, result)
            return

        async def wait() -> None:
            try:
                decision = await result
            except Exception:
                # Fail closed: an inspector that cannot decide does not let the call through.
                entry.log.exception("sip.inspection_failed")
                decision = Decision.reject_call(500, "Inspection Failed")
            self._decided(entry, request, targets, decision)

        self._spawn(wait())

    def _decided(self, entry: ServerEntry, request: Request, targets: list[tuple[SipUri, Flow]], d: Decision) -> None:
        context = entry.context
        assert context is not None
        context.inspecting = False
        if context.final_sent:
            return  # cancelled while the inspector thought about it
        if d.action is Action.BLOCK:
            self.stats["rejected_calls"] += 1
            entry.log.info("sip.call_rejected", status=d.status, reason=d.reason, rules=list(d.rules))
            text = d.reason.replace("\\", "").replace('"', "")
            context.final_sent = True
            self._respond(entry, d.status, d.reason or None, Reason=f'SIP;cause={d.status};text="{text}"')
            return
        if d.action is Action.LABEL and d.label:
            if context.verified_label is None:
                _apply_label(request, d.label)
                entry.log.info("sip.call_labelled", label=d.label, rules=list(d.rules))
            else:  # a verified 反诈名片 is never replaced by an informational label
                entry.log.info("sip.call_label_kept", label=context.verified_label, rules=list(d.rules))
        self.forwarder.forward(entry, request, targets, self.loop.time(), record_route=True, context=context)

    def _refuse_label(self, entry: ServerEntry, request: Request, callee: str, verdict: Refuse, flow: Flow) -> None:
        """Refuse a request that shows or needs a label it cannot prove: answer, audit, publish."""
        self.stats["rejected_calls"] += 1
        self.stats["label_rejected"] += 1
        self.metrics.label_rejected(verdict.reason)
        caller = request.from_addr.uri.user or ""
        labels = sorted(verdict.claims)
        entry.log.debug("sip.label_rejected", status=verdict.status, reason=verdict.reason, labels=labels)
        self._respond(entry, verdict.status, verdict.reason_phrase, Reason=verdict.reason)
        fields = {
            "call_id": request.call_id,
            "method": request.method,
            "caller": caller,
            "callee": callee,
            "code": verdict.status,
            "reason": verdict.reason,
            "labels": labels,
            "source": flow.host,
        }
        self.store.audit(AuditRecord("call.label_rejected", self.clock(), {**fields, "detail": verdict.detail}))
        self.events.emit("call.label_rejected", **fields)

    # --- forwarding ------------------------------------------------------------------------------------

    def _on_cancel(self, entry: ServerEntry, cancel: Request, now: float) -> None:
        target = self._server.get(cancel_target_key(cancel))
        if target is None or target.flow.host != entry.flow.host or target.txn.request.method != "INVITE":
            self._respond(entry, 481)
            return
        self._respond(entry, 200)
        context = target.context
        if context is None or context.final_sent:
            return
        context.cancelled = True
        if context.inspecting or not context.branches:
            context.final_sent = True
            self._respond(target, 487)
            return
        # The caller's own Reason (RFC 3326), e.g. an upstream fork answered elsewhere, goes on.
        reason = cancel.headers.get("Reason")
        for branch in context.branches:
            self.forwarder.cancel_branch(branch, now, reason)

    def _on_ack(self, ack: Request, flow: Flow, now: float) -> None:
        entry = self._server.get(server_transaction_key(ack))
        if entry is not None and isinstance(entry.txn, ServerInviteTransaction):
            self._server_events(entry, entry.txn.receive_request(ack, now), now)
            return
        to_tag = ack.to_tag
        # A stateless tag has a fixed length: any other tag is not one, and needs no HMAC to say so.
        if (
            to_tag is not None
            and len(to_tag) == _STATELESS_TAG_LENGTH
            and hmac.compare_digest(to_tag, self._stateless_tag(ack))
        ):
            return  # the ACK of a stateless challenge or 503: ends there (see _admit)
        # The ACK of a 2xx is its own transaction, forwarded statelessly along the dialog.
        from_tag, to_tag = ack.from_tag, ack.to_tag
        if from_tag is None or to_tag is None:
            return
        without_own_routes(ack.headers, self.is_our_uri)
        dialog = self.dialogs.get(ack.call_id, from_tag, to_tag, now)
        if dialog is None:
            binding = self.location.by_contact(ack.uri, now)
            if binding is None:
                return
            dest, target = binding.flow, ack.uri
        else:
            stranger = self.auth is not None and not self.is_trunk(flow)
            if stranger and dialog.towards(to_tag).flow.host != flow.host:
                return  # not a party to this dialog
            leg = dialog.towards(from_tag)
            dest, target = leg.flow, ack.uri
            if not ack.routes and self.is_our_uri(target) and leg.target is not None:
                target = leg.target
        if ack.max_forwards == 0:
            return
        self.forwarder.send_ack(ack, target, dest)

    # --- responses -------------------------------------------------------------------------------------

    # --- server transaction plumbing ----------------------------------------------------------------------

    def _server_events(self, entry: ServerEntry, events: list[TransactionEvent], now: float) -> None:
        txn = entry.txn
        if self.draining:
            self._progress.set()
        for message in txn.messages_to_send():
            self.transports.send(entry.flow, message.serialise())
        for event in events:
            if isinstance(event, TransactionTerminated):
                self._server.pop(txn.key, None)
            elif isinstance(event, TimedOut) and entry.context is not None:
                entry.context.final_sent = True
        self._schedule(entry, txn.get_timer())

    def _schedule(self, entry: ServerEntry, when: float | None) -> None:
        if when is None or (entry.scheduled_at is not None and entry.scheduled_at <= when):
            return
        entry.scheduled_at = when
        self.timer_queue.schedule(when, lambda now: self._server_timer(entry, now))

    def _server_timer(self, entry: ServerEntry, now: float) -> None:
        entry.scheduled_at = None
        if not entry.txn.terminated:
            self._server_events(entry, entry.txn.handle_timer(now), now)

    def _housekeep(self) -> None:
        now = self.loop.time()
        accepted = self._accepted
        while accepted:
            key, until = next(iter(accepted.items()))
            if until > now:
                break
            del accepted[key]
        self.dialogs.sweep(now)
        self.location.sweep(now)
        if self.stored_registrations is not None:
            self.stored_registrations.expire_lapsed()
        self._housekeeping = self.loop.call_later(_HOUSEKEEPING_INTERVAL, self._housekeep)


def _apply_label(request: Request, label: str) -> None:
    """Show ``label`` as the caller's display name on the handset (DESIGN: P-Asserted-Identity).

    The identity is the From URI, never a verified one stamped by the STIR policy: an informational
    label must not appear next to ``verstat=TN-Validation-Passed``, where handsets show 反诈名片."""
    request.headers.set("P-Asserted-Identity", str(NameAddr(uri=request.from_addr.uri, display=label)))
