"""The engine's operating gauges the alert rules read (deploy/prometheus/rules, docs/alerts.md).

``copytrade_engine_configs{status}`` counts the stored configurations per status, every status
present; ``copytrade_engine_signal_stream_connected`` is 1 while sync's stream answers.
"""

from __future__ import annotations

from engine_harness import Harness
from prometheus_client import REGISTRY

from copytrade.engine.v1 import engine_service_pb2 as pb
from engine_svc.domain.model import CopyStatus
from meshkit.testing import eventually


def _configs() -> dict[str, float | None]:
    return {
        status.value: REGISTRY.get_sample_value("copytrade_engine_configs", {"status": status})
        for status in CopyStatus
    }


def _connected() -> float | None:
    return REGISTRY.get_sample_value("copytrade_engine_signal_stream_connected")


async def test_the_configs_gauge_counts_every_status_and_follows_a_halt(harness: Harness) -> None:
    nothing = {status.value: 0.0 for status in CopyStatus}
    await eventually(lambda: _configs() == nothing)

    halted, _source, _account = await harness.start_copy()
    await harness.start_copy()
    await eventually(lambda: _configs() == {**nothing, "ACTIVE": 2.0})

    await harness.call("KillSwitch", pb.KillSwitchRequest(config_id=halted))
    await eventually(lambda: _configs() == {**nothing, "ACTIVE": 1.0, "HALTED": 1.0})


async def test_the_signal_stream_gauge_is_1_while_sync_answers_and_0_once_it_is_gone(
    harness: Harness,
) -> None:
    await eventually(lambda: _connected() == 1.0)
    await harness.stop()
    assert _connected() == 0.0
