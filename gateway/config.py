"""The gateway's settings, read once from the environment."""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from meshkit import settings as env
from meshkit.settings import TlsSettings


def _secret_key(environ: Mapping[str, str], name: str) -> bytes:
    # Optional: base64 of 32 bytes. The message names the variable, never the value.
    raw = environ.get(name, "").strip()
    if not raw:
        return b""
    try:
        key = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        env.problem(f"{name} must be base64 (32 random bytes)", name)
        return b""
    if len(key) != 32:
        env.problem(f"{name} must decode to 32 bytes, got {len(key)}", name)
        return b""
    return key


# Which address variable reaches which service (the package of its full name).
def _schedule(environ: Mapping[str, str], name: str, default: tuple[int, ...]) -> tuple[int, ...]:
    # Comma-separated milliseconds, each 1 to 3600000, at most 10 (so at most 11 tries).
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        values = tuple(int(part) for part in raw.split(","))
    except ValueError:
        values = ()
    if not values or len(values) > 10 or not all(1 <= v <= 3_600_000 for v in values):
        env.problem(
            f"{name} must be 1 to 10 comma-separated waits in milliseconds, got {raw!r}", name
        )
        return default
    return values


def _workers(environ: Mapping[str, str], default: int) -> int:
    # GATEWAY_WORKERS: 1 to 64 processes, or "auto" (0 here: one per usable CPU).
    raw = environ.get("GATEWAY_WORKERS", "").strip().lower()
    if not raw:
        return default
    if raw == "auto":
        return 0
    if raw.isdigit() and 1 <= int(raw) <= 64:
        return int(raw)
    env.problem(f"GATEWAY_WORKERS must be 1 to 64 or 'auto', got {raw!r}", "GATEWAY_WORKERS")
    return default


SERVICE_ADDRESS_VARIABLES = {
    "copytrade.broker.v1": "BROKER_SVC_ADDR",
    "copytrade.engine.v1": "ENGINE_SVC_ADDR",
    "copytrade.sync.v1": "SYNC_SVC_ADDR",
    "copytrade.recon.v1": "RECON_SVC_ADDR",
}


@dataclass(frozen=True)
class Settings:
    """Everything the gateway reads from its environment.

    ``TLS_*`` configure mutual TLS on the gRPC channels to the services (required).
    ``ASSERTION_SIGNING_KEY`` is the Ed25519 key that signs the user assertions the
    services verify. The REST side serves HTTPS with ``GATEWAY_HTTPS_CERT`` and
    ``GATEWAY_HTTPS_KEY``; without them it serves plain HTTP, and only on a loopback address.
    """

    port: int = 8080
    bind_host: str = "127.0.0.1"
    database_url: str = "sqlite:///.copytrade/gateway.db"
    broker_svc_addr: str = "127.0.0.1:50051"
    engine_svc_addr: str = "127.0.0.1:50052"
    sync_svc_addr: str = "127.0.0.1:50053"
    recon_svc_addr: str = "127.0.0.1:50054"
    tls: TlsSettings = field(default_factory=TlsSettings)
    assertion_signing_key: str = field(default="", repr=False)
    https_cert: str = ""
    https_key: str = field(default="", repr=False)
    timeout_ms: int = 15_000
    rate_limit_per_second: int = 20
    rate_limit_burst: int = 40
    max_body_bytes: int = 1_048_576
    # Per client address, before authentication, on every request (0 turns it off).
    ip_rate_limit_per_second: int = 100
    ip_rate_limit_burst: int = 200
    body_read_timeout_ms: int = 10_000
    log_level: str = "INFO"
    # User webhooks (docs/webhooks.md): how often the dispatcher looks for events, the waits
    # before the 2nd, 3rd... try, one try's time limit, and whether a webhook may point at a
    # loopback, private or link-local address (off: a user could reach the gateway's network).
    webhook_poll_interval_ms: int = 2_000
    webhook_retry_schedule_ms: tuple[int, ...] = (2_000, 5_000, 10_000, 20_000)
    webhook_timeout_ms: int = 5_000
    webhook_allow_private_urls: bool = False
    # The key that seals webhook signing secrets at rest (AES-256-GCM; 32 bytes, given base64
    # in GATEWAY_WEBHOOK_SECRET_KEY). Empty: no webhook can be created.
    webhook_secret_key: bytes = field(default=b"", repr=False)
    # Processes serving the port (gateway/workers.py); 0: one per usable CPU ("auto").
    workers: int = 1

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Settings:
        """Read ``GATEWAY_PORT``, ``BIND_HOST``, ``DATABASE_URL``, the four ``*_SVC_ADDR``,
        ``TLS_*``, ``GATEWAY_TIMEOUT_MS``, ``GATEWAY_RATE_LIMIT_PER_SECOND`` (0 turns it off),
        ``GATEWAY_RATE_LIMIT_BURST``, ``GATEWAY_MAX_BODY_BYTES``,
        ``GATEWAY_IP_RATE_LIMIT_PER_SECOND`` (per client address, 0 turns it off),
        ``GATEWAY_IP_RATE_LIMIT_BURST``, ``GATEWAY_BODY_READ_TIMEOUT_MS``, ``LOG_LEVEL`` and
        the ``GATEWAY_WEBHOOK_*`` variables (poll interval, retry schedule, timeout, private
        URLs allowed, the key sealing the secrets) and ``GATEWAY_WORKERS`` (1 to 64 processes
        on the port, or ``auto``: one per usable CPU; :mod:`gateway.workers`).

        Raises
        ------
        ConfigError
            Naming the variable that is malformed.
        """
        defaults = cls()
        result = cls(
            port=env.integer(environ, "GATEWAY_PORT", defaults.port),
            bind_host=env.text(environ, "BIND_HOST", defaults.bind_host),
            database_url=env.database_url(environ, defaults.database_url),
            broker_svc_addr=env.text(environ, "BROKER_SVC_ADDR", defaults.broker_svc_addr),
            engine_svc_addr=env.text(environ, "ENGINE_SVC_ADDR", defaults.engine_svc_addr),
            sync_svc_addr=env.text(environ, "SYNC_SVC_ADDR", defaults.sync_svc_addr),
            recon_svc_addr=env.text(environ, "RECON_SVC_ADDR", defaults.recon_svc_addr),
            tls=TlsSettings.from_env(environ),
            assertion_signing_key=env.pem_file(environ, "ASSERTION_SIGNING_KEY"),
            https_cert=env.text(environ, "GATEWAY_HTTPS_CERT", ""),
            https_key=env.text(environ, "GATEWAY_HTTPS_KEY", ""),
            timeout_ms=env.integer(
                environ,
                "GATEWAY_TIMEOUT_MS",
                defaults.timeout_ms,
                minimum=1,
                maximum=600_000,
            ),
            rate_limit_per_second=env.integer(
                environ,
                "GATEWAY_RATE_LIMIT_PER_SECOND",
                defaults.rate_limit_per_second,
                minimum=0,
                maximum=1_000_000,
            ),
            rate_limit_burst=env.integer(
                environ,
                "GATEWAY_RATE_LIMIT_BURST",
                defaults.rate_limit_burst,
                minimum=1,
                maximum=1_000_000,
            ),
            max_body_bytes=env.integer(
                environ,
                "GATEWAY_MAX_BODY_BYTES",
                defaults.max_body_bytes,
                minimum=1024,
                maximum=64 * 1_048_576,
            ),
            ip_rate_limit_per_second=env.integer(
                environ,
                "GATEWAY_IP_RATE_LIMIT_PER_SECOND",
                defaults.ip_rate_limit_per_second,
                minimum=0,
                maximum=1_000_000,
            ),
            ip_rate_limit_burst=env.integer(
                environ,
                "GATEWAY_IP_RATE_LIMIT_BURST",
                defaults.ip_rate_limit_burst,
                minimum=1,
                maximum=1_000_000,
            ),
            body_read_timeout_ms=env.integer(
                environ,
                "GATEWAY_BODY_READ_TIMEOUT_MS",
                defaults.body_read_timeout_ms,
                minimum=100,
                maximum=600_000,
            ),
            log_level=env.text(environ, "LOG_LEVEL", defaults.log_level),
            webhook_poll_interval_ms=env.integer(
                environ,
                "GATEWAY_WEBHOOK_POLL_INTERVAL_MS",
                defaults.webhook_poll_interval_ms,
                minimum=50,
                maximum=600_000,
            ),
            webhook_retry_schedule_ms=_schedule(
                environ,
                "GATEWAY_WEBHOOK_RETRY_SCHEDULE_MS",
                defaults.webhook_retry_schedule_ms,
            ),
            webhook_timeout_ms=env.integer(
                environ,
                "GATEWAY_WEBHOOK_TIMEOUT_MS",
                defaults.webhook_timeout_ms,
                minimum=100,
                maximum=60_000,
            ),
            webhook_allow_private_urls=env.boolean(
                environ,
                "GATEWAY_WEBHOOK_ALLOW_PRIVATE_URLS",
                defaults.webhook_allow_private_urls,
            ),
            webhook_secret_key=_secret_key(environ, "GATEWAY_WEBHOOK_SECRET_KEY"),
            workers=_workers(environ, defaults.workers),
        )
        if bool(result.https_cert) != bool(result.https_key):
            env.problem(
                "GATEWAY_HTTPS_CERT and GATEWAY_HTTPS_KEY must be set together",
                "GATEWAY_HTTPS_CERT",
                "GATEWAY_HTTPS_KEY",
            )
        for name in ("GATEWAY_HTTPS_CERT", "GATEWAY_HTTPS_KEY"):
            if environ.get(name, "").strip():
                env.pem_file(environ, name)
        if not result.https_cert and not result.serves_loopback_only:
            env.problem(
                f"BIND_HOST {result.bind_host} is not a loopback address: set GATEWAY_HTTPS_CERT "
                "and GATEWAY_HTTPS_KEY (plain HTTP is served on loopback only)",
                "BIND_HOST",
            )
        for name, value in (
            ("BROKER_SVC_ADDR", result.broker_svc_addr),
            ("ENGINE_SVC_ADDR", result.engine_svc_addr),
            ("SYNC_SVC_ADDR", result.sync_svc_addr),
            ("RECON_SVC_ADDR", result.recon_svc_addr),
        ):
            if ":" not in value:
                env.problem(f"{name} must look like host:port, got {value!r}", name)
        return result

    @property
    def https(self) -> bool:
        """Return whether the REST side serves HTTPS."""
        return bool(self.https_cert and self.https_key)

    @property
    def serves_loopback_only(self) -> bool:
        """Return whether the REST side is reachable from this machine only."""
        return self.bind_host in ("127.0.0.1", "localhost", "::1")

    def address_for(self, service_full_name: str) -> str | None:
        """Return the address of a service by its full name, or ``None`` for an unknown one."""
        package = service_full_name.rsplit(".", 1)[0]
        variable = SERVICE_ADDRESS_VARIABLES.get(package)
        if variable is None:
            return None
        return str(getattr(self, variable.lower()))
