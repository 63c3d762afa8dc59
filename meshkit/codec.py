"""Pure conversions between wire types and Python values shared by every service.

Money is ``Decimal`` in Python and ``google.type.Decimal`` (a string) on the wire;
times are aware UTC ``datetime`` and ``google.protobuf.Timestamp``.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from types import MappingProxyType
from typing import Generic, Protocol, TypeVar, overload

from google.protobuf import timestamp_pb2
from google.type import decimal_pb2

from copytrade.common.v1 import types_pb2
from meshkit.errors import invalid
from meshkit.vocabulary import OrderStatus, OrderType, Side, TimeInForce

DomainT = TypeVar("DomainT", bound=enum.Enum)
ProtoT = TypeVar("ProtoT", bound=int)
ProtoT_co = TypeVar("ProtoT_co", bound=int, covariant=True)


def decimal_to_proto(value: Decimal | None) -> decimal_pb2.Decimal | None:
    """Return the wire form of ``value``; ``None`` stays unset."""
    if value is None:
        return None
    return decimal_pb2.Decimal(value=format_decimal(value))


def format_decimal(value: Decimal) -> str:
    """Format without exponent and without trailing zeros: ``Decimal('1.500')`` → ``'1.5'``."""
    if value == 0:
        return "0"
    text = format(value.normalize(), "f")
    return text


def decimal_from_proto(
    message: decimal_pb2.Decimal,
    field: str,
    *,
    required: bool = False,
) -> Decimal | None:
    """Parse a wire decimal; an empty one is ``None`` (or an error naming ``field`` if required)."""
    raw = message.value.strip()
    if not raw:
        if required:
            raise invalid(field, "is required")
        return None
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise invalid(field, f"is not a decimal number: {raw!r}") from None
    if not value.is_finite():
        raise invalid(field, "must be a finite number")
    return value


def set_decimal(target: decimal_pb2.Decimal, value: Decimal | None) -> None:
    """Write ``value`` into an existing wire decimal field (``None`` clears it)."""
    target.value = "" if value is None else format_decimal(value)


@overload
def timestamp_to_proto(value: datetime) -> timestamp_pb2.Timestamp: ...


@overload
def timestamp_to_proto(value: datetime | None) -> timestamp_pb2.Timestamp | None: ...


def timestamp_to_proto(value: datetime | None) -> timestamp_pb2.Timestamp | None:
    """Return the wire form of an aware datetime; ``None`` stays unset."""
    if value is None:
        return None
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(value.astimezone(UTC))
    return stamp


def timestamp_from_proto(message: timestamp_pb2.Timestamp, present: bool = True) -> datetime | None:
    """Return an aware UTC datetime, or ``None`` when the field is unset."""
    if not present:
        return None
    return message.ToDatetime(tzinfo=UTC)


def to_iso(value: datetime) -> str:
    """Format an aware datetime as fixed-width ISO 8601 UTC with microseconds (sorts as text)."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def from_iso(text: str) -> datetime:
    """Parse what :func:`to_iso` wrote."""
    if (
        len(text) == 27
        and text[10] == "T"
        and text[19] == "."
        and text[20:26].isdigit()
        and text[26] == "Z"
    ):
        # Its fixed width, parsed in C (30x strptime: every stored row's times pass here).
        return datetime.fromisoformat(text)
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def utcnow() -> datetime:
    """Return the current time as an aware UTC datetime."""
    return datetime.now(UTC)


class ProtoEnum(Protocol[ProtoT_co]):
    """A generated proto enum (``types_pb2.OrderSide``): its values by name."""

    def items(self) -> Sequence[tuple[str, ProtoT_co]]:
        """Return every (name, number) of the enum."""
        ...


class EnumMap(Generic[DomainT, ProtoT]):
    """A domain enum and a proto enum mapped both ways, built from one table.

    The table maps each domain member to its wire value; the way back is its inverse, so
    the two directions cannot disagree. A wire value absent from the table (``*_UNSPECIFIED``
    or one from a newer peer) reads as ``None`` or the given default. Each service's codec
    declares its own maps: the domain enums stay in the service's domain.
    """

    def __init__(self, proto: ProtoEnum[ProtoT], table: Mapping[DomainT, ProtoT]) -> None:
        self.proto = proto
        self._to_proto: dict[DomainT, ProtoT] = dict(table)
        self._from_proto: dict[int, DomainT] = {number: member for member, number in table.items()}
        if len(self._from_proto) != len(self._to_proto):
            raise ValueError("two domain values map to the same wire value")
        known = {number for _, number in proto.items()}
        strays = [member for member, number in table.items() if number not in known]
        if strays:
            raise ValueError(f"not values of the proto enum: {strays}")

    @property
    def table(self) -> Mapping[DomainT, ProtoT]:
        """Return the table, domain value to wire value (read only)."""
        return MappingProxyType(self._to_proto)

    def to_proto(self, member: DomainT) -> ProtoT:
        """Return the wire value of ``member`` (``KeyError`` when the table lacks it)."""
        return self._to_proto[member]

    @overload
    def from_proto(self, number: int) -> DomainT | None: ...

    @overload
    def from_proto(self, number: int, default: DomainT) -> DomainT: ...

    def from_proto(self, number: int, default: DomainT | None = None) -> DomainT | None:
        """Return the domain value of wire ``number``, ``default`` when the table lacks it."""
        return self._from_proto.get(number, default)

    def require(self, number: int) -> DomainT:
        """Return the domain value of wire ``number``; ``ValueError`` when the table lacks it."""
        member = self.from_proto(number)
        if member is None:
            raise ValueError(f"{number} is not a mapped wire value")
        return member

    def unmapped(self) -> list[str]:
        """Return the proto enum's names, except ``*_UNSPECIFIED``, that the table lacks."""
        return [
            name
            for name, number in self.proto.items()
            if not name.endswith("_UNSPECIFIED") and number not in self._from_proto
        ]


# The shared trading words on the wire (meshkit.vocabulary), one table each for every service.
SIDE = EnumMap(
    types_pb2.OrderSide,
    {Side.BUY: types_pb2.ORDER_SIDE_BUY, Side.SELL: types_pb2.ORDER_SIDE_SELL},
)
ORDER_TYPE = EnumMap(
    types_pb2.OrderType,
    {
        OrderType.MARKET: types_pb2.ORDER_TYPE_MARKET,
        OrderType.LIMIT: types_pb2.ORDER_TYPE_LIMIT,
        OrderType.STOP_MARKET: types_pb2.ORDER_TYPE_STOP_MARKET,
        OrderType.STOP_LIMIT: types_pb2.ORDER_TYPE_STOP_LIMIT,
    },
)
TIME_IN_FORCE = EnumMap(
    types_pb2.TimeInForce,
    {
        TimeInForce.GTC: types_pb2.TIME_IN_FORCE_GTC,
        TimeInForce.IOC: types_pb2.TIME_IN_FORCE_IOC,
        TimeInForce.FOK: types_pb2.TIME_IN_FORCE_FOK,
        TimeInForce.POST_ONLY: types_pb2.TIME_IN_FORCE_POST_ONLY,
    },
)
ORDER_STATUS = EnumMap(
    types_pb2.OrderStatus,
    {
        OrderStatus.OPEN: types_pb2.ORDER_STATUS_OPEN,
        OrderStatus.PARTIALLY_FILLED: types_pb2.ORDER_STATUS_PARTIALLY_FILLED,
        OrderStatus.FILLED: types_pb2.ORDER_STATUS_FILLED,
        OrderStatus.CANCELED: types_pb2.ORDER_STATUS_CANCELED,
        OrderStatus.EXPIRED: types_pb2.ORDER_STATUS_EXPIRED,
        OrderStatus.REJECTED: types_pb2.ORDER_STATUS_REJECTED,
        OrderStatus.UNKNOWN: types_pb2.ORDER_STATUS_UNKNOWN,
    },
)
