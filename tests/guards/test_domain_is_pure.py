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
SHARED_PURE = {"meshkit.vocabulary"}
"""Pure modules every domain may import: the mesh's shared trading words (checked below)."""


def _modules_imported(path: pathlib.Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _imports(path: pathlib.Path) -> set[str]:
    return {name.split(".")[0] for name in _modules_imported(path) - SHARED_PURE}


@pytest.mark.parametrize("service", SERVICES)
def test_domain_imports_no_io_library(service: str) -> None:
    domain = ROOT / service / "domain"
    modules = sorted(domain.rglob("*.py"))
    assert modules, f"{service}/domain/ has no modules"
    for module in modules:
        bad = _imports(module) & FORBIDDEN
        assert not bad, f"{module.relative_to(ROOT)} imports {sorted(bad)}"


@pytest.mark.parametrize("module", sorted(SHARED_PURE))
def test_a_shared_pure_module_imports_the_standard_library_only(module: str) -> None:
    path = ROOT.joinpath(*module.split(".")).with_suffix(".py")
    imported = {name.split(".")[0] for name in _modules_imported(path)}
    assert imported <= {"__future__", "enum"}, f"{module} imports {sorted(imported)}"
