"""Helpers for each service's ``config.py``: read, parse and validate the environment once.

Every helper raises :class:`ConfigError` naming the variable, so a bad deployment
fails at boot with a message an operator can act on.

:func:`collect` runs a loader in a mode where each bad variable is recorded instead of raised
(the helper then returns its default and the loader goes on), so ``copytrade config check``
names every bad variable at once. A check written in a ``config.py`` reports through
:func:`problem`, which raises as before outside :func:`collect`.
"""

from __future__ import annotations

import contextvars
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any


class ConfigError(ValueError):
    """A configuration variable is missing or malformed; the message names it.

    ``variables`` names the variables at fault when the raiser knows them (``()`` otherwise).
    """

    def __init__(self, message: str, *, variables: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.variables = variables


_COLLECTED: contextvars.ContextVar[list[ConfigError] | None] = contextvars.ContextVar(
    "meshkit_settings_collected", default=None
)


def problem(message: str, *variables: str) -> None:
    """Report a bad variable: raise :class:`ConfigError`, or record it inside :func:`collect`.

    Inside :func:`collect` it returns, and the caller goes on with a default; only the first
    problem of each variable is kept (a missing key is not also reported as malformed).
    """
    error = ConfigError(message, variables=variables)
    collected = _COLLECTED.get()
    if collected is None:
        raise error from None  # the message says it all; no chained parsing error
    _record(collected, error)


def _record(collected: list[ConfigError], error: ConfigError) -> None:
    seen = {name for earlier in collected for name in earlier.variables}
    if error.variables and seen.issuperset(error.variables):
        return
    if any(str(earlier) == str(error) for earlier in collected):
        return
    collected.append(error)


def collect(
    load: Callable[[Mapping[str, str]], Any], environ: Mapping[str, str]
) -> list[ConfigError]:
    """Run ``load(environ)`` (a ``Settings.from_env``) and return every problem it met.

    Each helper of this module, and :func:`problem`, records instead of raising while it runs;
    a ``ConfigError`` raised some other way ends the load and is returned last. An empty list
    means the environment is good.
    """
    collected: list[ConfigError] = []
    token = _COLLECTED.set(collected)
    try:
        load(environ)
    except ConfigError as e:
        _record(collected, e)
    except Exception as e:  # a check that met a default it did not expect: say where it stopped
        _record(collected, ConfigError(f"checking stopped early: {type(e).__name__}"))
    finally:
        _COLLECTED.reset(token)
    return collected


def require(environ: Mapping[str, str], name: str) -> str:
    """Return the variable ``name``, or fail naming it when it is missing or empty."""
    value = environ.get(name, "").strip()
    if not value:
        problem(f"{name} is required but not set", name)
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
        problem(f"{name} must be an integer, got {raw!r}", name)
        return default
    if not minimum <= value <= maximum:
        problem(f"{name} must be between {minimum} and {maximum}, got {value}", name)
        return default
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
    problem(f"{name} must be true or false, got {raw!r}", name)
    return default


def database_url(environ: Mapping[str, str], default: str) -> str:
    """Return ``DATABASE_URL`` (or its alias ``TIMESCALE_URL``), checking the scheme."""
    url = (
        environ.get("DATABASE_URL", "").strip()
        or environ.get("TIMESCALE_URL", "").strip()
        or default
    )
    if not url.startswith(("sqlite:", "postgresql:", "postgres:")):
        problem("DATABASE_URL must start with sqlite:, postgresql: or postgres:", "DATABASE_URL")
        return default
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
            problem(
                f"VENUE_URLS entries must look like name=http://host:port, got {part!r}",
                "VENUE_URLS",
            )
            continue
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
            problem(
                f"{', '.join(missing)} must be set{hint}"
                + (f" together with {', '.join(given)}" if given else ""),
                *missing,
            )
            return cls()
        _check_certificates("TLS_CERT", values["TLS_CERT"])
        _check_private_key("TLS_KEY", values["TLS_KEY"])
        _check_certificates("TLS_CA", values["TLS_CA"])
        return cls(values["TLS_CERT"], values["TLS_KEY"], values["TLS_CA"])


def _read(name: str, path: str) -> bytes | None:
    # None only inside collect(), once the problem is recorded.
    if not os.path.isfile(path):
        problem(f"{name} names no readable file: {path}", name)
        return None
    try:
        with open(path, "rb") as file:
            return file.read()
    except OSError as e:
        problem(f"{name} {path} cannot be read: {e.strerror or e}", name)
        return None


def _check_certificates(name: str, path: str) -> None:
    # Checked here, where the variable is known: grpc would only say "Failed to bind".
    from cryptography import x509

    data = _read(name, path)
    if data is None:
        return
    try:
        x509.load_pem_x509_certificates(data)
    except ValueError:
        problem(f"{name} {path} holds no PEM certificate", name)


def _check_private_key(name: str, path: str) -> None:
    from cryptography.hazmat.primitives import serialization

    data = _read(name, path)
    if data is None:
        return
    try:
        serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        # The message says what is wrong, never what the file holds: it is a secret.
        problem(f"{name} {path} holds no unencrypted PEM private key", name)


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
    data = _read(name, path) if path else None
    if data is not None and not _loads(data):
        problem(f"{name} {path} holds no PEM key or certificate", name)
    return path
