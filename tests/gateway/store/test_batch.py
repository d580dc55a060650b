"""Calls of one event-loop turn carried out together, each caller answered on its own."""

from __future__ import annotations

import asyncio

import pytest

from gateway.store.batch import TurnBatcher


async def test_one_turns_calls_go_in_one_batch_and_each_gets_its_own_answer():
    batches: list[list[int]] = []

    async def carry_out(items: list[int]) -> list[int | Exception]:
        batches.append(items)
        return [ValueError(f"odd {i}") if i % 2 else i * 10 for i in items]

    batcher: TurnBatcher[int, int] = TurnBatcher(carry_out, limit=3)
    answers = await asyncio.gather(*(batcher.submit(i) for i in range(5)), return_exceptions=True)
    assert batches == [[0, 1, 2], [3, 4]]
    assert answers[0::2] == [0, 20, 40]
    assert [str(a) for a in answers[1::2]] == ["odd 1", "odd 3"]
    assert await batcher.submit(6) == 60  # a later turn starts a new batch
    assert batches[-1] == [6]


async def test_a_failed_batch_fails_every_caller_in_it():
    async def carry_out(items: list[int]) -> list[int | Exception]:
        raise ConnectionError("store away")

    batcher: TurnBatcher[int, int] = TurnBatcher(carry_out)
    answers = await asyncio.gather(batcher.submit(1), batcher.submit(2), return_exceptions=True)
    assert [type(a) for a in answers] == [ConnectionError, ConnectionError]


async def test_closing_leaves_no_caller_waiting():
    started = asyncio.Event()

    async def carry_out(items: list[int]) -> list[int | Exception]:
        started.set()
        await asyncio.Event().wait()  # a store that never answers
        return list(items)

    batcher: TurnBatcher[int, int] = TurnBatcher(carry_out)
    waiting = asyncio.ensure_future(batcher.submit(1))
    await started.wait()
    late = asyncio.ensure_future(batcher.submit(2))  # queued behind the batch in flight
    await asyncio.sleep(0)
    await batcher.close()
    for caller in (waiting, late):
        with pytest.raises(asyncio.CancelledError):
            await caller
