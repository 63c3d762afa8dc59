"""Settings of the reconciliation service, read and checked once at startup."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from meshkit import settings as s
from meshkit.settings import TlsSettings

DEFAULT_DATABASE_URL = "sqlite:///.copytrade/recon.db"


@dataclass(frozen=True)
class Settings:
    """Everything the reconciliation service reads from its environment."""

    grpc_port: int = 50054
    metrics_port: int = 9094
    log_level: str = "INFO"
    bind_host: str = "127.0.0.1"
    database_url: str = DEFAULT_DATABASE_URL
    engine_svc_addr: str = "127.0.0.1:50052"
    sync_svc_addr: str = "127.0.0.1:50053"
    broker_svc_addr: str = "127.0.0.1:50051"
    tls: TlsSettings = field(default_factory=TlsSettings)
    # The gateway's public key: user assertions signed by anything else are refused.
    assertion_public_key: str = ""
    # A plaintext listener serving only gRPC health, for probes without a certificate (0: none).
    health_port: int = 0
    rpc_timeout_seconds: int = 15
    # A reconciliation's whole time budget: what it could not read by then is an ERROR item
    # of the report. Shorter than the gateway's deadline (GATEWAY_TIMEOUT_MS, 15 s), so a
    # frozen service or venue gives a report, never a 504.
    reconcile_budget_seconds: float = 5.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Settings:
        """Read the settings, failing with the variable's name when one is bad."""
        return cls(
            grpc_port=s.integer(environ, "GRPC_PORT", 50054),
            metrics_port=s.integer(environ, "METRICS_PORT", 9094),
            log_level=s.text(environ, "LOG_LEVEL", "INFO").upper(),
            bind_host=s.text(environ, "BIND_HOST", "127.0.0.1"),
            database_url=s.database_url(environ, DEFAULT_DATABASE_URL),
            engine_svc_addr=s.text(environ, "ENGINE_SVC_ADDR", "127.0.0.1:50052"),
            sync_svc_addr=s.text(environ, "SYNC_SVC_ADDR", "127.0.0.1:50053"),
            broker_svc_addr=s.text(environ, "BROKER_SVC_ADDR", "127.0.0.1:50051"),
            tls=TlsSettings.from_env(environ),
            assertion_public_key=s.pem_file(environ, "ASSERTION_PUBLIC_KEY"),
            health_port=s.integer(environ, "HEALTH_PORT", 0),
            rpc_timeout_seconds=s.integer(
                environ,
                "RPC_TIMEOUT_SECONDS",
                15,
                minimum=1,
                maximum=600,
            ),
            reconcile_budget_seconds=s.integer(
                environ,
                "RECONCILE_BUDGET_MS",
                5000,
                minimum=100,
                maximum=3_600_000,  # a large window called past the gateway (bench/recon_scale.py)
            )
            / 1000,
        )
