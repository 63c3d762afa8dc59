"""Webhook signing secrets at rest: AES-256-GCM under ``GATEWAY_WEBHOOK_SECRET_KEY``.

The gateway must read a webhook's secret back to sign each delivery (HMAC), so it cannot keep
only a hash as it does for API tokens: it seals the secret instead, as the broker seals
exchange keys. Each seal draws a fresh random 96-bit nonce; the associated data names the row
(webhook id and user id), so a sealed secret copied into another row does not open; the key's
id (first 8 hex digits of its SHA-256) is stored beside it, so a later key change can tell
which key sealed what. Nothing here logs or repeats a secret or a key.
"""

from __future__ import annotations

import base64
import hashlib
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_BYTES = 32
NONCE_BYTES = 12
_AAD_PREFIX = b"copytrade/gateway/webhooks/v1"


class SecretUnavailable(Exception):
    """A stored secret cannot be opened: no key, another key, another row, or altered bytes."""


def key_id(key: bytes) -> str:
    """Return the id of ``key``: the first 8 hex digits of its SHA-256."""
    return hashlib.sha256(key).hexdigest()[:8]


def _associated_data(webhook_id: str, user_id: str) -> bytes:
    return b"|".join((_AAD_PREFIX, webhook_id.encode(), user_id.encode()))


class SecretBox:
    """Seals and opens webhook secrets under one key."""

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise ValueError(f"the webhook secret key must be {KEY_BYTES} bytes")
        self._aead = AESGCM(key)
        self.key_id = key_id(key)

    def __repr__(self) -> str:
        return f"SecretBox(key_id={self.key_id!r})"

    def seal(self, secret: str, webhook_id: str, user_id: str) -> tuple[str, str, str]:
        """Return ``(sealed, nonce, key_id)``, the first two base64, for the webhook's row."""
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._aead.encrypt(
            nonce, secret.encode("utf-8"), _associated_data(webhook_id, user_id)
        )
        return base64.b64encode(sealed).decode(), base64.b64encode(nonce).decode(), self.key_id

    def open(
        self, sealed: str, nonce: str, sealed_key_id: str, webhook_id: str, user_id: str
    ) -> str:
        """Return the secret of a row, or raise :class:`SecretUnavailable` (why, never what)."""
        if sealed_key_id != self.key_id:
            raise SecretUnavailable(
                f"sealed under key {sealed_key_id}, not this gateway's key {self.key_id}"
            )
        try:
            plain = self._aead.decrypt(
                base64.b64decode(nonce),
                base64.b64decode(sealed),
                _associated_data(webhook_id, user_id),
            )
        except (InvalidTag, ValueError):
            raise SecretUnavailable("the sealed secret failed authentication") from None
        return plain.decode("utf-8")
