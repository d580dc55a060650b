"""Gateways on one Redis share their rule velocity counters: a sender spraying its messages over several
gateways (or workers) is counted at its whole rate. With Redis away, messages still flow and are still
inspected; each gateway then counts alone (its own counters were kept fed) until Redis answers again."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

import rules
from gateway.config import GatewayConfig, RulesConfig, StoreConfig
from gateway.inspection import Action, Call, decide_call
from gateway.rules_hook import RulesInspector
from gateway.store.redis_velocity import RedisVelocity
from protocols.smpp.constants import CommandStatus, DataCoding
from protocols.smpp.pdu import SubmitSm
from simulator.esme import SimulatedEsme
from simulator.smsc import SimulatedSmsc
from tests.e2e.smpp_harness import gateway_port, make_config, running_gateway
from tests.gateway.store.redis_server import start_redis

OK, FAIL = CommandStatus.ESME_ROK, CommandStatus.ESME_RSUBMITFAIL
PACK = """rules:
  - id: t.spray
    title: one sender, four messages within an hour
    category: other
    risk: high
    channel: sms
    action: block
    detection:
      sel:
        velocity: {by: src, count: 4, within: 3600}
      condition: sel
  - id: t.keyword
    title: a keyword blocked whatever the counters say
    category: other
    risk: high
    channel: sms
    action: block
    detection:
      sel:
        text: 安全账户
      condition: sel
"""
CALL_PACK = """rules:
  - id: t.targeted
    title: the third international call to one subscriber within 10 minutes
    category: international
    risk: medium
    channel: call
    action: warn
    detection:
      sel_intl:
        origin: international
      sel_repeated:
        velocity: {by: dst, count: 3, within: 600}
      condition: sel_intl and sel_repeated
"""


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    proc, port = start_redis(tmp_path)
    try:
        yield proc, port
    finally:
        proc.kill()
        proc.wait()


def config(smsc_port: int, redis_port: int, tmp_path: Path) -> GatewayConfig:
    pack = tmp_path / "spray.yaml"
    pack.write_text(PACK, encoding="utf-8")
    base = make_config(smsc_port, rules=RulesConfig(packs=(str(pack),), reload_interval=0))
    store = StoreConfig(
        backend="redis", redis_url=f"redis://127.0.0.1:{redis_port}/0", redis_prefix=f"t{uuid.uuid4().hex[:8]}"
    )
    return replace(base, store=store)


def submit(source: str, n: int, text: str = "您好") -> SubmitSm:
    return SubmitSm(
        source_addr=source,
        destination_addr=f"86138000001{n:02d}",
        data_coding=DataCoding.UCS2,
        short_message=text.encode("utf-16-be"),
    )


async def test_a_sender_split_over_two_gateways_is_counted_whole(
    smsc: SimulatedSmsc, redis_server: tuple[subprocess.Popen[bytes], int], tmp_path: Path
) -> None:
    cfg = config(smsc.port, redis_server[1], tmp_path)
    async with running_gateway(cfg) as one, running_gateway(cfg) as two:
        esmes = [SimulatedEsme("127.0.0.1", gateway_port(gw), "bank", "bankpw") for gw in (one, two)]
        for esme in esmes:
            await esme.bind()
        answers = [(await esmes[i % 2].send(submit("17012345678", i))).command_status for i in range(5)]
        other = (await esmes[0].send(submit("17099999999", 9))).command_status
        for esme in esmes:
            await esme.unbind()
    # each gateway took two of the first four: only together do they make four within the hour
    assert answers == [OK, OK, OK, FAIL, FAIL]
    assert other == OK


async def test_with_redis_away_messages_flow_and_each_gateway_counts_alone(
    smsc: SimulatedSmsc, redis_server: tuple[subprocess.Popen[bytes], int], tmp_path: Path
) -> None:
    proc, port = redis_server
    cfg = config(smsc.port, port, tmp_path)
    async with running_gateway(cfg) as gw:
        esme = SimulatedEsme("127.0.0.1", gateway_port(gw), "bank", "bankpw")
        await esme.bind()
        assert (await esme.send(submit("17012345678", 0))).command_status == OK  # counted in Redis
        proc.kill()
        proc.wait()
        answers = [(await esme.send(submit("17012345678", i))).command_status for i in range(1, 5)]
        keyword = (await esme.send(submit("17055555555", 8, "请转入安全账户"))).command_status
        await esme.unbind()
        errors = dict(gw.metrics.store_errors.collect_values())
    # the first message was counted in Redis, which is gone, and in this gateway's own counters too:
    # counting alone from then on, it still has it, and the fourth message trips the rule
    assert answers == [OK, OK, FAIL, FAIL]
    assert keyword == FAIL  # the other rules still inspect every message
    assert errors[("velocity",)] >= 1


async def test_calls_to_one_subscriber_through_two_gateways_are_counted_together(
    redis_server: tuple[subprocess.Popen[bytes], int], tmp_path: Path
) -> None:
    import redis.asyncio as aioredis

    pack = tmp_path / "calls.yaml"
    pack.write_text(CALL_PACK, encoding="utf-8")
    ruleset = rules.build([pack])
    client = aioredis.Redis(port=redis_server[1], decode_responses=True)
    inspectors = []
    for name in ("one", "two"):
        inspector = RulesInspector(rules.Engine(ruleset, clock=lambda: 1_717_380_000.0))
        inspector.shared_velocity = RedisVelocity(client, "tcalls", name)
        inspectors.append(inspector)
    decisions = []
    try:
        for n in range(3):
            caller = f"+4477009001{n:02d}"
            call = Call(
                call_id=f"c{n}",
                caller=caller,
                callee="13800000066",
                display_name=None,
                asserted=None,
                source="127.0.0.1",
                trusted=True,
                request=None,
            )
            decisions.append(await decide_call(inspectors[n % 2], call))
    finally:
        await client.aclose()
    # the third international call to one subscriber within 10 minutes, whichever gateway took the others
    assert [d.rules for d in decisions] == [(), (), ("t.targeted",)]
    assert decisions[2].action is Action.LABEL
