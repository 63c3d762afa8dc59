"""The gateway's own endpoints (health, metrics, dashboard), its settings and its process."""

from __future__ import annotations

import base64
import hashlib
import re

import aiohttp
import pytest

from gateway.config import Settings
from gateway.routes import default_services
from gateway.server import GatewayDeps, start_gateway
from gateway.users import add_user
from meshkit import db
from meshkit.settings import ConfigError
from meshkit.testing import gateway_trust, inprocess_server, trust_env
from tests.fakes.recording import Recorder
from tests.gateway.conftest import API, Harness
from tests.gateway.fakes import registrations


async def test_healthz_reports_every_backend_serving_without_a_token(harness: Harness) -> None:
    response = await harness.client.get("/healthz")
    report = await response.json()
    assert response.status == 200
    assert report["status"] == "SERVING" and report["database"] == "ok"
    assert report["backends"]["copytrade.engine.v1.EngineService"] == "SERVING"
    assert len(report["backends"]) == 5


async def test_metrics_count_requests_by_method_route_template_and_code(harness: Harness) -> None:
    await harness.call("GET", f"{API}/status/c-1")
    await harness.call("GET", f"{API}/status/c-2", token=None)
    response = await harness.client.get("/metrics")
    text = await response.text()
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    route = f"{API}/status/{{config_id}}"
    assert (
        f'copytrade_gateway_http_requests_total{{code="200",method="GET",route="{route}"}} 1.0'
        in text
    )
    assert (
        f'copytrade_gateway_http_requests_total{{code="401",method="GET",route="{route}"}} 1.0'
        in text
    )
    await harness.call("GET", "/no/such/page")
    text = await (await harness.client.get("/metrics")).text()
    unmatched = '{code="404",method="GET",route="unmatched"} 1.0'
    assert f"copytrade_gateway_http_requests_total{unmatched}" in text
    assert "copytrade_gateway_http_request_duration_seconds_bucket" in text
    assert "c-1" not in text  # raw paths never become labels


async def test_dashboard_is_self_contained_and_locked_down_by_csp(harness: Harness) -> None:
    response = await harness.client.get("/dashboard")
    html = await response.text()
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/html")
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert "sessionStorage" in html and "/api/institutional/copy-trading" in html
    policy = response.headers["Content-Security-Policy"]
    script = re.search(r"<script>(.*?)</script>", html, re.S)
    assert script is not None
    digest = base64.b64encode(hashlib.sha256(script.group(1).encode()).digest()).decode()
    assert f"'sha256-{digest}'" in policy
    assert "default-src 'none'" in policy and "connect-src 'self'" in policy


async def test_non_api_unknown_path_is_404_json_without_a_token(harness: Harness) -> None:
    status, body, _ = await harness.call("GET", "/favicon.ico", token=None)
    assert status == 404 and body["code"] == 5


async def test_start_gateway_serves_on_a_free_port_and_closes(tmp_path) -> None:
    recorder = Recorder()
    async with inprocess_server(registrations(recorder)) as (running, _channel):
        address = f"127.0.0.1:{running.port}"
        settings = Settings(
            port=0,
            broker_svc_addr=address,
            engine_svc_addr=address,
            sync_svc_addr=address,
            recon_svc_addr=address,
            database_url=f"sqlite:///{tmp_path}/gateway.db",
            **gateway_trust(),
        )
        gateway = await start_gateway(settings, GatewayDeps(services=default_services()))
        try:
            database = await db.connect(settings.database_url)
            try:
                _user, token = await add_user(database, "alice", "pro")
            finally:
                await database.close()
            async with aiohttp.ClientSession() as session:
                async with session.get(f"{gateway.url}/healthz") as response:
                    assert response.status == 200
                async with session.post(
                    f"{gateway.url}{API}/kill-switch",
                    json={"config_id": "c-3"},
                    headers={"Authorization": f"Bearer {token}"},
                ) as response:
                    assert response.status == 200
                    assert await response.json() == {"config_ids": ["c-3"], "cancelled_orders": 0}
        finally:
            await gateway.close()
    assert recorder.last("KillSwitch").request.config_id == "c-3"


def test_settings_defaults() -> None:
    settings = Settings.from_env(trust_env("gateway"))
    assert settings.port == 8080 and settings.bind_host == "127.0.0.1"
    assert settings.database_url == "sqlite:///.copytrade/gateway.db"
    assert settings.timeout_ms == 15_000
    assert settings.address_for("copytrade.broker.v1.BrokerService") == "127.0.0.1:50051"
    assert settings.address_for("copytrade.engine.v1.EngineService") == "127.0.0.1:50052"
    assert settings.address_for("copytrade.sync.v1.SyncService") == "127.0.0.1:50053"
    assert settings.address_for("copytrade.recon.v1.ReconService") == "127.0.0.1:50054"
    assert settings.address_for("other.v1.Service") is None


def test_settings_read_the_environment() -> None:
    gateway_files = trust_env("gateway")
    settings = Settings.from_env(
        {
            **gateway_files,
            "GATEWAY_HTTPS_CERT": gateway_files["TLS_CERT"],
            "GATEWAY_HTTPS_KEY": gateway_files["TLS_KEY"],
            "GATEWAY_PORT": "9000",
            "BIND_HOST": "0.0.0.0",
            "ENGINE_SVC_ADDR": "engine-svc:50051",
            "GATEWAY_TIMEOUT_MS": "500",
            "GATEWAY_RATE_LIMIT_PER_SECOND": "5",
            "GATEWAY_RATE_LIMIT_BURST": "7",
            "DATABASE_URL": "postgresql://db/gw",
        }
    )
    assert (settings.port, settings.bind_host, settings.timeout_ms) == (9000, "0.0.0.0", 500)
    assert (settings.rate_limit_per_second, settings.rate_limit_burst) == (5, 7)
    assert settings.address_for("copytrade.engine.v1.EngineService") == "engine-svc:50051"
    assert settings.database_url == "postgresql://db/gw"
    assert settings.https


def test_plain_http_is_refused_off_loopback_and_the_mesh_credentials_are_required() -> None:
    with pytest.raises(ConfigError, match="GATEWAY_HTTPS_CERT"):
        Settings.from_env({**trust_env("gateway"), "BIND_HOST": "0.0.0.0"})
    with pytest.raises(ConfigError, match="TLS_CA, TLS_CERT, TLS_KEY must be set"):
        Settings.from_env({"ASSERTION_SIGNING_KEY": trust_env("gateway")["ASSERTION_SIGNING_KEY"]})
    without_key = {k: v for k, v in trust_env("gateway").items() if k != "ASSERTION_SIGNING_KEY"}
    with pytest.raises(ConfigError, match="ASSERTION_SIGNING_KEY"):
        Settings.from_env(without_key)


@pytest.mark.parametrize(
    "environ,variable",
    [
        ({"GATEWAY_PORT": "http"}, "GATEWAY_PORT"),
        ({"GATEWAY_TIMEOUT_MS": "0"}, "GATEWAY_TIMEOUT_MS"),
        ({"BROKER_SVC_ADDR": "broker"}, "BROKER_SVC_ADDR"),
        ({"DATABASE_URL": "mysql://x"}, "DATABASE_URL"),
        ({"TLS_CERT": "/c.pem"}, "TLS_CERT"),
        ({"TLS_KEY": ""}, "TLS_KEY"),
    ],
)
def test_bad_settings_fail_naming_the_variable(environ: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigError, match=variable):
        Settings.from_env({**trust_env("gateway"), **environ})


def test_a_service_without_an_address_fails_at_build() -> None:
    from gateway.server import build_app
    from tests.gateway.fakes import RULES_SERVICE

    with pytest.raises(ConfigError, match=r"gatewaytest\.v1\.RulesService"):
        build_app(Settings(), GatewayDeps(services=[RULES_SERVICE]))
