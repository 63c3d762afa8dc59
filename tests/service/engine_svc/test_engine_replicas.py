"""Engine replicas share the leader sources through leases, and a taker proves what it inherits.

Several engines on one PostgreSQL database each copy the sources they hold a lease on (each
signal is recorded and sent once); a replica that takes a source over fences the broker at its
new token and sends again at once an order the previous holder marked SENT but never placed
(the broker's "never placed"), instead of waiting out the venue's visibility lag. On SQLite a
second engine refuses to start.
"""

from __future__ import annotations

import dataclasses
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from engine_harness import Harness

from copytrade.engine.v1 import engine_service_pb2 as pb
from engine_svc.domain.model import Intent, IntentState
from engine_svc.server import EngineDeps, build_engine
from engine_svc.store import EngineStore
from meshctl.status import service_status as status_of
from meshkit import db
from meshkit.leases import Fenced
from meshkit.settings import ConfigError
from meshkit.testing import eventually


async def _intents(store: EngineStore, config_id: str) -> list[Intent]:
    return sorted(await store.list_intents(config_id, None, None, 1000), key=lambda i: i.sequence)


async def _filled(store: EngineStore, config_id: str, count: int) -> list[Intent] | None:
    intents = await _intents(store, config_id)
    done = len(intents) == count and all(i.state is IntentState.FILLED for i in intents)
    return intents if done else None


async def _held_token(store: EngineStore, source: str) -> int:
    lease = {lease.resource: lease for lease in await store.leases.leases()}[source]
    assert lease.live
    return lease.token


async def _sent_but_never_placed(harness: Harness, config_id: str, token: int) -> Intent:
    """An intent its holder marked SENT under ``token`` and died before the broker saw it."""
    (model,) = await _intents(harness.store, config_id)
    ghost = dataclasses.replace(
        model,
        intent_id=str(uuid.uuid4()),
        sequence=model.sequence + 1,
        signal_id=str(uuid.uuid4()),
        client_order_id=f"ghost{uuid.uuid4().hex[:16]}",
        state=IntentState.SENT,
        venue_order_id="",
        filled_quantity=Decimal(0),
        average_price=None,
        attempts=1,
        last_sent_at=harness.clock.now(),
        sent_token=token,
    )
    assert await harness.store.insert_intent(ghost)
    return ghost


async def test_a_takers_never_placed_order_is_sent_again_at_once(harness: Harness) -> None:
    config_id, source, _ = await harness.start_copy()
    harness.world.sync.publish(source)
    await eventually(lambda: _filled(harness.store, config_id, 1), timeout=10)
    token = await _held_token(harness.store, source)
    await harness.stop()
    ghost = await _sent_but_never_placed(harness, config_id, token)

    # The next replica takes the source over (a higher token) with a venue visibility lag far
    # longer than this test: only the fenced "never placed" proof can send the order again.
    harness.settings = lambda: dataclasses.replace(  # type: ignore[method-assign]
        Harness.settings(harness), resend_lag_seconds=3600
    )
    await harness.start()
    assert await _held_token(harness.store, source) > token

    async def resent() -> Intent | None:
        intent = await harness.store.get_intent(ghost.intent_id)
        return intent if intent is not None and intent.state is IntentState.FILLED else None

    final = await eventually(resent, timeout=10)
    assert final.attempts == 2
    assert final.sent_token == await _held_token(harness.store, source)
    placed = [c.client_order_id for c in harness.world.broker.place_calls]
    assert placed.count(ghost.client_order_id) == 1
    assert harness.world.broker.fences[f"engine:{source}"] == final.sent_token


async def test_an_order_sent_under_the_takers_own_token_waits_for_the_lag(
    harness: Harness,
) -> None:
    config_id, source, _ = await harness.start_copy()
    harness.world.sync.publish(source)
    await eventually(lambda: _filled(harness.store, config_id, 1), timeout=10)
    token = await _held_token(harness.store, source)
    # Sent by this very replica (its own token): the broker's "never placed" could be a send
    # still on its way, so only the venue lag and repeated not-found answers may re-send it.
    ghost = await _sent_but_never_placed(harness, config_id, token)

    async def looked_up_twice() -> bool:
        intent = await harness.store.get_intent(ghost.intent_id)
        return intent is not None and intent.not_found_count >= 2

    await eventually(looked_up_twice, timeout=10)
    intent = await harness.store.get_intent(ghost.intent_id)
    assert intent is not None and intent.state is IntentState.SENT
    assert ghost.client_order_id not in [
        c.client_order_id for c in harness.world.broker.place_calls
    ]


async def test_a_replica_whose_lease_was_taken_cannot_write_or_send(harness: Harness) -> None:
    config_id, source, _ = await harness.start_copy()
    harness.world.sync.publish(source)
    (intent,) = await eventually(lambda: _filled(harness.store, config_id, 1), timeout=10)
    token = await _held_token(harness.store, source)
    await harness.stop()
    # Another replica takes the source over while this one is paused.
    await harness.store.database.execute(
        "UPDATE engine_leases SET owner = ?, token = token + 1 WHERE resource = ?",
        ("another-replica", source),
    )
    pending = dataclasses.replace(
        intent, intent_id=str(uuid.uuid4()), client_order_id="x1", state=IntentState.PENDING
    )
    with pytest.raises(Fenced):
        await harness.store.mark_sent(pending, harness.clock.now() + timedelta(seconds=1), token)
    with pytest.raises(Fenced):
        async with harness.store.signal_transaction((source, token)):
            pass
    # Under the current token both go through.
    async with harness.store.signal_transaction((source, token + 1)):
        pass


async def test_two_engines_divide_the_sources_and_copy_each_signal_once(
    harness: Harness, database: db.Database
) -> None:
    configs = [await harness.start_copy() for _ in range(4)]
    second_settings = dataclasses.replace(harness.settings(), lease_ttl_ms=600)
    if database.dialect == "sqlite":
        second = await build_engine(second_settings, EngineDeps(store=harness.store))
        with pytest.raises(ConfigError, match="SQLite serves one replica"):
            await second.start()
        return
    second = await build_engine(second_settings, EngineDeps(store=harness.store))
    await second.start()
    try:
        assert harness.engine is not None
        first = harness.engine

        def divided() -> bool:
            one, two = set(first.ownership.sources()), set(second.ownership.sources())
            return len(one) == 2 and len(two) == 2 and not one & two

        await eventually(divided, timeout=15)
        for _, source, _ in configs:
            harness.world.sync.publish(source)
        for config_id, _, _ in configs:
            await eventually(lambda c=config_id: _filled(harness.store, c, 1), timeout=10)
        placed = [c.client_order_id for c in harness.world.broker.place_calls]
        assert len(placed) == len(set(placed)) == 4
        # The operator sees who holds what (copytrade status).
        lines: list[str] = []
        await status_of(harness.store.database, "engine", "leader sources it copies", lines.append)
        text = "\n".join(lines)
        assert "engine: 2 live replica(s)" in text
        for replica in (first.keeper.replica_id, second.keeper.replica_id):
            assert f"{replica}  " in text and "holds 2" in text
        for _, source, _ in configs:
            assert source in text
    finally:
        await second.shutdown()


async def test_a_lease_behind_the_brokers_fence_moves_past_it_and_copies(harness: Harness) -> None:
    # The engine's lease rows were lost or restored from a backup: the broker already fenced
    # the source at a higher token. The engine must not sit on a lease it cannot send under.
    target = harness.world.broker.add_account()
    source = harness.world.sync.add_backtest()
    harness.world.broker.fences[f"engine:{source}"] = 50
    reply = await harness.call(
        "StartCopy",
        pb.StartCopyRequest(source_backtest_id=source, target_exchange_ids=[target.exchange_id]),
    )
    harness.world.sync.publish(source)
    (intent,) = await eventually(lambda: _filled(harness.store, reply.config_id, 1), timeout=10)
    assert intent.sent_token == 51 == await _held_token(harness.store, source)
    assert harness.world.broker.fences[f"engine:{source}"] == 51
