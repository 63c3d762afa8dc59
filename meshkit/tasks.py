"""Running periodic rounds and stopping background tasks for certain.

``run_every`` runs a monitor's round about once per interval, a failed round logged and the
next one run all the same.

On Python 3.11 a cancellation can be lost: ``asyncio.wait_for`` returns the inner result when
that result and the cancellation arrive together (fixed in 3.12), and a loop around it then runs
on. A service that cancels its tasks once and awaits them would hang at shutdown.
``cancel_and_wait`` cancels again until every task has really ended.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable

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


async def run_every(
    round_: Callable[[], Awaitable[object]], interval_seconds: float, name: str
) -> None:
    """Await ``round_()`` about once per ``interval_seconds``, until cancelled.

    The interval runs from the start of a round (a slow round is followed at once by the next).
    A round that raises is logged as ``"<name> round failed"`` with its traceback, and the loop
    goes on; a cancellation ends it.
    """
    while True:
        started = time.monotonic()
        try:
            await round_()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s round failed", name)
        await asyncio.sleep(max(0.0, interval_seconds - (time.monotonic() - started)))
