"""What the risk monitor reads: the configurations it watches and the fills they copied."""

from __future__ import annotations

from collections.abc import Collection
from decimal import Decimal

from engine_svc.domain.model import CopyConfig, CopyStatus, IntentState, Side
from engine_svc.store.rows import _CONFIG_COLUMNS, _config, _placeholders
from meshkit import db

_WITH_FILLS = (
    IntentState.PARTIALLY_FILLED,
    IntentState.FILLED,
    IntentState.CANCELED,
    IntentState.EXPIRED,
)
"""States in which an order may have filled (a cancelled or expired one partly)."""
_CHANGES_PER_QUERY = 200
"""Accounts per :meth:`RiskTable.intent_changes` statement (a subquery and a column each)."""
_NO_DAILY_LOSS = '%"max_daily_loss": null%'
"""Stored limits with no daily loss limit, as ``risk_limits_json`` writes them (a LIKE
pattern; its ``_`` match themselves too)."""


class RiskTable:
    """Reads of the configurations and intents for the daily loss monitor."""

    database: db.Database

    async def monitored_configs(self) -> list[CopyConfig]:
        """Return every configuration that copies now (active or reducing)."""
        copying = [CopyStatus.ACTIVE.value, CopyStatus.REDUCING.value]
        rows = await self.database.fetchall(
            f"SELECT {_CONFIG_COLUMNS} FROM copy_trading_configs"
            f" WHERE status IN ({_placeholders(len(copying))}) ORDER BY created_at, id",
            copying,
        )
        return [_config(row) for row in rows]

    async def daily_loss_configs(self) -> list[CopyConfig]:
        """Return the configurations that copy now (active or reducing) with a daily loss limit.

        Those whose stored limits say ``"max_daily_loss": null`` (what ``risk_limits_json``
        writes for none) are left out by the query, unread; any other row is read and kept
        when its limit is set.
        """
        copying = [CopyStatus.ACTIVE.value, CopyStatus.REDUCING.value]
        rows = await self.database.fetchall(
            f"SELECT {_CONFIG_COLUMNS} FROM copy_trading_configs"
            f" WHERE status IN ({_placeholders(len(copying))}) AND risk_limits NOT LIKE ?"
            " ORDER BY created_at, id",
            (*copying, _NO_DAILY_LOSS),
        )
        configs = map(_config, rows)
        return [c for c in configs if c.settings.risk_limits.max_daily_loss is not None]

    async def copied_fills(
        self, config_id: str, target_exchange_id: str
    ) -> list[tuple[str, Side, Decimal]]:
        """Return ``(symbol, side, filled quantity)`` of the config's orders at one account."""
        states = [state.value for state in _WITH_FILLS]
        rows = await self.database.fetchall(
            "SELECT symbol, side, filled_quantity FROM order_intents"
            " WHERE config_id = ? AND target_exchange_id = ?"
            f" AND state IN ({_placeholders(len(states))})",
            (config_id, target_exchange_id, *states),
        )
        return [
            (row["symbol"], Side(row["side"]), Decimal(row["filled_quantity"]))
            for row in rows
            if Decimal(row["filled_quantity"]) > 0
        ]

    async def intent_changes(self, target_exchange_ids: Collection[str]) -> dict[str, str]:
        """Return, per account, when an intent of it last changed (its fills move balances)."""
        # One MAX per account, each the last entry of (target_exchange_id, updated_at): a
        # search, where a GROUP BY over them all read every intent the accounts ever had.
        changes: dict[str, str] = {}
        wanted = sorted(target_exchange_ids)
        for first in range(0, len(wanted), _CHANGES_PER_QUERY):
            chunk = wanted[first : first + _CHANGES_PER_QUERY]
            row = await self.database.fetchone(
                "SELECT "
                + ", ".join(
                    f"(SELECT MAX(updated_at) FROM order_intents WHERE target_exchange_id = ?)"
                    f" AS c{index}"
                    for index in range(len(chunk))
                ),
                chunk,
            )
            for index, exchange_id in enumerate(chunk):
                changed = row[f"c{index}"] if row else None
                if changed is not None:
                    changes[exchange_id] = str(changed)
        return changes
