"""Triggers into cases: opened due at once, updated without a second loop, expired ones ignored."""

from __future__ import annotations

import pytest

from gateway.dissuasion.opener import CaseOpener
from gateway.dissuasion.triggers import Trigger
from gateway.events import MemoryEvents
from gateway.store import MemoryStore


@pytest.mark.parametrize("source", ["centre", "score", "operator"])
async def test_a_trigger_opens_then_updates_one_case_and_says_so(source):
    store, events = MemoryStore(), MemoryEvents()
    opener = CaseOpener(store, events)
    first = Trigger("8613800000001", "low", "loan", source, reference="R1", family=("8613800000002",))
    await opener.trigger(first, 10.0)
    await opener.trigger(Trigger("8613800000001", "high", "investment", source, reference="R2"), 20.0)
    [case] = await store.all_cases()
    assert (case.tier, case.fraud_types, case.due_at, case.attempts) == ("high", ("loan", "investment"), 10.0, 0)
    opened, updated = events.named("case.opened"), events.named("case.updated")
    assert [e.fields["reference"] for e in opened + updated] == ["R1", "R2"]
    assert opened[0].fields["family"] == ["8613800000002"]
    assert {e.fields["source"] for e in opened + updated} == {source}


@pytest.mark.parametrize("expires_at", [5.0, 10.0])
async def test_an_expired_trigger_opens_nothing(expires_at):
    store, events = MemoryStore(), MemoryEvents()
    result = await CaseOpener(store, events).open(
        Trigger("8613800000001", "high", "loan", "centre", expires_at=expires_at), 10.0
    )
    assert result is None
    assert await store.all_cases() == []
    assert list(events.events) == []
