"""Two different real softphones call each other through the gateway: baresip and linphonec.

Each call is put on hold and resumed by the callee first and then by the caller (the callee's
re-INVITE must not turn the dialog around), and hung up by one side; over UDP, TCP, and TCP on one
side with UDP on the other. What is asserted is what each phone itself reports, and, on the wire,
that every in-dialog request the gateway sends carries the receiving phone's own Contact as its
Request-URI (real phones answer a re-INVITE addressed to the other phone's Contact all the same, so
their screens alone would not show a dialog turned around).
"""

from __future__ import annotations

import asyncio

import pytest

from gateway.sip.location import Binding
from gateway.sip.transport import Flow
from protocols.sip import Request, Response, parse_message
from tests.conftest import require_peer
from tests.e2e.sip_harness import running_proxy, sip_config
from tests.e2e.softphones import Softphone, softphone

CASES = [
    # caller, caller's transport, callee, callee's transport, who hangs up
    ("baresip", "udp", "linphonec", "udp", "caller"),
    ("linphonec", "udp", "baresip", "udp", "callee"),
    ("baresip", "tcp", "linphonec", "tcp", "callee"),
    ("linphonec", "tcp", "baresip", "tcp", "caller"),
    ("baresip", "tcp", "linphonec", "udp", "caller"),
    ("linphonec", "tcp", "baresip", "udp", "callee"),
    ("baresip", "udp", "linphonec", "tcp", "callee"),
    ("linphonec", "udp", "baresip", "tcp", "caller"),
]


async def registered(proxy, user: str) -> Binding:
    loop = asyncio.get_running_loop()
    async with asyncio.timeout(15):
        while not proxy.location.lookup(user, loop.time()):  # noqa: ASYNC110 (the registrar has no event)
            await asyncio.sleep(0.05)
    (binding,) = proxy.location.lookup(user, loop.time())
    return binding


def tap(proxy) -> list[tuple[str, Flow, Request | Response]]:
    """Every message the gateway receives and sends, in order, with its flow."""
    wire: list[tuple[str, Flow, Request | Response]] = []
    send, receive = proxy.transports.send, proxy.message_received

    def sending(flow: Flow, data: bytes, *args) -> None:
        wire.append(("out", flow, parse_message(data)))
        send(flow, data, *args)

    def receiving(message: Request | Response, flow: Flow) -> None:
        wire.append(("in", flow, message))
        receive(message, flow)

    proxy.transports.send = sending
    proxy.message_received = receiving
    return wire


def check_in_dialog_requests(wire: list[tuple[str, Flow, Request | Response]]) -> None:
    """Each in-dialog request went to a phone with that phone's own latest Contact as its Request-URI
    (never the sender's Contact: the sign of a dialog turned around)."""
    contact_of: dict[Flow, tuple[str, int | None]] = {}
    methods = set()
    for direction, flow, message in wire:
        if direction == "in":
            if message.contacts and (isinstance(message, Request) or message.cseq.method == "INVITE"):
                contact_of[flow] = (message.contacts[0].uri.host, message.contacts[0].uri.port)
            continue
        if not isinstance(message, Request) or message.to_tag is None or message.method == "CANCEL":
            continue
        methods.add(message.method)
        assert (message.uri.host, message.uri.port) == contact_of.get(flow), (message.method, str(message.uri))
    assert {"ACK", "BYE", "INVITE"} <= methods, methods


async def hold_and_resume(holder: Softphone, other: Softphone) -> None:
    await holder.hold()
    await other.held_by_peer()
    await holder.held()
    await holder.resume()
    await other.resumed_by_peer()
    await holder.resumed()


@pytest.mark.parametrize(
    ("caller_kind", "caller_transport", "callee_kind", "callee_transport", "hangs_up"),
    CASES,
    ids=[f"{a}-{at}-to-{b}-{bt}-{h}-hangs-up" for a, at, b, bt, h in CASES],
)
async def test_hold_resume_and_hang_up_between_two_real_softphones(
    tmp_path, caller_kind, caller_transport, callee_kind, callee_transport, hangs_up
):
    require_peer(caller_kind)
    require_peer(callee_kind)
    async with running_proxy(sip_config()) as proxy:
        ports = {"udp": proxy.udp_port, "tcp": proxy.tcp_port}
        async with (
            softphone(caller_kind, "alice", tmp_path / "alice", ports[caller_transport], caller_transport) as caller,
            softphone(callee_kind, "bob", tmp_path / "bob", ports[callee_transport], callee_transport) as callee,
        ):
            await registered(proxy, "alice")
            await registered(proxy, "bob")
            wire = tap(proxy)
            await caller.dial("sip:bob@127.0.0.1")
            await callee.connected()
            await caller.connected()
            await hold_and_resume(callee, caller)
            # The caller's re-INVITEs after the callee's: they reach the callee, not the caller itself.
            await hold_and_resume(caller, callee)
            ender, other = (caller, callee) if hangs_up == "caller" else (callee, caller)
            await ender.hang_up()
            await other.ended()
            await ender.ended()
            check_in_dialog_requests(wire)


@pytest.mark.parametrize("outbound", [True, False], ids=["rfc5626-outbound", "plain-tcp"])
async def test_a_softphone_registered_over_tcp_is_still_called_after_the_idle_timeout(tmp_path, outbound):
    """The idle sweep must not take a registered handset's connection: past tcp_idle_timeout (the
    sweep is run at a time beyond it), a call still rings the phone on it."""
    require_peer("baresip")
    require_peer("linphonec")
    idle = 600.0
    async with running_proxy(sip_config(tcp_idle_timeout=idle)) as proxy:
        extra = ";sipnat=outbound" if outbound else ""
        wire = tap(proxy)
        async with (
            softphone("baresip", "bob", tmp_path / "bob", proxy.tcp_port, "tcp", extra) as callee,
            softphone("linphonec", "alice", tmp_path / "alice", proxy.udp_port, "udp") as caller,
        ):
            binding = await registered(proxy, "bob")
            await registered(proxy, "alice")
            assert binding.flow.transport == "TCP"
            (ok,) = [
                m
                for direction, flow, m in wire
                if direction == "out" and flow == binding.flow and isinstance(m, Response) and m.status == 200
            ]
            assert ok.cseq.method == "REGISTER"
            assert ok.headers.get_list("Require") == (["outbound"] if outbound else [])
            proxy.transports.tcp.sweep(asyncio.get_running_loop().time() + idle + 1)
            assert proxy.transports.tcp.has(binding.flow.host, binding.flow.port)
            await caller.dial("sip:bob@127.0.0.1")
            await callee.connected()
            await caller.connected()
            await caller.hang_up()
            await callee.ended()
