"""The gateway's compiled response encoder renders every response exactly as the reference.

``response_json`` takes a compiled encoder per message type (the gateway's hot path under read
load); ``reference_json`` is its definition (``MessageToDict`` with proto names and every field
without presence, decimals flattened). Every output type of every route, filled at random (fields
set and unset, defaults, empty decimals, unknown enum numbers, infinities, 64-bit integers,
repeated and map fields), must give the same JSON text, key order included.
"""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from google.protobuf import descriptor, timestamp_pb2

from gateway.routes import build_routes, default_services, is_map
from gateway.transcode import DECIMAL, TIMESTAMP, _compiled_for, reference_json, response_json

FD = descriptor.FieldDescriptor
OUTPUT_TYPES = sorted(
    {route.output_class for route in build_routes(default_services())},
    key=lambda cls: cls.DESCRIPTOR.full_name,
)


def _scalar(field: descriptor.FieldDescriptor, rng: random.Random) -> Any:
    kind = field.type
    if kind == FD.TYPE_STRING:
        return rng.choice(["", "a", "é ü \u2603", 'quote " and \\ back', "x" * 30])
    if kind == FD.TYPE_BOOL:
        return rng.choice([True, False])
    if kind == FD.TYPE_DOUBLE:
        return rng.choice([0.0, -0.0, 1.5, 1e16, 1e-7, 123456.789, float("inf"), float("-inf")])
    if kind == FD.TYPE_FLOAT:
        return rng.choice([0.0, 0.1, 2.5])
    if kind == FD.TYPE_ENUM:
        assert field.enum_type is not None
        numbers = [v.number for v in field.enum_type.values] + [999]
        return rng.choice(numbers)
    if kind == FD.TYPE_BYTES:
        return rng.choice([b"", b"\x00\xff"])
    if kind in (FD.TYPE_INT64, FD.TYPE_SINT64, FD.TYPE_SFIXED64):
        return rng.choice([0, -1, 2**62, 1_700_000_000_000])
    if kind in (FD.TYPE_UINT64, FD.TYPE_FIXED64):
        return rng.choice([0, 2**63])
    if kind in (FD.TYPE_UINT32, FD.TYPE_FIXED32):
        return rng.choice([0, 7])
    return rng.choice([0, -3, 2**31 - 1])


def _fill(msg: Any, rng: random.Random, depth: int = 0) -> None:
    for field in msg.DESCRIPTOR.fields:
        if rng.random() < 0.3:
            continue  # left unset
        message_type = field.message_type
        if is_map(field):
            entry = message_type.fields_by_name
            for _ in range(rng.randint(0, 2)):
                key = _scalar(entry["key"], rng)
                target = getattr(msg, field.name)
                if entry["value"].message_type is not None:
                    _fill_one(target[key], entry["value"], rng, depth)
                else:
                    target[key] = _scalar(entry["value"], rng)
        elif field.is_repeated:
            target = getattr(msg, field.name)
            for _ in range(rng.randint(0, 3)):
                if message_type is not None:
                    _fill_one(target.add(), field, rng, depth)
                else:
                    target.append(_scalar(field, rng))
        elif message_type is not None:
            _fill_one(getattr(msg, field.name), field, rng, depth)
            if message_type.full_name == DECIMAL and rng.random() < 0.3:
                getattr(msg, field.name).value = ""  # set, but empty: left out
        else:
            setattr(msg, field.name, _scalar(field, rng))


def _fill_one(sub: Any, field: descriptor.FieldDescriptor, rng: random.Random, depth: int) -> None:
    name = sub.DESCRIPTOR.full_name
    if name == DECIMAL:
        sub.value = rng.choice(["", "0", "0.010", "-12345.678900", "1E+3"])
    elif name == TIMESTAMP:
        sub.CopyFrom(
            timestamp_pb2.Timestamp(
                seconds=rng.randint(0, 2**33), nanos=rng.choice([0, 5000, 123456789])
            )
        )
    elif depth < 4:
        _fill(sub, rng, depth + 1)
        sub.SetInParent()


@pytest.mark.parametrize("output_class", OUTPUT_TYPES, ids=lambda c: c.DESCRIPTOR.name)
def test_the_compiled_encoder_renders_each_response_as_the_reference(output_class: Any) -> None:
    assert _compiled_for(output_class.DESCRIPTOR) is not None  # the fast path is taken
    rng = random.Random(output_class.DESCRIPTOR.full_name)
    for _ in range(40):
        response = output_class()
        _fill(response, rng)
        fast = json.dumps(response_json(response), ensure_ascii=False)
        assert fast == json.dumps(reference_json(response), ensure_ascii=False)
    empty = output_class()
    assert json.dumps(response_json(empty)) == json.dumps(reference_json(empty))
