"""ENCRYPTION_KEYS_PREVIOUS: keys that still open credentials after a rotation."""

from __future__ import annotations

import base64
import os

import pytest

from broker_svc.config import Settings
from meshkit.settings import ConfigError
from meshkit.testing import trust_env

CURRENT, OLD, OLDER = os.urandom(32), os.urandom(32), os.urandom(32)


def _b64(key: bytes) -> str:
    return base64.b64encode(key).decode()


def _settings(previous: str) -> Settings:
    return Settings.from_env(
        {
            **trust_env("broker"),
            "ENCRYPTION_KEY": _b64(CURRENT),
            "ENCRYPTION_KEYS_PREVIOUS": previous,
        }
    )


def test_no_previous_keys_by_default() -> None:
    alone = Settings.from_env({**trust_env("broker"), "ENCRYPTION_KEY": _b64(CURRENT)})
    assert alone.encryption_keys_previous == ()
    assert _settings("").encryption_keys_previous == ()


def test_previous_keys_are_read_in_order_without_repeats_or_the_current_key() -> None:
    text = f"{_b64(OLD)}, {_b64(OLDER)},{_b64(OLD)},{_b64(CURRENT)}"
    assert _settings(text).encryption_keys_previous == (OLD, OLDER)


@pytest.mark.parametrize(
    ("text", "position"),
    [
        ("not base64!", "entry 1"),
        (f"{_b64(OLD)},{_b64(os.urandom(16))}", "entry 2"),
        (f"{_b64(OLD)},,{_b64(OLDER)}", "position 2"),
        (f"{_b64(OLD)},", "position 2"),
    ],
    # Named by what is wrong, not by the random keys: the same ids every collection.
    ids=["not-base64", "short-key", "empty-entry", "trailing-comma"],
)
def test_a_bad_previous_key_fails_naming_the_variable_and_the_entry_not_the_value(
    text: str,
    position: str,
) -> None:
    with pytest.raises(ConfigError) as raised:
        _settings(text)
    message = str(raised.value)
    assert "ENCRYPTION_KEYS_PREVIOUS" in message and position in message
    assert _b64(OLD) not in message and _b64(OLDER) not in message


def test_previous_keys_are_in_no_repr_of_the_settings() -> None:
    settings = _settings(f"{_b64(OLD)},{_b64(OLDER)}")
    for text in (repr(settings), str(settings)):
        assert _b64(OLD) not in text and repr(OLD) not in text
        assert "encryption_keys_previous" not in text
