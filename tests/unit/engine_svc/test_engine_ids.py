"""The deterministic client order id of an intent."""

from __future__ import annotations

import uuid

import pytest

from engine_svc.domain.ids import COPYTRADE_NAMESPACE, client_order_id, is_uuid

CONFIG = "7d4f6f0e-3a53-4a55-8d7c-0c3d8a1b2c01"
SOURCE = "0b7f1b52-5a9e-4c3e-9d52-9a1d2e3f4a02"
TARGET = "c2d8e6a1-4b5c-4d6e-8f70-1a2b3c4d5e03"


def test_client_order_id_is_the_uuid5_of_the_intent_key() -> None:
    expected = uuid.uuid5(COPYTRADE_NAMESPACE, f"{CONFIG}/{SOURCE}/42/{TARGET}/0")
    assert client_order_id(CONFIG, SOURCE, 42, TARGET, 0) == str(expected)


def test_client_order_id_is_the_same_every_time() -> None:
    first = client_order_id(CONFIG, SOURCE, 42, TARGET)
    assert all(client_order_id(CONFIG, SOURCE, 42, TARGET) == first for _ in range(5))
    assert len(first) == 36


@pytest.mark.parametrize(
    "other",
    [
        (CONFIG, SOURCE, 43, TARGET, 0),
        (CONFIG, SOURCE, 42, TARGET, 1),
        (CONFIG, SOURCE, 42, SOURCE, 0),
        (TARGET, SOURCE, 42, TARGET, 0),
    ],
)
def test_client_order_id_differs_when_any_part_of_the_key_differs(other: tuple) -> None:
    assert client_order_id(*other) != client_order_id(CONFIG, SOURCE, 42, TARGET, 0)


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        (CONFIG, True),
        (CONFIG.upper(), False),
        ("not-a-uuid", False),
        ("", False),
        ("7d4f6f0e3a534a558d7c0c3d8a1b2c01", False),
    ],
)
def test_is_uuid_accepts_only_the_canonical_form(text: str, ok: bool) -> None:
    assert is_uuid(text) is ok
