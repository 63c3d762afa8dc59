"""Kraken private-request authentication (docs/exchange-protocols.md §4.2).

``API-Sign`` = base64(HMAC-SHA512(base64decode(secret), uri_path + SHA256(nonce + post_data))),
verified over the raw body exactly as received (form-encoded, or JSON for the calls that send
JSON). The ``nonce`` is read from that body and must be strictly greater than the last nonce
accepted for the key (Kraken's default nonce window of 0); a request whose signature fails does
not consume its nonce. Checks run in the order key, signature, nonce.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from decimal import Decimal
from urllib.parse import parse_qsl

from exchange_sim.core.accounts import Account, AccountBook
from exchange_sim.kraken.errors import INVALID_KEY, INVALID_NONCE, INVALID_SIGNATURE, KrakenError

_NONCE_RE = re.compile(r"^[0-9]{1,20}$")
_MAX_NONCE = (1 << 64) - 1


def sign(secret_b64: str, uri_path: str, nonce: str, post_data: str) -> str:
    """The ``API-Sign`` header value of a request (what the client computes; used to verify)."""
    message = uri_path.encode() + hashlib.sha256((nonce + post_data).encode()).digest()
    digest = hmac.new(base64.b64decode(secret_b64, validate=True), message, hashlib.sha512).digest()
    return base64.b64encode(digest).decode()


class NonceBook:
    """The highest nonce accepted per API key."""

    def __init__(self) -> None:
        self._last: dict[str, int] = {}

    def last(self, api_key: str) -> int | None:
        """The last accepted nonce of ``api_key`` (None before its first private call)."""
        return self._last.get(api_key)

    def accept(self, api_key: str, nonce: int) -> bool:
        """Record ``nonce`` if it is strictly greater than the last one; report whether it was."""
        last = self._last.get(api_key)
        if last is not None and nonce <= last:
            return False
        self._last[api_key] = nonce
        return True


def parse_body(raw_body: str, content_type: str) -> dict[str, str]:
    """The parameters of a private call: a form body, or a JSON object (scalars as strings)."""
    if content_type.startswith("application/json"):
        try:
            decoded = json.loads(raw_body or "{}", parse_float=Decimal)
        except ValueError:
            raise KrakenError("EGeneral:Invalid arguments") from None
        if not isinstance(decoded, dict):
            raise KrakenError("EGeneral:Invalid arguments")
        return {str(k): _scalar(v) for k, v in decoded.items()}
    params: dict[str, str] = {}
    for key, value in parse_qsl(raw_body, keep_blank_values=True):
        params[key] = value  # a repeated key keeps its last value
    return params


def _scalar(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return "" if value is None else str(value)


def authenticate(
    accounts: AccountBook,
    nonces: NonceBook,
    headers: Mapping[str, str],
    uri_path: str,
    raw_body: str,
) -> tuple[Account, dict[str, str]]:
    """Verify a private request; returns the account and the body parameters (nonce included)."""
    api_key = headers.get("API-Key", "")
    account = accounts.find(api_key) if api_key else None
    if account is None:
        raise KrakenError(INVALID_KEY)
    params = parse_body(raw_body, headers.get("Content-Type", ""))
    nonce_text = params.get("nonce", "")
    try:
        expected = sign(account.api_secret, uri_path, nonce_text, raw_body)
    except (binascii.Error, ValueError):  # a secret that is not base64 can sign nothing
        raise KrakenError(INVALID_KEY) from None
    if not hmac.compare_digest(expected, headers.get("API-Sign", "")):
        raise KrakenError(INVALID_SIGNATURE)
    if not _NONCE_RE.match(nonce_text) or int(nonce_text) > _MAX_NONCE:
        raise KrakenError(INVALID_NONCE)
    if not nonces.accept(account.api_key, int(nonce_text)):
        raise KrakenError(INVALID_NONCE)
    return account, params
