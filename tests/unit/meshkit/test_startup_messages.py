"""What a failed start says: URLs without userinfo or password, exit codes by cause."""

from __future__ import annotations

import errno

import pytest

from meshkit import db
from meshkit.service import EXIT_CONFIGURATION, EXIT_UNAVAILABLE, StartupError, explain
from meshkit.settings import ConfigError


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://app:s3cret@db:5432/copytrade", "postgresql://***@db:5432/copytrade"),
        (
            "postgresql://app@db/copytrade?sslmode=require",
            "postgresql://***@db/copytrade?sslmode=require",
        ),
        ("postgresql://db/x?user=app&password=s3cret", "postgresql://db/x?user=app&password=***"),
        ("sqlite:////var/lib/copytrade/broker.db", "sqlite:////var/lib/copytrade/broker.db"),
    ],
)
def test_redact_url_hides_userinfo_and_password(url: str, shown: str) -> None:
    assert db.redact_url(url) == shown


@pytest.mark.parametrize(
    ("error", "code", "words"),
    [
        (ConfigError("GRPC_PORT must be an integer, got 'x'"), EXIT_CONFIGURATION, "GRPC_PORT"),
        (db.DatabaseUnavailable("database db:5432 is unavailable"), EXIT_UNAVAILABLE, "db:5432"),
        (
            StartupError("GATEWAY_PORT 8080: taken", EXIT_UNAVAILABLE),
            EXIT_UNAVAILABLE,
            "GATEWAY_PORT",
        ),
        (
            PermissionError(errno.EACCES, "Permission denied", "/k/tls.key"),
            EXIT_CONFIGURATION,
            "TLS_KEY /k/tls.key: Permission denied",
        ),
        (
            RuntimeError("Failed to bind to address 127.0.0.1:50051; set GRPC_VERBOSITY=debug"),
            EXIT_UNAVAILABLE,
            "127.0.0.1:50051",
        ),
        (KeyError("surprise"), EXIT_UNAVAILABLE, "unexpected KeyError"),
    ],
)
def test_explain_gives_one_line_and_the_exit_code(error: Exception, code: int, words: str) -> None:
    got_code, message = explain(error, {"TLS_KEY": "/k/tls.key"})
    assert got_code == code
    assert words in message and "\n" not in message
