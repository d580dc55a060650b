"""Stopping a background task: its cancellation is swallowed, the caller's own is not."""

from __future__ import annotations

import asyncio

import pytest

from gateway.tasks import cancel_and_wait


async def test_the_tasks_cancellation_ends_the_wait_quietly() -> None:
    task = asyncio.create_task(asyncio.sleep(3600))
    await asyncio.sleep(0)
    await cancel_and_wait(task)
    assert task.cancelled()


async def test_a_stop_that_is_itself_cancelled_ends_with_its_cancellation() -> None:
    stopping = asyncio.Event()
    release = asyncio.Event()

    async def slow_to_stop() -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            stopping.set()
            await release.wait()  # a clean-up that takes its time
            raise

    task = asyncio.create_task(slow_to_stop())
    await asyncio.sleep(0)
    stopper = asyncio.create_task(cancel_and_wait(task))
    await stopping.wait()
    stopper.cancel()  # whoever stops the gateway gives up on this stop
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(stopper, 5)
    release.set()
    await asyncio.wait_for(asyncio.gather(task, return_exceptions=True), 5)


async def test_an_error_the_task_ends_with_reaches_the_caller() -> None:
    async def fails_on_cancel() -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            raise RuntimeError("clean-up failed") from None

    task = asyncio.create_task(fails_on_cancel())
    await asyncio.sleep(0)
    with pytest.raises(RuntimeError, match="clean-up failed"):
        await cancel_and_wait(task)
