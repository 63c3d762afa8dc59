"""What the gateway does before (and below) the API: a rate limit per client address, cheap
liveness and cached readiness probes, a body read timeout, and JSON for HTTP parser errors."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from gateway.config import Settings
from gateway.server import GATEWAY_KEY, Gateway
from meshkit.settings import ConfigError
from meshkit.testing import trust_env
from tests.gateway.conftest import API, Harness, HarnessFactory


def _gateway(harness: Harness) -> Gateway:
    return harness.client.server.app[GATEWAY_KEY]


def _reason(body: dict[str, Any]) -> str:
    for detail in body["details"]:
        if detail["@type"].endswith("google.rpc.ErrorInfo"):
            return str(detail["reason"])
    return ""


async def _raw(harness: Harness, data: bytes, *, then: bytes = b"") -> tuple[int, dict, bytes]:
    """Send raw bytes on a fresh loopback connection (``then`` after a pause); return the
    status, the JSON body and the raw head of the answer. Bounded: at most 5 s a read."""
    reader, writer = await asyncio.open_connection("127.0.0.1", harness.client.server.port)
    try:
        writer.write(data)
        await writer.drain()
        if then:
            await asyncio.sleep(0.05)
            writer.write(then)
            await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=5)
        length = next(
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        body = await asyncio.wait_for(reader.readexactly(length), timeout=5)
    finally:
        writer.close()
    return int(head.split()[1]), json.loads(body), head


# ----------------------------------------------------------------- rate limit per address


async def test_unknown_tokens_from_one_address_are_limited_before_authentication(
    make_harness: HarnessFactory,
) -> None:
    harness = await make_harness(ip_rate_limit_per_second=1, ip_rate_limit_burst=3)
    gateway = _gateway(harness)
    assert gateway.store is not None
    lookups = 0
    token_status = gateway.store.token_status

    async def counted(token: str) -> Any:
        nonlocal lookups
        lookups += 1
        return await token_status(token)

    gateway.store.token_status = counted
    for _ in range(3):
        status, _, _ = await harness.call("GET", f"{API}/configs", token="Bearer ct_unknown")
        assert status == 401
    status, body, headers = await harness.call("GET", f"{API}/configs", token="Bearer ct_unknown")
    assert status == 429
    assert (body["code"], _reason(body)) == (8, "ADDRESS_RATE_LIMITED")
    assert headers["Retry-After"] == "1"
    assert headers["Content-Type"].startswith("application/json")
    assert lookups == 3  # the refused request never reached the token store
    # A valid token from the same address waits too, and so do the probes.
    assert (await harness.call("GET", f"{API}/configs"))[0] == 429
    for path in ("/healthz", "/readyz", "/livez", "/metrics"):
        assert (await harness.client.get(path)).status == 429
    harness.clock.advance(1.0)
    assert (await harness.call("GET", f"{API}/configs"))[0] == 200


async def test_an_address_rate_limit_of_zero_turns_it_off(make_harness: HarnessFactory) -> None:
    harness = await make_harness(ip_rate_limit_per_second=0, ip_rate_limit_burst=1)
    for _ in range(20):
        status, _, _ = await harness.call("GET", f"{API}/configs", token="Bearer ct_unknown")
        assert status == 401


def test_address_rate_limit_and_body_timeout_settings_come_from_the_environment() -> None:
    defaults = Settings.from_env(trust_env("gateway"))
    assert (defaults.ip_rate_limit_per_second, defaults.ip_rate_limit_burst) == (100, 200)
    assert defaults.body_read_timeout_ms == 10_000
    settings = Settings.from_env(
        {
            **trust_env("gateway"),
            "GATEWAY_IP_RATE_LIMIT_PER_SECOND": "0",
            "GATEWAY_IP_RATE_LIMIT_BURST": "9",
            "GATEWAY_BODY_READ_TIMEOUT_MS": "2500",
        }
    )
    assert (settings.ip_rate_limit_per_second, settings.ip_rate_limit_burst) == (0, 9)
    assert settings.body_read_timeout_ms == 2500


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("GATEWAY_IP_RATE_LIMIT_PER_SECOND", "-1"),
        ("GATEWAY_IP_RATE_LIMIT_BURST", "0"),
        ("GATEWAY_BODY_READ_TIMEOUT_MS", "0"),
        ("GATEWAY_BODY_READ_TIMEOUT_MS", "soon"),
    ],
)
def test_bad_protection_settings_fail_naming_the_variable(variable: str, value: str) -> None:
    with pytest.raises(ConfigError, match=variable):
        Settings.from_env({**trust_env("gateway"), variable: value})


# ----------------------------------------------------------------- probes


def _count_backend_checks(harness: Harness) -> list[str]:
    gateway = _gateway(harness)
    checked: list[str] = []
    check = gateway._backend_health

    async def counted(name: str, channel: Any) -> str:
        checked.append(name)
        return await check(name, channel)

    gateway._backend_health = counted
    return checked


async def test_livez_answers_without_calling_any_backend(harness: Harness) -> None:
    checked = _count_backend_checks(harness)
    response = await harness.client.get("/livez")
    assert response.status == 200
    assert await response.json() == {"status": "SERVING"}
    assert checked == []


async def test_a_flood_of_health_probes_makes_one_round_of_backend_checks_a_second(
    harness: Harness,
) -> None:
    checked = _count_backend_checks(harness)
    backends = len(_gateway(harness).channels)
    responses = await asyncio.gather(
        *(harness.client.get("/healthz" if i % 2 else "/readyz") for i in range(40))
    )
    reports = [await r.json() for r in responses]
    assert {r.status for r in responses} == {200}
    assert all(report == reports[0] for report in reports)
    assert reports[0]["status"] == "SERVING" and len(reports[0]["backends"]) == backends
    assert len(checked) == backends  # one check of each backend for all forty probes
    harness.clock.advance(0.5)
    assert (await harness.client.get("/healthz")).status == 200
    assert len(checked) == backends
    harness.clock.advance(0.6)
    assert (await harness.client.get("/readyz")).status == 200
    assert len(checked) == 2 * backends


# ----------------------------------------------------------------- slow bodies


async def test_a_body_that_does_not_arrive_in_time_is_408_and_nothing_is_called(
    make_harness: HarnessFactory,
) -> None:
    harness = await make_harness(body_read_timeout_ms=300)
    head = (
        f"POST {API}/kill-switch HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
        f"{harness.pro_token}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
    ).encode()
    started = asyncio.get_running_loop().time()
    status, body, raw_head = await _raw(harness, head, then=b'{"config_id": "c-')
    assert status == 408
    assert (body["code"], _reason(body)) == (4, "BODY_READ_TIMEOUT")
    assert "300 ms" in body["message"]
    assert b"application/json" in raw_head
    assert b"connection: close" in raw_head.lower()
    assert asyncio.get_running_loop().time() - started < 3
    assert harness.recorder.calls == []


# ----------------------------------------------------------------- HTTP parser errors


@pytest.mark.parametrize(
    ("name", "request_bytes", "status", "reason"),
    [
        (
            "url-of-20kB",
            b"GET /" + b"a" * 20_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
            414,
            "URI_TOO_LONG",
        ),
        (
            "header-of-20kB",
            b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20_000 + b"\r\n\r\n",
            431,
            "HEADER_TOO_LARGE",
        ),
        (
            "header-name-of-20kB",
            b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"X" * 20_000 + b": 1\r\n\r\n",
            431,
            "HEADER_TOO_LARGE",
        ),
        (
            "200-headers",
            b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
            + b"".join(b"X-H%d: 1\r\n" % i for i in range(200))
            + b"\r\n",
            431,
            "TOO_MANY_HEADERS",
        ),
        (
            "control-character-in-a-header",
            b"GET /healthz HTTP/1.1\r\nHost: x\r\nX: a\x01b\r\n\r\n",
            400,
            "MALFORMED_REQUEST",
        ),
        (
            "not-http",
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",
            400,
            "MALFORMED_REQUEST",
        ),
        (
            "bad-content-length",
            b"POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
            400,
            "MALFORMED_REQUEST",
        ),
    ],
)
async def test_http_parser_errors_are_a_json_status_with_the_right_code(
    harness: Harness,
    name: str,
    request_bytes: bytes,
    status: int,
    reason: str,
) -> None:
    answered, body, head = await _raw(harness, request_bytes)
    assert answered == status, name
    assert body["code"] == 3 and _reason(body) == reason
    assert body["message"] and "aaaa" not in body["message"]
    assert b"application/json" in head.lower()
