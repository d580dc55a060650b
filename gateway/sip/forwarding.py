"""The client side of the proxy: the branches a request is forwarded on, and what goes back upstream.

A forwarded request gets a :class:`ResponseContext` (RFC 3261 16.7) and one client transaction per
target. Responses are matched to their branch; provisional ones go upstream as they come, every 2xx
goes upstream at once and cancels the other branches, and when every branch has a final response
and no 2xx was sent the best one goes upstream. Responses that match no transaction (2xx
retransmissions after the INVITE transaction ended) are forwarded statelessly when the top Via is
ours, to the address the request came from; but a provisional response to an INVITE that a 2xx has
already answered is dropped: it was overtaken on its way here, and the caller, which has its answer,
must not hear it ring after it (RFC 6026's Accepted state absorbs it the same way).
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable

from gateway.sip.dialogs import DialogRoute, DialogTable, Leg
from gateway.sip.messages import (
    BRANCH_PREFIX,
    forwarded_request,
    forwarded_response,
    new_branch,
    response_flow,
)
from gateway.sip.state import Branch, ResponseContext, ServerEntry, better
from gateway.sip.timers import TimerQueue
from gateway.sip.transport import Flow, Transports
from protocols.sip import (
    ClientInviteTransaction,
    ClientNonInviteTransaction,
    ClientTransactionKey,
    Request,
    Response,
    ResponseReceived,
    SipUri,
    TimedOut,
    TimerSettings,
    TransactionEvent,
    TransactionTerminated,
    TransportError,
    Via,
    build_cancel,
    client_transaction_key,
    create_response,
    validate_response,
)

#: RFC 3326 on the CANCEL to the branches that lost a fork: handsets do not log a missed call for it.
COMPLETED_ELSEWHERE = 'SIP;cause=200;text="Call completed elsewhere"'

#: Sends a response upstream through a server transaction (the proxy's side of it).
SendUpstream = Callable[[ServerEntry, Response], None]


class Forwarder:
    def __init__(
        self,
        transports: Transports,
        dialogs: DialogTable,
        timer_queue: TimerQueue,
        timers: TimerSettings,
        send_upstream: SendUpstream,
        loop: asyncio.AbstractEventLoop,
        *,
        max_accepted: int = 400_000,
    ) -> None:
        self.transports = transports
        self.dialogs = dialogs
        self.timer_queue = timer_queue
        self.timers = timers
        self.send_upstream = send_upstream
        self.loop = loop
        self._client: dict[ClientTransactionKey, Branch] = {}
        # INVITE branches answered 2xx: their client transaction is gone (RFC 3261), remembered for
        # 64*T1 (RFC 6026's Accepted state) so that a provisional response arriving after the 2xx
        # is not relayed as a response of no transaction. At most ``max_accepted``, oldest out first.
        self._accepted: OrderedDict[ClientTransactionKey, float] = OrderedDict()
        self.max_accepted = max_accepted

    def __len__(self) -> int:
        return len(self._client)

    def record_route(self, transport: str) -> str:
        port = self.transports.port(transport)
        # An entry says its transport, so that in-dialog requests come back over the same one (TLS stays
        # TLS, RFC 3261 16.6 and 26.2).
        suffix = {"TCP": ";transport=tcp", "TLS": ";transport=tls"}.get(transport, "")
        return f"<sip:{self.transports.host}:{port}{suffix};lr>"

    def via(self, transport: str, branch: str) -> Via:
        """Our Via: ``SIP/2.0/UDP host:port;branch=...;rport``."""
        params = (("branch", branch), ("rport", None))
        return Via(transport, self.transports.host, self.transports.port(transport), params)

    # --- requests out ----------------------------------------------------------------------------------

    def forward(
        self,
        entry: ServerEntry,
        request: Request,
        targets: list[tuple[SipUri, Flow]],
        now: float,
        *,
        record_route: bool,
        keep_routes: bool = False,
        context: ResponseContext | None = None,
    ) -> None:
        if context is None:
            context = ResponseContext(entry, request)
            entry.context = context
        in_transport = entry.flow.transport
        for uri, remembered in targets:
            flow = self.transports.reachable(remembered, uri)
            record_routes: list[str] = []
            if record_route:
                # RFC 5658 double record-routing when the two sides use different transports.
                if flow.transport != in_transport:
                    record_routes.append(self.record_route(in_transport))
                record_routes.append(self.record_route(flow.transport))
            outgoing = forwarded_request(
                request,
                uri.without_headers(),
                via=self.via(flow.transport, new_branch()),
                record_routes=record_routes,
                keep_routes=keep_routes,
            )
            reliable = flow.reliable
            txn: ClientInviteTransaction | ClientNonInviteTransaction
            if request.method == "INVITE":
                txn = ClientInviteTransaction(outgoing, reliable=reliable, timers=self.timers)
            else:
                txn = ClientNonInviteTransaction(outgoing, reliable=reliable, timers=self.timers)
            branch = Branch(txn, flow, context)
            context.branches.append(branch)
            self._client[txn.key] = branch
            self._client_events(branch, txn.send_request(now), now)

    def cancel_branch(self, branch: Branch, now: float, reason: str | None = None) -> None:
        """CANCEL a pending INVITE branch; ``reason`` is its Reason header (RFC 3326), which tells the
        handset why it stopped ringing (answered elsewhere: no missed call)."""
        if branch.final is not None or not isinstance(branch.txn, ClientInviteTransaction):
            return
        if not branch.got_provisional:
            branch.cancel_pending = True  # RFC 3261 9.1: not before a provisional response
            branch.cancel_reason = reason
            return
        cancel = build_cancel(branch.txn.request)
        if reason is not None:
            cancel.headers.add("Reason", reason)
        txn = ClientNonInviteTransaction(cancel, reliable=branch.flow.reliable, timers=self.timers)
        cancel_branch = Branch(txn, branch.flow, None)
        self._client[txn.key] = cancel_branch
        self._client_events(cancel_branch, txn.send_request(now), now)

    def send_ack(self, ack: Request, target: SipUri, dest: Flow) -> None:
        """Forward the ACK of a 2xx statelessly (it is a transaction of its own, RFC 3261 17.1.1.3)."""
        dest = self.transports.reachable(dest, target)
        outgoing = forwarded_request(
            ack, target, via=self.via(dest.transport, new_branch()), record_routes=[], keep_routes=True
        )
        self.transports.send(dest, outgoing.serialise())

    # --- responses in ----------------------------------------------------------------------------------

    def response_received(self, response: Response, flow: Flow) -> None:
        validate_response(response, all_vias=False)
        now = self.loop.time()
        key = client_transaction_key(response)
        branch = self._client.get(key)
        if branch is not None:
            if branch.flow.host == flow.host:  # a response from anyone else is forged
                self._client_events(branch, branch.txn.receive_response(response, now), now)
            return
        if response.status < 200 and self._accepted.get(key, now) > now:
            return  # overtaken by the 2xx already relayed
        # No transaction: a 2xx retransmission, or a late response. Stateless (RFC 3261 16.7 step 1,
        # 16.11): forward it if the top Via is ours, to the source its request came from.
        via = response.top_via
        if not (via.branch or "").startswith(BRANCH_PREFIX):
            return
        upstream = forwarded_response(response)
        if not upstream.headers.get("Via"):
            return
        dest = response_flow(upstream)
        if dest is not None:
            self.transports.send(dest, upstream.serialise())

    def _client_events(self, branch: Branch, events: list[TransactionEvent], now: float) -> None:
        for event in events:
            if isinstance(event, ResponseReceived):
                self._branch_response(branch, event.response, now)
            elif isinstance(event, TimedOut):
                self._branch_failed(branch, 408, now)
            elif isinstance(event, TransportError):
                self._branch_failed(branch, 503, now)
            elif isinstance(event, TransactionTerminated):
                self._client.pop(branch.txn.key, None)
                if branch.final is not None and branch.final.is_success:
                    self._remember_accepted(branch.txn.key, now)
        messages = branch.txn.messages_to_send()
        if messages:
            failed = None if branch.flow.transport == "UDP" else lambda reason: self._transport_failed(branch, reason)
            for message in messages:
                self.transports.send(branch.flow, message.serialise(), failed)
        self._schedule(branch, branch.txn.get_timer())

    def _remember_accepted(self, key: ClientTransactionKey, now: float) -> None:
        accepted = self._accepted
        while accepted and (len(accepted) >= self.max_accepted or next(iter(accepted.values())) <= now):
            accepted.popitem(last=False)
        accepted[key] = now + 64 * self.timers.t1

    def _transport_failed(self, branch: Branch, reason: str) -> None:
        """The branch's connection could not be opened: the transaction ends now (RFC 3261 17.1.4),
        and the caller hears 503 instead of waiting for timer B."""
        if not branch.txn.terminated:
            now = self.loop.time()
            self._client_events(branch, branch.txn.transport_failed(now, reason), now)

    def _branch_failed(self, branch: Branch, status: int, now: float) -> None:
        if branch.final is not None or branch.context is None:
            return
        response = create_response(branch.txn.request, status)
        self._branch_final(branch, forwarded_response(response), now)

    def _branch_response(self, branch: Branch, response: Response, now: float) -> None:
        context = branch.context
        if context is None:
            return  # a CANCEL's own response
        status = response.status
        if status < 200:
            branch.got_provisional = True
            if branch.cancel_pending:
                branch.cancel_pending = False
                self.cancel_branch(branch, now, branch.cancel_reason)
        if status == 100:
            return
        if context.is_invite and status < 300 and response.to_tag is not None:
            self._record_dialog(context, branch, response, now)
        upstream = forwarded_response(response)
        if status < 200:
            if not context.final_sent:
                self.send_upstream(context.server, upstream)
            return
        if status < 300:
            branch.final = response
            first = not context.final_sent
            context.final_sent = True
            # Every 2xx goes upstream (16.7 step 5); the first one ends the other branches.
            self.send_upstream(context.server, upstream)
            if first and context.is_invite:
                for other in context.branches:
                    if other is not branch:
                        self.cancel_branch(other, now, COMPLETED_ELSEWHERE)
            return
        self._branch_final(branch, upstream, now)

    def _branch_final(self, branch: Branch, upstream: Response, now: float) -> None:
        context = branch.context
        assert context is not None
        branch.final = upstream
        if better(upstream, context.best):
            context.best = upstream
        if upstream.status >= 600 and context.is_invite:
            # RFC 3326: the cause is the 6xx that ended the call, so the other handsets know it was refused.
            phrase = upstream.reason.replace("\\", "").replace('"', "")
            reason = f'SIP;cause={upstream.status};text="{phrase}"'
            for other in context.branches:
                if other is not branch:
                    self.cancel_branch(other, now, reason)
        if context.all_final() and not context.final_sent and context.best is not None:
            context.final_sent = True
            self.send_upstream(context.server, context.best)

    def _record_dialog(self, context: ResponseContext, branch: Branch, response: Response, now: float) -> None:
        request = context.request
        from_tag, to_tag = request.from_tag, response.to_tag
        if from_tag is None or to_tag is None:
            return
        caller_contacts = request.contacts
        callee_contacts = response.contacts
        route = DialogRoute(
            call_id=request.call_id,
            caller=Leg(from_tag, context.server.flow, caller_contacts[0].uri if caller_contacts else None),
            callee=Leg(to_tag, branch.flow, callee_contacts[0].uri if callee_contacts else None),
            # An early dialog (1xx with a tag) that no 2xx confirms is gone with its INVITE.
            expires_at=now + (self.dialogs.timeout if response.is_success else min(self.dialogs.timeout, 180.0)),
            confirmed=response.is_success,
        )
        self.dialogs.record(route)

    def _schedule(self, branch: Branch, when: float | None) -> None:
        if when is None or (branch.scheduled_at is not None and branch.scheduled_at <= when):
            return
        branch.scheduled_at = when
        self.timer_queue.schedule(when, lambda now: self._client_timer(branch, now))

    def _client_timer(self, branch: Branch, now: float) -> None:
        branch.scheduled_at = None
        if not branch.txn.terminated:
            self._client_events(branch, branch.txn.handle_timer(now), now)
