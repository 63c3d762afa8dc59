"""The route table comes from the proto annotations: golden files and fail-fast rules.

The golden files ``golden/routes.json`` and ``golden/openapi.json`` are what the gateway
builds from ``gen/``. After an intended proto change, regenerate them with::

    COPYTRADE_REGENERATE_GOLDEN=1 .venv/bin/python -m pytest tests/gateway/test_gateway_routes.py -q

and review the diff: every change in it is a change of the public REST API.
"""

from __future__ import annotations

import itertools
import json
import os
import pathlib

import pytest

from gateway import auth
from gateway.openapi import build_openapi
from gateway.routes import MethodNotAllowed, RouteError, Router, build_routes, default_services
from tests.gateway.conftest import API, Harness
from tests.gateway.fakes import RULES_SERVICE, add_file

GOLDEN = pathlib.Path(__file__).parent / "golden"
REGENERATE = os.environ.get("COPYTRADE_REGENERATE_GOLDEN") == "1"


def _routes_document() -> list[dict[str, str]]:
    return [
        {**route.describe(), "plan": auth.required_plan(route)}
        for route in build_routes(default_services())
    ]


def _check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if REGENERATE:
        path.write_text(text)
    assert path.exists(), f"{path} is missing; regenerate it (see this module's docstring)"
    assert path.read_text() == text, f"{name} differs from the descriptors; regenerate and review"


def test_routes_match_the_golden_route_table() -> None:
    _check_golden("routes.json", json.dumps(_routes_document(), indent=2) + "\n")


def test_openapi_matches_the_golden_document() -> None:
    document = build_openapi(build_routes(default_services()), auth.required_plan)
    _check_golden("openapi.json", json.dumps(document, indent=2, sort_keys=True) + "\n")


async def test_served_openapi_is_the_golden_document_and_needs_no_token(harness: Harness) -> None:
    response = await harness.client.get("/openapi.json")
    assert response.status == 200
    served = await response.json()
    golden = json.loads((GOLDEN / "openapi.json").read_text())
    rules_free = {path: spec for path, spec in served["paths"].items() if path.startswith("/api/")}
    assert rules_free == golden["paths"]


def test_every_annotated_public_rpc_has_a_route_and_no_internal_one_does() -> None:
    rpcs = {route.rpc for route in build_routes(default_services())}
    assert "copytrade.engine.v1.EngineService.StartCopy" in rpcs
    assert "copytrade.broker.v1.BrokerService.PlaceOrder" not in rpcs
    assert "copytrade.sync.v1.SyncService.StreamSignals" not in rpcs


def test_only_supported_exchanges_is_open_to_every_plan() -> None:
    open_routes = [r["template"] for r in _routes_document() if r["plan"] == "any"]
    assert open_routes == [f"{API}/supported-exchanges"]


def test_openapi_documents_decimals_enums_and_bearer_security() -> None:
    document = build_openapi(build_routes(default_services()), auth.required_plan)
    schemas = document["components"]["schemas"]
    assert {s.get("type") for s in schemas["google.type.Decimal"]["oneOf"]} == {"number", "string"}
    assert schemas["copytrade.engine.v1.CopyStatus"]["type"] == "string"
    assert "COPY_STATUS_ACTIVE" in schemas["copytrade.engine.v1.CopyStatus"]["enum"]
    limits = schemas["copytrade.engine.v1.RiskLimits"]["properties"]
    assert limits["max_position_size"] == {"$ref": "#/components/schemas/google.type.Decimal"}
    assert document["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    patch = document["paths"][f"{API}/configs/{{config_id}}"]["patch"]
    body_schema = patch["requestBody"]["content"]["application/json"]["schema"]
    assert "config_id" not in body_schema["properties"]
    assert patch["parameters"][0]["in"] == "path"
    orders = document["paths"][f"{API}/orders/{{config_id}}"]["get"]
    query = {p["name"] for p in orders["parameters"] if p["in"] == "query"}
    assert query == {"start_time", "end_time", "page_size", "target_exchange_id", "page_token"}


def test_router_prefers_the_custom_verb_and_reports_allowed_methods() -> None:
    router = Router(build_routes([RULES_SERVICE]))
    found = router.match("POST", "/v1/things/abc:cancel")
    assert not isinstance(found, MethodNotAllowed) and found is not None
    assert found.route.method.name == "CancelThing" and found.path_values == {("name",): "abc"}
    not_allowed = router.match("PATCH", "/v1/things/abc")
    assert isinstance(not_allowed, MethodNotAllowed)
    assert not_allowed.allowed == ("DELETE", "GET")
    assert router.match("GET", "/v1/nothing/here/at/all") is None


def test_router_decodes_single_segments_but_keeps_encoded_slashes_in_multi_segment_values() -> None:
    router = Router(build_routes([RULES_SERVICE]))
    found = router.match("GET", "/v1/things/a%2Fb%20c")
    assert found is not None and not isinstance(found, MethodNotAllowed)
    assert found.path_values[("name",)] == "a/b c"
    found = router.match("GET", "/v1/files/dir/a%2Fb")
    assert found is not None and not isinstance(found, MethodNotAllowed)
    assert found.path_values[("name",)] == "dir/a%2Fb"


_counter = itertools.count()


def _service_with(rule: str, *, streaming: bool = False) -> object:
    number = next(_counter)
    stream = "client_streaming: true" if streaming else ""
    text = f"""
name: "gatewaytest/bad/bad{number}.proto"
package: "gatewaytest.bad{number}"
syntax: "proto3"
dependency: "google/api/annotations.proto"
dependency: "gatewaytest/v1/rules.proto"
service {{
  name: "BadService"
  method {{ name: "Broken" input_type: ".gatewaytest.v1.EchoRequest"
    output_type: ".gatewaytest.v1.EchoResponse" {stream}
    options {{ [google.api.http] {{ {rule} }} }} }}
}}
"""
    return add_file(text).services_by_name["BadService"]


@pytest.mark.parametrize(
    "rule,why",
    [
        ('custom { kind: "HEAD" path: "/v1/x" }', "pattern 'custom'"),
        ('get: "/v1/x" additional_bindings { get: "/v1/y" }', "additional_bindings"),
        ('get: "/v1/things/{nope}"', "names no field"),
        ('get: "/v1/things/{tags}"', "singular scalar"),
        ('get: "/v1/things/{item}"', "singular scalar"),
        ('get: "/v1/things/{item.levels}"', "singular scalar"),
        ('get: "/v1/things/{count.x}"', "not a singular message"),
        ('get: "/v1/**/x"', "'**' only"),
        ('get: "/v1/{name=**}/x"', "'**' only"),
        ('get: "/v1/{name={inner.sub}}"', "nests a variable"),
        ('get: "v1/x"', "must start with '/'"),
        ('get: "/v1//x"', "empty segment"),
        ('get: "/v1/{name"', "unbalanced"),
        ('get: "/v1/a b"', "unsupported segment"),
        ('get: "/v1/{name}/{name}"', "appears twice"),
        ('get: "/v1/x" body: "*"', "GET binding cannot have a body"),
        ('post: "/v1/x" body: "nope"', "body 'nope'"),
        ('post: "/v1/x" body: "*" response_body: "nope"', "response_body 'nope'"),
    ],
)
def test_unsupported_annotation_fails_at_startup_naming_the_method(rule: str, why: str) -> None:
    service = _service_with(rule)
    with pytest.raises(RouteError) as caught:
        build_routes([service])
    assert f"{service.full_name}.Broken" in str(caught.value)
    assert why in str(caught.value)


def test_streaming_rpc_with_an_annotation_fails_at_startup() -> None:
    service = _service_with('post: "/v1/stream" body: "*"', streaming=True)
    with pytest.raises(RouteError, match="streaming"):
        build_routes([service])


def test_two_rpcs_on_the_same_verb_and_template_fail_at_startup() -> None:
    clash = _service_with('get: "/v1/things/{inner.sub}"')
    with pytest.raises(RouteError, match="already bound"):
        build_routes([RULES_SERVICE, clash])
