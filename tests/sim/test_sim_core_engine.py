"""Pure tests of the emulator core: exact decimals, book walks, locks, fees, triggers, ids."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exchange_sim.binance.markets import DEFAULT_MARKETS
from exchange_sim.core import (
    DuplicateClientOrderId,
    ExecutionType,
    FeeSchedule,
    FilterFailure,
    FilterKind,
    InsufficientBalance,
    ManualClock,
    MatchingEngine,
    OrderNotFound,
    OrderRequest,
    OrderStatus,
    OrderType,
    OrderUpdate,
    Side,
    TimeInForce,
    TradingNotAllowed,
    WouldMatchImmediately,
    WouldTriggerImmediately,
    book,
)
from exchange_sim.core.engine import BalanceUpdate

D = Decimal
KEY = "alice"
BTC = "BTC/USDT"


def engine(fees: FeeSchedule | None = None, **balances: str) -> MatchingEngine:
    eng = MatchingEngine(DEFAULT_MARKETS, ManualClock(), fees)
    eng.create_account(
        KEY, "secret", balances={k: D(v) for k, v in (balances or {"USDT": "1000000"}).items()}
    )
    return eng


def req(
    side: Side,
    kind: OrderType,
    qty: str | None = None,
    price: str | None = None,
    *,
    stop: str | None = None,
    tif: TimeInForce | None = None,
    quote: str | None = None,
    cid: str = "c1",
    symbol: str = BTC,
) -> OrderRequest:
    if tif is None and kind in (
        OrderType.LIMIT,
        OrderType.STOP_LOSS_LIMIT,
        OrderType.TAKE_PROFIT_LIMIT,
    ):
        tif = TimeInForce.GTC
    return OrderRequest(
        symbol=symbol,
        side=side,
        type=kind,
        client_order_id=cid,
        quantity=D(qty) if qty else None,
        quote_quantity=D(quote) if quote else None,
        price=D(price) if price else None,
        stop_price=D(stop) if stop else None,
        time_in_force=tif,
    )


def bal(eng: MatchingEngine, asset: str) -> tuple[Decimal, Decimal]:
    b = eng.accounts.get(KEY).balance(asset)
    return b.free, b.locked


def test_small_fill_is_exact_to_the_last_decimal() -> None:
    eng = engine(USDT="100")
    order = eng.place_order(KEY, req(Side.BUY, OrderType.MARKET, "0.00013"))
    (trade,) = eng.trades(KEY)
    assert trade.quote_qty == D("6.50325") and trade.fee == D("0.00650325")
    assert bal(eng, "USDT") == (D("93.49024675"), D(0))
    assert bal(eng, "BTC") == (D("0.00013"), D(0))
    assert order.status is OrderStatus.FILLED and order.cum_quote == D("6.50325")
    assert all(type(v) is Decimal for v in (trade.price, trade.qty, trade.fee, order.executed_qty))


def test_fee_is_truncated_to_eight_decimals() -> None:
    eng = engine(fees=FeeSchedule(maker=D("0.001"), taker=D("0.00075")), USDT="100")
    eng.place_order(KEY, req(Side.BUY, OrderType.MARKET, "0.00013"))
    assert eng.trades(KEY)[0].fee == D("0.00487743")  # 6.50325 * 0.00075 = 0.0048774375


def test_book_levels_step_away_from_the_mark_on_the_tick() -> None:
    market = DEFAULT_MARKETS[0]
    asks, bids = book.asks(market, D("50000")), book.bids(market, D("50000"))
    assert [lv.price for lv in asks[:3]] == [D("50025.00"), D("50050.00"), D("50075.00")]
    assert [lv.price for lv in bids[:2]] == [D("49975.00"), D("49950.00")]
    assert len(asks) == market.book_levels and all(lv.qty == D("0.5") for lv in asks)
    odd = book.asks(market, D("33333.33"))[0].price
    assert odd == D("33350.00") and odd >= D("33333.33") * D("1.0005")  # rounded up to the tick


def test_market_buy_walks_levels_and_charges_taker_fee_per_fill() -> None:
    eng = engine()
    order = eng.place_order(KEY, req(Side.BUY, OrderType.MARKET, "1.2"))
    assert [(t.price, t.qty) for t in eng.trades(KEY)] == [
        (D("50025"), D("0.5")),
        (D("50050"), D("0.5")),
        (D("50075"), D("0.2")),
    ]
    assert order.cum_quote == D("60052.5") and order.fee == D("60.0525")
    assert bal(eng, "USDT") == (D("1000000") - D("60052.5") - D("60.0525"), D(0))


def test_market_order_beyond_the_book_expires_the_rest() -> None:
    eng = engine()
    order = eng.place_order(KEY, req(Side.BUY, OrderType.MARKET, "7"))
    assert order.status is OrderStatus.EXPIRED and order.executed_qty == D("5.0")
    assert bal(eng, "USDT")[1] == 0


def test_limit_buy_locks_price_qty_and_fee_and_cancel_unlocks() -> None:
    eng = engine(USDT="10000")
    order = eng.place_order(KEY, req(Side.BUY, OrderType.LIMIT, "0.1", "49000"))
    assert order.status is OrderStatus.NEW and order.is_working
    assert bal(eng, "USDT") == (D("5095.1"), D("4904.9"))  # 4900 * 1.001
    canceled = eng.cancel_order(KEY, BTC, order_id=order.order_id, cancel_client_order_id="cx")
    assert canceled.status is OrderStatus.CANCELED and canceled.cancel_client_order_id == "cx"
    assert bal(eng, "USDT") == (D("10000"), D(0))
    with pytest.raises(OrderNotFound):
        eng.cancel_order(KEY, BTC, order_id=order.order_id)


def test_limit_sell_locks_base_and_resting_fill_pays_maker_fee() -> None:
    eng = engine(fees=FeeSchedule(maker=D("0.0002"), taker=D("0.001")), BTC="1")
    order = eng.place_order(KEY, req(Side.SELL, OrderType.LIMIT, "0.4", "51000"))
    assert bal(eng, "BTC") == (D("0.6"), D("0.4"))
    touched = eng.set_mark_price(BTC, D("51000"))
    assert [o.order_id for o in touched] == [order.order_id]
    (trade,) = eng.trades(KEY)
    assert trade.is_maker and trade.price == D("51000") and trade.fee == D("4.08")  # 20400 * 0.0002
    assert bal(eng, "BTC") == (D("0.6"), D(0)) and bal(eng, "USDT") == (D("20395.92"), D(0))


def test_partial_taker_fill_then_rest_keeps_the_lock_consistent() -> None:
    eng = engine()
    order = eng.place_order(KEY, req(Side.BUY, OrderType.LIMIT, "1", "50030"))
    assert order.status is OrderStatus.PARTIALLY_FILLED and order.executed_qty == D("0.5")
    locked = bal(eng, "USDT")[1]
    assert locked == eng.get_order(KEY, BTC, order_id=order.order_id).locked_amount > 0
    eng.set_mark_price(BTC, D("50000"))  # mark <= limit: the rest fills at 50030
    assert eng.get_order(KEY, BTC, order_id=order.order_id).status is OrderStatus.FILLED
    assert bal(eng, "USDT")[1] == 0
    spent = sum(t.quote_qty + t.fee for t in eng.trades(KEY))
    assert bal(eng, "USDT")[0] == D("1000000") - spent


def test_ioc_and_fok_semantics() -> None:
    eng = engine()
    ioc = eng.place_order(
        KEY, req(Side.BUY, OrderType.LIMIT, "1", "50030", tif=TimeInForce.IOC, cid="i")
    )
    assert ioc.status is OrderStatus.EXPIRED and ioc.executed_qty == D("0.5")
    fok = eng.place_order(
        KEY, req(Side.BUY, OrderType.LIMIT, "1", "50030", tif=TimeInForce.FOK, cid="f")
    )
    assert fok.status is OrderStatus.EXPIRED and fok.executed_qty == 0
    fok_ok = eng.place_order(
        KEY, req(Side.BUY, OrderType.LIMIT, "1", "50050", tif=TimeInForce.FOK, cid="g")
    )
    assert fok_ok.status is OrderStatus.FILLED
    assert bal(eng, "USDT")[1] == 0


def test_quote_sized_market_buy_spends_within_budget_in_whole_steps() -> None:
    eng = engine()
    order = eng.place_order(KEY, req(Side.BUY, OrderType.MARKET, quote="1000"))
    assert order.status is OrderStatus.FILLED and order.quantity == order.executed_qty == D(
        "0.01999"
    )
    assert order.cum_quote <= D("1000") and order.cum_quote == D("999.99975")


def test_stop_loss_and_take_profit_trigger_in_opposite_directions() -> None:
    eng = engine(BTC="1", USDT="100000")
    stop = eng.place_order(KEY, req(Side.SELL, OrderType.STOP_LOSS, "0.1", stop="49000", cid="sl"))
    take = eng.place_order(
        KEY, req(Side.SELL, OrderType.TAKE_PROFIT_LIMIT, "0.1", "51000", stop="51000", cid="tp")
    )
    assert not stop.is_working and stop.status is OrderStatus.NEW
    eng.set_mark_price(BTC, D("50500"))
    assert eng.open_orders(KEY)[0].order_id == stop.order_id and len(eng.open_orders(KEY)) == 2
    eng.set_mark_price(BTC, D("51000"))  # take-profit sell triggers on the rise
    assert eng.get_order(KEY, BTC, order_id=take.order_id).status is OrderStatus.FILLED
    eng.set_mark_price(BTC, D("48000"))  # stop-loss sell on the fall, as a market order
    done = eng.get_order(KEY, BTC, order_id=stop.order_id)
    assert done.status is OrderStatus.FILLED and eng.trades_of_order(done)[0].price == D("47976")
    with pytest.raises(WouldTriggerImmediately):
        eng.place_order(KEY, req(Side.BUY, OrderType.STOP_LOSS, "0.1", stop="47000", cid="late"))


def test_stop_market_buy_that_cannot_pay_when_triggered_expires() -> None:
    eng = engine(USDT="5200")
    order = eng.place_order(KEY, req(Side.BUY, OrderType.STOP_LOSS, "0.1", stop="51000"))
    assert bal(eng, "USDT") == (D("5200") - D("5105.1"), D("5105.1"))
    eng.set_mark_price(BTC, D("60000"))  # fills would cost ~6003: more than the account has
    assert eng.get_order(KEY, BTC, order_id=order.order_id).status is OrderStatus.EXPIRED
    assert bal(eng, "USDT") == (D("5200"), D(0))


def test_rejections_change_nothing() -> None:
    eng = engine(USDT="100")
    before = bal(eng, "USDT")
    with pytest.raises(InsufficientBalance):
        eng.place_order(KEY, req(Side.BUY, OrderType.LIMIT, "0.01", "49000"))
    with pytest.raises(FilterFailure) as lot:
        eng.place_order(KEY, req(Side.BUY, OrderType.LIMIT, "0.000015", "49000"))
    assert lot.value.kind is FilterKind.QUANTITY
    with pytest.raises(FilterFailure) as tick:
        eng.place_order(KEY, req(Side.BUY, OrderType.LIMIT, "0.001", "49000.001"))
    assert tick.value.kind is FilterKind.PRICE
    with pytest.raises(FilterFailure) as notional:
        eng.place_order(KEY, req(Side.BUY, OrderType.MARKET, "0.00001"))
    assert notional.value.kind is FilterKind.NOTIONAL
    with pytest.raises(WouldMatchImmediately):
        eng.place_order(KEY, req(Side.BUY, OrderType.LIMIT_MAKER, "0.001", "50025"))
    assert bal(eng, "USDT") == before and eng.orders(KEY) == []


def test_client_order_id_is_unique_among_open_orders_only() -> None:
    eng = engine()
    first = eng.place_order(KEY, req(Side.BUY, OrderType.LIMIT, "0.1", "49000", cid="x"))
    with pytest.raises(DuplicateClientOrderId):
        eng.place_order(
            KEY, req(Side.BUY, OrderType.LIMIT, "0.1", "3000", cid="x", symbol="ETH/USDT")
        )
    eng.cancel_order(KEY, BTC, client_order_id="x")
    second = eng.place_order(KEY, req(Side.BUY, OrderType.MARKET, "0.1", cid="x"))
    assert (
        eng.get_order(KEY, BTC, client_order_id="x").order_id == second.order_id != first.order_id
    )
    with pytest.raises(OrderNotFound):
        eng.get_order(KEY, BTC, order_id=first.order_id, client_order_id="other")


def test_trading_permission_is_enforced() -> None:
    eng = engine()
    eng.create_account("ro", "s", balances={"USDT": D("1000")}, can_trade=False)
    with pytest.raises(TradingNotAllowed):
        eng.place_order("ro", req(Side.BUY, OrderType.MARKET, "0.001"))


def test_events_announce_new_trades_and_balances_in_order() -> None:
    eng = engine()
    events: list[object] = []
    eng.subscribe(events.append)
    eng.place_order(KEY, req(Side.BUY, OrderType.MARKET, "0.6"))
    kinds = [e.execution for e in events if isinstance(e, OrderUpdate)]
    assert kinds == [ExecutionType.NEW, ExecutionType.TRADE, ExecutionType.TRADE]
    assert isinstance(events[-1], BalanceUpdate) and {a for a, _, _ in events[-1].balances} == {
        "BTC",
        "USDT",
    }
    trade_events = [e for e in events if isinstance(e, OrderUpdate) and e.trade]
    assert (
        trade_events[0].order.status is OrderStatus.PARTIALLY_FILLED
    )  # snapshots, not live objects
    assert [e.trade.trade_id for e in trade_events if e.trade is not None] == [1, 2]


def test_ids_increase_and_snapshots_are_detached() -> None:
    eng = engine()
    a = eng.place_order(KEY, req(Side.BUY, OrderType.LIMIT, "0.1", "49000", cid="a"))
    b = eng.place_order(KEY, req(Side.BUY, OrderType.LIMIT, "0.1", "49000", cid="b"))
    assert b.order_id > a.order_id
    a.status = OrderStatus.FILLED
    assert eng.get_order(KEY, BTC, order_id=a.order_id).status is OrderStatus.NEW


_actions = st.lists(
    st.one_of(
        st.tuples(st.just("market"), st.sampled_from(list(Side)), st.integers(1, 150)),
        st.tuples(
            st.just("limit"), st.sampled_from(list(Side)), st.integers(1, 150), st.integers(-60, 60)
        ),
        st.tuples(st.just("price"), st.integers(-60, 60)),
        st.tuples(st.just("cancel"), st.integers(0, 20)),
    ),
    max_size=25,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_actions)
def test_balances_always_equal_start_plus_fills_and_locks_match_open_orders(
    actions: list[tuple],
) -> None:
    eng = engine(USDT="100000", BTC="2")
    for action in actions:
        try:
            if action[0] == "market":
                eng.place_order(KEY, req(action[1], OrderType.MARKET, str(D(action[2]) / 100)))
            elif action[0] == "limit":
                price = D(50000) + D(action[3]) * 25
                eng.place_order(
                    KEY,
                    req(
                        action[1],
                        OrderType.LIMIT,
                        str(D(action[2]) / 100),
                        str(price),
                        cid=f"o{len(eng.orders(KEY))}",
                    ),
                )
            elif action[0] == "price":
                eng.set_mark_price(BTC, D(50000) + D(action[1]) * 25)
            else:
                open_orders = eng.open_orders(KEY)
                if open_orders:
                    eng.cancel_order(
                        KEY, BTC, order_id=open_orders[action[1] % len(open_orders)].order_id
                    )
        except (InsufficientBalance, FilterFailure):
            pass
        trades = eng.trades(KEY)
        btc = D(2) + sum(t.qty if t.side is Side.BUY else -t.qty for t in trades)
        usdt = D(100000) + sum(
            -(t.quote_qty + t.fee) if t.side is Side.BUY else t.quote_qty - t.fee for t in trades
        )
        assert sum(bal(eng, "BTC")) == btc and sum(bal(eng, "USDT")) == usdt
        for asset in ("BTC", "USDT"):
            free, locked = bal(eng, asset)
            assert free >= 0 and locked >= 0
            assert locked == sum(
                o.locked_amount for o in eng.open_orders(KEY) if o.locked_asset == asset
            )


def test_held_matching_keeps_a_limit_waiting_cancellable_then_matches_it_on_release() -> None:
    eng = engine()
    mark = eng.mark(BTC)
    eng.hold_matching(None, True)
    # An IOC that would cross waits, NEW and unfilled, its quote locked; a market order fills.
    waiting = eng.place_order(
        KEY, req(Side.BUY, OrderType.LIMIT, "0.01", str(mark * 2), tif=TimeInForce.IOC, cid="ioc")
    )
    assert (waiting.status, waiting.executed_qty) == (OrderStatus.NEW, 0)
    assert bal(eng, "USDT")[1] > 0
    assert (
        eng.place_order(KEY, req(Side.BUY, OrderType.MARKET, "0.01", cid="mkt")).status
        is OrderStatus.FILLED
    )
    eng.set_mark_price(BTC, mark / 2)  # a price move does not match it either
    assert eng.get_order(KEY, BTC, client_order_id="ioc").status is OrderStatus.NEW
    cancelled = eng.place_order(
        KEY, req(Side.BUY, OrderType.LIMIT, "0.01", str(mark), tif=TimeInForce.IOC, cid="gone")
    )
    assert (
        eng.cancel_order(KEY, BTC, client_order_id=cancelled.client_order_id).status
        is OrderStatus.CANCELED
    )
    matched = eng.hold_matching(BTC, False)
    assert [o.client_order_id for o in matched] == ["ioc"]
    assert eng.get_order(KEY, BTC, client_order_id="ioc").status is OrderStatus.FILLED
    assert eng.get_order(KEY, BTC, client_order_id="gone").status is OrderStatus.CANCELED
    assert eng.held_symbols == [s for s in sorted(eng.markets) if s != BTC]
