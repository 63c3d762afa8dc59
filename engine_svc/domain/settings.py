"""Settings of a copy configuration: defaults, validation and partial updates (pure).

Violations name the JSON path a REST user sent (``risk_limits.max_slippage``), so the caller
can turn them into one ``INVALID_ARGUMENT`` that points at every bad field at once.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from engine_svc.domain.ids import is_uuid
from engine_svc.domain.model import (
    COPY_MODES,
    DAILY_LOSS_ACTIONS,
    DEFAULT_COPY_MODE,
    DEFAULT_DAILY_LOSS_ACTION,
    DEFAULT_FUTURES_SIZING,
    DEFAULT_MAX_ORDERS_PER_MINUTE,
    DEFAULT_MAX_SIGNAL_AGE_SECONDS,
    DEFAULT_SYNC_INTERVAL,
    DEFAULT_SYNC_TIMEOUT,
    FUTURES_SIZINGS,
    MARGIN_SIZING_MODES,
    SIZING_MODES,
    ConfigSettings,
    CopySettings,
    RiskLimits,
    SyncSettings,
)

MAX_SYMBOLS = 1000
MAX_SIGNAL_AGE_LIMIT = 86_400
MAX_ORDERS_PER_MINUTE_LIMIT = 6_000
MAX_MULTIPLIER = Decimal(100)
_SYMBOL = re.compile(r"^[A-Z0-9][A-Z0-9._-]{0,31}/[A-Z0-9][A-Z0-9._-]{0,31}(:[A-Z0-9]{1,32})?$")
_MODE_PARAMETER = {
    "multiplier": "multiplier",
    "fixed_notional": "fixed_notional",
    "fixed_quantity": "fixed_quantity",
}
SECTIONS: dict[str, type] = {
    "risk_limits": RiskLimits,
    "copy_settings": CopySettings,
    "sync_settings": SyncSettings,
}


@dataclass(frozen=True)
class Violation:
    """One bad field: its JSON path and what is wrong with it."""

    field: str
    description: str


def is_symbol(text: str) -> bool:
    """Return whether ``text`` is a ccxt unified symbol such as ``BTC/USDT``."""
    return bool(_SYMBOL.match(text))


def normalized(settings: ConfigSettings) -> ConfigSettings:
    """Return ``settings`` with the wire's zero values replaced by their defaults.

    ``copy_settings.max_signal_age_seconds`` 0 means 60, ``risk_limits.max_orders_per_minute``
    0 means 60, an empty ``risk_limits.daily_loss_action`` means ``reduce_only``,
    ``sync_settings.sync_interval`` 0 means 5 and ``sync_settings.timeout`` 0 means
    30; an empty sizing mode means ``equity_ratio``, an empty copy mode ``fills`` and an empty
    futures sizing ``notional``.
    """
    copy = settings.copy_settings
    sync = settings.sync_settings
    limits = settings.risk_limits
    if limits.max_orders_per_minute == 0:
        limits = dataclasses.replace(limits, max_orders_per_minute=DEFAULT_MAX_ORDERS_PER_MINUTE)
    if not limits.daily_loss_action:
        limits = dataclasses.replace(limits, daily_loss_action=DEFAULT_DAILY_LOSS_ACTION)
    if copy.max_signal_age_seconds == 0:
        copy = dataclasses.replace(copy, max_signal_age_seconds=DEFAULT_MAX_SIGNAL_AGE_SECONDS)
    if not copy.sizing_mode:
        copy = dataclasses.replace(copy, sizing_mode="equity_ratio")
    if not copy.copy_mode:
        copy = dataclasses.replace(copy, copy_mode=DEFAULT_COPY_MODE)
    if not copy.futures_sizing:
        copy = dataclasses.replace(copy, futures_sizing=DEFAULT_FUTURES_SIZING)
    if sync.sync_interval == 0:
        sync = dataclasses.replace(sync, sync_interval=DEFAULT_SYNC_INTERVAL)
    if sync.timeout == 0:
        sync = dataclasses.replace(sync, timeout=DEFAULT_SYNC_TIMEOUT)
    return dataclasses.replace(settings, risk_limits=limits, copy_settings=copy, sync_settings=sync)


def _fraction(
    value: Decimal | None,
    path: str,
    *,
    zero_ok: bool,
    one_ok: bool,
) -> list[Violation]:
    if value is None:
        return []
    low_ok = value >= 0 if zero_ok else value > 0
    high_ok = value <= 1 if one_ok else value < 1
    if low_ok and high_ok:
        return []
    low = "[0" if zero_ok else "(0"
    high = "1]" if one_ok else "1)"
    return [Violation(path, f"must be a fraction in {low}, {high}, got {value}")]


MIN_LEVERAGE = 1
MAX_LEVERAGE_LIMIT = 125
"""The range of ``risk_limits.max_leverage`` (Binance USDⓈ-M's own range)."""


def validate_risk_limits(limits: RiskLimits, prefix: str = "risk_limits") -> list[Violation]:
    """Return the violations of ``limits`` (normalized): fractions in range, a sane order rate."""
    found = [
        *_fraction(
            limits.max_position_size, f"{prefix}.max_position_size", zero_ok=False, one_ok=True
        ),
        *_fraction(limits.max_daily_loss, f"{prefix}.max_daily_loss", zero_ok=False, one_ok=True),
        *_fraction(limits.max_slippage, f"{prefix}.max_slippage", zero_ok=True, one_ok=False),
        *_fraction(
            limits.correlation_limit, f"{prefix}.correlation_limit", zero_ok=True, one_ok=True
        ),
    ]
    leverage = limits.max_leverage
    if leverage is not None and not MIN_LEVERAGE <= leverage <= MAX_LEVERAGE_LIMIT:
        found.append(
            Violation(
                f"{prefix}.max_leverage",
                f"must be between {MIN_LEVERAGE} and {MAX_LEVERAGE_LIMIT}, got {leverage}",
            )
        )
    rate = limits.max_orders_per_minute
    if not 1 <= rate <= MAX_ORDERS_PER_MINUTE_LIMIT:
        found.append(
            Violation(
                f"{prefix}.max_orders_per_minute",
                f"must be between 1 and {MAX_ORDERS_PER_MINUTE_LIMIT}"
                f" (0 means {DEFAULT_MAX_ORDERS_PER_MINUTE}), got {rate}",
            )
        )
    if limits.daily_loss_action not in DAILY_LOSS_ACTIONS:
        found.append(
            Violation(
                f"{prefix}.daily_loss_action",
                f"must be one of {', '.join(DAILY_LOSS_ACTIONS)}, got {limits.daily_loss_action!r}",
            )
        )
    return found


def _symbols(symbols: tuple[str, ...], path: str) -> list[Violation]:
    if len(symbols) > MAX_SYMBOLS:
        return [Violation(path, f"must list at most {MAX_SYMBOLS} symbols")]
    return [
        Violation(f"{path}[{i}]", f"must be a unified symbol like BTC/USDT, got {symbol!r}")
        for i, symbol in enumerate(symbols)
        if not is_symbol(symbol)
    ]


def validate_copy_settings(copy: CopySettings, prefix: str = "copy_settings") -> list[Violation]:
    """Return the violations of ``copy`` (already normalized)."""
    found: list[Violation] = []
    for name in ("min_trade_size", "max_trade_size"):
        value = getattr(copy, name)
        if value is not None and value < 0:
            found.append(Violation(f"{prefix}.{name}", f"must be at least 0, got {value}"))
    low, high = copy.min_trade_size, copy.max_trade_size
    if low is not None and high is not None and low >= 0 and high >= 0 and low > high:
        found.append(
            Violation(
                f"{prefix}.min_trade_size",
                f"must not exceed {prefix}.max_trade_size ({high}), got {low}",
            )
        )
    found += _symbols(copy.exclude_symbols, f"{prefix}.exclude_symbols")
    found += _symbols(copy.include_symbols, f"{prefix}.include_symbols")
    if copy.copy_mode not in COPY_MODES:
        found.append(
            Violation(
                f"{prefix}.copy_mode",
                f"must be one of {', '.join(COPY_MODES)}, got {copy.copy_mode!r}",
            )
        )
    if copy.futures_sizing not in FUTURES_SIZINGS:
        found.append(
            Violation(
                f"{prefix}.futures_sizing",
                f"must be one of {', '.join(FUTURES_SIZINGS)}, got {copy.futures_sizing!r}",
            )
        )
    elif copy.futures_sizing == "margin" and copy.sizing_mode not in MARGIN_SIZING_MODES:
        found.append(
            Violation(
                f"{prefix}.futures_sizing",
                f"margin scales the leader's margin: it needs sizing_mode "
                f"{' or '.join(MARGIN_SIZING_MODES)}, got {copy.sizing_mode!r}",
            )
        )
    if copy.sizing_mode not in SIZING_MODES:
        found.append(
            Violation(
                f"{prefix}.sizing_mode",
                f"must be one of {', '.join(SIZING_MODES)}, got {copy.sizing_mode!r}",
            )
        )
    for name in ("multiplier", "fixed_notional", "fixed_quantity"):
        value = getattr(copy, name)
        if value is not None and value <= 0:
            found.append(Violation(f"{prefix}.{name}", f"must be greater than 0, got {value}"))
    if copy.multiplier is not None and copy.multiplier > MAX_MULTIPLIER:
        found.append(
            Violation(
                f"{prefix}.multiplier",
                f"must be at most {MAX_MULTIPLIER} (a guard against typos), got {copy.multiplier}",
            )
        )
    parameter = _MODE_PARAMETER.get(copy.sizing_mode)
    if parameter is not None and getattr(copy, parameter) is None:
        found.append(
            Violation(
                f"{prefix}.{parameter}",
                f"is required when sizing_mode is {copy.sizing_mode}",
            )
        )
    if len(copy.symbol_map) > MAX_SYMBOLS:
        found.append(Violation(f"{prefix}.symbol_map", f"must map at most {MAX_SYMBOLS} symbols"))
    else:
        for leader, follower in copy.symbol_map.items():
            if not is_symbol(leader):
                found.append(
                    Violation(
                        f"{prefix}.symbol_map[{leader}]",
                        "the key must be a unified symbol like BTC/USDT",
                    )
                )
            elif not is_symbol(follower):
                found.append(
                    Violation(
                        f"{prefix}.symbol_map[{leader}]",
                        f"must be a unified symbol like BTC/USD, got {follower!r}",
                    )
                )
    age = copy.max_signal_age_seconds
    if not 1 <= age <= MAX_SIGNAL_AGE_LIMIT:
        found.append(
            Violation(
                f"{prefix}.max_signal_age_seconds",
                f"must be between 1 and {MAX_SIGNAL_AGE_LIMIT}"
                f" (0 means {DEFAULT_MAX_SIGNAL_AGE_SECONDS}),"
                f" got {age}",
            )
        )
    return found


def validate_sync_settings(sync: SyncSettings, prefix: str = "sync_settings") -> list[Violation]:
    """Return the violations of ``sync`` (already normalized)."""
    found: list[Violation] = []
    if not 1 <= sync.sync_interval <= 3600:
        found.append(
            Violation(
                f"{prefix}.sync_interval",
                f"must be between 1 and 3600 seconds (0 means {DEFAULT_SYNC_INTERVAL}),"
                f" got {sync.sync_interval}",
            )
        )
    if not 0 <= sync.max_retries <= 20:
        found.append(
            Violation(
                f"{prefix}.max_retries",
                f"must be between 0 and 20, got {sync.max_retries}",
            )
        )
    if not 1 <= sync.timeout <= 300:
        found.append(
            Violation(
                f"{prefix}.timeout",
                f"must be between 1 and 300 seconds (0 means {DEFAULT_SYNC_TIMEOUT}),"
                f" got {sync.timeout}",
            )
        )
    return found


def validate(settings: ConfigSettings) -> list[Violation]:
    """Return every violation of ``settings`` (normalize first)."""
    return [
        *validate_risk_limits(settings.risk_limits),
        *validate_copy_settings(settings.copy_settings),
        *validate_sync_settings(settings.sync_settings),
    ]


def known_update_paths() -> frozenset[str]:
    """Return the paths an update mask may name: a whole group or one of its fields."""
    paths = set(SECTIONS)
    for section, cls in SECTIONS.items():
        paths.update(f"{section}.{f.name}" for f in dataclasses.fields(cls))
    return frozenset(paths)


def unknown_update_paths(paths: list[str]) -> list[str]:
    """Return the paths of an update mask that name nothing."""
    known = known_update_paths()
    return [path for path in paths if path not in known]


def apply_update(current: ConfigSettings, changes: Mapping[str, Any]) -> ConfigSettings:
    """Return ``current`` with ``changes`` applied (not yet normalized or validated).

    Parameters
    ----------
    current
        The settings stored now.
    changes
        Path to new value: a group path (``copy_settings``) maps to a whole new group, a field
        path (``risk_limits.max_slippage``) to the field's new value. Whole groups apply first,
        so a field path refines a group replaced in the same update.

    Raises
    ------
    KeyError
        When a path names nothing (check with :func:`unknown_update_paths` first).
    """
    sections = {name: getattr(current, name) for name in SECTIONS}
    for path, value in changes.items():
        if "." not in path:
            if path not in SECTIONS:
                raise KeyError(path)
            sections[path] = value
    for path, value in changes.items():
        if "." in path:
            section, name = path.split(".", 1)
            if section not in SECTIONS or name not in {
                f.name for f in dataclasses.fields(SECTIONS[section])
            }:
                raise KeyError(path)
            sections[section] = dataclasses.replace(sections[section], **{name: value})
    return ConfigSettings(**sections)


MAX_TARGETS = 20


def validate_start(
    source_backtest_id: str,
    source_exchange_id: str,
    target_exchange_ids: list[str],
) -> list[Violation]:
    """Return the violations of a start request's source and targets.

    Exactly one source; at least one target; every id a UUID; no target twice; no target
    equal to the source.
    """
    found: list[Violation] = []
    if source_backtest_id and source_exchange_id:
        found.append(
            Violation(
                "source_backtest_id",
                "give source_backtest_id or source_exchange_id, not both",
            )
        )
    elif not source_backtest_id and not source_exchange_id:
        found.append(
            Violation(
                "source_exchange_id",
                "one of source_exchange_id or source_backtest_id is required",
            )
        )
    for name, value in (
        ("source_backtest_id", source_backtest_id),
        ("source_exchange_id", source_exchange_id),
    ):
        if value and not is_uuid(value):
            found.append(Violation(name, f"must be a UUID, got {value!r}"))
    if not target_exchange_ids:
        found.append(Violation("target_exchange_ids", "at least one target account is required"))
    elif len(target_exchange_ids) > MAX_TARGETS:
        found.append(Violation("target_exchange_ids", f"at most {MAX_TARGETS} target accounts"))
    seen: dict[str, int] = {}
    source = source_exchange_id or source_backtest_id
    for i, target in enumerate(target_exchange_ids):
        path = f"target_exchange_ids[{i}]"
        if not is_uuid(target):
            found.append(Violation(path, f"must be a UUID, got {target!r}"))
        elif target in seen:
            found.append(Violation(path, f"repeats target_exchange_ids[{seen[target]}]"))
        elif source and target == source:
            found.append(Violation(path, "is the source account; a follower cannot copy itself"))
        seen.setdefault(target, i)
    return found
