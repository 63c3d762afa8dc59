"""Kraken error replies (``{"error": ["<class>:<message>"], "result": {}}``, HTTP 200) and the
mapping from core rejections.

Strings follow docs/exchange-protocols.md §4.7; the ccxt 4.5.90 exception each produces (through
``kraken.handle_errors``: exact table first, then the broad one, else ``ExchangeError``) is noted.
Strings the doc marks unverified are marked [U] here and in exchange_sim/README.md.
"""

from __future__ import annotations

from exchange_sim.core import errors as core
from exchange_sim.core.orders import OrderRequest
from exchange_sim.kraken.markets import KrakenPair


class KrakenError(Exception):
    """A Kraken error reply: one ``error`` string, HTTP 200 unless said otherwise."""

    def __init__(self, message: str, http_status: int = 200) -> None:
        super().__init__(message)
        self.message = message
        self.http_status = http_status

    def body(self) -> dict[str, object]:
        """The JSON body."""
        return {"error": [self.message], "result": {}}


INVALID_KEY = "EAPI:Invalid key"  # ccxt: AuthenticationError
INVALID_SIGNATURE = "EAPI:Invalid signature"  # ccxt: ExchangeError (unmapped)
INVALID_NONCE = "EAPI:Invalid nonce"  # ccxt: InvalidNonce
RATE_LIMIT = "EAPI:Rate limit exceeded"  # ccxt: DDoSProtection
ORDER_RATE_LIMIT = "EOrder:Rate limit exceeded"  # ccxt: DDoSProtection
LOCKOUT = "EGeneral:Temporary lockout"  # ccxt: DDoSProtection
PERMISSION_DENIED = "EGeneral:Permission denied"  # ccxt: PermissionDenied
UNKNOWN_PAIR = "EQuery:Unknown asset pair"  # ccxt: ExchangeError (only "Invalid asset pair" maps)
UNKNOWN_ASSET = "EQuery:Unknown asset"  # ccxt: BadSymbol
UNKNOWN_ORDER = "EOrder:Unknown order"  # ccxt: OrderNotFound in cancel_order, else InvalidOrder
INVALID_ORDER = "EOrder:Invalid order"  # ccxt: InvalidOrder (broad ":Invalid order")
INSUFFICIENT_FUNDS = "EOrder:Insufficient funds"  # ccxt: InsufficientFunds
ORDER_MINIMUM = "EOrder:Order minimum not met"  # ccxt: InvalidOrder
COST_MINIMUM = "EOrder:Cost minimum not met"  # ccxt: ExchangeError (unmapped)
POST_ONLY = "EOrder:Post only order"  # ccxt: ExchangeError (unmapped)
# [U] No source gives Kraken's string for a cl_ord_id already held by an open order; this is the
# placeholder of docs/exchange-protocols.md §4.8. Any unmapped string surfaces as ExchangeError.
DUPLICATE_CL_ORD_ID = "EOrder:Duplicate order"
UNKNOWN_WITHDRAW_KEY = "EFunding:Unknown withdraw key"  # ccxt: InvalidAddress
UNKNOWN_METHOD = "EGeneral:Unknown method"
INTERNAL_ERROR = "EGeneral:Internal error"  # ccxt: ExchangeNotAvailable


def invalid_arguments(field: str) -> KrakenError:
    """``EGeneral:Invalid arguments:<field>`` (ccxt: InvalidOrder for ``volume``, ``viqc`` and
    ``price``; ExchangeError for any other field, since only the bare string maps to BadRequest)."""
    return KrakenError(f"EGeneral:Invalid arguments:{field}")


def invalid_price(pair: KrakenPair) -> KrakenError:
    """A price off the pair's decimals. [U] wording recalled from the live venue; ccxt maps only
    ``EOrder:Invalid price:Invalid price argument``, so this one surfaces as ExchangeError."""
    return KrakenError(
        f"EOrder:Invalid price:{pair.altname} price can only be specified up to "
        f"{pair.pair_decimals} decimals."
    )


def from_venue_error(
    exc: core.VenueError, request: OrderRequest | None = None, pair: KrakenPair | None = None
) -> KrakenError:
    """The Kraken reply for a core rejection (of ``request`` on ``pair`` when placing an order)."""
    if isinstance(exc, core.UnknownSymbol):
        return KrakenError(UNKNOWN_PAIR)
    if isinstance(exc, core.FilterFailure):
        if exc.kind is core.FilterKind.NOTIONAL:
            return KrakenError(COST_MINIMUM)
        if exc.kind is core.FilterKind.PRICE:
            return invalid_arguments("price")
        too_small = (
            exc.kind is core.FilterKind.QUANTITY
            and request is not None
            and pair is not None
            and request.quantity is not None
            and request.quantity < pair.market.min_qty
        )
        return KrakenError(ORDER_MINIMUM) if too_small else invalid_arguments("volume")
    if isinstance(exc, core.InsufficientBalance):
        return KrakenError(INSUFFICIENT_FUNDS)
    if isinstance(exc, core.DuplicateClientOrderId):
        return KrakenError(DUPLICATE_CL_ORD_ID)
    if isinstance(exc, core.WouldMatchImmediately):
        return KrakenError(POST_ONLY)
    if isinstance(exc, core.WouldTriggerImmediately):
        # [U] Kraken may accept a stop whose trigger is already met and trigger it at once; the
        # core rejects it (never executes something the client did not expect to execute now).
        return invalid_arguments("price")
    if isinstance(exc, core.OrderNotFound):
        return KrakenError(UNKNOWN_ORDER)
    if isinstance(exc, core.TradingNotAllowed):
        return KrakenError(PERMISSION_DENIED)
    if isinstance(exc, core.UnknownAccount):
        return KrakenError(INVALID_KEY)
    if isinstance(exc, core.InvalidOrderRequest):
        return KrakenError("EGeneral:Invalid arguments")
    return KrakenError(INTERNAL_ERROR)
