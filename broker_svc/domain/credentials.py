"""Judging an API key: what makes credentials fit for copying (pure)."""

from __future__ import annotations

import base64
import binascii
import re

from broker_svc.domain.model import ConnectionReport, Credentials, KeyPermissions

# Venues whose API secret is base64 of the signing key (ccxt decodes it before signing).
BASE64_SECRET_VENUES = frozenset({"kraken"})
_VISIBLE = re.compile(r"[\x21-\x7e]*\Z")
_PRINTABLE = re.compile(r"[\x20-\x7e]*\Z")
# A PEM private key (Coinbase CDP keys, Binance Ed25519/RSA keys): printable lines, LF or CRLF.
_PEM = re.compile(
    r"-----BEGIN [A-Z0-9 ]+-----(?:\r?\n[\x20-\x7e]*)+?\r?\n-----END [A-Z0-9 ]+-----(?:\r?\n)?\Z"
)


def credential_violations(venue: str, credentials: Credentials) -> list[tuple[str, str]]:
    """Return ``(field, why)`` for each credential that no venue could take as it is.

    Keys and secrets go into HTTP headers and signatures: a control character or a line
    break there makes the HTTP client or the signer fail (or worse, splits a header), so
    they are refused before any venue is called. The API key is visible ASCII (no spaces);
    the passphrase printable ASCII; the secret visible ASCII, or a PEM private key whose
    lines are printable ASCII. A venue in :data:`BASE64_SECRET_VENUES` needs a secret that
    is valid base64.
    """
    found: list[tuple[str, str]] = []
    if not _VISIBLE.match(credentials.api_key):
        found.append(
            (
                "api_key",
                "must be visible ASCII characters only"
                " (no spaces, control characters or line breaks)",
            )
        )
    secret = credentials.api_secret
    if not (_VISIBLE.match(secret) or _PEM.match(secret)):
        found.append(
            (
                "api_secret",
                "must be visible ASCII characters only (no spaces, control characters or line "
                "breaks), or a PEM private key",
            )
        )
    elif venue in BASE64_SECRET_VENUES and not _is_base64(secret):
        found.append(("api_secret", f"must be valid base64 for {venue} (the secret it shows)"))
    if not _PRINTABLE.match(credentials.passphrase):
        found.append(
            (
                "passphrase",
                "must be printable ASCII characters only (no control characters or line breaks)",
            )
        )
    return found


def _is_base64(text: str) -> bool:
    try:
        return bool(base64.b64decode(text, validate=True))
    except (binascii.Error, ValueError):
        return False


def judge_credentials(
    *,
    reachable: bool,
    authenticated: bool,
    permissions: KeyPermissions | None,
    latency_ms: int,
    venue_message: str = "",
) -> ConnectionReport:
    """Build the report of a credentials test and say, in words, why a key is not fit.

    A key is fit only when the venue answered, accepted it, lets it trade, and does not let it
    withdraw or transfer funds out. Unknown permissions are not fit: a key is never assumed safe.
    """
    can_trade = bool(permissions and permissions.can_trade)
    can_withdraw = bool(permissions and (permissions.can_withdraw or permissions.can_transfer))
    if not reachable:
        reason = "the venue could not be reached"
    elif not authenticated:
        reason = "the venue rejected the credentials"
    elif permissions is None:
        reason = "the venue did not report the key's permissions"
    elif permissions.can_withdraw:
        reason = "the key can withdraw funds; create a key with trading permission only"
    elif permissions.can_transfer:
        reason = "the key can transfer funds out; create a key with trading permission only"
    elif not permissions.can_trade:
        reason = "the key cannot trade; enable spot trading for it"
    else:
        reason = ""
    if reason and venue_message and not authenticated:
        reason = f"{reason}: {venue_message}"
    return ConnectionReport(
        reachable=reachable,
        authenticated=reachable and authenticated,
        can_trade=can_trade,
        can_withdraw=can_withdraw,
        reason=reason,
        latency_ms=latency_ms,
    )
