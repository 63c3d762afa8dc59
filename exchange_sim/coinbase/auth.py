"""Coinbase request authentication (docs/exchange-protocols.md §3.2): CDP keys and legacy keys.

CDP keys (what ``POST /_sim/accounts`` hands out): the key name is
``organizations/{org}/apiKeys/{id}`` and the secret an EC P-256 private key in PEM (SEC1
``EC PRIVATE KEY``), as the Coinbase Developer Platform issues them. Every request carries
``Authorization: Bearer <JWT>``, an ES256 JWT the emulator verifies by hand with
``cryptography`` (no PyJWT): base64url header and claims, raw ``r||s`` signature converted to
DER, checked against the public key derived from the account's PEM.

Checks, and the choices made where Coinbase's rules are not documented:

* header ``alg`` must be ``ES256``; ``kid`` (when present) and the ``sub`` claim must both name
  the key. ``iss`` and ``aud`` are not checked (ccxt sends ``coinbase-cloud`` /
  ``retail_rest_api_proxy``, the official SDK ``cdp`` and no ``aud``).
* ``nbf`` and ``exp`` are checked with a 10 s leeway, and a token may live at most 120 s
  (Coinbase's JWT lifetime), so a long-lived token that the real venue refuses fails here too.
* REST tokens must carry ``uri = "<METHOD> <host><path>"`` (no query string) naming this very
  request. The host may be the emulator's own (``127.0.0.1:9102``, also with ``http://`` since
  ccxt strips only ``https://``) or ``api.coinbase.com`` (the official SDK's form).
  WebSocket tokens carry no ``uri``.
* The ``nonce`` header is not tracked (replay within the token lifetime is accepted).

Legacy keys (an account created with an explicit non-PEM ``api_secret``): headers
``CB-ACCESS-KEY``, ``CB-ACCESS-TIMESTAMP`` (seconds) and ``CB-ACCESS-SIGN`` =
hex(HMAC-SHA256(secret, timestamp + METHOD + path + body)); the path carries the query string on
v2 GETs only, as ccxt signs it. A timestamp more than 30 s off is refused with "request timestamp
expired". On the WebSocket a legacy key signs ``timestamp + channel + ",".join(product_ids)``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import uuid
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from exchange_sim.core.accounts import Account, AccountBook

LEEWAY_S = 10
MAX_LIFETIME_S = 120
LEGACY_WINDOW_S = 30
PROD_HOST = "api.coinbase.com"


class AuthFailure(Exception):
    """The request is not authenticated; ``expired`` marks a stale legacy timestamp."""

    def __init__(self, reason: str, *, expired: bool = False) -> None:
        super().__init__(reason)
        self.expired = expired


def new_cdp_credentials() -> tuple[str, str]:
    """A CDP-style key name and a fresh EC P-256 private key (SEC1 PEM)."""
    name = f"organizations/{uuid.uuid4()}/apiKeys/{uuid.uuid4()}"
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()
    return name, pem


def is_cdp_secret(secret: str) -> bool:
    """CDP secrets are PEM private keys; anything else is a legacy HMAC secret."""
    return secret.lstrip().startswith("-----BEGIN")


def _b64url(segment: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError):
        raise AuthFailure("jwt: bad base64url") from None


def _json_segment(segment: str) -> dict[str, Any]:
    try:
        value = json.loads(_b64url(segment))
    except ValueError:
        raise AuthFailure("jwt: bad JSON") from None
    if not isinstance(value, dict):
        raise AuthFailure("jwt: not a JSON object")
    return value


def _int_claim(claims: dict[str, Any], name: str) -> int:
    value = claims.get(name)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise AuthFailure(f"jwt: {name} missing")
    return int(value)


@dataclass
class Verifier:
    """Verifies requests against one venue's accounts; caches public keys per key name."""

    accounts: AccountBook

    def __post_init__(self) -> None:
        self._public: dict[str, ec.EllipticCurvePublicKey] = {}

    def _public_key(self, account: Account) -> ec.EllipticCurvePublicKey:
        cached = self._public.get(account.api_key)
        if cached is not None:
            return cached
        try:
            private = serialization.load_pem_private_key(account.api_secret.encode(), password=None)
        except (ValueError, TypeError):
            raise AuthFailure("account secret is not a usable EC private key") from None
        if not isinstance(private, ec.EllipticCurvePrivateKey) or not isinstance(
            private.curve, ec.SECP256R1
        ):
            raise AuthFailure("account secret is not an EC P-256 key")
        public = private.public_key()
        self._public[account.api_key] = public
        return public

    def verify_jwt(
        self,
        token: str,
        now_s: int,
        *,
        method: str | None = None,
        hosts: tuple[str, ...] = (),
        path: str | None = None,
    ) -> Account:
        """Verify an ES256 JWT; with ``method``/``path`` its ``uri`` must name that request."""
        parts = token.split(".")
        if len(parts) != 3:
            raise AuthFailure("jwt: expected three segments")
        header, claims = _json_segment(parts[0]), _json_segment(parts[1])
        if header.get("alg") != "ES256":
            raise AuthFailure("jwt: alg must be ES256")
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject:
            raise AuthFailure("jwt: sub missing")
        if "kid" in header and header["kid"] != subject:
            raise AuthFailure("jwt: kid and sub differ")
        account = self.accounts.find(subject)
        if account is None or not is_cdp_secret(account.api_secret):
            raise AuthFailure("jwt: unknown key")
        signature = _b64url(parts[2])
        if len(signature) != 64:
            raise AuthFailure("jwt: signature must be 64 bytes (r||s)")
        der = encode_dss_signature(
            int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
        )
        try:
            self._public_key(account).verify(
                der, f"{parts[0]}.{parts[1]}".encode(), ec.ECDSA(hashes.SHA256())
            )
        except InvalidSignature:
            raise AuthFailure("jwt: bad signature") from None
        expires, not_before = _int_claim(claims, "exp"), claims.get("nbf")
        if now_s > expires + LEEWAY_S:
            raise AuthFailure("jwt: expired")
        if expires - now_s > MAX_LIFETIME_S + LEEWAY_S:
            raise AuthFailure("jwt: lifetime over 120 s")
        if not_before is not None and now_s + LEEWAY_S < _int_claim(claims, "nbf"):
            raise AuthFailure("jwt: not yet valid")
        if path is not None:
            uri = claims.get("uri")
            allowed = {
                f"{method} {prefix}{host}{path}"
                for host in (*hosts, PROD_HOST)
                for prefix in ("", "http://")
            }
            if uri not in allowed:
                raise AuthFailure("jwt: uri does not name this request")
        return account

    def verify_hmac(
        self,
        api_key: str | None,
        timestamp: str | None,
        signature: str | None,
        payload_tail: str,
        now_s: int,
    ) -> Account:
        """Verify a legacy ``CB-ACCESS-*`` signature over ``timestamp + payload_tail``."""
        if not api_key or not timestamp or not signature:
            raise AuthFailure(
                "legacy: CB-ACCESS-KEY, CB-ACCESS-SIGN and CB-ACCESS-TIMESTAMP are required"
            )
        account = self.accounts.find(api_key)
        if account is None or is_cdp_secret(account.api_secret):
            raise AuthFailure("legacy: unknown key")
        expected = hmac.new(
            account.api_secret.encode(), (timestamp + payload_tail).encode(), hashlib.sha256
        )
        if not hmac.compare_digest(expected.hexdigest(), signature.lower()):
            raise AuthFailure("legacy: bad signature")
        try:
            stamp = int(timestamp)
        except ValueError:
            raise AuthFailure("legacy: bad timestamp") from None
        if abs(now_s - stamp) > LEGACY_WINDOW_S:
            raise AuthFailure("request timestamp expired", expired=True)
        return account
