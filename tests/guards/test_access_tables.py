"""Every RPC of proto/ has a line in its service's access table, and nothing else does.

A method missing from the table is refused to every caller (default deny); this guard makes
that a failing test at the moment the RPC is added, not a PERMISSION_DENIED in production.
"""

from __future__ import annotations

import importlib

import pytest

from copytrade.broker.v1 import broker_service_pb2
from copytrade.engine.v1 import engine_service_pb2
from copytrade.recon.v1 import recon_service_pb2
from copytrade.sync.v1 import sync_service_pb2
from meshkit.pki import IDENTITIES

SERVICES = [
    ("broker_svc", broker_service_pb2, "BrokerService"),
    ("engine_svc", engine_service_pb2, "EngineService"),
    ("sync_svc", sync_service_pb2, "SyncService"),
    ("recon_svc", recon_service_pb2, "ReconService"),
]


@pytest.mark.parametrize(("package", "module", "service"), SERVICES)
def test_the_access_table_lists_exactly_the_services_rpcs(
    package: str, module, service: str
) -> None:
    descriptor = module.DESCRIPTOR.services_by_name[service]
    rules = importlib.import_module(f"{package}.access").RULES
    paths = {f"/{descriptor.full_name}/{method.name}" for method in descriptor.methods}
    assert sorted(paths - set(rules)) == [], "RPCs without a line in the access table"
    assert sorted(set(rules) - paths) == [], "access table lines naming no RPC"


@pytest.mark.parametrize(("package", "module", "service"), SERVICES)
def test_callers_are_mesh_identities_and_never_the_operator_or_the_service_itself(
    package: str,
    module,
    service: str,
) -> None:
    rules = importlib.import_module(f"{package}.access").RULES
    own = package.removesuffix("_svc")
    for path, callers in rules.items():
        assert callers <= set(IDENTITIES), path
        assert "operator" not in callers, path
        assert own not in callers, path


def test_only_the_engine_moves_money() -> None:
    from broker_svc.access import RULES

    for method in ("PlaceOrder", "CancelOrder"):
        assert RULES[f"/copytrade.broker.v1.BrokerService/{method}"] == frozenset({"engine"})
