"""A portfolio read that already holds a fill still on the stream never misstates the leader's
position before an earlier fill (chaos, futures kill -9 sync, seed 431390772: a buy from flat
logged as a reverse from -0.051). The streamed fill older than every read waits for a backfill
that lists every fill up to the read."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from prometheus_client import REGISTRY
from sync_helpers import FAST, as_user

from copytrade.sync.v1 import sync_service_pb2 as pb
from copytrade.sync.v1 import sync_service_pb2_grpc as pb_grpc
from meshkit.testing import eventually
from sync_svc.domain.model import LeaderFill, Portfolio
from sync_svc.exchange_sync import SyncTiming
from sync_svc.server import SyncService
from tests.fakes.broker import FakeBrokerPort

pytestmark = pytest.mark.parametrize("database", ["sqlite"], indirect=True)


@pytest.fixture
def timing() -> SyncTiming:
    # The portfolio is read once, at start: the test decides when that read sees the venue.
    return replace(FAST, equity_min_gap_seconds=3600)


def _held_back() -> float:
    labels = {"exchange": "binance", "trigger": "unplaced"}
    return REGISTRY.get_sample_value("copytrade_sync_backfills_total", labels) or 0.0


async def test_a_streamed_fill_older_than_the_first_read_is_placed_with_the_fills_after_it(
    stub: pb_grpc.SyncServiceStub,
    service: SyncService,
    broker: FakeBrokerPort,
) -> None:
    exchange_id = broker.add_account("alice", totals={"BTC": "1", "USDT": "100000"})
    read_started, read_go = asyncio.Event(), asyncio.Event()
    listing, listing_go = asyncio.Event(), asyncio.Event()
    venue_read = broker.get_portfolio

    async def slow_read(exchange_id: str, *, timeout: float) -> Portfolio:  # noqa: ASYNC109
        read_started.set()
        await read_go.wait()
        return await venue_read(exchange_id, timeout=timeout)

    async def slow_listing(fills: list[LeaderFill]) -> None:
        listing.set()
        await listing_go.wait()

    broker.get_portfolio = slow_read  # type: ignore[method-assign]
    broker.list_hook = slow_listing
    held_before = _held_back()
    await stub.WatchExchangeSource(
        pb.WatchExchangeSourceRequest(
            exchange_id=exchange_id,
            sync_settings=pb.SyncSettings(sync_interval=3600, enable_polling=False),
        ),
        metadata=as_user("alice"),
    )
    await asyncio.wait_for(read_started.wait(), 5)
    # The leader sells its 1 BTC and buys 0.4 while the first read is on its way: it holds both.
    sell = broker.trade(exchange_id, "sell", "1", trade_id="sell", at=datetime.now(UTC))
    broker.trade(exchange_id, "buy", "0.4", trade_id="buy")
    read_go.set()
    # The stream opens after the read; the backfill's listing is slow; the sell arrives alone.
    await eventually(lambda: broker.watching(exchange_id) and listing.is_set(), timeout=5)
    broker.push(exchange_id, sell)

    async def sell_taken() -> bool:
        reader = service.exchange_sync.source(exchange_id)
        held = reader is not None and reader.held_fills > 0
        return held or bool(await service.store.list_signals(exchange_id, limit=10))

    await eventually(sell_taken, timeout=5)
    listing_go.set()

    async def both_logged() -> list[pb.Signal]:
        reply = await stub.ListSignals(pb.ListSignalsRequest(source_id=exchange_id))
        return list(reply.signals) if len(reply.signals) == 2 else []

    signals = await eventually(both_logged, timeout=5)
    # Walked back over the sell alone, the read's 0.4 BTC made it 1.4 before the sell.
    positions = {s.signal_id: Decimal(s.leader_position.value) for s in signals}
    assert positions == {"sell": Decimal(1), "buy": Decimal(0)}
    assert positions == {key: broker.truth_positions[key] for key in positions}
    # The stream handed the sell to a backfill, which logged it and holds nothing more.
    await eventually(lambda: _held_back() > held_before, timeout=5)
    reader = service.exchange_sync.source(exchange_id)
    assert reader is not None
    await eventually(lambda: reader.held_fills == 0, timeout=5)
