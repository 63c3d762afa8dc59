"""The gRPC broker adapter against an in-process fake BrokerService."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from copytrade.broker.v1 import broker_service_pb2_grpc as broker_grpc
from meshkit import errors
from meshkit.server import Registration
from meshkit.testing import handling_request_of, inprocess_server, tls_for
from sync_svc.adapters.broker_client import GrpcBroker
from sync_svc.domain.model import LeaderFill, OrderType, Side, WatchEvent, WatchItem, WatchState
from tests.fakes.broker import CANNED_TRADE_TIME, CannedBrokerService

T0 = CANNED_TRADE_TIME


@pytest.fixture
async def fake() -> AsyncIterator[tuple[CannedBrokerService, GrpcBroker]]:
    servicer = CannedBrokerService()
    registration = Registration(
        broker_grpc.add_BrokerServiceServicer_to_server,
        servicer,
        "copytrade.broker.v1.BrokerService",
    )
    async with inprocess_server([registration], domain="broker.copytrade") as (running, _channel):
        client = GrpcBroker.connect(f"127.0.0.1:{running.port}", tls_for("sync"))
        try:
            yield servicer, client
        finally:
            await client.close()


async def test_list_fills_sends_since_and_parses_fills(
    fake: tuple[CannedBrokerService, GrpcBroker],
) -> None:
    servicer, client = fake
    (fill,) = await client.list_fills("acc-1", T0, timeout=5)
    assert servicer.since == T0
    assert (fill.trade_id, fill.symbol, fill.side) == ("t9", "BTC/USD", Side.SELL)
    assert fill.order_type is OrderType.LIMIT and fill.quantity == Decimal("0.01")
    assert fill.price == Decimal("61000.5") and fill.fee == Decimal("0.3")
    assert fill.trade_time == T0


async def test_get_exchange_forwards_the_user_and_keeps_the_reason(
    fake: tuple[CannedBrokerService, GrpcBroker],
) -> None:
    servicer, client = fake
    with handling_request_of("alice"):
        account = await client.get_exchange("acc-1", user_id="alice", timeout=5)
    assert account.exchange_name == "coinbase"
    assert servicer.users == ["alice"]
    # Outside alice's request nothing of hers is forwarded: the call goes as the service itself.
    await client.get_exchange("acc-1", user_id="alice", timeout=5)
    assert servicer.users == ["alice"]
    with pytest.raises(errors.NotFound) as caught:
        await client.get_exchange("other", timeout=5)
    assert caught.value.reason == "EXCHANGE_NOT_FOUND"


async def test_broker_unavailable_keeps_its_retry_delay(
    fake: tuple[CannedBrokerService, GrpcBroker],
) -> None:
    _servicer, client = fake
    with pytest.raises(errors.Unavailable) as caught:
        await client.get_portfolio("acc-1", timeout=5)
    assert caught.value.reason == "EXCHANGE_UNAVAILABLE" and caught.value.retry_after == 1.5


async def test_a_read_that_times_out_is_unavailable_not_an_unknown_outcome(
    fake: tuple[CannedBrokerService, GrpcBroker],
) -> None:
    servicer, client = fake
    servicer.delay = 1.0
    with pytest.raises(errors.Unavailable) as caught:
        await client.list_fills("acc-1", T0, timeout=0.1)
    assert caught.value.reason == "BROKER_TIMEOUT"
    assert not isinstance(caught.value, errors.OutcomeUnknown)


async def test_watch_fills_yields_events_and_fills_and_ends_with_the_stream(
    fake: tuple[CannedBrokerService, GrpcBroker],
) -> None:
    _servicer, client = fake
    items: list[WatchItem] = [item async for item in client.watch_fills("acc-1")]
    assert items[0] == WatchEvent(WatchState.CONNECTED, "subscribed")
    assert isinstance(items[1], LeaderFill) and items[1].trade_id == "w1"
    assert items[1].quantity == Decimal("1.5") and items[1].trade_time == T0
    assert items[2:] == [WatchEvent(WatchState.GAP_SUSPECTED, "sequence jumped")]


async def test_a_failed_watch_raises_the_brokers_error(
    fake: tuple[CannedBrokerService, GrpcBroker],
) -> None:
    servicer, client = fake
    servicer.watch_error = errors.Unavailable("venue stream closed", reason="VENUE_STREAM_CLOSED")
    seen: list[WatchItem] = []
    with pytest.raises(errors.Unavailable) as caught:
        async for item in client.watch_fills("acc-1"):
            seen.append(item)
    assert caught.value.reason == "VENUE_STREAM_CLOSED" and len(seen) == 3


async def test_closing_a_watch_cancels_it_at_the_broker(
    fake: tuple[CannedBrokerService, GrpcBroker],
) -> None:
    servicer, client = fake
    servicer.watch_forever = True
    stream = client.watch_fills("acc-1")
    for _ in range(3):
        await anext(stream)
    await stream.aclose()
    await asyncio.wait_for(servicer.watch_cancelled.wait(), 5)
