"""Pure checks of what callers send: every problem is reported with the JSON path of its field.

Nothing here raises for bad input; each check returns the violations it found so that a
whole request is judged before anything is written.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

from sync_svc.domain.model import (
    DEFAULT_MAX_RETRIES,
    DEFAULT_SYNC_INTERVAL,
    DEFAULT_TIMEOUT,
    OrderType,
    Side,
    SyncSettings,
    TimeInForce,
)

MAX_NAME_LENGTH = 200
MAX_ID_LENGTH = 200
MAX_SIGNALS_PER_PUBLISH = 1000
SYNC_INTERVAL_RANGE = (1, 3600)
MAX_RETRIES_RANGE = (0, 20)
TIMEOUT_RANGE = (1, 300)

_SYMBOL = re.compile(
    r"^[A-Z0-9][A-Z0-9._-]{0,29}/[A-Z0-9][A-Z0-9._-]{0,29}(:[A-Z0-9][A-Z0-9._-]{0,29})?$"
)
"""A ccxt unified symbol: ``BTC/USDT``, or a perpetual with its settle asset ``BTC/USDT:USDT``."""


@dataclass(frozen=True)
class Violation:
    """One bad field: its JSON path and what is wrong with it."""

    field: str
    description: str


@dataclass(frozen=True)
class RawPublishedSignal:
    """A published strategy trade as the caller wrote it (decimals still text)."""

    signal_id: str
    symbol: str
    side: str
    quantity: str
    price: str
    order_type: str
    time_in_force: str
    portfolio_fraction: str
    stop_price: str = ""


@dataclass(frozen=True)
class PublishedSignal:
    """A checked strategy trade."""

    signal_id: str
    symbol: str
    side: Side
    quantity: Decimal
    price: Decimal | None
    order_type: OrderType
    time_in_force: TimeInForce | None
    portfolio_fraction: Decimal | None
    stop_price: Decimal | None = None


_TIME_IN_FORCE_OF: dict[OrderType, tuple[TimeInForce, ...]] = {
    OrderType.MARKET: (),
    OrderType.LIMIT: tuple(TimeInForce),
    OrderType.STOP_MARKET: (),
    OrderType.STOP_LIMIT: (TimeInForce.GTC, TimeInForce.IOC, TimeInForce.FOK),
}
"""The time-in-force values a published order of each type may carry (no venue takes a
post-only stop); which of them a follower venue takes is the broker's to say."""


def is_uuid(text: str) -> bool:
    """Return whether ``text`` is a UUID in its canonical 36-character form."""
    try:
        return str(uuid.UUID(text)) == text.lower() and len(text) == 36
    except ValueError:
        return False


def check_id(value: str, field: str, *, required: bool = True) -> list[Violation]:
    """Check that ``value`` is a UUID (or empty when not ``required``)."""
    if not value:
        return [Violation(field, "is required")] if required else []
    if not is_uuid(value):
        return [Violation(field, "must be a UUID")]
    return []


def parse_decimal(
    raw: str,
    field: str,
    violations: list[Violation],
    *,
    required: bool = False,
) -> Decimal | None:
    """Parse a decimal written as text, recording a violation when it is missing or malformed."""
    text = raw.strip()
    if not text:
        if required:
            violations.append(Violation(field, "is required"))
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        violations.append(Violation(field, f"is not a decimal number: {text[:40]!r}"))
        return None
    if not value.is_finite():
        violations.append(Violation(field, "must be a finite number"))
        return None
    return value


def check_backtest(name: str, equity: str) -> tuple[str, Decimal | None, list[Violation]]:
    """Check a new strategy's name and optional equity; return them cleaned with violations."""
    violations: list[Violation] = []
    clean_name = name.strip()
    if not clean_name:
        violations.append(Violation("name", "is required"))
    elif len(clean_name) > MAX_NAME_LENGTH:
        violations.append(Violation("name", f"must be at most {MAX_NAME_LENGTH} characters"))
    value = parse_decimal(equity, "equity", violations)
    if value is not None and value <= 0:
        violations.append(Violation("equity", "must be greater than 0"))
    return clean_name, value, violations


def check_request_id(request_id: str, field: str = "request_id") -> list[Violation]:
    """Check an idempotency key: optional, at most 200 characters."""
    if len(request_id) > MAX_ID_LENGTH:
        return [Violation(field, f"must be at most {MAX_ID_LENGTH} characters")]
    return []


def _choice(
    raw: str,
    field: str,
    kind: type[StrEnum],
    violations: list[Violation],
    required: bool,
) -> Any:
    text = raw.strip().lower()
    if not text:
        if required:
            violations.append(Violation(field, "is required"))
        return None
    try:
        return kind(text)
    except ValueError:
        allowed = " or ".join(repr(member.value) for member in kind)
        violations.append(Violation(field, f"must be {allowed}"))
        return None


def check_published_signal(
    index: int,
    raw: RawPublishedSignal,
) -> tuple[PublishedSignal | None, list[Violation]]:
    """Check one published trade; field paths look like ``signals[2].quantity``."""
    prefix = f"signals[{index}]"
    violations: list[Violation] = []
    signal_id = raw.signal_id.strip()
    if not signal_id:
        violations.append(Violation(f"{prefix}.signal_id", "is required"))
    elif len(signal_id) > MAX_ID_LENGTH:
        violations.append(
            Violation(f"{prefix}.signal_id", f"must be at most {MAX_ID_LENGTH} characters"),
        )
    symbol = raw.symbol.strip().upper()
    if not symbol:
        violations.append(Violation(f"{prefix}.symbol", "is required"))
    elif not _SYMBOL.match(symbol):
        violations.append(
            Violation(
                f"{prefix}.symbol", "must look like BASE/QUOTE or BASE/QUOTE:SETTLE, e.g. BTC/USDT"
            )
        )
    side = _choice(raw.side, f"{prefix}.side", Side, violations, True)
    quantity = parse_decimal(raw.quantity, f"{prefix}.quantity", violations, required=True)
    if quantity is not None and quantity <= 0:
        violations.append(Violation(f"{prefix}.quantity", "must be greater than 0"))
    price = parse_decimal(raw.price, f"{prefix}.price", violations)
    if price is not None and price <= 0:
        violations.append(Violation(f"{prefix}.price", "must be greater than 0"))
    order_type = _choice(raw.order_type, f"{prefix}.order_type", OrderType, violations, True)
    if order_type is not None and order_type.has_limit_price and not raw.price.strip():
        violations.append(
            Violation(f"{prefix}.price", f"is required for a {order_type.value} order")
        )
    stop_price = parse_decimal(raw.stop_price, f"{prefix}.stop_price", violations)
    if stop_price is not None and stop_price <= 0:
        violations.append(Violation(f"{prefix}.stop_price", "must be greater than 0"))
    if order_type is not None and order_type.has_stop_price:
        if stop_price is None and not raw.stop_price.strip():
            violations.append(
                Violation(f"{prefix}.stop_price", f"is required for a {order_type.value} order")
            )
    elif order_type is not None and raw.stop_price.strip():
        violations.append(Violation(f"{prefix}.stop_price", "is only for stop orders"))
    time_in_force = _choice(
        raw.time_in_force,
        f"{prefix}.time_in_force",
        TimeInForce,
        violations,
        False,
    )
    if order_type is not None and time_in_force is not None:
        allowed = _TIME_IN_FORCE_OF[order_type]
        if time_in_force not in allowed:
            violations.append(
                Violation(
                    f"{prefix}.time_in_force",
                    f"a {order_type.value} order takes no time in force"
                    if not allowed
                    else f"a {order_type.value} order takes "
                    + " or ".join(repr(t.value) for t in allowed),
                )
            )
    fraction = parse_decimal(raw.portfolio_fraction, f"{prefix}.portfolio_fraction", violations)
    if fraction is not None and not 0 < fraction <= 1:
        violations.append(
            Violation(f"{prefix}.portfolio_fraction", "must be greater than 0 and at most 1"),
        )
    if violations or side is None or quantity is None or order_type is None:
        return None, violations
    return PublishedSignal(
        signal_id=signal_id,
        symbol=symbol,
        side=side,
        quantity=quantity,
        price=price,
        order_type=order_type,
        time_in_force=time_in_force,
        portfolio_fraction=fraction,
        stop_price=stop_price,
    ), []


def check_published_signals(
    raws: list[RawPublishedSignal],
) -> tuple[list[PublishedSignal], list[Violation]]:
    """Check a whole publish request; any violation means none of it may be written."""
    if not raws:
        return [], [Violation("signals", "must hold at least one signal")]
    if len(raws) > MAX_SIGNALS_PER_PUBLISH:
        return [], [Violation("signals", f"must hold at most {MAX_SIGNALS_PER_PUBLISH} signals")]
    checked: list[PublishedSignal] = []
    violations: list[Violation] = []
    for index, raw in enumerate(raws):
        signal, problems = check_published_signal(index, raw)
        violations.extend(problems)
        if signal is not None:
            checked.append(signal)
    return (checked, []) if not violations else ([], violations)


def _ranged(
    value: int,
    default: int,
    bounds: tuple[int, int],
    field: str,
    violations: list[Violation],
    *,
    zero_is_default: bool = True,
) -> int:
    if value == 0 and zero_is_default:
        return default
    low, high = bounds
    if not low <= value <= high:
        violations.append(Violation(field, f"must be between {low} and {high}"))
    return value


def check_sync_settings(
    sync_interval: int,
    max_retries: int,
    timeout: int,
    enable_websocket: bool | None,
    enable_polling: bool | None,
    prefix: str = "sync_settings",
) -> tuple[SyncSettings, list[Violation]]:
    """Check sync settings and fill in what was left out.

    Zeros take the defaults (interval 5 s, 3 retries, timeout 10 s): the wire cannot tell an
    explicit 0 from an unset field. An unset flag (``None``) is true. Turning both the stream and
    polling off is refused: the source would never be read.
    """
    violations: list[Violation] = []
    interval = _ranged(
        sync_interval,
        DEFAULT_SYNC_INTERVAL,
        SYNC_INTERVAL_RANGE,
        f"{prefix}.sync_interval",
        violations,
    )
    retries = _ranged(
        max_retries,
        DEFAULT_MAX_RETRIES,
        MAX_RETRIES_RANGE,
        f"{prefix}.max_retries",
        violations,
    )
    seconds = _ranged(timeout, DEFAULT_TIMEOUT, TIMEOUT_RANGE, f"{prefix}.timeout", violations)
    websocket = True if enable_websocket is None else enable_websocket
    polling = True if enable_polling is None else enable_polling
    if not websocket and not polling:
        violations.append(
            Violation(
                f"{prefix}.enable_polling",
                "must be true when enable_websocket is false (the source would never be read)",
            )
        )
    settings = SyncSettings(
        sync_interval=interval,
        max_retries=retries,
        timeout=seconds,
        enable_websocket=websocket,
        enable_polling=polling,
    )
    return settings, violations
