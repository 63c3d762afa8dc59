"""Test helpers: in-process gRPC servers, polling waits, per-test databases (the tests' fake
clock is ``tests.fakes.clock.FakeClock``)."""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import pathlib
import shutil
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from typing import Any

import grpc

from meshkit import clients, db, pki
from meshkit.access import Guard
from meshkit.identity import ASSERTION_HEADER, AssertionSigner, AssertionVerifier
from meshkit.server import Registration, RunningServer, start_server
from meshkit.settings import TlsSettings

# The tests' mesh credentials (CA, a certificate per identity, the assertion key pair): made
# once per test process in a temporary folder, removed at exit, never committed.
TEST_PKI = pathlib.Path(tempfile.mkdtemp(prefix="copytrade-test-pki-"))
atexit.register(shutil.rmtree, TEST_PKI, ignore_errors=True)
pki.ensure_mesh_credentials(TEST_PKI)
# Long-lived so that modules may sign theirs once at import; expiry is tested with ``now``.
TEST_SIGNER = AssertionSigner.from_file(pki.signing_key_path(TEST_PKI), ttl=6 * 3600)
TEST_VERIFIER = AssertionVerifier(TEST_SIGNER.public_key())
TEST_ASSERTION_PUBLIC_KEY = str(pki.public_key_path(TEST_PKI))
TEST_ASSERTION_SIGNING_KEY = str(pki.signing_key_path(TEST_PKI))


def tls_for(identity: str) -> TlsSettings:
    """Return the TLS settings of ``identity`` in the tests' mesh credentials."""
    files = pki.identity_files(TEST_PKI, identity)
    return TlsSettings(str(files.cert), str(files.key), str(files.ca))


def secure_channel(
    address: str,
    identity: str,
    options: Sequence[tuple[str, Any]] = (),
) -> grpc.aio.Channel:
    """Open a mutual TLS channel to ``address`` presenting ``identity``'s certificate."""
    if not options:
        return clients.channel(address, tls=tls_for(identity))
    files = pki.identity_files(TEST_PKI, identity)
    credentials = grpc.ssl_channel_credentials(
        files.ca.read_bytes(),
        files.key.read_bytes(),
        files.cert.read_bytes(),
    )
    return grpc.aio.secure_channel(address, credentials, options=list(options))


def as_user(user_id: str, plan: str = "pro") -> tuple[tuple[str, str], ...]:
    """Return the metadata the gateway sends for an authenticated user: a signed assertion."""
    return ((ASSERTION_HEADER, TEST_SIGNER.sign(user_id, plan)),)


@contextlib.asynccontextmanager
async def inprocess_server(
    registrations: Sequence[Registration],
    *,
    domain: str = "test.copytrade",
) -> AsyncIterator[tuple[RunningServer, grpc.aio.Channel]]:
    """Start a real server on a free loopback port and yield it with a channel to it.

    It speaks mutual TLS with the tests' credentials and verifies user assertions (signed by
    :data:`TEST_SIGNER`) but checks no access table: it exercises handlers and stands in for
    other services. The access tables are tested on the servers ``build_server`` makes.
    """
    running = await start_server(
        registrations,
        domain=domain,
        guard=Guard(None, TEST_VERIFIER),
        tls=tls_for("operator"),
    )
    channel = secure_channel(f"127.0.0.1:{running.port}", "gateway")
    try:
        yield running, channel
    finally:
        await channel.close()
        await running.server.stop(grace=None)


async def eventually(
    predicate: Callable[[], Awaitable[Any] | Any],
    *,
    timeout: float = 10.0,  # noqa: ASYNC109 - a polling deadline in seconds, used by every test
    interval: float = 0.02,
) -> Any:
    """Poll ``predicate`` until it returns something truthy, or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        last = predicate()
        if asyncio.iscoroutine(last) or isinstance(last, Awaitable):
            last = await last
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last value: {last!r})")
        await asyncio.sleep(interval)


POSTGRES_ENV = "COPYTRADE_TEST_POSTGRES_URL"


def database_urls() -> list[str]:
    """Return the backends storage tests run on: SQLite always, PostgreSQL when configured."""
    urls = ["sqlite"]
    if os.environ.get(POSTGRES_ENV):
        urls.append("postgresql")
    return urls


@contextlib.asynccontextmanager
async def fresh_database(kind: str, tmp_path: Any) -> AsyncIterator[tuple[db.Database, str]]:
    """Yield an empty database of ``kind`` and its URL: a temp SQLite file, or a new PG schema."""
    if kind == "sqlite":
        url = f"sqlite:///{tmp_path}/test-{uuid.uuid4().hex[:8]}.db"
        database = await db.connect(url)
        try:
            yield database, url
        finally:
            await database.close()
        return
    base = os.environ[POSTGRES_ENV]
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = await db.connect(base)
    await admin.execute(f"CREATE SCHEMA {schema}")
    separator = "&" if "?" in base else "?"
    url = f"{base}{separator}options=-csearch_path%3D{schema}"
    database = await db.connect(url)
    try:
        yield database, url
    finally:
        await database.close()
        await admin.execute(f"DROP SCHEMA {schema} CASCADE")
        await admin.close()


@contextlib.contextmanager
def handling_request_of(user_id: str, plan: str = "pro") -> Iterator[None]:
    """Run the body as a service handling a call that ``user_id`` made through the gateway."""
    from meshkit import identity

    token = TEST_SIGNER.sign(user_id, plan)
    _, _, expires_at = TEST_VERIFIER.verify(token)
    reset = identity.set_caller(identity.Caller("gateway", user_id, plan, token, expires_at))
    try:
        yield
    finally:
        identity.reset_caller(reset)


def mesh_trust(identity: str) -> dict[str, Any]:
    """Return the settings fields that give a service under test its mesh identity.

    ``Settings(..., **mesh_trust("broker"))``: its certificate and the key that verifies
    the assertions :func:`as_user` signs.
    """
    return {"tls": tls_for(identity), "assertion_public_key": TEST_ASSERTION_PUBLIC_KEY}


def gateway_trust() -> dict[str, Any]:
    """Return the gateway settings fields of its mesh identity and assertion signing key."""
    return {"tls": tls_for("gateway"), "assertion_signing_key": TEST_ASSERTION_SIGNING_KEY}


class AuthorizedStub:
    """A service's stub whose every method is called over mutual TLS by an identity that the
    service's access table allows to call it (the gateway first, then the services).

    Service tests call every RPC of a service; this lets them do it through the real access
    table instead of around it.
    """

    PREFERENCE = ("gateway", "engine", "sync", "recon")

    def __init__(self, stub_class: Any, address: str, rules: dict[str, frozenset[str]]) -> None:
        self.address = address
        self._rules = rules
        self._channels = {name: secure_channel(address, name) for name in self.PREFERENCE}
        self._stubs = {name: stub_class(channel) for name, channel in self._channels.items()}

    def __getattr__(self, method: str) -> Any:
        allowed = next(
            (who for path, who in self._rules.items() if path.endswith(f"/{method}")), None
        )
        if allowed is None:
            raise AttributeError(method)
        caller = next((name for name in self.PREFERENCE if name in allowed), self.PREFERENCE[0])
        return getattr(self._stubs[caller], method)

    async def close(self) -> None:
        """Close every channel."""
        for channel in self._channels.values():
            await channel.close()


def trust_env(identity: str) -> dict[str, str]:
    """Return the environment that gives ``identity`` its mesh credentials (config tests)."""
    files = pki.identity_files(TEST_PKI, identity)
    env = {"TLS_CERT": str(files.cert), "TLS_KEY": str(files.key), "TLS_CA": str(files.ca)}
    if identity == "gateway":
        env["ASSERTION_SIGNING_KEY"] = TEST_ASSERTION_SIGNING_KEY
    else:
        env["ASSERTION_PUBLIC_KEY"] = TEST_ASSERTION_PUBLIC_KEY
    return env
