"""The gateway's /metrics: process metrics, gRPC client metrics, and every route's series at 0."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from tests.gateway.conftest import API, Harness


async def test_metrics_has_process_gc_python_and_grpc_client_metrics(harness: Harness) -> None:
    response = await harness.client.get("/metrics")
    text = await response.text()
    assert response.status == 200
    families = {family.name: family for family in text_string_to_metric_families(text)}
    samples = {sample.name for family in families.values() for sample in family.samples}
    for name in (
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_open_fds",
        "python_gc_objects_collected_total",
        "python_gc_collections_total",
        "python_info",
    ):
        assert name in samples, name
    for name in ("grpc_client_started", "grpc_client_handled", "grpc_client_handling_seconds"):
        assert name in families, name


async def test_every_route_has_its_success_series_at_zero_before_its_first_request(
    harness: Harness,
) -> None:
    text = await (await harness.client.get("/metrics")).text()
    route = f"{API}/status/{{config_id}}"
    assert (
        f'copytrade_gateway_http_requests_total{{code="200",method="GET",route="{route}"}} 0.0'
        in text
    )
    assert 'copytrade_gateway_http_requests_total{code="200",method="GET",route="/livez"} 0.0' in (
        text
    )
    await harness.call("GET", f"{API}/status/c-1")
    text = await (await harness.client.get("/metrics")).text()
    assert (
        f'copytrade_gateway_http_requests_total{{code="200",method="GET",route="{route}"}} 1.0'
        in text
    )
