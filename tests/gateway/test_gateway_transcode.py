"""Pure pieces: exact JSON decimals, update-mask derivation, output flattening, the token bucket."""

from __future__ import annotations

from decimal import Decimal

import pytest

from copytrade.engine.v1 import engine_service_pb2 as engine_pb
from gateway.auth import RateLimiter, bearer_token
from gateway.errors import HttpError, status_to_json
from gateway.transcode import decimal_text, derive_update_mask, load_json, message_in, response_json


@pytest.mark.parametrize(
    "value,text",
    [
        (Decimal("0.1"), "0.1"),
        (Decimal("0.10"), "0.10"),
        (5, "5"),
        ("1e-7", "0.0000001"),
        ("-2.5E+2", "-250"),
        (".5", "0.5"),
        ("7.", "7"),
        ("+3", "3"),
    ],
)
def test_decimal_text_keeps_the_exact_value(value: object, text: str) -> None:
    violations: list = []
    assert decimal_text(value, "f", violations) == text
    assert violations == []


@pytest.mark.parametrize(
    "value",
    [
        "",
        "1,5",
        "1_0",
        "inf",
        "NaN",
        "\u0661",
        "1e",
        True,
        None,
        1.5,
        "1" * 40,
    ],
)
def test_decimal_text_rejects_what_is_not_a_plain_decimal(value: object) -> None:
    violations: list = []
    assert decimal_text(value, "risk_limits.max_slippage", violations) is None
    assert [v.field for v in violations] == ["risk_limits.max_slippage"]


def test_load_json_keeps_decimals_exact_and_ints_as_ints() -> None:
    parsed = load_json(b'{"a": 0.1, "b": 12345678901234567890, "c": [1.10]}')
    assert parsed == {"a": Decimal("0.1"), "b": 12345678901234567890, "c": [Decimal("1.10")]}
    assert str(parsed["c"][0]) == "1.10"


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"{",
        b"[1,]",
        b'{"a": Infinity}',
        b'{"a": -NaN}',
        b'{"a":1,"a":2}',
    ],
)
def test_load_json_rejects_malformed_text(raw: bytes) -> None:
    with pytest.raises(HttpError) as caught:
        load_json(raw)
    assert caught.value.http_code == 400


def test_message_in_names_nested_and_indexed_paths() -> None:
    violations: list = []
    message_in(
        {
            "risk_limits": {"max_slippage": "x", "bogus": 1},
            "target_exchange_ids": ["a", None],
            "copy_settings": {"symbol_map": {"BTC/USDT": 3}},
        },
        engine_pb.StartCopyRequest.DESCRIPTOR,
        "",
        violations,
    )
    assert sorted(v.field for v in violations) == [
        'copy_settings.symbol_map["BTC/USDT"]',
        "risk_limits.bogus",
        "risk_limits.max_slippage",
        "target_exchange_ids[1]",
    ]


def test_derive_update_mask_gives_leaf_paths_and_treats_maps_and_lists_as_one() -> None:
    body = {
        "config_id": "c",
        "riskLimits": {"max_slippage": 0.1, "maxDailyLoss": None},
        "copy_settings": {"symbol_map": {"A": "B"}, "exclude_symbols": [], "min_trade_size": 5},
        "sync_settings": {},
    }
    paths = derive_update_mask(
        body,
        engine_pb.UpdateConfigRequest.DESCRIPTOR,
        frozenset({"config_id"}),
    )
    assert paths == [
        "risk_limits.max_slippage",
        "risk_limits.max_daily_loss",
        "copy_settings.symbol_map",
        "copy_settings.exclude_symbols",
        "copy_settings.min_trade_size",
    ]


def test_response_json_flattens_decimals_and_drops_empty_ones() -> None:
    response = engine_pb.GetCopyStatusResponse(
        recent_orders=[
            engine_pb.CopiedOrder(
                quantity={"value": "0.010"},
                price={"value": ""},
            )
        ]
    )
    order = response_json(response)["recent_orders"][0]
    assert order["quantity"] == "0.010"
    assert "price" not in order
    assert order["latency_ms"] == 0


def test_response_body_of_an_unset_message_is_an_empty_object() -> None:
    assert response_json(engine_pb.UpdateConfigResponse(), "config") == {}


def test_status_json_keeps_unknown_detail_types_by_name_only() -> None:
    from google.protobuf import any_pb2
    from google.rpc import status_pb2

    status = status_pb2.Status(
        code=5,
        message="gone",
        details=[
            any_pb2.Any(type_url="type.googleapis.com/example.Secret", value=b"\x0a\x03abc"),
        ],
    )
    assert status_to_json(status) == {
        "code": 5,
        "message": "gone",
        "details": [{"@type": "type.googleapis.com/example.Secret"}],
    }


def test_token_bucket_allows_a_burst_then_refills_at_the_rate() -> None:
    now = [0.0]
    limiter = RateLimiter(rate=2, burst=3, clock=lambda: now[0])
    assert [limiter.acquire("u") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.acquire("u") == pytest.approx(0.5)
    assert limiter.acquire("v") == 0.0
    now[0] += 0.5
    assert limiter.acquire("u") == 0.0
    assert limiter.acquire("u") > 0


@pytest.mark.parametrize(
    "header,token",
    [
        ("Bearer abc", "abc"),
        ("bearer  abc ", "abc"),
        ("BEARER x.y", "x.y"),
    ],
)
def test_bearer_token_parses_the_scheme_case_insensitively(header: str, token: str) -> None:
    assert bearer_token(header) == token
