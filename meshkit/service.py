"""Run one service process: logging, metrics exporter, database, server, graceful stop.

Every component's ``python -m <package>`` goes through :func:`main`, so they all start,
migrate and fail the same way:

- ``python -m <package>`` serves until SIGTERM or SIGINT, then exits 0.
- ``python -m <package> migrate`` applies the service's database migrations (it reads only
  ``DATABASE_URL``), prints one line and exits 0; Kubernetes runs it as a Job.
- Every line it writes is one JSON object (:mod:`meshkit.logs`, from the first line on).
- A start that fails prints ONE line on stderr naming the variable, server or file and the
  cause (never a secret; a URL's userinfo is replaced by ``***``), no traceback, and exits
  :data:`EXIT_CONFIGURATION` (2: fix the configuration) or :data:`EXIT_UNAVAILABLE` (1: a
  dependency is unreachable or a port is taken; the same start may succeed later). The
  process exits even when a server, a pool or a thread was left half started.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import re
import socket
import sys
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Any, NoReturn, Protocol, TypeVar

from meshkit import db, logs, metrics, tracing
from meshkit.settings import ConfigError
from meshkit.settings import database_url as database_url_from_env

log = logging.getLogger("meshkit.service")

EXIT_OK = 0
EXIT_UNAVAILABLE = 1
"""A dependency (database server, port) is not available now; restarting may succeed."""
EXIT_CONFIGURATION = 2
"""The environment is wrong (bad or missing variable, file, key, URL); fix it first."""

FILE_VARIABLES = (
    "TLS_CERT",
    "TLS_KEY",
    "TLS_CA",
    "ASSERTION_PUBLIC_KEY",
    "ASSERTION_SIGNING_KEY",
    "GATEWAY_HTTPS_CERT",
    "GATEWAY_HTTPS_KEY",
)
"""Variables that name a file (a certificate or key path, not its content), in the order a
message prefers them."""
_GRPC_BIND = re.compile(r"Failed to bind to address (\S+?);")

Settings = TypeVar("Settings")


class StartupError(Exception):
    """A start-up failure whose one-line message is ready for the operator.

    Parameters
    ----------
    message
        What failed and why, naming the variable, server or file; never a secret.
    exit_code
        :data:`EXIT_CONFIGURATION` (the default) or :data:`EXIT_UNAVAILABLE`.
    """

    def __init__(self, message: str, exit_code: int = EXIT_CONFIGURATION) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class MigratableStore(Protocol):
    """A service's store class: built on an open database, it applies its own migrations."""

    async def migrate(self) -> Any:
        """Apply the migrations not applied yet."""
        ...


def prepare_process(service: str, level: str, metrics_port: int, host: str) -> None:
    """Configure JSON logs, traces and the metrics exporter for a service process.

    Raises
    ------
    StartupError
        When the metrics port cannot be bound (naming ``METRICS_PORT``).
    """
    logs.configure(service, level)
    tracing.configure(service)  # on only with OTEL_EXPORTER_OTLP_ENDPOINT (meshkit.tracing)
    ensure_can_listen("METRICS_PORT", host, metrics_port)
    try:
        metrics.start_exporter(metrics_port, host)
    except OSError as e:
        raise StartupError(
            f"METRICS_PORT {metrics_port}: cannot listen on {host}:{metrics_port}:"
            f" {e.strerror or e}",
            EXIT_UNAVAILABLE if e.errno == errno.EADDRINUSE else EXIT_CONFIGURATION,
        ) from None


def ensure_can_listen(variable: str, host: str, port: int) -> None:
    """Fail at once, naming ``variable``, when ``host:port`` cannot be bound (port 0: any).

    A quick bind test before the server is built: grpc would log its own lines first and
    then say only "Failed to bind".

    Raises
    ------
    StartupError
        ``EXIT_UNAVAILABLE`` when the port is taken, ``EXIT_CONFIGURATION`` otherwise.
    """
    if not port:
        return
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    except OSError as e:
        taken = e.errno == errno.EADDRINUSE
        raise StartupError(
            f"{variable} {port}: cannot listen on {host}:{port}:"
            f" {'the port is taken by another process' if taken else e.strerror or e}",
            EXIT_UNAVAILABLE if taken else EXIT_CONFIGURATION,
        ) from None


def explain(error: BaseException, environ: Mapping[str, str] = os.environ) -> tuple[int, str]:
    """Return the exit code and the one-line message for an error that stopped a start."""
    if isinstance(error, StartupError):
        return error.exit_code, str(error)
    if isinstance(error, ConfigError):
        return EXIT_CONFIGURATION, str(error)
    if isinstance(error, db.DatabaseUnavailable):
        return EXIT_UNAVAILABLE, str(error)
    if isinstance(error, OSError) and error.filename is not None:
        path = str(error.filename)
        names = [name for name in FILE_VARIABLES if environ.get(name, "").strip() == path]
        what = f"{names[0]} {path}" if names else path
        return EXIT_CONFIGURATION, f"{what}: {error.strerror or error}"
    if isinstance(error, OSError) and error.errno == errno.EADDRINUSE:
        return EXIT_UNAVAILABLE, f"cannot listen: {error.strerror or error}"
    found = _GRPC_BIND.search(str(error)) if isinstance(error, RuntimeError) else None
    if found or (isinstance(error, OSError) and str(error).startswith("could not bind")):
        address = found.group(1) if found else str(error).removeprefix("could not bind ")
        return EXIT_UNAVAILABLE, (
            f"GRPC_PORT/BIND_HOST: cannot listen on {address}"
            " (the port is taken, or the host is not this machine's)"
        )
    text = " ".join(str(error).split()) or "no detail"
    return EXIT_UNAVAILABLE, f"unexpected {type(error).__name__} while starting: {text}"


async def migrate_database(url: str, store: Callable[[db.Database], MigratableStore]) -> str:
    """Open the database ``url``, apply the store's migrations and say what was done."""
    database = await db.connect(url)
    try:
        applied = await store(database).migrate()
    finally:
        await database.close()
    where = db.redact_url(url)
    if applied:
        versions = ", ".join(f"{version:04d}" for version in applied)
        return f"migrated {where}: applied {versions}"
    return f"migrated {where}: already up to date"


def _exit(code: int) -> NoReturn:
    # A half-started grpc server, pool or database thread may hold the interpreter open at
    # exit; nothing is left to clean that a failed start needs, so leave at once.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def run(
    name: str,
    settings_from_env: Callable[[], Settings],
    serve: Callable[[Settings], Coroutine[Any, Any, None]],
    *,
    store: Callable[[db.Database], MigratableStore],
    default_database_url: str,
    argv: Sequence[str] | None = None,
    environ: Mapping[str, str] = os.environ,
) -> int:
    """Serve (or, with ``migrate``, migrate) and return the process's exit code.

    Parameters
    ----------
    name
        The package, first word of every message (``broker_svc``).
    settings_from_env
        Reads and checks the service's settings (raises ``ConfigError``).
    serve
        Prepares the process and serves until signalled; raises what stopped its start
        (``StartupError`` for a message of its own).
    store
        The service's store class, for ``migrate``.
    default_database_url
        ``DATABASE_URL`` when unset (``migrate``).
    """
    args = list(sys.argv[1:] if argv is None else argv)
    logs.configure(name, _log_level(environ))  # JSON from the first line (docs/logging.md)
    try:
        if args == ["migrate"]:
            url = database_url_from_env(environ, default_database_url)
            log.info("%s: %s", name, asyncio.run(migrate_database(url, store)))
            return EXIT_OK
        if args:
            raise StartupError(
                f"unknown arguments {' '.join(args)!r}; usage: python -m {name}"
                " [migrate] (configured by environment)"
            )
        settings = settings_from_env()
        asyncio.run(serve(settings))
    except KeyboardInterrupt:
        return EXIT_OK
    except Exception as e:
        code, message = explain(e, environ)
        debug = str(environ.get("LOG_LEVEL", "")).upper() == "DEBUG"
        line = logs.json_line(
            name, "error", f"{name}: {message}", logger=log.name, exc_info=e if debug else None
        )
        print(line, file=sys.stderr, flush=True)
        return code
    return EXIT_OK


def _log_level(environ: Mapping[str, str]) -> str:
    level = str(environ.get("LOG_LEVEL", "")).strip().upper()
    return level if level in logging.getLevelNamesMapping() else "INFO"


def main(
    name: str,
    settings_from_env: Callable[[], Settings],
    serve: Callable[[Settings], Coroutine[Any, Any, None]],
    *,
    store: Callable[[db.Database], MigratableStore],
    default_database_url: str,
) -> NoReturn:
    """Run a service's ``python -m`` entry point (:func:`run`) and exit with its code."""
    code = run(
        name, settings_from_env, serve, store=store, default_database_url=default_database_url
    )
    if code != EXIT_OK:
        _exit(code)
    sys.exit(code)
