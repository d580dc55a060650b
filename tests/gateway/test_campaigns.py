"""Campaign detection: one template sent to many people, hidden in ordinary traffic, is found and every
later copy is raised; ordinary bulk from allow-listed senders and ordinary messages are left alone."""

from __future__ import annotations

import importlib.util
import json
import random
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import rules
from gateway.campaigns import CampaignConfig, CampaignTracker
from gateway.events import MemoryEvents
from gateway.inspection import Action, Decision, SmsMessage, decide
from gateway.rules_hook import RulesInspector
from gateway.store import MemoryStore
from protocols.smpp.constants import DataCoding
from protocols.smpp.pdu import SubmitSm

ROOT = Path(__file__).resolve().parents[2]


def _evasion() -> Any:
    """corpus/evasion.py, loaded by path: the corpus is data with its scripts, not an installed package."""
    spec = importlib.util.spec_from_file_location("corpus.evasion", ROOT / "corpus" / "evasion.py")
    assert spec is not None
    assert spec.loader is not None
    module = sys.modules.get(spec.name) or importlib.util.module_from_spec(spec)
    if spec.name not in sys.modules:
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
    return module


evasion = _evasion()
K = 8
CONFIG = CampaignConfig(window=3600.0, recipients=K, similarity=0.4, score=5.0, action="warn")

# A membership-renewal scam: most wordings pass the rules, the one that asks for screen sharing is caught.
TEMPLATE = "{name}您好，您名下的{item}会员即将自动续费{amount}元，如需取消请于今日联系专员{handle}办理{tail}"
TAILS = ("，逾期不予处理", "，逾期将无法退订", "，过期不候", "退款，需开启屏幕共享配合操作")
NAMES = ("张伟", "李娜", "王芳", "刘洋", "陈静", "杨磊", "赵敏", "黄强")
ITEMS = ("抖音", "快手", "京东", "美团", "爱奇艺")
EVASIONS = (
    evasion.traditional,
    evasion.spacing,
    evasion.zero_width,
    evasion.full_width,
    evasion.homophones,
    evasion.lookalikes,
    evasion.emoji,
)
BANK_NOTICE = (
    "【工商银行】您尾号{tail}的账户{day}日{hour}时支出人民币{amount}元，余额{balance}元。如有疑问请致电95588。"
)


def campaign_copy(i: int, rnd: random.Random) -> str:
    handle = rnd.choice(
        (f"vx:kf{rnd.randint(100, 999)}", f"QQ{rnd.randint(10**7, 10**8)}", f"+V {rnd.randint(10**5, 10**6)}")
    )
    text = TEMPLATE.format(
        name=rnd.choice(NAMES),
        item=rnd.choice(ITEMS),
        amount=rnd.randint(99, 999),
        handle=handle,
        tail=TAILS[3] if i % 4 == 3 else rnd.choice(TAILS[:3]),
    )
    return rnd.choice(EVASIONS)(text, rnd) if i % 2 else text


def ham(limit: int) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in (ROOT / "corpus" / "dev.jsonl").read_text("utf-8").splitlines()]
    return [r for r in rows if r["label"] == "ham"][:limit]


def sms(source: str, destination: str, text: str) -> SmsMessage:
    pdu = SubmitSm(source_addr=source, destination_addr=destination, data_coding=DataCoding.UCS2)
    return SmsMessage(pdu, direction="mt", system_id="esme", source=source, destinations=(destination,), text=text)


@dataclass
class Clock:
    now: float = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def engine() -> rules.Engine:
    # the phrase packs without the evidence pack, which catches every copy of this template on its own:
    # what is tested is the raise a campaign gives to copies that the rules alone let through
    packs = [p for p in sorted(rules.DEFAULT_PACKS.glob("*.yaml")) if p.name != "evidence.yaml"]
    return rules.Engine(rules.build(packs))


def inspector(engine: rules.Engine, config: CampaignConfig | None = CONFIG, store: Any = None) -> RulesInspector:
    found = RulesInspector(engine)
    if config is not None:
        found.campaigns = CampaignTracker(
            store if store is not None else MemoryStore(), engine, config, events=MemoryEvents(), clock=Clock()
        )
    return found


@dataclass
class Sent:
    kind: str  # campaign, ham, bank
    message: SmsMessage
    decision: Decision
    alone: Decision  # the same message with campaign detection off


def traffic(seed: int = 7) -> Iterator[tuple[str, str, str, str]]:
    """(kind, from, to, text): 40 campaign copies and 20 bank notices among 400 ordinary messages."""
    rnd = random.Random(seed)
    ordinary = [("ham", r["from"], r["to"], r["text"]) for r in ham(400)]
    copies = [
        ("campaign", f"170{rnd.randint(10**7, 10**8 - 1)}", f"1390000{i:04d}", campaign_copy(i, rnd)) for i in range(40)
    ]
    notices = [
        (
            "bank",
            "95588",
            f"1370000{i:04d}",
            BANK_NOTICE.format(
                tail=rnd.randint(1000, 9999),
                day=rnd.randint(1, 28),
                hour=rnd.randint(0, 23),
                amount=rnd.randint(10, 9000),
                balance=rnd.randint(10, 90000),
            ),
        )
        for i in range(20)
    ]
    stream = ordinary[:]
    # the copies and notices keep their own order, at random places among the ordinary messages
    for kind_rows in (copies, notices):
        places = sorted(rnd.sample(range(len(stream) + len(kind_rows)), len(kind_rows)))
        for place, row in zip(places, kind_rows, strict=True):
            stream.insert(place, row)
    yield from stream


async def run(checked: RulesInspector, plain: RulesInspector) -> list[Sent]:
    clock = checked.campaigns.clock if checked.campaigns is not None else Clock()
    sent = []
    for kind, source, destination, text in traffic():
        assert isinstance(clock, Clock)
        clock.now += 2.0
        message = sms(source, destination, text)
        sent.append(Sent(kind, message, await decide(checked, message), await decide(plain, message)))
    return sent


async def test_a_campaign_hidden_in_ordinary_traffic_is_found_and_later_copies_raised(engine):
    checked, plain = inspector(engine), inspector(engine, None)
    sent = await run(checked, plain)
    copies = [s for s in sent if s.kind == "campaign"]
    # the rules alone catch some wordings and miss the others
    caught_alone = [c for c in copies if c.alone.action is not Action.PASS]
    assert 0 < len(caught_alone) < len(copies) // 2

    # the campaign opens at the K-th distinct recipient, once; every copy from there on carries it
    assert [c.decision.campaign is not None for c in copies] == [False] * (K - 1) + [True] * (len(copies) - K + 1)
    [campaign] = {c.decision.campaign for c in copies[K - 1 :]}
    assert campaign is not None
    tracker = checked.campaigns
    assert tracker is not None
    events = tracker.events
    assert isinstance(events, MemoryEvents)
    [opened] = events.named("campaign.opened")
    assert opened.fields["campaign"] == campaign
    assert opened.fields["recipients"] == K
    assert opened.fields["category"] == "customer_service"
    assert [e.fields["campaign"] for e in events.named("campaign.copy")] == [campaign] * (len(copies) - K + 1)
    store = tracker.store
    assert isinstance(store, MemoryStore)
    assert [r.fields["campaign"] for r in store.audit_log if r.kind == "campaign.opened"] == [campaign]

    # later copies: at least a warning (the flash goes to the recipient), and the campaign's points
    for c in copies[K - 1 :]:
        assert c.decision.action in (Action.WARN, Action.BLOCK), c.message.text
        assert "campaign" in c.decision.rules
        assert c.decision.category is not None
    missed_then_caught = [c for c in copies[K - 1 :] if c.alone.action is Action.PASS]
    assert len(missed_then_caught) >= 10
    # earlier copies are what the rules alone say
    assert all(c.decision == c.alone for c in copies[: K - 1])


async def test_ordinary_messages_and_allow_listed_bulk_are_not_touched(engine):
    checked, plain = inspector(engine), inspector(engine, None)
    sent = await run(checked, plain)
    others = [s for s in sent if s.kind != "campaign"]
    assert len(others) == 420
    assert all(s.decision == s.alone for s in others)
    assert all(s.decision.campaign is None for s in others)
    notices = [s for s in sent if s.kind == "bank"]
    assert {s.decision.action for s in notices} == {Action.PASS}
    tracker = checked.campaigns
    assert tracker is not None
    assert isinstance(tracker.events, MemoryEvents)
    assert len(tracker.events.named("campaign.opened")) == 1


async def test_bulk_from_an_allow_listed_prefix_opens_no_campaign_even_on_volume_alone(engine):
    volume = CampaignConfig(recipients=3, needs_evidence=False, allow_senders=("10690",))
    checked = inspector(engine, volume)
    text = "【某某商城】亲爱的会员，您的积分即将到期，请在本月底前登录商城兑换礼品，退订回T"
    for i in range(10):
        assert (await decide(checked, sms("10690123", f"1380000{i:04d}", text))).campaign is None
    # the same wording from a sender off the list: volume alone opens a campaign
    found = [(await decide(checked, sms("10691123", f"1380000{i:04d}", text))).campaign for i in range(4)]
    assert found[:2] == [None, None]
    assert found[2] is not None
    assert found[3] == found[2]


async def test_messages_an_allow_rule_lets_by_are_not_counted_even_on_volume_alone(engine):
    checked = inspector(engine, CampaignConfig(recipients=3, needs_evidence=False))
    notice = BANK_NOTICE.format(tail=1234, day=5, hour=9, amount=300, balance=5000)
    # 95588 is on the packs' bank service numbers: allow.bank-official matches its notices
    assert "allow.bank-official" in engine.evaluate(rules.Message(channel="sms", src="95588", text=notice)).rules
    for i in range(10):
        assert (await decide(checked, sms("95588", f"1380000{i:04d}", notice))).campaign is None
    found = [(await decide(checked, sms("13912345678", f"1380000{i:04d}", notice))).campaign for i in range(3)]
    assert found[2] is not None


async def test_many_distinct_messages_do_not_grow_the_state_beyond_its_bound(engine):
    store = MemoryStore()
    checked = inspector(engine, CampaignConfig(recipients=K, max_clusters=100), store)
    rows = ham(2000)
    for row in rows:
        await decide(checked, sms(row["from"], row["to"], row["text"]))
    assert await store.campaign_clusters() == 100
    assert len(store._bands) <= 100 * rules.campaign.BANDS


async def test_a_store_that_fails_leaves_the_rules_verdict(engine):
    class Broken(MemoryStore):
        async def campaign_sighting(self, copy: Any, policy: Any) -> Any:
            raise ConnectionError("store away")

    checked, plain = inspector(engine, CONFIG, Broken()), inspector(engine, None)
    rnd = random.Random(1)
    for i in range(12):
        message = sms("17012345678", f"1390000{i:04d}", campaign_copy(i, rnd))
        assert await decide(checked, message) == await decide(plain, message)
