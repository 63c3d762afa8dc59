"""The Kraken adapter's pure parts: identifiers, signing, nonces, rate limits, JSON shapes, URLs."""

from __future__ import annotations

from decimal import Decimal

import ccxt.pro
import pytest

from exchange_sim.ccxt_urls import point_ccxt_at
from exchange_sim.core.clock import ManualClock
from exchange_sim.core.engine import OrderUpdate
from exchange_sim.core.orders import (
    Order,
    OrderRequest,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
    Trade,
)
from exchange_sim.kraken import codec, ids, new_kraken_state, point_kraken_at
from exchange_sim.kraken.auth import NonceBook, sign
from exchange_sim.kraken.errors import KrakenError
from exchange_sim.kraken.limits import KrakenRateLimiter
from exchange_sim.kraken.markets import DEFAULT_PAIRS
from exchange_sim.server import VENUES, parse_args

D = Decimal
XBTUSD = DEFAULT_PAIRS[0]


def test_txids_look_like_kraken_and_decode_back() -> None:
    seen = set()
    for number in (1, 2, 3, 999, 2**40):
        txid = ids.order_txid(number)
        assert (
            ids.is_txid(txid) and txid[0] == "O" and [len(p) for p in txid.split("-")] == [6, 5, 6]
        )
        assert (
            ids.order_number(txid) == number and ids.trade_number(ids.trade_txid(number)) == number
        )
        seen.add(txid)
    assert len(seen) == 5
    assert ids.order_number("OQCLML-BW3P3-BUCMWZ") is None  # well formed, never issued
    assert ids.order_number(ids.trade_txid(1)) is None and ids.order_number("O1") is None


def test_client_ids_keep_cl_ord_id_and_userref_apart() -> None:
    for good in (
        "6d1b345e-2821-40e2-ad83-4ecb18a06876",
        "6D1B345E282140E2AD834ECB18A06876",
        "copy-42",
        "x" * 18,
    ):
        assert (
            ids.valid_cl_ord_id(good)
            and ids.cl_ord_id_of(ids.internal_client_id(good, None)) == good
        )
    for bad in ("", "x" * 19, "with space", "é"):
        assert not ids.valid_cl_ord_id(bad)
    tagged = ids.internal_client_id(None, -7)
    assert ids.userref_of(tagged) == -7 and ids.cl_ord_id_of(tagged) is None
    plain = ids.internal_client_id(None, None)
    assert ids.userref_of(plain) is None and ids.cl_ord_id_of(plain) is None
    assert ids.userref_of("userref:5:ab") is None  # a valid cl_ord_id is never read as a userref


def test_signature_matches_krakens_documented_example() -> None:
    # docs.kraken.com "Spot REST Authentication" example values.
    secret = (
        "kQH5HW/8p1uGOVjbgWA7FunAmGO8lsSUXNsu3eow76sz84Q18fWxnyRzBHCd3pd5nE9qa99HAZtuZuj6F1huXg=="
    )
    body = "nonce=1616492376594&ordertype=limit&pair=XBTUSD&price=37500&type=buy&volume=1.25"
    assert (
        sign(secret, "/0/private/AddOrder", "1616492376594", body)
        == "4/dpxb3iT4tp/ZCVEwSnEsLxx0bqyhLpdfOpc6fn7OR8+"
        "UClSV5n9E6aSS8MPtnRfp32bAb0nmbRn6H8ndwLUQ=="
    )


def test_nonces_must_strictly_increase_per_key() -> None:
    book = NonceBook()
    assert book.accept("a", 10) and not book.accept("a", 10) and not book.accept("a", 9)
    assert book.accept("b", 1) and book.accept("a", 11) and book.last("a") == 11


def _message(call: object) -> str:
    with pytest.raises(KrakenError) as info:
        call()
    return info.value.message


def test_rate_limiter_windows_and_lockout() -> None:
    clock = ManualClock()
    limiter = KrakenRateLimiter(clock, enabled=True, ban_seconds=30)
    limiter.admit_order("key:a")
    assert _message(lambda: limiter.admit_order("key:a")) == "EOrder:Rate limit exceeded"
    limiter.admit_order("key:b")  # per key
    clock.advance(1_000)
    limiter.admit_order("key:a")  # the 1 s window slid
    for _ in range(60):
        limiter.admit_request("key:a")
    assert _message(lambda: limiter.admit_request("key:a")) == "EAPI:Rate limit exceeded"
    clock.advance(1_000)  # still inside the wait: locked out
    assert _message(lambda: limiter.admit_request("key:a")) == "EGeneral:Temporary lockout"
    assert _message(lambda: limiter.admit_order("key:a")) == "EGeneral:Temporary lockout"
    clock.advance(29_999)
    assert _message(lambda: limiter.admit_request("key:a")) == "EGeneral:Temporary lockout"
    clock.advance(60_000)
    limiter.admit_request("key:a")
    limiter.configure(enabled=False)
    for _ in range(100):
        limiter.admit_order("key:a")


def _order(kind: OrderType, **fields: object) -> Order:
    base: dict[str, object] = {
        "order_id": 1,
        "account_key": "k",
        "symbol": "BTC/USD",
        "side": Side.SELL,
        "type": kind,
        "client_order_id": ids.internal_client_id(None, None),
        "created_ms": 0,
        "updated_ms": 0,
        "quantity": D("0.1"),
    }
    return Order(**{**base, **fields})


def test_descr_order_sentences_for_every_order_type() -> None:
    expected = {
        OrderType.MARKET: ({}, "sell 0.10000000 XBTUSD @ market"),
        OrderType.LIMIT: ({"price": D("50000")}, "sell 0.10000000 XBTUSD @ limit 50000.0"),
        OrderType.STOP_LOSS: (
            {"stop_price": D("45000")},
            "sell 0.10000000 XBTUSD @ stop loss 45000.0",
        ),
        OrderType.STOP_LOSS_LIMIT: (
            {"stop_price": D("45000"), "price": D("44900.5")},
            "sell 0.10000000 XBTUSD @ stop loss 45000.0 -> limit 44900.5",
        ),
        OrderType.TAKE_PROFIT: (
            {"stop_price": D("55000")},
            "sell 0.10000000 XBTUSD @ take profit 55000.0",
        ),
        OrderType.TAKE_PROFIT_LIMIT: (
            {"stop_price": D("55000"), "price": D("54900")},
            "sell 0.10000000 XBTUSD @ take profit 55000.0 -> limit 54900.0",
        ),
    }
    for kind, (fields, sentence) in expected.items():
        assert codec.descr_order(XBTUSD, _order(kind, **fields)) == sentence
    viqc = _order(OrderType.MARKET, side=Side.BUY, quote_quantity=D("1000"))
    assert codec.descr_order(XBTUSD, viqc) == "buy 1000.00000000 XBTUSD @ market"


def test_order_info_truncates_to_the_pairs_decimals() -> None:
    order = _order(
        OrderType.LIMIT,
        price=D("50000"),
        time_in_force=TimeInForce.IOC,
        status=OrderStatus.EXPIRED,
        executed_qty=D("0.03"),
        cum_quote=D("1500.123456789"),
        fee=D("3.90032098"),
        updated_ms=1500,
    )
    info = codec.order_info(XBTUSD, order, ["T1"])
    assert (info["status"], info["reason"], info["closetm"]) == (
        "canceled",
        "Immediate or cancel",
        D("1.5"),
    )
    assert (info["vol"], info["vol_exec"], info["cost"], info["fee"]) == (
        "0.10000000",
        "0.03000000",
        "1500.12345",
        "3.90032",
    )
    assert info["price"] == "50004.11522" and info["trades"] == ["T1"] and "cl_ord_id" not in info


def test_consecutive_taker_fills_of_one_execution_consolidate() -> None:
    def trade(
        trade_id: int, order_id: int, execution_id: int, time_ms: int, maker: bool = False
    ) -> Trade:
        return Trade(
            trade_id,
            order_id,
            "k",
            "BTC/USD",
            Side.BUY,
            D("100"),
            D("1"),
            D("100"),
            D("0.26"),
            "USD",
            maker,
            time_ms,
            execution_id,
        )

    trades = [
        trade(1, 1, 1, 5),
        trade(2, 1, 1, 6),  # the clock ticked inside the execution: still the same record
        trade(3, 1, 2, 6),  # same order and time, another execution
        trade(4, 2, 3, 6),
        trade(5, 3, 4, 9, True),
        trade(6, 3, 5, 9, True),
    ]
    groups = codec.fills(trades, consolidate_taker=True)
    assert [[t.trade_id for t in g.trades] for g in groups] == [[1, 2], [3], [4], [5], [6]]
    assert groups[0].qty == 2 and groups[0].fee == D("0.52") and groups[0].txid == ids.trade_txid(1)
    assert len(codec.fills(trades, consolidate_taker=False)) == 6


def test_a_taker_execution_is_one_record_however_the_clock_moves_between_level_fills() -> None:
    clock = ManualClock()
    state = new_kraken_state(clock=clock)
    engine = state.engine
    engine.subscribe(
        lambda event: clock.advance(7) if isinstance(event, OrderUpdate) and event.trade else None
    )
    engine.create_account("k", "s", balances={"USD": D("100000")})
    order = engine.place_order(
        "k", OrderRequest("BTC/USD", Side.BUY, OrderType.MARKET, "c1", quantity=D("1.2"))
    )
    trades = engine.trades_of_order(order)
    assert len(trades) == 3 and len({t.time_ms for t in trades}) == 3
    [record] = codec.fills(trades, consolidate_taker=True)
    assert record.qty == D("1.2") and record.txid == ids.trade_txid(trades[0].trade_id)


def test_dumps_writes_decimals_as_exact_json_numbers() -> None:
    assert (
        codec.dumps({"a": [D("0.1"), D("50025.0"), D("1E+2")], "b": None, "c": "x"})
        == '{"a":[0.1,50025.0,100],"b":null,"c":"x"}'
    )


def test_point_kraken_at_rewrites_rest_and_every_websocket_url() -> None:
    ex = ccxt.pro.kraken()
    point_kraken_at(ex, "http://127.0.0.1:9103/")
    api = ex.urls["api"]
    assert api["public"] == api["private"] == "http://127.0.0.1:9103"
    assert api["ws"]["privateV2"] == "ws://127.0.0.1:9103/ws-auth/v2"
    assert all(url.startswith("ws://127.0.0.1:9103/") for url in api["ws"].values())
    with pytest.raises(ValueError, match="base_url"):
        point_kraken_at(ex, "127.0.0.1:9103")


def test_point_ccxt_at_dispatches_kraken_and_the_registry_knows_it() -> None:
    ex = ccxt.pro.kraken()
    point_ccxt_at(ex, "http://127.0.0.1:9103")
    assert ex.urls["api"]["private"] == "http://127.0.0.1:9103"
    assert VENUES["kraken"].default_port == 9103
    assert parse_args([], environ={"SIM_KRAKEN_PORT": "0"}).kraken_port == 0
