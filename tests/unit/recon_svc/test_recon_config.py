"""The reconciliation service's settings, read once from the environment."""

from __future__ import annotations

import pytest

from meshkit.settings import ConfigError
from meshkit.testing import trust_env
from recon_svc.config import Settings


def test_settings_default_to_the_documented_ports_and_addresses() -> None:
    settings = Settings.from_env(trust_env("recon"))
    assert (settings.grpc_port, settings.metrics_port) == (50054, 9094)
    assert settings.database_url == "sqlite:///.copytrade/recon.db"
    assert settings.engine_svc_addr == "127.0.0.1:50052"
    assert settings.sync_svc_addr == "127.0.0.1:50053"
    assert settings.broker_svc_addr == "127.0.0.1:50051"
    assert settings.bind_host == "127.0.0.1"
    assert settings.tls.enabled
    assert settings.reconcile_budget_seconds == 5.0  # below the gateway's 15 s deadline


def test_settings_read_every_variable() -> None:
    settings = Settings.from_env(
        {
            **trust_env("recon"),
            "GRPC_PORT": "6000",
            "METRICS_PORT": "0",
            "LOG_LEVEL": "debug",
            "BIND_HOST": "0.0.0.0",
            "DATABASE_URL": "postgresql://db/recon",
            "ENGINE_SVC_ADDR": "engine-svc:50052",
            "SYNC_SVC_ADDR": "sync-svc:50053",
            "BROKER_SVC_ADDR": "broker-svc:50051",
            "RPC_TIMEOUT_SECONDS": "30",
            "RECONCILE_BUDGET_MS": "2500",
        }
    )
    assert settings.grpc_port == 6000 and settings.metrics_port == 0
    assert settings.log_level == "DEBUG" and settings.bind_host == "0.0.0.0"
    assert settings.database_url == "postgresql://db/recon"
    assert settings.engine_svc_addr == "engine-svc:50052"
    assert settings.rpc_timeout_seconds == 30
    assert settings.reconcile_budget_seconds == 2.5


@pytest.mark.parametrize(
    ("environ", "name"),
    [
        ({"GRPC_PORT": "http"}, "GRPC_PORT"),
        ({"METRICS_PORT": "70000"}, "METRICS_PORT"),
        ({"DATABASE_URL": "mysql://x"}, "DATABASE_URL"),
        ({"TLS_CERT": "/c.pem"}, "TLS_CERT"),
        ({"TLS_KEY": ""}, "TLS_KEY"),
        ({"RPC_TIMEOUT_SECONDS": "0"}, "RPC_TIMEOUT_SECONDS"),
    ],
)
def test_bad_variable_fails_naming_it(environ: dict[str, str], name: str) -> None:
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({**trust_env("recon"), **environ})
