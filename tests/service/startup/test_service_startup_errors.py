"""``python -m <service>`` for every service and the gateway: a start that cannot succeed
prints one JSON line on stderr naming what is wrong (never a secret), exits 2 for configuration and
1 for an unavailable dependency, with no traceback and no process left behind."""

from __future__ import annotations

import base64
import json
import os
import pathlib
import socket
import subprocess
import sys

import pytest

from meshkit.testing import trust_env

ROOT = pathlib.Path(__file__).resolve().parents[3]
SERVICES = {
    "broker_svc": "broker",
    "engine_svc": "engine",
    "sync_svc": "sync",
    "recon_svc": "recon",
    "gateway": "gateway",
}
PASSWORD = "hunter2-not-to-be-seen"


def service_env(module: str, tmp_path: pathlib.Path, **overrides: str) -> dict[str, str]:
    """Return a working environment for ``module`` (free ports, SQLite in ``tmp_path``)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("GRPC_", "DATABASE_URL", "TLS_", "ASSERTION_", "GATEWAY_"))
    }
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "gen"), str(ROOT)])
    env.update(trust_env(SERVICES[module]))
    env["DATABASE_URL"] = f"sqlite:///{tmp_path}/{module}.db"
    if module == "gateway":
        env["GATEWAY_PORT"] = "0"
    else:
        env.update(GRPC_PORT="0", METRICS_PORT="0")
    if module == "broker_svc":
        env["ENCRYPTION_KEY"] = base64.b64encode(b"k" * 32).decode()
    env.update(overrides)
    return env


def start(module: str, env: dict[str, str], cwd: pathlib.Path) -> subprocess.CompletedProcess[str]:
    """Run ``python -m module`` to its end (a hang fails the test after 40 s)."""
    return subprocess.run(
        [sys.executable, "-m", module],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=40,
        check=False,
    )


def assert_one_line(result: subprocess.CompletedProcess[str], code: int, *words: str) -> str:
    """Return the message of the one JSON line on stderr (docs/logging.md), level error."""
    lines = result.stderr.strip().splitlines()
    assert result.returncode == code, result.stderr
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    entry = json.loads(lines[0])
    assert entry["level"] == "error" and "exception" not in entry, entry
    message = str(entry["message"])
    for word in words:
        assert word in message, message
    return message


@pytest.fixture(params=sorted(SERVICES))
def module(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_unreachable_postgresql_names_the_server_and_hides_the_password(
    module: str,
    tmp_path: pathlib.Path,
) -> None:
    env = service_env(
        module, tmp_path, DATABASE_URL=f"postgresql://nobody:{PASSWORD}@127.0.0.1:1/x"
    )
    line = assert_one_line(start(module, env, tmp_path), 1, "127.0.0.1:1", "refused")
    assert line.startswith(f"{module}: ")
    assert PASSWORD not in line
    assert "nobody" not in line


def test_malformed_database_url_is_configuration(module: str, tmp_path: pathlib.Path) -> None:
    env = service_env(module, tmp_path, DATABASE_URL="postgresql://nobody@127.0.0.1:notaport/x")
    assert_one_line(start(module, env, tmp_path), 2, "DATABASE_URL")


def test_sqlite_file_that_cannot_be_created_is_configuration(
    module: str,
    tmp_path: pathlib.Path,
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    env = service_env(module, tmp_path, DATABASE_URL=f"sqlite:///{blocker}/x.db")
    assert_one_line(start(module, env, tmp_path), 2, "DATABASE_URL", str(blocker))


def test_missing_tls_key_names_the_variable_and_file(module: str, tmp_path: pathlib.Path) -> None:
    missing = tmp_path / "nowhere" / "tls.key"
    env = service_env(module, tmp_path, TLS_KEY=str(missing))
    assert_one_line(start(module, env, tmp_path), 2, "TLS_KEY", str(missing))


def test_tls_key_that_is_no_key_names_the_variable(module: str, tmp_path: pathlib.Path) -> None:
    garbage = tmp_path / "tls.key"
    garbage.write_text("this is not a key\n")
    env = service_env(module, tmp_path, TLS_KEY=str(garbage))
    line = assert_one_line(start(module, env, tmp_path), 2, "TLS_KEY", str(garbage))
    assert "this is not a key" not in line


def test_assertion_key_that_is_no_pem_names_the_variable(
    module: str,
    tmp_path: pathlib.Path,
) -> None:
    name = "ASSERTION_SIGNING_KEY" if module == "gateway" else "ASSERTION_PUBLIC_KEY"
    garbage = tmp_path / "assertion.pem"
    garbage.write_text("garbage\n")
    env = service_env(module, tmp_path, **{name: str(garbage)})
    assert_one_line(start(module, env, tmp_path), 2, name, str(garbage))


def test_bad_port_variable_is_named(module: str, tmp_path: pathlib.Path) -> None:
    name = "GATEWAY_PORT" if module == "gateway" else "GRPC_PORT"
    env = service_env(module, tmp_path, **{name: "eighty"})
    assert_one_line(start(module, env, tmp_path), 2, name, "eighty")


def test_port_in_use_exits_unavailable(module: str, tmp_path: pathlib.Path) -> None:
    name = "GATEWAY_PORT" if module == "gateway" else "GRPC_PORT"
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = str(holder.getsockname()[1])
        env = service_env(module, tmp_path, **{name: port})
        assert_one_line(start(module, env, tmp_path), 1, name, port)


def test_unknown_argument_is_a_usage_error(tmp_path: pathlib.Path) -> None:
    env = service_env("recon_svc", tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "recon_svc", "migrat"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=40,
        check=False,
    )
    assert_one_line(result, 2, "migrate", "migrat")
