"""Traces across the running mesh: each component exports OTLP to a receiver the test runs.

The gateway, broker, sync and engine get ``OTEL_EXPORTER_OTLP_ENDPOINT``; recon does not, so
it must export nothing. The receiver is the collector's ``TraceService`` over plaintext gRPC.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import grpc
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.trace.v1 import trace_pb2

from meshctl.api import RestClient, SimAdmin
from meshctl.demo import create_user, leader_client
from meshctl.launcher import Mesh, Ports
from tests.e2e.conftest import E2E_ENV
from tests.e2e.helpers import print_logs

TRACED = ("gateway", "broker", "sync", "engine")
SERVER = trace_pb2.Span.SPAN_KIND_SERVER
CLIENT = trace_pb2.Span.SPAN_KIND_CLIENT


@dataclass(frozen=True)
class Received:
    """One span as the receiver got it, with the ``service.name`` of its exporter."""

    service: str
    span: trace_pb2.Span

    @property
    def trace_id(self) -> str:
        return self.span.trace_id.hex()

    @property
    def span_id(self) -> str:
        return self.span.span_id.hex()

    @property
    def parent_id(self) -> str:
        return self.span.parent_span_id.hex()

    def attribute(self, key: str) -> str:
        for item in self.span.attributes:
            if item.key == key:
                value = item.value
                return str(getattr(value, value.WhichOneof("value") or "string_value"))
        return ""


class Receiver(trace_service_pb2_grpc.TraceServiceServicer):
    """A tiny OTLP/gRPC trace collector that keeps every span it is sent."""

    def __init__(self) -> None:
        self.spans: list[Received] = []

    async def Export(
        self,
        request: trace_service_pb2.ExportTraceServiceRequest,
        context: grpc.aio.ServicerContext,
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        for resource_spans in request.resource_spans:
            service = next(
                (
                    a.value.string_value
                    for a in resource_spans.resource.attributes
                    if a.key == "service.name"
                ),
                "",
            )
            for scope_spans in resource_spans.scope_spans:
                self.spans += [Received(service, span) for span in scope_spans.spans]
        return trace_service_pb2.ExportTraceServiceResponse()

    def trace(self, trace_id: str) -> list[Received]:
        return [s for s in self.spans if s.trace_id == trace_id]


async def _until(predicate, what: str, timeout: float = 60.0):  # noqa: ASYNC109 - a polling deadline
    deadline = time.monotonic() + timeout
    while True:
        found = predicate()
        if found:
            return found
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)


def _orphans(spans: list[Received], root: Received) -> list[tuple[str, str]]:
    """Return the spans other than ``root`` whose parent is not (yet) among ``spans``.

    A span is exported when it ends, so a parent still open is missing for a while: the
    test polls until none is.
    """
    ids = {s.span_id for s in spans}
    return [
        (s.service, s.span.name)
        for s in spans
        if s.span_id != root.span_id and s.parent_id not in ids
    ]


def _ancestors(spans: list[Received], leaf: Received) -> list[str]:
    """Return the services and names from ``leaf`` up to its root."""
    by_id = {s.span_id: s for s in spans}
    chain, current = [], leaf
    while current is not None:
        chain.append(f"{current.service}:{current.span.name}")
        current = by_id.get(current.parent_id)
    return chain


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, int]]:
    """The OTLP receiver on a free loopback port."""
    collected = Receiver()
    server = grpc.aio.server()
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(collected, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield collected, port
    finally:
        await server.stop(None)


@pytest.fixture
async def traced_mesh(request: pytest.FixtureRequest, tmp_path, receiver) -> AsyncIterator[Mesh]:
    """A mesh on SQLite whose gateway, broker, sync and engine export their spans."""
    _, port = receiver
    otel = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}",
        # Export within a tenth of a second instead of the default five.
        "OTEL_BSP_SCHEDULE_DELAY": "100",
    }
    instance = Mesh(
        tmp_path / "mesh",
        ports=Ports.free(),
        log_level="INFO",
        component_env={name: {**E2E_ENV.get(name, {}), **otel} for name in TRACED},
    )
    instance.start()
    try:
        await instance.wait_ready(timeout=60)
        yield instance
    finally:
        report = getattr(request.node, "report_call", None)
        if report is not None and report.failed:
            print_logs(instance)
        instance.stop()


async def test_a_rest_call_and_a_leader_fill_are_each_one_trace_across_the_mesh(
    traced_mesh: Mesh, receiver: tuple[Receiver, int]
) -> None:
    collected, _ = receiver
    mesh = traced_mesh
    async with aiohttp.ClientSession() as session:
        api = RestClient(session, mesh.gateway_url, await create_user(mesh, "alice"))
        binance = SimAdmin(session, mesh.venue_urls["binance"])
        accounts = {}
        for label, balances in (("leader", {"USDT": "100000"}), ("follower", {"USDT": "10000"})):
            keys = await binance.create_account(balances, can_trade=True, can_withdraw=False)
            reply = await api.call(
                "POST",
                "/exchanges",
                {
                    "exchange_name": "binance",
                    "api_key": keys["api_key"],
                    "api_secret": keys["api_secret"],
                    "label": label,
                },
            )
            accounts[label] = (reply["exchange"]["exchange_id"], keys)
        await api.call(
            "POST",
            "/start",
            {
                "source_exchange_id": accounts["leader"][0],
                "target_exchange_ids": [accounts["follower"][0]],
                "sync_settings": {"sync_interval": 1},
            },
        )

        # One REST call is one trace: the gateway's request, the engine's handling of it and
        # the broker calls the engine made for it.
        def start_call() -> Received | None:
            return next(
                (
                    s
                    for s in collected.spans
                    if s.service == "gateway"
                    and s.span.kind == SERVER
                    and s.span.name.startswith("POST")
                    and "/start" in (s.attribute("url.path") or s.attribute("http.target"))
                ),
                None,
            )

        rest = await _until(start_call, "the gateway's span of POST /start")

        assert not rest.parent_id

        def rest_reaches_broker() -> bool:
            spans = collected.trace(rest.trace_id)
            services = {(s.service, s.span.kind) for s in spans}
            return {("engine", SERVER), ("broker", SERVER)} <= services and not _orphans(
                spans, rest
            )

        await _until(
            rest_reaches_broker,
            "the engine's and the broker's spans of POST /start, each parent exported",
        )

        leader = leader_client(mesh.venue_urls["binance"], accounts["leader"][1])
        try:
            await leader.create_order("BTC/USDT", "market", "buy", 0.1)
        finally:
            await leader.close()

    # One leader fill is one trace: sync's "leader fill", the engine's span for its signal,
    # and the broker's order for the follower, down to the venue call.
    # The span of the ingest that logged the fill: the stream and a backfill may both find it,
    # and the one that finds it logged already has a span of its own (logged false, no copy).
    fill = await _until(
        lambda: next(
            (
                s
                for s in collected.spans
                if s.service == "sync"
                and s.span.name == "leader fill"
                and s.attribute("copytrade.signal.logged") == "True"
            ),
            None,
        ),
        "sync's leader fill span",
    )
    assert fill.attribute("copytrade.symbol") == "BTC/USDT"
    assert not fill.parent_id

    def placed() -> Received | None:
        spans = collected.trace(fill.trace_id)
        return (
            next(
                (
                    s
                    for s in spans
                    if s.service == "broker"
                    and s.span.kind == SERVER
                    and "PlaceOrder" in s.span.name
                ),
                None,
            )
            if not _orphans(spans, fill)
            else None
        )

    place = await _until(
        placed, "the broker's PlaceOrder span in the leader fill's trace, each parent exported"
    )
    spans = collected.trace(fill.trace_id)
    signal = [s for s in spans if s.service == "engine" and s.span.name == "signal"]
    assert len(signal) == 1 and signal[0].parent_id == fill.span_id
    chain = _ancestors(spans, place)
    assert "engine:signal" in chain and chain[-1] == "sync:leader fill", chain
    venue_calls = [s for s in spans if s.service == "broker" and s.span.kind == CLIENT]
    assert any(place.span_id in _span_ids_above(spans, call) for call in venue_calls), [
        _ancestors(spans, call) for call in venue_calls
    ]
    # A venue call's span names its URL without the query string, where signatures ride.
    for call in venue_calls:
        url = call.attribute("url.full") or call.attribute("http.url")
        assert url.startswith("http://127.0.0.1:") and "?" not in url, url
    # The source reader that POST /start began polls in traces of its own, not in the call's.
    assert any("ListFills" in s.span.name for s in collected.spans)
    assert not [s for s in collected.trace(rest.trace_id) if "ListFills" in s.span.name]
    # A component without the variable exports nothing.
    assert {s.service for s in collected.spans} <= set(TRACED)


def _span_ids_above(spans: list[Received], leaf: Received) -> set[str]:
    by_id = {s.span_id: s for s in spans}
    above, current = set(), by_id.get(leaf.parent_id)
    while current is not None:
        above.add(current.span_id)
        current = by_id.get(current.parent_id)
    return above
