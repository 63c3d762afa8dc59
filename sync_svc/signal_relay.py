"""Live delivery of signals other replicas appended, to the streams this replica serves.

Any replica may append to a source's log (the one holding a leader's lease, any one a strategy
publishes through) and any replica may serve an engine's stream of it. The relay hands this
replica's listeners what others logged: on a notice that a source's log grew (the
:class:`~sync_svc.ports.SignalNoticesPort`), and on a timer for every source with listeners, it
asks the signal log to catch up (:meth:`~sync_svc.signal_log.SignalLog.catch_up`). A lost
notice or a dropped notice connection therefore delays a live signal by at most the poll
period; it never loses it. With one replica (SQLite) no relay runs: every append is local.
"""

from __future__ import annotations

import asyncio
import logging

from meshkit.tasks import cancel_and_wait
from sync_svc.ports import SignalNoticesPort
from sync_svc.signal_log import SignalLog

log = logging.getLogger("sync_svc.signal_relay")


class SignalRelay:
    """Catches this replica's listeners up on notices and every ``poll_seconds``."""

    def __init__(self, signal_log: SignalLog, notices: SignalNoticesPort, poll_seconds: float):
        self._log = signal_log
        self._notices = notices
        self._poll_seconds = poll_seconds
        self._pending: set[str] = set()
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.relayed = 0

    @property
    def notices(self) -> SignalNoticesPort:
        """Return where the notices come from."""
        return self._notices

    async def start(self) -> None:
        """Start listening for notices, delivering and polling."""
        self._tasks = [
            asyncio.create_task(
                self._notices.run(self._on_notice, self._everything), name="notices"
            ),
            asyncio.create_task(self._deliver_forever(), name="relay"),
            asyncio.create_task(self._poll_forever(), name="relay-poll"),
        ]

    async def stop(self) -> None:
        """Stop every task."""
        await cancel_and_wait(self._tasks)
        self._tasks = []

    def _on_notice(self, source_id: str) -> None:
        if self._log.hub.listener_count(source_id) > 0:
            self._pending.add(source_id)
            self._wake.set()

    def _everything(self) -> None:
        self._pending.update(self._log.hub.sources())
        self._wake.set()

    async def _poll_forever(self) -> None:
        while True:
            await asyncio.sleep(self._poll_seconds)
            self._everything()

    async def _deliver_forever(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            pending, self._pending = self._pending, set()
            for source_id in sorted(pending):
                try:
                    self.relayed += await self._log.catch_up(source_id)
                except asyncio.CancelledError:
                    raise
                except Exception as e:
                    # The next notice or poll tries again.
                    log.warning("signals of %s not relayed yet: %s", source_id, e)
