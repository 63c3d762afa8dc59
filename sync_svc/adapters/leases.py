"""The leases port: ``meshkit.leases.LeaseKeeper``, with rounds that may also be asked for.

A watch that adds a source runs a round at once (so the source is read without waiting for the
next one) while the keeper's own loop runs its rounds: a lock keeps two rounds from
interleaving.
"""

from __future__ import annotations

import asyncio
from typing import Any

from meshkit.leases import LeaseKeeper


class SyncLeaseKeeper(LeaseKeeper):
    """A :class:`~meshkit.leases.LeaseKeeper` whose rounds run one at a time."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._round_lock = asyncio.Lock()

    async def round(self) -> None:
        """Run one round, after any round under way."""
        async with self._round_lock:
            await super().round()
