"""Pure value types of the engine: configurations, signals, intents, venue answers.

Everything is a frozen dataclass over ``Decimal`` and aware UTC ``datetime``; nothing does
I/O. The codec turns these into protos and the store into rows.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from meshkit.vocabulary import OrderStatus, OrderType, Side, TimeInForce


def is_derivative(symbol: str) -> bool:
    """Return whether a unified symbol names a derivatives market: ``BTC/USDT:USDT`` does."""
    return ":" in symbol


class CopyStatus(enum.StrEnum):
    """The state of a copy configuration."""

    ACTIVE = "ACTIVE"
    PAUSED = "PAUSED"
    REDUCING = "REDUCING"
    HALTED = "HALTED"
    STOPPED = "STOPPED"

    @property
    def copies(self) -> bool:
        """Return whether signals may become orders (active or reducing)."""
        return self in (CopyStatus.ACTIVE, CopyStatus.REDUCING)

    @property
    def receives_signals(self) -> bool:
        """Return whether the configuration still records an intent for each new signal."""
        return self is not CopyStatus.STOPPED


class IntentState(enum.StrEnum):
    """The state of one copied order."""

    PENDING = "PENDING"
    SENT = "SENT"
    ACCEPTED = "ACCEPTED"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    FILLED = "FILLED"
    CANCELED = "CANCELED"
    EXPIRED = "EXPIRED"
    REJECTED = "REJECTED"
    UNKNOWN = "UNKNOWN"
    SKIPPED = "SKIPPED"


class SourceKind(enum.StrEnum):
    """What a copied source is."""

    EXCHANGE = "exchange"
    BACKTEST = "backtest"


class SkipReason(enum.StrEnum):
    """Why an intent was skipped: snake_case words shown to users and stored with the intent."""

    PAUSED = "paused"
    HALTED = "halted"
    STOPPED = "stopped"
    REDUCING = "reducing"
    STALE = "stale"
    STALE_ON_RESEND = "stale_on_resend"
    SYMBOL_EXCLUDED = "symbol_excluded"
    SYMBOL_NOT_INCLUDED = "symbol_not_included"
    REDUCING_TRADE_NOT_COPIED = "reducing_trade_not_copied"
    SYMBOL_NOT_ON_VENUE = "symbol_not_on_venue"
    MARKET_UNAVAILABLE = "market_unavailable"
    PORTFOLIO_UNAVAILABLE = "portfolio_unavailable"
    PRICE_UNKNOWN = "price_unknown"
    LEADER_EQUITY_UNKNOWN = "leader_equity_unknown"
    PORTFOLIO_FRACTION_UNKNOWN = "portfolio_fraction_unknown"
    NO_POSITION_TO_REDUCE = "no_position_to_reduce"
    MAX_POSITION_SIZE = "max_position_size"
    ORDER_RATE_LIMIT = "order_rate_limit"
    CORRELATION_LIMIT = "correlation_limit"
    CORRELATION_UNKNOWN = "correlation_unknown"
    BELOW_MIN_TRADE_SIZE = "below_min_trade_size"
    BELOW_MIN_NOTIONAL = "below_min_notional"
    ZERO_QUANTITY = "zero_quantity"
    ORDER_MIRRORED = "order_mirrored"
    ORDER_TYPE_UNSUPPORTED = "order_type_unsupported"
    LEADER_ORDER_CANCELLED = "leader_order_cancelled"
    LEADER_ORDER_AMENDED = "leader_order_amended"
    MARKET_TYPE_MISMATCH = "market_type_mismatch"
    MAX_LEVERAGE = "max_leverage"
    LEADER_LEVERAGE_UNKNOWN = "leader_leverage_unknown"
    DAILY_LOSS_CANCELLED = "daily_loss_cancelled"


COPY_MODES = ("fills", "orders")
"""The values of ``copy_settings.copy_mode``, the default first: copy the leader's fills, or
mirror its resting orders (with their cancels and amends)."""
DEFAULT_COPY_MODE = COPY_MODES[0]

FUTURES_SIZINGS = ("notional", "margin")
"""The values of ``copy_settings.futures_sizing``, the default first: a futures entry takes the
leader's notional scaled by the sizing mode, or the leader's margin scaled by it (times the
follower's leverage)."""
DEFAULT_FUTURES_SIZING = FUTURES_SIZINGS[0]
MARGIN_SIZING_MODES = ("equity_ratio", "multiplier")
"""The sizing modes that scale the leader's trade, the only ones ``futures_sizing`` margin
applies to (the others size without it)."""


class PositionEffect(enum.StrEnum):
    """What a derivatives fill did to the leader's position (empty: spot, or not known)."""

    UNSPECIFIED = ""
    OPEN = "open"
    REDUCE = "reduce"
    CLOSE = "close"
    REVERSE = "reverse"


class SignalKind(enum.StrEnum):
    """What a signal reports: a leader fill, or a change of one of its resting orders."""

    FILL = "fill"
    ORDER_OPEN = "order_open"
    ORDER_CANCEL = "order_cancel"
    ORDER_AMEND = "order_amend"


SIZING_MODES = (
    "equity_ratio",
    "multiplier",
    "fixed_notional",
    "fixed_quantity",
    "portfolio_fraction",
)
DEFAULT_SIZING_MODE = "equity_ratio"
DEFAULT_MAX_SIGNAL_AGE_SECONDS = 60
DEFAULT_SYNC_INTERVAL = 5
DEFAULT_SYNC_TIMEOUT = 30
DEFAULT_MAX_RETRIES = 3
DEFAULT_MAX_ORDERS_PER_MINUTE = 60


class DailyLossAction(enum.StrEnum):
    """What a daily loss breach does (``risk_limits.daily_loss_action``)."""

    REDUCE_ONLY = "reduce_only"
    CLOSE_ALL = "close_all"
    DISABLE = "disable"


DAILY_LOSS_ACTIONS = tuple(action.value for action in DailyLossAction)
"""The values of ``risk_limits.daily_loss_action``, the default first."""
DEFAULT_DAILY_LOSS_ACTION = DailyLossAction.REDUCE_ONLY.value
SLIPPAGE_BAND = "slippage_band"
"""The reason of a slippage-banded (IOC) copy whose remainder expired unfilled."""
CANCELED_AT_VENUE = "canceled_at_venue"
"""The reason of a copy the engine saw resting that was cancelled at the venue without the
engine asking (by hand on the venue's site, or by the venue): the follower lacks what it did
not fill."""


@dataclass(frozen=True)
class RiskLimits:
    """A follower's limits: fractions (``None`` means not set), an order rate and an action.

    ``max_orders_per_minute`` 0 means the default, 60, and an empty ``daily_loss_action``
    means ``reduce_only`` (see ``settings.normalized``).
    """

    max_position_size: Decimal | None = None
    max_daily_loss: Decimal | None = None
    max_slippage: Decimal | None = None
    correlation_limit: Decimal | None = None
    max_orders_per_minute: int = 0
    daily_loss_action: str = ""
    max_leverage: Decimal | None = None
    """The largest leverage on a derivatives market (1 to 125); ``None``: 1 there."""


@dataclass(frozen=True)
class CopySettings:
    """Which trades are copied and how they are sized."""

    copy_all_trades: bool = True
    min_trade_size: Decimal | None = None
    max_trade_size: Decimal | None = None
    exclude_symbols: tuple[str, ...] = ()
    include_symbols: tuple[str, ...] = ()
    sizing_mode: str = DEFAULT_SIZING_MODE
    multiplier: Decimal | None = None
    fixed_notional: Decimal | None = None
    fixed_quantity: Decimal | None = None
    symbol_map: Mapping[str, str] = field(default_factory=dict)
    allow_quote_equivalence: bool = True
    max_signal_age_seconds: int = DEFAULT_MAX_SIGNAL_AGE_SECONDS
    copy_mode: str = DEFAULT_COPY_MODE
    futures_sizing: str = DEFAULT_FUTURES_SIZING


@dataclass(frozen=True)
class SyncSettings:
    """How an exchange source is read (passed on to the sync service)."""

    sync_interval: int = DEFAULT_SYNC_INTERVAL
    max_retries: int = DEFAULT_MAX_RETRIES
    timeout: int = DEFAULT_SYNC_TIMEOUT
    enable_websocket: bool | None = None
    enable_polling: bool | None = None


@dataclass(frozen=True)
class ConfigSettings:
    """The three user-editable groups of a configuration."""

    risk_limits: RiskLimits = field(default_factory=RiskLimits)
    copy_settings: CopySettings = field(default_factory=CopySettings)
    sync_settings: SyncSettings = field(default_factory=SyncSettings)


@dataclass(frozen=True)
class DailyRisk:
    """Start-of-day equity per target account, for the daily loss limit (UTC days)."""

    day: str = ""
    start_equity: Mapping[str, Decimal] = field(default_factory=dict)


@dataclass(frozen=True)
class CopyConfig:
    """A follower's copy configuration."""

    config_id: str
    user_id: str
    source_kind: SourceKind
    source_id: str
    target_exchange_ids: tuple[str, ...]
    settings: ConfigSettings
    status: CopyStatus
    status_reason: str
    start_sequence: int
    last_sequence: int
    sync_status: str
    last_sync_at: datetime | None
    created_at: datetime
    updated_at: datetime
    request_id: str | None = None
    target_venues: Mapping[str, str] = field(default_factory=dict)
    daily_risk: DailyRisk = field(default_factory=DailyRisk)
    # The published leader followed, when the source is another user's account published as
    # a leader (then ``source_id`` is that account, never shown to this configuration's user).
    leader_id: str = ""

    @property
    def is_active(self) -> bool:
        """Return whether it copies signals (active or reducing)."""
        return self.status.copies

    def venue_of(self, exchange_id: str) -> str:
        """Return the venue name of a target account, ``"unknown"`` when not recorded."""
        return self.target_venues.get(exchange_id, "") or "unknown"


@dataclass(frozen=True)
class Signal:
    """One entry of a source's signal log: a leader trade to copy."""

    source_id: str
    sequence: int
    signal_id: str
    symbol: str
    side: Side
    quantity: Decimal
    price: Decimal | None
    order_type: OrderType
    event_time: datetime
    log_time: datetime | None = None
    portfolio_fraction: Decimal | None = None
    leader_equity: Decimal | None = None
    leader_position: Decimal | None = None
    exchange_name: str = ""
    # The W3C trace context the signal came with (sync's leader fill span); empty: none.
    traceparent: str = ""
    # Order mirroring (``copy_mode`` ``orders``): what the leader did (old signals are fills),
    # its order, and for a cancel or amend the sequence of the signal that opened the order.
    kind: SignalKind = SignalKind.FILL
    leader_order_id: str = ""
    order_mirrored: bool = False
    opened_sequence: int = 0
    replaced_order_id: str = ""
    # The leader's time in force and stop price (a strategy's published limit or stop order
    # is copied with them: engine_svc.domain.decision).
    time_in_force: TimeInForce | None = None
    stop_price: Decimal | None = None
    # Derivatives fills (see the sync proto's Signal): what the fill did to the leader's
    # signed position (``leader_position``), whether it was the venue's liquidation, and the
    # leader's leverage when known.
    position_effect: PositionEffect = PositionEffect.UNSPECIFIED
    liquidation: bool = False
    leader_leverage: Decimal | None = None


@dataclass(frozen=True)
class MarketInfo:
    """A follower venue's market: precision, minimums and the last price."""

    symbol: str
    base: str
    quote: str
    quantity_step: Decimal | None
    min_quantity: Decimal | None
    min_notional: Decimal | None
    max_quantity: Decimal | None = None
    last_price: Decimal | None = None
    price_tick: Decimal | None = None
    contract_size: Decimal | None = None
    """The base quantity of one contract on a derivatives market; ``None`` on spot."""

    @property
    def derivative(self) -> bool:
        """Return whether the market is a derivatives market (``BTC/USDT:USDT``)."""
        return is_derivative(self.symbol)


@dataclass(frozen=True)
class AssetBalance:
    """One asset of a follower account."""

    asset: str
    free: Decimal
    total: Decimal
    value: Decimal | None = None


@dataclass(frozen=True)
class VenuePosition:
    """An open derivatives position of an account as its venue reports it."""

    symbol: str
    side: str
    """``"long"`` or ``"short"``."""
    contracts: Decimal
    """The size in contracts, never negative."""
    entry_price: Decimal | None = None
    mark_price: Decimal | None = None
    unrealized_pnl: Decimal | None = None
    liquidation_price: Decimal | None = None
    leverage: Decimal | None = None
    margin_mode: str = ""
    contract_size: Decimal | None = None
    """The base quantity of one contract; ``None`` when the venue does not say (then 1)."""

    @property
    def base_quantity(self) -> Decimal:
        """Return the size in the base asset (contracts times the contract size)."""
        return self.contracts * (self.contract_size or Decimal(1))

    @property
    def signed_base_quantity(self) -> Decimal:
        """Return the size in the base asset, negative for a short."""
        return -self.base_quantity if self.side == "short" else self.base_quantity


@dataclass(frozen=True)
class Portfolio:
    """A follower account's balances and equity in its main quote currency."""

    equity: Decimal | None
    quote_currency: str
    balances: tuple[AssetBalance, ...] = ()
    positions: tuple[VenuePosition, ...] = ()
    """The open derivatives positions (venues that hold positions only)."""

    def balance(self, asset: str) -> AssetBalance | None:
        """Return the balance of ``asset``, ``None`` when the account holds none."""
        for item in self.balances:
            if item.asset == asset:
                return item
        return None


@dataclass(frozen=True)
class Holding:
    """One asset held at one follower account (a balance, or a derivatives position)."""

    exchange_id: str
    balance: AssetBalance
    position: VenuePosition | None = None


@dataclass(frozen=True)
class FollowerSnapshot:
    """What the decision needs to know about a follower account now."""

    equity: Decimal | None
    base_free: Decimal
    base_total: Decimal
    position: Decimal | None = None
    """On a derivatives market: the open position in the base asset, negative for a short
    (0 when flat); ``None`` on spot."""

    @classmethod
    def of(cls, portfolio: Portfolio, base: str, symbol: str = "") -> FollowerSnapshot:
        """Return the snapshot of ``portfolio`` for the market's ``base`` asset.

        For a derivatives ``symbol`` the snapshot holds the account's position there instead
        of the base balance (a futures account holds margin, not the base asset).
        """
        if is_derivative(symbol):
            signed = sum(
                (p.signed_base_quantity for p in portfolio.positions if p.symbol == symbol),
                Decimal(0),
            )
            return cls(
                equity=portfolio.equity,
                base_free=abs(signed),
                base_total=abs(signed),
                position=signed,
            )
        held = portfolio.balance(base)
        return cls(
            equity=portfolio.equity,
            base_free=held.free if held else Decimal(0),
            base_total=held.total if held else Decimal(0),
        )


@dataclass(frozen=True)
class VenueOrder:
    """An order as the broker reports it."""

    client_order_id: str
    venue_order_id: str
    status: OrderStatus
    filled_quantity: Decimal
    average_price: Decimal | None
    symbol: str = ""


@dataclass(frozen=True)
class Intent:
    """One copy of one signal to one follower account: the row written before any order."""

    intent_id: str
    config_id: str
    source_id: str
    sequence: int
    signal_id: str
    target_exchange_id: str
    leg: int
    client_order_id: str
    symbol: str
    side: Side
    type: OrderType
    quantity: Decimal
    price: Decimal | None
    state: IntentState
    reason: str
    leader_quantity: Decimal
    leader_price: Decimal | None
    leader_event_time: datetime
    created_at: datetime
    updated_at: datetime
    venue_order_id: str = ""
    filled_quantity: Decimal = Decimal(0)
    average_price: Decimal | None = None
    latency_ms: float = 0.0
    not_found_count: int = 0
    attempts: int = 0
    last_sent_at: datetime | None = None
    time_in_force: TimeInForce | None = None
    cancel_wanted: bool = False
    """A stop or the kill switch asked for this order to be cancelled (kept until done)."""
    stop_price: Decimal | None = None
    """The stop (trigger) price of a stop-market or stop-limit copy; ``None`` otherwise."""
    reduce_only: bool = False
    """A derivatives exit: sent reduce-only (it can only shrink the follower's position)."""
    leverage: int | None = None
    """The leverage to set on the follower's derivatives market before this entry is sent
    (``None``: none to set, an exit or spot)."""
    sent_token: int = 0
    """The lease token of its source under which it was last sent (0: sent without a lease).

    A replica that took the source over with a higher token, after fencing the broker, may
    trust the broker's "never placed" for it (:func:`engine_svc.domain.intents.may_resend`).
    """


@dataclass(frozen=True)
class Candle:
    """One interval of a market's prices (only what return correlations need)."""

    open_time: datetime
    close: Decimal
