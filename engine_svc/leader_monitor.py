"""The leader outage monitor: a leader's venue unreadable for too long is an audit entry.

Sync says since when it cannot read a watched exchange source (``Source.down_since``: no
working fill stream and the last poll failed; :mod:`sync_svc.exchange_sync`). Every
``LEADER_MONITOR_INTERVAL_MS`` the monitor reads that for each exchange source copied by a
configuration that copies now (active or reducing), and:

- when the source has been down ``LEADER_DOWN_ALERT_MS`` or longer, writes
  ``leader_stream_down`` to each such configuration's audit trail (its owner's; the gateway's
  webhooks send it as ``leader.stream_down``);
- when it reads again, writes ``leader_stream_up`` to each configuration alerted.

Once per outage and configuration: an open alert is a row of ``leader_stream_alerts``, inserted
(or deleted) in the transaction that writes the entry, so neither a restart nor two replicas
write it twice. Only the replica holding a source's lease reads it (one ``GetSource`` per source
and round). A follower of a published leader sees the leader's id, never its account.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from engine_svc.domain.model import CopyConfig, SourceKind
from engine_svc.ports import Clock, LeaderAlertStore, Ownership, Source, SyncPort
from meshkit.audit import AuditEvent
from meshkit.codec import to_iso
from meshkit.tasks import run_every

log = logging.getLogger(__name__)

DOWN = "leader_stream_down"
UP = "leader_stream_up"


def _leader(config: CopyConfig) -> dict[str, str]:
    # What names the leader in the follower's trail: a published leader's id, or the source.
    if config.leader_id:
        return {"leader_id": config.leader_id}
    return {"source_id": config.source_id}


def _error(config: CopyConfig, last_error: str) -> str:
    # A published leader's venue words are not the follower's to read: its reason only.
    return last_error.split(":", 1)[0] if config.leader_id else last_error


class LeaderMonitor:
    """Turns long leader outages into ``leader_stream_down`` / ``leader_stream_up`` entries."""

    def __init__(
        self,
        store: LeaderAlertStore,
        sync: SyncPort,
        clock: Clock,
        ownership: Ownership | None = None,
        *,
        interval_seconds: float = 5.0,
        threshold_seconds: float = 60.0,
    ) -> None:
        self._store = store
        self._sync = sync
        self._clock = clock
        self._ownership = ownership
        self._interval = interval_seconds
        self._threshold = timedelta(seconds=threshold_seconds)

    async def run(self) -> None:
        """Check every copied leader about once per interval, until cancelled."""
        await run_every(self.round, self._interval, "leader monitor")

    def _holds(self, source_id: str) -> bool:
        return self._ownership is None or self._ownership.token(source_id) is not None

    async def round(self) -> list[tuple[str, str]]:
        """Check once; return the ``(config_id, action)`` entries written."""
        alerts = await self._store.open_leader_alerts()
        configs = {c.config_id: c for c in await self._store.monitored_configs()}
        for config_id in alerts.keys() - configs.keys():
            # No longer copying (paused, stopped, halted): its alert still ends with the outage.
            found = await self._store.get_config(config_id)
            if found is not None:
                configs[config_id] = found
        by_source: dict[str, list[CopyConfig]] = {}
        for config in configs.values():
            if config.source_kind is SourceKind.EXCHANGE and self._holds(config.source_id):
                by_source.setdefault(config.source_id, []).append(config)
        written: list[tuple[str, str]] = []
        for source_id, copying in by_source.items():
            try:
                source = await self._sync.get_source(source_id)
            except Exception as e:  # unknown state: decide nothing this round
                log.info("source %s unreadable: %s", source_id, getattr(e, "message", e))
                continue
            for config in copying:
                action = await self._judge(config, source, config.config_id in alerts)
                if action:
                    written.append((config.config_id, action))
        return written

    async def _judge(self, config: CopyConfig, source: Source, alerted: bool) -> str:
        now = self._clock.now()
        down_since = source.down_since
        if down_since is not None and not alerted:
            if not config.is_active or now - down_since < self._threshold:
                return ""
            after = {
                **_leader(config),
                "down_since": to_iso(down_since),
                "down_seconds": int((now - down_since).total_seconds()),
                "last_error": _error(config, source.last_error),
            }
            event = AuditEvent(config.user_id, "copy_config", config.config_id, DOWN, None, after)
            if await self._store.open_leader_alert(
                config.config_id, source.source_id, down_since, now, audit=event
            ):
                log.warning("leader of %s unreadable since %s", config, to_iso(down_since))
                return DOWN
            return ""
        if down_since is None and alerted:
            event = AuditEvent(
                config.user_id,
                "copy_config",
                config.config_id,
                UP,
                None,
                {**_leader(config), "up_at": to_iso(now)},
            )
            if await self._store.close_leader_alert(config.config_id, now, audit=event):
                log.info("leader of %s readable again", config)
                return UP
        return ""
