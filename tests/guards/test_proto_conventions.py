"""The protos follow the house conventions (docs/house-style.md II.4), checked on descriptors."""

from __future__ import annotations

import importlib
import re

import pytest
from google.api import annotations_pb2
from google.protobuf import descriptor

MODULES = [
    "copytrade.common.v1.types_pb2",
    "copytrade.broker.v1.broker_service_pb2",
    "copytrade.engine.v1.engine_service_pb2",
    "copytrade.sync.v1.sync_service_pb2",
    "copytrade.recon.v1.recon_service_pb2",
]
MONEY_NAME = re.compile(r"price|qty|quantity|amount|balance|notional|equity")
TEMPLATE = re.compile(r"^(/[a-z0-9\-]+|/\{[a-z_][a-z0-9_.]*\})+$")
FLOATS = {descriptor.FieldDescriptor.TYPE_FLOAT, descriptor.FieldDescriptor.TYPE_DOUBLE}


def _files() -> list[descriptor.FileDescriptor]:
    return [importlib.import_module(name).DESCRIPTOR for name in MODULES]


def _messages(file: descriptor.FileDescriptor) -> list[descriptor.Descriptor]:
    found: list[descriptor.Descriptor] = []
    stack = list(file.message_types_by_name.values())
    while stack:
        message = stack.pop()
        if message.GetOptions().map_entry:
            continue
        found.append(message)
        stack.extend(message.nested_types)
    return found


@pytest.mark.parametrize("file", _files(), ids=lambda f: f.name)
def test_package_is_versioned_v1(file: descriptor.FileDescriptor) -> None:
    assert file.package.startswith("copytrade.") and file.package.endswith(".v1")


@pytest.mark.parametrize("file", _files(), ids=lambda f: f.name)
def test_services_and_rpcs_follow_naming(file: descriptor.FileDescriptor) -> None:
    seen: set[str] = set()
    for service in file.services_by_name.values():
        assert service.name.endswith("Service")
        for method in service.methods:
            assert method.input_type.name == f"{method.name}Request", method.full_name
            assert method.output_type.name == f"{method.name}Response", method.full_name
            assert method.input_type.full_name not in seen
            seen.add(method.input_type.full_name)


@pytest.mark.parametrize("file", _files(), ids=lambda f: f.name)
def test_enums_have_prefixed_values_and_unspecified_zero(file: descriptor.FileDescriptor) -> None:
    enums = list(file.enum_types_by_name.values())
    for message in _messages(file):
        assert not message.enum_types, f"{message.full_name} nests an enum; enums are top-level"
    for enum in enums:
        prefix = re.sub(r"(?<!^)(?=[A-Z])", "_", enum.name).upper() + "_"
        assert enum.values_by_number[0].name == f"{prefix}UNSPECIFIED"
        for value in enum.values:
            assert value.name.startswith(prefix), value.name


@pytest.mark.parametrize("file", _files(), ids=lambda f: f.name)
def test_no_float_for_money(file: descriptor.FileDescriptor) -> None:
    for message in _messages(file):
        for field in message.fields:
            if MONEY_NAME.search(field.name):
                assert field.type not in FLOATS, f"{message.full_name}.{field.name} is a float"


@pytest.mark.parametrize("file", _files(), ids=lambda f: f.name)
def test_every_http_template_parses_and_names_real_fields(file: descriptor.FileDescriptor) -> None:
    for service in file.services_by_name.values():
        for method in service.methods:
            rule = method.GetOptions().Extensions[annotations_pb2.http]
            pattern = rule.WhichOneof("pattern")
            if not pattern:
                continue
            path = getattr(rule, pattern)
            assert path.startswith("/api/institutional/copy-trading/"), method.full_name
            assert TEMPLATE.match(path), f"{method.full_name}: {path}"
            for name in re.findall(r"\{([^}=]+)", path):
                assert name in method.input_type.fields_by_name, f"{method.full_name}: {name}"
            if rule.body not in ("", "*"):
                assert rule.body in method.input_type.fields_by_name


@pytest.mark.parametrize("file", _files(), ids=lambda f: f.name)
def test_only_request_fields_are_marked_required(file: descriptor.FileDescriptor) -> None:
    # (google.api.field_behavior) = REQUIRED becomes "required" in the OpenAPI document: on a
    # message shared with responses it would claim a response field is required input.
    from google.api import field_behavior_pb2

    for message in _messages(file):
        for field in message.fields:
            behaviors = field.GetOptions().Extensions[field_behavior_pb2.field_behavior]
            if field_behavior_pb2.REQUIRED in behaviors:
                assert message.name.endswith("Request"), f"{message.full_name}.{field.name}"
