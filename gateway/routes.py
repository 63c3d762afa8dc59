"""The route table, built from the ``google.api.http`` annotations of the service descriptors.

Nothing here names an RPC: every route comes from an annotation, so adding a REST
endpoint means annotating the RPC and regenerating ``gen/`` (docs/house-style.md II.7).
Supported: ``get``/``post``/``put``/``patch``/``delete``; ``body`` ``"*"``, a top-level
field or empty; ``response_body``; ``{field}``, ``{field.sub}``, ``{field=lit/*}``,
``*``, ``**`` and a trailing ``:verb``. Anything else (``custom`` patterns,
``additional_bindings``, streaming RPCs, fields that cannot hold a path value) fails
at startup with a :class:`RouteError` naming the method.
"""

from __future__ import annotations

import importlib
import re
import urllib.parse
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from google.api import annotations_pb2
from google.protobuf import descriptor, message_factory

SERVICE_MODULES = (
    "copytrade.broker.v1.broker_service_pb2",
    "copytrade.engine.v1.engine_service_pb2",
    "copytrade.sync.v1.sync_service_pb2",
    "copytrade.recon.v1.recon_service_pb2",
)

VERBS = ("get", "post", "put", "patch", "delete")

# Message types that hold one value and so may be bound to a path or query parameter.
SCALAR_MESSAGES = frozenset(
    {
        "google.type.Decimal",
        "google.protobuf.Timestamp",
        "google.protobuf.Duration",
        "google.protobuf.FieldMask",
        "google.protobuf.DoubleValue",
        "google.protobuf.FloatValue",
        "google.protobuf.Int64Value",
        "google.protobuf.UInt64Value",
        "google.protobuf.Int32Value",
        "google.protobuf.UInt32Value",
        "google.protobuf.BoolValue",
        "google.protobuf.StringValue",
        "google.protobuf.BytesValue",
    }
)

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_LITERAL = re.compile(r"[A-Za-z0-9._~!$&'()+,;=@-]+\Z")


class RouteError(ValueError):
    """An annotation the gateway cannot serve; the message names the method."""


def default_services() -> list[descriptor.ServiceDescriptor]:
    """Return the descriptors of every service in :data:`SERVICE_MODULES`."""
    services: list[descriptor.ServiceDescriptor] = []
    for name in SERVICE_MODULES:
        module = importlib.import_module(name)
        services.extend(module.DESCRIPTOR.services_by_name.values())
    return services


def is_map(field_descriptor: descriptor.FieldDescriptor) -> bool:
    """Return whether a field is a ``map<,>``."""
    message_type = field_descriptor.message_type
    return bool(
        field_descriptor.is_repeated
        and message_type is not None
        and message_type.GetOptions().map_entry,
    )


def message_type_of(field_descriptor: descriptor.FieldDescriptor) -> descriptor.Descriptor:
    """Return the message type of a message (or map) field.

    Raises
    ------
    TypeError
        When the field is a scalar or an enum: it has no message type.
    """
    message_type = field_descriptor.message_type
    if message_type is None:
        raise TypeError(f"{field_descriptor.full_name} is not a message field")
    return message_type


def is_scalar_like(field_descriptor: descriptor.FieldDescriptor) -> bool:
    """Return whether one string can carry the field's value (scalar, enum, Decimal, time...)."""
    message_type = field_descriptor.message_type
    return message_type is None or message_type.full_name in SCALAR_MESSAGES


@dataclass(frozen=True)
class Variable:
    """A path variable: the field it sets and the regex group that captures it."""

    field_path: tuple[str, ...]
    group: str
    multi_segment: bool

    @property
    def name(self) -> str:
        """Return the dotted field path, as clients name the parameter."""
        return ".".join(self.field_path)


@dataclass(frozen=True)
class Segment:
    """One parsed template segment: a literal, ``*``, ``**`` or a variable."""

    kind: str  # "literal", "wildcard", "double_wildcard", "variable"
    text: str = ""
    field_path: tuple[str, ...] = ()
    sub_segments: tuple[Segment, ...] = ()


@dataclass(frozen=True)
class Route:
    """One REST binding of one RPC."""

    verb: str
    template: str
    service: descriptor.ServiceDescriptor
    method: descriptor.MethodDescriptor
    body: str
    response_body: str
    regex: re.Pattern[str]
    variables: tuple[Variable, ...]
    segments: tuple[Segment, ...]
    custom_verb: str
    input_class: Any = field(repr=False)
    output_class: Any = field(repr=False)

    @property
    def rpc(self) -> str:
        """Return the RPC's full name, ``copytrade.engine.v1.EngineService.StartCopy``."""
        return f"{self.service.full_name}.{self.method.name}"

    @property
    def grpc_path(self) -> str:
        """Return the gRPC method path, ``/copytrade.engine.v1.EngineService/StartCopy``."""
        return f"/{self.service.full_name}/{self.method.name}"

    @property
    def path_field_paths(self) -> frozenset[tuple[str, ...]]:
        """Return the field paths the path sets."""
        return frozenset(v.field_path for v in self.variables)

    @property
    def literal_count(self) -> int:
        """Return how many literal segments the template has (more is more specific)."""
        return sum(1 for s in self.segments if s.kind == "literal")

    @property
    def has_double_wildcard(self) -> bool:
        """Return whether the template ends in ``**`` (matches any depth)."""
        return any(
            s.kind == "double_wildcard"
            or any(sub.kind == "double_wildcard" for sub in s.sub_segments)
            for s in self.segments
        )

    @property
    def openapi_path(self) -> str:
        """Return the template as an OpenAPI path: each variable becomes ``{dotted.name}``."""
        parts: list[str] = []
        wildcard = 0
        for segment in self.segments:
            if segment.kind == "literal":
                parts.append(segment.text)
            elif segment.kind == "variable":
                parts.append("{" + ".".join(segment.field_path) + "}")
            else:
                parts.append("{" + f"wildcard{wildcard}" + "}")
                wildcard += 1
        path = "/" + "/".join(parts)
        return f"{path}:{self.custom_verb}" if self.custom_verb else path

    @property
    def unnamed_wildcards(self) -> int:
        """Return how many ``*``/``**`` segments are not bound to a field."""
        return sum(1 for s in self.segments if s.kind in ("wildcard", "double_wildcard"))

    def describe(self) -> dict[str, str]:
        """Return the route as the golden ``routes.json`` lists it."""
        return {
            "verb": self.verb,
            "template": self.template,
            "rpc": self.rpc,
            "body": self.body,
            "response_body": self.response_body,
        }


@dataclass(frozen=True)
class Match:
    """A route matched a request: the route and the decoded path values."""

    route: Route
    path_values: dict[tuple[str, ...], str]


@dataclass(frozen=True)
class MethodNotAllowed:
    """The path matched routes, but none for this HTTP method."""

    allowed: tuple[str, ...]


class _TemplateParser:
    def __init__(self, template: str, where: str) -> None:
        self.template = template
        self.where = where

    def fail(self, why: str) -> RouteError:
        return RouteError(f"{self.where}: template {self.template!r} {why}")

    def parse(self) -> tuple[tuple[Segment, ...], str]:
        template = self.template
        if not template.startswith("/"):
            raise self.fail("must start with '/'")
        body, verb = template[1:], ""
        closing = body.rfind("}")
        colon = body.rfind(":")
        if colon > closing and colon > body.rfind("/"):
            body, verb = body[:colon], body[colon + 1 :]
            if not _LITERAL.match(verb):
                raise self.fail(f"has an invalid custom verb {verb!r}")
        segments = self._segments(body, inside_variable=False)
        for index, segment in enumerate(segments):
            if segment.kind == "double_wildcard" and index != len(segments) - 1:
                raise self.fail("may use '**' only as its last segment")
            if (
                segment.kind == "variable"
                and any(s.kind == "double_wildcard" for s in segment.sub_segments)
                and index != len(segments) - 1
            ):
                raise self.fail("may use '**' only in its last segment")
        return segments, verb

    def _split(self, text: str) -> list[str]:
        parts: list[str] = []
        depth, start = 0, 0
        for index, char in enumerate(text):
            if char == "{":
                depth += 1
                if depth > 1:
                    raise self.fail("nests a variable inside a variable")
            elif char == "}":
                depth -= 1
                if depth < 0:
                    raise self.fail("has an unbalanced '}'")
            elif char == "/" and depth == 0:
                parts.append(text[start:index])
                start = index + 1
        if depth:
            raise self.fail("has an unbalanced '{'")
        parts.append(text[start:])
        return parts

    def _segments(self, text: str, *, inside_variable: bool) -> tuple[Segment, ...]:
        segments: list[Segment] = []
        parts = self._split(text)
        for index, part in enumerate(parts):
            if not part:
                raise self.fail("has an empty segment")
            if part == "*":
                segments.append(Segment("wildcard"))
            elif part == "**":
                if index != len(parts) - 1:
                    raise self.fail("may use '**' only as its last segment")
                segments.append(Segment("double_wildcard"))
            elif part.startswith("{") and part.endswith("}"):
                if inside_variable:
                    raise self.fail("nests a variable inside a variable")
                segments.append(self._variable(part[1:-1]))
            elif _LITERAL.match(part):
                segments.append(Segment("literal", text=part))
            else:
                raise self.fail(f"has an unsupported segment {part!r}")
        return tuple(segments)

    def _variable(self, inner: str) -> Segment:
        name, equals, pattern = inner.partition("=")
        path = tuple(name.split("."))
        if not all(_IDENT.match(p) for p in path):
            raise self.fail(f"has an invalid variable name {name!r}")
        sub = self._segments(pattern, inside_variable=True) if equals else (Segment("wildcard"),)
        return Segment("variable", field_path=path, sub_segments=sub)


def _segment_regex(segment: Segment) -> str:
    if segment.kind == "literal":
        return re.escape(segment.text)
    if segment.kind == "wildcard":
        return "[^/]+"
    if segment.kind == "double_wildcard":
        return ".*"
    raise AssertionError(segment.kind)


def _resolve_field(
    message: descriptor.Descriptor,
    path: Sequence[str],
    where: str,
    what: str,
) -> descriptor.FieldDescriptor:
    current = message
    field_descriptor: descriptor.FieldDescriptor | None = None
    for index, name in enumerate(path):
        field_descriptor = current.fields_by_name.get(name)
        if field_descriptor is None:
            raise RouteError(
                f"{where}: {what} {'.'.join(path)!r} names no field of {current.full_name}",
            )
        if index < len(path) - 1:
            if field_descriptor.message_type is None or field_descriptor.is_repeated:
                raise RouteError(
                    f"{where}: {what} {'.'.join(path)!r} goes through {name!r}, "
                    "which is not a singular message",
                )
            current = field_descriptor.message_type
    assert field_descriptor is not None
    return field_descriptor


def _build_route(
    service: descriptor.ServiceDescriptor,
    method: descriptor.MethodDescriptor,
    rule: Any,
) -> Route:
    where = f"{service.full_name}.{method.name}"
    kind = rule.WhichOneof("pattern")
    if kind not in VERBS:
        raise RouteError(f"{where}: the http pattern {kind!r} is not supported")
    if rule.additional_bindings:
        raise RouteError(f"{where}: additional_bindings are not supported")
    if method.client_streaming or method.server_streaming:
        raise RouteError(f"{where}: streaming RPCs cannot be exposed over REST")
    template = getattr(rule, kind)
    segments, custom_verb = _TemplateParser(template, where).parse()
    input_type, output_type = method.input_type, method.output_type

    variables: list[Variable] = []
    pieces: list[str] = []
    for segment in segments:
        if segment.kind != "variable":
            pieces.append(_segment_regex(segment))
            continue
        target = _resolve_field(input_type, segment.field_path, where, "path variable")
        if target.is_repeated or not is_scalar_like(target):
            raise RouteError(
                f"{where}: path variable {'.'.join(segment.field_path)!r} must name a singular "
                "scalar field",
            )
        if any(v.field_path == segment.field_path for v in variables):
            raise RouteError(
                f"{where}: path variable {'.'.join(segment.field_path)!r} appears twice",
            )
        group = f"v{len(variables)}"
        multi = len(segment.sub_segments) > 1 or segment.sub_segments[0].kind != "wildcard"
        variables.append(Variable(segment.field_path, group, multi))
        inner = "/".join(_segment_regex(s) for s in segment.sub_segments)
        pieces.append(f"(?P<{group}>{inner})")
    pattern = "/" + "/".join(pieces) + (re.escape(":" + custom_verb) if custom_verb else "")

    body = rule.body
    if body and body != "*" and body not in input_type.fields_by_name:
        raise RouteError(f"{where}: body {body!r} names no field of {input_type.full_name}")
    if body and kind == "get":
        raise RouteError(f"{where}: a GET binding cannot have a body")
    response_body = rule.response_body
    if response_body and response_body not in output_type.fields_by_name:
        raise RouteError(
            f"{where}: response_body {response_body!r} names no field of {output_type.full_name}",
        )
    return Route(
        verb=kind.upper(),
        template=template,
        service=service,
        method=method,
        body=body,
        response_body=response_body,
        regex=re.compile(pattern),
        variables=tuple(variables),
        segments=segments,
        custom_verb=custom_verb,
        input_class=message_factory.GetMessageClass(input_type),
        output_class=message_factory.GetMessageClass(output_type),
    )


def build_routes(services: Iterable[descriptor.ServiceDescriptor]) -> list[Route]:
    """Build every route of ``services`` from their annotations; fail naming a bad method."""
    routes: list[Route] = []
    seen: dict[tuple[str, str], str] = {}
    for service in services:
        for method in service.methods:
            options = method.GetOptions()
            if not options.HasExtension(annotations_pb2.http):
                continue
            rule = options.Extensions[annotations_pb2.http]
            if rule.WhichOneof("pattern") is None:
                continue
            route = _build_route(service, method, rule)
            shape = re.sub(r"\(\?P<v\d+>", "(", route.regex.pattern)
            key = (route.verb, shape)
            if key in seen:
                raise RouteError(
                    f"{route.rpc}: {route.verb} {route.template} is already bound to {seen[key]}",
                )
            seen[key] = route.rpc
            routes.append(route)
    return routes


def _decode(raw: str, multi_segment: bool) -> str:
    if multi_segment:
        # Keep an encoded '/' encoded so segments stay distinguishable.
        raw = raw.replace("%2F", "%252F").replace("%2f", "%252f")
    return urllib.parse.unquote(raw, errors="strict")


class Router:
    """Match a request's method and raw path against the route table."""

    def __init__(self, routes: Sequence[Route]) -> None:
        self.routes = list(routes)
        self._ordered = sorted(
            self.routes,
            key=lambda r: (not r.custom_verb, -r.literal_count, r.has_double_wildcard),
        )

    def match(self, verb: str, raw_path: str) -> Match | MethodNotAllowed | None:
        """Return the best route for ``verb`` and ``raw_path`` (percent-encoded, no query).

        Raises
        ------
        UnicodeDecodeError
            When a path value is not valid percent-encoded UTF-8.
        """
        allowed: list[str] = []
        for route in self._ordered:
            found = route.regex.fullmatch(raw_path)
            if found is None:
                continue
            if route.verb != verb:
                if route.verb not in allowed:
                    allowed.append(route.verb)
                continue
            values = {
                v.field_path: _decode(found.group(v.group), v.multi_segment)
                for v in route.variables
            }
            return Match(route, values)
        if allowed:
            return MethodNotAllowed(tuple(sorted(allowed)))
        return None
