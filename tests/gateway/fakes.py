"""Fake backends for the gateway tests: the four services, recording what they received (request
and metadata) into a :class:`~tests.fakes.recording.Recorder` (the broker and sync ones are the
shared fakes of ``tests/fakes``), plus a test-only ``RulesService`` whose annotations use the
template rules the real protos do not (``{a.b}``, ``{x=lit/*}``, ``**``, ``:verb``, a body
field, ``response_body``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import grpc
from google.api import annotations_pb2  # noqa: F401 - registers google.api.http for text_format
from google.protobuf import (  # noqa: F401 - dependencies of the file
    descriptor,
    descriptor_pb2,
    descriptor_pool,
    field_mask_pb2,
    message_factory,
    text_format,
    timestamp_pb2,
)
from google.type import decimal_pb2

from copytrade.common.v1 import types_pb2
from copytrade.engine.v1 import engine_service_pb2 as engine_pb
from copytrade.engine.v1 import engine_service_pb2_grpc as engine_grpc
from copytrade.recon.v1 import recon_service_pb2 as recon_pb
from copytrade.recon.v1 import recon_service_pb2_grpc as recon_grpc
from meshkit.codec import decimal_to_proto, timestamp_to_proto
from meshkit.server import Registration
from tests.fakes.broker import FakeBrokerService
from tests.fakes.recording import Recorder
from tests.fakes.sync import FakeSyncService

WHEN = datetime(2026, 1, 2, 3, 4, 5, 600000, tzinfo=UTC)


def copy_config(config_id: str, request: Any | None = None) -> engine_pb.CopyConfig:
    """Return a config echoing the limits and settings of a request."""
    config = engine_pb.CopyConfig(
        config_id=config_id,
        status=engine_pb.COPY_STATUS_ACTIVE,
        is_active=True,
        target_exchange_ids=["t-1"],
        create_time=timestamp_to_proto(WHEN),
    )
    if request is not None:
        config.risk_limits.CopyFrom(request.risk_limits)
        config.copy_settings.CopyFrom(request.copy_settings)
        config.sync_settings.CopyFrom(request.sync_settings)
    return config


class FakeEngine(engine_grpc.EngineServiceServicer):
    """Records StartCopy, UpdateConfig, GetCopyStatus, ListConfigs and KillSwitch."""

    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder

    async def StartCopy(self, request, context):
        await self.recorder.record("StartCopy", request, context)
        return engine_pb.StartCopyResponse(
            config_id="c-1",
            status=engine_pb.COPY_STATUS_ACTIVE,
            config=copy_config("c-1", request),
        )

    async def StopCopy(self, request, context):
        await self.recorder.record("StopCopy", request, context)
        return engine_pb.StopCopyResponse(
            config_id=request.config_id,
            status=engine_pb.COPY_STATUS_STOPPED,
        )

    async def UpdateConfig(self, request, context):
        await self.recorder.record("UpdateConfig", request, context)
        return engine_pb.UpdateConfigResponse(config=copy_config(request.config_id, request))

    async def GetCopyStatus(self, request, context):
        await self.recorder.record("GetCopyStatus", request, context)
        order = engine_pb.CopiedOrder(
            intent_id="i-1",
            config_id=request.config_id,
            symbol="BTC/USDT",
            side=types_pb2.ORDER_SIDE_BUY,
            state=engine_pb.INTENT_STATE_FILLED,
            quantity=decimal_to_proto(Decimal("0.01")),
            price=decimal_to_proto(Decimal("50000.10")),
            leader_quantity=decimal_pb2.Decimal(value="0.30000000000000000001"),
            latency_ms=12.5,
            create_time=timestamp_to_proto(WHEN),
        )
        return engine_pb.GetCopyStatusResponse(
            config=copy_config(request.config_id),
            counters=engine_pb.CopyCounters(signals=3, intents=2, filled=1),
            recent_orders=[order],
            positions=[engine_pb.Position(exchange_id="t-1", asset="BTC")],
            last_sync_time=timestamp_to_proto(WHEN),
        )

    async def ListConfigs(self, request, context):
        await self.recorder.record("ListConfigs", request, context)
        return engine_pb.ListConfigsResponse(configs=[copy_config("c-1")])

    async def KillSwitch(self, request, context):
        await self.recorder.record("KillSwitch", request, context)
        halted = [request.config_id] if request.config_id else []
        return engine_pb.KillSwitchResponse(config_ids=halted)

    async def ReleaseExchange(self, request, context):
        await self.recorder.record("ReleaseExchange", request, context)
        return engine_pb.ReleaseExchangeResponse()

    async def PublishLeader(self, request, context):
        await self.recorder.record("PublishLeader", request, context)
        return engine_pb.PublishLeaderResponse(
            leader=engine_pb.Leader(leader_id="l-1", display_name=request.display_name, mine=True)
        )

    async def ListLeaders(self, request, context):
        await self.recorder.record("ListLeaders", request, context)
        return engine_pb.ListLeadersResponse(leaders=[engine_pb.Leader(leader_id="l-1")])

    async def UnpublishLeader(self, request, context):
        await self.recorder.record("UnpublishLeader", request, context)
        return engine_pb.UnpublishLeaderResponse(leader_id=request.leader_id)


class FakeRecon(recon_grpc.ReconServiceServicer):
    """Records Reconcile."""

    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder

    async def Reconcile(self, request, context):
        await self.recorder.record("Reconcile", request, context)
        report = recon_pb.Reconciliation(
            reconciliation_id="r-1",
            config_id=request.config_id,
            start_time=request.start_time,
            end_time=request.end_time,
            total_count=1,
            matched_count=1,
        )
        return recon_pb.ReconcileResponse(report=report)


# ---------------------------------------------------------------------- the rules service


def _field(name: str, number: int, kind: str, *, repeated: bool = False, extra: str = "") -> str:
    label = "LABEL_REPEATED" if repeated else "LABEL_OPTIONAL"
    if kind.startswith("."):
        kind = f'TYPE_MESSAGE type_name: "{kind}"'
    elif kind == "Color":
        kind = 'TYPE_ENUM type_name: ".gatewaytest.v1.Color"'
    return f'field {{ name: "{name}" number: {number} type: {kind} label: {label} {extra} }}'


def _method(name: str, rule: str = "") -> str:
    options = f"options {{ [google.api.http] {{ {rule} }} }}" if rule else ""
    return (
        f'method {{ name: "{name}" input_type: ".gatewaytest.v1.EchoRequest"'
        f' output_type: ".gatewaytest.v1.EchoResponse" {options} }}'
    )


_DECIMAL = ".google.type.Decimal"
RULES_PROTO = "\n".join(
    [
        'name: "gatewaytest/v1/rules.proto" package: "gatewaytest.v1" syntax: "proto3"',
        'dependency: "google/api/annotations.proto" dependency: "google/type/decimal.proto"',
        'dependency: "google/protobuf/field_mask.proto"',
        'dependency: "google/protobuf/timestamp.proto"',
        'enum_type { name: "Color" value { name: "COLOR_UNSPECIFIED" number: 0 }',
        '  value { name: "COLOR_RED" number: 1 } }',
        'message_type { name: "Inner"',
        _field("sub", 1, "TYPE_STRING"),
        _field("amount", 2, _DECIMAL),
        _field("big", 3, "TYPE_INT64"),
        "}",
        'message_type { name: "Item"',
        _field("name", 1, "TYPE_STRING"),
        _field("price", 2, _DECIMAL),
        _field("inner", 3, ".gatewaytest.v1.Inner"),
        _field("levels", 4, _DECIMAL, repeated=True),
        _field("prices", 5, ".gatewaytest.v1.Item.PricesEntry", repeated=True),
        _field("display_name", 6, "TYPE_STRING", extra='json_name: "displayName"'),
        'nested_type { name: "PricesEntry"',
        _field("key", 1, "TYPE_STRING"),
        _field("value", 2, _DECIMAL),
        "options { map_entry: true } }",
        "}",
        'message_type { name: "EchoRequest"',
        _field("name", 1, "TYPE_STRING"),
        _field("inner", 2, ".gatewaytest.v1.Inner"),
        _field("count", 3, "TYPE_INT32"),
        _field("flag", 4, "TYPE_BOOL"),
        _field("tags", 5, "TYPE_STRING", repeated=True),
        _field("color", 6, "Color"),
        _field("item", 7, ".gatewaytest.v1.Item"),
        _field("price", 8, _DECIMAL),
        _field("when", 9, ".google.protobuf.Timestamp"),
        _field("update_mask", 10, ".google.protobuf.FieldMask"),
        _field("ratio", 11, "TYPE_DOUBLE"),
        "}",
        'message_type { name: "EchoResponse"',
        _field("request", 1, ".gatewaytest.v1.EchoRequest"),
        _field("item", 2, ".gatewaytest.v1.Item"),
        _field("names", 3, "TYPE_STRING", repeated=True),
        "}",
        'service { name: "RulesService"',
        _method("GetThing", 'get: "/v1/things/{name}"'),
        _method("DeleteThing", 'delete: "/v1/things/{name}"'),
        _method("CancelThing", 'post: "/v1/things/{name}:cancel" body: "*"'),
        _method("GetNested", 'get: "/v1/nested/{inner.sub}/{inner.big}"'),
        _method("GetShelf", 'get: "/v1/{name=shelves/*}"'),
        _method("GetFile", 'get: "/v1/files/{name=**}"'),
        _method("PutItem", 'put: "/v1/items/{name}" body: "item"'),
        _method("GetItem", 'get: "/v1/items/{name}" response_body: "item"'),
        _method("PatchItem", 'patch: "/v1/items/{name}" body: "item"'),
        _method("GetCount", 'get: "/v1/counts/{count}"'),
        _method("Hidden"),
        "}",
    ]
)


def add_file(text: str) -> descriptor.FileDescriptor:
    """Add a ``FileDescriptorProto`` written in text format to the default pool."""
    proto = text_format.Parse(text, descriptor_pb2.FileDescriptorProto())
    return descriptor_pool.Default().AddSerializedFile(proto.SerializeToString())


RULES_FILE = add_file(RULES_PROTO)
RULES_SERVICE: descriptor.ServiceDescriptor = RULES_FILE.services_by_name["RulesService"]
EchoRequest = message_factory.GetMessageClass(RULES_FILE.message_types_by_name["EchoRequest"])
EchoResponse = message_factory.GetMessageClass(RULES_FILE.message_types_by_name["EchoResponse"])


def rules_registration(recorder: Recorder) -> Registration:
    """Serve ``RulesService`` generically: every method records and echoes its request."""
    handlers: dict[str, grpc.RpcMethodHandler] = {}
    for method in RULES_SERVICE.methods:

        async def behavior(
            request: Any,
            context: grpc.aio.ServicerContext,
            name: str = method.name,
        ) -> Any:
            await recorder.record(name, request, context)
            item = type(request.item)()
            item.CopyFrom(request.item)
            if not item.name:
                item.name = "stored"
                item.price.value = "12.50"
                item.levels.add(value="0.1")
                item.prices["BTC"].value = "50000.00"
            return EchoResponse(request=request, item=item, names=["a", "b"])

        handlers[method.name] = grpc.unary_unary_rpc_method_handler(
            behavior,
            request_deserializer=EchoRequest.FromString,
            response_serializer=lambda message: message.SerializeToString(),
        )
    generic = grpc.method_handlers_generic_handler(RULES_SERVICE.full_name, handlers)
    return Registration(
        add=lambda _servicer, server: server.add_generic_rpc_handlers((generic,)),
        servicer=None,
        full_name=RULES_SERVICE.full_name,
    )


def broker(recorder: Recorder) -> FakeBrokerService:
    """The shared fake broker, recording, with one market on one venue (binance BTC/USDT)."""
    fake = FakeBrokerService(recorder)
    fake.add_market("BTC/USDT", "BTC", "USDT", price="50000", min_notional="5")
    return fake


def registrations(recorder: Recorder) -> list[Registration]:
    """Return the four fake services and the rules service, all recording into ``recorder``."""
    return [
        broker(recorder).registration(),
        Registration(
            engine_grpc.add_EngineServiceServicer_to_server,
            FakeEngine(recorder),
            engine_pb.DESCRIPTOR.services_by_name["EngineService"].full_name,
        ),
        FakeSyncService(recorder).registration(),
        Registration(
            recon_grpc.add_ReconServiceServicer_to_server,
            FakeRecon(recorder),
            recon_pb.DESCRIPTOR.services_by_name["ReconService"].full_name,
        ),
        rules_registration(recorder),
    ]
