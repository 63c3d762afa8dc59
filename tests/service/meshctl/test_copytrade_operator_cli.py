"""The operator's commands: ``copytrade status``, ``version``, ``migrate`` and ``config check``.

``status`` and ``version`` ask real gRPC servers (in-process, mutual TLS with the tests' mesh
credentials, which the data dir's ``certs`` folder points at) and a real gateway; a component
that does not listen is shown down and the exit code says so.
"""

from __future__ import annotations

import base64
import contextlib
import os
import pathlib
from collections.abc import AsyncIterator

import grpc
import pytest
from aiohttp.test_utils import TestServer

from copytrade.common.v1 import server_info_service_pb2, server_info_service_pb2_grpc
from copytrade.engine.v1 import engine_service_pb2, engine_service_pb2_grpc
from engine_svc.access import RULES as ENGINE_RULES
from gateway.config import Settings as GatewaySettings
from gateway.routes import default_services
from gateway.server import GatewayDeps, build_app
from meshctl.__main__ import main
from meshctl.config_check import check, mask
from meshctl.launcher import Ports
from meshctl.migrate import migrate_all
from meshctl.status import status, versions
from meshkit import db, pki
from meshkit.access import Guard
from meshkit.server import Registration, start_server
from meshkit.server_info import copy_configs_by_status, package_version
from meshkit.testing import (
    TEST_ASSERTION_PUBLIC_KEY,
    TEST_ASSERTION_SIGNING_KEY,
    TEST_PKI,
    TEST_VERIFIER,
    gateway_trust,
    inprocess_server,
    secure_channel,
    tls_for,
)
from tests.fakes.recording import Recorder
from tests.gateway.fakes import registrations

VERSION = package_version()
OUR_PREFIXES = ("TLS_", "ASSERTION_", "GATEWAY_", "ENCRYPTION_", "BROKER_", "RESEND_")
OUR_VARIABLES = {
    "GRPC_PORT",
    "METRICS_PORT",
    "HEALTH_PORT",
    "BIND_HOST",
    "DATABASE_URL",
    "TIMESCALE_URL",
    "LOG_LEVEL",
    "VENUE_URLS",
    "REPLICA_ID",
    "LEASE_TTL_MS",
}


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _data_dir(tmp_path: pathlib.Path) -> pathlib.Path:
    """A data dir whose certs are the tests' mesh credentials (the operator's among them)."""
    data_dir = tmp_path / "mesh"
    data_dir.mkdir()
    (data_dir / "certs").symlink_to(TEST_PKI, target_is_directory=True)
    return data_dir


@contextlib.asynccontextmanager
async def _mesh(*, engine_up: bool) -> AsyncIterator[tuple[dict[str, str], str]]:
    """Fake broker, engine, sync and recon on one in-process server, and a real gateway.

    Yield the services' address variables (the engine's names a closed port unless
    ``engine_up``) and the gateway's URL.
    """
    async with inprocess_server(registrations(Recorder()), domain="broker.copytrade") as (
        running,
        channel,
    ):
        address = f"127.0.0.1:{running.port}"
        database = await db.connect("sqlite:///:memory:")
        deps = GatewayDeps(
            database=database, channels={s.full_name: channel for s in default_services()}
        )
        app = build_app(GatewaySettings(port=0, **gateway_trust()), deps)
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        try:
            environ = {
                "BROKER_SVC_ADDR": address,
                "ENGINE_SVC_ADDR": address if engine_up else f"127.0.0.1:{_free_port()}",
                "SYNC_SVC_ADDR": address,
                "RECON_SVC_ADDR": address,
            }
            yield environ, str(server.make_url("")).rstrip("/")
        finally:
            await server.close()
            await database.close()


# ---------------------------------------------------------------- status and version


async def test_status_shows_a_component_that_is_down_and_exits_1(tmp_path: pathlib.Path) -> None:
    data_dir = _data_dir(tmp_path)
    assert await migrate_all(data_dir, None, lambda line: None) == 0
    lines: list[str] = []
    async with _mesh(engine_up=False) as (environ, gateway_url):
        code = await status(
            data_dir, None, lines.append, ports=Ports(), gateway_url=gateway_url, environ=environ
        )
    text = "\n".join(lines)
    rows = {line.split()[0]: line.split() for line in lines[1:6]}
    assert code == 1
    assert rows["engine"][:3] == ["engine", "DOWN", "-"]
    assert environ["ENGINE_SVC_ADDR"] in rows["engine"]
    assert "unreachable" in text
    for component in ("broker", "sync", "recon"):
        assert rows[component][:4] == [component, "SERVING", VERSION, environ["BROKER_SVC_ADDR"]]
    # The gateway's readiness checks its own backends (the fakes) and its store: it serves.
    assert rows["gateway"][:4] == ["gateway", "SERVING", VERSION, gateway_url]
    assert "copy configurations: unknown (no engine answered" in text
    assert "engine: 0 live replica(s)" in text  # the lease view is still there
    assert text.rstrip().endswith("not serving: engine")
    assert "Traceback" not in text


async def test_status_exits_0_when_every_component_serves(tmp_path: pathlib.Path) -> None:
    data_dir = _data_dir(tmp_path)
    await migrate_all(data_dir, None, lambda line: None)
    lines: list[str] = []
    async with _mesh(engine_up=True) as (environ, gateway_url):
        code = await status(
            data_dir, None, lines.append, ports=Ports(), gateway_url=gateway_url, environ=environ
        )
        version_lines: list[str] = []
        assert (
            await versions(
                data_dir,
                version_lines.append,
                ports=Ports(),
                gateway_url=gateway_url,
                environ=environ,
            )
            == 0
        )
    assert code == 0, "\n".join(lines)
    assert [line.split()[1] for line in lines[1:6]] == ["SERVING"] * 5
    assert version_lines[0] == f"copytrade {VERSION} (this command)"
    assert [line.split()[:2] for line in version_lines[1:]] == [
        [name, VERSION] for name in ("gateway", "broker", "engine", "sync", "recon")
    ]


async def test_inside_a_pod_status_asks_with_the_pods_own_certificate(
    tmp_path: pathlib.Path,
) -> None:
    # No operator certificate in this data dir: the recon pod's TLS_* are used instead.
    data_dir = tmp_path / "pod"
    await migrate_all(data_dir, None, lambda line: None)
    recon = tls_for("recon")
    lines: list[str] = []
    async with _mesh(engine_up=True) as (environ, gateway_url):
        pod = {**environ, "TLS_CERT": recon.cert, "TLS_KEY": recon.key, "TLS_CA": recon.ca}
        code = await status(
            data_dir, None, lines.append, ports=Ports(), gateway_url=gateway_url, environ=pod
        )
    assert code == 0, "\n".join(lines)
    assert [line.split()[1] for line in lines[1:6]] == ["SERVING"] * 5


def test_version_names_unreachable_components_and_still_exits_0(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # --port-base 1: ports 1 to 13, where nothing of a mesh listens.
    data_dir = _data_dir(tmp_path)
    assert main(["version", "--data-dir", str(data_dir), "--port-base", "1"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == f"copytrade {VERSION} (this command)"
    assert "gateway  unreachable  http://127.0.0.1:1" in out
    assert "engine   unreachable  127.0.0.1:3" in out


async def test_the_operator_may_ask_any_service_what_runs_but_call_none_of_its_rpcs() -> None:
    # The engine's real access table: the operator identity is in none of its lines.
    engine = Registration(
        engine_service_pb2_grpc.add_EngineServiceServicer_to_server,
        engine_service_pb2_grpc.EngineServiceServicer(),
        engine_service_pb2.DESCRIPTOR.services_by_name["EngineService"].full_name,
    )
    running = await start_server(
        [engine],
        domain="engine.copytrade",
        guard=Guard(ENGINE_RULES, TEST_VERIFIER),
        tls=tls_for("engine"),
    )
    channel = secure_channel(f"127.0.0.1:{running.port}", "operator")
    try:
        info = await server_info_service_pb2_grpc.ServerInfoServiceStub(channel).GetServerInfo(
            server_info_service_pb2.GetServerInfoRequest(), timeout=5
        )
        assert (info.component, info.version) == ("engine", VERSION)
        assert info.start_time.seconds > 0
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await engine_service_pb2_grpc.EngineServiceStub(channel).ListConfigs(
                engine_service_pb2.ListConfigsRequest(), timeout=5
            )
        assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    finally:
        await channel.close()
        await running.server.stop(None)


def test_the_engines_counts_are_read_from_its_configs_gauge() -> None:
    from prometheus_client import CollectorRegistry, Gauge

    registry = CollectorRegistry()
    gauge = Gauge("copytrade_engine_configs", "per status", ["status"], registry=registry)
    gauge.labels("ACTIVE").set(3)
    gauge.labels("HALTED").set(1)
    assert copy_configs_by_status(registry) == {"ACTIVE": 3, "HALTED": 1}
    assert copy_configs_by_status(CollectorRegistry()) == {}


# ---------------------------------------------------------------- migrate


async def _applied(data_dir: pathlib.Path) -> dict[str, list[tuple[str, int]]]:
    found = {}
    for component in ("gateway", "broker", "engine", "sync", "recon"):
        database = await db.connect(f"sqlite:///{data_dir}/{component}.db")
        try:
            rows = await database.fetchall(
                "SELECT service, version FROM schema_migrations ORDER BY service, version"
            )
        finally:
            await database.close()
        found[component] = [(row["service"], row["version"]) for row in rows]
    return found


async def test_migrate_twice_changes_nothing_the_second_time(tmp_path: pathlib.Path) -> None:
    data_dir = tmp_path / "fresh"
    first: list[str] = []
    assert await migrate_all(data_dir, None, first.append) == 0
    applied = await _applied(data_dir)
    assert all(applied.values()), applied
    second: list[str] = []
    assert await migrate_all(data_dir, None, second.append) == 0
    assert await _applied(data_dir) == applied
    for component in ("gateway", "broker", "engine", "sync", "recon"):
        assert any(line.startswith(f"  {component}: applied 0001") for line in first), first
        assert f"  {component}: already up to date" in second
    assert any(line.startswith("[1/5] gateway: migrating sqlite:///") for line in first)
    assert second[-1] == "migrations done"


def test_migrate_names_the_database_and_never_its_password(
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = f"postgresql://copytrade:hunter2secret@127.0.0.1:{_free_port()}/copytrade"
    assert main(["migrate", "--database-url", url]) == 1
    out = capsys.readouterr().out
    assert "hunter2secret" not in out
    assert "gateway: FAILED" in out and "recon: FAILED" in out
    assert "postgresql://***@127.0.0.1:" in out
    assert out.rstrip().endswith("migrations failed (above)")


# ---------------------------------------------------------------- config check


def _good_environment(component: str) -> dict[str, str]:
    files = pki.identity_files(TEST_PKI, component)
    environ = {"TLS_CERT": str(files.cert), "TLS_KEY": str(files.key), "TLS_CA": str(files.ca)}
    if component == "gateway":
        environ["ASSERTION_SIGNING_KEY"] = TEST_ASSERTION_SIGNING_KEY
    else:
        environ["ASSERTION_PUBLIC_KEY"] = TEST_ASSERTION_PUBLIC_KEY
    if component == "broker":
        environ["ENCRYPTION_KEY"] = base64.b64encode(os.urandom(32)).decode()
    return environ


@pytest.mark.parametrize("component", ["gateway", "broker", "engine", "sync", "recon"])
def test_config_check_passes_a_good_environment(component: str) -> None:
    lines: list[str] = []
    assert check([component], _good_environment(component), lines.append) == 0
    assert lines == [f"{component}: ok"]


def test_config_check_names_every_bad_variable_at_once_and_no_secret() -> None:
    secret = base64.b64encode(b"too short but secret").decode()
    environ = {
        **_good_environment("broker"),
        "GRPC_PORT": "eighty",
        "METRICS_PORT": "70000",
        "BROKER_RATE_LIMITS": "perhaps",
        "ENCRYPTION_KEY": secret,
        "ENCRYPTION_KEYS_PREVIOUS": "not base64 !!",
        "DATABASE_URL": "mysql://copytrade:hunter2secret@db/copytrade",
        "VENUE_URLS": "binance=ftp://me:venuesecret@127.0.0.1:9101",
        "TLS_CA": "/nowhere/ca.crt",
    }
    del environ["ASSERTION_PUBLIC_KEY"]
    lines: list[str] = []
    assert check(["broker"], environ, lines.append) == 1
    text = "\n".join(lines)
    for variable in (
        "GRPC_PORT",
        "METRICS_PORT",
        "BROKER_RATE_LIMITS",
        "ENCRYPTION_KEY ",
        "ENCRYPTION_KEYS_PREVIOUS",
        "DATABASE_URL",
        "VENUE_URLS",
        "TLS_CA",
        "ASSERTION_PUBLIC_KEY",
    ):
        assert variable in text, variable
    assert lines[0].startswith("broker: 9 problem(s) with ASSERTION_PUBLIC_KEY, BROKER_RATE_LIMITS")
    for secret_text in (secret, "hunter2secret", "venuesecret", "not base64 !!"):
        assert secret_text not in text
    assert "ftp://***@127.0.0.1:9101" in text


def test_config_check_from_the_command_line_checks_one_service_or_all(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in list(os.environ):
        if name.startswith(OUR_PREFIXES) or name.endswith("_SVC_ADDR") or name in OUR_VARIABLES:
            monkeypatch.delenv(name)
    for name, value in _good_environment("engine").items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("LOG_LEVEL", "chatty")
    monkeypatch.setenv("RESOLVER_INTERVAL_MS", "1")
    assert main(["config", "check", "--service", "recon"]) == 0
    assert capsys.readouterr().out == "recon: ok\n"
    assert main(["config", "check", "--service", "sync", "--service", "engine"]) == 1
    out = capsys.readouterr().out
    assert "sync: 1 problem(s) with LOG_LEVEL" in out
    assert "engine: 1 problem(s) with RESOLVER_INTERVAL_MS" in out
    assert main(["config", "check"]) == 1
    out = capsys.readouterr().out
    assert "gateway: 1 problem(s) with ASSERTION_SIGNING_KEY" in out
    assert "broker: 1 problem(s) with ENCRYPTION_KEY" in out
    assert out.rstrip().endswith("4 of 5 component(s) would not start with this environment")


def test_the_services_still_stop_at_their_first_bad_variable() -> None:
    from broker_svc.config import Settings
    from meshkit.settings import ConfigError

    environ = {**_good_environment("broker"), "GRPC_PORT": "eighty", "METRICS_PORT": "x"}
    with pytest.raises(ConfigError, match="GRPC_PORT must be an integer, got 'eighty'"):
        Settings.from_env(environ)


def test_mask_hides_secret_values_and_url_passwords() -> None:
    environ = {"ENCRYPTION_KEY": "c2VjcmV0LWtleS12YWx1ZQ==", "TLS_KEY": "/certs/tls.key"}
    message = (
        "ENCRYPTION_KEY c2VjcmV0LWtleS12YWx1ZQ== bad; postgresql://u:p@h/d?password=x"
        " TLS_KEY /certs/tls.key"
    )
    assert mask(message, environ) == (
        "ENCRYPTION_KEY *** bad; postgresql://***@h/d?password=*** TLS_KEY /certs/tls.key"
    )
