"""Each service's domain/ package imports no I/O library (docs/house-style.md II.2)."""

from __future__ import annotations

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
FORBIDDEN = {
    "grpc",
    "grpc_status",
    "grpc_health",
    "ccxt",
    "aiosqlite",
    "sqlite3",
    "psycopg",
    "psycopg_pool",
    "prometheus_client",
    "aiohttp",
    "copytrade",
    "google",
    "meshkit",
    "requests",
    "socket",
}
SERVICES = ["broker_svc", "engine_svc", "sync_svc", "recon_svc"]


def _imports(path: pathlib.Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("service", SERVICES)
def test_domain_imports_no_io_library(service: str) -> None:
    domain = ROOT / service / "domain"
    modules = sorted(domain.rglob("*.py"))
    assert modules, f"{service}/domain/ has no modules"
    for module in modules:
        bad = _imports(module) & FORBIDDEN
        assert not bad, f"{module.relative_to(ROOT)} imports {sorted(bad)}"
