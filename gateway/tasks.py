"""Background tasks the gateway owns: stopping one is cancelling it and waiting until it has finished."""

from __future__ import annotations

import asyncio
from typing import Any


async def cancel_and_wait(task: asyncio.Task[Any] | None) -> None:
    """Cancel ``task`` (if any) and wait for it to end, so that nothing it holds outlives the caller's stop.

    The task's own CancelledError is the expected end and is swallowed; the caller's is not: a stop that
    is itself cancelled while it waits must end, or whoever cancelled it waits for ever.
    """
    if task is None:
        return
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        me = asyncio.current_task()
        if me is not None and me.cancelling():
            raise
