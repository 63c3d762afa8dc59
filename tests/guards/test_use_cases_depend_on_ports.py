"""Only a service's composition root names its concrete store: everything else depends on ports.

The composition root is where a process is assembled (``server.py``, ``__main__.py``); the
store package may import itself. A use case, servicer or consumer that imported the store would
tie the behaviour to one storage and let store types leak upward (docs/house-style.md).
"""

from __future__ import annotations

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
SERVICES = ("broker_svc", "engine_svc", "sync_svc", "recon_svc", "gateway")
COMPOSITION_ROOTS = {"server.py", "__main__.py"}
ALLOWED = {
    # The `copytrade user` commands are handed an open database by the CLI (they are a
    # composition root of their own): this is where the gateway's store is built for them.
    ("gateway", "users.py"),
}


def imported_modules(source: str) -> set[str]:
    """Return the absolute module names ``source`` imports."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def store_imports(service: str, source: str) -> set[str]:
    """Return the imports of ``source`` that reach into ``service``'s store package."""
    store = f"{service}.store"
    return {n for n in imported_modules(source) if n == store or n.startswith(store + ".")}


def _modules() -> list[tuple[str, pathlib.Path]]:
    found = []
    for service in SERVICES:
        for path in sorted((ROOT / service).rglob("*.py")):
            relative = path.relative_to(ROOT / service)
            if relative.parts[0] == "store" or relative.name in COMPOSITION_ROOTS:
                continue
            if (service, relative.as_posix()) in ALLOWED:
                continue
            found.append((service, path))
    return found


@pytest.mark.parametrize(
    ("service", "path"), _modules(), ids=lambda v: v if isinstance(v, str) else v.name
)
def test_a_module_outside_the_composition_root_imports_no_store(
    service: str, path: pathlib.Path
) -> None:
    reached = store_imports(service, path.read_text())
    assert not reached, f"{path.relative_to(ROOT)} imports {sorted(reached)}: depend on a port"


def test_the_guard_sees_a_store_import() -> None:
    assert store_imports("engine_svc", "from engine_svc.store import EngineStore\n") == {
        "engine_svc.store"
    }
    assert store_imports("engine_svc", "import engine_svc.store.intents as x\n") == {
        "engine_svc.store.intents"
    }
    assert store_imports("engine_svc", "from engine_svc.ports import CopyStore\n") == set()
