"""Settings of the broker, read and checked once at startup."""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from meshkit import settings as s
from meshkit.settings import TlsSettings

DEFAULT_DATABASE_URL = "sqlite:///.copytrade/broker.db"

DEFAULT_PAPER_BALANCES = "USDT=100000,USD=100000"
"""What a new account at the ``paper`` venue holds (``BROKER_PAPER_BALANCES``)."""

DEFAULT_PAPER_PRICES = "BTC/USDT=50000,ETH/USDT=3000,BTC/USD=50000,ETH/USD=3000"
"""The ``paper`` venue's markets and their mark prices (``BROKER_PAPER_PRICES``): the exchange
emulators' opening prices, so a leader trading there is copied near its own price."""


def _amounts(
    environ: Mapping[str, str], name: str, default: str, *, key: str
) -> dict[str, Decimal]:
    """Parse ``name`` (``KEY=amount,...``, each amount a positive decimal) into a dict.

    ``key`` is ``ASSET`` (``USDT``) or ``SYMBOL`` (a market, ``BTC/USDT``).
    """
    raw = environ.get(name, "").strip() or default
    found: dict[str, Decimal] = {}
    for part in raw.split(","):
        label, sep, amount = (piece.strip() for piece in part.partition("="))
        try:
            value = Decimal(amount)
        except InvalidOperation:
            value = Decimal(-1)
        base, slash, quote = label.partition("/")
        shaped = bool(base and quote) if key == "SYMBOL" else bool(label) and not slash
        if not sep or not shaped or not value.is_finite() or value <= 0:
            s.problem(f"{name} entries must look like {key}=<positive decimal>, got {part!r}", name)
            continue
        found[label.upper()] = value
    return found


def _decode_key(raw: str, name: str, variable: str) -> bytes:
    # The message names the variable and never repeats the value: it is a secret. Past a
    # problem (only inside meshkit.settings.collect) a zero key stands in.
    try:
        key = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        s.problem(f"{name} must be base64 (32 random bytes)", variable)
        return bytes(32)
    if len(key) != 32:
        s.problem(f"{name} must decode to 32 bytes, got {len(key)}", variable)
        return bytes(32)
    return key


def _encryption_key(environ: Mapping[str, str]) -> bytes:
    return _decode_key(s.require(environ, "ENCRYPTION_KEY"), "ENCRYPTION_KEY", "ENCRYPTION_KEY")


def _previous_encryption_keys(environ: Mapping[str, str], current: bytes) -> tuple[bytes, ...]:
    raw = s.text(environ, "ENCRYPTION_KEYS_PREVIOUS", "")
    keys: list[bytes] = []
    for position, part in enumerate(raw.split(",") if raw else [], start=1):
        if not part.strip():
            s.problem(
                f"ENCRYPTION_KEYS_PREVIOUS has an empty entry at position {position}",
                "ENCRYPTION_KEYS_PREVIOUS",
            )
            continue
        key = _decode_key(
            part.strip(), f"ENCRYPTION_KEYS_PREVIOUS entry {position}", "ENCRYPTION_KEYS_PREVIOUS"
        )
        if key != current and key not in keys:
            keys.append(key)
    return tuple(keys)


@dataclass(frozen=True)
class Settings:
    """Everything the broker reads from its environment."""

    encryption_key: bytes = field(repr=False)
    # Keys that sealed credentials before a rotation: they still open, never seal. The broker
    # re-seals what they opened under encryption_key at start-up.
    encryption_keys_previous: tuple[bytes, ...] = field(default=(), repr=False)
    grpc_port: int = 50051
    metrics_port: int = 9091
    log_level: str = "INFO"
    bind_host: str = "127.0.0.1"
    database_url: str = DEFAULT_DATABASE_URL
    venue_urls: Mapping[str, str] = field(default_factory=dict)
    tls: TlsSettings = field(default_factory=TlsSettings)
    # The gateway's public key: user assertions signed by anything else are refused.
    assertion_public_key: str = ""
    # A plaintext listener serving only gRPC health, for probes without a certificate (0: none).
    health_port: int = 0
    order_timeout_ms: int = 10_000
    rate_limits: bool = True
    rate_limit_max_wait_ms: int = 2_000
    # Overrides every venue's "absent for long enough to resend" floor; None keeps the venue's own
    # (Binance 30 s, Kraken 60 s). Only for tests that must not wait it out (the chaos suite).
    resend_safe_after_seconds: int | None = None
    # How long a replica's heartbeat in broker_replicas holds (a round runs every third of it):
    # the replicas alive share every venue's rate limit.
    lease_ttl_ms: int = 3_000
    # This replica's id among the broker's replicas ("": host, pid and a nonce; pods: their name).
    replica_id: str = ""
    # Offer the in-memory "paper" venue beside the real ones (docs/paper-venue.md).
    paper_venue: bool = False
    # What a new paper account holds, by asset.
    paper_balances: Mapping[str, Decimal] = field(
        default_factory=lambda: _amounts({}, "", DEFAULT_PAPER_BALANCES, key="ASSET")
    )
    # The paper venue's mark price by market ("BTC/USDT"); a market order fills at it.
    paper_prices: Mapping[str, Decimal] = field(
        default_factory=lambda: _amounts({}, "", DEFAULT_PAPER_PRICES, key="SYMBOL")
    )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Settings:
        """Read the settings, failing with the variable's name when one is missing or bad."""
        encryption_key = _encryption_key(environ)
        return cls(
            encryption_key=encryption_key,
            encryption_keys_previous=_previous_encryption_keys(environ, encryption_key),
            grpc_port=s.integer(environ, "GRPC_PORT", 50051),
            metrics_port=s.integer(environ, "METRICS_PORT", 9091),
            log_level=s.text(environ, "LOG_LEVEL", "INFO").upper(),
            bind_host=s.text(environ, "BIND_HOST", "127.0.0.1"),
            database_url=s.database_url(environ, DEFAULT_DATABASE_URL),
            venue_urls=s.venue_urls(environ),
            tls=TlsSettings.from_env(environ),
            assertion_public_key=s.pem_file(environ, "ASSERTION_PUBLIC_KEY"),
            health_port=s.integer(environ, "HEALTH_PORT", 0),
            order_timeout_ms=s.integer(
                environ,
                "ORDER_TIMEOUT_MS",
                10_000,
                minimum=100,
                maximum=600_000,
            ),
            rate_limits=s.boolean(environ, "BROKER_RATE_LIMITS", True),
            rate_limit_max_wait_ms=s.integer(
                environ,
                "BROKER_RATE_LIMIT_MAX_WAIT_MS",
                2_000,
                minimum=0,
                maximum=60_000,
            ),
            resend_safe_after_seconds=(
                s.integer(environ, "RESEND_SAFE_AFTER_SECONDS", 0, minimum=1, maximum=3_600)
                if environ.get("RESEND_SAFE_AFTER_SECONDS", "").strip()
                else None
            ),
            lease_ttl_ms=s.integer(environ, "LEASE_TTL_MS", 3_000, minimum=300, maximum=60_000),
            replica_id=s.text(environ, "REPLICA_ID", ""),
            paper_venue=s.boolean(environ, "BROKER_PAPER_VENUE", False),
            paper_balances=_amounts(
                environ, "BROKER_PAPER_BALANCES", DEFAULT_PAPER_BALANCES, key="ASSET"
            ),
            paper_prices=_amounts(
                environ, "BROKER_PAPER_PRICES", DEFAULT_PAPER_PRICES, key="SYMBOL"
            ),
        )
