"""The plumbing a simulated SIP user agent needs around the sans-IO core: a UDP socket, transactions
driven by the loop clock, and digest answers to challenges.

Every request goes to one outbound proxy (the gateway), as handsets and trunks do. Subclasses get
``on_request`` for requests that are not retransmissions, and await ``send_request`` for the final
response of their own requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from typing import Any, cast

from gateway.logs import get_logger
from protocols.errors import LocalProtocolError, RemoteProtocolError
from protocols.sip import (
    ClientInviteTransaction,
    ClientNonInviteTransaction,
    Request,
    Response,
    ResponseReceived,
    ServerInviteTransaction,
    ServerNonInviteTransaction,
    SipParseError,
    TimedOut,
    TransactionEvent,
    TransportError,
    client_transaction_key,
    create_response,
    new_branch,
    parse_message,
    server_transaction_key,
    validate_request,
    validate_response,
)
from protocols.sip.digest import authorization, parse_challenge

log = get_logger("afgw.sim.sip")

ClientTxn = ClientInviteTransaction | ClientNonInviteTransaction
ServerTxn = ServerInviteTransaction | ServerNonInviteTransaction


def new_tag() -> str:
    return secrets.token_hex(5)


class UserAgent(asyncio.DatagramProtocol):
    def __init__(self, proxy: tuple[str, int], *, user: str, password: str | None = None) -> None:
        self.proxy = proxy
        self.user = user
        self.password = password
        self.loop = asyncio.get_event_loop()
        self.transport: asyncio.DatagramTransport | None = None
        self.host = "127.0.0.1"
        self.port = 0
        self._clients: dict[Any, tuple[ClientTxn, asyncio.Future[Response], list[Response]]] = {}
        self._servers: dict[Any, ServerTxn] = {}
        self._timers: dict[int, asyncio.TimerHandle] = {}

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.loop = asyncio.get_running_loop()
        transport, _ = await self.loop.create_datagram_endpoint(lambda: self, local_addr=(host, port))
        self.transport = transport
        self.host, self.port = transport.get_extra_info("sockname")[:2]

    async def stop(self) -> None:
        for handle in self._timers.values():
            handle.cancel()
        if self.transport is not None:
            self.transport.close()

    @property
    def contact(self) -> str:
        return f"<sip:{self.user}@{self.host}:{self.port}>"

    def via(self) -> str:
        return f"SIP/2.0/UDP {self.host}:{self.port};branch={new_branch()};rport"

    # --- socket ----------------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        try:
            message = parse_message(data)
            if isinstance(message, Request):
                validate_request(message, forwarding=False)
                self._request_received(message)
            else:
                validate_response(message)
                self._response_received(message)
        except (SipParseError, RemoteProtocolError) as exc:
            log.debug("ua.discarded", error=str(exc))

    def send(self, message: Request | Response) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(message.serialise(), self.proxy)

    # --- client side -----------------------------------------------------------------------------------

    def send_request(self, request: Request, *, provisional: list[Response] | None = None) -> asyncio.Future[Response]:
        """Send ``request`` in a new client transaction; the future resolves to the final response
        (a synthesised 408 on timeout). Provisional responses are appended to ``provisional``."""
        request.headers.insert("Via", self.via())
        txn: ClientTxn
        txn = ClientInviteTransaction(request) if request.method == "INVITE" else ClientNonInviteTransaction(request)
        future: asyncio.Future[Response] = self.loop.create_future()
        self._clients[txn.key] = (txn, future, provisional if provisional is not None else [])
        self._client_events(txn, txn.send_request(self.loop.time()))
        return future

    async def send_authenticated(self, build: Any, *, provisional: list[Response] | None = None) -> Response:
        """Send ``build()``; on a 401/407 challenge, once more with credentials."""
        request: Request = build()
        response = await self.send_request(request, provisional=provisional)
        if response.status not in (401, 407) or self.password is None:
            return response
        header = "WWW-Authenticate" if response.status == 401 else "Proxy-Authenticate"
        value = response.headers.get(header)
        if value is None:
            return response
        challenge = parse_challenge(value)
        retry: Request = build()
        retry.headers.set(
            "Authorization" if response.status == 401 else "Proxy-Authorization",
            authorization(
                challenge,
                username=self.user,
                password=self.password,
                method=retry.method,
                uri=str(retry.uri),
                cnonce=secrets.token_hex(8),
            ),
        )
        return await self.send_request(retry, provisional=provisional)

    def _response_received(self, response: Response) -> None:
        entry = self._clients.get(client_transaction_key(response))
        if entry is None:
            self.stray_response(response)
            return
        self._client_events(entry[0], entry[0].receive_response(response, self.loop.time()))

    def stray_response(self, response: Response) -> None:
        """A response matching no transaction (a 2xx retransmission): subclasses may re-ACK."""

    def _client_events(self, txn: ClientTxn, events: list[TransactionEvent]) -> None:
        entry = self._clients.get(txn.key)
        for event in events:
            if entry is None:
                break
            future, provisional = entry[1], entry[2]
            if isinstance(event, ResponseReceived):
                if event.response.is_final:
                    if not future.done():
                        future.set_result(event.response)
                else:
                    provisional.append(event.response)
            elif isinstance(event, TimedOut | TransportError) and not future.done():
                future.set_result(create_response(txn.request, 408))
        for message in txn.messages_to_send():
            self.send(message)
        if txn.terminated:
            self._clients.pop(txn.key, None)
        self._arm(txn, lambda now: self._client_events(txn, txn.handle_timer(now)))

    # --- server side -----------------------------------------------------------------------------------

    def _request_received(self, request: Request) -> None:
        now = self.loop.time()
        key = server_transaction_key(request)
        txn = self._servers.get(key)
        if txn is not None:
            if isinstance(txn, ServerInviteTransaction) or request.method != "ACK":
                self.drive(txn, txn.receive_request(request, now))
            return
        if request.method == "ACK":
            self.on_request(request, None)
            return
        server: ServerTxn
        server = ServerInviteTransaction(request) if request.method == "INVITE" else ServerNonInviteTransaction(request)
        self._servers[key] = server
        self.on_request(request, server)

    def on_request(self, request: Request, txn: ServerTxn | None) -> None:
        """A new request (``txn`` is None for an ACK to a 2xx). Default: 501."""
        if txn is not None:
            self.respond(txn, create_response(request, 501, to_tag=new_tag()))

    def respond(self, txn: ServerTxn, response: Response) -> None:
        with contextlib.suppress(LocalProtocolError):
            self.drive(txn, txn.send_response(response, self.loop.time()))

    def drive(self, txn: ServerTxn, events: list[TransactionEvent]) -> None:
        for message in txn.messages_to_send():
            self.send(message)
        if txn.terminated:
            self._servers.pop(txn.key, None)
        self._arm(txn, lambda now: self.drive(txn, txn.handle_timer(now)))

    # --- timers ----------------------------------------------------------------------------------------

    def _arm(self, txn: ClientTxn | ServerTxn, fire: Any) -> None:
        handle = self._timers.pop(id(txn), None)
        if handle is not None:
            handle.cancel()
        when = None if txn.terminated else txn.get_timer()
        if when is None:
            return

        def run() -> None:
            self._timers.pop(id(txn), None)
            fire(self.loop.time())

        self._timers[id(txn)] = self.loop.call_at(when, run)
