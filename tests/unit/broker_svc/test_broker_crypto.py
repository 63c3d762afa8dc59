"""Credentials at rest: AES-GCM sealed to their row, fresh nonces, no secret in any repr."""

from __future__ import annotations

import base64
import logging
import os

import pytest

from broker_svc.config import Settings
from broker_svc.crypto import Cipher, DecryptionError, account_associated_data, key_id
from broker_svc.domain.model import Credentials
from meshkit.settings import ConfigError
from meshkit.testing import trust_env

SECRET = b'{"api_key": "AK-canary-1234", "api_secret": "SK-canary-secret"}'


def _cipher() -> Cipher:
    return Cipher(os.urandom(32))


def _flip(data: bytes, index: int) -> bytes:
    changed = bytearray(data)
    changed[index] ^= 0x01
    return bytes(changed)


def test_encrypt_then_decrypt_returns_the_plaintext() -> None:
    cipher = _cipher()
    aad = account_associated_data("ex-1", "user-1")
    ciphertext, nonce, kid = cipher.encrypt(SECRET, aad)
    assert SECRET not in ciphertext
    assert kid == cipher.key_id
    assert cipher.decrypt(ciphertext, nonce, kid, aad) == SECRET


@pytest.mark.parametrize("index", [0, 10, -1])
def test_decrypt_of_a_flipped_ciphertext_bit_fails(index: int) -> None:
    cipher = _cipher()
    aad = account_associated_data("ex-1", "user-1")
    ciphertext, nonce, kid = cipher.encrypt(SECRET, aad)
    with pytest.raises(DecryptionError):
        cipher.decrypt(_flip(ciphertext, index), nonce, kid, aad)


def test_decrypt_with_a_flipped_nonce_bit_fails() -> None:
    cipher = _cipher()
    aad = account_associated_data("ex-1", "user-1")
    ciphertext, nonce, kid = cipher.encrypt(SECRET, aad)
    with pytest.raises(DecryptionError):
        cipher.decrypt(ciphertext, _flip(nonce, 3), kid, aad)


@pytest.mark.parametrize(
    ("exchange_id", "user_id"),
    [("ex-2", "user-1"), ("ex-1", "user-2"), ("ex-2", "user-2")],
)
def test_ciphertext_moved_to_another_row_fails_to_decrypt(exchange_id: str, user_id: str) -> None:
    cipher = _cipher()
    ciphertext, nonce, kid = cipher.encrypt(SECRET, account_associated_data("ex-1", "user-1"))
    with pytest.raises(DecryptionError):
        cipher.decrypt(ciphertext, nonce, kid, account_associated_data(exchange_id, user_id))


def test_swapping_ciphertexts_between_two_rows_fails_both_ways() -> None:
    cipher = _cipher()
    row_a, row_b = account_associated_data("ex-a", "u"), account_associated_data("ex-b", "u")
    sealed_a, sealed_b = cipher.encrypt(b"secret a", row_a), cipher.encrypt(b"secret b", row_b)
    with pytest.raises(DecryptionError):
        cipher.decrypt(sealed_a[0], sealed_a[1], sealed_a[2], row_b)
    with pytest.raises(DecryptionError):
        cipher.decrypt(sealed_b[0], sealed_b[1], sealed_b[2], row_a)


def test_nonce_never_repeats_over_ten_thousand_encryptions() -> None:
    cipher = _cipher()
    aad = account_associated_data("ex-1", "user-1")
    nonces = {cipher.encrypt(b"x", aad)[1] for _ in range(10_000)}
    assert len(nonces) == 10_000
    assert all(len(nonce) == 12 for nonce in nonces)


def test_decrypt_with_another_key_fails() -> None:
    aad = account_associated_data("ex-1", "user-1")
    ciphertext, nonce, kid = _cipher().encrypt(SECRET, aad)
    with pytest.raises(DecryptionError):
        _cipher().decrypt(ciphertext, nonce, kid, aad)


def test_key_id_is_the_first_eight_hex_digits_of_the_key_hash() -> None:
    key = bytes(range(32))
    assert key_id(key) == "630dcd29"
    assert Cipher(key).key_id == "630dcd29"


def test_rewrap_moves_a_ciphertext_to_the_new_key_and_the_old_key_still_opens() -> None:
    old_key, new_key = os.urandom(32), os.urandom(32)
    aad = account_associated_data("ex-1", "user-1")
    sealed = Cipher(old_key).encrypt(SECRET, aad)
    rotating = Cipher(new_key, old_keys=(old_key,))
    assert rotating.decrypt(*sealed, aad) == SECRET
    ciphertext, nonce, kid = rotating.rewrap(*sealed, aad)
    assert kid == key_id(new_key) != sealed[2]
    assert Cipher(new_key).decrypt(ciphertext, nonce, kid, aad) == SECRET


def test_a_key_of_the_wrong_length_is_refused() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        Cipher(os.urandom(16))


def _environ(key: bytes | str) -> dict[str, str]:
    text = key if isinstance(key, str) else base64.b64encode(key).decode()
    return {"ENCRYPTION_KEY": text}


def test_settings_read_a_base64_encryption_key() -> None:
    key = os.urandom(32)
    settings = Settings.from_env({**trust_env("broker"), **_environ(key)})
    assert settings.encryption_key == key
    assert (settings.grpc_port, settings.metrics_port, settings.order_timeout_ms) == (
        50051,
        9091,
        10000,
    )
    assert settings.database_url == "sqlite:///.copytrade/broker.db"


@pytest.mark.parametrize(
    "environ",
    [
        {},
        {"ENCRYPTION_KEY": ""},
        _environ(os.urandom(16)),
        _environ(os.urandom(33)),
        {"ENCRYPTION_KEY": "not base64 at all!"},
    ],
    ids=["missing", "empty", "16 bytes", "33 bytes", "not base64"],
)
def test_settings_without_a_valid_encryption_key_fail_naming_it(environ: dict[str, str]) -> None:
    with pytest.raises(ConfigError, match="ENCRYPTION_KEY"):
        Settings.from_env({**trust_env("broker"), **environ})


def test_settings_read_venue_urls_and_timeout() -> None:
    settings = Settings.from_env(
        {
            **trust_env("broker"),
            **_environ(os.urandom(32)),
            "VENUE_URLS": "binance=http://127.0.0.1:9101",
            "ORDER_TIMEOUT_MS": "2500",
        },
    )
    assert settings.venue_urls == {"binance": "http://127.0.0.1:9101"}
    assert settings.order_timeout_ms == 2500


def test_the_encryption_key_is_in_no_repr_or_log_line_of_the_settings(
    caplog: pytest.LogCaptureFixture,
) -> None:
    key = os.urandom(32)
    encoded = base64.b64encode(key).decode()
    settings = Settings.from_env({**trust_env("broker"), **_environ(key)})
    caplog.set_level(logging.INFO)
    logging.getLogger("broker_svc.test").info("settings: %s %r", settings, settings)
    logged = "\n".join(record.getMessage() for record in caplog.records)
    for text in (repr(settings), str(settings), logged, repr(Cipher(key))):
        assert encoded not in text
        assert repr(key) not in text
        assert "encryption_key" not in text


def test_credentials_repr_shows_no_secret() -> None:
    credentials = Credentials("AK-canary-1234", "SK-canary-secret", "PP-canary")
    text = repr(credentials)
    for secret in ("AK-canary-1234", "SK-canary-secret", "PP-canary"):
        assert secret not in text
    assert credentials.api_key_hint == "1234"
