"""A deterministic in-memory venue implementing the exchange port; also the fake in tests.

:class:`PaperVenue` holds markets, mark prices, accounts, orders and fills. Market orders fill at
the mark price; limit orders that cross fill at the mark, others rest and fill when a later mark
crosses them; stop-limit orders wait for their stop. Ids are sequential. With ``open_balances``
an unknown API key opens an account with those balances on first use (the broker's ``paper``
venue, ``BROKER_PAPER_VENUE``: any keys register). Failures are scripted:
``venue.fail("place_order", errors.OutcomeUnknown("..."), call=3, execute=True)`` makes the third
placement execute and then raise, as a venue that timed out after taking the order would.
"""

from __future__ import annotations

import asyncio
import itertools
import secrets
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import TypeVar

from broker_svc.domain.model import (
    Balance,
    Candle,
    Credentials,
    Fill,
    KeyPermissions,
    Market,
    MarketLeverage,
    Order,
    OrderHint,
    OrderRequest,
    OrderStatus,
    OrderType,
    Position,
    RateLimit,
    Side,
    StreamEvent,
    StreamState,
    TimeInForce,
    VenueProfile,
    WatchChannel,
)
from broker_svc.ports import Clock
from meshkit import errors

_T = TypeVar("_T")

_WatchItem = Order | Fill | StreamEvent | None
"""What a watch's queue carries: an update, a stream event, or ``None`` when it closes."""

DEFAULT_MARKETS = (
    Market(
        "BTC/USDT",
        "BTC",
        "USDT",
        Decimal("0.00001"),
        Decimal("0.01"),
        Decimal("0.00001"),
        Decimal("5"),
        Decimal("9000"),
    ),
    Market(
        "ETH/USDT",
        "ETH",
        "USDT",
        Decimal("0.0001"),
        Decimal("0.01"),
        Decimal("0.0001"),
        Decimal("5"),
        Decimal("9000"),
    ),
)


def paper_market(symbol: str) -> Market:
    """Return the market ``symbol`` (``BASE/QUOTE``) at a paper venue.

    A default market keeps its filters; another takes those of the default market with the same
    base asset (``BTC/USD`` those of ``BTC/USDT``), else those of the first default market.
    """
    for market in DEFAULT_MARKETS:
        if market.symbol == symbol:
            return market
    base, _, quote = symbol.partition("/")
    like = next((m for m in DEFAULT_MARKETS if m.base == base), DEFAULT_MARKETS[0])
    return replace(like, symbol=symbol, base=base, quote=quote)


def open_paper_venue(
    balances: Mapping[str, Decimal],
    prices: Mapping[str, Decimal],
    name: str = "paper",
) -> PaperVenue:
    """Return the broker's ``paper`` venue: any keys open an account with ``balances``.

    Its markets are those of ``prices`` (``{"BTC/USDT": Decimal(50000)}``), each at its mark
    price; market orders fill there. Everything is held in memory and lost when the process ends.
    """
    venue = PaperVenue(
        name,
        markets=[paper_market(symbol) for symbol in prices],
        open_balances=balances,
    )
    for symbol, price in prices.items():
        venue.set_price(symbol, price)
    return venue


class _WallClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


def paper_profile(name: str = "binance", *, main_quote: str = "USDT") -> VenueProfile:
    """Return the profile of a paper venue: every order type and time in force a venue has."""
    limit_tifs = (TimeInForce.GTC, TimeInForce.IOC, TimeInForce.FOK)
    return VenueProfile(
        name=name,
        order_support=(
            (OrderType.MARKET, ()),
            (OrderType.LIMIT, (*limit_tifs, TimeInForce.POST_ONLY)),
            (OrderType.STOP_MARKET, ()),
            (OrderType.STOP_LIMIT, limit_tifs),
        ),
        features=(
            "client_order_id_lookup",
            "cancel_by_client_order_id",
            "key_permissions",
            "fills_since",
            "candles",
            "websocket_orders",
            "websocket_fills",
            "paper",
        ),
        rate_limits=(RateLimit("requests", 1200, 60),),
        main_quote=main_quote,
        symbol_required_for_lookup=True,
        resend_safe_after_seconds=30.0,
    )


@dataclass
class _Account:
    api_secret: str
    balances: dict[str, list[Decimal]]  # asset -> [free, locked]
    permissions: KeyPermissions

    def free(self, asset: str) -> Decimal:
        return self.balances.get(asset, [Decimal(0), Decimal(0)])[0]

    def move(self, asset: str, free: Decimal = Decimal(0), locked: Decimal = Decimal(0)) -> None:
        entry = self.balances.setdefault(asset, [Decimal(0), Decimal(0)])
        entry[0] += free
        entry[1] += locked


@dataclass
class _Rule:
    method: str
    error: errors.ServiceError
    call: int | None
    execute: bool
    remaining: int


@dataclass
class _PaperOrder:
    api_key: str
    order: Order
    locked_asset: str = ""
    locked_amount: Decimal = Decimal(0)
    triggered: bool = field(default=True)


class PaperVenue:
    """One simulated venue shared by every connection to it.

    Parameters
    ----------
    name
        The venue name the broker sees (``"binance"`` for a paper Binance).
    markets
        The markets it lists.
    clock
        Where order and trade times come from.
    fee_rate
        The fee charged on each fill, in the quote asset.
    open_balances
        When given, an API key the venue does not know opens an account with these balances
        (and the secret it came with) on its first call; ``None``: only :meth:`add_account`.
    """

    def __init__(
        self,
        name: str = "binance",
        *,
        markets: Sequence[Market] = DEFAULT_MARKETS,
        clock: Clock | None = None,
        fee_rate: Decimal = Decimal(0),
        profile: VenueProfile | None = None,
        open_balances: Mapping[str, Decimal] | None = None,
    ) -> None:
        self.name = name
        self.markets = {market.symbol: market for market in markets}
        self.clock: Clock = clock or _WallClock()
        self.fee_rate = fee_rate
        self.profile = profile or paper_profile(name)
        self.prices: dict[str, Decimal] = {}
        self.reachable = True
        self.open_connections = 0
        self.calls: dict[str, int] = {}
        self._accounts: dict[str, _Account] = {}
        self.open_balances = dict(open_balances) if open_balances is not None else None
        self._orders: list[_PaperOrder] = []
        # Indexes over _orders and _fills, so a call costs the same at the 30,000th order.
        self._orders_by_key: dict[str, list[_PaperOrder]] = {}
        self._by_client_id: dict[tuple[str, str], list[_PaperOrder]] = {}
        self._resting: dict[str, list[_PaperOrder]] = {}  # symbol -> orders not yet ended
        self._fills: list[tuple[str, Fill]] = []
        self._fills_by_key: dict[str, list[Fill]] = {}
        self._rules: list[_Rule] = []
        self._order_ids = itertools.count(1)
        self._trade_ids = itertools.count(1)
        self._history: dict[str, list[tuple[datetime, Decimal, Decimal]]] = {}
        self._watchers: list[tuple[str, WatchChannel, asyncio.Queue[_WatchItem]]] = []
        self._watchers_by_key: dict[
            str, list[tuple[str, WatchChannel, asyncio.Queue[_WatchItem]]]
        ] = {}

    # Set-up -----------------------------------------------------------------------------------

    def add_account(
        self,
        balances: Mapping[str, Decimal | str | int] | None = None,
        *,
        can_trade: bool = True,
        can_withdraw: bool = False,
        can_transfer: bool = False,
    ) -> Credentials:
        """Open an account with ``balances`` and return its new credentials."""
        api_key = f"paper{len(self._accounts) + 1:04d}{secrets.token_hex(8)}"
        api_secret = secrets.token_hex(16)
        self._open(api_key, api_secret, balances or {}, can_trade, can_withdraw, can_transfer)
        return Credentials(api_key, api_secret)

    def _open(
        self,
        api_key: str,
        api_secret: str,
        balances: Mapping[str, Decimal | str | int],
        can_trade: bool = True,
        can_withdraw: bool = False,
        can_transfer: bool = False,
    ) -> _Account:
        account = _Account(
            api_secret,
            {asset: [Decimal(amount), Decimal(0)] for asset, amount in balances.items()},
            KeyPermissions(can_trade, can_withdraw, can_transfer),
        )
        self._accounts[api_key] = account
        return account

    def set_price(self, symbol: str, price: Decimal | str | int) -> None:
        """Set the mark price of ``symbol`` and fill the resting orders it crosses."""
        self.prices[symbol] = Decimal(price)
        self._history.setdefault(symbol, []).append((self.clock.now(), Decimal(price), Decimal(0)))
        for entry in list(self._resting.get(symbol, ())):
            if not entry.order.status.is_terminal:
                self._maybe_trigger(entry, placing=False)
        self._drop_ended(symbol)

    def fail(
        self,
        method: str,
        error: errors.ServiceError,
        *,
        call: int | None = None,
        execute: bool = False,
        times: int = 1,
    ) -> None:
        """Script a failure of ``method``: its ``call``-th call (or the next ones), ``times`` times.

        With ``execute`` the call does its work first and then raises, like a venue that took an
        order and timed out before answering.
        """
        self._rules.append(_Rule(method, error, call, execute, times))

    def drop_streams(self, detail: str = "the venue closed the stream") -> None:
        """Make every watch see its stream drop and come back (``DISCONNECTED``, ``CONNECTED``)."""
        now = self.clock.now()
        for _, _, queue in self._watchers:
            queue.put_nowait(StreamEvent(StreamState.DISCONNECTED, detail, now))
            queue.put_nowait(StreamEvent(StreamState.CONNECTED, "subscribed again", now))

    @property
    def watchers(self) -> int:
        """Return how many watches are open."""
        return len(self._watchers)

    def _notify(self, api_key: str, item: Order | Fill) -> None:
        channel = WatchChannel.FILLS if isinstance(item, Fill) else WatchChannel.ORDERS
        for _, wanted, queue in self._watchers_by_key.get(api_key, ()):
            if wanted is channel:
                queue.put_nowait(item)

    def orders_of(self, credentials: Credentials) -> list[Order]:
        """Return the venue's truth: every order of an account, oldest first."""
        return [e.order for e in self._orders_by_key.get(credentials.api_key, ())]

    def _drop_ended(self, symbol: str) -> None:
        resting = self._resting.get(symbol)
        if resting is not None:
            resting[:] = [e for e in resting if not e.order.status.is_terminal]

    def connect(self, credentials: Credentials | None) -> PaperExchange:
        """Open a connection for ``credentials`` (public when ``None``)."""
        self.open_connections += 1
        return PaperExchange(self, credentials)

    # Internals used by PaperExchange ----------------------------------------------------------

    def _rule_for(self, method: str) -> _Rule | None:
        count = self.calls.get(method, 0) + 1
        self.calls[method] = count
        for rule in self._rules:
            if rule.method == method and rule.remaining > 0 and rule.call in (None, count):
                rule.remaining -= 1
                return rule
        return None

    def _account(self, credentials: Credentials | None) -> tuple[str, _Account]:
        if credentials is None:
            raise errors.FailedPrecondition(
                "API-key required for this action.",
                reason="BROKER_CREDENTIALS_REJECTED",
            )
        account = self._accounts.get(credentials.api_key)
        if account is None and self.open_balances is not None:
            account = self._open(credentials.api_key, credentials.api_secret, self.open_balances)
        if account is None or not secrets.compare_digest(
            account.api_secret, credentials.api_secret
        ):
            raise errors.FailedPrecondition(
                "Invalid API-key, IP, or permissions for action.",
                reason="BROKER_CREDENTIALS_REJECTED",
            )
        return credentials.api_key, account

    def _market(self, symbol: str) -> Market:
        market = self.markets.get(symbol)
        if market is None:
            raise errors.InvalidArgument(
                errors.FieldViolation("symbol", "Invalid symbol."),
                reason="INVALID_SYMBOL",
            )
        return market

    def _place(self, api_key: str, account: _Account, request: OrderRequest) -> Order:
        market = self._market(request.symbol)
        if not account.permissions.can_trade:
            raise errors.FailedPrecondition(
                "This action is disabled on this account.",
                reason="BROKER_CREDENTIALS_REJECTED",
            )
        for entry in self._by_client_id.get((api_key, request.client_order_id), ()):
            if not entry.order.status.is_terminal:
                raise errors.FailedPrecondition(
                    "Duplicate order sent.",
                    reason="DUPLICATE_CLIENT_ORDER_ID",
                )
        mark = self.prices.get(request.symbol)
        if request.type is OrderType.MARKET and mark is None:
            raise errors.InvalidArgument(
                errors.FieldViolation("", "No market price for this symbol."),
                reason="INVALID_ORDER",
            )
        self._check_filters(market, request, mark)
        if (
            request.time_in_force is TimeInForce.POST_ONLY
            and mark is not None
            and request.price is not None
            and (request.price >= mark if request.side is Side.BUY else request.price <= mark)
        ):
            raise errors.InvalidArgument(
                errors.FieldViolation("price", "Order would immediately match and take."),
                reason="INVALID_ORDER",
            )
        now = self.clock.now()
        order = Order.taken(
            request,
            str(next(self._order_ids)),
            time_in_force=(request.time_in_force or TimeInForce.GTC)
            if request.type.has_limit_price
            else None,
            created_at=now,
            updated_at=now,
        )
        entry = _PaperOrder(api_key, order, triggered=not request.type.has_stop_price)
        self._lock_funds(account, market, entry)
        self._orders.append(entry)
        self._orders_by_key.setdefault(api_key, []).append(entry)
        self._by_client_id.setdefault((api_key, request.client_order_id), []).append(entry)
        self._maybe_trigger(entry, placing=True)
        if (
            entry.order.status is OrderStatus.OPEN
            and entry.order.time_in_force in (TimeInForce.IOC, TimeInForce.FOK)
            and entry.triggered
        ):
            self._finish(entry, OrderStatus.EXPIRED)
        elif entry.order.status is OrderStatus.OPEN:
            self._resting.setdefault(request.symbol, []).append(entry)
            self._notify(api_key, entry.order)
        return entry.order

    def _check_filters(self, market: Market, request: OrderRequest, mark: Decimal | None) -> None:
        def reject(field_name: str, text: str, reason: str = "INVALID_ORDER") -> None:
            raise errors.InvalidArgument(errors.FieldViolation(field_name, text), reason=reason)

        if market.quantity_step and request.quantity % market.quantity_step != 0:
            reject("quantity", "Filter failure: LOT_SIZE")
        if market.min_quantity and request.quantity < market.min_quantity:
            reject("quantity", "Filter failure: LOT_SIZE")
        if market.max_quantity and request.quantity > market.max_quantity:
            reject("quantity", "Filter failure: LOT_SIZE")
        if request.price is not None and market.price_tick and request.price % market.price_tick:
            reject("price", "Filter failure: PRICE_FILTER")
        reference = request.price if request.type.has_limit_price else mark
        if (
            market.min_notional
            and reference is not None
            and request.quantity * reference < market.min_notional
        ):
            reject("quantity", "Filter failure: NOTIONAL", "BELOW_MIN_NOTIONAL")

    def _lock_funds(self, account: _Account, market: Market, entry: _PaperOrder) -> None:
        order = entry.order
        if order.side is Side.BUY:
            price = order.price if order.type.has_limit_price else self.prices[order.symbol]
            assert price is not None  # a limit order always carries its price
            asset, amount = market.quote, order.quantity * price * (1 + self.fee_rate)
        else:
            asset, amount = market.base, order.quantity
        if account.free(asset) < amount:
            raise errors.FailedPrecondition(
                "Account has insufficient balance for requested action.",
                reason="INSUFFICIENT_FUNDS",
            )
        account.move(asset, -amount, amount)
        entry.locked_asset, entry.locked_amount = asset, amount

    def _maybe_trigger(self, entry: _PaperOrder, *, placing: bool) -> None:
        order = entry.order
        mark = self.prices.get(order.symbol)
        if mark is None:
            return
        if not entry.triggered:
            stop = order.stop_price or Decimal(0)
            if (order.side is Side.BUY and mark >= stop) or (
                order.side is Side.SELL and mark <= stop
            ):
                entry.triggered = True
                placing = True
            else:
                return
        if order.type in (OrderType.MARKET, OrderType.STOP_MARKET):
            self._fill(entry, mark)
        elif order.price is not None and (
            (order.side is Side.BUY and mark <= order.price)
            or (order.side is Side.SELL and mark >= order.price)
        ):
            # Crossing on arrival takes the book at the mark; a resting order fills at its limit.
            self._fill(entry, mark if placing else order.price)

    def _fill(self, entry: _PaperOrder, price: Decimal) -> None:
        order = entry.order
        account = self._accounts[entry.api_key]
        market = self.markets[order.symbol]
        quantity = order.quantity - order.filled_quantity
        notional = quantity * price
        fee = notional * self.fee_rate
        account.move(entry.locked_asset, locked=-entry.locked_amount)
        if order.side is Side.BUY:
            account.move(market.quote, free=entry.locked_amount - notional - fee)
            account.move(market.base, free=quantity)
        else:
            account.move(market.base, free=entry.locked_amount - quantity)
            account.move(market.quote, free=notional - fee)
        entry.locked_amount = Decimal(0)
        now = self.clock.now()
        fill = Fill(
            trade_id=str(next(self._trade_ids)),
            venue_order_id=order.venue_order_id,
            symbol=order.symbol,
            side=order.side,
            quantity=quantity,
            price=price,
            trade_time=now,
            client_order_id=order.client_order_id,
            fee=fee,
            fee_currency=market.quote,
            order_type=order.type,
        )
        self._fills.append((entry.api_key, fill))
        self._fills_by_key.setdefault(entry.api_key, []).append(fill)
        self._history.setdefault(order.symbol, []).append((now, price, quantity))
        entry.order = replace(
            order,
            status=OrderStatus.FILLED,
            filled_quantity=order.quantity,
            average_price=price,
            updated_at=now,
            fee=fee,
            fee_currency=market.quote,
        )
        self._notify(entry.api_key, fill)
        self._notify(entry.api_key, entry.order)

    def _finish(self, entry: _PaperOrder, status: OrderStatus) -> None:
        account = self._accounts[entry.api_key]
        account.move(entry.locked_asset, free=entry.locked_amount, locked=-entry.locked_amount)
        entry.locked_amount = Decimal(0)
        entry.order = replace(entry.order, status=status, updated_at=self.clock.now())
        self._notify(entry.api_key, entry.order)

    def _find(self, api_key: str, client_order_id: str, symbol: str) -> _PaperOrder:
        for entry in reversed(self._by_client_id.get((api_key, client_order_id), ())):
            if not symbol or entry.order.symbol == symbol:
                return entry
        raise errors.NotFound("Order does not exist.", reason="ORDER_NOT_FOUND")


class PaperExchange:
    """One connection to a :class:`PaperVenue`, for one account's credentials."""

    def __init__(self, venue: PaperVenue, credentials: Credentials | None) -> None:
        self._venue = venue
        self._credentials = credentials
        self.venue = venue.name
        self.closed = False
        self._queues: list[asyncio.Queue[_WatchItem]] = []

    async def _run(self, method: str, work: Callable[[], _T]) -> _T:
        venue = self._venue
        if self.closed:
            raise RuntimeError("connection closed")
        rule = venue._rule_for(method)
        if not venue.reachable:
            raise errors.Unavailable("the venue could not be reached", reason="VENUE_UNAVAILABLE")
        if rule is not None and not rule.execute:
            raise rule.error
        result = work()
        if rule is not None:
            raise rule.error
        return result

    async def load_markets(self) -> Mapping[str, Market]:
        """Return the venue's markets."""
        return await self._run("load_markets", lambda: dict(self._venue.markets))

    async def place_order(self, request: OrderRequest) -> Order:
        """Place ``request`` and match it against the mark price."""

        def work() -> Order:
            api_key, account = self._venue._account(self._credentials)
            return self._venue._place(api_key, account, request)

        return await self._run("place_order", work)

    async def fetch_order(
        self,
        client_order_id: str,
        symbol: str,
        hint: OrderHint | None = None,
    ) -> Order:
        """Look an order up by its client order id."""

        def work() -> Order:
            api_key, _ = self._venue._account(self._credentials)
            return self._venue._find(api_key, client_order_id, symbol).order

        return await self._run("fetch_order", work)

    async def cancel_order(
        self,
        client_order_id: str,
        symbol: str,
        hint: OrderHint | None = None,
    ) -> Order:
        """Cancel a resting order; a finished one is unknown to cancel, as on Binance."""

        def work() -> Order:
            api_key, _ = self._venue._account(self._credentials)
            entry = self._venue._find(api_key, client_order_id, symbol)
            if entry.order.status.is_terminal:
                raise errors.NotFound("Unknown order sent.", reason="ORDER_NOT_FOUND")
            self._venue._finish(entry, OrderStatus.CANCELED)
            return entry.order

        return await self._run("cancel_order", work)

    async def fetch_orders(
        self,
        symbols: Sequence[str],
        start: datetime,
        end: datetime,
    ) -> list[Order]:
        """Return the orders created in ``[start, end)``, oldest first."""

        def work() -> list[Order]:
            api_key, _ = self._venue._account(self._credentials)
            return [
                e.order
                for e in self._venue._orders_by_key.get(api_key, ())
                if (not symbols or e.order.symbol in symbols)
                and e.order.created_at is not None
                and start <= e.order.created_at < end
            ]

        return await self._run("fetch_orders", work)

    async def fetch_fills(self, symbols: Sequence[str], since: datetime | None) -> list[Fill]:
        """Return the fills at or after ``since``, oldest first."""

        def work() -> list[Fill]:
            api_key, _ = self._venue._account(self._credentials)
            found = [
                fill
                for fill in self._venue._fills_by_key.get(api_key, ())
                if (not symbols or fill.symbol in symbols)
                and (since is None or fill.trade_time >= since)
            ]
            return sorted(found, key=lambda f: (f.trade_time, int(f.trade_id)))

        return await self._run("fetch_fills", work)

    async def set_leverage(self, symbol: str, leverage: int, margin_mode: str) -> int:
        """The paper venue is spot only: there is no leverage to set."""
        raise errors.FailedPrecondition(
            "the paper venue has no leverage", reason="LEVERAGE_UNSUPPORTED"
        )

    async def fetch_positions(self) -> list[Position]:
        """The paper venue is spot only: it holds no positions."""
        return []

    async def fetch_leverages(self) -> list[MarketLeverage]:
        """The paper venue is spot only: it has no leverage."""
        return []

    async def fetch_balances(self) -> list[Balance]:
        """Return every balance of the account."""

        def work() -> list[Balance]:
            _, account = self._venue._account(self._credentials)
            return [
                Balance(asset, free, locked) for asset, (free, locked) in account.balances.items()
            ]

        return await self._run("fetch_balances", work)

    async def fetch_last_price(self, symbol: str) -> Decimal | None:
        """Return the mark price of ``symbol``."""

        def work() -> Decimal | None:
            self._venue._market(symbol)
            return self._venue.prices.get(symbol)

        return await self._run("fetch_last_price", work)

    async def fetch_key_permissions(self) -> KeyPermissions | None:
        """Return the key's permissions."""

        def work() -> KeyPermissions:
            _, account = self._venue._account(self._credentials)
            return account.permissions

        return await self._run("fetch_key_permissions", work)

    async def fetch_candles(
        self,
        symbol: str,
        timeframe: str,
        since: datetime | None,
        limit: int,
    ) -> list[Candle]:
        """Return candles built from the marks and fills of ``symbol``."""

        def work() -> list[Candle]:
            self._venue._market(symbol)
            seconds = TIMEFRAMES.get(timeframe)
            if seconds is None:
                raise errors.invalid(
                    "timeframe",
                    f"{timeframe} is not offered at {self.venue}"
                    f" (offered: {', '.join(TIMEFRAMES)})",
                )
            return candles_from(self._venue._history.get(symbol, []), seconds, since, limit)

        return await self._run("fetch_candles", work)

    async def watch(self, channel: WatchChannel) -> AsyncIterator[Order | Fill | StreamEvent]:
        """Stream the account's orders or fills: ``CONNECTED`` first, then each as it happens."""
        api_key, _ = self._venue._account(self._credentials)
        queue: asyncio.Queue[_WatchItem] = asyncio.Queue()
        watcher = (api_key, channel, queue)
        self._venue._watchers.append(watcher)
        self._venue._watchers_by_key.setdefault(api_key, []).append(watcher)
        self._queues.append(queue)
        try:
            yield StreamEvent(StreamState.CONNECTED, "subscribed", self._venue.clock.now())
            while not self.closed:
                item = await queue.get()
                if item is None:
                    return
                yield item
        finally:
            self._venue._watchers.remove(watcher)
            self._venue._watchers_by_key[api_key].remove(watcher)
            self._queues.remove(queue)

    async def close(self) -> None:
        """Close the connection."""
        if not self.closed:
            self.closed = True
            self._venue.open_connections -= 1
            for queue in self._queues:
                queue.put_nowait(None)


TIMEFRAMES = {"1m": 60, "5m": 300, "15m": 900, "1h": 3600, "4h": 14_400, "1d": 86_400}
"""The candle intervals a paper venue offers, in seconds."""


def candles_from(
    history: Sequence[tuple[datetime, Decimal, Decimal]],
    seconds: int,
    since: datetime | None,
    limit: int,
) -> list[Candle]:
    """Bucket ``(time, price, volume)`` points into candles of ``seconds``, oldest first."""
    buckets: dict[datetime, list[Decimal]] = {}
    for at, price, volume in history:
        epoch = int(at.timestamp()) // seconds * seconds
        opened = datetime.fromtimestamp(epoch, UTC)
        bucket = buckets.get(opened)
        if bucket is None:
            buckets[opened] = [price, price, price, price, volume]
        else:
            bucket[1] = max(bucket[1], price)
            bucket[2] = min(bucket[2], price)
            bucket[3] = price
            bucket[4] += volume
    candles = [
        Candle(opened, *values)
        for opened, values in sorted(buckets.items())
        if since is None or opened >= since
    ]
    return candles[:limit] if since is not None else candles[-limit:]


class PaperVenues:
    """The venues port over paper venues, one per venue name."""

    def __init__(self, *venues: PaperVenue) -> None:
        self._venues = {venue.name: venue for venue in venues}

    def profiles(self) -> list[VenueProfile]:
        """Return every paper venue's profile."""
        return [venue.profile for venue in self._venues.values()]

    def profile(self, venue: str) -> VenueProfile | None:
        """Return the profile of ``venue``."""
        found = self._venues.get(venue)
        return found.profile if found else None

    def connect(self, venue: str, credentials: Credentials | None) -> PaperExchange:
        """Open a connection to ``venue``."""
        return self._venues[venue].connect(credentials)

    async def public_markets(self, venue: str) -> Mapping[str, Market]:
        """Return the markets of ``venue``."""
        found = self._venues[venue]
        if not found.reachable:
            raise errors.Unavailable("the venue could not be reached", reason="VENUE_UNAVAILABLE")
        return dict(found.markets)

    async def close(self) -> None:
        """Nothing to close."""
