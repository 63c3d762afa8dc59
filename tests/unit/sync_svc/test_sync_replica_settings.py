"""The replica settings of the sync service, and its lease tables as meshkit.leases defines them."""

from __future__ import annotations

import pytest

from meshkit.leases import SCHEMA_SQL
from meshkit.settings import ConfigError
from meshkit.testing import trust_env
from sync_svc.config import Settings
from sync_svc.store import SCHEMA_DIR


def test_replica_settings_default_and_read_from_the_environment() -> None:
    default = Settings.from_env(trust_env("sync"))
    assert (default.lease_ttl_ms, default.replica_id, default.signal_poll_ms) == (3000, "", 1000)
    given = Settings.from_env(
        {
            **trust_env("sync"),
            "LEASE_TTL_MS": "600",
            "REPLICA_ID": "sync-7d9f-abcde",
            "SIGNAL_POLL_MS": "250",
        }
    )
    assert (given.lease_ttl_ms, given.replica_id, given.signal_poll_ms) == (
        600,
        "sync-7d9f-abcde",
        250,
    )


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("LEASE_TTL_MS", "50"),
        ("LEASE_TTL_MS", "999999"),
        ("LEASE_TTL_MS", "3s"),
        ("SIGNAL_POLL_MS", "0"),
        ("SIGNAL_POLL_MS", "600000"),
    ],
)
def test_out_of_bounds_replica_settings_name_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({**trust_env("sync"), name: value})


def _statements(sql: str) -> list[str]:
    lines = [line for line in sql.splitlines() if not line.strip().startswith("--")]
    return [" ".join(part.split()) for part in "\n".join(lines).split(";") if part.strip()]


def test_the_lease_migration_creates_the_tables_meshkit_leases_uses() -> None:
    migration = (SCHEMA_DIR / "0003_leases.sql").read_text()
    assert _statements(migration) == _statements(SCHEMA_SQL.format(prefix="sync"))
