"""Parsing Binance request parameters into core types, with Binance's own error replies."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from enum import Enum
from typing import TypeVar
from urllib.parse import parse_qsl

from exchange_sim.binance.errors import BinanceError, bad_request, illegal_chars, mandatory

_DECIMAL_RE = re.compile(r"^([0-9]{1,20})(\.[0-9]{1,20})?$")
_INT_RE = re.compile(r"^-?[0-9]{1,20}$")
CLIENT_ORDER_ID_RE = re.compile(r"^[a-zA-Z0-9-_]{1,36}$")
E = TypeVar("E", bound=Enum)
T = TypeVar("T")


def parse_query(raw: str) -> dict[str, str]:
    """Decode ``a=1&b=2``; a repeated parameter is -1101 as on Binance."""
    params: dict[str, str] = {}
    for key, value in parse_qsl(raw, keep_blank_values=True):
        if key in params:
            raise bad_request(-1101, "Duplicate values for a parameter detected.")
        params[key] = value
    return params


def merge(query: Mapping[str, str], body: Mapping[str, str]) -> dict[str, str]:
    """Query and body parameters together; the query wins when both carry one (Binance rule)."""
    return {**body, **query}


def opt_str(params: Mapping[str, str], name: str) -> str | None:
    """A parameter, with empty strings treated as absent."""
    value = params.get(name)
    return value if value not in (None, "") else None


def req_str(params: Mapping[str, str], name: str) -> str:
    """A mandatory parameter (-1102 when missing)."""
    value = opt_str(params, name)
    if value is None:
        raise mandatory(name)
    return value


def opt_decimal(params: Mapping[str, str], name: str) -> Decimal | None:
    """A plain decimal (no sign, no exponent) or None; -1100 when malformed."""
    value = opt_str(params, name)
    if value is None:
        return None
    if not _DECIMAL_RE.match(value):
        raise illegal_chars(name, "^([0-9]{1,20})(\\.[0-9]{1,20})?$")
    return Decimal(value)


def opt_int(params: Mapping[str, str], name: str) -> int | None:
    """An integer or None; -1100 when malformed."""
    value = opt_str(params, name)
    if value is None:
        return None
    if not _INT_RE.match(value):
        raise illegal_chars(name, "^[0-9]{1,20}$")
    return int(value)


def opt_enum(
    params: Mapping[str, str], name: str, enum_type: type[E], error: BinanceError
) -> E | None:
    """An enum member by value, None when absent, ``error`` when unknown."""
    value = opt_str(params, name)
    if value is None:
        return None
    try:
        return enum_type(value)
    except ValueError:
        raise error from None


def limit_param(params: Mapping[str, str], default: int, maximum: int) -> int:
    """The ``limit`` parameter, defaulted and capped as Binance does."""
    limit = opt_int(params, "limit")
    if limit is None:
        return default
    if limit <= 0:
        raise illegal_chars("limit", f"1 - {maximum}")
    return min(limit, maximum)


def history_page(
    items: Sequence[T],
    params: Mapping[str, str],
    *,
    id_param: str,
    id_of: Callable[[T], int],
    time_of: Callable[[T], int],
    max_span_ms: int | None = None,
) -> list[T]:
    """Binance history paging: from an id or a start time oldest-first, else the most recent.

    ``limit`` defaults to 500, at most 1000. With ``max_span_ms`` (spot: 24 hours), both
    ``startTime`` and ``endTime`` may span at most that (-1127), as on Binance. Whether Binance
    also caps a lone ``startTime`` is unverified; the emulator does not, so clients should page
    by time themselves.
    """
    limit = limit_param(params, 500, 1000)
    from_id, start, end = (
        opt_int(params, id_param),
        opt_int(params, "startTime"),
        opt_int(params, "endTime"),
    )
    if (
        max_span_ms is not None
        and start is not None
        and end is not None
        and end - start > max_span_ms
    ):
        hours = max_span_ms // 3_600_000
        raise bad_request(-1127, f"More than {hours} hours between startTime and endTime.")
    chosen = [
        i
        for i in items
        if (start is None or time_of(i) >= start)
        and (end is None or time_of(i) <= end)
        and (from_id is None or id_of(i) >= from_id)
    ]
    if from_id is not None or start is not None:
        return chosen[:limit]
    return chosen[-limit:]
