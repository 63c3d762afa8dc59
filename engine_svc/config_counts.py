"""The ``copytrade_engine_configs{status}`` gauge, kept current from the store.

The counts are read from the store (every replica sees the same table), at once when this
engine changes a status and every ``interval`` seconds otherwise, so that a change another
replica made shows within one interval. Every status is present, 0 when no configuration has it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from engine_svc import metrics
from engine_svc.domain.model import CopyStatus
from engine_svc.ports import ConfigCountStore

log = logging.getLogger("engine_svc.config_counts")

DEFAULT_INTERVAL = 15.0
"""Seconds between two reads of the counts when nothing changed here (the scrape interval)."""


class ConfigCounts:
    """Keeps the per-status gauge of copy configurations current."""

    def __init__(self, store: ConfigCountStore, *, interval: float = DEFAULT_INTERVAL) -> None:
        self._store = store
        self._interval = interval
        self._changed = asyncio.Event()

    async def refresh(self) -> dict[CopyStatus, int]:
        """Read the counts from the store and set the gauge; return them."""
        counts = await self._store.count_configs_by_status()
        for status in CopyStatus:
            metrics.CONFIGS.labels(status.value).set(counts.get(status, 0))
        return counts

    def changed(self) -> None:
        """Say a status changed here: the counts are read again now, not at the next round."""
        self._changed.set()

    async def run(self) -> None:
        """Refresh until cancelled: after each change, and every ``interval`` seconds."""
        while True:
            self._changed.clear()
            try:
                await self.refresh()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("counting the copy configurations failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout=self._interval)
