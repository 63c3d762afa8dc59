"""The matching engine of one venue: accounts, orders, fills, fees and price-driven triggers.

Rules (venue-neutral; the venue adapters document how they surface them):

* Market orders take liquidity from the synthetic book (``core.book``) and fill what the book
  holds (IOC): the unfilled rest expires.
* Limit orders first take what crosses their price from the book (taker). The rest then rests
  (GTC), expires (IOC), or, for FOK, the whole order expires unfilled unless the book can
  fill all of it. LIMIT_MAKER orders that would take are rejected.
* A resting limit order fills in full, at its own price, as maker, when a price update moves
  the mark to or through it (buy: mark <= price; sell: mark >= price).
* Stop-loss orders trigger when the mark reaches the stop (buy: mark >= stop; sell: mark <= stop),
  take-profit orders the other way round; an order whose trigger is already met is rejected.
  A triggered order executes as a market (or limit) order at that moment.
* Fees are charged in the quote asset: buyers pay ``cost + fee``, sellers receive ``cost - fee``.
  Fees are truncated to eight decimals.
* Funds are locked when an order is accepted: the base quantity for sells; for buys
  ``price * qty * (1 + max fee rate)`` (limit types), the exact planned cost plus fees
  (market orders), or ``stop * qty * (1 + taker rate)`` (stop-market, re-checked when it
  triggers: if the free balance no longer covers the fills, the order expires unfilled).
  Leftover locked funds are released when the order ends.
* A client order id is rejected while an open order of the same account uses it (whatever
  the symbol); it may be reused once that order has ended (filled, canceled or expired).
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from exchange_sim.core import book
from exchange_sim.core.accounts import Account, AccountBook
from exchange_sim.core.clock import Clock
from exchange_sim.core.decimals import ZERO, fee_of, lock_amount, mul
from exchange_sim.core.errors import (
    DuplicateClientOrderId,
    InsufficientBalance,
    InvalidOrderRequest,
    OrderNotFound,
    TradingNotAllowed,
    UnknownSymbol,
    WouldMatchImmediately,
    WouldTriggerImmediately,
)
from exchange_sim.core.history import PriceHistory, synthetic_history
from exchange_sim.core.markets import Market
from exchange_sim.core.orders import (
    ExecutionType,
    Order,
    OrderRequest,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
    Trade,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FeeSchedule:
    """Commission rates, as fractions of the quote amount."""

    maker: Decimal = Decimal("0.001")
    taker: Decimal = Decimal("0.001")

    @property
    def highest(self) -> Decimal:
        """The larger of the two rates (used to size locks)."""
        return max(self.maker, self.taker)


@dataclass(frozen=True)
class OrderUpdate:
    """An order changed: accepted (NEW), filled (TRADE, with the trade), canceled or expired."""

    execution: ExecutionType
    order: Order  # a snapshot taken right after the change
    trade: Trade | None
    time_ms: int


@dataclass(frozen=True)
class BalanceUpdate:
    """Balances of some assets of one account changed: (asset, free, locked) after the change."""

    account_key: str
    balances: tuple[tuple[str, Decimal, Decimal], ...]
    time_ms: int


Event = OrderUpdate | BalanceUpdate
Listener = Callable[[Event], None]


class MatchingEngine:
    """All trading state of one venue. Every public method is synchronous and atomic."""

    def __init__(
        self,
        markets: Iterable[Market],
        clock: Clock,
        fees: FeeSchedule | None = None,
        *,
        history_days: int = 0,
    ) -> None:
        """``history_days`` of synthetic prices precede each market's initial price (0: none)."""
        self.clock = clock
        self.fees = fees or FeeSchedule()
        self.markets: dict[str, Market] = {m.symbol: m for m in markets}
        self.accounts = AccountBook()
        self.history = PriceHistory()
        self._marks: dict[str, Decimal] = {}
        self._orders: dict[int, Order] = {}
        self._orders_by_account: dict[str, list[Order]] = {}
        self._open: dict[int, Order] = {}
        self._trades_by_account: dict[str, list[Trade]] = {}
        self._trades_by_id: dict[int, Trade] = {}
        self._order_ids = itertools.count(1)
        self._trade_ids = itertools.count(1)
        self._execution_ids = itertools.count(1)
        self._listeners: list[Listener] = []
        self._touched: dict[str, set[str]] = {}
        self._held: set[str] = set()
        now = clock.now_ms()
        for market in self.markets.values():
            self._marks[market.symbol] = market.initial_price
            for ts, price in synthetic_history(
                market.base, market.initial_price, market.tick_size, now, history_days
            ):
                self.history.record_price(market.symbol, ts, price)
            self.history.record_price(market.symbol, now, market.initial_price)

    # ------------------------------------------------------------------ markets and prices

    def market(self, symbol: str) -> Market:
        """The market called ``symbol``, or raise ``UnknownSymbol``."""
        market = self.markets.get(symbol)
        if market is None:
            raise UnknownSymbol(symbol)
        return market

    def mark(self, symbol: str) -> Decimal:
        """The current mark price of ``symbol``."""
        self.market(symbol)
        return self._marks[symbol]

    def set_mark_price(self, symbol: str, price: Decimal) -> list[Order]:
        """Move the mark price; trigger stops and fill resting orders it crosses.

        Returns snapshots of the orders that triggered or filled, in processing order.
        """
        market = self.market(symbol)
        if price <= ZERO:
            raise ValueError("price: must be positive")
        now = self.clock.now_ms()
        self._marks[symbol] = price
        self.history.record_price(symbol, now, price)
        touched: list[Order] = []
        for order in self._open_orders_of_symbol(symbol):
            if not order.is_working and _trigger_met(order, price):
                self._activate(order, market, price)
                touched.append(order)
        for order in self._open_orders_of_symbol(symbol):
            if order.awaiting_match:
                continue  # matched only once matching is released
            if order.is_working and order.type.has_limit_price and _rest_crossed(order, price):
                self._fill(
                    order,
                    market,
                    _present(order.price),  # a limit type always has a price
                    order.remaining,
                    is_maker=True,
                    execution_id=next(self._execution_ids),
                )
                touched.append(order)
        self._flush_balances()
        return [o.snapshot() for o in touched]

    def hold_matching(self, symbol: str | None, held: bool) -> list[Order]:
        """Hold or release the matching of limit orders in ``symbol`` (every market if None).

        While held, a new limit order (any time in force) is accepted and stays NEW, unmatched,
        as on a venue whose matching runs behind its order entry (Coinbase accepts an order and
        fills it asynchronously); it can be looked up and cancelled. Market orders still fill.
        Releasing matches every waiting order as if it had just arrived (an IOC fills what
        crosses and expires the rest). Returns snapshots of the orders matched on release.
        """
        symbols = [self.market(symbol).symbol] if symbol else list(self.markets)
        touched: list[Order] = []
        for name in symbols:
            if held:
                self._held.add(name)
                continue
            self._held.discard(name)
            market = self.markets[name]
            for order in self._open_orders_of_symbol(name):
                if order.awaiting_match:
                    order.awaiting_match = False
                    self._execute_limit(order, market, self._marks[name])
                    touched.append(order)
        self._flush_balances()
        return [o.snapshot() for o in touched]

    @property
    def held_symbols(self) -> list[str]:
        """The markets whose matching is held."""
        return sorted(self._held)

    # ------------------------------------------------------------------ accounts

    def create_account(
        self,
        api_key: str,
        api_secret: str,
        *,
        balances: Mapping[str, Decimal] | None = None,
        can_trade: bool = True,
        can_withdraw: bool = False,
    ) -> Account:
        """Open an account with the given credentials and starting balances."""
        account = self.accounts.add(
            api_key,
            api_secret,
            now_ms=self.clock.now_ms(),
            balances=balances,
            can_trade=can_trade,
            can_withdraw=can_withdraw,
        )
        self._orders_by_account[api_key] = []
        self._trades_by_account[api_key] = []
        return account

    # ------------------------------------------------------------------ listeners

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener`` synchronously with every event; returns the unsubscribe function."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    # ------------------------------------------------------------------ orders

    def place_order(self, api_key: str, request: OrderRequest) -> Order:
        """Validate, accept and execute an order; returns a snapshot of its state afterwards.

        Raises a ``VenueError`` (and changes nothing) when the order is rejected.
        """
        account = self.accounts.get(api_key)
        market = self.market(request.symbol)
        if not account.can_trade:
            raise TradingNotAllowed(api_key)
        _check_shape(request)
        mark = self._marks[market.symbol]
        _check_filters(market, request, mark)
        self._check_duplicate(api_key, request.client_order_id)
        if request.type.has_trigger and _trigger_met_for(
            request.type, request.side, request.stop_price, mark
        ):
            raise WouldTriggerImmediately(f"stop {request.stop_price} vs mark {mark}")
        if request.type is OrderType.LIMIT_MAKER and self._would_take(market, request, mark):
            raise WouldMatchImmediately(f"price {request.price} vs mark {mark}")
        plan = (
            self._plan_market(market, request, mark) if request.type is OrderType.MARKET else None
        )
        asset, amount = self._required_lock(market, request, plan)
        account.lock(asset, amount)  # raises InsufficientBalance before anything has changed
        self._touch(api_key, asset)
        order = self._new_order(api_key, request, plan, asset, amount)
        self._register(order)
        if plan is not None:
            self._execute_fills(order, market, plan)
        elif market.symbol in self._held and request.type is OrderType.LIMIT:
            order.awaiting_match = True
        elif not request.type.has_trigger:  # triggered types wait for their trigger
            self._execute_limit(order, market, mark)
        self._flush_balances()
        return order.snapshot()

    def cancel_order(
        self,
        api_key: str,
        symbol: str,
        *,
        order_id: int | None = None,
        client_order_id: str | None = None,
        cancel_client_order_id: str | None = None,
    ) -> Order:
        """Cancel an open order; ``OrderNotFound`` if it does not exist or has already ended."""
        account = self.accounts.get(api_key)
        if not account.can_trade:
            raise TradingNotAllowed(api_key)
        order = self._find_order(api_key, symbol, order_id, client_order_id)
        if not order.is_open:
            raise OrderNotFound(f"order {order.order_id} is {order.status.value}")
        order.cancel_client_order_id = cancel_client_order_id
        self._finish(order, OrderStatus.CANCELED, ExecutionType.CANCELED)
        self._flush_balances()
        return order.snapshot()

    def amend_order(
        self,
        api_key: str,
        symbol: str,
        order_id: int,
        *,
        quantity: Decimal | None = None,
        price: Decimal | None = None,
    ) -> Order:
        """Change an open GTC limit order's price and/or total quantity in place (same id).

        The new quantity must exceed what has already filled; the new values pass the market's
        filters; the lock is re-taken for the new remainder (``InsufficientBalance`` leaves the
        order as it was). A new price that crosses takes from the book as a limit order would.
        ``OrderNotFound`` for an unknown or ended order, ``InvalidOrderRequest`` for an order
        that is not a resting GTC limit, or an amend that changes nothing.
        """
        account = self.accounts.get(api_key)
        if not account.can_trade:
            raise TradingNotAllowed(api_key)
        order = self._find_order(api_key, symbol, order_id, None)
        if not order.is_open:
            raise OrderNotFound(f"order {order.order_id} is {order.status.value}")
        if order.type is not OrderType.LIMIT or order.time_in_force is not TimeInForce.GTC:
            raise InvalidOrderRequest("only GTC limit orders can be amended")
        market = self.market(symbol)
        new_qty = _present(order.quantity) if quantity is None else quantity
        new_price = _present(order.price) if price is None else price
        if new_qty == order.quantity and new_price == order.price:
            raise InvalidOrderRequest("amend changes nothing")
        if new_qty <= order.executed_qty:
            raise InvalidOrderRequest("quantity: not above the filled quantity")
        market.check_price(new_price)
        market.check_quantity(new_qty)
        market.check_notional(new_price, new_qty, apply_max=True)
        remaining = new_qty - order.executed_qty
        if order.side is Side.SELL:
            lock = market.base, remaining
        else:
            lock = market.quote, lock_amount(mul(new_price, remaining), self.fees.highest)
        old_asset, old_amount = order.locked_asset, order.locked_amount
        self._release_lock(order)
        try:
            account.lock(*lock)
        except InsufficientBalance:
            account.lock(old_asset, old_amount)
            order.locked_asset, order.locked_amount = old_asset, old_amount
            raise
        order.locked_asset, order.locked_amount = lock
        self._touch(api_key, lock[0])
        order.quantity, order.price = new_qty, new_price
        order.updated_ms = self.clock.now_ms()
        self._emit(OrderUpdate(ExecutionType.AMENDED, order.snapshot(), None, order.updated_ms))
        if not order.awaiting_match:
            self._execute_limit(order, market, self._marks[market.symbol])
        self._flush_balances()
        return order.snapshot()

    def get_order(
        self,
        api_key: str,
        symbol: str,
        *,
        order_id: int | None = None,
        client_order_id: str | None = None,
    ) -> Order:
        """Look an order up by id, or by client order id (the most recent order using it).

        When both are given the order found by id must also carry that client order id.
        Returns a snapshot; raises ``OrderNotFound``.
        """
        return self._find_order(api_key, symbol, order_id, client_order_id).snapshot()

    def _find_order(
        self, api_key: str, symbol: str, order_id: int | None, client_order_id: str | None
    ) -> Order:
        self.market(symbol)
        self.accounts.get(api_key)
        if order_id is None and client_order_id is None:
            raise InvalidOrderRequest("order_id or client_order_id is required")
        if order_id is not None:
            order = self._orders.get(order_id)
            if order is None or order.account_key != api_key or order.symbol != symbol:
                raise OrderNotFound(str(order_id))
            if client_order_id is not None and order.client_order_id != client_order_id:
                raise OrderNotFound(f"{order_id} does not carry {client_order_id}")
            return order
        for order in reversed(self._orders_by_account.get(api_key, [])):
            if order.symbol == symbol and order.client_order_id == client_order_id:
                return order
        raise OrderNotFound(str(client_order_id))

    def orders(self, api_key: str, symbol: str | None = None) -> list[Order]:
        """Snapshots of every order of the account (optionally one symbol), oldest first."""
        self.accounts.get(api_key)
        return [
            o.snapshot()
            for o in self._orders_by_account.get(api_key, [])
            if symbol is None or o.symbol == symbol
        ]

    def open_orders(self, api_key: str, symbol: str | None = None) -> list[Order]:
        """Snapshots of the account's open orders, oldest first."""
        return [o for o in self.orders(api_key, symbol) if o.is_open]

    def trades(self, api_key: str, symbol: str | None = None) -> list[Trade]:
        """The account's trades (optionally one symbol), by increasing id."""
        self.accounts.get(api_key)
        return [
            t
            for t in self._trades_by_account.get(api_key, [])
            if symbol is None or t.symbol == symbol
        ]

    def trades_of_order(self, order: Order) -> list[Trade]:
        """The trades of one order, by increasing id."""
        return [self._trades_by_id[i] for i in order.trade_ids]

    def all_trades(self, symbol: str) -> list[Trade]:
        """Every trade of every account on ``symbol`` (for tickers)."""
        return sorted(
            (t for ts in self._trades_by_account.values() for t in ts if t.symbol == symbol),
            key=lambda t: t.trade_id,
        )

    # ------------------------------------------------------------------ internals: acceptance

    def _check_duplicate(self, api_key: str, client_order_id: str) -> None:
        for order in self._open.values():
            if order.account_key == api_key and order.client_order_id == client_order_id:
                raise DuplicateClientOrderId(client_order_id)

    def _would_take(self, market: Market, request: OrderRequest, mark: Decimal) -> bool:
        best = book.opposite_side(market, mark, request.side)
        return bool(best) and book.crosses(request.side, request.price, best[0].price)

    def _plan_market(
        self, market: Market, request: OrderRequest, mark: Decimal
    ) -> list[book.Level]:
        levels = book.opposite_side(market, mark, request.side)
        if request.quote_quantity is not None:
            return book.plan_quote(levels, request.quote_quantity, market.step_size)
        return book.plan_quantity(levels, request.side, request.quantity or ZERO, None)

    def _new_order(
        self,
        api_key: str,
        request: OrderRequest,
        plan: list[book.Level] | None,
        locked_asset: str,
        locked_amount: Decimal,
    ) -> Order:
        now = self.clock.now_ms()
        quantity = request.quantity
        if quantity is None and plan is not None:
            quantity = book.total_qty(plan)
        return Order(
            order_id=next(self._order_ids),
            account_key=api_key,
            symbol=request.symbol,
            side=request.side,
            type=request.type,
            client_order_id=request.client_order_id,
            created_ms=now,
            updated_ms=now,
            quantity=quantity,
            quote_quantity=request.quote_quantity,
            price=request.price,
            stop_price=request.stop_price,
            time_in_force=request.time_in_force,
            working_ms=None if request.type.has_trigger else now,
            fee_asset=self.markets[request.symbol].quote,
            locked_asset=locked_asset,
            locked_amount=locked_amount,
        )

    def _required_lock(
        self, market: Market, request: OrderRequest, plan: list[book.Level] | None
    ) -> tuple[str, Decimal]:
        """What an order must lock: (asset, amount)."""
        if request.side is Side.SELL:
            qty = request.quantity if request.quantity is not None else book.total_qty(plan or [])
            return market.base, qty
        if plan is not None:
            return market.quote, self._buy_cost(plan)
        if request.type.has_limit_price:
            return market.quote, lock_amount(
                mul(_present(request.price), _present(request.quantity)),  # both set: a limit
                self.fees.highest,
            )
        # stop-market buy: estimated at the stop price, re-checked when it triggers
        return market.quote, lock_amount(
            mul(_present(request.stop_price), _present(request.quantity)),  # both set: a stop
            self.fees.taker,
        )

    def _buy_cost(self, plan: list[book.Level]) -> Decimal:
        """Quote a taker buy along ``plan`` consumes, fees included."""
        total = ZERO
        for fill in plan:
            quote = mul(fill.price, fill.qty)
            total += quote + fee_of(quote, self.fees.taker)
        return total

    def _register(self, order: Order) -> None:
        self._orders[order.order_id] = order
        self._orders_by_account[order.account_key].append(order)
        self._open[order.order_id] = order
        self._emit(OrderUpdate(ExecutionType.NEW, order.snapshot(), None, order.created_ms))

    # ------------------------------------------------------------------ internals: execution

    def _execute_limit(self, order: Order, market: Market, mark: Decimal) -> None:
        """Take what crosses the limit price from the book, then rest / expire by time in force."""
        if order.type is OrderType.LIMIT_MAKER:
            return
        levels = book.opposite_side(market, mark, order.side)
        plan = book.plan_quantity(levels, order.side, order.remaining, order.price)
        if order.time_in_force is TimeInForce.FOK and book.total_qty(plan) < order.remaining:
            self._finish(order, OrderStatus.EXPIRED, ExecutionType.EXPIRED)
            return
        execution_id = next(self._execution_ids)  # one taker execution, however many levels
        for fill in plan:
            self._fill(
                order, market, fill.price, fill.qty, is_maker=False, execution_id=execution_id
            )
        if order.is_open and order.time_in_force is not TimeInForce.GTC:
            self._finish(order, OrderStatus.EXPIRED, ExecutionType.EXPIRED)

    def _execute_fills(self, order: Order, market: Market, plan: list[book.Level]) -> None:
        """Apply planned taker fills; whatever the book could not fill expires."""
        execution_id = next(self._execution_ids)  # one taker execution, however many levels
        for fill in plan:
            self._fill(
                order, market, fill.price, fill.qty, is_maker=False, execution_id=execution_id
            )
        if order.is_open:
            self._finish(order, OrderStatus.EXPIRED, ExecutionType.EXPIRED)

    def _activate(self, order: Order, market: Market, mark: Decimal) -> None:
        """A stop's trigger was met: put it to work as a market or limit order."""
        order.working_ms = order.updated_ms = self.clock.now_ms()
        if order.type.has_limit_price:
            self._execute_limit(order, market, mark)
            return
        levels = book.opposite_side(market, mark, order.side)
        plan = book.plan_quantity(levels, order.side, order.remaining, None)
        if order.side is Side.BUY:
            account = self.accounts.get(order.account_key)
            self._release_lock(order)
            try:
                amount = self._buy_cost(plan)
                account.lock(market.quote, amount)
                order.locked_asset, order.locked_amount = market.quote, amount
            except InsufficientBalance:
                self._finish(order, OrderStatus.EXPIRED, ExecutionType.EXPIRED)
                return
        self._execute_fills(order, market, plan)

    def _fill(
        self,
        order: Order,
        market: Market,
        price: Decimal,
        qty: Decimal,
        *,
        is_maker: bool,
        execution_id: int,
    ) -> Trade:
        """Book one fill: move balances, update the order, record and announce the trade."""
        account = self.accounts.get(order.account_key)
        now = self.clock.now_ms()
        quote = mul(price, qty)
        fee = fee_of(quote, self.fees.maker if is_maker else self.fees.taker)
        buying = order.side is Side.BUY
        spent, spent_asset = (quote + fee, market.quote) if buying else (qty, market.base)
        if (
            spent > order.locked_amount
        ):  # the locking rules make this impossible; never fill unbacked
            raise AssertionError(
                f"order {order.order_id} fill needs {spent}, locked {order.locked_amount}"
            )
        account.spend_locked(spent_asset, spent)
        if buying:
            account.credit(market.base, qty)
        else:
            account.credit(market.quote, quote - fee)
        order.locked_amount -= spent
        self._touch(account.api_key, market.base, market.quote)
        order.executed_qty += qty
        order.cum_quote += quote
        order.fee += fee
        order.updated_ms = now
        filled = order.quantity is not None and order.executed_qty >= order.quantity
        order.status = OrderStatus.FILLED if filled else OrderStatus.PARTIALLY_FILLED
        trade = Trade(
            trade_id=next(self._trade_ids),
            order_id=order.order_id,
            account_key=order.account_key,
            symbol=order.symbol,
            side=order.side,
            price=price,
            qty=qty,
            quote_qty=quote,
            fee=fee,
            fee_asset=market.quote,
            is_maker=is_maker,
            time_ms=now,
            execution_id=execution_id,
        )
        order.trade_ids.append(trade.trade_id)
        self._trades_by_account[order.account_key].append(trade)
        self._trades_by_id[trade.trade_id] = trade
        self.history.record_trade(order.symbol, now, price, qty)
        if filled:
            self._close(order)
        self._emit(OrderUpdate(ExecutionType.TRADE, order.snapshot(), trade, now))
        return trade

    def _finish(self, order: Order, status: OrderStatus, execution: ExecutionType) -> None:
        """End an open order (canceled or expired) and release what it still holds."""
        order.status = status
        order.updated_ms = self.clock.now_ms()
        self._close(order)
        self._emit(OrderUpdate(execution, order.snapshot(), None, order.updated_ms))

    def _close(self, order: Order) -> None:
        self._release_lock(order)
        self._open.pop(order.order_id, None)

    def _release_lock(self, order: Order) -> None:
        if order.locked_amount > ZERO:
            self.accounts.get(order.account_key).unlock(order.locked_asset, order.locked_amount)
            self._touch(order.account_key, order.locked_asset)
        order.locked_amount = ZERO

    def _open_orders_of_symbol(self, symbol: str) -> list[Order]:
        return [o for o in self._open.values() if o.symbol == symbol]

    # ------------------------------------------------------------------ internals: events

    def _touch(self, api_key: str, *assets: str) -> None:
        self._touched.setdefault(api_key, set()).update(assets)

    def _flush_balances(self) -> None:
        touched, self._touched = self._touched, {}
        now = self.clock.now_ms()
        for api_key, assets in touched.items():
            account = self.accounts.get(api_key)
            account.updated_ms = now
            rows = tuple(
                (a, account.balance(a).free, account.balance(a).locked) for a in sorted(assets)
            )
            self._emit(BalanceUpdate(api_key, rows, now))

    def _emit(self, event: Event) -> None:
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:  # a broken listener must never corrupt the engine
                log.exception("engine listener failed")


# ---------------------------------------------------------------------- pure helpers


def _trigger_met_for(
    order_type: OrderType, side: Side, stop: Decimal | None, mark: Decimal
) -> bool:
    if stop is None:
        return False
    stop_loss = order_type in (OrderType.STOP_LOSS, OrderType.STOP_LOSS_LIMIT)
    rising = (
        side is Side.BUY
    ) == stop_loss  # stop-loss buys and take-profit sells trigger on a rise
    return mark >= stop if rising else mark <= stop


def _trigger_met(order: Order, mark: Decimal) -> bool:
    return _trigger_met_for(order.type, order.side, order.stop_price, mark)


def _rest_crossed(order: Order, mark: Decimal) -> bool:
    assert order.price is not None
    return mark <= order.price if order.side is Side.BUY else mark >= order.price


def _check_shape(request: OrderRequest) -> None:
    """Each order type carries exactly the fields it needs."""
    kind = request.type
    needs_tif = kind in (OrderType.LIMIT, OrderType.STOP_LOSS_LIMIT, OrderType.TAKE_PROFIT_LIMIT)
    if kind is OrderType.MARKET:
        if (request.quantity is None) == (request.quote_quantity is None):
            raise InvalidOrderRequest("exactly one of quantity and quote_quantity")
    elif request.quantity is None or request.quote_quantity is not None:
        raise InvalidOrderRequest("quantity is required (quote_quantity is for market orders)")
    if kind.has_limit_price != (request.price is not None):
        raise InvalidOrderRequest("price")
    if kind.has_trigger != (request.stop_price is not None):
        raise InvalidOrderRequest("stop_price")
    if needs_tif != (request.time_in_force is not None):
        raise InvalidOrderRequest("time_in_force")
    if not request.client_order_id:
        raise InvalidOrderRequest("client_order_id")


def _present(value: Decimal | None) -> Decimal:
    """``value``, which the order's type guarantees (``_check_shape`` enforced it).

    A missing one raises the ``TypeError`` Decimal arithmetic on ``None`` would.
    """
    if value is None:
        raise TypeError("conversion from NoneType to Decimal is not supported")
    return value


def _check_filters(market: Market, request: OrderRequest, mark: Decimal) -> None:
    """Price, quantity and notional rules, in that order."""
    for price in (request.price, request.stop_price):
        if price is not None:
            market.check_price(price)
    if request.quantity is not None:
        market.check_quantity(request.quantity)
        if request.type.is_market_like:
            market.check_market_quantity(request.quantity)
    if request.quote_quantity is not None:
        market.check_notional_value(request.quote_quantity, apply_max=False)
    elif request.type.has_limit_price:
        market.check_notional(_present(request.price), _present(request.quantity), apply_max=True)
    else:  # market orders are valued at the mark, stop-market ones at their stop
        reference = request.stop_price if request.stop_price is not None else mark
        market.check_notional(reference, _present(request.quantity), apply_max=False)
