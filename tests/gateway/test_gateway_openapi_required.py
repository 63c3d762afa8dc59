"""The OpenAPI document marks required what the protos mark REQUIRED (google.api.field_behavior)."""

from __future__ import annotations

from typing import Any

import pytest
from google.api import field_behavior_pb2

from gateway.auth import required_plan
from gateway.openapi import build_openapi
from gateway.routes import build_routes, default_services

API = "/api/institutional/copy-trading"


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return build_openapi(build_routes(default_services()), required_plan)


def _body_schema(document: dict[str, Any], verb: str, path: str) -> dict[str, Any]:
    schema = document["paths"][API + path][verb]["requestBody"]["content"]["application/json"][
        "schema"
    ]
    if "$ref" in schema:
        return document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


@pytest.mark.parametrize(
    ("verb", "path", "required"),
    [
        ("post", "/start", ["target_exchange_ids"]),
        ("post", "/exchanges", ["exchange_name", "api_key", "api_secret"]),
        ("post", "/test-broker", ["exchange_name", "api_key", "api_secret"]),
        ("post", "/stop", ["config_id"]),
        ("post", "/pause", ["config_id"]),
        ("post", "/resume", ["config_id"]),
        ("post", "/reconcile", ["config_id", "start_time"]),
        ("post", "/backtests", ["name"]),
        # The path carries config_id / backtest_id: the body requires only the rest.
        ("patch", "/configs/{config_id}", None),
        ("post", "/backtests/{backtest_id}/signals", ["signals"]),
        # Exactly one of config_id or all: neither is required on its own.
        ("post", "/kill-switch", None),
    ],
)
def test_request_bodies_require_what_the_services_require(
    document: dict[str, Any],
    verb: str,
    path: str,
    required: list[str] | None,
) -> None:
    schema = _body_schema(document, verb, path)
    assert schema.get("required") == required
    for name in required or []:
        assert name in schema["properties"]


def test_every_required_name_is_a_property_and_only_request_messages_require(
    document: dict[str, Any],
) -> None:
    for name, schema in document["components"]["schemas"].items():
        for field in schema.get("required", []):
            assert field in schema.get("properties", {}), (name, field)
            assert name.endswith("Request"), name


def test_required_comes_from_the_proto_annotation() -> None:
    services = default_services()
    annotated = {
        f"{route.method.input_type.name}.{field.name}"
        for route in build_routes(services)
        for field in route.method.input_type.fields
        if field_behavior_pb2.REQUIRED
        in field.GetOptions().Extensions[field_behavior_pb2.field_behavior]
    }
    assert "StartCopyRequest.target_exchange_ids" in annotated
    assert "RegisterExchangeRequest.api_secret" in annotated
    assert not any(name.startswith("KillSwitchRequest.") for name in annotated)
