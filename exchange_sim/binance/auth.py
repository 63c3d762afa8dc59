"""Binance request authentication: HMAC-SHA256 over the raw received bytes, and timing checks.

REST (docs/exchange-protocols.md §2.2): the signed payload is the raw query string
concatenated with the raw body, without the trailing ``signature`` parameter, exactly as
received (never re-encoded). The key comes in the ``X-MBX-APIKEY`` header.

WebSocket API (§2.5): the payload is the request's params except ``signature``, sorted by key
and joined as ``k=v`` with ``&``, values as they are and not URL-encoded.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

from exchange_sim.binance.errors import BinanceError, bad_api_key, bad_request, mandatory
from exchange_sim.binance.params import merge, opt_int, parse_query
from exchange_sim.core.accounts import Account, AccountBook

MAX_RECV_WINDOW = 60_000
DEFAULT_RECV_WINDOW = 5_000
_SIG = "signature="


def _split_signature(raw: str) -> tuple[str, str | None]:
    """(raw without its trailing signature parameter, the signature) - signature must come last."""
    if raw.startswith(_SIG):
        return "", raw[len(_SIG) :]
    at = raw.rfind("&" + _SIG)
    if at < 0:
        return raw, None
    return raw[:at], raw[at + 1 + len(_SIG) :]


def signature_ok(secret: str, payload: str, signature: str) -> bool:
    """Constant-time check of a hex HMAC-SHA256 (hex is case-insensitive on Binance)."""
    expected = hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature.lower())


def check_timing(params: Mapping[str, str], now_ms: int) -> None:
    """Binance's rule: timestamp < now + 1000 and now - timestamp <= recvWindow (-1021)."""
    timestamp = opt_int(params, "timestamp")
    if timestamp is None:
        raise mandatory("timestamp")
    recv_window = opt_int(params, "recvWindow")
    if recv_window is None:
        recv_window = DEFAULT_RECV_WINDOW
    if recv_window > MAX_RECV_WINDOW or recv_window <= 0:
        raise bad_request(
            -1102,
            f"'recvWindow' contains unexpected value. Cannot be greater than '{MAX_RECV_WINDOW}'.",
        )
    if timestamp >= now_ms + 1000:
        raise bad_request(
            -1021, "Timestamp for this request was 1000ms ahead of the server's time."
        )
    if now_ms - timestamp > recv_window:
        raise bad_request(-1021, "Timestamp for this request is outside of the recvWindow.")


def lookup_key(accounts: AccountBook, api_key: str | None) -> Account:
    """The account behind an API key: -2014 when absent, -2015 when unknown (both HTTP 401)."""
    if not api_key:
        raise BinanceError(401, -2014, "API-key format invalid.")
    account = accounts.find(api_key)
    if account is None:
        raise bad_api_key()
    return account


def authenticate_rest(
    accounts: AccountBook,
    api_key: str | None,
    raw_query: str,
    raw_body: str,
    now_ms: int,
) -> tuple[Account, dict[str, str]]:
    """Verify a signed REST request; returns the account and the merged parameters."""
    account = lookup_key(accounts, api_key)
    query, query_sig = _split_signature(raw_query)
    body, body_sig = _split_signature(raw_body)
    signature = body_sig if body_sig is not None else query_sig
    if not signature:
        raise mandatory("signature")
    if not signature_ok(account.api_secret, query + body, signature):
        raise BinanceError(401, -1022, "Signature for this request is not valid.")
    params = merge(parse_query(query), parse_query(body))
    check_timing(params, now_ms)
    return account, params


def ws_payload(params: Mapping[str, object]) -> str:
    """The string a WebSocket API request signs: sorted ``k=v`` pairs, not URL-encoded."""
    return "&".join(f"{k}={_ws_value(v)}" for k, v in sorted(params.items()) if k != "signature")


def _ws_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def authenticate_ws(accounts: AccountBook, params: Mapping[str, object], now_ms: int) -> Account:
    """Verify a signed WebSocket API request (``apiKey``, ``timestamp``, ``signature``...)."""
    api_key = params.get("apiKey")
    account = lookup_key(accounts, api_key if isinstance(api_key, str) else None)
    signature = params.get("signature")
    if not isinstance(signature, str) or not signature:
        raise mandatory("signature")
    if not signature_ok(account.api_secret, ws_payload(params), signature):
        raise BinanceError(401, -1022, "Signature for this request is not valid.")
    check_timing({k: _ws_value(v) for k, v in params.items()}, now_ms)
    return account
