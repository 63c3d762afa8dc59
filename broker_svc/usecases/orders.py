"""Orders: placing one exactly once by its client order id, looking up, cancelling, listing.

The broker records an order before it sends it, answers a repeat from the venue's state instead
of sending again, and resends an unresolved order only once the venue has proved it never took
the first request.

Fences: an engine replica sends each order under its lease on the leader source the order
copies (a key and a fencing token that grows at every takeover). Before any venue call the
broker records the attempt (``order_attempts``) unless a higher token has fenced the key, and
:meth:`OrderUseCases.fence` raises a key's token. Once ``fence(key, T)`` has returned, no
order carrying ``key`` and a token below ``T`` reaches a venue unless its attempt was
recorded before; so a venue "not found" for a client order id with no attempt recorded
(``GetOrder``'s ``NotFound`` with metadata ``never_placed: "true"``) proves, after a fence,
that the previous holder never sent the order and never will: the new holder may send it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from datetime import datetime

from broker_svc.domain.model import Fill, Order, OrderHint, OrderRequest, VenueProfile
from broker_svc.domain.orders import (
    differing_fields,
    market_violations,
    may_resend_after_absence,
    unsupported_order,
)
from broker_svc.domain.records import NO_FENCE, Fence, OrderRecord
from broker_svc.ports import ExchangePort
from broker_svc.usecases.connections import ConnectionPool
from broker_svc.usecases.core import _Connection
from meshkit import errors
from meshkit.faultpoints import afaultpoint
from meshkit.leases import FENCED_WRITES

_DEFINITIVE_REFUSALS = (
    errors.InvalidArgument,
    errors.FailedPrecondition,
    errors.ResourceExhausted,
    errors.Unimplemented,
    errors.NotFound,
)


class OrderUseCases(ConnectionPool):
    """Orders at the venue of an account."""

    async def fence(self, fence: Fence) -> int:
        """Raise the token of ``fence.key`` to ``fence.token``; return the key's token now.

        Idempotent. Raises ``FailedPrecondition`` (reason ``FENCED``) when the key's token is
        already higher: a later holder of the lease fenced it.
        """
        stored = await self.store.raise_fence(fence)
        if stored > fence.token:
            FENCED_WRITES.labels("broker", "fence").inc()
            raise _fenced(fence, stored)
        return stored

    async def place_order(
        self,
        exchange_id: str,
        user_id: str,
        request: OrderRequest,
        fence: Fence = NO_FENCE,
    ) -> Order:
        """Place ``request`` once: a repeat of its client order id answers from the venue.

        The attempt and the reservation of the client order id are recorded in one
        transaction before any venue call (the market is checked after them, from the
        connection's cached markets; a refusal there frees the id again). With a ``fence``
        whose token is below the key's, nothing is recorded or sent: ``FailedPrecondition``
        with reason ``FENCED``.
        """
        connection = await self._connection(exchange_id, user_id)
        profile = self.profile(connection.account.exchange_name)
        unsupported = unsupported_order(profile, request.type, request.time_in_force)
        if unsupported is not None:
            # Refused as asked, before any record or venue call: never placed as another type.
            raise errors.FailedPrecondition(
                unsupported,
                reason="ORDER_TYPE_UNSUPPORTED",
                metadata={
                    "exchange": profile.name,
                    "order_type": request.type.value,
                    "time_in_force": request.time_in_force.value if request.time_in_force else "",
                },
            )
        if request.reduce_only and "reduce_only" not in profile.features:
            raise errors.FailedPrecondition(
                f"reduce_only: {profile.name} holds no positions to reduce",
                reason="REDUCE_ONLY_UNSUPPORTED",
                metadata={"exchange": profile.name},
            )
        prepared = await self.store.prepare_order(exchange_id, request, fence, self.clock.now())
        if prepared.fenced is not None:
            FENCED_WRITES.labels("broker", "place_order").inc()
            raise _fenced(fence, prepared.fenced)
        try:
            market = await self._market(connection.port, request.symbol, profile)
            violations = market_violations(request, market)
            if violations:
                raise errors.InvalidArgument(
                    [errors.FieldViolation(name, why) for name, why in violations],
                    reason="INVALID_ORDER",
                )
        except BaseException:
            if prepared.reserved:
                # Refused (or the markets unreadable) before any venue call: the id is free.
                await self.store.forget_unsent(exchange_id, request.client_order_id)
            raise
        if prepared.reserved:
            return await self._send(connection, request)
        if prepared.existing is None:  # pragma: no cover - a reservation vanished under us
            raise errors.OutcomeUnknown("the order is being placed by another call")
        return await self._replay(connection, profile, request, prepared.existing)

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
        """Look an order up at the venue by its client order id and record what it says.

        When the venue has no such order and the broker never recorded an attempt to place
        it, the ``NotFound`` carries metadata ``never_placed: "true"``.
        """
        try:
            return await self._act_on_order(
                exchange_id,
                user_id,
                client_order_id,
                symbol,
                lambda port: port.fetch_order,
            )
        except errors.NotFound as e:
            if e.reason != "ORDER_NOT_FOUND" or await self._ever_attempted(
                exchange_id, client_order_id
            ):
                raise
            raise errors.NotFound(
                e.message, reason=e.reason, metadata={**e.metadata, "never_placed": "true"}
            ) from None

    async def _ever_attempted(self, exchange_id: str, client_order_id: str) -> bool:
        # An order reserved by a broker that recorded no attempts yet (before the upgrade)
        # counts as attempted: its venue "not found" may be the venue's lag.
        if await self.store.attempted(client_order_id):
            return True
        return await self.store.get_order(exchange_id, client_order_id) is not None

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


def _fenced(fence: Fence, stored: int) -> errors.FailedPrecondition:
    return errors.FailedPrecondition(
        f"the lease {fence.key} was taken over (token {stored} is above {fence.token}):"
        " this replica may no longer send its orders",
        reason="FENCED",
        metadata={"fence_key": fence.key, "fence_token": str(stored)},
    )


def _hint(record: OrderRecord | None) -> OrderHint | None:
    if record is None:
        return None
    return OrderHint(record.venue_order_id, record.sent_at)


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
