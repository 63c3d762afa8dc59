"""The engine's tables: copy configurations, the signal inbox and the order intents.

The same SQL runs on SQLite and PostgreSQL through :mod:`meshkit.db`. Money is stored as
Decimal strings, times as fixed-width ISO text, settings as JSON text with decimals as strings.
Every state change of an intent is a compare-and-set on its current state, so two tasks can
never both send the same intent.

Modules: ``engine_store`` (the store, its schema in ``schema/``), ``configs``, ``inbox`` and
``intents`` (one table each), ``transaction`` (a signal's one transaction), ``rows`` (how
models become rows); JSON columns are written by :mod:`engine_svc.settings_json`.
"""

from __future__ import annotations

from engine_svc.store.engine_store import AUDIT_TABLE, SCHEMA_DIR, SERVICE, EngineStore
from engine_svc.store.transaction import SignalTransaction

__all__ = [
    "AUDIT_TABLE",
    "SCHEMA_DIR",
    "SERVICE",
    "EngineStore",
    "SignalTransaction",
]
