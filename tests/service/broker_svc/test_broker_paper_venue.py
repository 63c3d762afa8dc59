"""The broker as ``build_server`` makes it with ``BROKER_PAPER_VENUE``: the ``paper`` venue beside
the ccxt venues, through the normal gRPC path (any keys register, portfolio, market, a market
order at the mark, its lookup and fill)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from google.protobuf import timestamp_pb2
from google.type import decimal_pb2

from broker_svc.access import RULES
from broker_svc.config import Settings
from broker_svc.server import build_server
from copytrade.broker.v1 import broker_service_pb2 as pb
from copytrade.broker.v1 import broker_service_pb2_grpc as pb_grpc
from copytrade.common.v1 import types_pb2
from meshkit.testing import AuthorizedStub, mesh_trust
from tests.service.broker_svc.conftest import ALICE, as_user

CID = "5e0c2a9d-6b1f-4c3e-9a7d-1f2e3d4c5b6a"

# Every ccxt venue points at a closed local port: this test never reaches a real venue.
NOWHERE = {name: "http://127.0.0.1:9" for name in ("binance", "binanceusdm", "coinbase", "kraken")}


@pytest.fixture
async def stub(tmp_path) -> AsyncIterator[AuthorizedStub]:
    settings = Settings(
        encryption_key=os.urandom(32),
        grpc_port=0,
        metrics_port=0,
        database_url=f"sqlite:///{tmp_path}/broker.db",
        venue_urls=NOWHERE,
        rate_limits=False,
        paper_venue=True,
        paper_balances={"USDT": Decimal("100000"), "USD": Decimal("100000")},
        paper_prices={"BTC/USDT": Decimal("60000"), "BTC/USD": Decimal("59000")},
        **mesh_trust("broker"),
    )
    running, release = await build_server(settings)
    client = AuthorizedStub(pb_grpc.BrokerServiceStub, f"127.0.0.1:{running.port}", RULES)
    try:
        yield client
    finally:
        await client.close()
        await running.stop(grace=None)
        await release()


async def test_any_keys_register_at_the_paper_venue_and_a_market_order_fills_at_the_mark(
    stub: AuthorizedStub,
) -> None:
    registered = await stub.RegisterExchange(
        pb.RegisterExchangeRequest(
            exchange_name="paper", api_key="any-key-1", api_secret="any-secret-1"
        ),
        metadata=as_user(ALICE),
    )
    exchange_id = registered.exchange.exchange_id
    assert registered.exchange.exchange_name == "paper"

    portfolio = await stub.GetPortfolio(pb.GetPortfolioRequest(exchange_id=exchange_id))
    assert {b.asset: Decimal(b.total.value) for b in portfolio.balances} == {
        "USDT": Decimal("100000"),
        "USD": Decimal("100000"),
    }
    market = await stub.GetMarket(pb.GetMarketRequest(exchange_id=exchange_id, symbol="BTC/USD"))
    assert (market.market.quote, Decimal(market.last_price.value)) == ("USD", Decimal("59000"))

    placed = await stub.PlaceOrder(
        pb.PlaceOrderRequest(
            exchange_id=exchange_id,
            client_order_id=CID,
            symbol="BTC/USDT",
            side=types_pb2.ORDER_SIDE_BUY,
            type=types_pb2.ORDER_TYPE_MARKET,
            quantity=decimal_pb2.Decimal(value="0.5"),
        )
    )
    assert placed.order.status == types_pb2.ORDER_STATUS_FILLED
    assert Decimal(placed.order.average_price.value) == Decimal("60000")

    found = await stub.GetOrder(pb.GetOrderRequest(exchange_id=exchange_id, client_order_id=CID))
    assert found.order.venue_order_id == placed.order.venue_order_id
    assert Decimal(found.order.filled_quantity.value) == Decimal("0.5")
    since = timestamp_pb2.Timestamp()
    since.FromDatetime(datetime.now(UTC) - timedelta(minutes=1))
    fills = await stub.ListFills(pb.ListFillsRequest(exchange_id=exchange_id, since=since))
    assert [f.client_order_id for f in fills.fills] == [CID]

    after = await stub.GetPortfolio(pb.GetPortfolioRequest(exchange_id=exchange_id))
    assert {b.asset: Decimal(b.total.value) for b in after.balances} == {
        "USDT": Decimal("70000"),
        "USD": Decimal("100000"),
        "BTC": Decimal("0.5"),
    }

    # Another account with other keys starts from the configured balances, not from the first.
    other = await stub.RegisterExchange(
        pb.RegisterExchangeRequest(
            exchange_name="paper", api_key="any-key-2", api_secret="any-secret-2"
        ),
        metadata=as_user(ALICE),
    )
    fresh = await stub.GetPortfolio(pb.GetPortfolioRequest(exchange_id=other.exchange.exchange_id))
    assert {b.asset: Decimal(b.total.value) for b in fresh.balances}["USDT"] == Decimal("100000")


async def test_the_paper_venue_is_listed_with_its_markets(stub: AuthorizedStub) -> None:
    listed = await stub.ListSupportedExchanges(
        pb.ListSupportedExchangesRequest(), metadata=as_user(ALICE)
    )
    venues = {e.exchange_name: e for e in listed.exchanges}
    assert {"binance", "coinbase", "kraken", "paper"} <= set(venues)
    assert sorted(m.symbol for m in venues["paper"].markets) == ["BTC/USD", "BTC/USDT"]
