"""The sync service's configuration, read once from the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from meshkit import settings as env
from meshkit.settings import TlsSettings


@dataclass(frozen=True)
class Settings:
    """Everything the sync service reads from its environment."""

    grpc_port: int = 50053
    metrics_port: int = 9093
    log_level: str = "INFO"
    bind_host: str = "127.0.0.1"
    database_url: str = "sqlite:///.copytrade/sync.db"
    broker_svc_addr: str = "127.0.0.1:50051"
    tls: TlsSettings = field(default_factory=TlsSettings)
    # The gateway's public key: user assertions signed by anything else are refused.
    assertion_public_key: str = ""
    # A plaintext listener serving only gRPC health, for probes without a certificate (0: none).
    health_port: int = 0
    heartbeat_seconds: float = 2.0
    equity_refresh_seconds: float = 60.0
    # How long a replica's lease on a watched leader lasts unrenewed (renewed every third of it).
    lease_ttl_ms: int = 3000
    # This replica's name in the lease tables (the pod name); empty: host, pid and a nonce.
    replica_id: str = ""
    # How often streams' sources are re-read for signals other replicas appended, should a
    # PostgreSQL notification be lost (PostgreSQL only).
    signal_poll_ms: int = 1000

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Settings:
        """Read ``GRPC_PORT``, ``METRICS_PORT``, ``LOG_LEVEL``, ``BIND_HOST``, ``DATABASE_URL``,
        ``BROKER_SVC_ADDR``, ``TLS_*``, ``HEARTBEAT_SECONDS``, ``LEASE_TTL_MS``, ``REPLICA_ID``
        and ``SIGNAL_POLL_MS``; a bad value names its variable.
        """
        level = env.text(environ, "LOG_LEVEL", "INFO").upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            env.problem(
                f"LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, got {level!r}", "LOG_LEVEL"
            )
        return cls(
            grpc_port=env.integer(environ, "GRPC_PORT", 50053),
            metrics_port=env.integer(environ, "METRICS_PORT", 9093),
            log_level=level,
            bind_host=env.text(environ, "BIND_HOST", "127.0.0.1"),
            database_url=env.database_url(environ, "sqlite:///.copytrade/sync.db"),
            broker_svc_addr=env.text(environ, "BROKER_SVC_ADDR", "127.0.0.1:50051"),
            tls=TlsSettings.from_env(environ),
            assertion_public_key=env.pem_file(environ, "ASSERTION_PUBLIC_KEY"),
            health_port=env.integer(environ, "HEALTH_PORT", 0),
            heartbeat_seconds=float(
                env.integer(environ, "HEARTBEAT_SECONDS", 2, minimum=1, maximum=300),
            ),
            lease_ttl_ms=env.integer(environ, "LEASE_TTL_MS", 3000, minimum=300, maximum=120_000),
            replica_id=env.text(environ, "REPLICA_ID", ""),
            signal_poll_ms=env.integer(environ, "SIGNAL_POLL_MS", 1000, minimum=50, maximum=60_000),
        )
