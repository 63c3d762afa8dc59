"""Use-cases of copy configurations: start, stop, pause, resume, status, update, kill switch.

Every operation on an existing configuration checks that the caller owns it: another user's
configuration is NOT_FOUND, exactly like one that does not exist.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import builtins
import contextlib
import functools
import json
import logging
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from engine_svc.copy import Copier
from engine_svc.domain import intents as rules
from engine_svc.domain import leaders as leader_rules
from engine_svc.domain import loops, performance, risk
from engine_svc.domain import settings as rules_settings
from engine_svc.domain import status as transitions
from engine_svc.domain.ids import is_uuid
from engine_svc.domain.leaders import Leader
from engine_svc.domain.model import (
    AssetBalance,
    ConfigSettings,
    CopyConfig,
    CopyStatus,
    DailyRisk,
    Holding,
    Intent,
    Portfolio,
    SkipReason,
    SourceKind,
    SyncSettings,
    VenuePosition,
)
from engine_svc.ports import (
    BrokerPort,
    Clock,
    CopyGraphCheck,
    EngineStorePort,
    Source,
    SyncPort,
)
from engine_svc.risk_monitor import Valuations
from engine_svc.settings_json import (
    copy_settings_json,
    risk_limits_json,
    sync_settings_json,
)
from meshkit import audit, errors
from meshkit.audit import AuditEntry, AuditEvent
from meshkit.codec import from_iso, to_iso
from meshkit.errors import FieldViolation

log = logging.getLogger("engine_svc.configs")

RECENT_ORDERS = 20
SETTLED_AFTER = timedelta(seconds=10)
"""An intent in a terminal state this long after it was written is folded into the kept
ledger of its configuration (no intent is written with a time that much in the past)."""
SETTLED_CONFIGS = 10_000
"""The most configurations whose settled ledger is kept (least recently read dropped)."""
DEFAULT_PAGE_SIZE = 500
MAX_PAGE_SIZE = 5000
_CAS_ATTEMPTS = 8


def _invalid(found: list[rules_settings.Violation]) -> errors.InvalidArgument:
    return errors.InvalidArgument([FieldViolation(v.field, v.description) for v in found])


def _refuse_loop_targets(
    configs: Sequence[loops.CopyEdge], source_id: str, targets: list[str], without: str = ""
) -> None:
    # Copying ``source_id`` into a target from which the source is copied again (by any
    # user, through any accounts) would copy each copy back without end: a 400 naming the
    # target, and nothing of the accounts the loop runs through (another user's).
    closing = loops.loop_targets(loops.copy_edges(configs, without=without), source_id, targets)
    if closing:
        raise _invalid(
            [
                rules_settings.Violation(f"target_exchange_ids[{i}]", loops.LOOP_DESCRIPTION)
                for i in closing
            ]
        )


def _loop_check(source_id: str, targets: list[str], *, without: str = "") -> CopyGraphCheck:
    # The copy loop check as the store runs it inside the write, on every configuration
    # committed (every replica's): the check before the write only refuses early.
    return functools.partial(
        _refuse_loop_targets, source_id=source_id, targets=targets, without=without
    )


AUDIT_OBJECT = "copy_config"
LEADER_AUDIT_OBJECT = "published_leader"


def _validate_source(command: StartCopy) -> list[rules_settings.Violation]:
    # Exactly one source: a strategy, an own account, or a published leader.
    if not command.source_leader_id:
        return rules_settings.validate_start(
            command.source_backtest_id, command.source_exchange_id, command.target_exchange_ids
        )
    found = rules_settings.validate_start("", command.source_leader_id, command.target_exchange_ids)
    found = [
        rules_settings.Violation("source_leader_id", v.description)
        if v.field == "source_exchange_id"
        else v
        for v in found
        if not v.field.startswith("target_exchange_ids") or "source" not in v.description
    ]
    if command.source_backtest_id or command.source_exchange_id:
        found.append(
            rules_settings.Violation(
                "source_leader_id",
                "give one of source_leader_id, source_exchange_id or source_backtest_id",
            )
        )
    return found


def _leader_view(leader: Leader) -> dict[str, Any]:
    return {
        "exchange_id": leader.exchange_id,
        "exchange_name": leader.exchange_name,
        "display_name": leader.display_name,
    }


def _settings_view(settings: ConfigSettings) -> dict[str, Any]:
    return {
        "risk_limits": json.loads(risk_limits_json(settings.risk_limits)),
        "copy_settings": json.loads(copy_settings_json(settings.copy_settings)),
        "sync_settings": json.loads(sync_settings_json(settings.sync_settings)),
    }


def _position_holding(exchange_id: str, position: VenuePosition) -> Holding:
    # A derivatives position, held in its base asset ("BTC/USDT:USDT" holds BTC).
    base = position.symbol.split("/", 1)[0]
    return Holding(
        exchange_id,
        AssetBalance(base, free=Decimal(0), total=position.base_quantity),
        position=position,
    )


def _status_view(status: CopyStatus, reason: str) -> dict[str, Any]:
    return {"status": status.value, "status_reason": reason}


def _config_view(config: CopyConfig) -> dict[str, Any]:
    return {
        # A follower's trail names the published leader it follows, never the leader's account.
        "source_kind": "leader" if config.leader_id else config.source_kind.value,
        "source_id": config.leader_id or config.source_id,
        "target_exchange_ids": list(config.target_exchange_ids),
        **_status_view(config.status, config.status_reason),
        **_settings_view(config.settings),
    }


@dataclass(frozen=True)
class StartCopy:
    """A start request, parsed."""

    source_backtest_id: str
    source_exchange_id: str
    target_exchange_ids: list[str]
    settings: ConfigSettings
    request_id: str = ""
    source_leader_id: str = ""


@dataclass(frozen=True)
class LeaderView:
    """A published leader with its public stats, as one user sees it."""

    leader: Leader
    trade_count: int
    mine: bool


@dataclass(frozen=True)
class CopyStatusView:
    """A configuration now: counters, recent orders, holdings and the source's sync state."""

    config: CopyConfig
    counters: rules.Counters
    recent_orders: list[Intent]
    positions: list[Holding]
    positions_error: str
    last_sync_time: datetime | None
    sync_mode: str
    accounts: list[performance.AccountPnl] = field(default_factory=list)
    # Why the source cannot be read now, empty while it reads.
    source_error: str = ""


class ConfigService:
    """The configuration use-cases behind the engine's RPCs."""

    def __init__(
        self,
        store: EngineStorePort,
        broker: BrokerPort,
        sync: SyncPort,
        clock: Clock,
        copier: Copier,
        on_source_live: Callable[[str], Awaitable[None]] | None = None,
        on_status_change: Callable[[], None] | None = None,
        valuations: Valuations | None = None,
    ) -> None:
        # The follower portfolios of GET /status: the risk monitor's reads when fresh.
        self._valuations = valuations if valuations is not None else Valuations()
        self._store = store
        self._on_status_change = on_status_change or (lambda: None)
        self._broker = broker
        self._sync = sync
        self._clock = clock
        self._copier = copier
        self._on_source_live = on_source_live
        # Watching and unwatching a leader account happen one at a time per source, so that a
        # stop cannot unwatch a source a start has just begun to copy.
        self._source_locks: dict[str, asyncio.Lock] = {}
        # The copy loop check and the write it guards (a start, a resume) happen one at a
        # time in this process; across replicas the store runs the check again inside the
        # write, under the copy graph's lock (CopyGraphCheck).
        self._loops_lock = asyncio.Lock()
        # Per configuration, the ledger of its settled intents and the last of them (_ledger).
        self._settled: OrderedDict[str, _Settled] = OrderedDict()

    def _source_lock(self, source_id: str) -> asyncio.Lock:
        return self._source_locks.setdefault(source_id, asyncio.Lock())

    # ------------------------------------------------------------------ helpers

    async def owned(self, user_id: str, config_id: str) -> CopyConfig:
        """Return the caller's configuration ``config_id``; NOT_FOUND for anyone else's."""
        if not is_uuid(config_id):
            raise errors.invalid("config_id", f"must be a UUID, got {config_id!r}")
        config = await self._store.get_config(config_id)
        if config is None or config.user_id != user_id:
            raise errors.NotFound(
                f"copy configuration {config_id} not found",
                reason="CONFIG_NOT_FOUND",
                metadata={"config_id": config_id},
            )
        return config

    async def _source_live(self, source_id: str) -> None:
        if self._on_source_live is None:
            return
        try:
            await self._on_source_live(source_id)
        except Exception:
            log.exception("subscribing source %s failed", source_id)

    async def _change(
        self,
        user_id: str,
        config_id: str,
        rule: Callable[[CopyStatus, str], transitions.StatusChange],
        *,
        action: str,
        skip_pending: str = "",
        reset_daily_risk: bool = False,
        check: CopyGraphCheck | None = None,
    ) -> tuple[CopyConfig, bool]:
        def checked(status: CopyStatus, reason: str) -> transitions.StatusChange:
            try:
                return rule(status, reason)
            except transitions.StatusError as e:
                raise errors.FailedPrecondition(str(e), reason=e.reason) from None

        changed = await self._compare_and_set(
            functools.partial(self.owned, user_id, config_id),
            checked,
            action=action,
            skip_pending=skip_pending,
            daily_risk=DailyRisk() if reset_daily_risk else None,
            check=check,
        )
        if changed is None:
            raise errors.Unavailable("the configuration kept changing; try again", retry_after=0.1)
        return changed

    async def _compare_and_set(
        self,
        load: Callable[[], Awaitable[CopyConfig | None]],
        rule: Callable[[CopyStatus, str], transitions.StatusChange],
        *,
        action: str,
        skip_pending: str,
        daily_risk: DailyRisk | None = None,
        check: CopyGraphCheck | None = None,
    ) -> tuple[CopyConfig, bool] | None:
        # Apply ``rule`` to the configuration as stored, retrying when it changed meanwhile;
        # the audit entry of the change (``action``) is written with it.
        # Returns (configuration, changed); None when it kept changing.
        for _ in range(_CAS_ATTEMPTS):
            config = await load()
            if config is None:
                return None
            change = rule(config.status, config.status_reason)
            if not change.changed:
                return config, False
            if await self._store.change_status(
                config.config_id,
                config.status,
                change.status,
                change.reason,
                self._clock.now(),
                skip_pending=skip_pending,
                daily_risk=daily_risk,
                check=check,
                audit=AuditEvent(
                    config.user_id,
                    AUDIT_OBJECT,
                    config.config_id,
                    action,
                    _status_view(config.status, config.status_reason),
                    _status_view(change.status, change.reason),
                ),
            ):
                self._on_status_change()
                updated = await self._store.get_config(config.config_id)
                assert updated is not None
                return updated, True
        return None

    # ------------------------------------------------------------------ start

    async def _check_accounts(self, user_id: str, command: StartCopy) -> dict[str, str]:
        named = [
            (f"target_exchange_ids[{i}]", t) for i, t in enumerate(command.target_exchange_ids)
        ]
        if command.source_exchange_id:
            named.append(("source_exchange_id", command.source_exchange_id))

        async def one(path: str, exchange_id: str) -> tuple[str, str]:
            try:
                account = await self._broker.get_exchange(exchange_id, user_id)
            except errors.NotFound:
                raise errors.NotFound(
                    f"exchange account {exchange_id} not found",
                    reason="EXCHANGE_NOT_FOUND",
                    metadata={"field": path, "exchange_id": exchange_id},
                ) from None
            return exchange_id, account.exchange_name

        results = await asyncio.gather(*(one(p, e) for p, e in named), return_exceptions=True)
        names: dict[str, str] = {}
        for result in results:
            if isinstance(result, BaseException):
                raise result
            exchange_id, exchange_name = result
            names[exchange_id] = exchange_name
        return names

    async def _backtest_source(self, user_id: str, backtest_id: str) -> Source:
        missing = errors.NotFound(
            f"backtest {backtest_id} not found",
            reason="SOURCE_NOT_FOUND",
            metadata={"field": "source_backtest_id", "source_id": backtest_id},
        )
        try:
            source = await self._sync.get_source(backtest_id)
        except errors.NotFound:
            raise missing from None
        if source.kind is not SourceKind.BACKTEST or (
            source.user_id != user_id and not source.public
        ):
            raise missing
        return source

    async def start(self, user_id: str, command: StartCopy) -> CopyConfig:
        """Create and start a configuration; a repeated request id returns the first one."""
        settings = rules_settings.normalized(command.settings)
        found = _validate_source(command) + rules_settings.validate(settings)
        if command.request_id and len(command.request_id) > 128:
            found.append(rules_settings.Violation("request_id", "must be at most 128 characters"))
        if found:
            raise _invalid(found)
        if command.request_id:
            existing = await self._store.config_by_request(user_id, command.request_id)
            if existing is not None:
                return existing
        venues = await self._check_accounts(user_id, command)
        leader = None
        if command.source_leader_id:
            leader = await self._live_leader(command.source_leader_id)
            # The publisher naming the leader's own account as a target would copy each of its
            # trades back into it, and copy that copy again: a loop of orders. Only the owner
            # gets here with that account (anyone else's is NOT_FOUND above).
            for i, target in enumerate(command.target_exchange_ids):
                if target == leader.exchange_id:
                    raise _invalid(
                        [
                            rules_settings.Violation(
                                f"target_exchange_ids[{i}]",
                                "is the leader's account; a follower cannot copy itself",
                            )
                        ]
                    )
        source_id = (
            leader.exchange_id
            if leader is not None
            else command.source_backtest_id or command.source_exchange_id
        )
        copies_account = not command.source_backtest_id
        async with self._loops_lock if copies_account else contextlib.nullcontext():
            if copies_account:
                await self._refuse_loops(source_id, command.target_exchange_ids)
            check = _loop_check(source_id, command.target_exchange_ids) if copies_account else None
            try:
                async with self._source_lock(source_id):
                    stored = await self._start_locked(
                        user_id, command, settings, venues, leader, check
                    )
            except errors.InvalidArgument:
                # Refused at the write (another replica's start closed the cycle meanwhile):
                # an own account watched for this configuration alone is not read for nothing.
                if command.source_exchange_id:
                    await self._unwatch_source_if_unused(source_id, user_id)
                raise
        if leader is not None:
            stored = await self._unless_withdrawn(stored, leader)
        self._on_status_change()
        await self._source_live(source_id)
        return stored

    async def _refuse_loops(
        self, source_id: str, targets: builtins.list[str], *, without: str = ""
    ) -> None:
        # Refused before anything is watched or written; the write checks again (_loop_check).
        _refuse_loop_targets(
            await self._store.copy_graph(loops.LOOP_STATUSES), source_id, targets, without
        )

    async def _start_locked(
        self,
        user_id: str,
        command: StartCopy,
        settings: ConfigSettings,
        venues: dict[str, str],
        leader: Leader | None = None,
        check: CopyGraphCheck | None = None,
    ) -> CopyConfig:
        if command.source_backtest_id:
            kind, source_id = SourceKind.BACKTEST, command.source_backtest_id
            source = await self._backtest_source(user_id, source_id)
        elif leader is not None:
            # The one exception to "a service acts for a user with that user's assertion": a
            # follower of a published leader never holds the leader's account, so the engine
            # reads the leader's source (watched since its publication, by its owner's call)
            # under its own identity; the follower's assertion never reaches the leader's
            # account at sync or the broker. The configuration's audit entry names the leader.
            kind, source_id = SourceKind.EXCHANGE, leader.exchange_id
            source = await self._sync.get_source(source_id)
            log.info("user %s follows published leader %s", user_id, leader.leader_id)
        else:
            kind, source_id = SourceKind.EXCHANGE, command.source_exchange_id
            source = await self._sync.watch_exchange_source(
                source_id, settings.sync_settings, user_id
            )
        now = self._clock.now()
        config = CopyConfig(
            config_id=str(uuid.uuid4()),
            user_id=user_id,
            source_kind=kind,
            source_id=source_id,
            target_exchange_ids=tuple(command.target_exchange_ids),
            settings=settings,
            status=CopyStatus.ACTIVE,
            status_reason="",
            start_sequence=source.last_sequence,
            last_sequence=source.last_sequence,
            sync_status=source.mode or "pending",
            last_sync_at=source.last_sync_time,
            created_at=now,
            updated_at=now,
            request_id=command.request_id or None,
            target_venues={t: venues[t] for t in command.target_exchange_ids},
            leader_id=leader.leader_id if leader is not None else "",
        )
        return await self._store.insert_config(
            config,
            audit=AuditEvent(
                user_id,
                AUDIT_OBJECT,
                config.config_id,
                "start",
                None,
                _config_view(config),
            ),
            check=check,
        )

    # ------------------------------------------------------------------ lifecycle

    async def stop(
        self, user_id: str, config_id: str, keep_open_orders: bool
    ) -> tuple[CopyConfig, int]:
        """Stop copying; cancel resting copied orders unless kept. A repeat changes nothing more."""
        config, _ = await self._change(
            user_id,
            config_id,
            transitions.stop,
            action="stop",
            skip_pending=SkipReason.STOPPED.value,
        )
        cancelled = 0 if keep_open_orders else await self._copier.cancel_resting(config)
        await self._unwatch_if_unused(config)
        return config, cancelled

    async def _unwatch_if_unused(self, config: CopyConfig) -> None:
        # The last copy of a leader account stopped: nobody needs its fills read any more.
        if config.source_kind is not SourceKind.EXCHANGE or config.leader_id:
            # A follower's stop: the leader's source is its publisher's to unwatch.
            return
        await self._unwatch_source_if_unused(config.source_id, config.user_id)

    async def _unwatch_source_if_unused(self, source_id: str, owner_user_id: str) -> None:
        async with self._source_lock(source_id):
            if await self._store.configs_of_source(source_id):
                return
            if await self._store.live_leader_of(source_id) is not None:
                return  # published: read for its followers (and its public stats)
            try:
                await self._sync.unwatch_exchange_source(source_id, owner_user_id)
            except errors.ServiceError as e:
                # Harmless: the source is read for nothing until a later stop unwatches it.
                log.warning("unwatching source %s failed: %s", source_id, e.reason)

    async def pause(self, user_id: str, config_id: str) -> CopyConfig:
        """Pause: signals are recorded as skipped with reason ``paused`` until resumed.

        Intents written before the pause and not yet sent are skipped as ``paused`` too, in
        the same transaction: nothing leaves a paused configuration.
        """
        config, _ = await self._change(
            user_id,
            config_id,
            transitions.pause,
            action="pause",
            skip_pending=SkipReason.PAUSED.value,
        )
        return config

    async def release_exchange(self, user_id: str, exchange_id: str, force: bool) -> list[str]:
        """Free the caller's account ``exchange_id`` before its removal at the broker.

        Without ``force`` an account that a configuration not stopped copies from or to is
        refused with ABORTED (HTTP 409) naming those configurations; with ``force`` they are
        paused with the reason ``exchange_deleted`` (a resume is refused while the account is
        gone), and a watched source account is unwatched. Returns the configurations paused.
        """
        if not is_uuid(exchange_id):
            raise errors.invalid("exchange_id", f"must be a UUID, got {exchange_id!r}")
        try:
            await self._broker.get_exchange(exchange_id, user_id)
        except errors.NotFound:
            raise errors.NotFound(
                f"exchange account {exchange_id} not found",
                reason="EXCHANGE_NOT_FOUND",
                metadata={"exchange_id": exchange_id},
            ) from None
        # Only the owner's configurations can name the owner's account (the broker refuses
        # anyone else's), so nothing of another user is named here; followers of the account
        # published as a leader are reached through the leader, never named.
        using = [
            c for c in await self._store.configs_using_exchange(exchange_id) if c.user_id == user_id
        ]
        leader = await self._store.live_leader_of(exchange_id)
        if leader is not None:
            if not force:
                raise errors.Aborted(
                    f"exchange account {exchange_id} is published as the leader"
                    f" {leader.leader_id}: unpublish it first, or delete with force=true"
                    " (its followers stop)",
                    reason="EXCHANGE_IN_USE",
                    metadata={
                        "exchange_id": exchange_id,
                        "leader_id": leader.leader_id,
                        "config_ids": ",".join(c.config_id for c in using),
                    },
                )
            await self.unpublish_leader(user_id, leader.leader_id)
        if not using:
            return []
        ids = [c.config_id for c in using]
        if not force:
            raise errors.Aborted(
                f"exchange account {exchange_id} is used by the copy configurations"
                f" {', '.join(ids)}: stop them first, or delete with force=true to pause them",
                reason="EXCHANGE_IN_USE",
                metadata={"exchange_id": exchange_id, "config_ids": ",".join(ids)},
            )
        paused: list[str] = []
        for config in using:
            outcome = await self._compare_and_set(
                functools.partial(self._store.get_config, config.config_id),
                functools.partial(transitions.pause_for, reason=transitions.EXCHANGE_DELETED),
                action="pause",
                skip_pending=SkipReason.PAUSED.value,
            )
            if outcome is not None and outcome[1]:
                paused.append(config.config_id)
        if any(c.source_kind is SourceKind.EXCHANGE and c.source_id == exchange_id for c in using):
            try:
                await self._sync.unwatch_exchange_source(exchange_id, user_id)
            except errors.ServiceError as e:
                log.warning("unwatching deleted source %s failed: %s", exchange_id, e.reason)
        return paused

    # ------------------------------------------------------------------ published leaders

    async def _live_leader(self, leader_id: str) -> Leader:
        leader = await self._store.get_leader(leader_id) if is_uuid(leader_id) else None
        if leader is None or not leader.live:
            raise errors.NotFound(
                f"leader {leader_id} not found",
                reason="LEADER_NOT_FOUND",
                metadata={"field": "source_leader_id", "leader_id": leader_id},
            )
        return leader

    async def _unless_withdrawn(self, config: CopyConfig, leader: Leader) -> CopyConfig:
        # A withdrawal (on another replica) between the check and the insert: stop the
        # configuration it could not see.
        current = await self._store.get_leader(leader.leader_id)
        if current is not None and current.live:
            return config
        await self._stop_followers(leader)
        return await self._store.get_config(config.config_id) or config

    async def publish_leader(self, user_id: str, exchange_id: str, display_name: str) -> LeaderView:
        """Publish the caller's account ``exchange_id`` as a leader; a repeat returns it.

        The account is watched from now on (by the caller's own call: the source is theirs),
        and its public trade count starts at zero.
        """
        display_name = display_name.strip()
        found = leader_rules.check_display_name(display_name)
        if not is_uuid(exchange_id):
            found.append(
                rules_settings.Violation("exchange_id", f"must be a UUID, got {exchange_id!r}")
            )
        if found:
            raise _invalid(found)
        try:
            account = await self._broker.get_exchange(exchange_id, user_id)
        except errors.NotFound:
            raise errors.NotFound(
                f"exchange account {exchange_id} not found",
                reason="EXCHANGE_NOT_FOUND",
                metadata={"field": "exchange_id", "exchange_id": exchange_id},
            ) from None
        existing = await self._store.live_leader_of(exchange_id)
        if existing is not None:
            return await self._leader_view(existing, user_id)
        async with self._source_lock(exchange_id):
            source = await self._watched_source(exchange_id)
            if source is None:
                source = await self._sync.watch_exchange_source(
                    exchange_id, SyncSettings(), user_id
                )
            leader = Leader(
                leader_id=str(uuid.uuid4()),
                user_id=user_id,
                exchange_id=exchange_id,
                exchange_name=account.exchange_name,
                display_name=display_name,
                start_sequence=source.last_sequence,
                published_at=self._clock.now(),
            )
            stored = await self._store.publish_leader(
                leader,
                audit=AuditEvent(
                    user_id,
                    LEADER_AUDIT_OBJECT,
                    leader.leader_id,
                    "publish",
                    None,
                    _leader_view(leader),
                ),
            )
        return await self._leader_view(stored, user_id)

    async def _watched_source(self, exchange_id: str) -> Source | None:
        # The account's source when sync reads it already (its owner copies it): publishing
        # must not change the sync settings the owner chose.
        try:
            source = await self._sync.get_source(exchange_id)
        except errors.NotFound:
            return None
        return source if source.watched else None

    async def _leader_view(self, leader: Leader, user_id: str) -> LeaderView:
        try:
            last = (await self._sync.get_source(leader.exchange_id)).last_sequence
        except errors.ServiceError as e:
            log.info("source of leader %s unreadable: %s", leader.leader_id, e.reason)
            last = leader.start_sequence
        return LeaderView(leader, leader_rules.trade_count(leader, last), leader.user_id == user_id)

    async def list_leaders(self, user_id: str) -> builtins.list[LeaderView]:
        """Return every published leader with its public stats, oldest first."""
        leaders = await self._store.live_leaders()
        return list(await asyncio.gather(*(self._leader_view(x, user_id) for x in leaders)))

    async def unpublish_leader(self, user_id: str, leader_id: str) -> int:
        """Withdraw the caller's leader; stop its followers (reason ``leader_unpublished``).

        Returns how many followers' configurations were stopped now. A repeat stops any
        follower a crash left behind; another user's leader is NOT_FOUND, like one that does
        not exist.
        """
        if not is_uuid(leader_id):
            raise errors.invalid("leader_id", f"must be a UUID, got {leader_id!r}")
        leader = await self._store.get_leader(leader_id)
        if leader is None or leader.user_id != user_id:
            raise errors.NotFound(
                f"leader {leader_id} not found",
                reason="LEADER_NOT_FOUND",
                metadata={"leader_id": leader_id},
            )
        async with self._source_lock(leader.exchange_id):
            await self._store.unpublish_leader(
                leader_id,
                self._clock.now(),
                audit=AuditEvent(
                    user_id,
                    LEADER_AUDIT_OBJECT,
                    leader_id,
                    "unpublish",
                    _leader_view(leader),
                    None,
                ),
            )
            stopped = await self._stop_followers(leader)
        if stopped:
            self._on_status_change()
        # Unwatched by the publisher's own call: the source is theirs.
        await self._unwatch_source_if_unused(leader.exchange_id, user_id)
        return stopped

    async def _stop_followers(self, leader: Leader) -> int:
        stopped = 0
        for config in await self._store.configs_of_source(leader.exchange_id):
            if config.leader_id != leader.leader_id:
                continue
            outcome = await self._compare_and_set(
                functools.partial(self._store.get_config, config.config_id),
                functools.partial(transitions.stop_for, reason=leader_rules.LEADER_UNPUBLISHED),
                action="stop",
                skip_pending=SkipReason.STOPPED.value,
            )
            if outcome is not None and outcome[1]:
                stopped += 1
                try:
                    await self._copier.cancel_resting(outcome[0])
                except Exception:
                    log.exception("cancelling the copies of %s failed", config.config_id)
        return stopped

    async def _check_still_there(self, config: CopyConfig) -> None:
        # A configuration paused because an account it uses was removed: refuse to copy to
        # (or from) an account that no longer exists.
        wanted = list(config.target_exchange_ids)
        if config.source_kind is SourceKind.EXCHANGE:
            wanted.append(config.source_id)
        for exchange_id in wanted:
            try:
                await self._broker.get_exchange(exchange_id, config.user_id)
            except errors.NotFound:
                raise errors.FailedPrecondition(
                    f"exchange account {exchange_id} was removed: this configuration cannot"
                    " copy any more; stop it",
                    reason="EXCHANGE_DELETED",
                    metadata={"exchange_id": exchange_id},
                ) from None

    async def resume(self, user_id: str, config_id: str) -> CopyConfig:
        """Resume a paused, halted or reducing configuration; a stopped one cannot be resumed."""
        current = await self.owned(user_id, config_id)
        if current.status_reason == transitions.EXCHANGE_DELETED:
            await self._check_still_there(current)
        copies_account = current.source_kind is SourceKind.EXCHANGE
        async with self._loops_lock if copies_account else contextlib.nullcontext():
            targets = list(current.target_exchange_ids)
            if copies_account:  # a halted one's edges left the graph: others may have closed it
                await self._refuse_loops(current.source_id, targets, without=config_id)
            config, changed = await self._change(
                user_id,
                config_id,
                transitions.resume,
                action="resume",
                reset_daily_risk=current.status is CopyStatus.REDUCING
                or risk.is_daily_loss_reason(current.status_reason),
                check=_loop_check(current.source_id, targets, without=config_id)
                if copies_account
                else None,
            )
        if changed:
            await self._source_live(config.source_id)
        return config

    async def kill_switch(
        self,
        user_id: str,
        config_id: str,
        *,
        every: bool = False,
    ) -> tuple[list[str], int]:
        """Halt one configuration, or with ``every`` all of the caller's, now; cancel resting
        copied orders.

        Raises
        ------
        meshkit.errors.InvalidArgument
            Naming ``config_id`` when neither a configuration nor ``every`` is given, or both:
            halting everything is never what an empty field means.
        """
        if not config_id and not every:
            raise errors.invalid(
                "config_id",
                "is required (or set all to true to halt every configuration)",
            )
        if config_id and every:
            raise errors.invalid("config_id", "must be empty when all is true")
        if config_id:
            targets = [await self.owned(user_id, config_id)]
        else:
            targets = [
                c
                for c in await self._store.list_configs(user_id)
                if c.status is not CopyStatus.STOPPED
            ]
        halted: list[CopyConfig] = []
        for config in targets:
            updated, _ = await self._change(
                user_id,
                config.config_id,
                transitions.halt,
                action="kill_switch",
                skip_pending=SkipReason.HALTED.value,
            )
            if updated.status is CopyStatus.HALTED:
                halted.append(updated)
        cancelled = 0
        for config in targets:
            cancelled += await self._copier.cancel_resting(config)
        return [c.config_id for c in halted], cancelled

    async def halt_unreconciled(self, unproven: dict[str, str]) -> list[str]:
        """Halt each configuration whose orders the start-up reconciliation could not prove.

        A halted configuration sends nothing (its PENDING intents are skipped as ``halted``);
        queries and cancels still work, and the reason says which order could not be looked
        up and why. Only the user lifts it, with a resume, once the venue answers again.
        Returns the configurations halted now.
        """
        halted: list[str] = []
        for config_id, why in unproven.items():
            reason = f"{transitions.RECONCILE_FAILED}: {why}"
            outcome = await self._compare_and_set(
                functools.partial(self._store.get_config, config_id),
                functools.partial(transitions.halt, reason=reason),
                action="halt",
                skip_pending=SkipReason.HALTED.value,
            )
            if outcome is not None and outcome[1]:
                log.error("copy configuration %s halted: %s", config_id, reason)
                halted.append(config_id)
        return halted

    # ------------------------------------------------------------------ reads

    async def audit_entries(
        self,
        user_id: str,
        before_seq: int,
        page_size: int,
    ) -> list[AuditEntry]:
        """Return the caller's entries of the engine's audit trail, newest first.

        Only entries below ``before_seq`` when it is above 0; ``page_size`` 0 means 50.
        """
        size = audit.page_size_of(before_seq, page_size)
        return await self._store.list_audit_entries(user_id, before_seq, size)

    async def list(self, user_id: str) -> list[CopyConfig]:
        """Return the caller's configurations, newest first."""
        return await self._store.list_configs(user_id)

    async def list_orders(
        self,
        user_id: str,
        config_id: str,
        start: datetime | None,
        end: datetime | None,
        page_size: int,
        *,
        target_exchange_id: str = "",
        page_token: str = "",
    ) -> tuple[CopyConfig, builtins.list[Intent], str]:
        """Return the configuration, one page of its copied orders written in ``[start, end)``,
        oldest first, and the token of the next page ("" when this one is the last).

        ``target_exchange_id`` keeps one follower account's; ``page_token`` is a previous
        page's next token. ``user_id`` "" is the reconciliation service's own read (its
        servicer allows it to recon alone), made once the user's ownership was proven and the
        user's assertion has expired in a long reconciliation: any existing configuration.
        """
        if user_id:
            config = await self.owned(user_id, config_id)
        else:
            if not is_uuid(config_id):
                raise errors.invalid("config_id", f"must be a UUID, got {config_id!r}")
            found = await self._store.get_config(config_id)
            if found is None:
                raise errors.NotFound(
                    f"copy configuration {config_id} not found",
                    reason="CONFIG_NOT_FOUND",
                    metadata={"config_id": config_id},
                )
            config = found
        if page_size < 0 or page_size > MAX_PAGE_SIZE:
            raise errors.invalid(
                "page_size", f"must be between 0 and {MAX_PAGE_SIZE}, got {page_size}"
            )
        if start is not None and end is not None and end < start:
            raise errors.invalid("end_time", "must not be before start_time")
        limit = page_size or DEFAULT_PAGE_SIZE
        intents = await self._store.list_intents(
            config.config_id,
            start,
            end,
            limit,
            target_exchange_id=target_exchange_id,
            after=_page_after(page_token),
        )
        if len(intents) < limit:
            return config, intents, ""
        last = intents[-1]
        text = f"{to_iso(last.created_at)}|{last.sequence}|{last.intent_id}"
        return config, intents, base64.urlsafe_b64encode(text.encode()).decode()

    async def _positions(
        self, config: CopyConfig
    ) -> tuple[builtins.list[Holding], str, dict[str, Portfolio | None]]:
        portfolios: dict[str, Portfolio | None] = dict.fromkeys(config.target_exchange_ids)
        changes = await self._store.intent_changes(config.target_exchange_ids)

        async def one(exchange_id: str) -> list[Holding]:
            portfolio = await self._valuations.read(
                exchange_id,
                config.user_id,
                changes.get(exchange_id, ""),
                functools.partial(self._broker.get_portfolio, exchange_id, config.user_id),
            )
            portfolios[exchange_id] = portfolio
            held = [Holding(exchange_id, b) for b in portfolio.balances if b.total != 0]
            return held + [_position_holding(exchange_id, p) for p in portfolio.positions]

        results = await asyncio.gather(
            *(one(t) for t in config.target_exchange_ids),
            return_exceptions=True,
        )
        holdings: list[Holding] = []
        problems: list[str] = []
        for target, result in zip(config.target_exchange_ids, results, strict=True):
            if isinstance(result, errors.ServiceError):
                problems.append(f"{target}: {result.message}")
            elif isinstance(result, BaseException):
                problems.append(f"{target}: unavailable")
            else:
                holdings.extend(result)
        return holdings, "; ".join(problems), portfolios

    async def _ledger(self, config_id: str) -> performance.Ledger:
        # The books of every copy ever made, folded oldest first (the profit and loss). The
        # longest run of settled intents from the first one (SETTLED: a terminal state, written
        # SETTLED_AFTER ago, so neither its fill nor its place in the order can change) is
        # folded once and kept; each call reads and folds only the intents after that run.
        kept = self._settled.get(config_id)
        settled = kept.ledger.copy() if kept is not None else performance.Ledger()
        after = kept.after if kept is not None else None
        settled_after, tail = after, None
        cutoff = self._clock.now() - SETTLED_AFTER
        while True:
            page = await self._store.list_intents(config_id, None, None, MAX_PAGE_SIZE, after=after)
            for intent in page:
                if tail is None and intent.state in rules.TERMINAL and intent.created_at <= cutoff:
                    settled.add(intent)
                    settled_after = _intent_key(intent)
                    continue
                if tail is None:
                    tail = settled.copy()
                tail.add(intent)
            if len(page) < MAX_PAGE_SIZE:
                break
            after = _intent_key(page[-1])
        moved = settled_after != (kept.after if kept is not None else None)
        if moved and self._settled.get(config_id) is kept:  # no other call moved it meanwhile
            self._settled[config_id] = _Settled(settled.copy(), settled_after)
            self._settled.move_to_end(config_id)
            while len(self._settled) > SETTLED_CONFIGS:
                self._settled.popitem(last=False)
        return tail if tail is not None else settled

    async def status(self, user_id: str, config_id: str) -> CopyStatusView:
        """Return the configuration, its counters, its 20 latest orders, holdings and sync state."""
        config = await self.owned(user_id, config_id)
        counts, signals = await self._store.state_counts(config_id)
        recent = await self._store.recent_intents(config_id, RECENT_ORDERS)
        positions_task = asyncio.ensure_future(self._positions(config))
        last_sync, mode = config.last_sync_at, config.sync_status
        source_error = ""
        try:
            source = await self._sync.get_source(config.source_id)
            last_sync, mode = source.last_sync_time or last_sync, source.mode or mode
            source_error = self._source_error(config, source.last_error)
        except Exception as e:
            log.info("source %s unreadable: %s", config.source_id, getattr(e, "message", e))
            reason = e.reason if isinstance(e, errors.ServiceError) else "UNAVAILABLE"
            source_error = f"the source's state could not be read ({reason})"
        positions, positions_error, portfolios = await positions_task
        ledger = await self._ledger(config_id)
        return CopyStatusView(
            config=config,
            counters=rules.count(counts, signals),
            recent_orders=recent,
            positions=positions,
            positions_error=positions_error,
            last_sync_time=last_sync,
            sync_mode=mode,
            accounts=performance.ledger_accounts_pnl(
                config.target_exchange_ids, ledger, portfolios
            ),
            source_error=source_error,
        )

    @staticmethod
    def _source_error(config: CopyConfig, last_error: str) -> str:
        # The leader's venue read failing, with its cause as sync describes it (reason: the
        # venue's short text, never a secret). Another user's account (a published leader)
        # shows only the reason, not its venue's words.
        if not last_error:
            return ""
        if config.source_kind is SourceKind.EXCHANGE and config.leader_id:
            return last_error.split(":", 1)[0]
        return last_error

    # ------------------------------------------------------------------ update

    async def update(
        self,
        user_id: str,
        config_id: str,
        changes: Mapping[str, Any],
    ) -> CopyConfig:
        """Apply ``changes`` (path to value), validate the merged settings, store them.

        The change applies from the next signal on.
        """
        for _ in range(_CAS_ATTEMPTS):
            config = await self.owned(user_id, config_id)
            if config.status is CopyStatus.STOPPED:
                raise errors.FailedPrecondition(
                    "a stopped configuration cannot be changed",
                    reason="CONFIG_STOPPED",
                )
            merged = rules_settings.normalized(
                rules_settings.apply_update(config.settings, changes)
            )
            found = rules_settings.validate(merged)
            if found:
                raise _invalid(found)
            if merged == config.settings:
                return config
            if (
                config.source_kind is SourceKind.EXCHANGE
                and not config.leader_id  # a leader is read as its publisher set it
                and merged.sync_settings != config.settings.sync_settings
            ):
                await self._sync.watch_exchange_source(
                    config.source_id, merged.sync_settings, user_id
                )
            audit = AuditEvent(
                user_id,
                AUDIT_OBJECT,
                config_id,
                "update",
                _settings_view(config.settings),
                _settings_view(merged),
            )
            if await self._store.update_settings(config, merged, self._clock.now(), audit=audit):
                updated = await self._store.get_config(config_id)
                assert updated is not None
                return updated
        raise errors.Unavailable("the configuration kept changing; try again", retry_after=0.1)


@dataclass(frozen=True)
class _Settled:
    ledger: performance.Ledger
    after: tuple[str, int, str] | None


def _intent_key(intent: Intent) -> tuple[str, int, str]:
    # Where an intent stands in list_intents' order (created_at text, sequence, id).
    return to_iso(intent.created_at), intent.sequence, intent.intent_id


def _page_after(page_token: str) -> tuple[str, int, str] | None:
    # A ListCopiedOrders page token: the last intent of the page before (created_at text,
    # sequence, intent id), base64url; anything else is the caller's mistake.
    if not page_token:
        return None
    try:
        created, sequence, intent_id = (
            base64.urlsafe_b64decode(page_token.encode()).decode().split("|")
        )
        from_iso(created)
        return created, int(sequence), intent_id
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise errors.invalid("page_token", "is not a token this service gave") from None
