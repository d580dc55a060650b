"""Simulated handsets register with the gateway (digest on), a simulated trunk calls them through it,
and each handset's screen shows what its owner would see (labels: tests/e2e/test_labels_*.py)."""

from __future__ import annotations

import asyncio

from simulator.handset import Behaviour, Handset
from simulator.trunk import TrunkCaller
from tests.e2e.sip_harness import TRUNK_HOST, running_proxy, sip_config

USERS = (("8613800000001", "pw1"), ("8613800000002", "pw2"), ("8613800000003", "pw3"))


async def test_handsets_register_are_called_through_the_gateway_and_show_the_caller():
    async with running_proxy(sip_config(auth=True, users=USERS)) as proxy:
        gateway = ("127.0.0.1", proxy.udp_port)
        answering = Handset("8613800000001", gateway, password="pw1")
        busy = Handset("8613800000002", gateway, password="pw2", behaviour=Behaviour.BUSY)
        declining = Handset("8613800000003", gateway, password="pw3", behaviour=Behaviour.DECLINE)
        trunk = TrunkCaller(gateway)
        for ua in (answering, busy, declining):
            await ua.start()
            assert (await ua.register(120)).status == 200
        await trunk.start(TRUNK_HOST)
        try:
            plain = await trunk.call("8613800000001", "02150001234", display="Shanghai Bank", hold=0.05)
            assert (plain.status, plain.bye_status) == (200, 200)
            assert 180 in plain.provisional
            shown = answering.screen.find(plain.call_id)
            assert shown is not None
            assert (shown.caller_number, shown.display_name, shown.verified) == ("02150001234", "Shanghai Bank", False)
            assert shown.answered
            assert shown.ended

            # A P-Asserted-Identity the trunk wrote, verstat and all, never reaches the screen: the
            # gateway removes it (only it may assert a caller, after verifying an Identity header).
            forged = await trunk.call(
                "8613800000001",
                "96110",
                asserted='"公安反诈专号" <sip:96110@127.0.0.1;verstat=TN-Validation-Passed>',
            )
            assert forged.status == 200
            entry = answering.screen.find(forged.call_id)
            assert entry is not None
            assert (entry.caller_number, entry.display_name, entry.verified, entry.badge) == (
                "96110",
                None,
                False,
                False,
            )
            assert entry.asserted is None

            assert (await trunk.call("8613800000002", "10086")).status == 486
            assert (await trunk.call("8613800000003", "10086")).status == 603
            assert busy.screen.last is not None
            assert busy.screen.last.caller_number == "10086"
            assert not busy.screen.last.answered

            assert (await trunk.call("8613800000009", "10086")).status == 404  # nobody
        finally:
            for ua in (answering, busy, declining, trunk):
                await ua.stop()


async def test_a_handset_hangs_up_and_its_bye_reaches_the_caller_through_the_gateway():
    async with running_proxy(sip_config(auth=True, users=USERS)) as proxy:
        gateway = ("127.0.0.1", proxy.udp_port)
        handset = Handset("8613800000001", gateway, password="pw1", hangup_after=0.0)
        trunk = TrunkCaller(gateway)
        await handset.start()
        await trunk.start(TRUNK_HOST)
        try:
            await handset.register(120)
            task = asyncio.create_task(trunk.call("8613800000001", "02150001234", hold=5.0))
            await asyncio.wait_for(trunk.remote_hangup.wait(), 10)
            task.cancel()
            assert handset.screen.last is not None
            assert handset.screen.last.ended
        finally:
            await handset.stop()
            await trunk.stop()


async def test_unregistering_makes_the_user_unavailable_and_a_refresh_keeps_one_binding():
    async with running_proxy(sip_config(auth=True, users=USERS)) as proxy:
        gateway = ("127.0.0.1", proxy.udp_port)
        handset = Handset("8613800000001", gateway, password="pw1")
        trunk = TrunkCaller(gateway)
        await handset.start()
        await trunk.start(TRUNK_HOST)
        try:
            await handset.register(120)
            refreshed = await handset.register(120)
            assert len(refreshed.contacts) == 1
            assert (await handset.unregister()).status == 200
            assert (await trunk.call("8613800000001", "10086")).status == 480
        finally:
            await handset.stop()
            await trunk.stop()


async def test_a_handset_calls_another_as_itself_and_cannot_use_another_number():
    async with running_proxy(sip_config(auth=True, users=USERS)) as proxy:
        gateway = ("127.0.0.1", proxy.udp_port)
        alice = Handset("8613800000001", gateway, password="pw1")
        bob = Handset("8613800000002", gateway, password="pw2")
        for ua in (alice, bob):
            await ua.start()
            await ua.register(120)
        try:
            honest = await alice.send_authenticated(lambda: _invite(alice, "8613800000002", "8613800000001"))
            assert honest.status == 200
            assert bob.screen.last is not None
            assert bob.screen.last.caller_number == "8613800000001"
            spoofed = await alice.send_authenticated(lambda: _invite(alice, "8613800000002", "96110"))
            assert spoofed.status == 403
            assert bob.screen.last.caller_number == "8613800000001"  # nothing new rang
        finally:
            for ua in (alice, bob):
                await ua.stop()


def _invite(ua: Handset, callee: str, caller: str):
    from protocols.sip import Headers, Request, parse_uri

    headers = Headers(
        [
            ("Max-Forwards", "70"),
            ("From", f"<sip:{caller}@127.0.0.1>;tag=spoof{caller}"),
            ("To", f"<sip:{callee}@127.0.0.1>"),
            ("Call-ID", f"call-{caller}-{callee}"),
            ("CSeq", "1 INVITE"),
            ("Contact", ua.contact),
        ]
    )
    return Request("INVITE", parse_uri(f"sip:{callee}@127.0.0.1"), headers)
