"""The broker trades a Binance USDⓈ-M futures account (venue ``binanceusdm``) registered with
the same keys as spot, against the Binance emulator's /fapi (one port serves both), and refuses
``reduce_only`` where there are no positions. The emulator's records are the ground truth."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import grpc
import pytest
from google.type import decimal_pb2

from broker_svc.access import RULES
from broker_svc.config import Settings
from broker_svc.server import build_server
from copytrade.broker.v1 import broker_service_pb2 as pb
from copytrade.broker.v1 import broker_service_pb2_grpc as pb_grpc
from copytrade.common.v1 import types_pb2
from meshkit.testing import AuthorizedStub, mesh_trust
from tests.service.broker_svc.broker_rpc import failure
from tests.service.broker_svc.conftest import ALICE, as_user

sim = pytest.importorskip("exchange_sim", reason="the emulators are not available")

PERP = "BTC/USDT:USDT"


@pytest.fixture
async def mesh(tmp_path: Any) -> AsyncIterator[tuple[pb_grpc.BrokerServiceStub, str]]:
    cluster = await sim.start_venues(("binance",), ports={"binance": 0})
    settings = Settings(
        encryption_key=os.urandom(32),
        grpc_port=0,
        metrics_port=0,
        database_url=f"sqlite:///{tmp_path}/broker.db",
        venue_urls={"binance": cluster.urls["binance"]},  # binanceusdm shares it
        order_timeout_ms=5000,
        rate_limits=False,
        **mesh_trust("broker"),
    )
    running, release = await build_server(settings)
    stub = AuthorizedStub(pb_grpc.BrokerServiceStub, f"127.0.0.1:{running.port}", RULES)
    try:
        yield stub, cluster.urls["binance"]
    finally:
        await stub.close()
        await running.stop(grace=None)
        await release()
        await cluster.close()


async def _call(session: aiohttp.ClientSession, method: str, url: str, body: Any = None) -> Any:
    async with session.request(method, url, json=body) as response:
        payload = await response.json()
        assert response.status == 200, payload
        return payload


def _order(exchange_id: str, cid: str, symbol: str, side: int, reduce_only: bool) -> Any:
    return pb.PlaceOrderRequest(
        exchange_id=exchange_id,
        client_order_id=cid,
        symbol=symbol,
        side=side,
        type=types_pb2.ORDER_TYPE_MARKET,
        quantity=decimal_pb2.Decimal(value="0.01"),
        reduce_only=reduce_only,
    )


async def test_a_futures_account_opens_and_reduces_a_position_with_the_spot_keys(
    mesh: tuple[pb_grpc.BrokerServiceStub, str],
) -> None:
    stub, url = mesh
    async with aiohttp.ClientSession() as session:
        keys = await _call(session, "POST", url + "/_sim/accounts", {"balances": {"USDT": "500"}})
        await _call(
            session,
            "POST",
            f"{url}/_sim/futures/accounts/{keys['api_key']}/wallet",
            {"amount": "2000"},
        )
        ids = {}
        for venue in ("binance", "binanceusdm"):
            registered = await stub.RegisterExchange(
                pb.RegisterExchangeRequest(
                    exchange_name=venue, api_key=keys["api_key"], api_secret=keys["api_secret"]
                ),
                metadata=as_user(ALICE),
            )
            ids[venue] = registered.exchange.exchange_id
        futures = ids["binanceusdm"]
        for _ in range(2):  # a repeat changes nothing (ccxt passes over "already set")
            lever = await stub.SetLeverage(
                pb.SetLeverageRequest(
                    exchange_id=futures, symbol=PERP, leverage=10, margin_mode="isolated"
                )
            )
            assert (lever.leverage, lever.margin_mode) == (10, "isolated")
        settings = await _call(
            session, "GET", f"{url}/_sim/futures/accounts/{keys['api_key']}/settings"
        )
        assert settings["BTCUSDT"] == {"leverage": 10, "margin_type": "ISOLATED"}
        no_leverage = await failure(
            stub.SetLeverage(
                pb.SetLeverageRequest(exchange_id=ids["binance"], symbol="BTC/USDT", leverage=3)
            )
        )
        assert (no_leverage.code, no_leverage.reason) == (
            grpc.StatusCode.FAILED_PRECONDITION,
            "LEVERAGE_UNSUPPORTED",
        )
        opened = await stub.PlaceOrder(
            _order(futures, "f-open", PERP, types_pb2.ORDER_SIDE_BUY, False)
        )
        assert opened.order.status == types_pb2.ORDER_STATUS_FILLED
        await _call(
            session, "POST", url + "/_sim/futures/prices", {"symbol": PERP, "price": "51025"}
        )
        held = await stub.GetPortfolio(pb.GetPortfolioRequest(exchange_id=futures))
        [position] = held.positions
        assert (position.symbol, position.side, position.contracts.value) == (PERP, "long", "0.01")
        assert (position.entry_price.value, position.unrealized_pnl.value) == ("50025", "10")
        assert position.margin_mode == "isolated" and not position.hedged
        assert position.contract_size.value == "1"  # linear: one contract is one BTC
        # The venue took the positions between the request and the reply: sync gets both.
        assert held.HasField("positions_request_time")
        asked, back = held.positions_request_time.ToDatetime(), held.read_time.ToDatetime()
        assert asked <= back
        truth = await _call(
            session, "GET", f"{url}/_sim/futures/accounts/{keys['api_key']}/positions"
        )
        # isolated at 10x: (0.01 * 50025 - 50.025) / (0.01 * (1 - 0.004)) = 45203.31...
        assert truth[0]["liquidation_price"].startswith("45203.313253")
        assert position.liquidation_price.value.startswith("45203.313253")
        closed = await stub.PlaceOrder(
            _order(futures, "f-close", PERP, types_pb2.ORDER_SIDE_SELL, True)
        )
        assert closed.order.status == types_pb2.ORDER_STATUS_FILLED
        portfolio = await stub.GetPortfolio(pb.GetPortfolioRequest(exchange_id=futures))
        assert list(portfolio.positions) == [] and list(portfolio.leverages) == []  # not asked
        # Flat again, the leverage setting is still read (sync's include_leverages): 10x
        # isolated where it was set, the venue's default elsewhere.
        flat = await stub.GetPortfolio(
            pb.GetPortfolioRequest(exchange_id=futures, include_leverages=True)
        )
        assert {(m.symbol, m.leverage.value, m.margin_mode) for m in flat.leverages} == {
            (PERP, "10", "isolated"),
            ("ETH/USDT:USDT", "20", "cross"),
        }
        # bought at 50025, sold at 50999.4 (the bid under a 51025 mark): 9.744 realised, less
        # taker fees of 0.250125 and 0.254997
        assert [(b.asset, b.total.value) for b in portfolio.balances] == [("USDT", "2009.238878")]
        truth = await _call(session, "GET", f"{url}/_sim/futures/accounts/{keys['api_key']}/orders")
        assert [(o["client_order_id"], o["reduce_only"], o["status"]) for o in truth] == [
            ("f-open", False, "filled"),
            ("f-close", True, "filled"),
        ]
        spot_orders = await _call(session, "GET", f"{url}/_sim/accounts/{keys['api_key']}/orders")
        assert spot_orders == []  # the futures orders never touched spot

        refused = await failure(
            stub.PlaceOrder(
                _order(ids["binance"], "s-1", "BTC/USDT", types_pb2.ORDER_SIDE_SELL, True)
            )
        )
        assert (refused.code, refused.reason) == (
            grpc.StatusCode.FAILED_PRECONDITION,
            "REDUCE_ONLY_UNSUPPORTED",
        )
        assert await _call(session, "GET", f"{url}/_sim/accounts/{keys['api_key']}/orders") == []
