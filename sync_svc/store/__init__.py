"""The sync service's storage (:class:`SyncStore`); SQL and row mapping live in its modules."""

from __future__ import annotations

from sync_svc.store.sync_store import SCHEMA_DIR, SyncStore

__all__ = ["SCHEMA_DIR", "SyncStore"]
