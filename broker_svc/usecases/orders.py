"""Orders: placing one exactly once by its client order id, looking up, cancelling, listing.

The broker records an order before it sends it, answers a repeat from the venue's state instead
of sending again, and resends an unresolved order only once the venue has proved it never took
the first request.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from datetime import datetime

from broker_svc.domain.model import Fill, Order, OrderHint, OrderRequest, VenueProfile
from broker_svc.domain.orders import differing_fields, market_violations, may_resend_after_absence
from broker_svc.domain.records import OrderRecord
from broker_svc.ports import ExchangePort
from broker_svc.usecases.connections import ConnectionPool
from broker_svc.usecases.core import _Connection
from meshkit import errors
from meshkit.faultpoints import afaultpoint

_DEFINITIVE_REFUSALS = (
    errors.InvalidArgument,
    errors.FailedPrecondition,
    errors.ResourceExhausted,
    errors.Unimplemented,
    errors.NotFound,
)


class OrderUseCases(ConnectionPool):
    """Orders at the venue of an account."""

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
