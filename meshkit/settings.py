"""Helpers for each service's ``config.py``: read, parse and validate the environment once.

Every helper raises :class:`ConfigError` naming the variable, so a bad deployment
fails at boot with a message an operator can act on.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field


class ConfigError(ValueError):
    """A configuration variable is missing or malformed; the message names it."""


def require(environ: Mapping[str, str], name: str) -> str:
    """Return the variable ``name``, or fail naming it when it is missing or empty."""
    value = environ.get(name, "").strip()
    if not value:
        raise ConfigError(f"{name} is required but not set")
    return value


def text(environ: Mapping[str, str], name: str, default: str) -> str:
    """Return the variable ``name`` or ``default``."""
    value = environ.get(name, "").strip()
    return value or default


def integer(
    environ: Mapping[str, str],
    name: str,
    default: int,
    *,
    minimum: int = 0,
    maximum: int = 65535,
) -> int:
    """Return the variable ``name`` as an integer in ``[minimum, maximum]``."""
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
    if not minimum <= value <= maximum:
        raise ConfigError(f"{name} must be between {minimum} and {maximum}, got {value}")
    return value


def boolean(environ: Mapping[str, str], name: str, default: bool) -> bool:
    """Return the variable ``name`` as a boolean (1/0, true/false, yes/no, on/off)."""
    raw = environ.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in {"1", "true", "yes", "on"}:
        return True
    if raw in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{name} must be true or false, got {raw!r}")


def database_url(environ: Mapping[str, str], default: str) -> str:
    """Return ``DATABASE_URL`` (or its alias ``TIMESCALE_URL``), checking the scheme."""
    url = (
        environ.get("DATABASE_URL", "").strip()
        or environ.get("TIMESCALE_URL", "").strip()
        or default
    )
    if not url.startswith(("sqlite:", "postgresql:", "postgres:")):
        raise ConfigError("DATABASE_URL must start with sqlite:, postgresql: or postgres:")
    return url


def venue_urls(environ: Mapping[str, str]) -> dict[str, str]:
    """Parse ``VENUE_URLS`` (``binance=http://127.0.0.1:9101,kraken=...``) into a dict."""
    raw = environ.get("VENUE_URLS", "").strip()
    result: dict[str, str] = {}
    if not raw:
        return result
    for part in raw.split(","):
        name, sep, url = part.partition("=")
        if not sep or not name.strip() or not url.strip().startswith(("http://", "https://")):
            raise ConfigError(
                f"VENUE_URLS entries must look like name=http://host:port, got {part!r}"
            )
        result[name.strip().lower()] = url.strip().rstrip("/")
    return result


@dataclass(frozen=True)
class TlsSettings:
    """Paths of the PEM files for mutual TLS; all empty means plaintext on loopback."""

    cert: str = ""
    key: str = field(default="", repr=False)
    ca: str = ""

    @property
    def enabled(self) -> bool:
        """Return whether TLS is configured."""
        return bool(self.cert and self.key and self.ca)

    @classmethod
    def from_env(cls, environ: Mapping[str, str], *, required: bool = True) -> TlsSettings:
        """Read ``TLS_CERT``, ``TLS_KEY`` and ``TLS_CA`` (PEM paths; cert-manager's
        ``tls.crt``, ``tls.key`` and ``ca.crt``): all three, each an existing file.

        The mesh speaks only mutual TLS, so a component started from its environment
        refuses to run without them; ``required=False`` (none given means plaintext) is
        for tools that may talk to a plaintext peer, never for a service.
        """
        values = {name: environ.get(name, "").strip() for name in ("TLS_CERT", "TLS_KEY", "TLS_CA")}
        given = [name for name, value in values.items() if value]
        if not given and not required:
            return cls()
        if len(given) != 3:
            missing = sorted(set(values) - set(given))
            hint = (
                " (the mesh speaks only mutual TLS; `copytrade certs` makes them)"
                if not given
                else ""
            )
            raise ConfigError(
                f"{', '.join(missing)} must be set{hint}"
                + (f" together with {', '.join(given)}" if given else "")
            )
        _check_certificates("TLS_CERT", values["TLS_CERT"])
        _check_private_key("TLS_KEY", values["TLS_KEY"])
        _check_certificates("TLS_CA", values["TLS_CA"])
        return cls(values["TLS_CERT"], values["TLS_KEY"], values["TLS_CA"])


def _read(name: str, path: str) -> bytes:
    if not os.path.isfile(path):
        raise ConfigError(f"{name} names no readable file: {path}")
    try:
        with open(path, "rb") as file:
            return file.read()
    except OSError as e:
        raise ConfigError(f"{name} {path} cannot be read: {e.strerror or e}") from None


def _check_certificates(name: str, path: str) -> None:
    # Checked here, where the variable is known: grpc would only say "Failed to bind".
    from cryptography import x509

    try:
        x509.load_pem_x509_certificates(_read(name, path))
    except ValueError:
        raise ConfigError(f"{name} {path} holds no PEM certificate") from None


def _check_private_key(name: str, path: str) -> None:
    from cryptography.hazmat.primitives import serialization

    try:
        serialization.load_pem_private_key(_read(name, path), password=None)
    except (ValueError, TypeError):
        # The message says what is wrong, never what the file holds: it is a secret.
        raise ConfigError(f"{name} {path} holds no unencrypted PEM private key") from None


def _loads(data: bytes) -> bool:
    from cryptography import x509
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization

    loaders = (
        serialization.load_pem_public_key,
        lambda pem: serialization.load_pem_private_key(pem, password=None),
        x509.load_pem_x509_certificates,
    )
    for load in loaders:
        try:
            load(data)
        except (ValueError, TypeError, UnsupportedAlgorithm):
            continue
        return True
    return False


def pem_file(environ: Mapping[str, str], name: str) -> str:
    """Return the variable ``name``: the path of an existing, readable PEM key or certificate."""
    path = require(environ, name)
    if not _loads(_read(name, path)):
        raise ConfigError(f"{name} {path} holds no PEM key or certificate")
    return path
