"""A task that swallows a cancellation is still stopped."""

from __future__ import annotations

import asyncio

from meshkit.tasks import cancel_and_wait


async def test_a_task_that_swallows_one_cancellation_is_cancelled_again_until_it_ends() -> None:
    swallowed = 0

    async def stubborn() -> None:
        nonlocal swallowed
        while True:
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                swallowed += 1
                if swallowed >= 3:
                    raise

    task = asyncio.create_task(stubborn())
    await asyncio.sleep(0)
    await asyncio.wait_for(cancel_and_wait([task], retry_every=0.01), timeout=5)
    assert task.done() and swallowed == 3


async def test_finished_tasks_are_left_alone() -> None:
    task = asyncio.create_task(asyncio.sleep(0))
    await task
    await cancel_and_wait([task])
    assert task.done() and not task.cancelled()
