"""Helpers shared by the sync service tests (the fake broker port is ``tests.fakes.broker``)."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import grpc

from copytrade.sync.v1 import sync_service_pb2 as pb
from meshkit.testing import as_user as signed_user
from sync_svc.exchange_sync import SyncTiming

FAST = SyncTiming(
    retry_base_seconds=0.01,
    retry_max_seconds=0.05,
    equity_refresh_seconds=3600,
    equity_min_gap_seconds=0.05,
    error_pause_seconds=0.05,
    stream_silence_seconds=3600,
    stream_cooldown_seconds=0.2,
    balance_grace_seconds=0.1,
)


def as_user(user_id: str) -> tuple[tuple[str, str], ...]:
    """Return call metadata naming the authenticated user, as the gateway sets it."""
    return signed_user(user_id)


def published(
    signal_id: str,
    side: str = "buy",
    quantity: str = "0.5",
    symbol: str = "BTC/USDT",
    order_type: str = "market",
    **extra: str,
) -> pb.PublishedSignal:
    """Build a published strategy trade."""
    message = pb.PublishedSignal(
        signal_id=signal_id, symbol=symbol, side=side, order_type=order_type
    )
    message.quantity.value = quantity
    for name in ("price", "portfolio_fraction"):
        if name in extra:
            getattr(message, name).value = extra[name]
    if "time_in_force" in extra:
        message.time_in_force = extra["time_in_force"]
    return message


async def read_signals(
    call: grpc.aio.StreamStreamCall,
    count: int,
    timeout: float = 5.0,  # noqa: ASYNC109 - a test deadline in seconds
) -> list[pb.Signal]:
    """Read ``count`` signals from a stream, skipping heartbeats."""
    signals: list[pb.Signal] = []

    async def _read() -> None:
        while len(signals) < count:
            response = await call.read()
            assert response is not grpc.aio.EOF, "stream ended early"
            if response.WhichOneof("message") == "signal":
                signals.append(response.signal)

    await asyncio.wait_for(_read(), timeout)
    return signals


def ago(seconds: float) -> datetime:
    return datetime.now(UTC) - timedelta(seconds=seconds)


class SignalConsumer:
    """An engine-like consumer of ``StreamSignals`` subscribed to one source from the start."""

    def __init__(self, call: grpc.aio.StreamStreamCall, source_id: str) -> None:
        self.call = call
        self.source_id = source_id
        self.signals: list[pb.Signal] = []
        self.heartbeats = 0
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> SignalConsumer:
        await self.call.write(
            pb.StreamSignalsRequest(
                subscribe=pb.SubscribeSignals(source_id=self.source_id, after_sequence=0)
            )
        )
        self._task = asyncio.create_task(self._read())
        return self

    async def _read(self) -> None:
        while True:
            response = await self.call.read()
            if response is grpc.aio.EOF:
                return
            if response.WhichOneof("message") == "signal":
                self.signals.append(response.signal)
            else:
                self.heartbeats += 1

    async def wait_heartbeat(
        self,
        timeout: float = 5.0,  # noqa: ASYNC109 - a test deadline in seconds
    ) -> None:
        """Wait for a heartbeat: the stream has been idle, its replay is over."""
        seen = self.heartbeats
        deadline = time.monotonic() + timeout
        while self.heartbeats == seen:
            assert time.monotonic() < deadline, "no heartbeat"
            await asyncio.sleep(0.01)

    async def wait_for(
        self,
        count: int,
        timeout: float = 10.0,  # noqa: ASYNC109 - a test deadline in seconds
    ) -> list[pb.Signal]:
        """Wait until ``count`` signals arrived; return them."""
        deadline = time.monotonic() + timeout
        while len(self.signals) < count:
            assert self._task is not None and not self._task.done(), "the stream ended"
            assert time.monotonic() < deadline, (
                f"{len(self.signals)} of {count} signals within {timeout}s"
            )
            await asyncio.sleep(0.01)
        return list(self.signals)

    async def close(self) -> None:
        self.call.cancel()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
