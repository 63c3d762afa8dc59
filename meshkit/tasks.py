"""Stopping background tasks for certain.

On Python 3.11 a cancellation can be lost: ``asyncio.wait_for`` returns the inner result when
that result and the cancellation arrive together (fixed in 3.12), and a loop around it then runs
on. A service that cancels its tasks once and awaits them would hang at shutdown. This helper
cancels again until every task has really ended.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

log = logging.getLogger(__name__)


async def cancel_and_wait(
    tasks: Iterable[asyncio.Task[object]], *, retry_every: float = 0.5
) -> None:
    """Cancel ``tasks`` and wait until each has ended, re-cancelling any that swallowed it.

    The caller is giving the tasks up: an exception one of them ended with is taken here (and
    logged at debug level), so asyncio does not report it later as never retrieved.
    """
    if isinstance(tasks, asyncio.Future):
        # A task is iterable (``__iter__`` is its ``__await__``): iterating it would await it.
        raise TypeError("cancel_and_wait takes a collection of tasks, not a task: pass [task]")
    given = list(tasks)
    pending = {task for task in given if not task.done()}
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=retry_every)
    for task in given:
        if not task.cancelled() and task.exception() is not None:
            log.debug("a task given up ended with %r", task.exception())
