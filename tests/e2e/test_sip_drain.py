"""SIGTERM on the SIP side: new calls and registrations are turned away with 503 and Retry-After,
calls under way get their final answer before the drain ends, and a call that never gets one holds
the drain no longer than its grace."""

from __future__ import annotations

import asyncio

import structlog

from tests.e2e.sip_harness import TRUNK_HOST, UdpPeer, answer, register, request, running_proxy, sip_config


async def test_new_calls_get_503_while_the_call_under_way_is_answered():
    async with running_proxy(sip_config(overload_retry_after=7)) as proxy:
        callee = await UdpPeer.open()
        trunk = await UdpPeer.open(TRUNK_HOST)
        try:
            assert (await register(callee, proxy.udp_port, "alice")).status == 200
            invite = request("INVITE", "sip:alice@127.0.0.1", trunk, from_user="02150001234", to_user="alice")
            trunk.send(invite, proxy.udp_port)
            forwarded = await callee.request("INVITE", invite.call_id)
            callee.send(answer(forwarded, 180), proxy.udp_port)
            await trunk.response(invite.call_id, 180)

            drain = asyncio.ensure_future(proxy.drain(30.0))
            await asyncio.sleep(0)
            second = request("INVITE", "sip:alice@127.0.0.1", trunk, from_user="02150009999", to_user="alice")
            trunk.send(second, proxy.udp_port)
            refused = await trunk.response(second.call_id, 503)
            assert refused.headers.get("Retry-After") == "7"
            again = request("REGISTER", "sip:127.0.0.1", callee, from_user="alice", to_user="alice")
            callee.send(again, proxy.udp_port)
            assert (await callee.response(again.call_id)).status == 503
            assert not drain.done()  # the first call still owes its caller an answer

            callee.send(answer(forwarded, 200, contact=callee), proxy.udp_port)
            await trunk.response(invite.call_id, 200)
            await asyncio.wait_for(drain, 10)
        finally:
            callee.close()
            trunk.close()


async def test_a_call_never_answered_holds_the_drain_only_for_its_grace():
    async with running_proxy(sip_config()) as proxy:
        callee = await UdpPeer.open()
        trunk = await UdpPeer.open(TRUNK_HOST)
        try:
            assert (await register(callee, proxy.udp_port, "bob")).status == 200
            invite = request("INVITE", "sip:bob@127.0.0.1", trunk, from_user="02150001234", to_user="bob")
            trunk.send(invite, proxy.udp_port)
            forwarded = await callee.request("INVITE", invite.call_id)
            callee.send(answer(forwarded, 180), proxy.udp_port)
            await trunk.response(invite.call_id, 180)
            with structlog.testing.capture_logs() as logs:
                await asyncio.wait_for(proxy.drain(0.2), 10)
            [timeout] = [e for e in logs if e["event"] == "sip.drain_timeout"]
            assert timeout["unanswered"] == 1
        finally:
            callee.close()
            trunk.close()
