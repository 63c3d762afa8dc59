"""What every rendering of k8s/ must hold: hardened pods, probes, pinned images, no secret values,
network policies that allow exactly the calls of the access tables, and wiring that agrees with
what each component reads (its config.py).
"""

from __future__ import annotations

import importlib
import re
from typing import Any

import pytest
from deploy_manifests import (
    COMPONENTS,
    GRPC_SERVICES,
    ROOT,
    container_port,
    containers,
    env_value,
    named,
    of_kind,
    pod_template,
    render,
    selects,
    workloads,
)

OVERLAYS = ("overlays/dev", "overlays/prod")
PLACEHOLDER_LABEL = "copytrade.dev/placeholder"


def _pod_security(workload: dict[str, Any], container: dict[str, Any], key: str) -> Any:
    own = container.get("securityContext", {})
    return (
        own[key]
        if key in own
        else pod_template(workload)["spec"].get("securityContext", {}).get(key)
    )


@pytest.mark.parametrize("target", OVERLAYS)
def test_every_container_is_hardened_and_bounded(target: str) -> None:
    for workload in workloads(render(target)):
        for container in containers(workload):
            where = (
                f"{target}: {workload['kind']} {workload['metadata']['name']}/{container['name']}"
            )
            assert _pod_security(workload, container, "runAsNonRoot") is True, where
            assert _pod_security(workload, container, "runAsUser") not in (None, 0), where
            security = container.get("securityContext", {})
            assert security.get("readOnlyRootFilesystem") is True, where
            assert security.get("allowPrivilegeEscalation") is False, where
            assert security.get("capabilities", {}).get("drop") == ["ALL"], where
            assert _pod_security(workload, container, "seccompProfile") == {
                "type": "RuntimeDefault"
            }, where
            resources = container.get("resources", {})
            for bound in ("requests", "limits"):
                assert set(resources.get(bound, {})) >= {"cpu", "memory"}, f"{where}: {bound}"
            if workload["kind"] != "Job":
                assert "livenessProbe" in container and "readinessProbe" in container, where


@pytest.mark.parametrize("target", OVERLAYS)
def test_every_image_is_pinned(target: str) -> None:
    for workload in workloads(render(target)):
        for container in containers(workload):
            image = container["image"]
            if "@sha256:" in image:
                continue
            name, _, tag = image.rpartition(":")
            assert name and "/" not in tag and tag != "latest", (
                f"{target}: image {image!r} is not pinned"
            )


@pytest.mark.parametrize("target", ["base", *OVERLAYS])
def test_no_secret_holds_a_value_outside_dev_placeholders(target: str) -> None:
    for secret in of_kind(render(target), "Secret"):
        values = {**secret.get("data", {}), **secret.get("stringData", {})}
        if not values:
            continue
        name = secret["metadata"]["name"]
        assert target == "overlays/dev", f"{target}: Secret {name} holds values"
        labels = secret["metadata"].get("labels", {})
        assert labels.get(PLACEHOLDER_LABEL) == "true", (
            f"dev Secret {name} is not labelled a placeholder"
        )
        for key, value in values.items():
            assert "dev-only" in str(value), f"dev Secret {name}/{key} is not clearly a placeholder"


def _pods(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {w["metadata"]["name"]: w for w in workloads(docs)}


def _peer_matches(peer: dict[str, Any], labels: dict[str, str]) -> bool:
    # Pods of our namespace only: a namespaceSelector names other namespaces, an ipBlock
    # addresses (neither is one of our pods); an empty peer list means everything.
    if "namespaceSelector" in peer or "ipBlock" in peer:
        return False
    return selects(peer.get("podSelector", {}), labels)


def _rule_allows(rule: dict[str, Any], peers_key: str, labels: dict[str, str], port: int) -> bool:
    peers = rule.get(peers_key)
    if peers and not any(_peer_matches(peer, labels) for peer in peers):
        return False
    ports = rule.get("ports")
    return not ports or any(
        p.get("port") == port and p.get("protocol", "TCP") == "TCP" for p in ports
    )


def _allowed(
    policies: list[dict[str, Any]], source: dict[str, str], target: dict[str, str], port: int
) -> bool:
    """Whether pods labelled ``source`` may open TCP ``port`` on pods labelled ``target``."""

    def direction(kind: str, selected: dict[str, str], peer: dict[str, str], key: str) -> bool:
        applying = [
            p
            for p in policies
            if selects(p["spec"]["podSelector"], selected)
            and kind in p["spec"].get("policyTypes", [])
        ]
        rules = [r for p in applying for r in p["spec"].get(kind.lower(), []) or []]
        return bool(applying) and any(_rule_allows(r, key, peer, port) for r in rules)

    return direction("Egress", source, target, "to") and direction(
        "Ingress", target, source, "from"
    )


def _callers() -> dict[str, set[str]]:
    """Who calls each gRPC service, from the access tables."""
    result = {}
    for name in GRPC_SERVICES:
        rules = importlib.import_module(f"{COMPONENTS[name]}.access").RULES
        result[name] = set().union(*rules.values())
    return result


@pytest.mark.parametrize("target", OVERLAYS)
def test_network_policies_allow_exactly_the_calls_of_the_access_tables(target: str) -> None:
    docs = render(target)
    policies = of_kind(docs, "NetworkPolicy")
    default_deny = [
        p
        for p in policies
        if p["spec"]["podSelector"] == {}
        and set(p["spec"].get("policyTypes", [])) == {"Ingress", "Egress"}
        and not p["spec"].get("ingress")
        and not p["spec"].get("egress")
    ]
    assert default_deny, "no default-deny NetworkPolicy"
    pods = _pods(docs)
    labels = {name: pod_template(pods[name])["metadata"]["labels"] for name in COMPONENTS}
    for name in COMPONENTS:
        assert any(
            selects(p["spec"]["podSelector"], labels[name]) and p["spec"]["podSelector"]
            for p in policies
        ), f"no NetworkPolicy of its own selects {name}"
    callers = _callers()
    for callee in GRPC_SERVICES:
        port = container_port(pods[callee], "grpc")
        for caller in COMPONENTS:
            expected = caller in callers[callee]
            assert _allowed(policies, labels[caller], labels[callee], port) == expected, (
                f"{target}: {caller} -> {callee}:{port} should be"
                f" {'allowed' if expected else 'denied'}"
            )
    # Only the gateway takes traffic from outside (a peer-less ingress rule), only the broker
    # reaches the venues' 443.
    for policy in policies:
        for rule in policy["spec"].get("ingress", []) or []:
            if not rule.get("from"):
                assert selects(policy["spec"]["podSelector"], labels["gateway"]), policy[
                    "metadata"
                ]["name"]
    outside = {"app.kubernetes.io/name": "somewhere-else"}
    for name in COMPONENTS:
        reaches = any(
            _rule_allows(r, "to", outside, 443)
            for p in policies
            if selects(p["spec"]["podSelector"], labels[name])
            for r in p["spec"].get("egress", []) or []
            if not r.get("to")
        )
        assert reaches == (name == "broker"), f"{name} egress to 443"


@pytest.mark.parametrize("target", OVERLAYS)
def test_services_identities_probes_and_metrics_are_wired_as_the_components_read_them(
    target: str,
) -> None:
    docs = render(target)
    config = named(docs, "ConfigMap", "copytrade-config")["data"]
    pods = _pods(docs)
    for name, package in COMPONENTS.items():
        deployment = named(docs, "Deployment", name)
        template = pod_template(deployment)
        container = template["spec"]["containers"][0]
        assert container["command"] == ["python", "-m", package]
        # The Service is named after the identity of the certificate its pods present.
        service = named(docs, "Service", name)
        assert selects(service["spec"]["selector"], template["metadata"]["labels"])
        tls = [
            v
            for v in template["spec"]["volumes"]
            if v.get("secret", {}).get("secretName") == f"copytrade-{name}-tls"
        ]
        assert len(tls) == 1, f"{name} does not mount copytrade-{name}-tls"
        mount = next(m for m in container["volumeMounts"] if m["name"] == tls[0]["name"])
        assert mount.get("readOnly") is True
        for variable, key in (
            ("TLS_CERT", "tls.crt"),
            ("TLS_KEY", "tls.key"),
            ("TLS_CA", "ca.crt"),
        ):
            assert config[variable] == f"{mount['mountPath']}/{key}"
        annotations = template["metadata"].get("annotations", {})
        assert annotations.get("prometheus.io/scrape") == "true"
        if name in GRPC_SERVICES:
            port = service["spec"]["ports"][0]
            assert container_port(pods[name], port["targetPort"]) == int(
                env_value(container, "GRPC_PORT")
            )
            assert config[f"{name.upper()}_SVC_ADDR"] == f"{name}:{port['port']}"
            health = int(env_value(container, "HEALTH_PORT"))
            for probe in ("livenessProbe", "readinessProbe"):
                assert container[probe]["grpc"]["port"] == health, f"{name} {probe}"
            assert annotations["prometheus.io/port"] == env_value(container, "METRICS_PORT")
        else:
            assert config["BIND_HOST"] == "0.0.0.0"
            assert env_value(container, "GATEWAY_HTTPS_CERT") == f"{mount['mountPath']}/tls.crt"
            assert env_value(container, "GATEWAY_HTTPS_KEY") == f"{mount['mountPath']}/tls.key"
            port = int(env_value(container, "GATEWAY_PORT"))
            assert container_port(pods[name], "https") == port
            assert annotations["prometheus.io/port"] == str(port)
            for probe, path in (("livenessProbe", "/livez"), ("readinessProbe", "/readyz")):
                get = container[probe]["httpGet"]
                assert (get["path"], get["scheme"], container_port(pods[name], get["port"])) == (
                    path,
                    "HTTPS",
                    port,
                )
        # Kubernetes tokens are never mounted: nothing here calls the API server.
        assert template["spec"]["automountServiceAccountToken"] is False
        account = named(docs, "ServiceAccount", template["spec"]["serviceAccountName"])
        assert account["automountServiceAccountToken"] is False
        # A disruption budget for every component.
        assert any(
            selects(b["spec"]["selector"], template["metadata"]["labels"])
            for b in of_kind(docs, "PodDisruptionBudget")
        ), f"no PodDisruptionBudget for {name}"


def _uses_leases(package: str) -> bool:
    return any(
        "meshkit.leases" in path.read_text() or "from meshkit import leases" in path.read_text()
        for path in (ROOT / package).rglob("*.py")
    )


def _variables_read(package: str) -> set[str]:
    sources = [ROOT / package / "config.py", ROOT / "meshkit" / "settings.py"]
    if _uses_leases(package):
        # meshkit.leases names the replica from REPLICA_ID (the pod name).
        sources.append(ROOT / "meshkit" / "leases.py")
    return {m for path in sources for m in re.findall(r'"([A-Z][A-Z0-9_]+)"', path.read_text())}


@pytest.mark.parametrize("target", OVERLAYS)
def test_every_variable_a_manifest_sets_is_one_its_component_reads(target: str) -> None:
    docs = render(target)
    read_by_any = set().union(*(_variables_read(p) for p in COMPONENTS.values()))
    assert set(named(docs, "ConfigMap", "copytrade-config")["data"]) <= read_by_any
    for name, package in COMPONENTS.items():
        container = pod_template(named(docs, "Deployment", name))["spec"]["containers"][0]
        unknown = {e["name"] for e in container["env"]} - _variables_read(package)
        assert not unknown, (
            f"{target}: {name} sets variables its Settings never reads: {sorted(unknown)}"
        )


@pytest.mark.parametrize("target", OVERLAYS)
def test_a_migration_job_per_component_uses_its_database(target: str) -> None:
    docs = render(target)
    for name, package in COMPONENTS.items():
        job = named(docs, "Job", f"{name}-migrate")
        container = pod_template(job)["spec"]["containers"][0]
        assert container["command"] == ["python", "-m", package, "migrate"]
        service = pod_template(named(docs, "Deployment", name))["spec"]["containers"][0]
        database = [e for e in service["env"] if e["name"] == "DATABASE_URL"]
        assert [e for e in container["env"] if e["name"] == "DATABASE_URL"] == database
        selector = named(docs, "Deployment", name)["spec"]["selector"]
        assert not selects(selector, pod_template(job)["metadata"]["labels"]), (
            f"{name}'s Deployment selects its Job"
        )


REPLICATED = {"engine": 3, "sync": 2, "broker": 2}
"""The prod overlay's replicas of the services that share their work through leases."""


def test_prod_replicates_the_leased_services_and_the_stateless_ones() -> None:
    docs = render("overlays/prod")
    config = named(docs, "ConfigMap", "copytrade-config")["data"]
    # Every replica keeps its leases for LEASE_TTL_MS (the takeover time after a kill).
    assert int(config["LEASE_TTL_MS"]) >= 300
    for name, count in REPLICATED.items():
        deployment = named(docs, "Deployment", name)
        assert deployment["spec"]["replicas"] == count, name
        # Leases make two replicas side by side safe: a rollout starts the new pod first.
        assert deployment["spec"]["strategy"]["type"] == "RollingUpdate", name
        assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0, name
        # Each replica is named by its pod in the lease tables.
        container = pod_template(deployment)["spec"]["containers"][0]
        replica_id = [e for e in container["env"] if e["name"] == "REPLICA_ID"]
        assert replica_id == [
            {"name": "REPLICA_ID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}
        ], name
        # A disruption budget never lets a drain take every replica at once.
        budget = next(
            b
            for b in of_kind(docs, "PodDisruptionBudget")
            if selects(b["spec"]["selector"], pod_template(deployment)["metadata"]["labels"])
        )
        assert budget["spec"].get("maxUnavailable", count) < count, name
    assert named(docs, "Deployment", "recon")["spec"]["replicas"] > 1
    assert named(docs, "HorizontalPodAutoscaler", "gateway")["spec"]["minReplicas"] > 1
    assert "replicas" not in named(docs, "Deployment", "gateway")["spec"], (
        "the autoscaler owns them"
    )


def test_dev_runs_everything_once_with_the_emulators() -> None:
    docs = render("overlays/dev")
    for workload in workloads(docs):
        if workload["kind"] != "Job":
            assert workload["spec"].get("replicas", 1) == 1, workload["metadata"]["name"]
    assert named(docs, "HorizontalPodAutoscaler", "gateway")["spec"]["maxReplicas"] == 1
    ports = {p["name"]: p["port"] for p in named(docs, "Service", "exchange-sim")["spec"]["ports"]}
    broker = pod_template(named(docs, "Deployment", "broker"))["spec"]["containers"][0]
    assert env_value(broker, "VENUE_URLS") == ",".join(
        f"{venue}=http://exchange-sim:{ports[venue]}" for venue in ("binance", "coinbase", "kraken")
    )
    image = pod_template(named(docs, "StatefulSet", "postgres"))["spec"]["containers"][0]["image"]
    assert re.fullmatch(r"postgres:\d+\.\d+[-\w]*", image), image
