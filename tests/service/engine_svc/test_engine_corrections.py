"""CorrectPosition through the real engine: a correction is an intent, gated, sent once, audited."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import grpc
import pytest
from engine_fakes import dec
from engine_harness import Harness

from copytrade.common.v1 import types_pb2
from copytrade.engine.v1 import engine_service_pb2 as pb
from engine_svc.domain.corrections import correction_key
from engine_svc.domain.model import IntentState
from meshkit import clients, errors
from meshkit.testing import eventually

RECONCILIATION = "2f1d7c4e-0b3a-4c55-9e61-7a8b9c0d1e2f"


def _request(config_id: str, target: str, **changes: Any) -> pb.CorrectPositionRequest:
    fields: dict[str, Any] = {
        "config_id": config_id,
        "target_exchange_id": target,
        "symbol": "BTC/USDT",
        "side": types_pb2.ORDER_SIDE_BUY,
        "quantity": dec("0.01"),
        "reconciliation_id": RECONCILIATION,
    }
    fields.update(changes)
    return pb.CorrectPositionRequest(**fields)


async def _error(harness: Harness, request: pb.CorrectPositionRequest, **kwargs: Any) -> Any:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await harness.call("CorrectPosition", request, **kwargs)
    return clients.translate(caught.value)


async def test_a_correction_is_one_intent_sent_once_with_its_derived_id_and_audited(
    harness: Harness,
) -> None:
    config_id, _, target = await harness.start_copy()
    request = _request(config_id, target)

    first = await harness.call("CorrectPosition", request)
    again = await harness.call("CorrectPosition", request)

    expected_id, _ = correction_key(config_id, target, "BTC/USDT", RECONCILIATION)
    assert first.order.client_order_id == again.order.client_order_id == expected_id
    assert first.order.signal_id == f"correction:{RECONCILIATION}"
    assert first.order.state == pb.INTENT_STATE_PENDING
    assert Decimal(first.order.quantity.value) == Decimal("0.01")

    async def filled() -> bool:
        intent = await harness.store.intent_by_client_order_id(expected_id)
        return intent is not None and intent.state is IntentState.FILLED

    await eventually(filled, timeout=10)
    [placed] = harness.world.broker.place_calls
    assert (placed.client_order_id, placed.side) == (expected_id, types_pb2.ORDER_SIDE_BUY)
    entries = await harness.call("ListAuditEntries", pb.ListAuditEntriesRequest())
    [entry] = [e for e in entries.entries if e.action == "correct_position"]
    assert (entry.object_type, entry.object_id) == ("copy_config", config_id)
    assert expected_id in entry.after_json


async def test_a_correction_passes_the_risk_gate_which_may_reduce_or_skip_it(
    harness: Harness,
) -> None:
    config_id, _, target = await harness.start_copy()
    await harness.call(
        "UpdateConfig",
        pb.UpdateConfigRequest(
            config_id=config_id,
            risk_limits=pb.RiskLimits(max_position_size=dec("0.1")),
            update_mask={"paths": ["risk_limits.max_position_size"]},
        ),
    )
    # Equity 10000 at 50000 a BTC: 0.1 of it is 0.02 BTC at most.
    reduced = await harness.call("CorrectPosition", _request(config_id, target, quantity=dec("1")))
    assert reduced.order.state == pb.INTENT_STATE_PENDING
    assert Decimal(reduced.order.quantity.value) == Decimal("0.02")

    async def filled() -> bool:
        # A correction in flight refuses the next one (CORRECTION_IN_FLIGHT): let it fill.
        intent = await harness.store.intent_by_client_order_id(reduced.order.client_order_id)
        return intent is not None and intent.state is IntentState.FILLED

    await eventually(filled, timeout=10)
    await harness.call("PauseCopy", pb.PauseCopyRequest(config_id=config_id))
    skipped = await harness.call(
        "CorrectPosition", _request(config_id, target, reconciliation_id=str(uuid.uuid4()))
    )
    assert (skipped.order.state, skipped.order.reason) == (pb.INTENT_STATE_SKIPPED, "paused")


async def test_a_second_correction_waits_for_the_first_to_be_done(harness: Harness) -> None:
    config_id, _, target = await harness.start_copy()
    harness.world.broker.place_script = ["open"]
    await harness.call("CorrectPosition", _request(config_id, target))

    async def resting() -> bool:
        return len(harness.world.broker.place_calls) == 1

    await eventually(resting, timeout=10)
    error = await _error(harness, _request(config_id, target, reconciliation_id=str(uuid.uuid4())))
    assert isinstance(error, errors.FailedPrecondition)
    assert error.reason == "CORRECTION_IN_FLIGHT"


async def test_a_correction_of_another_users_config_or_account_is_refused(
    harness: Harness,
) -> None:
    config_id, _, target = await harness.start_copy()
    other_account = harness.world.broker.add_account().exchange_id

    not_found = await _error(harness, _request(config_id, target), user="user-other")
    assert isinstance(not_found, errors.NotFound)
    invalid = await _error(harness, _request(config_id, other_account))
    assert isinstance(invalid, errors.InvalidArgument)
    assert [v.field for v in invalid.violations] == ["target_exchange_id"]
    bad = await _error(
        harness, _request(config_id, target, quantity=dec("0"), reconciliation_id="x")
    )
    assert [v.field for v in bad.violations] == ["quantity", "reconciliation_id"]
    assert harness.world.broker.place_calls == []
