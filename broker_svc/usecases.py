"""The broker's use-cases: accounts, credentials tests and orders, over the ports.

The servicer validates and translates; everything that decides happens here or in the domain.
Order placement is keyed by the client order id: the broker records an order before it sends
it, answers a repeat from the venue's state instead of sending again, and resends an unresolved
order only once the venue has proved it never took the first request.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal

from broker_svc import keys
from broker_svc.crypto import Cipher, DecryptionError, account_associated_data
from broker_svc.domain.credentials import credential_violations, judge_credentials
from broker_svc.domain.model import (
    Candle,
    ConnectionReport,
    Credentials,
    ExchangeAccount,
    Fill,
    KeyPermissions,
    Market,
    Order,
    OrderHint,
    OrderRequest,
    StreamEvent,
    VenueProfile,
    WatchChannel,
)
from broker_svc.domain.orders import differing_fields, market_violations, may_resend_after_absence
from broker_svc.domain.portfolio import (
    Portfolio,
    is_quote_equivalent,
    pricing_symbols,
    value_portfolio,
)
from broker_svc.ports import Clock, ExchangePort, Venues
from broker_svc.store import AccountRow, BrokerStore, OrderRecord
from broker_svc.streams import Subscription, WatchHub
from meshkit import audit, errors
from meshkit.audit import AuditEntry, AuditEvent
from meshkit.faultpoints import afaultpoint

log = logging.getLogger("broker_svc.usecases")

AUDIT_OBJECT = "exchange_account"


def _account_view(account: ExchangeAccount) -> dict[str, str]:
    # What the audit trail keeps of an account: never its credentials.
    return {
        "exchange_id": account.exchange_id,
        "exchange_name": account.exchange_name,
        "label": account.label,
        "api_key_hint": account.api_key_hint,
    }


class SystemClock:
    """The wall clock, in UTC."""

    def now(self) -> datetime:
        """Return the current time."""
        return datetime.now(UTC)


@dataclass
class _Connection:
    account: ExchangeAccount
    port: ExchangePort


_DEFINITIVE_REFUSALS = (
    errors.InvalidArgument,
    errors.FailedPrecondition,
    errors.ResourceExhausted,
    errors.Unimplemented,
    errors.NotFound,
)


class Broker:
    """Accounts, credentials and orders at venues.

    Parameters
    ----------
    store
        The broker's tables.
    venues
        How to reach the venues.
    cipher
        Seals and opens stored credentials.
    clock
        Where the time comes from.
    """

    def __init__(
        self,
        store: BrokerStore,
        venues: Venues,
        cipher: Cipher,
        clock: Clock | None = None,
        resend_safe_after_seconds: float | None = None,
    ) -> None:
        self.store = store
        self.venues = venues
        self.cipher = cipher
        self.clock: Clock = clock or SystemClock()
        self._resend_floor = resend_safe_after_seconds
        self._connections: dict[str, _Connection] = {}
        self._connecting: dict[str, asyncio.Lock] = {}
        self.streams = WatchHub()
        self._key_rotation: asyncio.Task[None] | None = None

    async def close(self) -> None:
        """End every watch and close every venue connection."""
        if self._key_rotation is not None:
            self._key_rotation.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._key_rotation
        await self.streams.close()
        connections, self._connections = self._connections, {}
        for connection in connections.values():
            await connection.port.close()
        await self.venues.close()

    # Accounts ---------------------------------------------------------------------------------

    def profile(self, venue: str) -> VenueProfile:
        """Return the profile of a supported venue, or fail naming ``exchange_name``."""
        profile = self.venues.profile(venue)
        if profile is None:
            names = ", ".join(p.name for p in self.venues.profiles())
            raise errors.invalid("exchange_name", f"is not a supported venue (supported: {names})")
        return profile

    async def register(
        self,
        user_id: str,
        venue: str,
        credentials: Credentials,
        *,
        label: str = "",
        request_id: str = "",
    ) -> ExchangeAccount:
        """Test ``credentials`` at ``venue`` and store them sealed for ``user_id``.

        A repeat with the same ``request_id`` returns the account the first call stored.
        Malformed credentials are INVALID_ARGUMENT naming the field; keys that do not
        authenticate, cannot trade or can withdraw are refused.
        """
        self.check_credentials(venue, credentials)
        if request_id:
            existing = await self.store.account_by_request(user_id, request_id)
            if existing is not None:
                return existing.account
        report = await self.test_credentials(venue, credentials)
        if not report.reachable:
            raise errors.Unavailable(report.reason, retry_after=5.0, reason="VENUE_UNAVAILABLE")
        if not report.ok:
            raise errors.FailedPrecondition(report.reason, reason=_refusal_reason(report))
        exchange_id = str(uuid.uuid4())
        plaintext = json.dumps(
            {
                "api_key": credentials.api_key,
                "api_secret": credentials.api_secret,
                "passphrase": credentials.passphrase,
            }
        ).encode()
        ciphertext, nonce, key_id = self.cipher.encrypt(
            plaintext,
            account_associated_data(exchange_id, user_id),
        )
        account = ExchangeAccount(
            exchange_id=exchange_id,
            user_id=user_id,
            exchange_name=venue,
            label=label,
            api_key_hint=credentials.api_key_hint,
            created_at=self.clock.now(),
        )
        stored = await self.store.insert_account(
            AccountRow(account, ciphertext, nonce, key_id),
            request_id,
            audit=AuditEvent(
                user_id,
                AUDIT_OBJECT,
                exchange_id,
                "register",
                None,
                _account_view(account),
            ),
        )
        return stored.account

    async def list_accounts(self, user_id: str) -> list[ExchangeAccount]:
        """Return the live accounts of ``user_id``, oldest first."""
        return await self.store.list_accounts(user_id)

    async def get_account(self, exchange_id: str, user_id: str = "") -> ExchangeAccount:
        """Return a live account; with a ``user_id``, only that user's."""
        return (await self._account_row(exchange_id, user_id)).account

    async def _account_row(self, exchange_id: str, user_id: str) -> AccountRow:
        row = await self.store.get_account(exchange_id)
        if (
            row is None
            or row.account.deleted_at is not None
            or (user_id and row.account.user_id != user_id)
        ):
            raise errors.NotFound(
                f"exchange account {exchange_id} not found",
                reason="EXCHANGE_NOT_FOUND",
                metadata={"exchange_id": exchange_id},
            )
        return row

    async def delete_account(self, exchange_id: str, user_id: str) -> None:
        """Delete one of ``user_id``'s accounts and erase its credentials; a repeat succeeds."""
        row = await self.store.get_account(exchange_id)
        if row is None or row.account.user_id != user_id:
            raise errors.NotFound(
                f"exchange account {exchange_id} not found",
                reason="EXCHANGE_NOT_FOUND",
                metadata={"exchange_id": exchange_id},
            )
        await self.store.delete_account(
            exchange_id,
            self.clock.now(),
            audit=AuditEvent(
                user_id,
                AUDIT_OBJECT,
                exchange_id,
                "delete",
                _account_view(row.account),
                None,
            ),
        )
        connection = self._connections.pop(exchange_id, None)
        if connection is not None:
            await connection.port.close()

    async def audit_entries(
        self,
        user_id: str,
        before_seq: int,
        page_size: int,
    ) -> list[AuditEntry]:
        """Return the caller's entries of the broker's audit trail, newest first.

        Only entries below ``before_seq`` when it is above 0; ``page_size`` 0 means 50.
        """
        size = audit.page_size_of(before_seq, page_size)
        return await self.store.list_audit_entries(user_id, before_seq, size)

    async def rewrap_credentials(self) -> int:
        """Re-seal every account not sealed by the current key; return how many changed."""
        return await keys.reseal_credentials(self.store, self.cipher)

    async def rotate_keys(self) -> keys.RotationReport:
        """Move every credential, then the key-check value, to the current key (resumable)."""
        report = await keys.rotate_credentials(self.store, self.cipher)
        log.info(
            "key rotation: %d of %d accounts re-sealed now; %d on key id %s, %d on older keys,"
            " %d unreadable; key check current: %s",
            report.resealed,
            report.accounts,
            report.on_current_key,
            self.cipher.key_id,
            report.on_previous_keys,
            report.unreadable,
            report.key_check_current,
        )
        return report

    def start_key_rotation(self) -> None:
        """Run :meth:`rotate_keys` in the background while the broker serves."""
        if self._key_rotation is None or self._key_rotation.done():
            self._key_rotation = asyncio.create_task(self._rotate_keys_in_background())

    async def _rotate_keys_in_background(self) -> None:
        try:
            await self.rotate_keys()
        except Exception:
            log.exception("key rotation stopped; the next start resumes it")

    def check_credentials(self, venue: str, credentials: Credentials) -> None:
        """Refuse a venue or credentials no venue call could carry, naming each bad field.

        Raises
        ------
        meshkit.errors.InvalidArgument
            ``exchange_name``, ``api_key``, ``api_secret`` or ``passphrase``; nothing is
            sent to the venue and nothing is stored.
        """
        self.profile(venue)
        violations = credential_violations(venue, credentials)
        if violations:
            raise errors.InvalidArgument(
                [errors.FieldViolation(name, why) for name, why in violations],
                reason="INVALID_CREDENTIALS",
            )

    async def test_credentials(self, venue: str, credentials: Credentials) -> ConnectionReport:
        """Try ``credentials``: reachable, authenticated, allowed to trade and not to withdraw."""
        self.check_credentials(venue, credentials)
        port = self.venues.connect(venue, credentials)
        reachable = authenticated = False
        permissions: KeyPermissions | None = None
        latency_ms = 0
        venue_message = ""
        try:
            try:
                await port.load_markets()
                reachable = True
                started = time.perf_counter()
                await port.fetch_balances()
                latency_ms = int((time.perf_counter() - started) * 1000)
                authenticated = True
                try:
                    permissions = await port.fetch_key_permissions()
                except (errors.FailedPrecondition, errors.Unimplemented, errors.NotFound):
                    permissions = None
            except errors.FailedPrecondition as e:
                if e.reason != "BROKER_CREDENTIALS_REJECTED":
                    raise
                venue_message = e.message
            except (errors.Unavailable, errors.ResourceExhausted, errors.OutcomeUnknown):
                pass
        finally:
            await port.close()
        return judge_credentials(
            reachable=reachable,
            authenticated=authenticated,
            permissions=permissions,
            latency_ms=latency_ms,
            venue_message=venue_message,
        )

    async def supported_venues(self) -> list[tuple[VenueProfile, list[Market]]]:
        """Return every venue with its markets when the venue can be reached now."""
        described = []
        for profile in self.venues.profiles():
            try:
                markets = await self.venues.public_markets(profile.name)
            except errors.ServiceError:
                markets = {}
            described.append((profile, [markets[s] for s in sorted(markets) if markets[s].active]))
        return described

    # Connections ------------------------------------------------------------------------------

    async def _connection(self, exchange_id: str, user_id: str) -> _Connection:
        connection = self._connections.get(exchange_id)
        if connection is not None:
            if user_id and connection.account.user_id != user_id:
                await self._account_row(exchange_id, user_id)  # raises NotFound
            return connection
        lock = self._connecting.setdefault(exchange_id, asyncio.Lock())
        async with lock:
            row = await self._account_row(exchange_id, user_id)
            connection = self._connections.get(exchange_id)
            if connection is None:
                credentials = self._open(row)
                port = self.venues.connect(row.account.exchange_name, credentials)
                connection = _Connection(row.account, port)
                self._connections[exchange_id] = connection
            return connection

    def _open(self, row: AccountRow) -> Credentials:
        associated = account_associated_data(row.account.exchange_id, row.account.user_id)
        try:
            plaintext = self.cipher.decrypt(row.ciphertext, row.nonce, row.key_id, associated)
        except DecryptionError:
            log.error(
                "credentials of exchange account %s cannot be opened", row.account.exchange_id
            )
            raise errors.FailedPrecondition(
                "the stored credentials of this account cannot be read; register it again",
                reason="CREDENTIALS_UNREADABLE",
            ) from None
        data = json.loads(plaintext)
        return Credentials(data["api_key"], data["api_secret"], data.get("passphrase", ""))

    # Orders -----------------------------------------------------------------------------------

    async def place_order(self, exchange_id: str, user_id: str, request: OrderRequest) -> Order:
        """Place ``request`` once: a repeat of its client order id answers from the venue."""
        connection = await self._connection(exchange_id, user_id)
        profile = self.profile(connection.account.exchange_name)
        if request.type not in profile.order_types:
            raise errors.invalid(
                "type", f"{request.type.name} orders are not supported at {profile.name}"
            )
        if request.time_in_force and request.time_in_force not in profile.time_in_forces:
            raise errors.invalid(
                "time_in_force",
                f"{request.time_in_force.name} is not supported at {profile.name}",
            )
        market = await self._market(connection.port, request.symbol, profile)
        violations = market_violations(request, market)
        if violations:
            raise errors.InvalidArgument(
                [errors.FieldViolation(name, why) for name, why in violations],
                reason="INVALID_ORDER",
            )
        existing = await self.store.get_order(exchange_id, request.client_order_id)
        if existing is None:
            if await self.store.reserve_order(exchange_id, request, self.clock.now()):
                return await self._send(connection, request)
            existing = await self.store.get_order(exchange_id, request.client_order_id)
            if existing is None:  # pragma: no cover - a reservation vanished under us
                raise errors.OutcomeUnknown("the order is being placed by another call")
        return await self._replay(connection, profile, request, existing)

    async def _send(self, connection: _Connection, request: OrderRequest) -> Order:
        exchange_id = connection.account.exchange_id
        await afaultpoint("broker.before_send")
        try:
            order = await connection.port.place_order(request)
            await afaultpoint("broker.after_send")
        except errors.OutcomeUnknown:
            raise
        except errors.FailedPrecondition as e:
            if e.reason == "DUPLICATE_CLIENT_ORDER_ID":
                return await self._adopt(connection, request)
            await self.store.forget_unsent(exchange_id, request.client_order_id)
            raise
        except _DEFINITIVE_REFUSALS:
            # The venue answered and took nothing: the client order id is free again.
            await self.store.forget_unsent(exchange_id, request.client_order_id)
            raise
        await self.store.record_order(exchange_id, order, self.clock.now())
        return order

    async def _adopt(self, connection: _Connection, request: OrderRequest) -> Order:
        # The venue already holds an order under this client order id (an earlier send that
        # arrived late, or a record the broker lost): take it as this request's order when it
        # has the same terms, and never send another.
        exchange_id = connection.account.exchange_id
        record = await self.store.get_order(exchange_id, request.client_order_id)
        try:
            order = await connection.port.fetch_order(
                request.client_order_id, request.symbol, _hint(record)
            )
        except errors.ServiceError:
            raise errors.OutcomeUnknown(
                "the venue holds an order with this client_order_id that could not be read;"
                " look it up again later",
            ) from None
        held = OrderRequest(
            request.client_order_id,
            order.symbol,
            order.side,
            order.type,
            order.quantity,
            order.price,
            order.stop_price,
            order.time_in_force,
        )
        differing = differing_fields(request, held)
        if differing:
            await self.store.forget_unsent(exchange_id, request.client_order_id)
            raise errors.FailedPrecondition(
                f"the venue holds another order under client_order_id {request.client_order_id}"
                f" (different {', '.join(differing)})",
                reason="DUPLICATE_CLIENT_ORDER_ID",
            )
        await self.store.record_order(exchange_id, order, self.clock.now())
        return order

    async def _replay(
        self,
        connection: _Connection,
        profile: VenueProfile,
        request: OrderRequest,
        existing: OrderRecord,
    ) -> Order:
        differing = differing_fields(request, existing.request)
        if differing:
            raise errors.FailedPrecondition(
                f"client_order_id {request.client_order_id} was used for another order"
                f" (different {', '.join(differing)})",
                reason="DUPLICATE_CLIENT_ORDER_ID",
            )
        exchange_id = connection.account.exchange_id
        try:
            order = await connection.port.fetch_order(
                request.client_order_id, request.symbol, _hint(existing)
            )
        except errors.NotFound:
            if not existing.unresolved:
                return _order_from_record(existing)
            if not await self._resend_allowed(exchange_id, existing, profile):
                raise errors.OutcomeUnknown(
                    "an earlier attempt with this client_order_id is not resolved yet;"
                    " look the order up again later",
                ) from None
            return await self._send(connection, request)
        await self.store.record_order(exchange_id, order, self.clock.now())
        return order

    async def _resend_allowed(
        self,
        exchange_id: str,
        existing: OrderRecord,
        profile: VenueProfile,
    ) -> bool:
        now = self.clock.now()
        floor = (
            self._resend_floor
            if self._resend_floor is not None
            else profile.resend_safe_after_seconds
        )
        if not may_resend_after_absence(existing.sent_at, now, floor):
            return False
        return await self.store.mark_resent(exchange_id, existing.request.client_order_id, now)

    async def _lookup_symbol(
        self, exchange_id: str, client_order_id: str, symbol: str, profile: VenueProfile
    ) -> str:
        if symbol:
            return symbol
        record = await self.store.get_order(exchange_id, client_order_id)
        if record is not None:
            return record.request.symbol
        if profile.symbol_required_for_lookup:
            raise errors.invalid(
                "symbol",
                f"is required at {profile.name} when the broker has no record of the order",
            )
        return ""

    async def get_order(
        self,
        exchange_id: str,
        user_id: str,
        client_order_id: str,
        symbol: str,
    ) -> Order:
        """Look an order up at the venue by its client order id and record what it says."""
        return await self._act_on_order(
            exchange_id,
            user_id,
            client_order_id,
            symbol,
            lambda port: port.fetch_order,
        )

    async def cancel_order(
        self,
        exchange_id: str,
        user_id: str,
        client_order_id: str,
        symbol: str,
    ) -> Order:
        """Cancel an order at the venue by its client order id and record the result."""
        return await self._act_on_order(
            exchange_id,
            user_id,
            client_order_id,
            symbol,
            lambda port: port.cancel_order,
            after_venue=lambda: afaultpoint("broker.in_cancel"),
        )

    async def _act_on_order(
        self,
        exchange_id: str,
        user_id: str,
        client_order_id: str,
        symbol: str,
        action: Callable[[ExchangePort], Callable[..., Awaitable[Order]]],
        *,
        after_venue: Callable[[], Awaitable[None]] | None = None,
    ) -> Order:
        connection = await self._connection(exchange_id, user_id)
        profile = self.profile(connection.account.exchange_name)
        symbol = await self._lookup_symbol(exchange_id, client_order_id, symbol, profile)
        record = await self.store.get_order(exchange_id, client_order_id)
        order = await action(connection.port)(client_order_id, symbol, _hint(record))
        if after_venue is not None:
            await after_venue()  # the venue acted; nothing recorded or answered yet
        await self.store.record_order(exchange_id, order, self.clock.now())
        return order

    async def list_orders(
        self,
        exchange_id: str,
        user_id: str,
        symbols: Sequence[str],
        start: datetime,
        end: datetime | None,
    ) -> list[Order]:
        """Return the account's orders created in ``[start, end)``, oldest first."""
        connection = await self._connection(exchange_id, user_id)
        return await connection.port.fetch_orders(symbols, start, end or self.clock.now())

    async def list_fills(
        self,
        exchange_id: str,
        user_id: str,
        symbols: Sequence[str],
        since: datetime | None,
    ) -> list[Fill]:
        """Return the account's fills at or after ``since``, oldest first."""
        connection = await self._connection(exchange_id, user_id)
        fills = await connection.port.fetch_fills(symbols, since)
        missing = [f.venue_order_id for f in fills if not f.client_order_id]
        if not missing:
            return fills
        # Some venues (Binance) report trades without the order's client id: the broker knows it.
        known = await self.store.client_order_ids(exchange_id, missing)
        return [
            replace(f, client_order_id=known.get(f.venue_order_id, ""))
            if not f.client_order_id
            else f
            for f in fills
        ]

    async def portfolio(self, exchange_id: str, user_id: str, quote: str) -> Portfolio:
        """Read the account's balances and value them in ``quote`` (the venue's main by default)."""
        connection = await self._connection(exchange_id, user_id)
        profile = self.profile(connection.account.exchange_name)
        quote = quote or profile.main_quote
        balances = await connection.port.fetch_balances()
        read_at = self.clock.now()
        markets = await connection.port.load_markets()
        wanted: dict[str, str] = {}
        for balance in balances:
            if balance.total == 0 or is_quote_equivalent(balance.asset, quote):
                continue
            for symbol in pricing_symbols(balance.asset, quote):
                if symbol in markets:
                    wanted[balance.asset] = symbol
                    break
        prices: dict[str, Decimal] = {}
        for symbol in wanted.values():
            price = await connection.port.fetch_last_price(symbol)
            if price is not None:
                prices[symbol] = price
        return value_portfolio(balances, prices, quote, read_at)

    async def market(
        self, exchange_id: str, user_id: str, symbol: str
    ) -> tuple[Market, Decimal | None]:
        """Return a market of the account's venue and its last price."""
        connection = await self._connection(exchange_id, user_id)
        profile = self.profile(connection.account.exchange_name)
        market = await self._market(connection.port, symbol, profile)
        return market, await connection.port.fetch_last_price(symbol)

    async def candles(
        self,
        exchange_id: str,
        user_id: str,
        symbol: str,
        timeframe: str,
        since: datetime | None,
        limit: int,
    ) -> list[Candle]:
        """Return a market's candles of ``timeframe``, oldest first."""
        connection = await self._connection(exchange_id, user_id)
        profile = self.profile(connection.account.exchange_name)
        await self._market(connection.port, symbol, profile)
        return await connection.port.fetch_candles(symbol, timeframe, since, limit)

    @contextlib.asynccontextmanager
    async def watch(
        self,
        exchange_id: str,
        user_id: str,
        channel: WatchChannel,
        symbols: Sequence[str],
    ) -> AsyncIterator[AsyncIterator[Order | Fill | StreamEvent]]:
        """Watch an account's orders or fills; one venue stream serves every watcher of it.

        The first item is a ``CONNECTED`` event once the venue confirmed the subscription (the
        caller backfills through ``ListFills`` then); fills the venue reports without their
        order's client id get it from the broker's records.
        """
        connection = await self._connection(exchange_id, user_id)
        if symbols:
            profile = self.profile(connection.account.exchange_name)
            for index, symbol in enumerate(symbols):
                markets = await connection.port.load_markets()
                if symbol not in markets:
                    raise errors.InvalidArgument(
                        errors.FieldViolation(
                            f"symbols[{index}]", f"{symbol} is not a market at {profile.name}"
                        ),
                        reason="INVALID_SYMBOL",
                    )
        async with self.streams.watch(
            (exchange_id, channel),
            lambda: connection.port.watch(channel),
            symbols,
        ) as subscription:
            yield self._with_client_ids(exchange_id, subscription)

    async def _with_client_ids(
        self, exchange_id: str, subscription: Subscription
    ) -> AsyncIterator[Order | Fill | StreamEvent]:
        async for item in subscription:
            if isinstance(item, Fill) and not item.client_order_id and item.venue_order_id:
                known = await self.store.client_order_ids(exchange_id, [item.venue_order_id])
                item = replace(item, client_order_id=known.get(item.venue_order_id, ""))
            yield item

    async def _market(self, port: ExchangePort, symbol: str, profile: VenueProfile) -> Market:
        markets = await port.load_markets()
        market = markets.get(symbol)
        if market is None:
            raise errors.InvalidArgument(
                errors.FieldViolation("symbol", f"{symbol} is not a market at {profile.name}"),
                reason="INVALID_SYMBOL",
            )
        return market


def _hint(record: OrderRecord | None) -> OrderHint | None:
    if record is None:
        return None
    return OrderHint(record.venue_order_id, record.sent_at)


def _refusal_reason(report: ConnectionReport) -> str:
    if not report.authenticated:
        return "BROKER_CREDENTIALS_REJECTED"
    if report.can_withdraw:
        return "API_KEY_CAN_WITHDRAW"
    if not report.can_trade:
        return "API_KEY_CANNOT_TRADE"
    return "API_KEY_PERMISSIONS_UNKNOWN"


def _order_from_record(record: OrderRecord) -> Order:
    request = record.request
    return Order(
        client_order_id=request.client_order_id,
        venue_order_id=record.venue_order_id,
        symbol=request.symbol,
        side=request.side,
        type=request.type,
        quantity=request.quantity,
        status=record.status,
        filled_quantity=record.filled_quantity,
        price=request.price,
        stop_price=request.stop_price,
        average_price=record.average_price,
        time_in_force=request.time_in_force,
        created_at=record.created_at,
        updated_at=record.updated_at,
    )
