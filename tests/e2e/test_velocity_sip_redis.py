"""Two SIP proxies whose rules count calls in one Redis: a caller spreading its calls over both is
refused 608 at the call that makes its burst, and the handset never rings for it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

import rules
from gateway.rules_hook import RulesInspector
from gateway.store.redis_velocity import RedisVelocity
from simulator.handset import Handset
from simulator.trunk import TrunkCaller
from tests.e2e.sip_harness import TRUNK_HOST, running_proxy, sip_config
from tests.gateway.store.redis_server import start_redis

CALLEE = "8613800000062"
CALLER = "+447700900123"
PACK = """rules:
  - id: t.call-burst
    title: three calls from one number within ten minutes
    category: international
    risk: high
    channel: call
    detection:
      sel:
        velocity: {by: src, count: 3, within: 600}
      condition: sel
    action: block
"""


@pytest.fixture
def redis_port(tmp_path: Path) -> Iterator[int]:
    proc, port = start_redis(tmp_path)
    try:
        yield port
    finally:
        proc.kill()
        proc.wait()


async def test_a_caller_spread_over_two_proxies_is_refused_at_its_burst(tmp_path: Path, redis_port: int) -> None:
    pack = tmp_path / "burst.yaml"
    pack.write_text(PACK, encoding="utf-8")
    ruleset = rules.build([pack])
    client = aioredis.Redis(port=redis_port, decode_responses=True)
    prefix = f"t{uuid.uuid4().hex[:8]}"
    inspectors = []
    for name in ("one", "two"):
        inspector = RulesInspector(rules.Engine(ruleset))
        inspector.shared_velocity = RedisVelocity(client, prefix, name)
        inspectors.append(inspector)
    try:
        async with (
            running_proxy(sip_config(), inspector=inspectors[0]) as one,
            running_proxy(sip_config(), inspector=inspectors[1]) as two,
        ):
            # the subscriber's handset registered with each proxy, and the trunk calling through both
            handsets = [Handset(CALLEE, ("127.0.0.1", proxy.udp_port)) for proxy in (one, two)]
            trunks = [TrunkCaller(("127.0.0.1", proxy.udp_port)) for proxy in (one, two)]
            for handset, trunk in zip(handsets, trunks, strict=True):
                await handset.start()
                assert (await handset.register(120)).status == 200
                await trunk.start(TRUNK_HOST)
            try:
                calls = [await trunks[n % 2].call(CALLEE, CALLER, display="Mr Smith", hold=0.05) for n in range(3)]
                assert [c.status for c in calls] == [200, 200, 608]
                rang = [any(h.screen.find(c.call_id) for h in handsets) for c in calls]
                assert rang == [True, True, False]
                # another caller has its own count
                other = await trunks[0].call(CALLEE, "+447700900999", hold=0.05)
                assert other.status == 200
            finally:
                for handset, trunk in zip(handsets, trunks, strict=True):
                    await trunk.stop()
                    await handset.stop()
    finally:
        await client.aclose()
