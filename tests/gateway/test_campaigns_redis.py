"""Two gateways on one Redis count one campaign: copies sent through either are refused on the wire once
it is open, and both gateways' refusals, events and audit records name the same campaign."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

import rules
from gateway.campaigns import CampaignConfig
from gateway.config import EsmeAccount, RulesConfig, StoreConfig
from gateway.events import MemoryEvents
from gateway.store.redis_store import RedisStore
from protocols.smpp.constants import CommandStatus, DataCoding
from protocols.smpp.pdu import SubmitSm
from simulator.esme import SimulatedEsme
from tests.e2e.smpp_harness import eventually, gateway_port, make_config, running_gateway
from tests.gateway.store.redis_server import start_redis

# the phrase packs without the evidence pack, which blocks these wordings on their own: what is tested is
# the raise a campaign shared through Redis gives to what the rules alone let by
PHRASE_PACKS = tuple(str(p) for p in sorted(rules.DEFAULT_PACKS.glob("*.yaml")) if p.name != "evidence.yaml")

ACCOUNTS = (EsmeAccount(system_id="bulk", password="bulkpw", throughput=1000, window=10),)
K = 4
# The first wording asks for screen sharing, which the rules block; the others they let by.
CAUGHT = "张伟您好，您名下的抖音会员即将自动续费399元，如需取消请于今日联系专员vx:kf123办理退款，需开启屏幕共享配合操作"
LET_BY = (
    "李娜您好，您名下的快手会员即将自动续费588元，如需取消请于今日联系专员QQ88776655办理，逾期不予处理",
    "王芳您好，您名下的京東會員即將自動續費199元，如需取消請於今日聯繫專員+V 556677辦理，逾期將無法退訂",
    "刘洋您好，您名下的美团会员即将自动续费 2 9 9 元，如需取消请于今日联系专员vx:kf777办理，过期不候",
    "陈静您好，您名下的爱奇艺会员即将自动续费399元，如需取消请于今日联系专员QQ12345678办理，逾期不予处理",
    "杨磊您好，您名下的抖音会员即将自动续费88元，如需取消请于今日联系专员vx:kf999办理，逾期将无法退订",
)


@pytest.fixture(scope="module")
def redis_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    proc, port = start_redis(tmp_path_factory.mktemp("redis"))
    yield port
    proc.kill()
    proc.wait()


def ucs2(source: str, destination: str, text: str) -> SubmitSm:
    return SubmitSm(
        source_addr=source,
        destination_addr=destination,
        data_coding=DataCoding.UCS2,
        short_message=text.encode("utf-16-be"),
    )


async def test_two_gateways_on_one_redis_see_one_campaign(smsc, redis_port: int, tmp_path: Path) -> None:
    prefix = f"t{uuid.uuid4().hex[:8]}"
    url = f"redis://127.0.0.1:{redis_port}/0"
    campaigns = CampaignConfig(recipients=K, action="block", score=5.0)
    config = replace(
        make_config(
            smsc.port, accounts=ACCOUNTS, rules=RulesConfig(packs=PHRASE_PACKS, reload_interval=0, campaigns=campaigns)
        ),
        store=StoreConfig(backend="redis", redis_url=url, redis_prefix=prefix),
    )
    texts = (CAUGHT, *LET_BY)
    recipients = [f"86139000000{i:02d}" for i in range(len(texts))]
    async with running_gateway(config) as one, running_gateway(config) as two:
        esmes = [SimulatedEsme("127.0.0.1", gateway_port(gw), "bulk", "bulkpw") for gw in (one, two)]
        for esme in esmes:
            await esme.bind()
        answers = []
        for i, text in enumerate(texts):
            sender = f"170{i:08d}"  # a SIM farm: another number each time
            answers.append((await esmes[i % 2].send(ucs2(sender, recipients[i], text))).command_status)
        for esme in esmes:
            await esme.unbind()

        # the rules block the first wording and let the next two by; from the K-th recipient on, the
        # campaign refuses every copy, through either gateway
        ok, fail = CommandStatus.ESME_ROK, CommandStatus.ESME_RSUBMITFAIL
        assert answers == [fail, ok, ok] + [fail] * (len(texts) - K + 1)
        await eventually(lambda: all(smsc.inbox(r) for r in recipients))
        for i, number in enumerate(recipients):
            delivered = [sms.text for sms in smsc.inbox(number) if not sms.flash]
            assert delivered == ([texts[i]] if answers[i] == ok else [])
            if answers[i] == fail:
                assert [sms for sms in smsc.inbox(number) if sms.flash]  # and the recipient was warned

        events = [gw.events for gw in (one, two)]
        assert all(isinstance(e, MemoryEvents) for e in events)
        opened = [e for sink in events for e in sink.named("campaign.opened")]  # type: ignore[attr-defined]
        assert len(opened) == 1
        campaign = opened[0].fields["campaign"]
        blocked = [e for sink in events for e in sink.named("sms.blocked")]  # type: ignore[attr-defined]
        assert sorted(e.fields.get("campaign", "") for e in blocked) == [""] + [campaign] * (len(texts) - K + 1)
        assert {e.fields["destination"] for e in blocked if e.fields.get("campaign")} == set(recipients[K - 1 :])

    # the shared audit trail names the campaign too
    store = RedisStore(url, prefix=prefix)
    try:
        records = await store.audit_records(limit=100)
        assert [r.fields["campaign"] for r in records if r.kind == "campaign.opened"] == [campaign]
        refused = [r for r in records if r.kind == "sms.blocked" and r.fields.get("campaign") == campaign]
        assert len(refused) == len(texts) - K + 1
        assert await store.campaign_clusters() == 1
    finally:
        await store.close()
