"""Calls made while the event loop runs one turn, carried out together.

Recording a dissuasion attempt costs one transaction (SQLite) or one round trip (Redis) per case, and
the engine records a whole batch of attempts at once. Through a ``TurnBatcher`` each caller queues its
item and awaits its own answer; the first call of a turn starts a task that runs once the turn is
over and carries out everything queued by then (up to ``limit`` at a time) in one go. Every caller
gets its own result or its own exception, and only after the batch has been carried out: an answer
means the change is stored, as with one call at a time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from gateway.tasks import cancel_and_wait

Item = TypeVar("Item")
Answer = TypeVar("Answer")


class TurnBatcher(Generic[Item, Answer]):
    def __init__(
        self, carry_out: Callable[[list[Item]], Awaitable[list[Answer | Exception]]], *, limit: int = 500
    ) -> None:
        """``carry_out`` gets the queued items and answers each, in order, with a result or the exception
        for that item alone; an exception it raises is every item's answer."""
        self._carry_out = carry_out
        self.limit = limit
        self._queued: list[tuple[Item, asyncio.Future[Answer]]] = []
        self._task: asyncio.Task[None] | None = None

    async def submit(self, item: Item) -> Answer:
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[Answer] = loop.create_future()
        self._queued.append((item, answer))
        if self._task is None or self._task.done():
            self._task = loop.create_task(self._drain())
        return await answer

    async def _drain(self) -> None:
        batch: list[tuple[Item, asyncio.Future[Answer]]] = []
        try:
            while self._queued:
                batch, self._queued = self._queued[: self.limit], self._queued[self.limit :]
                try:
                    answers = await self._carry_out([item for item, _ in batch])
                except Exception as exc:
                    answers = [exc] * len(batch)
                for (_, future), answer in zip(batch, answers, strict=True):
                    if future.done():
                        continue  # its caller was cancelled meanwhile
                    if isinstance(answer, Exception):
                        future.set_exception(answer)
                    else:
                        future.set_result(answer)
                batch = []
        finally:
            # Cancelled (the store is closing): no caller waits for ever.
            for _, future in (*batch, *self._queued):
                future.cancel()
            self._queued = []

    async def close(self) -> None:
        await cancel_and_wait(self._task)
