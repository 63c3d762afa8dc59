"""USDⓈ-M futures state of one emulated Binance: wallets, leverage, positions, orders, funding.

Rules (choices where Binance's documents are silent are marked *emulator*):

* Every account of the venue (same API key as spot) has a USDT futures wallet, empty until
  funded through the admin API (*emulator*: no spot-to-futures transfer endpoint). Leverage
  (default 20) and margin type (default CROSSED) are per symbol; the position mode (one-way or
  hedge, ``dualSidePosition``) is per account. Margin type and position mode cannot change
  while a position or an open order exists (-4048/-4047, -4068/-4067).
* Market orders walk the synthetic book of ``core.book`` around the mark price (IOC: the rest
  expires). Limit orders take what crosses their price, then rest (GTC), expire (IOC, or FOK
  unless fully fillable) or are rejected when post-only (GTX) would take (-5022). A resting
  limit fills in full at its own price, as maker, when the mark moves to or through it.
* Conditional orders (STOP_MARKET, TAKE_PROFIT_MARKET, STOP, TAKE_PROFIT) are algo orders
  (``/fapi/v1/algoOrder``), as on Binance since December 2025; ``/fapi/v1/order`` refuses them
  with -4120. A trigger already met is rejected (-2021). Trigger rule on the mark price:
  STOP/STOP_MARKET buy when mark >= trigger, sell when mark <= trigger; TAKE_PROFIT(_MARKET) the
  other way round. When triggered the algo order becomes TRIGGERED then FINISHED and places a
  regular MARKET (or LIMIT) order whose ``clientOrderId`` is the ``clientAlgoId`` (*emulator*).
* ``reduceOnly`` (one-way mode only; -1106 in hedge mode) may only shrink the position: a
  reduce-only order is cut to the position's size, rejected (-2022) when there is nothing to
  reduce; in hedge mode SELL LONG / BUY SHORT close and are likewise capped.
* Margin: an order that opens exposure needs ``notional / leverage`` plus the taker fee
  available (-2019 "Margin is insufficient."). Available = wallet - isolated wallets - cross
  initial margin - open-order initial margin + cross unrealised P&L. An isolated position's
  wallet is the initial margin put in when it opened (plus funding and fees of its fills).
* Fees: maker 0.02 %, taker 0.05 % of the notional, in USDT, taken from the wallet.
* Funding every 8 hours (00:00, 08:00, 16:00 UTC) on the venue clock, at each symbol's funding
  rate and mark price, applied lazily at the next call after the instant (``margin`` module).
* Liquidation: when a mark price reaches a position's liquidation price, the position is closed
  at that mark by an order with client id ``autoclose-<ms>`` and the wallet loses what it
  backed (*emulator*: no insurance fund, no ADL; a cross wallet floors at 0).
* A client order id is rejected (-4116) while an open order of the same account uses it.
"""

from __future__ import annotations

import copy
import enum
import itertools
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from exchange_sim.binance.errors import BinanceError, bad_request
from exchange_sim.binance.futures import margin
from exchange_sim.binance.futures.markets import Perpetual
from exchange_sim.core import book
from exchange_sim.core.accounts import AccountBook
from exchange_sim.core.clock import Clock
from exchange_sim.core.decimals import ZERO, fee_of, mul
from exchange_sim.core.errors import FilterFailure, FilterKind
from exchange_sim.core.orders import OrderStatus, Side

log = logging.getLogger(__name__)

MAKER_FEE = Decimal("0.0002")
TAKER_FEE = Decimal("0.0005")
SETTLE = "USDT"


class PositionSide(enum.Enum):
    """``BOTH`` in one-way mode; ``LONG`` / ``SHORT`` in hedge mode."""

    BOTH = "BOTH"
    LONG = "LONG"
    SHORT = "SHORT"


class MarginType(enum.Enum):
    """How a symbol's positions are margined."""

    CROSSED = "CROSSED"
    ISOLATED = "ISOLATED"


class FOrderType(enum.Enum):
    """Futures order types."""

    MARKET = "MARKET"
    LIMIT = "LIMIT"
    STOP = "STOP"
    STOP_MARKET = "STOP_MARKET"
    TAKE_PROFIT = "TAKE_PROFIT"
    TAKE_PROFIT_MARKET = "TAKE_PROFIT_MARKET"

    @property
    def conditional(self) -> bool:
        """Types that wait for a trigger (algo orders)."""
        return self not in (FOrderType.MARKET, FOrderType.LIMIT)

    @property
    def priced(self) -> bool:
        """Types that carry a limit price."""
        return self in (FOrderType.LIMIT, FOrderType.STOP, FOrderType.TAKE_PROFIT)


class FTimeInForce(enum.Enum):
    """Futures time in force (GTX = post only)."""

    GTC = "GTC"
    IOC = "IOC"
    FOK = "FOK"
    GTX = "GTX"


# A futures order's status: the same five as a spot order's (and the same open ones).
FStatus = OrderStatus


class AlgoStatus(enum.Enum):
    """Algo (conditional) order status."""

    NEW = "NEW"
    CANCELED = "CANCELED"
    TRIGGERED = "TRIGGERED"
    FINISHED = "FINISHED"
    EXPIRED = "EXPIRED"


@dataclass(frozen=True)
class FOrderRequest:
    """A parsed futures order (regular or algo)."""

    symbol: str
    side: Side
    type: FOrderType
    client_order_id: str
    quantity: Decimal | None
    price: Decimal | None = None
    trigger_price: Decimal | None = None
    time_in_force: FTimeInForce | None = None
    position_side: PositionSide = PositionSide.BOTH
    reduce_only: bool = False
    close_position: bool = False
    working_type: str = "CONTRACT_PRICE"


@dataclass
class FOrder:
    """A regular futures order."""

    order_id: int
    account_key: str
    symbol: str
    side: Side
    type: FOrderType
    position_side: PositionSide
    client_order_id: str
    quantity: Decimal
    price: Decimal | None
    time_in_force: FTimeInForce | None
    reduce_only: bool
    created_ms: int
    updated_ms: int
    stop_price: Decimal | None = None
    close_position: bool = False
    orig_type: FOrderType | None = None
    status: FStatus = FStatus.NEW
    executed_qty: Decimal = ZERO
    cum_quote: Decimal = ZERO
    realized: Decimal = ZERO
    fee: Decimal = ZERO
    working_type: str = "CONTRACT_PRICE"
    trade_ids: list[int] = field(default_factory=list)

    @property
    def is_open(self) -> bool:
        """NEW or PARTIALLY_FILLED."""
        return self.status.is_open

    @property
    def remaining(self) -> Decimal:
        """Quantity still to fill."""
        return self.quantity - self.executed_qty

    @property
    def avg_price(self) -> Decimal:
        """Average fill price (0 before the first fill)."""
        return self.cum_quote / self.executed_qty if self.executed_qty else ZERO

    def snapshot(self) -> FOrder:
        """A copy later changes do not touch."""
        clone = copy.copy(self)
        clone.trade_ids = list(self.trade_ids)
        return clone


@dataclass
class AlgoOrder:
    """A conditional order waiting for its trigger."""

    algo_id: int
    account_key: str
    client_algo_id: str
    request: FOrderRequest
    created_ms: int
    updated_ms: int
    status: AlgoStatus = AlgoStatus.NEW
    trigger_ms: int = 0
    actual_order_id: int | None = None

    @property
    def is_open(self) -> bool:
        """Still waiting for its trigger."""
        return self.status is AlgoStatus.NEW

    def snapshot(self) -> AlgoOrder:
        """A copy later changes do not touch."""
        return copy.copy(self)


@dataclass(frozen=True)
class FTrade:
    """One fill of a futures order."""

    trade_id: int
    order_id: int
    account_key: str
    symbol: str
    side: Side
    position_side: PositionSide
    price: Decimal
    qty: Decimal
    quote_qty: Decimal
    realized: Decimal
    fee: Decimal
    is_maker: bool
    time_ms: int


@dataclass
class Position:
    """One position (per symbol and position side)."""

    symbol: str
    side: PositionSide
    amount: Decimal = ZERO
    entry: Decimal = ZERO
    isolated_wallet: Decimal = ZERO
    updated_ms: int = 0


@dataclass
class SymbolSettings:
    """Leverage and margin type of one symbol for one account."""

    leverage: int
    margin_type: MarginType = MarginType.CROSSED


@dataclass(frozen=True)
class Income:
    """A wallet change: REALIZED_PNL, COMMISSION, FUNDING_FEE or TRANSFER."""

    tran_id: int
    symbol: str
    kind: str
    amount: Decimal
    time_ms: int


@dataclass
class Wallet:
    """The futures side of one account."""

    api_key: str
    balance: Decimal = ZERO
    dual_side: bool = False
    settings: dict[str, SymbolSettings] = field(default_factory=dict)
    positions: dict[tuple[str, PositionSide], Position] = field(default_factory=dict)
    incomes: list[Income] = field(default_factory=list)
    updated_ms: int = 0


@dataclass(frozen=True)
class PositionView:
    """A position valued at the current mark: what positionRisk and ACCOUNT_UPDATE report."""

    symbol: str
    side: PositionSide
    amount: Decimal
    entry: Decimal
    mark: Decimal
    unrealized: Decimal
    notional: Decimal
    leverage: int
    margin_type: MarginType
    isolated_wallet: Decimal
    initial_margin: Decimal
    maint_margin: Decimal
    open_order_margin: Decimal
    liquidation_price: Decimal
    updated_ms: int


@dataclass(frozen=True)
class AccountView:
    """Totals of a futures wallet (one asset: USDT)."""

    wallet_balance: Decimal
    cross_wallet_balance: Decimal
    unrealized: Decimal
    cross_unrealized: Decimal
    position_initial_margin: Decimal
    open_order_initial_margin: Decimal
    maint_margin: Decimal
    available: Decimal
    updated_ms: int

    @property
    def margin_balance(self) -> Decimal:
        """Wallet plus unrealised P&L."""
        return self.wallet_balance + self.unrealized

    @property
    def initial_margin(self) -> Decimal:
        """Positions' plus open orders' initial margin."""
        return self.position_initial_margin + self.open_order_initial_margin


@dataclass(frozen=True)
class OrderEvent:
    """A regular order changed (``execution``: NEW, TRADE, CANCELED, EXPIRED)."""

    execution: str
    order: FOrder
    trade: FTrade | None
    time_ms: int


@dataclass(frozen=True)
class AlgoEvent:
    """An algo order changed."""

    algo: AlgoOrder
    time_ms: int


@dataclass(frozen=True)
class AccountEvent:
    """A wallet or position changed (``reason``: ORDER, FUNDING_FEE, DEPOSIT, ...)."""

    account_key: str
    reason: str
    wallet_balance: Decimal
    cross_wallet_balance: Decimal
    balance_change: Decimal
    positions: tuple[PositionView, ...]
    time_ms: int


FuturesEvent = OrderEvent | AlgoEvent | AccountEvent
Listener = Callable[[FuturesEvent], None]


def margin_insufficient() -> BinanceError:
    """-2019 (ccxt at an emulator URL: ExchangeError; at fapi.binance.com: InsufficientFunds)."""
    return bad_request(-2019, "Margin is insufficient.")


def reduce_only_rejected() -> BinanceError:
    """-2022."""
    return bad_request(-2022, "ReduceOnly Order is rejected.")


class FuturesEngine:
    """All USDⓈ-M futures state of one venue. Every public method is synchronous and atomic."""

    def __init__(
        self, perpetuals: Iterable[Perpetual], clock: Clock, accounts: AccountBook
    ) -> None:
        self.clock = clock
        self.accounts = accounts
        self.perps: dict[str, Perpetual] = {p.id: p for p in perpetuals}
        self._marks = {p.id: p.market.initial_price for p in self.perps.values()}
        self._funding_rates = {p.id: p.funding_rate for p in self.perps.values()}
        self._funded_until = clock.now_ms()
        self._wallets: dict[str, Wallet] = {}
        self._orders: dict[int, FOrder] = {}
        self._orders_by_account: dict[str, list[FOrder]] = {}
        self._algos: dict[int, AlgoOrder] = {}
        self._trades: dict[str, list[FTrade]] = {}
        self._order_ids = itertools.count(8_000_000_001)
        self._algo_ids = itertools.count(3_000_000_001)
        self._trade_ids = itertools.count(500_000_001)
        self._income_ids = itertools.count(900_000_001)
        self._listeners: list[Listener] = []
        self._account_reasons: dict[str, tuple[str, Decimal]] = {}

    # ------------------------------------------------------------------ markets and prices

    def perp(self, market_id: str) -> Perpetual:
        """The perpetual with venue id ``market_id`` (-1121 when unknown)."""
        perp = self.perps.get(market_id)
        if perp is None:
            raise bad_request(-1121, "Invalid symbol.")
        return perp

    def find(self, name: str) -> Perpetual | None:
        """A perpetual by venue id (``BTCUSDT``) or unified symbol (``BTC/USDT:USDT``)."""
        upper = name.upper()
        for perp in self.perps.values():
            if upper in (perp.id, perp.symbol.upper()):
                return perp
        return None

    def mark(self, market_id: str) -> Decimal:
        """The mark price."""
        return self._marks[self.perp(market_id).id]

    def funding_rate(self, market_id: str) -> Decimal:
        """The funding rate applied at the next funding instant."""
        return self._funding_rates[self.perp(market_id).id]

    def set_funding_rate(self, market_id: str, rate: Decimal) -> None:
        """Change a symbol's funding rate."""
        self.tick()
        self._funding_rates[self.perp(market_id).id] = rate

    def set_mark_price(self, market_id: str, price: Decimal) -> list[FOrder]:
        """Move the mark: trigger algo orders, fill crossed limits, liquidate; returns the
        orders that filled or were placed by a trigger or a liquidation."""
        if price <= ZERO:
            raise ValueError("price: must be positive")
        perp = self.perp(market_id)
        self.tick()
        self._marks[perp.id] = price
        touched: list[FOrder] = []
        for algo in [a for a in self._algos.values() if a.is_open and a.request.symbol == perp.id]:
            if _trigger_met(
                algo.request.type, algo.request.side, algo.request.trigger_price, price
            ):
                order = self._trigger(algo, perp)
                if order is not None:
                    touched.append(order)
        for order in self._open_of_symbol(perp.id):
            if order.type is FOrderType.LIMIT and _rest_crossed(order, price):
                self._fill(order, perp, order.price or price, order.remaining, is_maker=True)
                touched.append(order.snapshot())
        touched += self._liquidate(perp)
        self._flush()
        return touched

    # ------------------------------------------------------------------ funding

    def tick(self) -> None:
        """Apply every funding instant that has passed since the last call."""
        now = self.clock.now_ms()
        for instant in margin.funding_times(self._funded_until, now):
            self._fund(instant)
        self._funded_until = max(self._funded_until, now)

    def settle_funding_now(self) -> None:
        """Apply one funding event now, off schedule (admin: tests that cannot wait 8 hours)."""
        self.tick()
        self._fund(self.clock.now_ms())

    def _fund(self, instant: int) -> None:
        for wallet in self._wallets.values():
            for pos in wallet.positions.values():
                if pos.amount == ZERO:
                    continue
                fee = margin.funding_fee(
                    pos.amount, self._marks[pos.symbol], self._funding_rates[pos.symbol]
                ).quantize(Decimal("0.00000001"))
                if fee == ZERO:
                    continue
                self._book_income(wallet, pos.symbol, "FUNDING_FEE", fee, instant)
                if self._settings(wallet, pos.symbol).margin_type is MarginType.ISOLATED:
                    pos.isolated_wallet += fee
                self._note(wallet.api_key, "FUNDING_FEE", fee)
        self._flush()

    # ------------------------------------------------------------------ accounts

    def wallet(self, api_key: str) -> Wallet:
        """The futures wallet of an account (created empty on first use)."""
        self.accounts.get(api_key)
        wallet = self._wallets.get(api_key)
        if wallet is None:
            wallet = Wallet(api_key, updated_ms=self.clock.now_ms())
            self._wallets[api_key] = wallet
            self._orders_by_account[api_key] = []
            self._trades[api_key] = []
        return wallet

    def deposit(self, api_key: str, amount: Decimal) -> Decimal:
        """Credit (or, negative, debit) the USDT futures wallet; returns the new balance."""
        self.tick()
        wallet = self.wallet(api_key)
        if wallet.balance + amount < ZERO:
            raise ValueError("amount: the wallet would go below zero")
        self._book_income(wallet, "", "TRANSFER", amount, self.clock.now_ms())
        self._note(api_key, "DEPOSIT" if amount >= ZERO else "WITHDRAW", amount)
        self._flush()
        return wallet.balance

    def _settings(self, wallet: Wallet, market_id: str) -> SymbolSettings:
        settings = wallet.settings.get(market_id)
        if settings is None:
            settings = SymbolSettings(self.perp(market_id).default_leverage)
            wallet.settings[market_id] = settings
        return settings

    def settings(self, api_key: str, market_id: str) -> SymbolSettings:
        """Leverage and margin type of a symbol (a copy)."""
        return copy.copy(self._settings(self.wallet(api_key), self.perp(market_id).id))

    def set_leverage(self, api_key: str, market_id: str, leverage: int) -> SymbolSettings:
        """Change a symbol's initial leverage (-4028 outside 1..max)."""
        self.tick()
        perp = self.perp(market_id)
        wallet = self.wallet(api_key)
        if not 1 <= leverage <= perp.max_leverage:
            raise bad_request(-4028, f"Leverage {leverage} is not valid")
        settings = self._settings(wallet, perp.id)
        old = settings.leverage
        settings.leverage = leverage
        if self._available(wallet) < ZERO:
            settings.leverage = old
            raise bad_request(-2027, "Exceeded the maximum allowable position at current leverage.")
        return copy.copy(settings)

    def set_margin_type(self, api_key: str, market_id: str, kind: MarginType) -> None:
        """Switch CROSSED/ISOLATED (-4046 unchanged, -4048 position, -4047 open orders)."""
        self.tick()
        perp = self.perp(market_id)
        wallet = self.wallet(api_key)
        settings = self._settings(wallet, perp.id)
        if settings.margin_type is kind:  # ccxt: MarginModeAlreadySet (by the message)
            raise bad_request(-4046, "No need to change margin type.")
        if any(p.amount != ZERO for (s, _), p in wallet.positions.items() if s == perp.id):
            raise bad_request(-4048, "Margin type cannot be changed if there exists position.")
        if self._has_open(api_key, perp.id):
            raise bad_request(-4047, "Margin type cannot be changed if there exists open orders.")
        settings.margin_type = kind

    def set_dual_side(self, api_key: str, dual: bool) -> None:
        """Switch one-way/hedge mode (-4059 unchanged, -4068 positions, -4067 open orders)."""
        self.tick()
        wallet = self.wallet(api_key)
        if wallet.dual_side == dual:
            raise bad_request(-4059, "No need to change position side.")
        if any(p.amount != ZERO for p in wallet.positions.values()):
            raise bad_request(
                -4068, "The position side cannot be changed if there exists position."
            )
        if self._has_open(api_key, None):
            raise bad_request(-4067, "Position side cannot be changed if there exists open orders.")
        wallet.dual_side = dual

    def _has_open(self, api_key: str, market_id: str | None) -> bool:
        orders = [o for o in self._orders_by_account.get(api_key, []) if o.is_open]
        algos = [a for a in self._algos.values() if a.account_key == api_key and a.is_open]
        return any(market_id in (None, o.symbol) for o in orders) or any(
            market_id in (None, a.request.symbol) for a in algos
        )

    # ------------------------------------------------------------------ valuation

    def _position(self, wallet: Wallet, market_id: str, side: PositionSide) -> Position:
        key = (market_id, side)
        pos = wallet.positions.get(key)
        if pos is None:
            pos = Position(market_id, side, updated_ms=self.clock.now_ms())
            wallet.positions[key] = pos
        return pos

    def _open_order_margin(self, wallet: Wallet, market_id: str | None = None) -> Decimal:
        total = ZERO
        for order in self._orders_by_account.get(wallet.api_key, []):
            if (
                order.is_open
                and not order.reduce_only
                and market_id in (None, order.symbol)
                and not self._closes(wallet, order.symbol, order.side, order.position_side)
            ):
                lev = self._settings(wallet, order.symbol).leverage
                total += margin.initial_margin(
                    order.remaining, order.price or self._marks[order.symbol], lev
                )
        return total

    def _view(self, wallet: Wallet, pos: Position) -> PositionView:
        perp = self.perps[pos.symbol]
        mark = self._marks[pos.symbol]
        settings = self._settings(wallet, pos.symbol)
        upnl = margin.unrealized_pnl(pos.amount, pos.entry, mark)
        isolated = settings.margin_type is MarginType.ISOLATED
        if isolated:
            liq = margin.liquidation_price(
                pos.amount, pos.entry, pos.isolated_wallet, perp.maint_margin_rate
            )
        else:
            others = [
                p
                for p in wallet.positions.values()
                if p is not pos
                and p.amount != ZERO
                and self._settings(wallet, p.symbol).margin_type is MarginType.CROSSED
            ]
            liq = margin.liquidation_price(
                pos.amount,
                pos.entry,
                self._cross_wallet(wallet),
                perp.maint_margin_rate,
                other_maintenance=sum(
                    (
                        margin.maintenance_margin(
                            p.amount, self._marks[p.symbol], self.perps[p.symbol].maint_margin_rate
                        )
                        for p in others
                    ),
                    ZERO,
                ),
                other_upnl=sum(
                    (
                        margin.unrealized_pnl(p.amount, p.entry, self._marks[p.symbol])
                        for p in others
                    ),
                    ZERO,
                ),
            )
        return PositionView(
            symbol=pos.symbol,
            side=pos.side,
            amount=pos.amount,
            entry=pos.entry,
            mark=mark,
            unrealized=upnl,
            notional=margin.notional(pos.amount, mark),
            leverage=settings.leverage,
            margin_type=settings.margin_type,
            isolated_wallet=pos.isolated_wallet if isolated else ZERO,
            initial_margin=margin.initial_margin(pos.amount, mark, settings.leverage),
            maint_margin=margin.maintenance_margin(pos.amount, mark, perp.maint_margin_rate),
            open_order_margin=self._open_order_margin(wallet, pos.symbol),
            liquidation_price=liq,
            updated_ms=pos.updated_ms,
        )

    def _cross_wallet(self, wallet: Wallet) -> Decimal:
        return wallet.balance - sum((p.isolated_wallet for p in wallet.positions.values()), ZERO)

    def _available(self, wallet: Wallet) -> Decimal:
        return self._account_view(wallet).available

    def _account_view(self, wallet: Wallet) -> AccountView:
        views = [self._view(wallet, p) for p in wallet.positions.values() if p.amount != ZERO]
        cross = [v for v in views if v.margin_type is MarginType.CROSSED]
        cross_upnl = sum((v.unrealized for v in cross), ZERO)
        cross_im = sum((v.initial_margin for v in cross), ZERO)
        open_im = self._open_order_margin(wallet)
        cross_wallet = self._cross_wallet(wallet)
        return AccountView(
            wallet_balance=wallet.balance,
            cross_wallet_balance=cross_wallet,
            unrealized=sum((v.unrealized for v in views), ZERO),
            cross_unrealized=cross_upnl,
            position_initial_margin=sum((v.initial_margin for v in views), ZERO),
            open_order_initial_margin=open_im,
            maint_margin=sum((v.maint_margin for v in views), ZERO),
            available=cross_wallet + cross_upnl - cross_im - open_im,
            updated_ms=wallet.updated_ms,
        )

    def empty_view(self, api_key: str, market_id: str, side: PositionSide) -> PositionView:
        """A flat position of ``side`` (what positionRisk v2 lists for untraded symbols)."""
        return self._view(self.wallet(api_key), Position(self.perp(market_id).id, side))

    def positions(self, api_key: str, market_id: str | None = None) -> list[PositionView]:
        """Every position of the account (zero ones included for symbols it has traded)."""
        self.tick()
        wallet = self.wallet(api_key)
        return [
            self._view(wallet, p)
            for p in wallet.positions.values()
            if market_id in (None, p.symbol)
        ]

    def account(self, api_key: str) -> AccountView:
        """The wallet's totals."""
        self.tick()
        return self._account_view(self.wallet(api_key))

    def incomes(self, api_key: str) -> list[Income]:
        """Every wallet change, oldest first."""
        self.tick()
        return list(self.wallet(api_key).incomes)

    # ------------------------------------------------------------------ orders

    def _check(self, wallet: Wallet, req: FOrderRequest) -> Perpetual:
        perp = self.perp(req.symbol)
        if not self.accounts.get(wallet.api_key).can_trade:
            raise BinanceError(401, -2015, "Invalid API-key, IP, or permissions for action.")
        if wallet.dual_side and req.position_side is PositionSide.BOTH:
            raise bad_request(-4061, "Order's position side does not match user's setting.")
        if not wallet.dual_side and req.position_side is not PositionSide.BOTH:
            raise bad_request(-4061, "Order's position side does not match user's setting.")
        if wallet.dual_side and req.reduce_only:
            raise bad_request(-1106, "Parameter 'reduceonly' sent when not required.")
        market = perp.market
        try:
            for price in (req.price, req.trigger_price):
                if price is not None:
                    market.check_price(price)
            if req.quantity is not None:
                market.check_quantity(req.quantity)
                if not req.type.priced:
                    market.check_market_quantity(req.quantity)
        except FilterFailure as exc:
            raise _filter_error(exc.kind) from None
        if req.quantity is not None and not (req.reduce_only or req.close_position):
            reference = req.price or req.trigger_price or self._marks[perp.id]
            if mul(reference, req.quantity) < market.min_notional:
                raise bad_request(
                    -4164,
                    f"Order's notional must be no smaller than {market.min_notional} "
                    "(unless you choose reduce only).",
                )
        return perp

    def _check_duplicate(self, api_key: str, client_id: str) -> None:
        if any(
            o.is_open and o.client_order_id == client_id
            for o in self._orders_by_account.get(api_key, [])
        ) or any(
            a.is_open and a.account_key == api_key and a.client_algo_id == client_id
            for a in self._algos.values()
        ):
            raise bad_request(-4116, "ClientOrderId is duplicated.")

    def _closes(
        self, wallet: Wallet, market_id: str, side: Side, position_side: PositionSide
    ) -> bool:
        """Whether an order on this side only reduces (hedge mode: SELL LONG, BUY SHORT)."""
        if position_side is PositionSide.LONG:
            return side is Side.SELL
        if position_side is PositionSide.SHORT:
            return side is Side.BUY
        return False

    def _reducible(self, wallet: Wallet, market_id: str, side: Side, ps: PositionSide) -> Decimal:
        """How much an order on ``side`` can reduce (0: nothing to reduce)."""
        pos = wallet.positions.get((market_id, ps))
        amount = pos.amount if pos else ZERO
        if ps is PositionSide.BOTH:
            if (side is Side.SELL and amount > ZERO) or (side is Side.BUY and amount < ZERO):
                return abs(amount)
            return ZERO
        return abs(amount) if self._closes(wallet, market_id, side, ps) else ZERO

    def _needs_margin(
        self, wallet: Wallet, perp: Perpetual, req: FOrderRequest, qty: Decimal, price: Decimal
    ) -> None:
        """Raise -2019 unless the part of the order that opens exposure is covered."""
        if req.reduce_only or self._closes(wallet, perp.id, req.side, req.position_side):
            return
        opening = qty - self._reducible(wallet, perp.id, req.side, req.position_side)
        if opening <= ZERO:
            return
        lev = self._settings(wallet, perp.id).leverage
        needed = margin.initial_margin(opening, price, lev) + fee_of(mul(opening, price), TAKER_FEE)
        if needed > self._available(wallet):
            raise margin_insufficient()

    def place_order(self, api_key: str, req: FOrderRequest) -> FOrder:
        """Accept and execute a MARKET or LIMIT order; returns its state afterwards."""
        self.tick()
        wallet = self.wallet(api_key)
        if req.type.conditional:
            raise bad_request(
                -4120,
                "Order type not supported for this endpoint. Please use the Algo Order API "
                "endpoints instead.",
            )
        perp = self._check(wallet, req)
        self._check_duplicate(api_key, req.client_order_id)
        order = self._accept(wallet, perp, req)
        self._flush()
        return order.snapshot()

    def _accept(
        self,
        wallet: Wallet,
        perp: Perpetual,
        req: FOrderRequest,
        *,
        stop_price: Decimal | None = None,
        orig_type: FOrderType | None = None,
    ) -> FOrder:
        mark = self._marks[perp.id]
        qty = req.quantity or ZERO
        closing = (
            req.reduce_only
            or req.close_position
            or self._closes(wallet, perp.id, req.side, req.position_side)
        )
        if closing:
            reducible = self._reducible(wallet, perp.id, req.side, req.position_side)
            if reducible == ZERO:
                raise reduce_only_rejected()
            qty = reducible if req.close_position else min(qty, reducible)
        levels = book.opposite_side(perp.market, mark, req.side)
        if req.type is FOrderType.LIMIT:
            assert req.price is not None
            if req.time_in_force is FTimeInForce.GTX and book.crosses(
                req.side, req.price, levels[0].price
            ):
                raise bad_request(
                    -5022,
                    "Due to the order could not be executed as maker, the Post Only order will "
                    "be rejected.",
                )
            estimate = req.price
        else:
            plan = book.plan_quantity(levels, req.side, qty, None)
            estimate = book.total_quote(plan) / book.total_qty(plan) if plan else mark
        self._needs_margin(wallet, perp, req, qty, estimate)
        now = self.clock.now_ms()
        order = FOrder(
            order_id=next(self._order_ids),
            account_key=wallet.api_key,
            symbol=perp.id,
            side=req.side,
            type=req.type,
            position_side=req.position_side,
            client_order_id=req.client_order_id,
            quantity=qty,
            price=req.price,
            time_in_force=req.time_in_force,
            reduce_only=req.reduce_only or req.close_position,
            close_position=req.close_position,
            created_ms=now,
            updated_ms=now,
            stop_price=stop_price,
            orig_type=orig_type or req.type,
            working_type=req.working_type,
        )
        self._orders[order.order_id] = order
        self._orders_by_account[wallet.api_key].append(order)
        self._emit(OrderEvent("NEW", order.snapshot(), None, now))
        limit = req.price if req.type is FOrderType.LIMIT else None
        plan = book.plan_quantity(levels, req.side, qty, limit)
        if req.time_in_force is FTimeInForce.FOK and book.total_qty(plan) < qty:
            self._end(order, FStatus.EXPIRED)
            return order
        for fill in plan:
            self._fill(order, perp, fill.price, fill.qty, is_maker=False)
        if (
            order.is_open
            and req.time_in_force is not FTimeInForce.GTX
            and (req.type is FOrderType.MARKET or req.time_in_force is not FTimeInForce.GTC)
        ):
            self._end(order, FStatus.EXPIRED)
        return order

    def _fill(
        self, order: FOrder, perp: Perpetual, price: Decimal, qty: Decimal, *, is_maker: bool
    ) -> None:
        wallet = self.wallet(order.account_key)
        if order.reduce_only or self._closes(wallet, perp.id, order.side, order.position_side):
            qty = min(qty, self._reducible(wallet, perp.id, order.side, order.position_side))
        if qty <= ZERO:
            self._end(order, FStatus.EXPIRED)
            return
        now = self.clock.now_ms()
        settings = self._settings(wallet, perp.id)
        pos = self._position(wallet, perp.id, order.position_side)
        signed = qty if order.side is Side.BUY else -qty
        before = pos.amount
        result = margin.apply_fill(pos.amount, pos.entry, signed, price)
        quote = mul(price, qty)
        fee = fee_of(quote, MAKER_FEE if is_maker else TAKER_FEE)
        if settings.margin_type is MarginType.ISOLATED:
            pos.isolated_wallet = _isolated_after(
                pos.isolated_wallet, before, result.amount, price, settings.leverage
            )
        pos.amount, pos.entry, pos.updated_ms = result.amount, result.entry, now
        if result.realized:
            self._book_income(wallet, perp.id, "REALIZED_PNL", result.realized, now)
        self._book_income(wallet, perp.id, "COMMISSION", -fee, now)
        self._note(wallet.api_key, "ORDER", result.realized - fee)
        order.executed_qty += qty
        order.cum_quote += quote
        order.realized += result.realized
        order.fee += fee
        order.updated_ms = now
        order.status = (
            FStatus.FILLED if order.executed_qty >= order.quantity else (FStatus.PARTIALLY_FILLED)
        )
        trade = FTrade(
            trade_id=next(self._trade_ids),
            order_id=order.order_id,
            account_key=order.account_key,
            symbol=perp.id,
            side=order.side,
            position_side=order.position_side,
            price=price,
            qty=qty,
            quote_qty=quote,
            realized=result.realized,
            fee=fee,
            is_maker=is_maker,
            time_ms=now,
        )
        order.trade_ids.append(trade.trade_id)
        self._trades[order.account_key].append(trade)
        self._emit(OrderEvent("TRADE", order.snapshot(), trade, now))

    def _end(self, order: FOrder, status: FStatus) -> None:
        order.status = status
        order.updated_ms = self.clock.now_ms()
        self._emit(OrderEvent(status.value, order.snapshot(), None, order.updated_ms))

    def _find(
        self, api_key: str, market_id: str, order_id: int | None, client_id: str | None
    ) -> FOrder:
        perp = self.perp(market_id)
        self.wallet(api_key)
        if order_id is None and client_id is None:
            raise bad_request(
                -1102,
                "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!",
            )
        if order_id is not None:
            order = self._orders.get(order_id)
            if (
                order
                and order.account_key == api_key
                and order.symbol == perp.id
                and (client_id is None or order.client_order_id == client_id)
            ):
                return order
        else:
            for order in reversed(self._orders_by_account[api_key]):
                if order.symbol == perp.id and order.client_order_id == client_id:
                    return order
        raise bad_request(-2013, "Order does not exist.")

    def get_order(
        self, api_key: str, market_id: str, order_id: int | None, client_id: str | None
    ) -> FOrder:
        """One order by id or client id (-2013)."""
        self.tick()
        return self._find(api_key, market_id, order_id, client_id).snapshot()

    def cancel_order(
        self, api_key: str, market_id: str, order_id: int | None, client_id: str | None
    ) -> FOrder:
        """Cancel an open order (-2011 when unknown or ended)."""
        self.tick()
        try:
            order = self._find(api_key, market_id, order_id, client_id)
        except BinanceError:
            raise bad_request(-2011, "Unknown order sent.") from None
        if not order.is_open:
            raise bad_request(-2011, "Unknown order sent.")
        self._end(order, FStatus.CANCELED)
        self._flush()
        return order.snapshot()

    def orders(self, api_key: str, market_id: str | None = None) -> list[FOrder]:
        """Every order of the account, oldest first."""
        self.tick()
        self.wallet(api_key)
        return [
            o.snapshot() for o in self._orders_by_account[api_key] if market_id in (None, o.symbol)
        ]

    def trades(self, api_key: str, market_id: str | None = None) -> list[FTrade]:
        """Every fill of the account, by id."""
        self.tick()
        self.wallet(api_key)
        return [t for t in self._trades[api_key] if market_id in (None, t.symbol)]

    def _open_of_symbol(self, market_id: str) -> list[FOrder]:
        return [o for o in self._orders.values() if o.is_open and o.symbol == market_id]

    # ------------------------------------------------------------------ algo orders

    def place_algo(self, api_key: str, req: FOrderRequest) -> AlgoOrder:
        """Accept a conditional order (-2021 when its trigger is already met)."""
        self.tick()
        wallet = self.wallet(api_key)
        if not req.type.conditional:
            raise bad_request(-1116, "Invalid orderType.")
        perp = self._check(wallet, req)
        self._check_duplicate(api_key, req.client_order_id)
        if _trigger_met(req.type, req.side, req.trigger_price, self._marks[perp.id]):
            raise bad_request(-2021, "Order would immediately trigger.")
        if (req.reduce_only or req.close_position) and self._reducible(
            wallet, perp.id, req.side, req.position_side
        ) == ZERO:
            raise reduce_only_rejected()
        now = self.clock.now_ms()
        algo = AlgoOrder(next(self._algo_ids), api_key, req.client_order_id, req, now, now)
        self._algos[algo.algo_id] = algo
        self._emit(AlgoEvent(algo.snapshot(), now))
        return algo.snapshot()

    def _trigger(self, algo: AlgoOrder, perp: Perpetual) -> FOrder | None:
        now = self.clock.now_ms()
        algo.status, algo.trigger_ms, algo.updated_ms = AlgoStatus.TRIGGERED, now, now
        wallet = self.wallet(algo.account_key)
        req = algo.request
        kind = FOrderType.LIMIT if req.type.priced else FOrderType.MARKET
        child = FOrderRequest(
            symbol=req.symbol,
            side=req.side,
            type=kind,
            client_order_id=algo.client_algo_id,
            quantity=req.quantity,
            price=req.price if kind is FOrderType.LIMIT else None,
            time_in_force=(req.time_in_force or FTimeInForce.GTC)
            if kind is FOrderType.LIMIT
            else None,
            position_side=req.position_side,
            reduce_only=req.reduce_only,
            close_position=req.close_position,
            working_type=req.working_type,
        )
        try:
            order: FOrder | None = self._accept(
                wallet, perp, child, stop_price=req.trigger_price, orig_type=req.type
            )
        except BinanceError as exc:
            log.info("algo order %s expired at its trigger: %s", algo.algo_id, exc.msg)
            algo.status = AlgoStatus.EXPIRED
            order = None
        else:
            assert order is not None
            algo.actual_order_id = order.order_id
            self._emit(AlgoEvent(algo.snapshot(), now))
            algo.status = AlgoStatus.FINISHED
        self._emit(AlgoEvent(algo.snapshot(), now))
        return order.snapshot() if order else None

    def _find_algo(
        self, api_key: str, algo_id: int | None, client_algo_id: str | None
    ) -> AlgoOrder:
        self.wallet(api_key)
        if algo_id is None and client_algo_id is None:
            raise bad_request(
                -1102, "Param 'clientAlgoId' or 'algoId' must be sent, but both were empty/null!"
            )
        for algo in reversed(list(self._algos.values())):
            if algo.account_key == api_key and (
                algo.algo_id == algo_id
                if algo_id is not None
                else algo.client_algo_id == client_algo_id
            ):
                return algo
        raise bad_request(-2013, "Order does not exist.")

    def get_algo(self, api_key: str, algo_id: int | None, client_algo_id: str | None) -> AlgoOrder:
        """One algo order (-2013)."""
        self.tick()
        return self._find_algo(api_key, algo_id, client_algo_id).snapshot()

    def cancel_algo(
        self, api_key: str, algo_id: int | None, client_algo_id: str | None
    ) -> AlgoOrder:
        """Cancel a waiting algo order (-2011)."""
        self.tick()
        try:
            algo = self._find_algo(api_key, algo_id, client_algo_id)
        except BinanceError:
            raise bad_request(-2011, "Unknown order sent.") from None
        if not algo.is_open:
            raise bad_request(-2011, "Unknown order sent.")
        algo.status, algo.updated_ms = AlgoStatus.CANCELED, self.clock.now_ms()
        self._emit(AlgoEvent(algo.snapshot(), algo.updated_ms))
        return algo.snapshot()

    def algos(self, api_key: str, market_id: str | None = None) -> list[AlgoOrder]:
        """Every algo order of the account, oldest first."""
        self.tick()
        self.wallet(api_key)
        return [
            a.snapshot()
            for a in self._algos.values()
            if a.account_key == api_key and market_id in (None, a.request.symbol)
        ]

    # ------------------------------------------------------------------ liquidation

    def _liquidate(self, perp: Perpetual) -> list[FOrder]:
        done: list[FOrder] = []
        mark = self._marks[perp.id]
        for wallet in self._wallets.values():
            for pos in list(wallet.positions.values()):
                if pos.symbol != perp.id or pos.amount == ZERO:
                    continue
                view = self._view(wallet, pos)
                liq = view.liquidation_price
                if liq == ZERO or (mark > liq if pos.amount > ZERO else mark < liq):
                    continue
                for order in [o for o in self._orders_by_account[wallet.api_key] if o.is_open]:
                    if order.symbol == perp.id:
                        self._end(order, FStatus.CANCELED)
                now = self.clock.now_ms()
                side = Side.SELL if pos.amount > ZERO else Side.BUY
                qty = abs(pos.amount)
                order = FOrder(
                    order_id=next(self._order_ids),
                    account_key=wallet.api_key,
                    symbol=perp.id,
                    side=side,
                    type=FOrderType.LIMIT,
                    position_side=pos.side,
                    client_order_id=f"autoclose-{now}",
                    quantity=qty,
                    price=mark,
                    time_in_force=FTimeInForce.IOC,
                    reduce_only=True,
                    created_ms=now,
                    updated_ms=now,
                    orig_type=FOrderType.LIMIT,
                )
                self._orders[order.order_id] = order
                self._orders_by_account[wallet.api_key].append(order)
                self._emit(OrderEvent("NEW", order.snapshot(), None, now))
                self._fill(order, perp, mark, qty, is_maker=False)
                if wallet.balance < ZERO:  # no insurance fund: the wallet floors at zero
                    self._book_income(wallet, perp.id, "INSURANCE_CLEAR", -wallet.balance, now)
                done.append(order.snapshot())
        return done

    # ------------------------------------------------------------------ events

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener`` synchronously with every event; returns the unsubscribe function."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def _book_income(
        self, wallet: Wallet, symbol: str, kind: str, amount: Decimal, at: int
    ) -> None:
        wallet.balance += amount
        wallet.updated_ms = at
        wallet.incomes.append(Income(next(self._income_ids), symbol, kind, amount, at))

    def _note(self, api_key: str, reason: str, change: Decimal) -> None:
        old = self._account_reasons.get(api_key)
        total = change + (old[1] if old else ZERO)
        self._account_reasons[api_key] = (old[0] if old else reason, total)

    def _flush(self) -> None:
        pending, self._account_reasons = self._account_reasons, {}
        now = self.clock.now_ms()
        for api_key, (reason, change) in pending.items():
            wallet = self._wallets[api_key]
            views = tuple(self._view(wallet, p) for p in wallet.positions.values())
            self._emit(
                AccountEvent(
                    api_key,
                    reason,
                    wallet.balance,
                    self._cross_wallet(wallet),
                    change,
                    views,
                    now,
                )
            )

    def _emit(self, event: FuturesEvent) -> None:
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:  # a broken listener must never corrupt the engine
                log.exception("futures listener failed")


def _isolated_after(
    wallet: Decimal, before: Decimal, after: Decimal, price: Decimal, leverage: int
) -> Decimal:
    """An isolated position's wallet after a fill moved it from ``before`` to ``after``.

    New exposure brings its initial margin at the fill price; a reduction releases its share of
    the wallet to the cross wallet; a flip starts over. Realised P&L and fees go to the wallet
    balance (the cross side), as does whatever a closed position leaves.
    """
    if after == ZERO:
        return ZERO
    if before != ZERO and (after > ZERO) != (before > ZERO):
        return margin.initial_margin(after, price, leverage)
    if abs(after) >= abs(before):
        return wallet + margin.initial_margin(abs(after) - abs(before), price, leverage)
    return wallet * abs(after) / abs(before)


def _filter_error(kind: FilterKind) -> BinanceError:
    if kind is FilterKind.PRICE:
        return bad_request(-4014, "Price not increased by tick size.")
    if kind is FilterKind.MARKET_QUANTITY:
        return bad_request(-1013, "Filter failure: MARKET_LOT_SIZE")
    return bad_request(-1013, "Filter failure: LOT_SIZE")


def _trigger_met(kind: FOrderType, side: Side, trigger: Decimal | None, mark: Decimal) -> bool:
    if trigger is None:
        return False
    stop = kind in (FOrderType.STOP, FOrderType.STOP_MARKET)
    rising = (side is Side.BUY) == stop  # stop buys and take-profit sells trigger on a rise
    return mark >= trigger if rising else mark <= trigger


def _rest_crossed(order: FOrder, mark: Decimal) -> bool:
    assert order.price is not None
    return mark <= order.price if order.side is Side.BUY else mark >= order.price
