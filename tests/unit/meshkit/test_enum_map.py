"""meshkit.codec.EnumMap, and every service codec's maps checked against the protos."""

from __future__ import annotations

import enum
import types

import pytest

from broker_svc import codec as broker_codec
from copytrade.common.v1 import types_pb2
from engine_svc import codec as engine_codec
from meshkit import codec as mesh_codec
from meshkit.codec import EnumMap
from recon_svc import codec as recon_codec
from sync_svc import codec as sync_codec


class Colour(enum.StrEnum):
    """A domain enum for the tests."""

    BUY = "buy"
    SELL = "sell"


SIDE = EnumMap(
    types_pb2.OrderSide,
    {Colour.BUY: types_pb2.ORDER_SIDE_BUY, Colour.SELL: types_pb2.ORDER_SIDE_SELL},
)


def test_both_directions_come_from_one_table() -> None:
    assert SIDE.to_proto(Colour.SELL) == types_pb2.ORDER_SIDE_SELL
    assert SIDE.from_proto(types_pb2.ORDER_SIDE_BUY) is Colour.BUY
    assert SIDE.require(types_pb2.ORDER_SIDE_SELL) is Colour.SELL
    assert dict(SIDE.table) == {Colour.BUY: 1, Colour.SELL: 2}


def test_an_unmapped_wire_value_is_none_the_default_or_an_error() -> None:
    assert SIDE.from_proto(types_pb2.ORDER_SIDE_UNSPECIFIED) is None
    assert SIDE.from_proto(99) is None
    assert SIDE.from_proto(99, Colour.BUY) is Colour.BUY
    with pytest.raises(ValueError):
        SIDE.require(types_pb2.ORDER_SIDE_UNSPECIFIED)


def test_a_table_that_cannot_be_inverted_or_is_not_of_the_enum_is_refused() -> None:
    with pytest.raises(ValueError):
        EnumMap(types_pb2.OrderSide, {Colour.BUY: 1, Colour.SELL: 1})
    with pytest.raises(ValueError):
        EnumMap(types_pb2.OrderSide, {Colour.BUY: 1, Colour.SELL: 7})


def test_unmapped_names_what_the_table_lacks_except_unspecified() -> None:
    half = EnumMap(types_pb2.OrderSide, {Colour.BUY: types_pb2.ORDER_SIDE_BUY})
    assert half.unmapped() == ["ORDER_SIDE_SELL"]
    assert SIDE.unmapped() == []


def _maps(module: types.ModuleType) -> list[tuple[str, EnumMap]]:
    return [
        (f"{module.__name__}.{name}", value)
        for name, value in vars(module).items()
        if isinstance(value, EnumMap)
    ]


ALL_MAPS = [
    m
    for module in (mesh_codec, broker_codec, engine_codec, sync_codec, recon_codec)
    for m in _maps(module)
]


def test_every_service_codec_declares_its_enums_as_maps() -> None:
    assert len(ALL_MAPS) >= 20


@pytest.mark.parametrize(("name", "mapping"), ALL_MAPS, ids=[n for n, _ in ALL_MAPS])
def test_each_map_covers_its_proto_enum_and_its_domain_enum(name: str, mapping: EnumMap) -> None:
    assert mapping.unmapped() == [], f"{name} lacks wire values"
    (domain,) = {type(member) for member in mapping.table}
    assert set(mapping.table) == set(domain.__members__.values()), f"{name} lacks domain values"
