"""meshkit.tracing in one process: off without an endpoint, trace ids in logs, signals' context."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal

import grpc
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from engine_svc.codec import signal_from_proto
from meshkit import logs, tracing
from meshkit.vocabulary import OrderType, Side
from sync_svc.codec import signal_to_proto
from sync_svc.domain.model import Signal

PARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@pytest.fixture
def exported() -> Iterator[InMemorySpanExporter]:
    """Tracing on for the test, its spans kept in memory."""
    exporter = InMemorySpanExporter()
    assert tracing.configure("engine_svc", {}, exporter=exporter)
    try:
        yield exporter
    finally:
        tracing.shutdown()


def _json_lines(service: str) -> tuple[logging.Logger, io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter(service))
    logger = logging.getLogger(f"test.tracing.{service}")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return logger, stream


def test_without_the_endpoint_nothing_is_installed_or_recorded() -> None:
    server, secure_channel = grpc.aio.server, grpc.aio.secure_channel
    assert not tracing.configure("engine_svc", {"OTEL_EXPORTER_OTLP_ENDPOINT": " "})
    assert not tracing.enabled()
    assert (grpc.aio.server, grpc.aio.secure_channel) == (server, secure_channel)
    assert tracing.http_middlewares() == []
    with tracing.root_spans("leader fill", [{"copytrade.symbol": "BTC/USDT"}]) as spans:
        assert not spans[0].is_recording()
        assert tracing.traceparent_of(spans[0]) == ""
    with tracing.continued("signal", PARENT) as span:
        assert not span.is_recording()
        assert tracing.current_ids() is None
        assert tracing.capture() is None
    logger, stream = _json_lines("engine")
    logger.info("copied")
    assert "trace_id" not in json.loads(stream.getvalue())


def test_log_lines_inside_a_span_carry_its_trace_and_span_ids(
    exported: InMemorySpanExporter,
) -> None:
    logger, stream = _json_lines("engine")
    with tracing.continued("signal", PARENT):
        logger.info("recorded the signal")
    logger.info("idle")
    inside, outside = (json.loads(line) for line in stream.getvalue().splitlines())
    (span,) = exported.get_finished_spans()
    assert span.name == "signal"
    assert span.resource.attributes["service.name"] == "engine"
    assert span.parent is not None and span.parent.span_id == int(PARENT.split("-")[2], 16)
    assert inside["trace_id"] == PARENT.split("-")[1] == format(span.context.trace_id, "032x")
    assert inside["span_id"] == format(span.context.span_id, "016x")
    assert "trace_id" not in outside and "span_id" not in outside


def test_each_leader_fill_starts_its_own_trace_even_inside_another_span(
    exported: InMemorySpanExporter,
) -> None:
    with (
        tracing.continued("stream", PARENT),
        tracing.root_spans("leader fill", [{"n": 1}, {"n": 2}]) as spans,
    ):
        parents = [tracing.traceparent_of(span) for span in spans]
    fills = [s for s in exported.get_finished_spans() if s.name == "leader fill"]
    assert len(fills) == 2 and all(s.parent is None for s in fills)
    assert len({s.context.trace_id for s in fills}) == 2
    assert [[f"{s.context.trace_id:032x}", f"{s.context.span_id:016x}"] for s in fills] == [
        parent.split("-")[1:3] for parent in parents
    ]


def test_a_signal_keeps_its_trace_context_from_sync_to_the_engine() -> None:
    logged = Signal(
        source_id="5b0e6f7c-1111-4222-8333-944455556666",
        sequence=7,
        signal_id="t-1",
        symbol="BTC/USDT",
        side=Side.BUY,
        quantity=Decimal("0.1"),
        price=Decimal("50000"),
        order_type=OrderType.MARKET,
        event_time=datetime(2026, 12, 4, tzinfo=UTC),
        log_time=datetime(2026, 12, 4, tzinfo=UTC),
        traceparent=PARENT,
    )
    assert signal_from_proto(signal_to_proto(logged)).traceparent == PARENT


async def test_work_handed_to_another_task_stays_in_the_trace_it_was_captured_in(
    exported: InMemorySpanExporter,
) -> None:
    with tracing.continued("signal", PARENT):
        captured = tracing.capture()
        with tracing.detached():
            assert tracing.current_ids() is None
    assert tracing.current_ids() is None
    with tracing.restored(captured):
        ids = tracing.current_ids()
    assert ids is not None and ids[0] == PARENT.split("-")[1]


async def test_a_request_to_an_untraced_path_records_no_span_and_no_ticket(
    exported: InMemorySpanExporter,
) -> None:
    # The dashboard's event stream takes a ticket in its query; a span would keep it with the
    # URL. Its path gets no span; every other request does.
    from aiohttp import web
    from aiohttp.test_utils import TestClient, TestServer

    async def ok(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    # aiohttp.web.Application is the instrumentor's self-tracing subclass while tracing is
    # on; the gateway's application class, like this one, is the plain one with the middleware.
    from aiohttp.web_app import Application

    app = Application(middlewares=tracing.http_middlewares(untraced_paths=("/events",)))
    app.router.add_get("/events", ok)
    app.router.add_get("/configs", ok)
    async with TestClient(TestServer(app)) as client:
        assert (await client.get("/events?ticket=secret-ticket")).status == 200
        assert (await client.get("/configs")).status == 200
    from opentelemetry.trace import SpanKind

    spans = exported.get_finished_spans()
    served = [s for s in spans if s.kind is SpanKind.SERVER]
    assert len(served) == 1
    assert "/configs" in json.dumps(dict(served[0].attributes or {}))
    # The test's own client calls are traced too (with their query cut off): none has it.
    assert "secret-ticket" not in json.dumps([dict(s.attributes or {}) for s in spans])
