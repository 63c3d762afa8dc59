"""gRPC servicer of the reconciliation service: validate, translate, call the use-cases.

Every RPC needs a user: Reconcile and ListReconciliations are public (they carry an HTTP
annotation) and another user's configuration is NOT_FOUND; ListAuditEntries (internal, for the
gateway's GET /audit) returns only the caller's entries.
"""

from __future__ import annotations

import base64
import binascii
import uuid

import grpc

from copytrade.common.v1 import types_pb2
from copytrade.recon.v1 import recon_service_pb2 as pb
from copytrade.recon.v1 import recon_service_pb2_grpc as pb_grpc
from meshkit import errors
from meshkit.audit import message_fields
from meshkit.codec import timestamp_from_proto
from meshkit.identity import require_user
from recon_svc import codec
from recon_svc.use_cases import Reconciler


def _check_config_id(value: str, violations: list[errors.FieldViolation]) -> None:
    if not value:
        violations.append(errors.FieldViolation("config_id", "is required"))
        return
    try:
        uuid.UUID(value)
    except ValueError:
        violations.append(errors.FieldViolation("config_id", "must be a UUID"))


def _item_token(index: int) -> str:
    return base64.urlsafe_b64encode(f"item:{index}".encode()).decode()


def _item_index_of(token: str, violations: list[errors.FieldViolation]) -> int:
    # A ListReconciliationItems page token names the previous page's last item; -1: none.
    if not token:
        return -1
    try:
        kind, _, index = base64.urlsafe_b64decode(token.encode()).decode().partition(":")
        if kind == "item" and index.isdigit():
            return int(index)
    except (ValueError, binascii.Error):
        pass
    violations.append(errors.FieldViolation("page_token", "is not a token this service gave"))
    return -1


class ReconServicer(pb_grpc.ReconServiceServicer):
    """Serve ReconService over the :class:`Reconciler` use-cases."""

    def __init__(self, reconciler: Reconciler) -> None:
        self.reconciler = reconciler

    async def Reconcile(
        self,
        request: pb.ReconcileRequest,
        context: grpc.aio.ServicerContext,
    ) -> pb.ReconcileResponse:
        user_id = require_user(context)
        violations: list[errors.FieldViolation] = []
        _check_config_id(request.config_id, violations)
        start = timestamp_from_proto(request.start_time, request.HasField("start_time"))
        end = timestamp_from_proto(request.end_time, request.HasField("end_time"))
        if start is None:
            violations.append(errors.FieldViolation("start_time", "is required"))
        elif end is not None and end <= start:
            violations.append(errors.FieldViolation("end_time", "must be after start_time"))
        if violations:
            raise errors.InvalidArgument(violations)
        assert start is not None
        report = await self.reconciler.reconcile(
            user_id,
            request.config_id,
            start,
            end,
            auto_correct=request.settings.auto_correct,
        )
        return pb.ReconcileResponse(report=codec.report_to_proto(report))

    async def ListReconciliations(
        self,
        request: pb.ListReconciliationsRequest,
        context: grpc.aio.ServicerContext,
    ) -> pb.ListReconciliationsResponse:
        user_id = require_user(context)
        violations: list[errors.FieldViolation] = []
        _check_config_id(request.config_id, violations)
        if request.page_size < 0:
            violations.append(errors.FieldViolation("page_size", "must be 0 or more"))
        if violations:
            raise errors.InvalidArgument(violations)
        reports = await self.reconciler.list_reports(user_id, request.config_id, request.page_size)
        return pb.ListReconciliationsResponse(
            reports=[codec.report_to_proto(r, with_items=False) for r in reports],
        )

    async def ListReconciliationItems(
        self,
        request: pb.ListReconciliationItemsRequest,
        context: grpc.aio.ServicerContext,
    ) -> pb.ListReconciliationItemsResponse:
        user_id = require_user(context)
        violations: list[errors.FieldViolation] = []
        try:
            uuid.UUID(request.reconciliation_id)
        except ValueError:
            violations.append(errors.FieldViolation("reconciliation_id", "must be a UUID"))
        after = _item_index_of(request.page_token, violations)
        if violations:
            raise errors.InvalidArgument(violations)
        page, more = await self.reconciler.list_items(
            user_id, request.reconciliation_id, request.page_size, after
        )
        return pb.ListReconciliationItemsResponse(
            items=[codec.item_to_proto(item) for _, item in page],
            next_page_token=_item_token(page[-1][0]) if more and page else "",
        )

    async def ListAuditEntries(
        self,
        request: pb.ListAuditEntriesRequest,
        context: grpc.aio.ServicerContext,
    ) -> pb.ListAuditEntriesResponse:
        user_id = require_user(context)
        entries = await self.reconciler.audit_entries(
            user_id,
            request.before_seq,
            request.page_size,
        )
        return pb.ListAuditEntriesResponse(
            entries=[types_pb2.AuditEntry(**message_fields(e)) for e in entries],
        )
