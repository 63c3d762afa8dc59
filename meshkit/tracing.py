"""Distributed traces with OpenTelemetry, exported over OTLP only when an endpoint is set.

:func:`configure` runs once per process (``meshkit.service.prepare_process``, the gateway's
``serve``). With ``OTEL_EXPORTER_OTLP_ENDPOINT`` set it installs an SDK tracer provider whose
``service.name`` is the component (``broker``, ``engine``, ``sync``, ``recon``, ``gateway``),
a batch exporter of OTLP over gRPC, and the official instrumentations:

- gRPC (``grpc.aio``): a server span per call and a client span per call, the W3C
  ``traceparent`` carried in the call's metadata (the default TraceContext propagator). The
  health service is left out (probes would drown the traces).
- aiohttp client: a span per venue call that ccxt makes in the broker (the URL without its
  query string, which holds signed parameters).
- aiohttp server: the gateway's middleware from :func:`http_middlewares`, a span per REST call.

Without the variable nothing is installed: no provider, no interceptor, no middleware. The
spans the code starts itself (:func:`root_spans`, :func:`continued`) are then the API's
non-recording spans, and :func:`traceparent` is empty.

A signal crosses the sync-to-engine stream as a message, not as a call, so its trace context
rides in the message (``Signal.traceparent``): sync starts a "leader fill" span per fill it
logs (:func:`root_spans`), the engine continues it with a span per signal it records
(:func:`continued`), and the broker calls made for that signal are its children. Work handed
to another task (an intent queued for sending) takes its context along with :func:`capture`
and :func:`restored`; a long-lived task started from inside a call starts outside its trace
(:func:`detached`).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Collection, Iterator, Mapping, Sequence
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.propagate import extract, inject
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

ENDPOINT_VARIABLE = "OTEL_EXPORTER_OTLP_ENDPOINT"
"""The collector's OTLP/gRPC address (``http://collector:4317``); unset: no tracing."""

TRACER_NAME = "copytrade"

_provider: Any = None  # the SDK TracerProvider while tracing is on (imported lazily)
_instrumentors: list[Any] = []
_Attributes = Mapping[str, str | int | float | bool]
Captured = otel_context.Context
"""A trace context :func:`capture` took, for :func:`restored`."""


def component_name(service: str) -> str:
    """Return the component a process name stands for: ``broker_svc`` is ``broker``."""
    return service.removesuffix("_svc")


def enabled() -> bool:
    """Return whether this process records and exports spans."""
    return _provider is not None


def configure(
    service: str,
    environ: Mapping[str, str] = os.environ,
    *,
    exporter: Any = None,
) -> bool:
    """Turn tracing on when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set; return whether it is on.

    Parameters
    ----------
    service
        The process's name; ``service.name`` is its component (:func:`component_name`).
    environ
        Where the endpoint is read. The exporter's other ``OTEL_EXPORTER_OTLP_*`` variables
        (headers, certificate, timeout) are read by the exporter itself.
    exporter
        A span exporter to use instead of OTLP, synchronously (tests: an in-memory one).
    """
    global _provider
    if _provider is not None:
        return True
    endpoint = environ.get(ENDPOINT_VARIABLE, "").strip()
    if exporter is None and not endpoint:
        return False

    from opentelemetry.instrumentation.aiohttp_client import AioHttpClientInstrumentor
    from opentelemetry.instrumentation.aiohttp_server import AioHttpServerInstrumentor
    from opentelemetry.instrumentation.grpc import (
        GrpcAioInstrumentorClient,
        GrpcAioInstrumentorServer,
        filters,
    )
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor,
        SimpleSpanProcessor,
        SpanProcessor,
    )

    processor: SpanProcessor
    if exporter is None:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        processor = BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint))
    else:
        processor = SimpleSpanProcessor(exporter)
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: component_name(service)}))
    provider.add_span_processor(processor)
    not_health = filters.negate(filters.health_check())
    instrumentors: list[tuple[Any, dict[str, Any]]] = [
        (GrpcAioInstrumentorServer(filter_=not_health), {}),
        (GrpcAioInstrumentorClient(filter_=not_health), {}),
        (AioHttpClientInstrumentor(), {"url_filter": _without_query}),
        (AioHttpServerInstrumentor(), {}),
    ]
    for instrumentor, options in instrumentors:
        instrumentor.instrument(tracer_provider=provider, **options)
        _instrumentors.append(instrumentor)
    _provider = provider
    return True


def shutdown() -> None:
    """Export what is left, then turn tracing off (tests; a process flushes at exit)."""
    global _provider
    provider, _provider = _provider, None
    while _instrumentors:
        _instrumentors.pop().uninstrument()
    if provider is not None:
        provider.shutdown()


def _without_query(url: Any) -> str:
    # A yarl.URL from aiohttp: venue query strings hold signed parameters and timestamps.
    return str(url.with_query(None).with_user(None))


def tracer() -> trace.Tracer:
    """Return the tracer of this process (a non-recording one while tracing is off)."""
    if _provider is None:
        return trace.NoOpTracer()
    tracer_: trace.Tracer = _provider.get_tracer(TRACER_NAME)
    return tracer_


def http_middlewares(untraced_paths: Collection[str] = ()) -> list[Any]:
    """Return the aiohttp middlewares of an instrumented server: one span per request.

    A request to one of ``untraced_paths`` gets no span: its query holds a credential (the
    dashboard's event-stream ticket), which a span would record with the URL.
    """
    if _provider is None:
        return []
    from aiohttp import web
    from opentelemetry.instrumentation.aiohttp_server import create_aiohttp_middleware

    traced = create_aiohttp_middleware(tracer_provider=_provider)
    skipped = frozenset(untraced_paths)

    @web.middleware
    async def middleware(request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path in skipped:
            return await handler(request)
        response: web.StreamResponse = await traced(request, handler)
        return response

    return [middleware]


def traceparent_of(span: Span) -> str:
    """Return ``span``'s W3C ``traceparent`` value, empty if it records nothing."""
    if not span.get_span_context().is_valid:
        return ""
    carrier: dict[str, str] = {}
    inject(carrier, context=trace.set_span_in_context(span))
    return carrier.get("traceparent", "")


def traceparent() -> str:
    """Return the ``traceparent`` of the current span, empty when there is none."""
    return traceparent_of(trace.get_current_span())


def current_ids() -> tuple[str, str] | None:
    """Return the current span's trace id and span id in hex, or None outside a span."""
    span_context = trace.get_current_span().get_span_context()
    if not span_context.is_valid:
        return None
    return format(span_context.trace_id, "032x"), format(span_context.span_id, "016x")


@contextlib.contextmanager
def root_spans(name: str, attributes: Sequence[_Attributes]) -> Iterator[list[Span]]:
    """Start one span per item of ``attributes``, each the root of a new trace.

    The spans are not made current (:func:`traceparent_of` names each); they end when the
    block does, marked failed if it raises.
    """
    if _provider is None:
        yield [trace.INVALID_SPAN] * len(attributes)
        return
    spans = [
        tracer().start_span(
            name,
            context=otel_context.Context(),
            kind=SpanKind.PRODUCER,
            attributes=dict(items),
        )
        for items in attributes
    ]
    try:
        yield spans
    except BaseException as e:
        for span in spans:
            span.record_exception(e)
            span.set_status(Status(StatusCode.ERROR, type(e).__name__))
        raise
    finally:
        for span in spans:
            span.end()


@contextlib.contextmanager
def continued(name: str, parent: str, attributes: _Attributes | None = None) -> Iterator[Span]:
    """Run the block in a new current span, a child of the ``traceparent`` value ``parent``.

    An empty ``parent`` (tracing off upstream, a signal replayed from the log) starts a new
    trace instead of joining whatever span is current.
    """
    if _provider is None:
        yield trace.INVALID_SPAN
        return
    carrier = {"traceparent": parent} if parent else {}
    with tracer().start_as_current_span(
        name,
        context=extract(carrier, context=otel_context.Context()),
        kind=SpanKind.CONSUMER,
        attributes=dict(attributes or {}),
    ) as span:
        yield span


@contextlib.contextmanager
def detached() -> Iterator[None]:
    """Run the block outside any trace: for starting long-lived tasks from inside a call.

    A task copies the context it is created in; a source reader or a send queue started by
    a call would otherwise add every later poll or order to that call's trace.
    """
    if _provider is None:
        yield
        return
    token = otel_context.attach(otel_context.Context())
    try:
        yield
    finally:
        otel_context.detach(token)


def capture() -> Captured | None:
    """Return the current trace context, to continue it in another task (None: tracing off)."""
    if _provider is None:
        return None
    return otel_context.get_current()


@contextlib.contextmanager
def restored(captured: Captured | None) -> Iterator[None]:
    """Run the block in a context :func:`capture` returned (as is, for None)."""
    if captured is None:
        yield
        return
    token = otel_context.attach(captured)
    try:
        yield
    finally:
        otel_context.detach(token)
