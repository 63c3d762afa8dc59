"""Pure conversions between wire types and Python values shared by every service.

Money is ``Decimal`` in Python and ``google.type.Decimal`` (a string) on the wire;
times are aware UTC ``datetime`` and ``google.protobuf.Timestamp``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

from google.protobuf import timestamp_pb2
from google.type import decimal_pb2

from meshkit.errors import invalid


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
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def utcnow() -> datetime:
    """Return the current time as an aware UTC datetime."""
    return datetime.now(UTC)
