"""``copytrade_engine_signal_stream_connected``: 1 once sync answers on the stream, 0 while the
stream is broken and sync cannot be reached, 1 again once it answers (the alert
``CopytradeSignalStreamDisconnected`` reads it)."""

from __future__ import annotations

import asyncio

from prometheus_client import REGISTRY

from engine_svc.consumer import SignalConsumer
from engine_svc.domain.model import Signal
from engine_svc.ports import Heartbeat
from meshkit import errors
from meshkit.tasks import cancel_and_wait
from meshkit.testing import eventually


def _connected() -> float | None:
    return REGISTRY.get_sample_value("copytrade_engine_signal_stream_connected")


class _Stream:
    def __init__(self, sync: _Sync) -> None:
        self._sync = sync

    async def subscribe(self, source_id: str, after_sequence: int) -> None:
        return None

    async def ack(self, source_id: str, sequence: int) -> None:
        return None

    async def receive(self) -> Signal | Heartbeat | None:
        if not self._sync.up:
            raise errors.Unavailable("sync is unreachable")
        await asyncio.sleep(0.01)
        return Heartbeat()

    async def close(self) -> None:
        return None


class _Sync:
    """A sync service that answers with heartbeats while ``up`` and fails every read otherwise."""

    def __init__(self) -> None:
        self.up = True
        self.opened = 0

    async def open_signal_stream(self) -> _Stream:
        self.opened += 1
        return _Stream(self)


class _Inbox:
    async def subscriptions(self) -> dict[str, int]:
        return {}

    async def subscription_of(self, source_id: str) -> int | None:
        return None


async def test_the_gauge_follows_the_stream_down_and_back_up() -> None:
    sync = _Sync()
    consumer = SignalConsumer(
        _Inbox(),  # type: ignore[arg-type]  # the consumer only reads subscriptions here
        sync,  # type: ignore[arg-type]  # only open_signal_stream is called
        record=lambda _signal: asyncio.sleep(0, []),
        after_ack=lambda _intents: None,
        min_backoff=0.01,
        max_backoff=0.02,
    )
    task = asyncio.create_task(consumer.run())
    try:
        await eventually(lambda: _connected() == 1.0)

        sync.up = False
        await eventually(lambda: _connected() == 0.0)
        broken_at = sync.opened
        await eventually(lambda: sync.opened >= broken_at + 3)  # reopened, still unreachable
        assert _connected() == 0.0

        sync.up = True
        await eventually(lambda: _connected() == 1.0)
    finally:
        await cancel_and_wait([task])  # re-cancels: asyncio.wait_for may swallow a cancel
    assert _connected() == 0.0
