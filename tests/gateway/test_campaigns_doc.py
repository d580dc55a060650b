"""docs/rules.md on campaigns: its gateway.yaml section loads as shown, behaves as the text says, and
the configuration's errors point at the value."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

import rules
from gateway.campaigns import CampaignConfig, CampaignTracker
from gateway.config import ConfigError, load
from gateway.events import MemoryEvents
from gateway.inspection import Action, SmsMessage, decide
from gateway.rules_hook import RulesInspector
from gateway.store import MemoryStore
from protocols.smpp.pdu import SubmitSm

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "rules.md").read_text("utf-8")
[EXAMPLE] = re.findall(r"<!-- gateway-config: campaigns -->\n```yaml\n(.*?)```", DOC, re.S)
CAUGHT = "张伟您好，您名下的抖音会员即将自动续费399元，如需取消请于今日联系专员vx:kf123办理退款，需开启屏幕共享配合操作"
LET_BY = "{name}您好，您名下的快手会员即将自动续费{amount}元，如需取消请于今日联系专员QQ{qq}办理，逾期不予处理"


def documented_fields(event: str) -> set[str]:
    """The field names the doc lists after an event's name: ``event`` ... (`a`, `b`, ...)."""
    match = re.search(rf"`{re.escape(event)}`[^(]*\(([^)]*)\)", DOC)
    assert match is not None, event
    return set(re.findall(r"`(\w+)`", match.group(1)))


@dataclass
class Clock:
    now: float = 1_700_000_000.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


def sms(source: str, destination: str, text: str) -> SmsMessage:
    pdu = SubmitSm(source_addr=source, destination_addr=destination)
    return SmsMessage(pdu, direction="mt", system_id="bulk", source=source, destinations=(destination,), text=text)


def test_the_documented_section_loads_with_the_defaults_it_claims(tmp_path):
    path = tmp_path / "gateway.yaml"
    path.write_text(EXAMPLE, "utf-8")
    config = load(path).rules
    assert config is not None
    assert config.campaigns == CampaignConfig(allow_senders=("95", "10086"))


async def test_the_documented_section_does_what_the_text_says(tmp_path):
    path = tmp_path / "gateway.yaml"
    path.write_text(EXAMPLE, "utf-8")
    config = load(path).rules
    assert config is not None
    assert config.campaigns is not None
    # the phrase packs without the evidence pack, which catches these wordings on their own: the campaign's
    # raise of what the rules alone let by is what the section describes
    packs = [p for p in sorted(rules.DEFAULT_PACKS.glob("*.yaml")) if p.name != "evidence.yaml"]
    engine = rules.Engine(rules.build(packs))
    inspector = RulesInspector(engine)
    events = MemoryEvents()
    inspector.campaigns = CampaignTracker(MemoryStore(), engine, config.campaigns, events=events, clock=Clock())
    recipients = config.campaigns.recipients
    # a service number on allow_senders is never counted, however many it reaches
    for i in range(recipients + 5):
        await decide(inspector, sms("95588", f"1370000{i:04d}", CAUGHT))
    assert events.named("campaign.opened") == []
    # one caught wording, then wordings the rules let by, each to another recipient
    decisions = [await decide(inspector, sms("17000000001", "13900000000", CAUGHT))]
    for i in range(1, recipients + 3):
        text = LET_BY.format(name="李娜", amount=100 + i, qq=10_000_000 + i)
        decisions.append(await decide(inspector, sms(f"170{i:08d}", f"1390000{i:04d}", text)))
    assert [d.campaign is not None for d in decisions] == [False] * (recipients - 1) + [True] * 4
    assert decisions[1].action is Action.PASS  # what the rules say of the wordings they miss
    assert all(d.action is Action.WARN for d in decisions[recipients - 1 :])  # action: warn
    [opened] = events.named("campaign.opened")
    assert set(opened.fields) == documented_fields("campaign.opened")
    assert opened.fields["recipients"] == recipients
    copies = events.named("campaign.copy")
    assert len(copies) == 4
    assert set(copies[0].fields) == documented_fields("campaign.copy")
    assert re.fullmatch(r"cmp-\d+", opened.fields["campaign"])


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("similarity: 1.5", "4:17: similarity: 1.5 is not a share between 0 (excluded) and 1"),
        ("action: drop", "4:13: action: 'drop' is not one of tag, warn, block (or null)"),
        ("recipients: 0", "4:17: recipients: must be greater than zero, got 0"),
        ("window: -5", "4:13: window: must be greater than zero, got -5"),
        ("allow_senders: [95588]", "4:21: allow_senders: expected a string, got 95588"),
        ("recipient: 5", "4:5: unknown field 'recipient'"),
    ],
)
def test_errors_point_at_the_value(tmp_path, line, message):
    path = tmp_path / "gateway.yaml"
    path.write_text(f"rules:\n  reload_interval: 0\n  campaigns:\n    {line}\n", "utf-8")
    with pytest.raises(ConfigError) as info:
        load(path)
    assert any(e.startswith(f"{path}:{message}") for e in info.value.errors), info.value.errors
