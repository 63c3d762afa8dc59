"""Stopping background tasks for certain.

On Python 3.11 a cancellation can be lost: ``asyncio.wait_for`` returns the inner result when
that result and the cancellation arrive together (fixed in 3.12), and a loop around it then runs
on. A service that cancels its tasks once and awaits them would hang at shutdown. This helper
cancels again until every task has really ended.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable


async def cancel_and_wait(tasks: Iterable[asyncio.Task[object]], *, retry_every: float = 0.5) -> None:
    """Cancel ``tasks`` and wait until each has ended, re-cancelling any that swallowed it."""
    pending = {task for task in tasks if not task.done()}
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=retry_every)
