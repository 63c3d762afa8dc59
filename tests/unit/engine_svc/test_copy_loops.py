"""The copy loop check (pure): which targets would close a cycle of copied accounts."""

from __future__ import annotations

from datetime import UTC, datetime

from engine_svc.domain.loops import copy_edges, loop_targets
from engine_svc.domain.model import CopyConfig, CopyStatus, SourceKind
from tests.fakes.configs import copy_config

NOW = datetime(2026, 12, 4, tzinfo=UTC)


def _config(
    config_id: str,
    source: str,
    *targets: str,
    status: CopyStatus = CopyStatus.ACTIVE,
    kind: SourceKind = SourceKind.EXCHANGE,
) -> CopyConfig:
    return copy_config(
        NOW,
        config_id=config_id,
        source_kind=kind,
        source_id=source,
        target_exchange_ids=targets,
        status=status,
    )


def test_a_target_that_copies_back_into_the_source_closes_a_cycle() -> None:
    edges = copy_edges([_config("1", "B", "A"), _config("2", "C", "D")])
    assert loop_targets(edges, "A", ["D", "B", "A"]) == [1, 2]  # B → A; A itself


def test_paused_and_reducing_count_halted_stopped_and_strategies_do_not() -> None:
    for status, closes in [
        (CopyStatus.PAUSED, [0]),
        (CopyStatus.REDUCING, [0]),
        (CopyStatus.HALTED, []),
        (CopyStatus.STOPPED, []),
    ]:
        edges = copy_edges([_config("1", "B", "C", status=status), _config("2", "C", "A")])
        assert loop_targets(edges, "A", ["B"]) == closes, status
    edges = copy_edges([_config("1", "B", "A", kind=SourceKind.BACKTEST)])
    assert loop_targets(edges, "A", ["B"]) == []


def test_the_configuration_being_resumed_is_left_out_of_the_graph() -> None:
    configs = [_config("1", "A", "B"), _config("2", "B", "C")]
    assert loop_targets(copy_edges(configs, without="1"), "A", ["B"]) == []
    assert loop_targets(copy_edges(configs), "C", ["A"]) == [0]
