"""What an operator relies on in the Dockerfile and compose.yaml, checked without a Docker engine.

The image must be pinned and run as a non-root user; Compose must give every component the
environment ``copytrade up`` gives it (meshctl/launcher.py is the contract), keep secrets out of
the file, mount only the credentials each component needs, and that environment must pass each
service's own ``Settings.from_env`` once its paths point at real credential files.
"""

from __future__ import annotations

import importlib
import pathlib
import re
import tomllib
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from deploy_manifests import COMPONENTS, GRPC_SERVICES

from meshctl.launcher import Mesh
from meshkit.testing import TEST_PKI, trust_env

ROOT = pathlib.Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
COMPOSE = ROOT / "compose.yaml"
# Compose service names are the Kubernetes names (COMPONENTS): each component's mesh identity.
EMULATOR = "exchange-sim"
OURS = (*COMPONENTS, EMULATOR)
# What .env would hold; the test stands in for it.
DOT_ENV = {
    "ENCRYPTION_KEY": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
    "GATEWAY_WEBHOOK_SECRET_KEY": "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=",
    "POSTGRES_PASSWORD": "not-a-real-password",
}
# Variables whose value is a secret: never written in compose.yaml, only interpolated from .env.
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|^ENCRYPTION_KEY")
INTERPOLATION = re.compile(r"\$\{(?P<name>\w+)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")
EXACT_VERSION_TAG = re.compile(r":\d+\.\d+(\.\d+)?(-[a-z0-9.]+)*$")


def _compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def _services() -> dict[str, Any]:
    return _compose()["services"]


def _interpolate(value: str, dot_env: Mapping[str, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        name, op, arg = match["name"], match["op"] or "", match["arg"] or ""
        if dot_env.get(name):
            return dot_env[name]
        if op.endswith("?"):
            raise KeyError(f"{name} is required: {arg}")
        return arg if op.endswith("-") else ""

    return INTERPOLATION.sub(replace, value)


def _environment(service: str, dot_env: Mapping[str, str] = DOT_ENV) -> dict[str, str]:
    """Return the environment Compose gives ``service``, interpolated as Compose would."""
    raw = _services()[service].get("environment", {})
    assert isinstance(raw, dict), f"{service}: write environment as a mapping"
    return {name: _interpolate(str(value), dot_env) for name, value in raw.items()}


def _launcher_plan(tmp_path: pathlib.Path) -> dict[str, dict[str, str]]:
    """Return the environment ``copytrade up`` gives each component (PostgreSQL, HTTPS)."""
    mesh = Mesh(
        tmp_path, shared_database_url="postgresql://copytrade@127.0.0.1:5432/copytrade", https=True
    )
    # The launcher's plan is the contract Compose reproduces (it starts nothing).
    plan = mesh._plan()
    return {component.name: component.env for component in plan}


def _dockerfile_instructions() -> list[tuple[str, str]]:
    """Return (INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for line in DOCKERFILE.read_text().splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        pending += stripped.removesuffix("\\").strip() + " "
        if stripped.endswith("\\"):
            continue
        keyword, _, arguments = pending.strip().partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
        pending = ""
    return instructions


def _stages() -> list[list[tuple[str, str]]]:
    stages: list[list[tuple[str, str]]] = []
    for instruction in _dockerfile_instructions():
        if instruction[0] == "FROM":
            stages.append([])
        if stages:
            stages[-1].append(instruction)
    return stages


# --- The image -------------------------------------------------------------------------------


def test_dockerfile_builds_in_one_stage_and_runs_in_another() -> None:
    stages = _stages()
    assert len(stages) >= 2, "a builder stage and a runtime stage"
    runtime = stages[-1]
    assert any(keyword == "COPY" and "--from=" in arguments for keyword, arguments in runtime), (
        "the runtime stage copies what the builder installed"
    )


def test_every_base_image_is_pinned_to_an_exact_version() -> None:
    for keyword, arguments in _dockerfile_instructions():
        if keyword != "FROM":
            continue
        image = arguments.split()[0]
        assert ":latest" not in image and "latest" not in image.split(":")[-1], image
        assert EXACT_VERSION_TAG.search(image.split("@")[0]), f"{image}: pin an exact version tag"


def test_runtime_is_python_3_11_slim() -> None:
    image = _stages()[-1][0][1].split()[0]
    assert re.match(r"python:3\.11\.\d+-slim-\w+$", image), image


def test_runtime_stage_runs_as_a_fixed_non_root_user() -> None:
    users = [arguments for keyword, arguments in _stages()[-1] if keyword == "USER"]
    assert users, "the runtime stage must set USER"
    user, _, group = users[-1].partition(":")
    assert user.isdigit() and int(user) != 0, f"USER {users[-1]}: a fixed numeric UID, not root"
    assert not group or (group.isdigit() and int(group) != 0), f"USER {users[-1]}: no root group"


def test_runtime_writes_nothing_outside_tmp_and_the_data_dir() -> None:
    environment = " ".join(arguments for keyword, arguments in _stages()[-1] if keyword == "ENV")
    assert "PYTHONDONTWRITEBYTECODE=1" in environment
    assert "HOME=/tmp" in environment
    workdirs = [arguments for keyword, arguments in _stages()[-1] if keyword == "WORKDIR"]
    assert workdirs[-1] == "/var/lib/copytrade"


def test_default_command_is_the_gateway_in_exec_form() -> None:
    commands = [arguments for keyword, arguments in _stages()[-1] if keyword == "CMD"]
    assert commands and yaml.safe_load(commands[-1]) == ["python", "-m", "gateway"]


def test_build_context_leaves_out_credentials_databases_and_the_virtualenv() -> None:
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()}
    for entry in (".git", ".venv", ".copytrade", "certs", ".env", "*.db", "**/*.key", "**/*.pem"):
        assert entry in ignored, entry


# --- Compose: the containers -----------------------------------------------------------------


def test_compose_service_names_are_the_certificate_identities() -> None:
    services = _services()
    assert set(COMPONENTS) <= set(services)
    for name in COMPONENTS:
        environment = _environment(name)
        assert environment["TLS_CERT"] == f"/certs/{name}/tls.crt", (
            f"{name}: a TLS client checks the name it dialled against this certificate"
        )
        assert environment["TLS_KEY"] == f"/certs/{name}/tls.key"
        assert environment["TLS_CA"] == f"/certs/{name}/ca.crt"


def test_every_component_runs_the_one_image_built_here() -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    for name in OURS:
        service = _services()[name]
        assert service["image"] == f"copytrade:{version}", name
        build = service["build"]
        context = build if isinstance(build, str) else build["context"]
        assert context == ".", name
        assert build == "." or build.get("dockerfile", "Dockerfile") == "Dockerfile", name
    commands = {name: _services()[name]["command"] for name in COMPONENTS}
    assert commands == {name: ["python", "-m", module] for name, module in COMPONENTS.items()}


def test_every_image_is_pinned_to_an_exact_version() -> None:
    for name, service in _services().items():
        image = service["image"]
        assert "latest" not in image and EXACT_VERSION_TAG.search(image), f"{name}: {image}"


def test_our_containers_are_read_only_and_not_root() -> None:
    for name in OURS:
        service = _services()[name]
        assert service.get("read_only") is True, name
        assert "/tmp" in service.get("tmpfs", []), f"{name}: a tmpfs at /tmp (HOME and TMPDIR)"
        user = _interpolate(str(service.get("user", "")), {})
        uid, _, gid = user.partition(":")
        assert uid.isdigit() and int(uid) != 0, f"{name}: user {user!r}"
        assert gid.isdigit() and int(gid) != 0, f"{name}: user {user!r}"
        assert "ALL" in service.get("cap_drop", []), name
        assert "no-new-privileges:true" in service.get("security_opt", []), name


def test_every_service_has_a_healthcheck_and_waits_for_what_it_needs() -> None:
    services = _services()
    for name, service in services.items():
        assert service.get("healthcheck", {}).get("test"), f"{name}: no healthcheck"
        for dependency, condition in service.get("depends_on", {}).items():
            assert dependency in services, f"{name} depends on an unknown {dependency}"
            assert condition["condition"] == "service_healthy", name
    for name in GRPC_SERVICES:
        probe = " ".join(services[name]["healthcheck"]["test"])
        assert "HEALTH_PORT" in probe and "grpc_health" in probe, name
        health_port = int(_environment(name)["HEALTH_PORT"])
        assert health_port not in {
            int(_environment(name)["GRPC_PORT"]),
            int(_environment(name)["METRICS_PORT"]),
        }, name
    assert "/readyz" in " ".join(services["gateway"]["healthcheck"]["test"])
    # An emulator answers 404 to a path it does not serve: probe one it does.
    assert "/_sim/prices" in " ".join(services[EMULATOR]["healthcheck"]["test"])


# --- Compose: secrets and credentials --------------------------------------------------------


def test_no_secret_is_written_in_compose() -> None:
    for name, service in _services().items():
        for variable, raw in (service.get("environment") or {}).items():
            value = str(raw)
            if SECRET_NAME.search(variable):
                match = INTERPOLATION.fullmatch(value)
                assert match, f"{name}: {variable} must come from .env, not be written here"
                assert match["op"] in (":?", "?") or not match["arg"], (
                    f"{name}: {variable} must have no default value"
                )
            elif variable.endswith("_KEY"):
                assert value.startswith("/certs/"), f"{name}: {variable} names a mounted key file"
            if variable == "DATABASE_URL":
                assert urlsplit(value).password is None, f"{name}: DATABASE_URL holds a password"
    # Nothing that looks like a key (base64 of 32 bytes) or a private key anywhere in the file.
    text = COMPOSE.read_text()
    assert not re.search(r"[A-Za-z0-9+/]{43}=", text)
    assert "PRIVATE KEY" not in text


def test_broker_alone_gets_the_encryption_key() -> None:
    for name in OURS:
        has_key = "ENCRYPTION_KEY" in _environment(name)
        assert has_key == (name == "broker"), name


def _mounts(service: str) -> list[tuple[str, str, str]]:
    mounts = []
    for volume in _services()[service].get("volumes", []):
        source, target, *mode = str(volume).split(":")
        mounts.append((source, target, mode[0] if mode else "rw"))
    return mounts


def test_each_component_mounts_only_its_own_credentials_read_only() -> None:
    for name in OURS:
        for source, target, mode in _mounts(name):
            if not source.startswith("./certs"):
                continue
            assert mode == "ro", f"{name}: {source} must be mounted read-only"
            assert source.removeprefix(".") == target, f"{name}: ./certs/X is mounted at /certs/X"
            assert source not in ("./certs", "./certs/"), f"{name}: never the whole folder (ca.key)"
            assert "ca.key" not in source, name
            assert "signing.key" not in source or name == "gateway", f"{name}: the signing key"
            folder = source.removeprefix("./certs/").split("/")[0]
            assert folder in (name, "assertion"), f"{name} mounts another identity's {source}"


def test_every_credential_path_a_component_reads_is_mounted() -> None:
    for name in COMPONENTS:
        targets = [target for _source, target, _mode in _mounts(name)]
        for variable, value in _environment(name).items():
            if value.startswith("/certs/"):
                assert any(value == t or value.startswith(t.rstrip("/") + "/") for t in targets), (
                    f"{name}: {variable}={value} is not mounted"
                )


# --- Compose: the launcher's environment -----------------------------------------------------


def test_every_component_gets_the_variables_copytrade_up_gives_it(tmp_path: pathlib.Path) -> None:
    plan = _launcher_plan(tmp_path)
    # Compose adds: the probe listener, libpq's password, and the emulators' own variables.
    extra = {"HEALTH_PORT", "PGPASSWORD", "SIM_HOST", "SIM_VENUES"}
    for name in OURS:
        launcher_name = "exchange_sim" if name == EMULATOR else name
        expected = set(plan[launcher_name])
        given = set(_environment(name))
        assert expected <= given, f"{name} lacks {sorted(expected - given)}"
        assert given - expected <= extra, f"{name} sets {sorted(given - expected - extra)}"


def test_ports_and_switches_match_copytrade_up(tmp_path: pathlib.Path) -> None:
    plan = _launcher_plan(tmp_path)
    same = (
        "LOG_LEVEL",
        "GRPC_PORT",
        "METRICS_PORT",
        "GATEWAY_PORT",
        "BROKER_RATE_LIMITS",
        "SIM_RATE_LIMITS",
    )
    for name in OURS:
        launcher_env = plan["exchange_sim" if name == EMULATOR else name]
        environment = _environment(name)
        for variable in same:
            if variable in launcher_env:
                assert environment[variable] == launcher_env[variable], f"{name}: {variable}"
        assert environment["BIND_HOST"] == "0.0.0.0", name


def test_addresses_name_the_compose_services_and_their_ports() -> None:
    services = _services()
    for name in OURS:
        for variable, value in _environment(name).items():
            if variable.endswith("_SVC_ADDR"):
                target = variable.removesuffix("_SVC_ADDR").lower()
                port = _environment(target)["GRPC_PORT"]
                assert value == f"{target}:{port}", f"{name}: {variable}"
    database = urlsplit(_environment("broker")["DATABASE_URL"])
    assert database.scheme == "postgresql" and database.hostname in services
    for entry in _environment("broker")["VENUE_URLS"].split(","):
        venue, _, url = entry.partition("=")
        assert urlsplit(url).hostname == EMULATOR, venue


def _on_this_machine(environment: Mapping[str, str]) -> dict[str, str]:
    """Point the container's paths at the tests' credentials and its hostnames at loopback."""
    hosts = re.compile(r"\b(" + "|".join(map(re.escape, _services())) + r")(?=[:/])")
    local = {}
    for variable, value in environment.items():
        if value.startswith("/certs/"):
            # ./certs is what `copytrade certs --data-dir .` made; TEST_PKI has the same layout.
            value = str(TEST_PKI / value.removeprefix("/certs/"))
        elif variable.endswith(("_SVC_ADDR", "_URL", "_URLS")):
            value = hosts.sub("127.0.0.1", value)
        local[variable] = value
    return local


@pytest.mark.parametrize("name", list(COMPONENTS))
def test_compose_environment_passes_each_components_settings(name: str) -> None:
    environment = _on_this_machine(_environment(name))
    for variable, value in trust_env(name).items():
        assert environment[variable] == value, f"{name}: {variable} is not {name}'s credential"
    settings_class = importlib.import_module(f"{COMPONENTS[name]}.config").Settings
    settings = settings_class.from_env(environment)
    assert settings.bind_host == "0.0.0.0"
    assert settings.database_url.startswith("postgresql://")
    assert settings.tls.enabled
    if name == "gateway":
        assert settings.https, "off loopback the gateway serves HTTPS only"
    if name == "broker":
        assert set(settings.venue_urls) == {"binance", "coinbase", "kraken"}


def test_compose_without_dot_env_says_which_secret_is_missing() -> None:
    with pytest.raises(KeyError, match="ENCRYPTION_KEY"):
        _environment("broker", {"POSTGRES_PASSWORD": "x"})
    with pytest.raises(KeyError, match="POSTGRES_PASSWORD"):
        _environment("postgres", {})
