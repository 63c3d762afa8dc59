"""Reading Kraken request parameters, with the ``EGeneral:Invalid arguments:<name>`` replies."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from decimal import Decimal

from exchange_sim.kraken.errors import invalid_arguments

_DECIMAL_RE = re.compile(r"^[0-9]{1,20}(\.[0-9]{1,20})?$")
_INT_RE = re.compile(r"^-?[0-9]{1,20}$")
_TRUE = {"true", "True", "1"}
_FALSE = {"false", "False", "0"}


def opt_str(params: Mapping[str, str], name: str) -> str | None:
    """A parameter, with an empty string treated as absent."""
    value = params.get(name)
    return value if value not in (None, "") else None


def opt_decimal(params: Mapping[str, str], name: str) -> Decimal | None:
    """A non-negative plain decimal (``0.001``); anything else is invalid."""
    value = opt_str(params, name)
    if value is None:
        return None
    if not _DECIMAL_RE.match(value):
        raise invalid_arguments(name)
    return Decimal(value)


def opt_int(
    params: Mapping[str, str], name: str, low: int | None = None, high: int | None = None
) -> int | None:
    """An integer within ``[low, high]``."""
    value = opt_str(params, name)
    if value is None:
        return None
    if not _INT_RE.match(value):
        raise invalid_arguments(name)
    number = int(value)
    if (low is not None and number < low) or (high is not None and number > high):
        raise invalid_arguments(name)
    return number


def opt_bool(params: Mapping[str, str], name: str, default: bool) -> bool:
    """``true``/``false`` (ccxt sends Python's ``True``/``False``; ``1``/``0`` are accepted too)."""
    value = opt_str(params, name)
    if value is None:
        return default
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise invalid_arguments(name)


def opt_time_ms(
    params: Mapping[str, str], name: str, time_of_txid: Callable[[str], int | None]
) -> int | None:
    """A ``start`` / ``end`` bound: Unix seconds (decimals allowed) or a txid (its time is used)."""
    value = opt_str(params, name)
    if value is None:
        return None
    if _DECIMAL_RE.match(value):
        return int(Decimal(value) * 1000)
    found = time_of_txid(value)
    if found is None:
        raise invalid_arguments(name)
    return found


def decimal_places(value: Decimal) -> int:
    """How many decimals ``value`` is written with (``1.250`` has 3)."""
    exponent = value.as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


def comma_list(value: str) -> list[str]:
    """``a,b,c`` as a list, blanks dropped."""
    return [part.strip() for part in value.split(",") if part.strip()]
