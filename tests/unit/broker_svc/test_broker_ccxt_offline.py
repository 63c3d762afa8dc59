"""CcxtExchange against a duck-typed fake ccxt client: what it sends and how it parses."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, ClassVar

import ccxt.async_support as ccxt_async
import pytest

from broker_svc.adapters.binance import BinanceExchange
from broker_svc.adapters.ccxt import CcxtExchange, VenueCapabilities
from broker_svc.adapters.venues import CcxtVenues
from broker_svc.domain.model import OrderRequest, OrderStatus, OrderType, Side, TimeInForce
from meshkit import errors

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z in ms
MARKETS = {
    symbol: {
        "symbol": symbol,
        "base": symbol.split("/")[0],
        "quote": "USDT",
        "spot": True,
        "active": True,
        "precision": {"amount": "0.00001", "price": "0.01"},
        "limits": {"amount": {"min": "0.00001", "max": "9000"}, "cost": {"min": "5"}},
    }
    for symbol in ("BTC/USDT", "ETH/USDT")
}


def _order(client_order_id: str, **changes: Any) -> dict[str, Any]:
    order = {
        "id": "42",
        "clientOrderId": client_order_id,
        "symbol": "BTC/USDT",
        "side": "buy",
        "type": "limit",
        "amount": "0.01000000",
        "filled": "0.00000000",
        "price": "40000.00",
        "average": None,
        "status": "open",
        "timeInForce": "GTC",
        "timestamp": T0,
        "lastUpdateTimestamp": T0,
        "fee": None,
    }
    order.update(changes)
    return order


class FakeCcxt:
    """Records every call and answers from canned unified structures."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self.has = {name: True for name in BinanceExchange.capabilities.required_ccxt_has}
        self.precisionMode = 4  # TICK_SIZE
        self.last_response_headers: dict[str, str] = {}
        self.answer: dict[str, Any] = {}
        self.trades: dict[str, list[dict[str, Any]]] = {}
        self.closed = False

    async def load_markets(self) -> dict[str, Any]:
        self.calls.append(("load_markets", ()))
        return MARKETS

    async def create_order(self, *args: Any) -> dict[str, Any]:
        self.calls.append(("create_order", args))
        return self.answer

    async def fetch_order(self, *args: Any) -> dict[str, Any]:
        self.calls.append(("fetch_order", args))
        return self.answer

    async def cancel_order(self, *args: Any) -> dict[str, Any]:
        self.calls.append(("cancel_order", args))
        return self.answer

    async def fetch_my_trades(
        self, symbol: str, since: int | None, limit: int, params: dict[str, Any]
    ) -> list[dict[str, Any]]:
        self.calls.append(("fetch_my_trades", (symbol, since, limit, params)))
        return [t for t in self.trades.get(symbol, []) if since is None or t["timestamp"] >= since]

    async def close(self) -> None:
        self.closed = True


def _trade(trade_id: str, symbol: str, at: int) -> dict[str, Any]:
    return {
        "id": trade_id,
        "order": "7",
        "symbol": symbol,
        "side": "sell",
        "amount": "0.5",
        "price": "100.5",
        "timestamp": at,
        "fee": {"cost": "0.01", "currency": "USDT"},
        "info": {},
    }


@pytest.fixture
def fake() -> FakeCcxt:
    return FakeCcxt()


async def test_place_order_passes_the_client_order_id_natively(fake: FakeCcxt) -> None:
    fake.answer = _order("cid-1")
    exchange = BinanceExchange(None, client=fake)
    order = await exchange.place_order(
        OrderRequest(
            "cid-1",
            "BTC/USDT",
            Side.BUY,
            OrderType.LIMIT,
            Decimal("0.01"),
            price=Decimal("40000"),
            time_in_force=TimeInForce.IOC,
        )
    )
    assert fake.calls == [
        (
            "create_order",
            (
                "BTC/USDT",
                "limit",
                "buy",
                "0.01",
                "40000",
                {"timeInForce": "IOC", "newClientOrderId": "cid-1"},
            ),
        )
    ]
    assert (order.client_order_id, order.venue_order_id, order.status) == (
        "cid-1",
        "42",
        OrderStatus.OPEN,
    )
    assert order.price == Decimal("40000") and order.quantity == Decimal("0.01")
    assert order.created_at == datetime(2026, 1, 1, tzinfo=UTC)


async def test_stop_limit_order_sends_the_stop_price(fake: FakeCcxt) -> None:
    fake.answer = _order("cid-2", type="stop_loss_limit", triggerPrice="39000")
    exchange = BinanceExchange(None, client=fake)
    order = await exchange.place_order(
        OrderRequest(
            "cid-2",
            "BTC/USDT",
            Side.SELL,
            OrderType.STOP_LIMIT,
            Decimal("0.01"),
            price=Decimal("38900"),
            stop_price=Decimal("39000"),
        )
    )
    _, args = fake.calls[0]
    assert args[1] == "limit" and args[5]["stopPrice"] == "39000"
    assert order.type is OrderType.STOP_LIMIT and order.stop_price == Decimal("39000")


async def test_market_order_sends_no_price_and_no_time_in_force(fake: FakeCcxt) -> None:
    fake.answer = _order(
        "cid-3",
        type="market",
        status="closed",
        filled="0.01",
        average="50000.5",
        fee={"cost": "0.05", "currency": "USDT"},
    )
    exchange = BinanceExchange(None, client=fake)
    order = await exchange.place_order(
        OrderRequest(
            "cid-3",
            "BTC/USDT",
            Side.BUY,
            OrderType.MARKET,
            Decimal("0.01"),
        )
    )
    assert fake.calls[0][1] == (
        "BTC/USDT",
        "market",
        "buy",
        "0.01",
        None,
        {"newClientOrderId": "cid-3"},
    )
    assert order.status is OrderStatus.FILLED and order.price is None
    assert (order.average_price, order.fee, order.fee_currency) == (
        Decimal("50000.5"),
        Decimal("0.05"),
        "USDT",
    )


async def test_an_answer_about_another_order_is_an_unknown_outcome(fake: FakeCcxt) -> None:
    fake.answer = _order("somebody-else")
    exchange = BinanceExchange(None, client=fake)
    with pytest.raises(errors.OutcomeUnknown):
        await exchange.place_order(
            OrderRequest(
                "cid-4",
                "BTC/USDT",
                Side.BUY,
                OrderType.MARKET,
                Decimal("0.01"),
            )
        )


async def test_an_empty_answer_to_a_create_is_an_unknown_outcome(fake: FakeCcxt) -> None:
    fake.answer = {}
    exchange = BinanceExchange(None, client=fake)
    with pytest.raises(errors.OutcomeUnknown):
        await exchange.place_order(
            OrderRequest(
                "cid-5",
                "BTC/USDT",
                Side.BUY,
                OrderType.MARKET,
                Decimal("0.01"),
            )
        )


async def test_lookup_and_cancel_go_by_client_order_id(fake: FakeCcxt) -> None:
    fake.answer = _order("venue-made-cancel-id", status="canceled")
    exchange = BinanceExchange(None, client=fake)
    fetched = await exchange.fetch_order("cid-6", "BTC/USDT")
    cancelled = await exchange.cancel_order("cid-6", "BTC/USDT")
    assert fake.calls == [
        ("fetch_order", (None, "BTC/USDT", {"clientOrderId": "cid-6"})),
        ("cancel_order", (None, "BTC/USDT", {"clientOrderId": "cid-6"})),
    ]
    assert fetched.client_order_id == cancelled.client_order_id == "cid-6"
    assert cancelled.status is OrderStatus.CANCELED


async def test_fills_without_symbols_walk_every_market_and_merge_oldest_first(
    fake: FakeCcxt,
) -> None:
    fake.trades = {
        "BTC/USDT": [_trade("b2", "BTC/USDT", T0 + 3000), _trade("b1", "BTC/USDT", T0 + 1000)],
        "ETH/USDT": [_trade("e1", "ETH/USDT", T0 + 2000), _trade("e0", "ETH/USDT", T0 - 1000)],
    }
    exchange = BinanceExchange(None, client=fake)
    fills = await exchange.fetch_fills([], datetime(2026, 1, 1, tzinfo=UTC))
    assert [f.trade_id for f in fills] == ["b1", "e1", "b2"]
    assert {call[1][0] for call in fake.calls if call[0] == "fetch_my_trades"} == {
        "BTC/USDT",
        "ETH/USDT",
    }
    assert fills[0].price == Decimal("100.5") and fills[0].side is Side.SELL


async def test_a_markets_load_whose_reader_gave_up_ends_and_serves_the_next_read(
    fake: FakeCcxt,
) -> None:
    # A broker handler cancelled at its caller's deadline must not cut the load short: the
    # caller's next read would start the venue call over, and under load never catch up.
    loads: list[int] = []
    started, release = asyncio.Event(), asyncio.Event()
    answer = fake.load_markets

    async def slow_load() -> dict[str, Any]:
        loads.append(1)
        started.set()
        await release.wait()
        return await answer()

    fake.load_markets = slow_load  # type: ignore[method-assign]
    exchange = BinanceExchange(None, client=fake)
    given_up = asyncio.create_task(exchange.load_markets())
    await started.wait()
    given_up.cancel()
    with pytest.raises(asyncio.CancelledError):
        await given_up
    again = asyncio.create_task(exchange.load_markets())
    release.set()
    markets = await again
    assert "BTC/USDT" in markets
    assert len(loads) == 1, "the load was started over"


async def test_markets_are_loaded_once_per_client(fake: FakeCcxt) -> None:
    exchange = BinanceExchange(None, client=fake)
    first = await exchange.load_markets()
    await exchange.load_markets()
    assert [c for c in fake.calls if c[0] == "load_markets"] == [("load_markets", ())]
    assert first["BTC/USDT"].quantity_step == Decimal("0.00001")
    assert first["BTC/USDT"].min_notional == Decimal("5")


async def test_close_closes_the_ccxt_client(fake: FakeCcxt) -> None:
    exchange = BinanceExchange(None, client=fake)
    await exchange.close()
    assert fake.closed


async def test_binance_url_override_points_every_documented_key_at_the_emulator() -> None:
    exchange = BinanceExchange(None, base_url="http://127.0.0.1:9101/")
    api = exchange._client.urls["api"]
    assert api["public"] == api["private"] == "http://127.0.0.1:9101/api/v3"
    assert api["sapi"] == "http://127.0.0.1:9101/sapi/v1"
    assert api["fapiPublic"] == "http://127.0.0.1:9101/fapi/v1"
    assert api["dapiPublic"] == "http://127.0.0.1:9101/dapi/v1"
    assert api["ws"]["ws-api"]["spot"] == "ws://127.0.0.1:9101/ws-api/v3"
    options = exchange._client.options
    assert options["fetchMarkets"]["types"] == ["spot"]
    assert options["fetchCurrencies"] is False and options["fetchMargins"] is False
    # One limiter, the broker's: ccxt's own throttle is off.
    assert exchange._client.enableRateLimit is False
    await exchange.close()


async def test_without_a_venue_url_the_client_talks_to_the_real_venue() -> None:
    exchange = BinanceExchange(None, timeout_ms=2500)
    assert exchange._client.urls["api"]["public"].startswith("https://api.binance.com")
    assert exchange._client.timeout == 2500
    await exchange.close()


def test_a_venue_whose_ccxt_class_lacks_a_needed_method_fails_at_startup() -> None:
    class Lacking(CcxtExchange):
        capabilities: ClassVar[VenueCapabilities] = replace(
            BinanceExchange.capabilities,
            required_ccxt_has=("fetchMyTrades", "fetchTeleportation"),
        )

    with pytest.raises(RuntimeError, match="fetchTeleportation"):
        CcxtVenues(classes={"binance": Lacking})


async def test_venue_differences_are_data_a_subclass_changes(fake: FakeCcxt) -> None:
    class OtherVenue(CcxtExchange):
        capabilities: ClassVar[VenueCapabilities] = replace(
            BinanceExchange.capabilities,
            ccxt_id="kraken",
            client_order_id_param="cl_ord_id",
            main_quote="USD",
        )

    fake.answer = _order("cid-7")
    exchange = OtherVenue(None, client=fake)
    await exchange.place_order(
        OrderRequest(
            "cid-7",
            "BTC/USDT",
            Side.BUY,
            OrderType.LIMIT,
            Decimal("0.01"),
            price=Decimal("1"),
        )
    )
    assert fake.calls[0][1][5]["cl_ord_id"] == "cid-7"
    assert OtherVenue.profile().main_quote == "USD"


def test_the_pinned_ccxt_binance_has_what_the_broker_needs() -> None:
    CcxtVenues()
    assert hasattr(ccxt_async.binance(), "sapi_get_account_apirestrictions")
