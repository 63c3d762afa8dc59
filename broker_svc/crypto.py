"""Encryption of exchange credentials at rest: AES-256-GCM bound to the account row.

Every encryption draws a fresh random 96-bit nonce (the API takes none from the caller). The
associated data names the row (exchange id and user id), so a ciphertext copied into another
row fails to decrypt. ``key_id`` (the first 8 hex digits of SHA-256 of the key) is stored with
each ciphertext, so that a later key rotation can find and re-wrap what an old key sealed.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

NONCE_BYTES = 12
KEY_BYTES = 32
_AAD_PREFIX = b"copytrade/broker/exchange_accounts/v1"
# The key-check value: a known plaintext sealed under the broker's key, so that a start with
# a key that cannot open it is refused before any account is touched.
KEY_CHECK_PLAINTEXT = b"copytrade broker key check v1"
KEY_CHECK_ASSOCIATED_DATA = b"copytrade/broker/broker_key_check/v1"


class DecryptionError(Exception):
    """A ciphertext did not authenticate: wrong key, wrong row, or altered bytes."""


def key_id(key: bytes) -> str:
    """Return the id of ``key``: the first 8 hex digits of its SHA-256."""
    return hashlib.sha256(key).hexdigest()[:8]


def account_associated_data(exchange_id: str, user_id: str) -> bytes:
    """Return the associated data that binds a credentials ciphertext to its account row."""
    return b"|".join((_AAD_PREFIX, exchange_id.encode(), user_id.encode()))


class Cipher:
    """AES-GCM with one key that seals and, for rotation, older keys that still open."""

    def __init__(self, key: bytes, *, old_keys: tuple[bytes, ...] = ()) -> None:
        for candidate in (key, *old_keys):
            if len(candidate) != KEY_BYTES:
                raise ValueError(f"an encryption key must be {KEY_BYTES} bytes")
        self._key_id = key_id(key)
        self._keys: Mapping[str, AESGCM] = {
            key_id(candidate): AESGCM(candidate) for candidate in (*old_keys, key)
        }

    def __repr__(self) -> str:
        return f"Cipher(key_id={self._key_id!r})"

    @property
    def key_id(self) -> str:
        """Return the id of the key that seals new ciphertexts."""
        return self._key_id

    @property
    def key_ids(self) -> tuple[str, ...]:
        """Return the ids of every key that opens: the older ones first, the current one last."""
        return tuple(self._keys)

    def encrypt(self, plaintext: bytes, associated_data: bytes) -> tuple[bytes, bytes, str]:
        """Seal ``plaintext`` under a fresh random nonce; return ``(ciphertext, nonce, key_id)``."""
        nonce = os.urandom(NONCE_BYTES)
        ciphertext = self._keys[self._key_id].encrypt(nonce, plaintext, associated_data)
        return ciphertext, nonce, self._key_id

    def decrypt(
        self, ciphertext: bytes, nonce: bytes, key_id: str, associated_data: bytes
    ) -> bytes:
        """Open a ciphertext, or raise :class:`DecryptionError` saying nothing of its content."""
        aead = self._keys.get(key_id)
        if aead is None:
            raise DecryptionError(f"no encryption key with id {key_id!r} is configured")
        if len(nonce) != NONCE_BYTES:
            raise DecryptionError("the stored nonce is malformed")
        try:
            return aead.decrypt(nonce, ciphertext, associated_data)
        except InvalidTag:
            raise DecryptionError("stored credentials failed authentication") from None

    def rewrap(
        self,
        ciphertext: bytes,
        nonce: bytes,
        key_id: str,
        associated_data: bytes,
    ) -> tuple[bytes, bytes, str]:
        """Re-seal a ciphertext under the current key without the plaintext leaving memory."""
        return self.encrypt(
            self.decrypt(ciphertext, nonce, key_id, associated_data), associated_data
        )
