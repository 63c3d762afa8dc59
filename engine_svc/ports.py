"""Interfaces the engine's use-cases depend on: the store, the broker, the sync service, the clock.

Implementations raise :mod:`meshkit.errors` types: ``NotFound`` for an unknown object,
``InvalidArgument``/``FailedPrecondition`` for a refusal, ``ResourceExhausted`` for a rate
limit, ``OutcomeUnknown`` when an order may or may not have been placed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Collection, Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

from engine_svc.domain.leaders import Leader
from engine_svc.domain.loops import ConfigEdges
from engine_svc.domain.model import (
    Candle,
    ConfigSettings,
    CopyConfig,
    CopyStatus,
    DailyRisk,
    Intent,
    IntentState,
    MarketInfo,
    Portfolio,
    Side,
    Signal,
    SourceKind,
    SyncSettings,
    VenueOrder,
)
from meshkit.audit import AuditEntry, AuditEvent
from meshkit.clock import Clock

__all__ = [
    "AuditStore",
    "BrokerPort",
    "Clock",
    "ConfigStore",
    "CopyGraphCheck",
    "CopyStore",
    "EngineStorePort",
    "ExchangeAccount",
    "Heartbeat",
    "InboxStore",
    "IntentStore",
    "SignalStream",
    "SignalTransactionPort",
    "Source",
    "SyncPort",
]


@dataclass(frozen=True)
class ExchangeAccount:
    """A registered exchange account, as far as the engine needs to know it."""

    exchange_id: str
    exchange_name: str


@dataclass(frozen=True)
class Source:
    """A leader as the sync service describes it."""

    source_id: str
    kind: SourceKind | None
    user_id: str
    public: bool
    last_sequence: int
    mode: str
    last_sync_time: datetime | None
    equity: Decimal | None = None
    # The last error reading the venue, empty while it reads.
    last_error: str = ""
    # Whether sync reads the venue now (exchange sources).
    watched: bool = False
    # Since when sync cannot read the venue (no fill stream, the last poll failed); None: it reads.
    down_since: datetime | None = None


@dataclass(frozen=True)
class Heartbeat:
    """The signal stream is alive and has nothing to send."""

    send_time: datetime | None = None


class BrokerPort(Protocol):
    """The broker service, acting for the owner of the accounts named."""

    async def get_exchange(self, exchange_id: str, user_id: str) -> ExchangeAccount:
        """Return the user's exchange account; ``NotFound`` when it is not theirs or absent."""
        ...

    async def get_portfolio(self, exchange_id: str, user_id: str) -> Portfolio:
        """Return the account's balances and equity in its main quote currency."""
        ...

    def get_portfolios(
        self, accounts: Sequence[tuple[str, str]]
    ) -> AsyncIterator[tuple[int, Portfolio | Exception]]:
        """Read many accounts' portfolios at once: ``accounts`` are (exchange id, owner).

        Yield ``(index in accounts, answer)`` once for every account, as each is read: its
        portfolio, or the error :meth:`get_portfolio` would have raised for it alone (a
        failure of the whole call, such as an unreachable broker or a deadline, is each
        unanswered account's error, a new instance for each).
        """
        ...

    async def get_market(self, exchange_id: str, symbol: str, user_id: str) -> MarketInfo:
        """Return the market ``symbol`` of the account's venue, with its last price."""
        ...

    async def list_candles(
        self,
        exchange_id: str,
        symbol: str,
        timeframe: str,
        limit: int,
        user_id: str,
    ) -> list[Candle]:
        """Return the market's most recent candles, oldest first; ``NotFound`` without it."""
        ...

    async def place_order(
        self, intent: Intent, user_id: str, *, fence: tuple[str, int] | None = None
    ) -> VenueOrder:
        """Place the intent's order with its client order id; never retried here.

        ``fence`` is the lease (key and token) it is sent under: the broker refuses it with
        ``FailedPrecondition`` reason ``FENCED`` once a higher token fenced that key.
        """
        ...

    async def set_leverage(self, exchange_id: str, symbol: str, leverage: int, user_id: str) -> int:
        """Set the account's leverage on a derivatives market (idempotent); return it.

        ``FailedPrecondition`` reason ``LEVERAGE_UNSUPPORTED`` at a venue without positions.
        """
        ...

    async def fence(self, key: str, token: int) -> int:
        """Raise the broker's fence of ``key`` to ``token``; ``FENCED`` if already higher.

        Once it returns, no order sent under ``key`` with a lower token reaches a venue unless
        the broker recorded the attempt before; a lookup's ``NotFound`` then carries
        ``never_placed`` when it did not.
        """
        ...

    async def get_order(
        self,
        exchange_id: str,
        client_order_id: str,
        symbol: str,
        user_id: str,
    ) -> VenueOrder:
        """Look an order up by client order id; ``NotFound`` when the venue has none."""
        ...

    async def cancel_order(
        self,
        exchange_id: str,
        client_order_id: str,
        symbol: str,
        user_id: str,
    ) -> VenueOrder:
        """Cancel an order by client order id and return it as the venue reports it."""
        ...


class SignalStream(Protocol):
    """One open ``StreamSignals`` call."""

    async def subscribe(self, source_id: str, after_sequence: int) -> None:
        """Ask for the source's signals after ``after_sequence`` (resets that source)."""
        ...

    async def ack(self, source_id: str, sequence: int) -> None:
        """Say every signal of the source up to ``sequence`` is stored."""
        ...

    async def receive(self) -> Signal | Heartbeat | None:
        """Return the next message, ``None`` when the stream ended; raise when it broke."""
        ...

    async def close(self) -> None:
        """End the call."""
        ...


class SyncPort(Protocol):
    """The sync service."""

    async def get_source(self, source_id: str) -> Source:
        """Return the source; ``NotFound`` when there is none."""
        ...

    async def watch_exchange_source(
        self,
        exchange_id: str,
        sync_settings: SyncSettings,
        user_id: str,
    ) -> Source:
        """Start (or keep) watching an exchange account as a source."""
        ...

    async def unwatch_exchange_source(self, exchange_id: str, user_id: str) -> Source:
        """Stop watching an exchange account no configuration copies any more."""
        ...

    async def open_signal_stream(self) -> SignalStream:
        """Open the signal stream."""
        ...


# ---------------------------------------------------------------------------- the store
# Implemented by engine_svc.store.EngineStore; only the composition root names that class.


class Ownership(Protocol):
    """Which leader sources this engine replica copies now, and under which lease token."""

    def token(self, source_id: str) -> int | None:
        """Return the token this replica copies ``source_id`` under, ``None`` if it does not."""
        ...

    def sources(self) -> set[str]:
        """Return the sources this replica copies now."""
        ...


CopyGraphCheck = Callable[[list[ConfigEdges]], None]
"""A check of the copy graph run inside a configuration's write (the copy loop check).

It is given the edges (source, targets, status; no settings) of every user's configurations
not stopped, read in the write's transaction under one lock of the copy graph that every checked
write takes, on every replica; raising aborts the write. So two writes that close a cycle
between them cannot both pass it.
"""


class ConfigStore(Protocol):
    """The copy configurations: compare-and-set writes, an audit entry in the same commit."""

    async def insert_config(
        self,
        config: CopyConfig,
        *,
        audit: AuditEvent | None = None,
        check: CopyGraphCheck | None = None,
    ) -> CopyConfig:
        """Insert ``config``; with a request id already used by the user, return that config.

        ``check`` runs in the insert's transaction first (see :data:`CopyGraphCheck`).
        """
        ...

    async def get_config(self, config_id: str) -> CopyConfig | None:
        """Return the configuration ``config_id``, ``None`` when there is none."""
        ...

    async def config_by_request(self, user_id: str, request_id: str) -> CopyConfig | None:
        """Return the user's configuration created with ``request_id``, if any."""
        ...

    async def list_configs(self, user_id: str) -> list[CopyConfig]:
        """Return the user's configurations, newest first."""
        ...

    async def configs_of_source(self, source_id: str) -> list[CopyConfig]:
        """Return the configurations copying ``source_id`` that are not stopped."""
        ...

    async def configs_in_states(self, statuses: Iterable[CopyStatus]) -> list[CopyConfig]:
        """Return every user's configurations in ``statuses``."""
        ...

    async def copy_graph(self, statuses: Iterable[CopyStatus]) -> list[ConfigEdges]:
        """Return the edges of every user's configurations in ``statuses`` (no settings).

        The copy loop check's graph.
        """
        ...

    async def configs_using_exchange(self, exchange_id: str) -> list[CopyConfig]:
        """Return the configurations not stopped that copy from or to ``exchange_id``."""
        ...

    async def update_settings(
        self,
        config: CopyConfig,
        settings: ConfigSettings,
        now: datetime,
        *,
        audit: AuditEvent | None = None,
    ) -> bool:
        """Replace the settings of ``config``; return ``False`` if it changed meanwhile."""
        ...

    async def change_status(
        self,
        config_id: str,
        expected: CopyStatus,
        status: CopyStatus,
        reason: str,
        now: datetime,
        *,
        skip_pending: str = "",
        daily_risk: DailyRisk | None = None,
        audit: AuditEvent | None = None,
        check: CopyGraphCheck | None = None,
    ) -> bool:
        """Move a configuration from ``expected`` to ``status`` (compare-and-set).

        ``check`` runs in the change's transaction first (see :data:`CopyGraphCheck`).
        """
        ...


class ConfigCountStore(Protocol):
    """How many configurations each status has, for the ``copytrade_engine_configs`` gauge."""

    async def count_configs_by_status(self) -> dict[CopyStatus, int]:
        """Return how many configurations each status has (a status with none is left out)."""
        ...


class SignalTransactionPort(Protocol):
    """The writes of one signal, all in one database transaction."""

    async def insert_inbox(self, signal: Signal, received_at: datetime) -> bool:
        """Insert the signal into the inbox; return ``False`` when it was there already."""
        ...

    async def configs_copying(self, source_id: str, sequence: int) -> list[CopyConfig]:
        """Return the configurations that record an intent for this signal (not stopped)."""
        ...

    async def insert_intent(self, intent: Intent) -> bool:
        """Insert ``intent``; return ``False`` when an intent with its key exists already."""
        ...

    async def orders_since(self, target_exchange_id: str, since: datetime) -> int:
        """Return how many orders (intents not skipped) were written for an account since then."""
        ...

    async def record_progress(
        self,
        config: CopyConfig,
        status: CopyStatus,
        status_reason: str,
        daily_risk: DailyRisk,
        now: datetime,
    ) -> bool:
        """Store a configuration's status and daily risk state as decided for this signal."""
        ...

    async def append_audit(self, event: AuditEvent, now: datetime) -> None:
        """Append an audit entry in this transaction; call it last, after every other write."""
        ...

    async def advance_source(self, signal: Signal, synced_at: datetime) -> None:
        """Move the last stored sequence of every configuration of the source forward."""
        ...

    async def has_copies(
        self, config_id: str, source_id: str, sequence: int, target_exchange_id: str
    ) -> bool:
        """Return whether the signal at ``sequence`` wrote an intent for this config and account."""
        ...

    async def cancel_copies(
        self,
        config_id: str,
        source_id: str,
        sequence: int,
        target_exchange_id: str,
        reason: str,
        now: datetime,
    ) -> list[Intent]:
        """Mark the copies of one leader order (the signal at ``sequence``) to be cancelled.

        A copy not sent yet never leaves (SKIPPED with ``reason``); return the copies that may
        rest at the venue, to be cancelled there.
        """
        ...

    async def cancel_on_status(
        self, config_id: str, status: CopyStatus, reason: str
    ) -> list[Intent]:
        """Mark the config's resting copies that ``status`` no longer allows to be cancelled.

        A daily loss action's REDUCING marks the entries, PAUSED every copy (``cancel_wanted``
        with ``reason``); return them, to be cancelled at the venue.
        """
        ...


class InboxStore(Protocol):
    """The signal inbox, and where each copied source resumes from it."""

    def signal_transaction(
        self, fence: tuple[str, int] | None = None
    ) -> AbstractAsyncContextManager[SignalTransactionPort]:
        """Open the one transaction of a signal; with ``fence``, ``Fenced`` if it is stale."""
        ...

    async def has_signal(self, source_id: str, sequence: int) -> bool:
        """Return whether the inbox holds the signal."""
        ...

    async def subscriptions(self) -> dict[str, int]:
        """Return where to resume each source a live configuration copies."""
        ...

    async def subscription_of(self, source_id: str) -> int | None:
        """Return where to resume ``source_id``, ``None`` when no live configuration copies it."""
        ...


class IntentStore(Protocol):
    """The order intents: every state change is a compare-and-set on the current state."""

    async def get_intent(self, intent_id: str) -> Intent | None:
        """Return the intent ``intent_id``."""
        ...

    async def intents_in_states(
        self,
        states: Iterable[IntentState],
        *,
        config_id: str | None = None,
        source_ids: Collection[str] | None = None,
        limit: int = 1000,
    ) -> list[Intent]:
        """Return intents in ``states`` (of one configuration, of some sources), oldest first."""
        ...

    async def sources_with_work(self) -> set[str]:
        """Return the sources with intents not yet final (PENDING, or an outcome to prove)."""
        ...

    async def update_intent(self, intent_id: str, expected: IntentState, **changes: Any) -> bool:
        """Change an intent in state ``expected`` (compare-and-set); return whether it did."""
        ...

    async def mark_sent(self, intent: Intent, now: datetime, token: int | None = None) -> bool:
        """Move ``intent`` to SENT before a send, unless it changed or may not leave now.

        With ``token``, only while it is the source's current lease token (else ``Fenced``).
        """
        ...

    async def want_cancel(self, config_id: str, states: Iterable[IntentState]) -> int:
        """Mark the configuration's intents in ``states`` as to be cancelled; return how many."""
        ...

    async def recent_intents(self, config_id: str, limit: int) -> list[Intent]:
        """Return the configuration's most recent intents, newest first."""
        ...

    async def list_intents(
        self,
        config_id: str,
        start: datetime | None,
        end: datetime | None,
        limit: int,
        *,
        target_exchange_id: str = "",
        after: tuple[str, int, str] | None = None,
    ) -> list[Intent]:
        """Return the configuration's intents written in ``[start, end)``, oldest first.

        Only ``target_exchange_id``'s when given; after the intent ``after`` (its
        ``created_at`` text, sequence, intent id) when given.
        """
        ...

    async def state_counts(self, config_id: str) -> tuple[dict[IntentState, int], int]:
        """Return the configuration's number of intents per state and of distinct signals."""
        ...


class AuditStore(Protocol):
    """The engine's audit log."""

    async def list_audit_entries(
        self, owner_user_id: str, before_seq: int, limit: int
    ) -> list[AuditEntry]:
        """Return ``owner_user_id``'s audit entries below ``before_seq`` (0: all), newest first."""
        ...


class CopyStore(ConfigStore, InboxStore, IntentStore, Protocol):
    """What the copy path (signal → intents → orders → outcomes) reads and writes."""


class LeaderStore(Protocol):
    """The published leaders (``engine_svc.store.leaders``)."""

    async def publish_leader(self, leader: Leader, *, audit: AuditEvent) -> Leader:
        """Insert ``leader``; when its account is published already, return that leader."""
        ...

    async def get_leader(self, leader_id: str) -> Leader | None:
        """Return the leader ``leader_id`` (withdrawn ones too), ``None`` when there is none."""
        ...

    async def live_leader_of(self, exchange_id: str) -> Leader | None:
        """Return the published (not withdrawn) leader of ``exchange_id``, if any."""
        ...

    async def live_leaders(self) -> list[Leader]:
        """Return every published leader, oldest first."""
        ...

    async def unpublish_leader(self, leader_id: str, now: datetime, *, audit: AuditEvent) -> bool:
        """Withdraw the leader; return whether it was published until now."""
        ...


class EngineStorePort(CopyStore, AuditStore, LeaderStore, Protocol):
    """The whole store, as the configuration use cases see it."""

    async def intent_changes(self, target_exchange_ids: Collection[str]) -> dict[str, str]:
        """Return, per account, when an intent of it last changed (its fills move balances)."""
        ...


class LeaderAlertStore(Protocol):
    """What the leader outage monitor reads, and its alerts (each with its audit entry)."""

    async def monitored_configs(self) -> list[CopyConfig]:
        """Return every configuration that copies now (active or reducing)."""
        ...

    async def get_config(self, config_id: str) -> CopyConfig | None:
        """Return the configuration, or None."""
        ...

    async def open_leader_alerts(self) -> dict[str, datetime]:
        """Return, per configuration with an open alert, since when its leader is down."""
        ...

    async def open_leader_alert(
        self,
        config_id: str,
        source_id: str,
        down_since: datetime,
        now: datetime,
        *,
        audit: AuditEvent,
    ) -> bool:
        """Open the configuration's alert and write ``audit``; False when one is open already."""
        ...

    async def close_leader_alert(self, config_id: str, now: datetime, *, audit: AuditEvent) -> bool:
        """Close the configuration's alert and write ``audit``; False when none was open."""
        ...


class RiskMonitorStore(InboxStore, Protocol):
    """What the daily loss monitor reads, and its fenced transaction (the signal one's)."""

    async def daily_loss_configs(self) -> list[CopyConfig]:
        """Return the configurations that copy now (active or reducing) with a loss limit."""
        ...

    async def copied_fills(
        self, config_id: str, target_exchange_id: str
    ) -> list[tuple[str, Side, Decimal]]:
        """Return ``(symbol, side, filled quantity)`` of the config's orders at one account."""
        ...

    async def intent_changes(self, target_exchange_ids: Collection[str]) -> dict[str, str]:
        """Return, per account, when an intent of it last changed (its fills move balances)."""
        ...
