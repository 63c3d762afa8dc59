"""Bearer tokens, identity forwarding, the plan gate and the per-user rate limit."""

from __future__ import annotations

import time

import pytest

from gateway.users import add_user, revoke_token
from meshkit.identity import ASSERTION_HEADER, ASSERTION_TTL_SECONDS, USER_HEADER
from meshkit.testing import TEST_VERIFIER
from tests.gateway.conftest import API, Harness


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer",
        "Bearer ",
        "Basic dXNlcjpwYXNz",
        "Bearer a b",
        "Bearer " + "x" * 300,
    ],
)
async def test_missing_or_malformed_authorization_is_401_with_challenge(
    harness: Harness,
    authorization: str | None,
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    status, body, response_headers = await harness.call(
        "GET",
        f"{API}/configs",
        token=None,
        headers=headers,
    )
    assert status == 401
    assert body["code"] == 16
    assert response_headers["WWW-Authenticate"].startswith("Bearer")
    assert harness.recorder.calls == []


async def test_unknown_token_is_401_invalid_token(harness: Harness) -> None:
    status, _body, headers = await harness.call(
        "GET",
        f"{API}/configs",
        token="Bearer ct_not-a-token",
    )
    assert status == 401
    assert 'error="invalid_token"' in headers["WWW-Authenticate"]
    assert harness.recorder.calls == []


async def test_revoked_token_is_401_at_once(harness: Harness) -> None:
    assert (await harness.call("GET", f"{API}/configs"))[0] == 200
    assert await revoke_token(harness.database, harness.pro_token) is True
    status, _, _ = await harness.call("GET", f"{API}/configs")
    assert status == 401


async def test_unknown_api_path_still_needs_a_token(harness: Harness) -> None:
    status, _, _ = await harness.call("GET", f"{API}/nothing", token=None)
    assert status == 401


async def test_bearer_scheme_is_case_insensitive(harness: Harness) -> None:
    status, _, _ = await harness.call("GET", f"{API}/configs", token=f"bearer {harness.pro_token}")
    assert status == 200


async def test_user_id_comes_from_the_token_and_client_copies_are_stripped(
    harness: Harness,
) -> None:
    status, _, _ = await harness.call(
        "GET",
        f"{API}/configs",
        headers={
            "X-Copytrade-User-Id": "mallory",
            "Grpc-Metadata-X-Copytrade-User-Id": "mallory",
            "Grpc-Metadata-x-copytrade-anything": "mallory",
            "Grpc-Metadata-Trace-Tag": "t-1",
            "Grpc-Metadata-Grpc-Timeout": "1S",
            "X-Request-Id": "req-42",
            "X-Other-Header": "not forwarded",
        },
    )
    assert status == 200
    call = harness.recorder.last("ListConfigs")
    # The user travels only as an assertion signed by the gateway, for the token's user and plan.
    assert call.header(USER_HEADER) == []
    (assertion,) = call.header(ASSERTION_HEADER)
    user_id, plan, expires_at = TEST_VERIFIER.verify(assertion)
    assert (user_id, plan) == (harness.pro_user_id, "pro")
    assert 0 < expires_at - time.time() <= ASSERTION_TTL_SECONDS
    assert "mallory" not in [value for _, value in call.metadata]
    assert call.header("trace-tag") == ["t-1"]
    assert call.header("x-request-id") == ["req-42"]
    assert call.header("authorization") == []
    assert call.header("x-other-header") == []


async def test_response_carries_the_request_id(harness: Harness) -> None:
    _, _, headers = await harness.call("GET", f"{API}/configs", headers={"X-Request-Id": "abc-1"})
    assert headers["X-Request-Id"] == "abc-1"
    _, _, headers = await harness.call(
        "GET",
        f"{API}/configs",
        headers={"X-Request-Id": "bad id\u00e9"},
    )
    assert headers["X-Request-Id"] != "bad id\u00e9" and len(headers["X-Request-Id"]) == 32


@pytest.mark.parametrize(
    "method,path,body",
    [
        ("POST", "/start", {"source_exchange_id": "e"}),
        ("GET", "/configs", None),
        ("GET", "/status/c-1", None),
        ("POST", "/exchanges", {"exchange_name": "binance"}),
        ("POST", "/reconcile", {"config_id": "c-1"}),
        ("POST", "/backtests", {"name": "s"}),
    ],
)
async def test_free_plan_gets_403_on_copy_trading_endpoints(
    harness: Harness,
    method: str,
    path: str,
    body: dict | None,
) -> None:
    status, reply, _ = await harness.call(method, f"{API}{path}", token="free", json=body)
    assert status == 403
    assert reply["code"] == 7
    info = next(d for d in reply["details"] if d["@type"].endswith("ErrorInfo"))
    assert info["reason"] == "PLAN_REQUIRED" and info["metadata"]["required_plan"] == "pro"
    assert harness.recorder.calls == []


async def test_free_plan_may_read_supported_exchanges(harness: Harness) -> None:
    status, body, _ = await harness.call("GET", f"{API}/supported-exchanges", token="free")
    assert status == 200
    assert body["exchanges"][0]["markets"][0]["min_notional"] == "5"


async def test_rate_limit_answers_429_with_retry_after_per_user(make_harness) -> None:
    harness: Harness = await make_harness(rate_limit_per_second=1, rate_limit_burst=2)
    assert (await harness.call("GET", f"{API}/configs"))[0] == 200
    assert (await harness.call("GET", f"{API}/configs"))[0] == 200
    status, body, headers = await harness.call("GET", f"{API}/configs")
    assert status == 429
    assert body["code"] == 8
    assert headers["Retry-After"] == "1"
    # Another user has a bucket of its own.
    assert (await harness.call("GET", f"{API}/supported-exchanges", token="free"))[0] == 200
    harness.clock.advance(1.0)
    assert (await harness.call("GET", f"{API}/configs"))[0] == 200


async def test_rate_limit_of_zero_turns_limiting_off(make_harness) -> None:
    harness: Harness = await make_harness(rate_limit_per_second=0, rate_limit_burst=1)
    for _ in range(5):
        assert (await harness.call("GET", f"{API}/configs"))[0] == 200


async def test_new_user_token_works_at_once(harness: Harness) -> None:
    _user_id, token = await add_user(harness.database, "carol", "pro")
    status, _, _ = await harness.call("GET", f"{API}/configs", token=f"Bearer {token}")
    assert status == 200


async def _raw_request(harness: Harness, head: bytes) -> tuple[int, bytes]:
    """Send ``head`` (request line and headers, no body) as bytes; return the status and body."""
    import asyncio

    server = harness.client.server
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        writer.write(head + b"Connection: close\r\n\r\n")
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), timeout=5)
    finally:
        writer.close()
    status_line, _, rest = answer.partition(b"\r\n")
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2]


@pytest.mark.parametrize(
    "token", ["ct_caf\u00e9".encode(), b"ct_caf\xe9", b"ct_\xff\xfe", "\u20ac".encode()]
)
async def test_a_token_that_is_not_ascii_is_401_not_store_unavailable(
    harness: Harness,
    token: bytes,
) -> None:
    import json

    status, body = await _raw_request(
        harness,
        b"GET "
        + API.encode()
        + b"/configs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
        + token
        + b"\r\n",
    )
    assert status == 401
    assert json.loads(body)["code"] == 16
    assert harness.recorder.calls == []
