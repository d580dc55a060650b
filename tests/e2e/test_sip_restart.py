"""``afgw run`` as shipped (SQLite store), killed with SIGKILL right after a handset registered, then
started again: the handset is called without registering again."""

from __future__ import annotations

import asyncio
import signal

from simulator.handset import Handset
from simulator.ports import free_udp_tcp_port
from simulator.trunk import TrunkCaller
from tests.e2e.sip_harness import TRUNK_HOST, afgw_run, ping, shipped_config_with_free_ports


async def test_a_handset_registered_before_a_kill_is_called_after_the_restart(tmp_path):
    port = free_udp_tcp_port()
    config = shipped_config_with_free_ports(port)
    handsets = [
        Handset("8613800000001", ("127.0.0.1", port), password="handset1pw"),
        Handset("8613800000002", ("127.0.0.1", port), password="handset2pw"),
    ]
    for handset in handsets:
        await handset.start()
    trunk = TrunkCaller(("127.0.0.1", port))
    await trunk.start(TRUNK_HOST)
    try:
        async with afgw_run(config, tmp_path) as gateway:
            await ping(port)
            for handset in handsets:
                assert (await handset.register(3600)).status == 200
            # At once, as a crash would: the 200 OK promised the binding is stored.
            gateway.send_signal(signal.SIGKILL)
            assert await asyncio.wait_for(gateway.wait(), 10) == -signal.SIGKILL
        async with afgw_run(config, tmp_path):
            await ping(port)
            for handset in handsets:
                call = await trunk.call(handset.user, "02150001234", hold=0.05)
                assert (call.status, call.bye_status) == (200, 200)
                shown = handset.screen.find(call.call_id)
                assert shown is not None
                assert shown.answered
    finally:
        for ua in (*handsets, trunk):
            await ua.stop()
