"""Risk scores fed by what the gateway sees: SMS through the SMPP proxy raise the recipient's score."""

from __future__ import annotations

import asyncio

from gateway.config import EsmeAccount, RulesConfig
from gateway.dissuasion.scoring import RiskScorer, ScoreFeed, ScoringConfig, Sighting
from gateway.dissuasion.triggers import Trigger
from gateway.store import MemoryStore, RiskScore
from protocols.smpp.constants import CommandStatus, DataCoding
from protocols.smpp.pdu import SubmitSm
from simulator.esme import SimulatedEsme
from tests.e2e.smpp_harness import eventually, gateway_port, make_config, running_gateway

VICTIM = "8613800000061"
ACCOUNTS = (EsmeAccount(system_id="bank", password="bankpw", throughput=1000, window=10),)


def ucs2(source: str, text: str, destination: str = VICTIM) -> SubmitSm:
    return SubmitSm(
        source_addr=source,
        destination_addr=destination,
        data_coding=DataCoding.UCS2,
        short_message=text.encode("utf-16-be"),
    )


async def test_a_blocked_sms_from_a_dissuade_rule_scores_and_opens_a_case(smsc):
    store = MemoryStore()
    config = make_config(smsc.port, accounts=ACCOUNTS, rules=RulesConfig(reload_interval=0))
    async with running_gateway(config, store=store) as gw:
        esme = SimulatedEsme("127.0.0.1", gateway_port(gw), "bank", "bankpw")
        await esme.bind()
        harmless = await esme.send(ucs2("10690", "【某银行】您的验证码是 1234"))
        fraud = await esme.send(ucs2("10690", "【公安局】您涉嫌洗钱，请将资金转入安全账户配合调查"))
        assert (harmless.command_status, fraud.command_status) == (
            CommandStatus.ESME_ROK,
            CommandStatus.ESME_RSUBMITFAIL,
        )

        await eventually(lambda: bool(gw.events.named("case.opened")))  # type: ignore[attr-defined]
        await esme.unbind()
    score = await store.get_risk(VICTIM)
    assert score is not None
    assert score.value == 40.0  # 30 for a blocked SMS, 10 because police.safe-account says dissuade: true
    case = await store.open_case_of(VICTIM)
    assert case is not None
    assert (case.tier, case.fraud_types) == ("low", ("police_impersonation",))
    [opened] = gw.events.named("case.opened")  # type: ignore[attr-defined]
    assert opened.fields["detail"].startswith("score 40.0: sms blocked, dissuade rule")


class SlowOrBrokenStore:
    def __init__(self) -> None:
        self.values: dict[str, RiskScore] = {}
        self.gate = asyncio.Event()
        self.broken = False

    async def get_risk(self, subscriber: str) -> RiskScore | None:
        await self.gate.wait()
        if self.broken:
            raise ConnectionError("store away")
        return self.values.get(subscriber)

    async def set_risk(self, subscriber: str, value: float, now: float) -> None:
        self.values[subscriber] = RiskScore(value, now)


class Sink:
    def __init__(self) -> None:
        self.triggers: list[Trigger] = []

    async def trigger(self, trigger: Trigger, now: float) -> None:
        self.triggers.append(trigger)


async def test_the_feed_never_waits_drops_past_its_bound_and_survives_a_failing_store():
    store, sink = SlowOrBrokenStore(), Sink()
    feed = ScoreFeed(RiskScorer(store, sink, ScoringConfig()), clock=lambda: 0.0, bound=3)
    await feed.start()
    for _ in range(5):
        feed.note(Sighting("861", "sms", "block"))  # returns at once although the store is stuck
    feed.note(Sighting("861", "sms", "pass"))  # worth nothing: not even queued
    assert feed.dropped == 2
    store.gate.set()
    await eventually(lambda: feed.scored == 3)
    assert store.values["861"].value == 90.0
    assert [t.tier for t in sink.triggers] == ["low", "medium"]
    store.broken = True
    feed.note(Sighting("861", "sms", "block"))
    await eventually(lambda: feed.failed == 1)
    store.broken = False
    feed.note(Sighting("861", "sms", "block"))
    await eventually(lambda: feed.scored == 4)
    await feed.stop()
    assert [t.tier for t in sink.triggers] == ["low", "medium", "high"]
