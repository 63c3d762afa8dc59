"""Crash-only start: the engine proves with the venues what a previous run left unknown first.

Before it takes a new signal, a starting engine looks up every order whose outcome it does not
know; a configuration whose venue cannot be asked is halted (queries and cancels only), with a
reason that says which order and why, until the user resumes it.
"""

from __future__ import annotations

import asyncio

from engine_harness import Harness

from copytrade.engine.v1 import engine_service_pb2 as pb
from engine_svc.domain.model import Intent, IntentState
from meshkit import errors
from meshkit.testing import eventually


async def _intents(harness: Harness, config_id: str) -> list[Intent]:
    return sorted(
        await harness.store.list_intents(config_id, None, None, 1000), key=lambda i: i.sequence
    )


async def _left_unknown(harness: Harness, config_id: str, source: str) -> Intent:
    """Run a copy whose create timed out after the venue took it, then stop the engine."""
    broker = harness.world.broker
    broker.place_script = ["unknown_placed"]
    broker.get_order_error = errors.Unavailable("venue down", reason="VENUE_UNAVAILABLE")
    harness.world.sync.publish(source)

    async def unknown() -> Intent | None:
        intents = await _intents(harness, config_id)
        return intents[0] if intents and intents[0].state is IntentState.UNKNOWN else None

    intent = await eventually(unknown, timeout=10)
    await harness.stop()
    return intent


async def test_an_order_left_unknown_is_resolved_at_start_up_before_new_signals(
    harness: Harness,
) -> None:
    config_id, source, _ = await harness.start_copy()
    unknown = await _left_unknown(harness, config_id, source)
    broker = harness.world.broker
    broker.get_order_error = None
    broker.get_order_delay = 0.5  # a slow venue: new signals must still wait for its answer
    harness.world.sync.publish(source)  # the leader traded while the engine was down

    await harness.start()

    async def both_final() -> list[Intent] | None:
        intents = await _intents(harness, config_id)
        done = len(intents) == 2 and all(i.state is IntentState.FILLED for i in intents)
        return intents if done else None

    old, new = await eventually(both_final, timeout=10)
    assert old.intent_id == unknown.intent_id
    assert old.attempts == 1  # found at the venue, never sent again
    journal = broker.journal
    assert journal.index(("looked up", old.client_order_id)) < journal.index(
        ("placed", new.client_order_id)
    )
    assert [c.client_order_id for c in broker.place_calls] == [
        old.client_order_id,
        new.client_order_id,
    ]
    status = await harness.call("GetCopyStatus", pb.GetCopyStatusRequest(config_id=config_id))
    assert status.config.status == pb.COPY_STATUS_ACTIVE


async def test_a_venue_that_cannot_be_asked_at_start_up_halts_the_config_saying_why(
    harness: Harness,
) -> None:
    config_id, source, exchange_id = await harness.start_copy()
    unknown = await _left_unknown(harness, config_id, source)
    broker = harness.world.broker  # the venue still does not answer lookups

    engine = await harness.start()
    # Queries are served while the engine reconciles.
    status = await harness.call("GetCopyStatus", pb.GetCopyStatusRequest(config_id=config_id))
    assert status.config.config_id == config_id
    await asyncio.wait_for(engine.reconciled.wait(), timeout=15)

    status = await harness.call("GetCopyStatus", pb.GetCopyStatusRequest(config_id=config_id))
    assert status.config.status == pb.COPY_STATUS_HALTED
    assert not status.config.is_active
    reason = status.config.status_reason
    assert reason.startswith("start-up reconciliation failed")
    assert unknown.client_order_id in reason and exchange_id in reason
    assert "venue_unavailable" in reason
    assert len(broker.get_order_calls) >= 3  # asked more than once before giving up

    # Halted: a new leader trade sends nothing, and the unknown order is not sent again.
    harness.world.sync.publish(source)
    await asyncio.sleep(0.5)
    assert [c.client_order_id for c in broker.place_calls] == [unknown.client_order_id]

    # The venue answers again: the order is proved filled; the user resumes the copy.
    broker.get_order_error = None

    async def filled() -> Intent | None:
        [intent, *_] = await _intents(harness, config_id)
        return intent if intent.state is IntentState.FILLED else None

    await eventually(filled, timeout=10)
    await harness.call("ResumeCopy", pb.ResumeCopyRequest(config_id=config_id))
    status = await harness.call("GetCopyStatus", pb.GetCopyStatusRequest(config_id=config_id))
    assert status.config.status == pb.COPY_STATUS_ACTIVE
    assert broker.placed[unknown.client_order_id] == 1
