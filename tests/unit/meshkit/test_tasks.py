"""A task that swallows a cancellation is still stopped; a periodic round outlives a failure."""

from __future__ import annotations

import asyncio
import gc

import pytest

from meshkit.tasks import cancel_and_wait, run_every


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


async def test_a_task_given_alone_is_refused_instead_of_being_awaited() -> None:
    # A task is iterable (its __await__), so iterating one by mistake would await it and raise
    # "await wasn't used with future" from inside the caller's clean-up.
    task = asyncio.create_task(asyncio.sleep(10))
    try:
        with pytest.raises(TypeError, match=r"pass \[task\]"):
            await cancel_and_wait(task)
        assert not task.done()
    finally:
        await cancel_and_wait([task])
    assert task.cancelled()


async def test_an_exception_of_a_task_given_up_is_taken_not_reported_as_never_retrieved() -> None:
    reported: list[dict[str, object]] = []
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda _loop, context: reported.append(context))
    try:

        async def fails() -> None:
            raise KeyError("unreadable")

        task = asyncio.create_task(fails())
        await asyncio.sleep(0)
        assert task.done()
        await cancel_and_wait([task])
        del task
        gc.collect()
        assert reported == []
    finally:
        loop.set_exception_handler(None)


async def test_run_every_logs_a_failed_round_and_runs_the_next(
    caplog: pytest.LogCaptureFixture,
) -> None:
    rounds = 0
    third = asyncio.Event()

    async def round_() -> None:
        nonlocal rounds
        rounds += 1
        if rounds == 3:
            third.set()
        if rounds == 1:
            raise RuntimeError("venue down")

    task = asyncio.create_task(run_every(round_, 0.0, "test monitor"))
    await asyncio.wait_for(third.wait(), timeout=5)
    await cancel_and_wait([task])
    assert task.cancelled()
    assert [r.getMessage() for r in caplog.records] == ["test monitor round failed"]
