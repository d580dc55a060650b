"""Campaign clusters, the same on every backend: memory, SQLite and Redis (fixtures in conftest.py)."""

from __future__ import annotations

import asyncio

from gateway.store import CampaignCopy, CampaignPolicy, recipient_key
from rules.campaign import Sketch, sketch

TEMPLATE = (
    "【{brand}客服】{name}您好，您购买的商品存在质量问题，"
    "我们将为您办理双倍赔偿退款{amount}元，请添加客服微信{handle}办理"
)
OTHER = "周末一起去爬山吧，天气预报说周六是晴天，我们早上八点在地铁站门口集合，记得带水和午饭"
POLICY = CampaignPolicy(window=600.0, recipients=3, similarity=0.6, max_clusters=50)


def refund(i: int) -> Sketch:
    found = sketch(TEMPLATE.format(brand="淘宝", name=("张伟", "李娜", "王芳")[i % 3], amount=100 + i, handle=f"kf{i}"))
    assert found is not None
    return found


def copy(s: Sketch, to: str, now: float, evidence: str = "customer_service") -> CampaignCopy:
    return CampaignCopy(s.hex, s.bands, (recipient_key(to),), evidence, now)


async def test_distinct_recipients_open_one_campaign_that_later_copies_carry(store):
    seen = [await store.campaign_sighting(copy(refund(i), f"138000000{i:02d}", 100.0 + i), POLICY) for i in range(5)]
    assert [s.campaign is not None for s in seen] == [False, False, True, True, True]
    assert [s.opened for s in seen] == [False, False, True, False, False]
    assert len({s.campaign for s in seen[2:]}) == 1
    assert len({s.cluster for s in seen}) == 1
    assert [s.recipients for s in seen] == [1, 2, 3, 3, 3]  # counted up to the threshold, no further
    assert seen[-1].copies == 5
    assert seen[-1].category == "customer_service"


async def test_the_same_recipient_again_is_not_another_recipient(store):
    for i in range(4):
        seen = await store.campaign_sighting(copy(refund(i), "13800000001", 100.0 + i), POLICY)
    assert (seen.recipients, seen.copies, seen.campaign) == (1, 4, None)


async def test_no_evidence_no_campaign_unless_volume_alone_is_asked_for(store):
    for i in range(4):
        seen = await store.campaign_sighting(copy(refund(i), f"1380000000{i}", 100.0 + i, evidence=""), POLICY)
    assert seen.recipients == 3
    assert seen.campaign is None
    # evidence on a later copy opens it then
    seen = await store.campaign_sighting(copy(refund(9), "13800000009", 110.0), POLICY)
    assert seen.opened
    assert seen.category == "customer_service"
    volume = CampaignPolicy(window=600.0, recipients=3, needs_evidence=False)
    other = sketch(OTHER)
    assert other is not None
    opened = [
        (await store.campaign_sighting(copy(other, f"1390000000{i}", 200.0 + i, evidence=""), volume)).opened
        for i in range(3)
    ]
    assert opened == [False, False, True]


async def test_a_different_text_starts_its_own_cluster(store):
    other = sketch(OTHER)
    assert other is not None
    assert refund(0).similarity(other) < 0.3
    first = await store.campaign_sighting(copy(refund(0), "13800000001", 100.0), POLICY)
    second = await store.campaign_sighting(copy(other, "13800000002", 101.0), POLICY)
    third = await store.campaign_sighting(copy(refund(1), "13800000003", 102.0), POLICY)
    assert first.cluster == third.cluster != second.cluster
    assert third.recipients == 2


async def test_recipients_count_within_the_window_only(store):
    # one a window apart each: the count starts again every time
    for i in range(4):
        seen = await store.campaign_sighting(copy(refund(i), f"1380000000{i}", 100.0 + 601.0 * i), POLICY)
        assert seen.campaign is None
    # an open campaign lasts while copies keep coming, then is forgotten after a window of quiet
    for i in range(3):
        seen = await store.campaign_sighting(copy(refund(i), f"1370000000{i}", 5000.0 + i), POLICY)
    campaign = seen.campaign
    assert campaign is not None
    later = await store.campaign_sighting(copy(refund(5), "13600000000", 5000.0 + 2 + 590.0), POLICY)
    assert later.campaign == campaign
    quiet = await store.campaign_sighting(copy(refund(6), "13600000001", 5000.0 + 2 + 590.0 + 601.0), POLICY)
    assert quiet.campaign is None
    assert quiet.recipients == 1


async def test_many_distinct_messages_keep_the_clusters_bounded(store):
    for i in range(120):
        text = f"第{i}号" + "".join(chr(0x4E00 + (i * 37 + j * 101) % 20000) for j in range(20))
        s = sketch(text)
        assert s is not None
        await store.campaign_sighting(copy(s, f"1380000{i:04d}", 100.0 + i), POLICY)
    assert await store.campaign_clusters() == POLICY.max_clusters


async def test_the_least_recently_seen_cluster_goes_first(store):
    policy = CampaignPolicy(window=600.0, recipients=3, max_clusters=2)
    other = sketch(OTHER)
    third = sketch("明天下午三点开会讨论下季度的预算安排，请各部门负责人提前准备好材料并准时参加")
    assert other is not None
    assert third is not None
    a = await store.campaign_sighting(copy(refund(0), "13800000001", 100.0), policy)
    await store.campaign_sighting(copy(other, "13800000002", 101.0), policy)
    again = await store.campaign_sighting(copy(refund(1), "13800000003", 102.0), policy)  # refund seen last
    await store.campaign_sighting(copy(third, "13800000004", 103.0), policy)  # evicts the other
    assert await store.campaign_clusters() == 2
    kept = await store.campaign_sighting(copy(refund(2), "13800000005", 104.0), policy)
    assert a.cluster == again.cluster == kept.cluster
    assert kept.recipients == 3


async def test_two_instances_see_one_campaign(make_store):
    one, two = make_store(), make_store()
    try:
        seen = []
        for i in range(6):
            handle = (one, two)[i % 2]
            seen.append(await handle.campaign_sighting(copy(refund(i), f"1380000000{i}", 100.0 + i), POLICY))
            # A turn of the loop between them, as between two processes: a SQLite handle commits its
            # sightings once per turn, and a second handle in the same process would wait on it.
            await asyncio.sleep(0)
        assert [s.opened for s in seen] == [False, False, True, False, False, False]
        assert len({s.campaign for s in seen[2:]}) == 1
    finally:
        await one.close()
        if two is not one:
            await two.close()


async def test_concurrent_copies_open_exactly_one_campaign(make_store, backend):
    one = make_store()
    # SQLite serves one gateway: a process holds one handle, and the file lock orders processes
    two = one if backend == "sqlite" else make_store()
    try:
        seen = await asyncio.gather(
            *[(one, two)[i % 2].campaign_sighting(copy(refund(i), f"1380000000{i}", 100.0), POLICY) for i in range(8)]
        )
        assert sum(s.opened for s in seen) == 1
        assert len({s.campaign for s in seen if s.campaign}) == 1
        assert len({s.cluster for s in seen}) == 1
    finally:
        await one.close()
        if two is not one:
            await two.close()
