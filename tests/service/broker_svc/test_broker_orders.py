"""Orders through the real servicer over a paper venue: placement keyed by client order id,
validation, unknown outcomes and their resolution, lookups, fills, portfolio and markets."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import grpc
import pytest
from google.protobuf import timestamp_pb2
from google.type import decimal_pb2

from broker_svc.domain.model import OrderRequest, OrderType, Side, TimeInForce
from copytrade.broker.v1 import broker_service_pb2 as pb
from copytrade.common.v1 import types_pb2
from meshkit import errors
from tests.service.broker_svc.broker_rpc import failure
from tests.service.broker_svc.conftest import ALICE, BOB, BrokerHarness, as_user

CID = "5f0c2a52-8f6b-5d7e-9a55-3c9f1d2b7e01"


def _d(text: str) -> decimal_pb2.Decimal:
    return decimal_pb2.Decimal(value=text)


def _market_buy(
    exchange_id: str, quantity: str = "0.01", cid: str = CID, **extra: Any
) -> pb.PlaceOrderRequest:
    return pb.PlaceOrderRequest(
        exchange_id=exchange_id,
        client_order_id=cid,
        symbol="BTC/USDT",
        side=types_pb2.ORDER_SIDE_BUY,
        type=types_pb2.ORDER_TYPE_MARKET,
        quantity=_d(quantity),
        **extra,
    )


def _limit(
    exchange_id: str, side: int, price: str, quantity: str = "0.01", cid: str = CID, **extra: Any
) -> pb.PlaceOrderRequest:
    return pb.PlaceOrderRequest(
        exchange_id=exchange_id,
        client_order_id=cid,
        symbol="BTC/USDT",
        side=side,
        type=types_pb2.ORDER_TYPE_LIMIT,
        quantity=_d(quantity),
        price=_d(price),
        **extra,
    )


@pytest.fixture
async def account(harness: BrokerHarness) -> pb.ExchangeAccount:
    registered, _ = await harness.register(ALICE, {"USDT": "10000", "BTC": "1"})
    return registered


async def test_place_market_order_fills_and_records_what_the_venue_said(
    harness: BrokerHarness,
    account: pb.ExchangeAccount,
) -> None:
    response = await harness.stub.PlaceOrder(_market_buy(account.exchange_id))
    order = response.order
    assert (order.exchange_id, order.client_order_id, order.symbol) == (
        account.exchange_id,
        CID,
        "BTC/USDT",
    )
    assert order.status == types_pb2.ORDER_STATUS_FILLED
    assert (order.filled_quantity.value, order.average_price.value) == ("0.01", "50000")
    assert order.venue_order_id
    record = await harness.store.get_order(account.exchange_id, CID)
    assert record is not None and record.venue_order_id == order.venue_order_id
    assert record.status.value == "filled"


async def test_placing_the_same_client_order_id_again_places_nothing_new(
    harness: BrokerHarness,
    account: pb.ExchangeAccount,
) -> None:
    first = await harness.stub.PlaceOrder(_market_buy(account.exchange_id))
    again = await harness.stub.PlaceOrder(_market_buy(account.exchange_id))
    assert again.order.venue_order_id == first.order.venue_order_id
    assert again.order.status == types_pb2.ORDER_STATUS_FILLED
    assert harness.venue.calls.get("place_order") == 1


async def test_reusing_a_client_order_id_for_another_order_is_refused(
    harness: BrokerHarness,
    account: pb.ExchangeAccount,
) -> None:
    await harness.stub.PlaceOrder(_market_buy(account.exchange_id))
    failed = await failure(harness.stub.PlaceOrder(_market_buy(account.exchange_id, "0.02")))
    assert (failed.code, failed.reason) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "DUPLICATE_CLIENT_ORDER_ID",
    )
    assert "quantity" in failed.message
    assert harness.venue.calls.get("place_order") == 1


@pytest.mark.parametrize(
    ("changes", "fields"),
    [
        ({"exchange_id": "nope"}, ["exchange_id"]),
        ({"client_order_id": ""}, ["client_order_id"]),
        ({"client_order_id": "x" * 37}, ["client_order_id"]),
        ({"client_order_id": "has space"}, ["client_order_id"]),
        ({"symbol": ""}, ["symbol"]),
        ({"symbol": "BTCUSDT"}, ["symbol"]),
        ({"side": types_pb2.ORDER_SIDE_UNSPECIFIED}, ["side"]),
        ({"type": types_pb2.ORDER_TYPE_UNSPECIFIED}, ["type"]),
        ({"quantity": _d("")}, ["quantity"]),
        ({"quantity": _d("0")}, ["quantity"]),
        ({"quantity": _d("-1")}, ["quantity"]),
        ({"quantity": _d("abc")}, ["quantity"]),
        ({"quantity": _d("NaN")}, ["quantity"]),
        ({"price": _d("50000")}, ["price"]),
        ({"stop_price": _d("50000")}, ["stop_price"]),
        ({"time_in_force": types_pb2.TIME_IN_FORCE_IOC}, ["time_in_force"]),
        ({"type": types_pb2.ORDER_TYPE_LIMIT}, ["price"]),
        ({"type": types_pb2.ORDER_TYPE_LIMIT, "price": _d("-5")}, ["price"]),
        ({"type": types_pb2.ORDER_TYPE_STOP_LIMIT, "price": _d("1")}, ["stop_price"]),
        (
            {"side": 0, "type": 0, "quantity": _d(""), "client_order_id": ""},
            ["client_order_id", "side", "type", "quantity"],
        ),
    ],
)
async def test_place_order_with_a_bad_field_is_invalid_argument_naming_it(
    harness: BrokerHarness,
    account: pb.ExchangeAccount,
    changes: dict[str, Any],
    fields: list[str],
) -> None:
    request = _market_buy(account.exchange_id)
    for name, value in changes.items():
        if isinstance(value, decimal_pb2.Decimal):
            getattr(request, name).CopyFrom(value)
        else:
            setattr(request, name, value)
    failed = await failure(harness.stub.PlaceOrder(request))
    assert (failed.code, failed.fields) == (grpc.StatusCode.INVALID_ARGUMENT, fields)
    assert harness.venue.calls.get("place_order") is None
    assert await harness.store.get_order(account.exchange_id, CID) is None


@pytest.mark.parametrize(
    ("quantity", "field"),
    [("0.000015", "quantity"), ("0.000001", "quantity")],
)
async def test_place_order_off_the_market_step_is_refused_before_the_venue(
    harness: BrokerHarness,
    account: pb.ExchangeAccount,
    quantity: str,
    field: str,
) -> None:
    failed = await failure(harness.stub.PlaceOrder(_market_buy(account.exchange_id, quantity)))
    assert (failed.code, failed.fields[0]) == (grpc.StatusCode.INVALID_ARGUMENT, field)
    assert harness.venue.calls.get("place_order") is None


async def test_an_order_refused_by_the_market_check_frees_its_id_but_stays_attempted(
    harness: BrokerHarness,
    account: pb.ExchangeAccount,
) -> None:
    # The id is reserved with the attempt before the market check; a refusal there (or markets
    # that cannot be read) sent nothing, so the id is free again for a corrected order.
    failed = await failure(harness.stub.PlaceOrder(_market_buy(account.exchange_id, "0.000015")))
    assert failed.code == grpc.StatusCode.INVALID_ARGUMENT
    assert await harness.store.get_order(account.exchange_id, CID) is None
    assert await harness.store.attempted(CID)
    harness.venue.fail("load_markets", errors.Unavailable("down", reason="VENUE_UNAVAILABLE"))
    failed = await failure(harness.stub.PlaceOrder(_market_buy(account.exchange_id)))
    assert failed.code == grpc.StatusCode.UNAVAILABLE
    assert await harness.store.get_order(account.exchange_id, CID) is None
    placed = await harness.stub.PlaceOrder(_market_buy(account.exchange_id))
    assert placed.order.status == types_pb2.ORDER_STATUS_FILLED
    assert harness.venue.calls["place_order"] == 1


async def test_place_order_on_an_unknown_market_is_invalid_symbol(
    harness: BrokerHarness,
    account: pb.ExchangeAccount,
) -> None:
    request = _market_buy(account.exchange_id)
    request.symbol = "DOGE/USDT"
    failed = await failure(harness.stub.PlaceOrder(request))
    assert (failed.code, failed.reason, failed.fields) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_SYMBOL",
        ["symbol"],
    )


async def test_place_order_with_insufficient_funds_returns_failed_precondition(
    harness: BrokerHarness,
    account: pb.ExchangeAccount,
) -> None:
    failed = await failure(harness.stub.PlaceOrder(_market_buy(account.exchange_id, "1")))
    assert (failed.code, failed.reason) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "INSUFFICIENT_FUNDS",
    )
    assert failed.message == "Account has insufficient balance for requested action."
    assert await harness.store.get_order(account.exchange_id, CID) is None
    placed = await harness.stub.PlaceOrder(_market_buy(account.exchange_id, "0.1"))
    assert placed.order.status == types_pb2.ORDER_STATUS_FILLED


async def test_place_order_below_the_minimum_notional_is_invalid_argument(
    harness: BrokerHarness,
    account: pb.ExchangeAccount,
) -> None:
    failed = await failure(harness.stub.PlaceOrder(_market_buy(account.exchange_id, "0.00001")))
    assert (failed.code, failed.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "BELOW_MIN_NOTIONAL")


async def test_place_order_on_another_users_account_is_not_found(
    harness: BrokerHarness,
    account: pb.ExchangeAccount,
) -> None:
    failed = await failure(
        harness.stub.PlaceOrder(
            _market_buy(account.exchange_id),
            metadata=as_user(BOB),
        )
    )
    assert failed.code == grpc.StatusCode.NOT_FOUND
    assert harness.venue.calls.get("place_order") is None


async def test_place_order_on_an_unknown_account_is_not_found(harness: BrokerHarness) -> None:
    failed = await failure(
        harness.stub.PlaceOrder(
            _market_buy("0b9f3f6e-9999-4c1e-9b0a-000000000009"),
        )
    )
    assert failed.code == grpc.StatusCode.NOT_FOUND


async def test_rate_limited_placement_is_resource_exhausted_with_retry_info(
    harness: BrokerHarness,
    account: pb.ExchangeAccount,
) -> None:
    harness.venue.fail("place_order", errors.ResourceExhausted("Too many.", retry_after=3.0))
    failed = await failure(harness.stub.PlaceOrder(_market_buy(account.exchange_id)))
    assert (failed.code, failed.retry_after) == (grpc.StatusCode.RESOURCE_EXHAUSTED, 3.0)
    assert await harness.store.get_order(account.exchange_id, CID) is None


async def test_executed_then_timed_out_placement_is_unknown_and_get_order_resolves_it(
    harness: BrokerHarness,
    account: pb.ExchangeAccount,
) -> None:
    harness.venue.fail("place_order", errors.OutcomeUnknown("timed out"), execute=True)
    failed = await failure(harness.stub.PlaceOrder(_market_buy(account.exchange_id)))
    assert (failed.code, failed.reason) == (
        grpc.StatusCode.DEADLINE_EXCEEDED,
        "ORDER_OUTCOME_UNKNOWN",
    )
    record = await harness.store.get_order(account.exchange_id, CID)
    assert record is not None and record.unresolved
    found = await harness.stub.GetOrder(
        pb.GetOrderRequest(
            exchange_id=account.exchange_id,
            client_order_id=CID,
        )
    )
    assert found.order.status == types_pb2.ORDER_STATUS_FILLED
    record = await harness.store.get_order(account.exchange_id, CID)
    assert record is not None and record.venue_order_id == found.order.venue_order_id


async def test_repeating_an_unknown_placement_that_executed_returns_it_without_resending(
    harness: BrokerHarness,
    account: pb.ExchangeAccount,
) -> None:
    harness.venue.fail("place_order", errors.OutcomeUnknown("timed out"), execute=True)
    await failure(harness.stub.PlaceOrder(_market_buy(account.exchange_id)))
    again = await harness.stub.PlaceOrder(_market_buy(account.exchange_id))
    assert again.order.status == types_pb2.ORDER_STATUS_FILLED
    assert harness.venue.calls["place_order"] == 1
    assert len(harness.venue._orders) == 1


async def test_repeating_an_unknown_placement_the_venue_lacks_waits_until_it_is_safe(
    harness: BrokerHarness,
    account: pb.ExchangeAccount,
) -> None:
    harness.venue.fail("place_order", errors.OutcomeUnknown("dropped"), execute=False)
    await failure(harness.stub.PlaceOrder(_market_buy(account.exchange_id)))
    too_soon = await failure(harness.stub.PlaceOrder(_market_buy(account.exchange_id)))
    assert (too_soon.code, too_soon.reason) == (
        grpc.StatusCode.DEADLINE_EXCEEDED,
        "ORDER_OUTCOME_UNKNOWN",
    )
    assert harness.venue.calls["place_order"] == 1
    harness.clock.advance(31)
    placed = await harness.stub.PlaceOrder(_market_buy(account.exchange_id))
    assert placed.order.status == types_pb2.ORDER_STATUS_FILLED
    assert harness.venue.calls["place_order"] == 2
    assert len(harness.venue._orders) == 1


async def test_the_third_placement_failing_after_executing_leaves_exactly_three_orders(
    harness: BrokerHarness,
    account: pb.ExchangeAccount,
) -> None:
    harness.venue.fail("place_order", errors.OutcomeUnknown("timed out"), call=3, execute=True)
    outcomes = []
    for index in range(4):
        cid = f"{CID[:-2]}{index:02d}"
        try:
            await harness.stub.PlaceOrder(_market_buy(account.exchange_id, cid=cid))
            outcomes.append("ok")
        except grpc.aio.AioRpcError as e:
            outcomes.append(e.code().name)
            resolved = await harness.stub.GetOrder(
                pb.GetOrderRequest(
                    exchange_id=account.exchange_id,
                    client_order_id=cid,
                    symbol="BTC/USDT",
                )
            )
            assert resolved.order.status == types_pb2.ORDER_STATUS_FILLED
    assert outcomes == ["ok", "ok", "DEADLINE_EXCEEDED", "ok"]
    assert len(harness.venue._orders) == 4


async def test_get_order_of_an_unknown_client_order_id_is_order_not_found(
    harness: BrokerHarness,
    account: pb.ExchangeAccount,
) -> None:
    failed = await failure(
        harness.stub.GetOrder(
            pb.GetOrderRequest(
                exchange_id=account.exchange_id,
                client_order_id="never-placed",
                symbol="BTC/USDT",
            )
        )
    )
    assert (failed.code, failed.reason) == (grpc.StatusCode.NOT_FOUND, "ORDER_NOT_FOUND")


async def test_get_order_without_symbol_or_record_asks_for_the_symbol(
    harness: BrokerHarness,
    account: pb.ExchangeAccount,
) -> None:
    failed = await failure(
        harness.stub.GetOrder(
            pb.GetOrderRequest(
                exchange_id=account.exchange_id,
                client_order_id="never-placed",
            )
        )
    )
    assert (failed.code, failed.fields) == (grpc.StatusCode.INVALID_ARGUMENT, ["symbol"])


@pytest.mark.parametrize(
    ("changes", "fields"),
    [
        ({"exchange_id": ""}, ["exchange_id"]),
        ({"client_order_id": ""}, ["client_order_id"]),
        ({"symbol": "BTC-USDT"}, ["symbol"]),
    ],
)
@pytest.mark.parametrize("call", ["GetOrder", "CancelOrder"])
async def test_order_lookups_with_bad_fields_name_them(
    harness: BrokerHarness,
    account: pb.ExchangeAccount,
    call: str,
    changes: dict[str, str],
    fields: list[str],
) -> None:
    request = getattr(pb, f"{call}Request")(
        exchange_id=account.exchange_id,
        client_order_id=CID,
        symbol="BTC/USDT",
    )
    for name, value in changes.items():
        setattr(request, name, value)
    failed = await failure(getattr(harness.stub, call)(request))
    assert (failed.code, failed.fields) == (grpc.StatusCode.INVALID_ARGUMENT, fields)


async def test_a_resting_limit_order_is_cancelled_by_client_order_id(
    harness: BrokerHarness,
    account: pb.ExchangeAccount,
) -> None:
    placed = await harness.stub.PlaceOrder(
        _limit(
            account.exchange_id,
            types_pb2.ORDER_SIDE_BUY,
            "40000",
            time_in_force=types_pb2.TIME_IN_FORCE_GTC,
        ),
    )
    assert placed.order.status == types_pb2.ORDER_STATUS_OPEN
    assert placed.order.time_in_force == types_pb2.TIME_IN_FORCE_GTC
    cancelled = await harness.stub.CancelOrder(
        pb.CancelOrderRequest(
            exchange_id=account.exchange_id,
            client_order_id=CID,
        )
    )
    assert cancelled.order.status == types_pb2.ORDER_STATUS_CANCELED
    record = await harness.store.get_order(account.exchange_id, CID)
    assert record is not None and record.status.value == "canceled"
    again = await failure(
        harness.stub.CancelOrder(
            pb.CancelOrderRequest(
                exchange_id=account.exchange_id,
                client_order_id=CID,
            )
        )
    )
    assert (again.code, again.reason) == (grpc.StatusCode.NOT_FOUND, "ORDER_NOT_FOUND")


async def test_list_orders_returns_the_window_oldest_first(
    harness: BrokerHarness,
    account: pb.ExchangeAccount,
) -> None:
    start = harness.clock.now()
    await harness.stub.PlaceOrder(_market_buy(account.exchange_id, cid="order-a"))
    harness.clock.advance(10)
    middle = harness.clock.now()
    await harness.stub.PlaceOrder(
        _limit(account.exchange_id, types_pb2.ORDER_SIDE_BUY, "40000", cid="order-b")
    )
    harness.clock.advance(10)
    every = await harness.stub.ListOrders(
        pb.ListOrdersRequest(
            exchange_id=account.exchange_id,
            start_time=_ts(start),
        )
    )
    assert [o.client_order_id for o in every.orders] == ["order-a", "order-b"]
    early = await harness.stub.ListOrders(
        pb.ListOrdersRequest(
            exchange_id=account.exchange_id,
            start_time=_ts(start),
            end_time=_ts(middle),
        )
    )
    assert [o.client_order_id for o in early.orders] == ["order-a"]


def _ts(value: Any) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(value)
    return stamp


async def test_list_orders_needs_a_start_before_the_end(
    harness: BrokerHarness,
    account: pb.ExchangeAccount,
) -> None:
    missing = await failure(
        harness.stub.ListOrders(
            pb.ListOrdersRequest(
                exchange_id=account.exchange_id,
                symbols=["BTC/USDT", "bad"],
            )
        )
    )
    assert missing.fields == ["symbols[1]", "start_time"]
    now = harness.clock.now()
    backwards = await failure(
        harness.stub.ListOrders(
            pb.ListOrdersRequest(
                exchange_id=account.exchange_id,
                start_time=_ts(now),
                end_time=_ts(now - timedelta(1)),
            )
        )
    )
    assert backwards.fields == ["end_time"]


async def test_list_fills_since_a_time_returns_them_oldest_first_with_client_ids(
    harness: BrokerHarness,
    account: pb.ExchangeAccount,
) -> None:
    before = harness.clock.now()
    await harness.stub.PlaceOrder(_market_buy(account.exchange_id, cid="fill-a"))
    harness.clock.advance(5)
    after_first = harness.clock.now()
    await harness.stub.PlaceOrder(_market_buy(account.exchange_id, cid="fill-b"))
    every = await harness.stub.ListFills(
        pb.ListFillsRequest(
            exchange_id=account.exchange_id,
            since=_ts(before),
        )
    )
    assert [f.client_order_id for f in every.fills] == ["fill-a", "fill-b"]
    assert every.fills[0].side == types_pb2.ORDER_SIDE_BUY
    assert every.fills[0].quantity.value == "0.01"
    later = await harness.stub.ListFills(
        pb.ListFillsRequest(
            exchange_id=account.exchange_id,
            symbols=["BTC/USDT"],
            since=_ts(after_first),
        )
    )
    assert [f.client_order_id for f in later.fills] == ["fill-b"]


async def test_get_portfolio_values_balances_in_the_venue_main_quote(
    harness: BrokerHarness,
    account: pb.ExchangeAccount,
) -> None:
    portfolio = await harness.stub.GetPortfolio(
        pb.GetPortfolioRequest(
            exchange_id=account.exchange_id,
        )
    )
    assert portfolio.quote_currency == "USDT"
    balances = {b.asset: (b.total.value, b.value.value) for b in portfolio.balances}
    assert balances == {"BTC": ("1", "50000"), "USDT": ("10000", "10000")}
    assert portfolio.equity.value == "60000"
    assert portfolio.read_time.seconds > 0


async def test_get_portfolio_with_a_bad_quote_names_it(
    harness: BrokerHarness,
    account: pb.ExchangeAccount,
) -> None:
    failed = await failure(
        harness.stub.GetPortfolio(
            pb.GetPortfolioRequest(
                exchange_id=account.exchange_id,
                quote_currency="US-D",
            )
        )
    )
    assert failed.fields == ["quote_currency"]


async def test_get_market_returns_precision_minimums_and_last_price(
    harness: BrokerHarness,
    account: pb.ExchangeAccount,
) -> None:
    response = await harness.stub.GetMarket(
        pb.GetMarketRequest(
            exchange_id=account.exchange_id,
            symbol="BTC/USDT",
        )
    )
    assert (response.market.base, response.market.quote) == ("BTC", "USDT")
    assert (response.market.quantity_step.value, response.market.price_tick.value) == (
        "0.00001",
        "0.01",
    )
    assert response.last_price.value == "50000"
    unknown = await failure(
        harness.stub.GetMarket(
            pb.GetMarketRequest(
                exchange_id=account.exchange_id,
                symbol="DOGE/USDT",
            )
        )
    )
    assert (unknown.code, unknown.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_SYMBOL")


async def test_reads_when_the_venue_is_down_are_unavailable(
    harness: BrokerHarness,
    account: pb.ExchangeAccount,
) -> None:
    harness.venue.reachable = False
    failed = await failure(
        harness.stub.GetOrder(
            pb.GetOrderRequest(
                exchange_id=account.exchange_id,
                client_order_id=CID,
                symbol="BTC/USDT",
            )
        )
    )
    assert failed.code == grpc.StatusCode.UNAVAILABLE


async def test_one_venue_connection_serves_every_call_of_an_account(
    harness: BrokerHarness,
    account: pb.ExchangeAccount,
) -> None:
    await harness.stub.PlaceOrder(_market_buy(account.exchange_id))
    await harness.stub.GetPortfolio(pb.GetPortfolioRequest(exchange_id=account.exchange_id))
    await harness.stub.GetMarket(
        pb.GetMarketRequest(exchange_id=account.exchange_id, symbol="BTC/USDT")
    )
    assert harness.venue.open_connections == 1
    await harness.broker.close()
    assert harness.venue.open_connections == 0


async def test_a_stop_limit_order_rests_until_its_stop_then_fills(
    harness: BrokerHarness,
    account: pb.ExchangeAccount,
) -> None:
    request = _limit(account.exchange_id, types_pb2.ORDER_SIDE_SELL, "44000", quantity="0.5")
    request.type = types_pb2.ORDER_TYPE_STOP_LIMIT
    request.stop_price.value = "45000"
    placed = await harness.stub.PlaceOrder(request)
    assert placed.order.status == types_pb2.ORDER_STATUS_OPEN
    assert placed.order.stop_price.value == "45000"
    harness.venue.set_price("BTC/USDT", Decimal("44500"))
    found = await harness.stub.GetOrder(
        pb.GetOrderRequest(
            exchange_id=account.exchange_id,
            client_order_id=CID,
        )
    )
    assert found.order.status == types_pb2.ORDER_STATUS_FILLED


async def test_an_order_the_venue_already_holds_under_the_id_is_adopted_not_doubled(
    harness: BrokerHarness,
) -> None:
    account, credentials = await harness.register(ALICE, {"USDT": "10000"})
    outside = harness.venue.connect(credentials)
    await outside.place_order(
        OrderRequest(
            CID,
            "BTC/USDT",
            Side.BUY,
            OrderType.LIMIT,
            Decimal("0.01"),
            price=Decimal("40000"),
            time_in_force=TimeInForce.GTC,
        )
    )
    await outside.close()
    adopted = await harness.stub.PlaceOrder(
        _limit(
            account.exchange_id,
            types_pb2.ORDER_SIDE_BUY,
            "40000",
            time_in_force=types_pb2.TIME_IN_FORCE_GTC,
        ),
    )
    assert adopted.order.status == types_pb2.ORDER_STATUS_OPEN
    assert len(harness.venue._orders) == 1
    record = await harness.store.get_order(account.exchange_id, CID)
    assert record is not None and record.venue_order_id == adopted.order.venue_order_id


async def test_an_order_the_venue_holds_under_the_id_with_other_terms_is_refused(
    harness: BrokerHarness,
) -> None:
    account, credentials = await harness.register(ALICE, {"USDT": "10000"})
    outside = harness.venue.connect(credentials)
    await outside.place_order(
        OrderRequest(
            CID,
            "BTC/USDT",
            Side.BUY,
            OrderType.LIMIT,
            Decimal("0.02"),
            price=Decimal("40000"),
        )
    )
    await outside.close()
    failed = await failure(
        harness.stub.PlaceOrder(
            _limit(account.exchange_id, types_pb2.ORDER_SIDE_BUY, "40000"),
        )
    )
    assert (failed.code, failed.reason) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "DUPLICATE_CLIENT_ORDER_ID",
    )
    assert await harness.store.get_order(account.exchange_id, CID) is None
    assert len(harness.venue._orders) == 1
