"""The broker's use cases name ports, never the concrete store or venue adapters."""

from __future__ import annotations

import ast
import pathlib

import pytest

USECASES = pathlib.Path(__file__).resolve().parents[3] / "broker_svc" / "usecases"
CONCRETE = ("broker_svc.store", "broker_svc.adapters")


def _imported_modules(path: pathlib.Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize("module", sorted(USECASES.glob("*.py")), ids=lambda p: p.name)
def test_a_use_case_module_imports_no_concrete_store_or_adapter(module: pathlib.Path) -> None:
    concrete = {
        name
        for name in _imported_modules(module)
        if any(name == c or name.startswith(c + ".") for c in CONCRETE)
    }
    assert not concrete, f"{module.name} imports {sorted(concrete)}"
