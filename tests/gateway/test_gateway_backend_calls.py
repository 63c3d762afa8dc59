"""Decimals, PATCH masks, backend errors as HTTP, deadlines and an unreachable backend."""

from __future__ import annotations

import socket

import grpc
import pytest

from gateway.config import Settings
from gateway.routes import default_services
from gateway.server import GatewayDeps, build_app
from gateway.users import add_user
from meshkit import db, errors
from meshkit.testing import gateway_trust
from tests.gateway.conftest import API, Harness


def _detail(body: dict, kind: str) -> dict:
    wanted = f"type.googleapis.com/google.rpc.{kind}"
    return next(d for d in body["details"] if d["@type"] == wanted)


# ------------------------------------------------------------------------------ decimals


@pytest.mark.parametrize(
    "sent,received",
    [
        ("0.1", "0.1"),
        ("1.10", "1.10"),
        ("0.30000000000000004", "0.30000000000000004"),
        ("0.123456789012345678901234", "0.123456789012345678901234"),
        ("1e-7", "0.0000001"),
        ("2E+3", "2000"),
        ("5", "5"),
        ("-0.5", "-0.5"),
    ],
)
async def test_decimal_json_number_arrives_as_its_exact_text(
    harness: Harness,
    sent: str,
    received: str,
) -> None:
    raw = '{"source_exchange_id": "e", "risk_limits": {"max_position_size": ' + sent + "}}"
    status, body, _ = await harness.call("POST", f"{API}/start", data=raw.encode())
    assert status == 200, body
    limits = harness.recorder.last("StartCopy").request.risk_limits
    assert limits.max_position_size.value == received
    assert body["config"]["risk_limits"]["max_position_size"] == received


async def test_sum_of_decimals_is_never_computed_in_float(harness: Harness) -> None:
    status, body, _ = await harness.call(
        "POST",
        f"{API}/start",
        json={
            "risk_limits": {"max_position_size": 0.1, "max_slippage": "0.1", "max_daily_loss": 0.3},
        },
    )
    assert status == 200
    limits = harness.recorder.last("StartCopy").request.risk_limits
    sent = (limits.max_position_size.value, limits.max_slippage.value, limits.max_daily_loss.value)
    assert sent == ("0.1", "0.1", "0.3")
    assert "0.30000000000000004" not in str(body) and "0.1000000000000000055" not in str(body)


async def test_decimal_numeric_string_is_accepted(harness: Harness) -> None:
    status, _, _ = await harness.call(
        "POST",
        f"{API}/start",
        json={
            "copy_settings": {"min_trade_size": "10.00", "max_trade_size": 250},
        },
    )
    assert status == 200
    settings = harness.recorder.last("StartCopy").request.copy_settings
    assert settings.min_trade_size.value == "10.00" and settings.max_trade_size.value == "250"


@pytest.mark.parametrize(
    "value",
    [
        "ten",
        "",
        " 1",
        "1_000",
        "NaN",
        "Infinity",
        "0x10",
        True,
        [1],
        {"value": "1"},
    ],
)
async def test_non_numeric_decimal_is_400_naming_the_field(harness: Harness, value: object) -> None:
    status, body, _ = await harness.call(
        "POST",
        f"{API}/start",
        json={"risk_limits": {"max_slippage": value}},
    )
    assert status == 400
    violations = {v["field"] for v in _detail(body, "BadRequest")["field_violations"]}
    assert violations == {"risk_limits.max_slippage"}
    assert harness.recorder.calls == []


async def test_decimal_with_absurd_exponent_is_400(harness: Harness) -> None:
    status, _, _ = await harness.call(
        "POST",
        f"{API}/start",
        data=b'{"risk_limits": {"max_slippage": 1e999999}}',
    )
    assert status == 400


async def test_repeated_and_map_decimals_are_flattened_both_ways(harness: Harness) -> None:
    status, body, _ = await harness.call(
        "PUT",
        "/v1/items/n",
        json={
            "name": "given",
            "levels": [0.1, "0.25"],
            "prices": {"BTC": 50000.1, "ETH": "3000"},
            "inner": {"amount": 7},
        },
    )
    assert status == 200, body
    item = harness.recorder.last("PutItem").request.item
    assert [level.value for level in item.levels] == ["0.1", "0.25"]
    assert {k: v.value for k, v in item.prices.items()} == {"BTC": "50000.1", "ETH": "3000"}
    assert body["item"]["levels"] == ["0.1", "0.25"]
    assert body["item"]["prices"] == {"BTC": "50000.1", "ETH": "3000"}
    assert body["item"]["inner"]["amount"] == "7"


async def test_output_decimals_are_strings_with_no_precision_lost(harness: Harness) -> None:
    status, body, _ = await harness.call("GET", f"{API}/status/c-1")
    assert status == 200
    order = body["recent_orders"][0]
    assert order["quantity"] == "0.01" and order["price"] == "50000.1"
    assert order["leader_quantity"] == "0.30000000000000000001"
    assert "filled_quantity" not in order  # an unset decimal is left out, not {} or ""


async def test_publish_signals_body_with_decimals_reaches_sync(harness: Harness) -> None:
    status, body, _ = await harness.call(
        "POST",
        f"{API}/backtests/b-1/signals",
        json={
            "signals": [
                {
                    "signal_id": "s1",
                    "symbol": "BTC/USDT",
                    "side": "buy",
                    "quantity": 0.015,
                    "price": "50000",
                    "order_type": "market",
                    "portfolio_fraction": 0.25,
                },
            ]
        },
    )
    assert status == 200, body
    signal = harness.recorder.last("PublishSignals").request.signals[0]
    assert signal.quantity.value == "0.015" and signal.portfolio_fraction.value == "0.25"
    assert body == {"sequences": ["1"], "accepted": 1, "duplicates": 0}


# ------------------------------------------------------------------------------ PATCH


async def test_patch_derives_update_mask_from_body_leaf_paths(harness: Harness) -> None:
    status, body, _ = await harness.call(
        "PATCH",
        f"{API}/configs/c-7",
        json={
            "risk_limits": {"max_slippage": 0.02, "max_daily_loss": "0.05"},
            "copy_settings": {
                "exclude_symbols": ["DOGE/USDT"],
                "symbol_map": {"BTC/USDT": "BTC/USD"},
            },
            "sync_settings": {"sync_interval": 5},
        },
    )
    assert status == 200, body
    request = harness.recorder.last("UpdateConfig").request
    assert request.config_id == "c-7"
    assert list(request.update_mask.paths) == [
        "risk_limits.max_slippage",
        "risk_limits.max_daily_loss",
        "copy_settings.exclude_symbols",
        "copy_settings.symbol_map",
        "sync_settings.sync_interval",
    ]
    assert request.risk_limits.max_slippage.value == "0.02"


async def test_patch_mask_leaves_out_the_path_field_and_keeps_nulls(harness: Harness) -> None:
    status, _, _ = await harness.call(
        "PATCH",
        f"{API}/configs/c-7",
        json={
            "config_id": "c-other",
            "riskLimits": {"maxSlippage": None},
        },
    )
    assert status == 200
    request = harness.recorder.last("UpdateConfig").request
    assert request.config_id == "c-7"
    assert list(request.update_mask.paths) == ["risk_limits.max_slippage"]


async def test_patch_with_explicit_update_mask_keeps_it(harness: Harness) -> None:
    status, _, _ = await harness.call(
        "PATCH",
        f"{API}/configs/c-7",
        json={
            "risk_limits": {"max_slippage": 0.02, "max_daily_loss": 0.1},
            "update_mask": "risk_limits.max_slippage",
        },
    )
    assert status == 200
    assert list(harness.recorder.last("UpdateConfig").request.update_mask.paths) == [
        "risk_limits.max_slippage",
    ]


@pytest.mark.parametrize("body", [{}, {"risk_limits": {}}, {"config_id": "c-7"}])
async def test_patch_that_names_no_field_is_400_and_not_sent(harness: Harness, body: dict) -> None:
    status, reply, _ = await harness.call("PATCH", f"{API}/configs/c-7", json=body)
    assert status == 400
    assert _detail(reply, "ErrorInfo")["reason"] == "EMPTY_UPDATE"
    assert harness.recorder.calls == []


async def test_patch_with_body_field_derives_mask_relative_to_that_field(harness: Harness) -> None:
    body = {"price": 1, "inner": {"sub": "x"}}
    status, _, _ = await harness.call("PATCH", "/v1/items/n", json=body)
    assert status == 200
    mask = harness.recorder.last("PatchItem").request.update_mask
    assert list(mask.paths) == ["price", "inner.sub"]


# ------------------------------------------------------------------------------ backend errors


@pytest.mark.parametrize(
    "error,http_code,grpc_code,reason",
    [
        (errors.NotFound("no config c-1", reason="CONFIG_NOT_FOUND"), 404, 5, "CONFIG_NOT_FOUND"),
        (errors.invalid("config_id", "must be a UUID"), 400, 3, "INVALID_ARGUMENT"),
        (errors.FailedPrecondition("no funds", reason="NO_FUNDS"), 400, 9, "NO_FUNDS"),
        (errors.AlreadyExists("exists"), 409, 6, "ALREADY_EXISTS"),
        (errors.PermissionDenied("no"), 403, 7, "PERMISSION_DENIED"),
        (errors.Unauthenticated("who?", reason="USER_REQUIRED"), 401, 16, "USER_REQUIRED"),
        (errors.Unimplemented("not on this venue"), 501, 12, "UNIMPLEMENTED"),
        (errors.OutcomeUnknown("venue timed out"), 504, 4, "ORDER_OUTCOME_UNKNOWN"),
        (errors.Unavailable("venue down", retry_after=None), 503, 14, "UNAVAILABLE"),
        (RuntimeError("secret database password in a traceback"), 500, 13, "INTERNAL"),
    ],
)
async def test_backend_status_becomes_http_code_and_status_json(
    harness: Harness,
    error: BaseException,
    http_code: int,
    grpc_code: int,
    reason: str,
) -> None:
    harness.recorder.failures["GetCopyStatus"] = error
    status, body, headers = await harness.call("GET", f"{API}/status/c-1")
    assert status == http_code
    assert body["code"] == grpc_code
    info = _detail(body, "ErrorInfo")
    assert info["reason"] == reason
    assert "secret" not in str(body)
    if http_code == 401:
        assert headers["WWW-Authenticate"].startswith("Bearer")


async def test_invalid_argument_keeps_the_field_violations(harness: Harness) -> None:
    harness.recorder.failures["StartCopy"] = errors.InvalidArgument(
        [
            errors.FieldViolation("risk_limits.max_slippage", "must be below 1"),
        ]
    )
    status, body, _ = await harness.call("POST", f"{API}/start", json={})
    assert status == 400
    assert _detail(body, "BadRequest")["field_violations"] == [
        {"field": "risk_limits.max_slippage", "description": "must be below 1"},
    ]
    assert body["message"] == "risk_limits.max_slippage: must be below 1"


@pytest.mark.parametrize(
    "error,http_code,retry_after",
    [
        (errors.ResourceExhausted("slow down", retry_after=2.5), 429, "3"),
        (errors.Unavailable("exchange down", retry_after=0.2), 503, "1"),
    ],
)
async def test_retry_info_becomes_retry_after(
    harness: Harness,
    error: BaseException,
    http_code: int,
    retry_after: str,
) -> None:
    harness.recorder.failures["ListConfigs"] = error
    status, body, headers = await harness.call("GET", f"{API}/configs")
    assert status == http_code
    assert headers["Retry-After"] == retry_after
    assert _detail(body, "RetryInfo")["retry_delay"]


async def test_deadline_exceeded_is_504_with_outcome_unknown_wording(make_harness) -> None:
    harness: Harness = await make_harness(timeout_ms=100)
    harness.recorder.delays["StopCopy"] = 0.5
    status, body, _ = await harness.call("POST", f"{API}/stop", json={"config_id": "c-1"})
    assert status == 504
    assert body["code"] == 4
    assert _detail(body, "ErrorInfo")["reason"] == "BACKEND_TIMEOUT"
    assert "outcome is unknown" in body["message"]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def test_unreachable_backend_is_503_with_retry_after_and_no_address(tmp_path) -> None:
    address = f"127.0.0.1:{_free_port()}"
    settings = Settings(
        port=0,
        broker_svc_addr=address,
        engine_svc_addr=address,
        sync_svc_addr=address,
        recon_svc_addr=address,
        timeout_ms=2_000,
        database_url=f"sqlite:///{tmp_path}/gw.db",
        **gateway_trust(),
    )
    from aiohttp.test_utils import TestClient, TestServer

    app = build_app(settings, GatewayDeps(services=default_services()))
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        database = await db.connect(settings.database_url)
        try:
            _user, token = await add_user(database, "alice", "pro")
        finally:
            await database.close()
        headers = {"Authorization": f"Bearer {token}"}
        response = await client.post(f"{API}/stop", json={"config_id": "c-1"}, headers=headers)
        body = await response.json()
        assert response.status == 503
        assert response.headers["Retry-After"] == "1"
        assert body["code"] == 14 and _detail(body, "ErrorInfo")["reason"] == "BACKEND_UNAVAILABLE"
        assert address not in str(body)
        health = await client.get("/healthz")
        report = await health.json()
        assert health.status == 503
        assert set(report["backends"].values()) == {"UNREACHABLE"}


def test_every_grpc_code_maps_to_the_code_proto_http_status() -> None:
    from gateway.errors import http_status

    expected = {
        0: 200,
        1: 499,
        2: 500,
        3: 400,
        4: 504,
        5: 404,
        6: 409,
        7: 403,
        8: 429,
        9: 400,
        10: 409,
        11: 400,
        12: 501,
        13: 500,
        14: 503,
        15: 500,
        16: 401,
    }
    assert {code.value[0]: http_status(code.value[0]) for code in grpc.StatusCode} == expected
    assert http_status(99) == 500
