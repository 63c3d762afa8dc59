"""WatchFills, WatchOrders and ListCandles through the real servicer over a paper venue."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import grpc
import pytest
from google.protobuf import timestamp_pb2
from google.type import decimal_pb2

from copytrade.broker.v1 import broker_service_pb2 as pb
from copytrade.common.v1 import types_pb2
from meshkit.testing import eventually
from tests.service.broker_svc.broker_rpc import failure
from tests.service.broker_svc.conftest import ALICE, BOB, BrokerHarness, as_user

CID = "5f0c2b1a-9d8e-5c7b-a6f5-e4d3c2b1a090"


def _buy(exchange_id: str, cid: str = CID, symbol: str = "BTC/USDT") -> pb.PlaceOrderRequest:
    return pb.PlaceOrderRequest(
        exchange_id=exchange_id,
        client_order_id=cid,
        symbol=symbol,
        side=types_pb2.ORDER_SIDE_BUY,
        type=types_pb2.ORDER_TYPE_MARKET,
        quantity=decimal_pb2.Decimal(value="0.01"),
    )


async def _next(call: Any, field: str | None = None) -> Any:
    """Return the next message of a watch (with ``field`` set, when given)."""
    while True:
        message = await asyncio.wait_for(call.read(), timeout=5)
        assert message is not grpc.aio.EOF
        if field is None or message.WhichOneof("message") == field:
            return message


@pytest.fixture
async def account(harness: BrokerHarness) -> AsyncIterator[str]:
    exchange, _ = await harness.register()
    yield exchange.exchange_id


async def test_a_fill_after_subscribing_arrives_after_a_connected_event(
    harness: BrokerHarness, account: str
) -> None:
    call = harness.stub.WatchFills(pb.WatchFillsRequest(exchange_id=account))
    first = await _next(call)
    assert first.WhichOneof("message") == "event"
    assert first.event.state == pb.WATCH_STATE_CONNECTED
    placed = await harness.stub.PlaceOrder(_buy(account))
    got = await _next(call, "fill")
    assert got.fill.venue_order_id == placed.order.venue_order_id
    assert got.fill.client_order_id == CID
    assert got.fill.exchange_id == account
    assert got.fill.quantity.value == "0.01"
    call.cancel()


async def test_order_updates_stream_with_their_client_order_id(
    harness: BrokerHarness, account: str
) -> None:
    call = harness.stub.WatchOrders(pb.WatchOrdersRequest(exchange_id=account))
    assert (await _next(call)).event.state == pb.WATCH_STATE_CONNECTED
    await harness.stub.PlaceOrder(_buy(account))
    got = await _next(call, "order")
    assert (got.order.client_order_id, got.order.status) == (CID, types_pb2.ORDER_STATUS_FILLED)
    call.cancel()


async def test_every_watcher_shares_one_venue_stream_which_closes_when_the_last_leaves(
    harness: BrokerHarness, account: str
) -> None:
    first = harness.stub.WatchFills(pb.WatchFillsRequest(exchange_id=account))
    assert (await _next(first)).event.state == pb.WATCH_STATE_CONNECTED
    second = harness.stub.WatchFills(pb.WatchFillsRequest(exchange_id=account))
    joined = await _next(second)
    assert joined.event.state == pb.WATCH_STATE_CONNECTED  # the late watcher backfills too
    assert harness.venue.watchers == 1
    await harness.stub.PlaceOrder(_buy(account))
    assert (await _next(first, "fill")).fill.client_order_id == CID
    assert (await _next(second, "fill")).fill.client_order_id == CID
    first.cancel()
    await asyncio.sleep(0.05)
    assert harness.venue.watchers == 1
    second.cancel()
    await eventually(lambda: harness.venue.watchers == 0)
    await eventually(lambda: harness.broker.streams.open_streams == 0)


async def test_a_dropped_venue_stream_says_disconnected_then_connected(
    harness: BrokerHarness, account: str
) -> None:
    call = harness.stub.WatchFills(pb.WatchFillsRequest(exchange_id=account))
    assert (await _next(call)).event.state == pb.WATCH_STATE_CONNECTED
    harness.venue.drop_streams()
    states = [(await _next(call, "event")).event.state for _ in range(2)]
    assert states == [pb.WATCH_STATE_DISCONNECTED, pb.WATCH_STATE_CONNECTED]
    call.cancel()


async def test_a_watch_of_some_symbols_gets_only_theirs(
    harness: BrokerHarness, account: str
) -> None:
    call = harness.stub.WatchFills(pb.WatchFillsRequest(exchange_id=account, symbols=["ETH/USDT"]))
    assert (await _next(call)).event.state == pb.WATCH_STATE_CONNECTED
    await harness.stub.PlaceOrder(_buy(account))
    eth = "6a1d3c2b-0e9f-5d8c-b7a6-f5e4d3c2b1a0"
    await harness.stub.PlaceOrder(_buy(account, eth, "ETH/USDT"))
    got = await _next(call, "fill")
    assert (got.fill.symbol, got.fill.client_order_id) == ("ETH/USDT", eth)
    call.cancel()


async def test_a_watch_of_an_unknown_symbol_is_invalid_argument_naming_it(
    harness: BrokerHarness, account: str
) -> None:
    call = harness.stub.WatchFills(
        pb.WatchFillsRequest(exchange_id=account, symbols=["BTC/USDT", "NOPE/USDT"])
    )
    failed = await failure(call.read())
    assert (failed.code, failed.reason, failed.fields) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_SYMBOL",
        ["symbols[1]"],
    )


async def test_a_watch_with_a_malformed_account_id_is_invalid_argument(
    harness: BrokerHarness,
) -> None:
    failed = await failure(
        harness.stub.WatchOrders(pb.WatchOrdersRequest(exchange_id="nope")).read()
    )
    assert (failed.code, failed.fields) == (grpc.StatusCode.INVALID_ARGUMENT, ["exchange_id"])


async def test_another_users_account_cannot_be_watched(
    harness: BrokerHarness, account: str
) -> None:
    call = harness.stub.WatchFills(pb.WatchFillsRequest(exchange_id=account), metadata=as_user(BOB))
    failed = await failure(call.read())
    assert (failed.code, failed.reason) == (grpc.StatusCode.NOT_FOUND, "EXCHANGE_NOT_FOUND")
    assert harness.venue.watchers == 0


async def test_deleting_the_account_ends_its_watches(harness: BrokerHarness, account: str) -> None:
    call = harness.stub.WatchFills(pb.WatchFillsRequest(exchange_id=account))
    assert (await _next(call)).event.state == pb.WATCH_STATE_CONNECTED
    await harness.stub.DeleteExchange(
        pb.DeleteExchangeRequest(exchange_id=account), metadata=as_user(ALICE)
    )
    assert await asyncio.wait_for(call.read(), timeout=5) is grpc.aio.EOF
    assert harness.venue.watchers == 0


async def test_candles_come_from_the_venue_oldest_first(
    harness: BrokerHarness, account: str
) -> None:
    for price in ("50000", "51000", "49500"):
        harness.venue.set_price("BTC/USDT", Decimal(price))
    harness.clock.advance(60)
    harness.venue.set_price("BTC/USDT", Decimal("50500"))
    answer = await harness.stub.ListCandles(
        pb.ListCandlesRequest(exchange_id=account, symbol="BTC/USDT", timeframe="1m")
    )
    assert [c.close.value for c in answer.candles][-1] == "50500"
    first = answer.candles[0]
    assert (first.high.value, first.low.value) == ("51000", "49500")
    times = [c.open_time.ToDatetime() for c in answer.candles]
    assert times == sorted(times)
    since = timestamp_pb2.Timestamp()
    since.FromDatetime(times[-1])
    later = await harness.stub.ListCandles(
        pb.ListCandlesRequest(
            exchange_id=account, symbol="BTC/USDT", timeframe="1m", since=since, limit=1
        )
    )
    assert [c.close.value for c in later.candles] == ["50500"]


async def test_candles_with_a_bad_timeframe_or_limit_name_the_fields(
    harness: BrokerHarness, account: str
) -> None:
    failed = await failure(
        harness.stub.ListCandles(
            pb.ListCandlesRequest(
                exchange_id=account, symbol="BTC/USDT", timeframe="soon", limit=5000
            )
        )
    )
    assert (failed.code, sorted(failed.fields)) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        ["limit", "timeframe"],
    )
    offered = await failure(
        harness.stub.ListCandles(
            pb.ListCandlesRequest(exchange_id=account, symbol="BTC/USDT", timeframe="7m")
        )
    )
    assert (offered.code, offered.fields) == (grpc.StatusCode.INVALID_ARGUMENT, ["timeframe"])
