"""Settings of the engine, read and checked once at startup."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from meshkit import settings as s
from meshkit.settings import TlsSettings

DEFAULT_DATABASE_URL = "sqlite:///.copytrade/engine.db"


@dataclass(frozen=True)
class Settings:
    """Everything the engine reads from its environment.

    ``resend_lag_seconds`` is how long after a send the venue's "not found" is trusted (its
    visibility lag); ``place_timeout_ms`` must exceed the broker's own order timeout so that
    the broker answers "outcome unknown" before the engine gives up waiting.
    """

    grpc_port: int = 50052
    metrics_port: int = 9092
    log_level: str = "INFO"
    bind_host: str = "127.0.0.1"
    database_url: str = DEFAULT_DATABASE_URL
    broker_svc_addr: str = "127.0.0.1:50051"
    sync_svc_addr: str = "127.0.0.1:50053"
    tls: TlsSettings = field(default_factory=TlsSettings)
    # The gateway's public key: user assertions signed by anything else are refused.
    assertion_public_key: str = ""
    # A plaintext listener serving only gRPC health, for probes without a certificate (0: none).
    health_port: int = 0
    resolver_interval_ms: int = 500
    resend_lag_seconds: int = 90
    place_timeout_ms: int = 20_000
    read_timeout_ms: int = 5_000
    market_cache_seconds: int = 30
    # How long a replica's lease on a source outlives its last renewal (renewed every third).
    lease_ttl_ms: int = 3_000
    # How often the risk monitor re-values follower accounts for the daily loss limit (0: off).
    risk_monitor_interval_ms: int = 1_000
    # How often the leader outage monitor reads its sources' state from sync (0: off).
    leader_monitor_interval_ms: int = 5_000
    # How long a leader's venue may be unreadable before its followers' configurations get a
    # leader_stream_down audit entry (and a leader.stream_down webhook).
    leader_down_alert_ms: int = 60_000

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Settings:
        """Read the settings, failing with the variable's name when one is bad."""
        return cls(
            grpc_port=s.integer(environ, "GRPC_PORT", 50052),
            metrics_port=s.integer(environ, "METRICS_PORT", 9092),
            log_level=s.text(environ, "LOG_LEVEL", "INFO").upper(),
            bind_host=s.text(environ, "BIND_HOST", "127.0.0.1"),
            database_url=s.database_url(environ, DEFAULT_DATABASE_URL),
            broker_svc_addr=s.text(environ, "BROKER_SVC_ADDR", "127.0.0.1:50051"),
            sync_svc_addr=s.text(environ, "SYNC_SVC_ADDR", "127.0.0.1:50053"),
            tls=TlsSettings.from_env(environ),
            assertion_public_key=s.pem_file(environ, "ASSERTION_PUBLIC_KEY"),
            health_port=s.integer(environ, "HEALTH_PORT", 0),
            resolver_interval_ms=s.integer(
                environ,
                "RESOLVER_INTERVAL_MS",
                500,
                minimum=10,
                maximum=60_000,
            ),
            resend_lag_seconds=s.integer(
                environ,
                "RESEND_LAG_SECONDS",
                90,
                minimum=1,
                maximum=3_600,
            ),
            place_timeout_ms=s.integer(
                environ,
                "PLACE_TIMEOUT_MS",
                20_000,
                minimum=100,
                maximum=600_000,
            ),
            read_timeout_ms=s.integer(
                environ,
                "READ_TIMEOUT_MS",
                5_000,
                minimum=100,
                maximum=600_000,
            ),
            market_cache_seconds=s.integer(
                environ,
                "MARKET_CACHE_SECONDS",
                30,
                minimum=0,
                maximum=86_400,
            ),
            lease_ttl_ms=s.integer(environ, "LEASE_TTL_MS", 3_000, minimum=300, maximum=60_000),
            risk_monitor_interval_ms=s.integer(
                environ,
                "RISK_MONITOR_INTERVAL_MS",
                1_000,
                minimum=0,
                maximum=60_000,
            ),
            leader_monitor_interval_ms=s.integer(
                environ, "LEADER_MONITOR_INTERVAL_MS", 5_000, minimum=0, maximum=300_000
            ),
            leader_down_alert_ms=s.integer(
                environ, "LEADER_DOWN_ALERT_MS", 60_000, minimum=0, maximum=86_400_000
            ),
        )
