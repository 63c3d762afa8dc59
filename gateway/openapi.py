"""OpenAPI 3 document derived from the route table and the message descriptors.

The same routes the gateway serves, with schemas generated from the descriptors (the
protoc-gen-openapiv2 idea): proto field names, enums as their names, 64-bit integers as
strings, times as RFC 3339 strings and every ``google.type.Decimal`` as a number or a
numeric string on input (always a string on output). Every operation needs a bearer
token; ``x-copytrade-plan`` says which plan it needs. A field annotated
``[(google.api.field_behavior) = REQUIRED]`` is listed in its schema's ``required`` (and
is a required query parameter).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from google.api import field_behavior_pb2
from google.protobuf import descriptor

from gateway import audit
from gateway.routes import Route, is_map, is_scalar_like, message_type_of
from gateway.transcode import DECIMAL, FIELD_MASK
from gateway.webhooks import spec as webhook_spec

FD = descriptor.FieldDescriptor
_SCALARS: dict[int, dict[str, Any]] = {
    FD.TYPE_STRING: {"type": "string"},
    FD.TYPE_BYTES: {"type": "string", "format": "byte"},
    FD.TYPE_BOOL: {"type": "boolean"},
    FD.TYPE_INT32: {"type": "integer", "format": "int32"},
    FD.TYPE_SINT32: {"type": "integer", "format": "int32"},
    FD.TYPE_SFIXED32: {"type": "integer", "format": "int32"},
    FD.TYPE_UINT32: {"type": "integer", "format": "int64", "minimum": 0},
    FD.TYPE_FIXED32: {"type": "integer", "format": "int64", "minimum": 0},
    FD.TYPE_INT64: {"type": "string", "format": "int64"},
    FD.TYPE_SINT64: {"type": "string", "format": "int64"},
    FD.TYPE_SFIXED64: {"type": "string", "format": "int64"},
    FD.TYPE_UINT64: {"type": "string", "format": "uint64"},
    FD.TYPE_FIXED64: {"type": "string", "format": "uint64"},
    FD.TYPE_DOUBLE: {"type": "number", "format": "double"},
    FD.TYPE_FLOAT: {"type": "number", "format": "float"},
}
_WELL_KNOWN: dict[str, dict[str, Any]] = {
    "google.protobuf.Timestamp": {"type": "string", "format": "date-time"},
    "google.protobuf.Duration": {"type": "string", "pattern": r"^-?\d+(\.\d+)?s$"},
    FIELD_MASK: {"type": "string", "description": "Comma-separated field paths."},
    "google.protobuf.Struct": {"type": "object", "additionalProperties": True},
    "google.protobuf.Value": {},
    "google.protobuf.ListValue": {"type": "array", "items": {}},
    "google.protobuf.Empty": {"type": "object"},
    "google.protobuf.DoubleValue": {"type": "number", "format": "double", "nullable": True},
    "google.protobuf.FloatValue": {"type": "number", "format": "float", "nullable": True},
    "google.protobuf.Int64Value": {"type": "string", "format": "int64", "nullable": True},
    "google.protobuf.UInt64Value": {"type": "string", "format": "uint64", "nullable": True},
    "google.protobuf.Int32Value": {"type": "integer", "format": "int32", "nullable": True},
    "google.protobuf.UInt32Value": {"type": "integer", "format": "int64", "nullable": True},
    "google.protobuf.BoolValue": {"type": "boolean", "nullable": True},
    "google.protobuf.StringValue": {"type": "string", "nullable": True},
    "google.protobuf.BytesValue": {"type": "string", "format": "byte", "nullable": True},
}
_DECIMAL_SCHEMA = {
    "description": (
        "A decimal number. Input: a JSON number or a numeric string (no precision is lost "
        "either way). Output: always a string."
    ),
    "oneOf": [
        {"type": "string", "pattern": r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$"},
        {"type": "number"},
    ],
    "example": "0.1",
}
_STATUS_SCHEMAS = {
    "google.rpc.Status": {
        "type": "object",
        "description": "An error: the gRPC status of the call, as grpc-gateway renders it.",
        "properties": {
            "code": {
                "type": "integer",
                "format": "int32",
                "description": "The google.rpc.Code (5 is NOT_FOUND).",
            },
            "message": {"type": "string"},
            "details": {
                "type": "array",
                "items": {"$ref": "#/components/schemas/google.protobuf.Any"},
            },
        },
    },
    "google.protobuf.Any": {
        "type": "object",
        "description": "A detail (ErrorInfo, BadRequest, RetryInfo...) named by its @type.",
        "properties": {"@type": {"type": "string"}},
        "additionalProperties": True,
    },
}


def is_required(field: descriptor.FieldDescriptor) -> bool:
    """Return whether the proto marks ``field`` ``(google.api.field_behavior) = REQUIRED``."""
    behaviors = field.GetOptions().Extensions[field_behavior_pb2.field_behavior]
    return field_behavior_pb2.REQUIRED in behaviors


def _object(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    schema["additionalProperties"] = False
    return schema


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


class _Schemas:
    def __init__(self) -> None:
        self.components: dict[str, Any] = dict(_STATUS_SCHEMAS)

    def single(self, field: descriptor.FieldDescriptor) -> dict[str, Any]:
        if field.enum_type is not None:
            enum = field.enum_type
            if enum.full_name not in self.components:
                self.components[enum.full_name] = {
                    "type": "string",
                    "enum": [value.name for value in enum.values],
                }
            return _ref(enum.full_name)
        if field.message_type is None:
            return dict(_SCALARS[field.type])
        return self.message(field.message_type)

    def field(self, field: descriptor.FieldDescriptor) -> dict[str, Any]:
        if is_map(field):
            value = message_type_of(field).fields_by_name["value"]
            return {"type": "object", "additionalProperties": self.single(value)}
        if field.is_repeated:
            return {"type": "array", "items": self.single(field)}
        return self.single(field)

    def properties(
        self,
        message: descriptor.Descriptor,
        exclude: frozenset[str] = frozenset(),
    ) -> dict[str, Any]:
        return {f.name: self.field(f) for f in message.fields if f.name not in exclude}

    @staticmethod
    def required(
        message: descriptor.Descriptor,
        exclude: frozenset[str] = frozenset(),
    ) -> list[str]:
        return [f.name for f in message.fields if f.name not in exclude and is_required(f)]

    def message(self, message: descriptor.Descriptor) -> dict[str, Any]:
        name = message.full_name
        if name in _WELL_KNOWN:
            return dict(_WELL_KNOWN[name])
        if name == DECIMAL:
            self.components.setdefault(DECIMAL, _DECIMAL_SCHEMA)
            return _ref(DECIMAL)
        if name not in self.components:
            self.components[name] = {}  # placeholder: recursive types refer to themselves
            self.components[name] = _object(self.properties(message), self.required(message))
        return _ref(name)


def _query_parameters(
    schemas: _Schemas,
    message: descriptor.Descriptor,
    prefix: str,
    skip: frozenset[str],
    seen: tuple[str, ...],
) -> list[dict[str, Any]]:
    parameters: list[dict[str, Any]] = []
    for field in message.fields:
        name = prefix + field.name
        if name in skip or is_map(field):
            continue
        if is_scalar_like(field):
            schema = schemas.field(field)
            parameter: dict[str, Any] = {
                "name": name,
                "in": "query",
                "required": not prefix and is_required(field),
                "schema": schema,
            }
            if field.is_repeated:
                parameter["explode"] = True
            parameters.append(parameter)
        elif not field.is_repeated:
            message_type = message_type_of(field)
            full_name = message_type.full_name
            if full_name not in seen and not full_name.startswith("google.protobuf."):
                parameters += _query_parameters(
                    schemas,
                    message_type,
                    name + ".",
                    skip,
                    (*seen, full_name),
                )
    return parameters


def _operation(schemas: _Schemas, route: Route, plan: str) -> dict[str, Any]:
    input_type = route.method.input_type
    parameters: list[dict[str, Any]] = []
    for variable in route.variables:
        field = input_type
        target = None
        for part in variable.field_path:
            target = field.fields_by_name[part]
            field = target.message_type or field
        assert target is not None
        parameters.append(
            {
                "name": variable.name,
                "in": "path",
                "required": True,
                "schema": schemas.field(target),
            }
        )
    for index in range(route.unnamed_wildcards):
        parameters.append(
            {
                "name": f"wildcard{index}",
                "in": "path",
                "required": True,
                "schema": {"type": "string"},
            }
        )
    path_names = {variable.name for variable in route.variables}
    operation: dict[str, Any] = {
        "operationId": f"{route.service.name}_{route.method.name}",
        "tags": [route.service.name],
        "description": f"Calls {route.rpc}.",
        "x-copytrade-rpc": route.rpc,
        "x-copytrade-plan": plan,
        "security": [{"bearerAuth": []}],
    }
    if route.body != "*":
        skip = frozenset(path_names | ({route.body} if route.body else set()))
        parameters += _query_parameters(schemas, input_type, "", skip, (input_type.full_name,))
    if parameters:
        operation["parameters"] = parameters
    if route.body == "*":
        top_level_path_fields = frozenset(
            v.field_path[0] for v in route.variables if len(v.field_path) == 1
        )
        if top_level_path_fields:
            body_schema = _object(
                schemas.properties(input_type, top_level_path_fields),
                schemas.required(input_type, top_level_path_fields),
            )
        else:
            body_schema = schemas.message(input_type)
        operation["requestBody"] = {"content": {"application/json": {"schema": body_schema}}}
    elif route.body:
        operation["requestBody"] = {
            "content": {
                "application/json": {
                    "schema": schemas.field(input_type.fields_by_name[route.body]),
                }
            }
        }
    output_type = route.method.output_type
    if route.response_body:
        response_schema = schemas.field(output_type.fields_by_name[route.response_body])
    else:
        response_schema = schemas.message(output_type)
    error = {"content": {"application/json": {"schema": _ref("google.rpc.Status")}}}
    responses: dict[str, Any] = {
        "200": {"description": "OK", "content": {"application/json": {"schema": response_schema}}},
        "400": {"description": "A bad request; the details name each bad field.", **error},
        "401": {
            "description": (
                "A missing, unknown, revoked or expired (reason TOKEN_EXPIRED) bearer token."
            ),
            **error,
        },
        "429": {"description": "Too many requests; see Retry-After.", **error},
        "default": {"description": "An error from the service, as a google.rpc.Status.", **error},
    }
    if plan != "any":
        responses["403"] = {"description": f"The caller's plan is not {plan}.", **error}
    operation["responses"] = responses
    return operation


def build_openapi(routes: Sequence[Route], plan_of: Callable[[Route], str]) -> dict[str, Any]:
    """Return the OpenAPI 3 document of ``routes``; ``plan_of`` gives each route's plan."""
    schemas = _Schemas()
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        paths.setdefault(route.openapi_path, {})[route.verb.lower()] = _operation(
            schemas,
            route,
            plan_of(route),
        )
    # Served by the gateway itself (it merges every service's chain), so no annotation names it.
    paths.setdefault(audit.PATH, {})["get"] = audit.openapi_operation()
    # The webhooks live in the gateway's own store (docs/webhooks.md).
    for path, item in webhook_spec.openapi_paths().items():
        paths.setdefault(path, {}).update(item)
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "copytrade REST gateway",
            "version": "v1",
            "description": (
                "Generated from the google.api.http annotations of the copytrade services. "
                "JSON field names are the proto field names (snake_case); errors are a "
                "google.rpc.Status with the HTTP code of its gRPC code."
            ),
        },
        "security": [{"bearerAuth": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An API token from `copytrade user add`.",
                },
            },
            "schemas": schemas.components,
        },
    }
