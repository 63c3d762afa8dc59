"""The dashboards load in Grafana as they are, locally (provisioning) and in Kubernetes.

Grafana accepts a dashboard file only as a JSON object with its panels; the four named
dashboards must be there once each, every query must go through the Prometheus data source the
user picks (the ``datasource`` variable), the provisioning files must point at them, the
Prometheus example must scrape the ports ``copytrade up`` uses, and the rendered k8s overlays
must carry every dashboard, byte for byte, in a ConfigMap the Grafana sidecar picks up.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from meshctl.launcher import Ports
from tests.deploy.deploy_manifests import render
from tests.observability.metric_check import ROOT, dashboard_files

TITLES = {
    "Copy Trading Overview",
    "Exchange Performance",
    "Reconciliation Reports",
    "System Health",
}
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
SIDECAR_LABEL = ("grafana_dashboard", "1")
# kubectl apply (client side) keeps the whole object in an annotation of at most 256 KiB.
APPLY_ANNOTATION_LIMIT = 262_144


def _panels(panels: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found = []
    for panel in panels:
        found.append(panel)
        found += _panels(panel.get("panels", []))
    return found


@pytest.fixture(scope="module")
def dashboards() -> dict[str, dict[str, Any]]:
    """Each dashboard file's JSON by file name."""
    loaded = {}
    for path in dashboard_files():
        document = json.loads(path.read_text(encoding="utf-8"))
        assert isinstance(document, dict), f"{path.name} is not a JSON object"
        loaded[path.name] = document
    return loaded


def test_the_four_dashboards_exist_once_each_with_unique_uids(dashboards) -> None:
    titles = [d["title"] for d in dashboards.values()]
    assert sorted(titles) == sorted(TITLES)
    uids = [d["uid"] for d in dashboards.values()]
    assert len(set(uids)) == len(uids) and all(0 < len(uid) <= 40 for uid in uids)


def test_every_query_uses_the_prometheus_datasource_variable(dashboards) -> None:
    for name, dashboard in dashboards.items():
        variables = dashboard["templating"]["list"]
        chooser = [v for v in variables if v["name"] == "datasource"]
        assert chooser == [v for v in variables if v["type"] == "datasource"], name
        assert chooser[0]["query"] == "prometheus", name
        assert dashboard["id"] is None, f"{name}: an id would clash in another Grafana"
        assert isinstance(dashboard["schemaVersion"], int), name
        for variable in variables:
            if variable["type"] == "query":
                assert variable["datasource"] == DATASOURCE, (name, variable["name"])
        for panel in _panels(dashboard["panels"]):
            if panel["type"] == "row":
                continue
            where = f"{name}: panel {panel['title']!r}"
            assert panel["datasource"] == DATASOURCE, where
            assert panel["targets"], where
            ref_ids = [t["refId"] for t in panel["targets"]]
            assert len(set(ref_ids)) == len(ref_ids), where
            for target in panel["targets"]:
                assert target["datasource"] == DATASOURCE and target["expr"].strip(), where


def test_panels_fit_the_grid_without_overlapping(dashboards) -> None:
    for name, dashboard in dashboards.items():
        panels = _panels(dashboard["panels"])
        ids = [p["id"] for p in panels]
        assert len(set(ids)) == len(ids), f"{name}: panel ids repeat"
        taken: set[tuple[int, int]] = set()
        for panel in panels:
            pos = panel["gridPos"]
            assert pos["x"] >= 0 and pos["w"] > 0 and pos["x"] + pos["w"] <= 24, (name, panel)
            cells = {
                (x, y)
                for x in range(pos["x"], pos["x"] + pos["w"])
                for y in range(pos["y"], pos["y"] + pos["h"])
            }
            assert not cells & taken, f"{name}: panel {panel['title']!r} overlaps another"
            taken |= cells


def test_grafana_provisioning_points_at_prometheus_and_the_dashboards() -> None:
    provisioning = ROOT / "deploy" / "grafana" / "provisioning"
    sources = yaml.safe_load((provisioning / "datasources" / "prometheus.yaml").read_text())
    assert sources["apiVersion"] == 1
    [source] = sources["datasources"]
    assert source["type"] == "prometheus" and source["isDefault"] is True
    providers = yaml.safe_load((provisioning / "dashboards" / "copytrade.yaml").read_text())
    [provider] = providers["providers"]
    assert provider["type"] == "file" and provider["folder"] == "copytrade"
    assert provider["options"]["path"].startswith("/var/lib/grafana/dashboards")


def test_the_prometheus_example_scrapes_what_copytrade_up_serves() -> None:
    config = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    assert config["rule_files"] == ["rules/*.yml"]
    targets = {
        job["job_name"]: [t for c in job["static_configs"] for t in c["targets"]]
        for job in config["scrape_configs"]
    }
    ports = Ports()
    expected = {"copytrade-gateway": [f"127.0.0.1:{ports.gateway}"]}
    for offset, service in enumerate(("broker", "engine", "sync", "recon"), start=1):
        expected[f"copytrade-{service}"] = [f"127.0.0.1:{ports.metrics_base + offset}"]
    assert targets == expected


@pytest.mark.parametrize("overlay", ["overlays/dev", "overlays/prod"])
def test_the_k8s_overlays_carry_every_dashboard_for_the_grafana_sidecar(overlay: str) -> None:
    maps = [
        doc
        for doc in render(overlay)
        if doc["kind"] == "ConfigMap"
        and doc["metadata"].get("labels", {}).get(SIDECAR_LABEL[0]) == SIDECAR_LABEL[1]
    ]
    assert len(maps) == 1, [m["metadata"]["name"] for m in maps]
    [config_map] = maps
    assert config_map["metadata"]["namespace"] == "copytrade"
    files = {path.name: path.read_text(encoding="utf-8") for path in dashboard_files()}
    assert config_map["data"] == files
    assert len(json.dumps(config_map)) < APPLY_ANNOTATION_LIMIT
