"""Risk scores: points per sighting, exponential decay, a trigger on each crossing into a higher tier."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.dissuasion.scoring import (
    RiskScorer,
    ScoringConfig,
    Sighting,
    decay,
    may_score,
    points,
    score,
    tier_of,
)
from gateway.dissuasion.triggers import Trigger
from gateway.store import MemoryStore, RiskScore, SqliteStore

DOC = Path(__file__).parents[3] / "docs" / "dissuasion.md"
SUBSCRIBER = "8613800000001"


class RecordingSink:
    def __init__(self) -> None:
        self.triggers: list[tuple[Trigger, float]] = []

    async def trigger(self, trigger: Trigger, now: float) -> None:
        self.triggers.append((trigger, now))


def example_rows() -> list[list[str]]:
    text = DOC.read_text(encoding="utf-8").split("### Worked example", 1)[1]
    rows = [line for line in text.splitlines() if re.match(r"\| [0-9]", line)]
    assert len(rows) >= 4
    return [[cell.strip() for cell in row.strip("|").split("|")] for row in rows]


@pytest.mark.parametrize("backend", ["memory", "sqlite"])
async def test_the_worked_example_in_the_docs_holds(backend, tmp_path):
    store = MemoryStore() if backend == "memory" else SqliteStore(tmp_path / "afgw.db")
    sink = RecordingSink()
    scorer = RiskScorer(store, sink, ScoringConfig(listed_numbers=("+85261234567",)))
    expected_triggers = []
    for at, channel, decision, sender, origin, dissuade, worth, value, trigger in example_rows():
        scored = await scorer.observe(
            Sighting(
                SUBSCRIBER,
                channel,  # type: ignore[arg-type]
                decision,
                sender,
                origin,
                rules=("police.x",),
                category="police_impersonation",
                dissuade=dissuade == "yes",
            ),
            float(at),
        )
        assert (scored.points, f"{scored.value:.2f}") == (float(worth), value), at
        if trigger != "-":
            expected_triggers.append((trigger, float(at)))
    assert [(t.tier, now) for t, now in sink.triggers] == expected_triggers
    assert {(t.subscriber, t.source, t.fraud_type) for t, _ in sink.triggers} == {
        (SUBSCRIBER, "score", "police_impersonation")
    }
    assert "listed caller" in sink.triggers[-1][0].detail
    stored = await store.get_risk(SUBSCRIBER)
    assert stored is not None
    assert f"{stored.value:.2f}" == example_rows()[-1][7]
    await store.close()


@given(
    value=st.floats(0.1, 1e6),
    half_life=st.floats(1.0, 1e7),
    a=st.floats(0, 1e7),
    b=st.floats(0, 1e7),
)
def test_decay_halves_per_half_life_and_composes(value, half_life, a, b):
    assert decay(value, half_life, half_life) == pytest.approx(value / 2)
    assert decay(decay(value, a, half_life), b, half_life) == pytest.approx(decay(value, a + b, half_life), rel=1e-9)
    assert decay(value, -a, half_life) == value  # a clock that stepped back never inflates a score


@pytest.mark.parametrize("half_life", [3600.0, 86_400.0, 7 * 86_400.0])
def test_the_half_life_is_configurable(half_life):
    config = ScoringConfig(half_life=half_life)
    first = score(None, Sighting(SUBSCRIBER, "sms", "warn"), 0.0, config)
    later = score(RiskScore(first.value, 0.0), Sighting(SUBSCRIBER, "sms", "pass"), half_life, config)
    assert later.value == pytest.approx(first.value / 2)


RANK = {None: -1, "low": 0, "medium": 1, "high": 2}


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["sms", "call"]),
            st.sampled_from(["pass", "tag", "warn", "block", "label"]),
            st.booleans(),
            st.floats(0, 86_400),
        ),
        max_size=30,
    )
)
def test_a_trigger_comes_exactly_when_the_score_enters_a_higher_tier(sightings):
    config = ScoringConfig()
    previous, now = None, 0.0
    for channel, action, abroad, gap in sightings:
        now += gap
        origin = "international" if abroad else "domestic"
        scored = score(previous, Sighting(SUBSCRIBER, channel, action, origin=origin), now, config)
        before = decay(previous.value, now - previous.updated_at, config.half_life) if previous else 0.0
        rising = RANK[scored.tier] > RANK[tier_of(before, config)]
        assert scored.crossed == (scored.tier if rising else None)
        previous = RiskScore(scored.value, now)


@pytest.mark.parametrize(
    ("sighting", "expected"),
    [
        (Sighting(SUBSCRIBER, "sms", "block"), 30.0),
        (Sighting(SUBSCRIBER, "sms", "warn"), 20.0),
        (Sighting(SUBSCRIBER, "sms", "tag"), 0.0),
        (Sighting(SUBSCRIBER, "sms", "pass", origin="international"), 5.0),
        (Sighting(SUBSCRIBER, "call", "tag"), 25.0),
        (Sighting(SUBSCRIBER, "call", "warn"), 25.0),
        (Sighting(SUBSCRIBER, "call", "block", dissuade=True), 35.0),
        (Sighting(SUBSCRIBER, "call", "label"), 0.0),
        (Sighting(SUBSCRIBER, "call", "pass", dissuade=True), 0.0),  # dissuade adds to a flagged sighting only
        (Sighting(SUBSCRIBER, "sms", "warn", rules=("loan.fee",)), 30.0),  # in feed by id
        (Sighting(SUBSCRIBER, "sms", "warn", category="investment"), 30.0),  # in feed by category
        (Sighting(SUBSCRIBER, "call", "pass", sender="+8613912345678"), 40.0),
        (Sighting(SUBSCRIBER, "call", "pass", sender="008613912345678"), 40.0),
        (Sighting(SUBSCRIBER, "call", "pass", sender="13912345678"), 40.0),
        (Sighting(SUBSCRIBER, "call", "pass", sender="13912345679"), 0.0),
        (Sighting(SUBSCRIBER, "sms", "pass", sender="13912345678"), 0.0),  # the list is of callers
    ],
)
def test_points_per_sighting(sighting, expected):
    config = ScoringConfig(feed=("loan.fee", "investment"), listed_numbers=("8613912345678",))
    assert points(sighting, config)[0] == expected


async def test_a_sighting_worth_nothing_leaves_the_store_alone():
    store, sink = MemoryStore(), RecordingSink()
    await store.set_risk(SUBSCRIBER, 50.0, 100.0)
    scorer = RiskScorer(store, sink)
    scored = await scorer.observe(Sighting(SUBSCRIBER, "sms", "pass"), 200.0)
    assert scored.points == 0.0
    assert await store.get_risk(SUBSCRIBER) == RiskScore(50.0, 100.0)
    assert sink.triggers == []


async def test_repeated_international_contact_alone_reaches_a_tier():
    store, sink = MemoryStore(), RecordingSink()
    scorer = RiskScorer(store, sink)
    for n in range(9):  # 9 x 5 points within minutes: past 40
        await scorer.observe(
            Sighting(SUBSCRIBER, "call", "pass", sender="+85261230000", origin="international"), n * 60.0
        )
    assert [t.tier for t, _ in sink.triggers] == ["low"]
    assert sink.triggers[0][0].fraud_type == "other"


class OneAtATime:
    """A store that reads and writes one score per call (no ``get_risks``/``set_risks``)."""

    def __init__(self) -> None:
        self.inner = MemoryStore()

    async def get_risk(self, subscriber: str) -> RiskScore | None:
        return await self.inner.get_risk(subscriber)

    async def set_risk(self, subscriber: str, value: float, now: float) -> None:
        await self.inner.set_risk(subscriber, value, now)


@pytest.mark.parametrize("backend", ["memory", "sqlite", "one at a time"])
async def test_sightings_scored_together_score_as_one_after_the_other(backend, tmp_path):
    others = ("8613800000002", "8613800000003")
    sightings = [
        (Sighting(SUBSCRIBER, "sms", "block", dissuade=True, category="police_impersonation"), 10.0),
        (Sighting(others[0], "sms", "pass"), 11.0),
        (Sighting(SUBSCRIBER, "sms", "warn"), 12.0),
        (Sighting(others[1], "call", "tag", origin="international"), 13.0),
        (Sighting(SUBSCRIBER, "sms", "pass"), 14.0),
        (Sighting(SUBSCRIBER, "sms", "block"), 15.0),
        (Sighting(others[1], "call", "block"), 16.0),
    ]
    reference_store, reference_sink = MemoryStore(), RecordingSink()
    reference = RiskScorer(reference_store, reference_sink)
    await reference_store.set_risk(others[0], 7.0, 1.0)  # worth nothing now: kept as it was
    expected = [await reference.observe(sighting, now) for sighting, now in sightings]

    store: Any = {"memory": MemoryStore, "one at a time": OneAtATime}.get(backend, lambda: None)()
    if store is None:
        store = SqliteStore(tmp_path / "afgw.db")
    await store.set_risk(others[0], 7.0, 1.0)
    sink = RecordingSink()
    got = await RiskScorer(store, sink).observe_many(sightings)
    assert got == expected
    assert sink.triggers == reference_sink.triggers
    for subscriber in (SUBSCRIBER, *others):
        assert await store.get_risk(subscriber) == await reference_store.get_risk(subscriber)
    if backend == "sqlite":
        await store.close()


@given(
    channel=st.sampled_from(["sms", "call"]),
    action=st.sampled_from(["pass", "tag", "warn", "block", "label"]),
    sender=st.sampled_from(["", "10690", "+8613912345678", "13912345679"]),
    origin=st.sampled_from(["domestic", "international"]),
    dissuade=st.booleans(),
    listed=st.sampled_from([(), ("8613912345678",)]),
)
def test_a_sighting_not_worth_building_is_worth_nothing(channel, action, sender, origin, dissuade, listed):
    config = ScoringConfig(feed=("loan.fee",), listed_numbers=listed)
    sighting = Sighting(SUBSCRIBER, channel, action, sender, origin, rules=("loan.fee",), dissuade=dissuade)
    if not may_score(channel, action, sender, origin, config):
        assert points(sighting, config) == (0.0, ())
