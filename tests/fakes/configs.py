"""A copy configuration for tests, the fields a test does not care about at neutral values."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

from engine_svc.domain.model import ConfigSettings, CopyConfig, CopyStatus, SourceKind


def copy_config(now: datetime, **changes: Any) -> CopyConfig:
    """Return an active configuration created and updated at ``now``, with ``changes`` applied.

    Unless changed: ``cfg`` of user ``u``, copying backtest ``src`` into account ``acct`` with
    default settings, never synced.
    """
    base = CopyConfig(
        config_id="cfg",
        user_id="u",
        source_kind=SourceKind.BACKTEST,
        source_id="src",
        target_exchange_ids=("acct",),
        settings=ConfigSettings(),
        status=CopyStatus.ACTIVE,
        status_reason="",
        start_sequence=0,
        last_sequence=0,
        sync_status="",
        last_sync_at=None,
        created_at=now,
        updated_at=now,
    )
    return dataclasses.replace(base, **changes)
