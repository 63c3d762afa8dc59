"""EngineService over gRPC: validates and translates requests, calls the use-cases."""

from __future__ import annotations

import grpc

from copytrade.common.v1 import types_pb2
from copytrade.engine.v1 import engine_service_pb2 as pb
from copytrade.engine.v1 import engine_service_pb2_grpc as pb_grpc
from engine_svc import codec
from engine_svc.configs import ConfigService, StartCopy
from engine_svc.corrections import Corrector
from engine_svc.domain.corrections import Correction
from engine_svc.domain.ids import is_uuid
from engine_svc.domain.settings import Violation, unknown_update_paths, validate_start
from meshkit import errors
from meshkit.audit import message_fields
from meshkit.codec import timestamp_from_proto, timestamp_to_proto
from meshkit.identity import current_caller, require_user, user_id_or_empty


def _proves_copies() -> bool:
    # Reconciliation reads a follower's copies with the follower's assertion and needs the
    # leader's source to match them with its signals; a user sees the leader instead.
    return current_caller().service == "recon"


def _order_source(leader_id: str, internal: bool) -> str:
    # The published leader replaces its account as the orders' source, except for recon.
    return leader_id if leader_id and not internal else ""


class EngineServicer(pb_grpc.EngineServiceServicer):
    """The engine's RPCs; every one of them is public and needs the calling user."""

    def __init__(self, configs: ConfigService, corrector: Corrector | None = None) -> None:
        self._configs = configs
        self._corrector = corrector

    async def StartCopy(
        self,
        request: pb.StartCopyRequest,
        context: grpc.aio.ServicerContext,
    ) -> pb.StartCopyResponse:
        user_id = require_user(context)
        found: list[Violation] = []
        settings = codec.parse_settings(request, found)
        command = StartCopy(
            source_backtest_id=request.source_backtest_id.strip(),
            source_exchange_id=request.source_exchange_id.strip(),
            target_exchange_ids=[t.strip() for t in request.target_exchange_ids],
            settings=settings,
            request_id=request.request_id.strip(),
            source_leader_id=request.source_leader_id.strip(),
        )
        if found:
            found += validate_start(
                command.source_backtest_id,
                command.source_exchange_id or command.source_leader_id,
                command.target_exchange_ids,
            )
            raise codec.invalid_argument(found)
        config = await self._configs.start(user_id, command)
        return pb.StartCopyResponse(
            config_id=config.config_id,
            status=codec.copy_status_to_proto(config.status),
            config=codec.config_to_proto(config),
        )

    async def StopCopy(
        self,
        request: pb.StopCopyRequest,
        context: grpc.aio.ServicerContext,
    ) -> pb.StopCopyResponse:
        user_id = require_user(context)
        config, cancelled = await self._configs.stop(
            user_id,
            request.config_id.strip(),
            request.keep_open_orders,
        )
        return pb.StopCopyResponse(
            config_id=config.config_id,
            status=codec.copy_status_to_proto(config.status),
            cancelled_orders=cancelled,
        )

    async def PauseCopy(
        self,
        request: pb.PauseCopyRequest,
        context: grpc.aio.ServicerContext,
    ) -> pb.PauseCopyResponse:
        user_id = require_user(context)
        config = await self._configs.pause(user_id, request.config_id.strip())
        return pb.PauseCopyResponse(
            config_id=config.config_id,
            status=codec.copy_status_to_proto(config.status),
        )

    async def ResumeCopy(
        self,
        request: pb.ResumeCopyRequest,
        context: grpc.aio.ServicerContext,
    ) -> pb.ResumeCopyResponse:
        user_id = require_user(context)
        config = await self._configs.resume(user_id, request.config_id.strip())
        return pb.ResumeCopyResponse(
            config_id=config.config_id,
            status=codec.copy_status_to_proto(config.status),
        )

    async def GetCopyStatus(
        self,
        request: pb.GetCopyStatusRequest,
        context: grpc.aio.ServicerContext,
    ) -> pb.GetCopyStatusResponse:
        user_id = require_user(context)
        view = await self._configs.status(user_id, request.config_id.strip())
        internal = _proves_copies()
        response = pb.GetCopyStatusResponse(
            config=codec.config_to_proto(view.config, reveal_source=internal),
            counters=codec.counters_to_proto(view.counters),
            positions=[codec.position_to_proto(p) for p in view.positions],
            sync_mode=codec.sync_mode_to_proto(view.sync_mode),
            positions_error=view.positions_error,
            accounts=[codec.account_to_proto(a) for a in view.accounts],
            source_error=view.source_error,
        )
        codec.add_copied_orders(
            response.recent_orders,
            view.recent_orders,
            _order_source(view.config.leader_id, internal),
        )
        stamp = timestamp_to_proto(view.last_sync_time)
        if stamp is not None:
            response.last_sync_time.CopyFrom(stamp)
        return response

    async def ListConfigs(
        self,
        request: pb.ListConfigsRequest,
        context: grpc.aio.ServicerContext,
    ) -> pb.ListConfigsResponse:
        user_id = require_user(context)
        configs = await self._configs.list(user_id)
        internal = _proves_copies()
        return pb.ListConfigsResponse(
            configs=[codec.config_to_proto(c, reveal_source=internal) for c in configs]
        )

    async def UpdateConfig(
        self,
        request: pb.UpdateConfigRequest,
        context: grpc.aio.ServicerContext,
    ) -> pb.UpdateConfigResponse:
        user_id = require_user(context)
        unknown = unknown_update_paths(list(request.update_mask.paths))
        if unknown:
            raise codec.invalid_argument(
                [Violation("update_mask", f"unknown path {path!r}") for path in unknown]
            )
        found: list[Violation] = []
        changes = codec.parse_update(request, found)
        if found:
            raise codec.invalid_argument(found)
        config = await self._configs.update(user_id, request.config_id.strip(), changes)
        return pb.UpdateConfigResponse(config=codec.config_to_proto(config))

    async def ListCopiedOrders(
        self,
        request: pb.ListCopiedOrdersRequest,
        context: grpc.aio.ServicerContext,
    ) -> pb.ListCopiedOrdersResponse:
        internal = _proves_copies()
        # Recon reads a long window's copies under its own identity once the user's assertion
        # (proven when it read the configuration) has expired; anyone else needs the user.
        user_id = user_id_or_empty(context) if internal else require_user(context)
        config, intents, next_page_token = await self._configs.list_orders(
            user_id,
            request.config_id.strip(),
            timestamp_from_proto(request.start_time, request.HasField("start_time")),
            timestamp_from_proto(request.end_time, request.HasField("end_time")),
            request.page_size,
            target_exchange_id=request.target_exchange_id.strip(),
            page_token=request.page_token,
        )
        response = pb.ListCopiedOrdersResponse(next_page_token=next_page_token)
        codec.add_copied_orders(response.orders, intents, _order_source(config.leader_id, internal))
        return response

    async def KillSwitch(
        self,
        request: pb.KillSwitchRequest,
        context: grpc.aio.ServicerContext,
    ) -> pb.KillSwitchResponse:
        user_id = require_user(context)
        halted, cancelled = await self._configs.kill_switch(
            user_id,
            request.config_id.strip(),
            every=request.all,
        )
        return pb.KillSwitchResponse(config_ids=halted, cancelled_orders=cancelled)

    async def ListAuditEntries(
        self,
        request: pb.ListAuditEntriesRequest,
        context: grpc.aio.ServicerContext,
    ) -> pb.ListAuditEntriesResponse:
        user_id = require_user(context)
        entries = await self._configs.audit_entries(
            user_id,
            request.before_seq,
            request.page_size,
        )
        return pb.ListAuditEntriesResponse(
            entries=[types_pb2.AuditEntry(**message_fields(e)) for e in entries],
        )

    async def ReleaseExchange(
        self,
        request: pb.ReleaseExchangeRequest,
        context: grpc.aio.ServicerContext,
    ) -> pb.ReleaseExchangeResponse:
        user_id = require_user(context)
        paused = await self._configs.release_exchange(
            user_id,
            request.exchange_id.strip(),
            request.force,
        )
        return pb.ReleaseExchangeResponse(paused_config_ids=paused)

    async def PublishLeader(
        self,
        request: pb.PublishLeaderRequest,
        context: grpc.aio.ServicerContext,
    ) -> pb.PublishLeaderResponse:
        user_id = require_user(context)
        view = await self._configs.publish_leader(
            user_id, request.exchange_id.strip(), request.display_name
        )
        return pb.PublishLeaderResponse(
            leader=codec.leader_to_proto(view.leader, view.trade_count, view.mine)
        )

    async def ListLeaders(
        self,
        request: pb.ListLeadersRequest,
        context: grpc.aio.ServicerContext,
    ) -> pb.ListLeadersResponse:
        user_id = require_user(context)
        views = await self._configs.list_leaders(user_id)
        return pb.ListLeadersResponse(
            leaders=[codec.leader_to_proto(v.leader, v.trade_count, v.mine) for v in views]
        )

    async def UnpublishLeader(
        self,
        request: pb.UnpublishLeaderRequest,
        context: grpc.aio.ServicerContext,
    ) -> pb.UnpublishLeaderResponse:
        user_id = require_user(context)
        leader_id = request.leader_id.strip()
        stopped = await self._configs.unpublish_leader(user_id, leader_id)
        return pb.UnpublishLeaderResponse(leader_id=leader_id, stopped_followers=stopped)

    async def CorrectPosition(
        self,
        request: pb.CorrectPositionRequest,
        context: grpc.aio.ServicerContext,
    ) -> pb.CorrectPositionResponse:
        user_id = require_user(context)
        if self._corrector is None:
            raise errors.Unimplemented("corrections are not served by this engine")
        found: list[Violation] = []
        target = request.target_exchange_id.strip()
        symbol = request.symbol.strip()
        side = codec.side_from_proto(request.side)
        quantity = codec.optional_decimal(request.quantity)
        reconciliation_id = request.reconciliation_id.strip()
        if not target:
            found.append(Violation("target_exchange_id", "is required"))
        if not symbol:
            found.append(Violation("symbol", "is required"))
        if side is None:
            found.append(Violation("side", "must be buy or sell"))
        if quantity is None or quantity <= 0:
            found.append(Violation("quantity", "must be a number above 0"))
        if not is_uuid(reconciliation_id):
            found.append(Violation("reconciliation_id", "must be a UUID"))
        if found:
            raise codec.invalid_argument(found)
        assert side is not None and quantity is not None
        intent = await self._corrector.correct(
            user_id,
            Correction(
                config_id=request.config_id.strip(),
                target_exchange_id=target,
                symbol=symbol,
                side=side,
                quantity=quantity,
                reconciliation_id=reconciliation_id,
            ),
        )
        return pb.CorrectPositionResponse(order=codec.intent_to_proto(intent))
