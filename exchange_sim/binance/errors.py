"""Binance error replies (``{"code": ..., "msg": ...}``) and the mapping from core rejections.

Codes, messages and HTTP statuses follow docs/exchange-protocols.md §2.7 and Binance's
error code list; the ccxt 4.5.90 exception each one produces is noted beside it.
"""

from __future__ import annotations

from exchange_sim.core import errors as core

MSG_BAD_KEY = "Invalid API-key, IP, or permissions for action."


class BinanceError(Exception):
    """A Binance error reply. ``retry_after_s`` adds a ``Retry-After`` header."""

    def __init__(
        self, http_status: int, code: int, msg: str, *, retry_after_s: int | None = None
    ) -> None:
        super().__init__(f"{http_status} {code} {msg}")
        self.http_status = http_status
        self.code = code
        self.msg = msg
        self.retry_after_s = retry_after_s

    def body(self) -> dict[str, object]:
        """The JSON body."""
        return {"code": self.code, "msg": self.msg}


def bad_request(code: int, msg: str) -> BinanceError:
    """An HTTP 400 error."""
    return BinanceError(400, code, msg)


def mandatory(name: str) -> BinanceError:
    """-1102: a required parameter is missing (ccxt: BadRequest)."""
    return bad_request(
        -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed."
    )


def illegal_chars(name: str, legal: str) -> BinanceError:
    """-1100: a parameter does not parse (ccxt: BadRequest)."""
    return bad_request(
        -1100, f"Illegal characters found in parameter '{name}'; legal range is '{legal}'."
    )


def not_required(name: str) -> BinanceError:
    """-1106: a parameter this order type does not take (ccxt: BadRequest)."""
    return bad_request(-1106, f"Parameter '{name}' sent when not required.")


def invalid_symbol() -> BinanceError:
    """-1121 (ccxt: BadSymbol)."""
    return bad_request(-1121, "Invalid symbol.")


def bad_api_key() -> BinanceError:
    """-2015 with HTTP 401 (ccxt: AuthenticationError; DDoSProtection once the same client has
    authenticated successfully before - a ccxt 4.5.90 quirk, see binance.handle_errors)."""
    return BinanceError(401, -2015, MSG_BAD_KEY)


_FILTER_NAMES = {
    core.FilterKind.PRICE: "PRICE_FILTER",  # ccxt: InvalidOrder (substring rule)
    core.FilterKind.QUANTITY: "LOT_SIZE",  # ccxt: InvalidOrder (substring rule)
    core.FilterKind.MARKET_QUANTITY: "MARKET_LOT_SIZE",  # ccxt: InvalidOrder ("LOT_SIZE" substring)
    core.FilterKind.NOTIONAL: "NOTIONAL",  # ccxt: BadRequest (code rule -1013)
}


def from_venue_error(exc: core.VenueError, *, cancelling: bool = False) -> BinanceError:
    """The Binance reply for a core rejection. ``cancelling`` selects -2011 over -2013."""
    if isinstance(exc, core.UnknownSymbol):
        return invalid_symbol()
    if isinstance(exc, core.FilterFailure):
        return bad_request(-1013, f"Filter failure: {_FILTER_NAMES[exc.kind]}")
    if isinstance(exc, core.InsufficientBalance):  # ccxt: InsufficientFunds (exact message)
        return bad_request(-2010, "Account has insufficient balance for requested action.")
    if isinstance(exc, core.DuplicateClientOrderId):  # ccxt: InvalidOrder
        return bad_request(-2010, "Duplicate order sent.")
    if isinstance(exc, core.WouldMatchImmediately):  # ccxt: OrderImmediatelyFillable
        return bad_request(-2010, "Order would immediately match and take.")
    if isinstance(exc, core.WouldTriggerImmediately):  # ccxt: OrderImmediatelyFillable
        return bad_request(-2010, "Order would trigger immediately.")
    if isinstance(exc, core.OrderNotFound):  # ccxt: OrderNotFound for both
        return (
            bad_request(-2011, "Unknown order sent.")
            if cancelling
            else bad_request(-2013, "Order does not exist.")
        )
    if isinstance(exc, (core.TradingNotAllowed, core.UnknownAccount)):
        return bad_api_key()
    if isinstance(exc, core.InvalidOrderRequest):
        return bad_request(-1014, "Unsupported order combination.")
    return BinanceError(500, -1000, "An unknown error occurred while processing the request.")
