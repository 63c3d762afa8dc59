"""The whole broker (build_server, servicer, store, CcxtExchange) against the Binance emulator."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import grpc
import pytest
from google.protobuf import timestamp_pb2
from google.type import decimal_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from broker_svc.access import RULES
from broker_svc.config import Settings
from broker_svc.server import SERVICE_NAME, build_server
from copytrade.broker.v1 import broker_service_pb2 as pb
from copytrade.broker.v1 import broker_service_pb2_grpc as pb_grpc
from copytrade.common.v1 import types_pb2
from meshkit.testing import AuthorizedStub, mesh_trust, secure_channel
from tests.service.broker_svc.broker_rpc import failure
from tests.service.broker_svc.conftest import ALICE, as_user

sim = pytest.importorskip("exchange_sim", reason="the Binance emulator is not available")

CID = "7d4c1b0e-3f2a-5b6c-8d9e-0a1b2c3d4e5f"


@dataclass
class Mesh:
    """The broker's stub and channel, and an admin client of the emulator."""

    stub: pb_grpc.BrokerServiceStub
    channel: grpc.aio.Channel
    venue_url: str
    session: aiohttp.ClientSession

    async def admin(self, method: str, path: str, body: Any = None) -> Any:
        async with self.session.request(method, self.venue_url + path, json=body) as response:
            payload = await response.json()
            assert response.status == 200, payload
            return payload

    async def register(self, balances: dict[str, str], **flags: bool) -> tuple[str, str]:
        made = await self.admin("POST", "/_sim/accounts", {"balances": balances, **flags})
        response = await self.stub.RegisterExchange(
            pb.RegisterExchangeRequest(
                exchange_name="binance",
                api_key=made["api_key"],
                api_secret=made["api_secret"],
                label="sim",
            ),
            metadata=as_user(ALICE),
        )
        return response.exchange.exchange_id, made["api_key"]


@pytest.fixture
async def mesh(tmp_path) -> AsyncIterator[Mesh]:
    # Every venue the broker knows points at an emulator: a test never reaches a real venue.
    cluster = await sim.start_venues(("binance", "coinbase", "kraken"))
    url = cluster.urls["binance"]
    settings = Settings(
        encryption_key=os.urandom(32),
        grpc_port=0,
        metrics_port=0,
        database_url=f"sqlite:///{tmp_path}/broker.db",
        venue_urls=dict(cluster.urls),
        order_timeout_ms=5000,
        rate_limits=False,
        **mesh_trust("broker"),
    )
    running, release = await build_server(settings)
    stub = AuthorizedStub(pb_grpc.BrokerServiceStub, f"127.0.0.1:{running.port}", RULES)
    channel = secure_channel(f"127.0.0.1:{running.port}", "operator")
    try:
        async with aiohttp.ClientSession() as session:
            mesh = Mesh(stub, channel, url, session)
            await mesh.admin("POST", "/_sim/prices", {"symbol": "BTC/USDT", "price": "50000"})
            yield mesh
    finally:
        await channel.close()
        await stub.close()
        await running.stop(grace=None)
        await release()
        await cluster.close()


def _market_buy(exchange_id: str, quantity: str) -> pb.PlaceOrderRequest:
    return pb.PlaceOrderRequest(
        exchange_id=exchange_id,
        client_order_id=CID,
        symbol="BTC/USDT",
        side=types_pb2.ORDER_SIDE_BUY,
        type=types_pb2.ORDER_TYPE_MARKET,
        quantity=decimal_pb2.Decimal(value=quantity),
    )


def _since(seconds_ago: float) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(datetime.now(UTC) - timedelta(seconds=seconds_ago))
    return stamp


async def test_a_market_order_is_placed_found_by_client_order_id_and_listed_as_a_fill(
    mesh: Mesh,
) -> None:
    exchange_id, api_key = await mesh.register({"USDT": "10000"})
    placed = await mesh.stub.PlaceOrder(_market_buy(exchange_id, "0.01"))
    assert placed.order.status == types_pb2.ORDER_STATUS_FILLED
    assert placed.order.client_order_id == CID
    found = await mesh.stub.GetOrder(
        pb.GetOrderRequest(exchange_id=exchange_id, client_order_id=CID)
    )
    assert found.order.venue_order_id == placed.order.venue_order_id
    assert found.order.filled_quantity.value == "0.01"
    fills = await mesh.stub.ListFills(
        pb.ListFillsRequest(exchange_id=exchange_id, since=_since(60))
    )
    assert [(f.venue_order_id, f.client_order_id) for f in fills.fills] == [
        (placed.order.venue_order_id, CID),
    ]
    truth = await mesh.admin("GET", f"/_sim/accounts/{api_key}/orders")
    assert len(truth) == 1


async def test_an_order_beyond_the_balance_is_failed_precondition_insufficient_funds(
    mesh: Mesh,
) -> None:
    exchange_id, _ = await mesh.register({"USDT": "100"})
    failed = await failure(mesh.stub.PlaceOrder(_market_buy(exchange_id, "0.01")))
    assert (failed.code, failed.reason) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "INSUFFICIENT_FUNDS",
    )
    assert "http" not in failed.message


async def test_an_order_executed_then_answered_504_is_unknown_then_found_and_never_doubled(
    mesh: Mesh,
) -> None:
    exchange_id, api_key = await mesh.register({"USDT": "10000"})
    await mesh.admin(
        "POST",
        "/_sim/faults",
        {"method": "POST", "path": "/api/v3/order", "status": 504, "execute": True, "count": 1},
    )
    failed = await failure(mesh.stub.PlaceOrder(_market_buy(exchange_id, "0.01")))
    assert (failed.code, failed.reason) == (
        grpc.StatusCode.DEADLINE_EXCEEDED,
        "ORDER_OUTCOME_UNKNOWN",
    )
    found = await mesh.stub.GetOrder(
        pb.GetOrderRequest(exchange_id=exchange_id, client_order_id=CID, symbol="BTC/USDT")
    )
    assert found.order.status == types_pb2.ORDER_STATUS_FILLED
    again = await mesh.stub.PlaceOrder(_market_buy(exchange_id, "0.01"))
    assert again.order.venue_order_id == found.order.venue_order_id
    assert len(await mesh.admin("GET", f"/_sim/accounts/{api_key}/orders")) == 1


async def test_a_key_that_can_withdraw_is_refused_at_registration(mesh: Mesh) -> None:
    made = await mesh.admin(
        "POST", "/_sim/accounts", {"balances": {"USDT": "1"}, "can_withdraw": True}
    )
    failed = await failure(
        mesh.stub.RegisterExchange(
            pb.RegisterExchangeRequest(
                exchange_name="binance", api_key=made["api_key"], api_secret=made["api_secret"]
            ),
            metadata=as_user(ALICE),
        )
    )
    assert (failed.code, failed.reason) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "API_KEY_CAN_WITHDRAW",
    )


async def test_portfolio_and_market_are_read_from_the_venue(mesh: Mesh) -> None:
    exchange_id, _ = await mesh.register({"USDT": "1000", "BTC": "0.5"})
    portfolio = await mesh.stub.GetPortfolio(pb.GetPortfolioRequest(exchange_id=exchange_id))
    values = {b.asset: b.value.value for b in portfolio.balances}
    assert values == {"BTC": "25000", "USDT": "1000"}
    assert portfolio.equity.value == "26000"
    market = await mesh.stub.GetMarket(
        pb.GetMarketRequest(exchange_id=exchange_id, symbol="BTC/USDT")
    )
    assert market.last_price.value == "50000"
    assert market.market.min_notional.value == "5"


async def test_the_server_reports_serving_and_lists_every_venue_with_markets(mesh: Mesh) -> None:
    health = health_pb2_grpc.HealthStub(mesh.channel)
    answer = await health.Check(health_pb2.HealthCheckRequest(service=SERVICE_NAME))
    assert answer.status == health_pb2.HealthCheckResponse.SERVING
    supported = await mesh.stub.ListSupportedExchanges(
        pb.ListSupportedExchangesRequest(),
        metadata=as_user(ALICE),
    )
    venues = {e.exchange_name: e for e in supported.exchanges}
    assert sorted(venues) == ["binance", "binanceusdm", "coinbase", "kraken"]
    assert "BTC/USDT" in [m.symbol for m in venues["binance"].markets]
    # the futures venue shares the spot emulator's URL and lists the perpetuals
    assert "BTC/USDT:USDT" in [m.symbol for m in venues["binanceusdm"].markets]
    assert "BTC/USD" in [m.symbol for m in venues["coinbase"].markets]
    assert "BTC/USD" in [m.symbol for m in venues["kraken"].markets]
    limits = {(r.name, r.limit, r.interval_seconds) for r in venues["binance"].rate_limits}
    assert {("request_weight", 1200, 60), ("orders", 10, 1)} <= limits
    assert ("orders", 1, 1) in {
        (r.name, r.limit, r.interval_seconds) for r in venues["kraken"].rate_limits
    }
    assert "websocket_fills" in venues["coinbase"].features
    btc = next(m for m in venues["kraken"].markets if m.symbol == "BTC/USD")
    assert btc.min_quantity.value and btc.price_tick.value
