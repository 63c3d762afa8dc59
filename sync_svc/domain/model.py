"""Immutable values of the sync service: sources, leader fills and signals."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from meshkit.vocabulary import OrderStatus, OrderType, Side, TimeInForce


class SourceKind(StrEnum):
    """What a source is."""

    EXCHANGE = "exchange"
    BACKTEST = "backtest"


class SignalKind(StrEnum):
    """What a signal reports: a leader fill, or a change of one of its resting orders."""

    FILL = "fill"
    ORDER_OPEN = "order_open"
    ORDER_CANCEL = "order_cancel"
    ORDER_AMEND = "order_amend"


class PositionEffect(StrEnum):
    """What a derivatives fill did to the leader's position (empty: spot, or not known)."""

    UNSPECIFIED = ""
    OPEN = "open"
    REDUCE = "reduce"
    CLOSE = "close"
    REVERSE = "reverse"


class SyncMode(StrEnum):
    """How a source's activity reaches the log."""

    WEBSOCKET = "websocket"
    POLLING = "polling"
    PUBLISHED = "published"


DEFAULT_SYNC_INTERVAL = 5
DEFAULT_MAX_RETRIES = 3
DEFAULT_TIMEOUT = 10


@dataclass(frozen=True)
class SyncSettings:
    """How an exchange source is read.

    ``sync_interval`` is the seconds between timer backfills (polls), ``max_retries`` how often a
    failed read or stream connection is retried before the error is reported, ``timeout`` the
    seconds a venue read (or a stream's connection) may take. ``enable_websocket`` watches the
    broker's fill stream (with backfill); ``enable_polling`` keeps the timer backfill running
    while the stream is up (it always runs while the stream is down).
    """

    sync_interval: int = DEFAULT_SYNC_INTERVAL
    max_retries: int = DEFAULT_MAX_RETRIES
    timeout: int = DEFAULT_TIMEOUT
    enable_websocket: bool = True
    enable_polling: bool = True

    def to_dict(self) -> dict[str, object]:
        """Return the settings as a JSON-ready dict."""
        return {
            "sync_interval": self.sync_interval,
            "max_retries": self.max_retries,
            "timeout": self.timeout,
            "enable_websocket": self.enable_websocket,
            "enable_polling": self.enable_polling,
        }

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> SyncSettings:
        """Rebuild settings written by :meth:`to_dict` (missing keys take the defaults)."""

        def _int(name: str, default: int) -> int:
            value = data.get(name)
            return value if isinstance(value, int) and not isinstance(value, bool) else default

        def _flag(name: str) -> bool:
            value = data.get(name)
            return value if isinstance(value, bool) else True

        return cls(
            sync_interval=_int("sync_interval", DEFAULT_SYNC_INTERVAL),
            max_retries=_int("max_retries", DEFAULT_MAX_RETRIES),
            timeout=_int("timeout", DEFAULT_TIMEOUT),
            enable_websocket=_flag("enable_websocket"),
            enable_polling=_flag("enable_polling"),
        )


@dataclass(frozen=True)
class Source:
    """A leader: an exchange account whose fills are watched, or a strategy that publishes."""

    source_id: str
    kind: SourceKind
    user_id: str
    name: str
    public: bool
    exchange_id: str
    exchange_name: str
    sync_settings: SyncSettings
    equity: Decimal | None
    mode: SyncMode
    start_time: datetime
    created_at: datetime
    cursor_time: datetime | None = None
    last_sync_at: datetime | None = None
    last_error: str = ""
    request_id: str = ""
    last_sequence: int = 0
    watched: bool = True
    down_since: datetime | None = None
    """Since when the venue cannot be read (no fill stream and the last poll failed)."""

    def visible_to(self, user_id: str) -> bool:
        """Return whether ``user_id`` may read the source ("" is an internal caller: always)."""
        if not user_id:
            return True
        if self.user_id == user_id:
            return True
        return self.kind is SourceKind.BACKTEST and self.public


@dataclass(frozen=True)
class LeaderFill:
    """One trade of a watched exchange account, as the venue reported it."""

    trade_id: str
    symbol: str
    side: Side
    quantity: Decimal
    price: Decimal
    fee: Decimal | None
    fee_currency: str
    order_type: OrderType | None
    trade_time: datetime
    # The venue's id of the order the fill belongs to; empty when the venue did not say.
    order_id: str = ""
    # The venue liquidated the account (a derivatives venue's own closing order).
    liquidation: bool = False

    @property
    def key(self) -> tuple[str, str]:
        """Return what identifies the fill at its venue: trade ids are unique per symbol."""
        return (self.symbol, self.trade_id)


@dataclass(frozen=True)
class SignalDraft:
    """A signal before it has a place in the log."""

    source_id: str
    signal_id: str
    symbol: str
    side: Side
    quantity: Decimal
    price: Decimal | None
    order_type: OrderType
    event_time: datetime
    time_in_force: TimeInForce | None = None
    portfolio_fraction: Decimal | None = None
    leader_equity: Decimal | None = None
    leader_position: Decimal | None = None
    exchange_name: str = ""
    # The W3C trace context the signal travels in (meshkit.tracing); empty: none.
    traceparent: str = ""
    kind: SignalKind = SignalKind.FILL
    leader_order_id: str = ""
    stop_price: Decimal | None = None
    order_mirrored: bool = False
    opened_sequence: int = 0
    replaced_order_id: str = ""
    # Derivatives fills: what the fill did to the leader's position, whether it was the venue's
    # liquidation, and the leader's leverage when known (see the Signal message).
    position_effect: PositionEffect = PositionEffect.UNSPECIFIED
    liquidation: bool = False
    leader_leverage: Decimal | None = None


@dataclass(frozen=True)
class Signal:
    """One entry of a source's log: a leader trade with its sequence number (from 1, no gaps)."""

    source_id: str
    sequence: int
    signal_id: str
    symbol: str
    side: Side
    quantity: Decimal
    price: Decimal | None
    order_type: OrderType
    event_time: datetime
    log_time: datetime
    time_in_force: TimeInForce | None = None
    portfolio_fraction: Decimal | None = None
    leader_equity: Decimal | None = None
    leader_position: Decimal | None = None
    exchange_name: str = ""
    # The trace context of the append that logged it; the log does not keep it (a signal read
    # back from the store has none).
    traceparent: str = ""
    # What the leader did (old signals are fills); the order fields of order mirroring
    # (``copy_mode`` ``orders``): see the Signal message of the sync proto.
    kind: SignalKind = SignalKind.FILL
    leader_order_id: str = ""
    stop_price: Decimal | None = None
    order_mirrored: bool = False
    opened_sequence: int = 0
    replaced_order_id: str = ""
    # Derivatives fills: what the fill did to the leader's position, whether it was the venue's
    # liquidation, and the leader's leverage when known (see the Signal message).
    position_effect: PositionEffect = PositionEffect.UNSPECIFIED
    liquidation: bool = False
    leader_leverage: Decimal | None = None

    @classmethod
    def from_draft(cls, draft: SignalDraft, sequence: int, log_time: datetime) -> Signal:
        """Place ``draft`` at ``sequence`` in its log (every field of the draft is kept)."""
        kept = {f.name: getattr(draft, f.name) for f in fields(draft)}
        return cls(sequence=sequence, log_time=log_time, **kept)


@dataclass(frozen=True)
class LeaderOrder:
    """One order of a watched exchange account, as the venue reports it now."""

    order_id: str
    symbol: str
    side: Side
    type: OrderType
    status: OrderStatus
    quantity: Decimal
    filled_quantity: Decimal
    price: Decimal | None
    stop_price: Decimal | None
    time_in_force: TimeInForce | None
    created_at: datetime | None


@dataclass(frozen=True)
class Portfolio:
    """A leader account's equity and the total of each asset, and when the venue was read."""

    equity: Decimal | None
    totals: dict[str, Decimal] = field(default_factory=dict)
    read_time: datetime | None = None
    # Derivatives accounts: each open position, signed contracts (negative: short), by symbol,
    # and its leverage when the venue reports it.
    positions: dict[str, Decimal] = field(default_factory=dict)
    leverages: dict[str, Decimal] = field(default_factory=dict)
    # When the positions were asked for: the venue took them between this and ``read_time``.
    positions_since: datetime | None = None


class WatchState(StrEnum):
    """What happened to the venue stream behind a fills watch."""

    CONNECTED = "connected"
    DISCONNECTED = "disconnected"
    GAP_SUSPECTED = "gap_suspected"


@dataclass(frozen=True)
class WatchEvent:
    """A change of a fills watch's venue stream; events may be missing before CONNECTED."""

    state: WatchState
    detail: str = ""


WatchItem = LeaderFill | WatchEvent


@dataclass(frozen=True)
class ExchangeAccount:
    """What the sync service needs to know of a registered exchange account."""

    exchange_id: str
    exchange_name: str


@dataclass(frozen=True)
class AppendEntry:
    """One signal to append; ``fill`` is the raw leader fill it comes from, if any."""

    draft: SignalDraft
    fill: LeaderFill | None = None


@dataclass(frozen=True)
class AppendResult:
    """Where one entry of an append landed: its signal and whether it is new to the log."""

    signal: Signal | None
    created: bool
