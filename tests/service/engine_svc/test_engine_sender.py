"""The sender on SQLite and PostgreSQL: a first send reads neither the intent nor, after the
first of its configuration, the configuration; the SENT write alone decides whether it leaves."""

from __future__ import annotations

from decimal import Decimal as D
from typing import Any

import pytest

from engine_svc.copy.outcomes import Outcomes
from engine_svc.copy.sender import Sender
from engine_svc.domain.model import CopyStatus, Intent, IntentState, OrderStatus, VenueOrder
from engine_svc.store import EngineStore
from meshkit import db
from tests.fakes.clock import FakeClock
from tests.service.engine_svc.test_engine_store import NOW, config, intent


class _Broker:
    """Records each order placed (with the user it was placed for) and fills it."""

    def __init__(self) -> None:
        self.placed: list[tuple[str, str]] = []

    async def place_order(
        self, intent: Intent, user_id: str, *, fence: tuple[str, int] | None = None
    ) -> VenueOrder:
        self.placed.append((intent.client_order_id, user_id))
        return VenueOrder(
            intent.client_order_id,
            f"v-{len(self.placed)}",
            OrderStatus.FILLED,
            intent.quantity,
            D(1),
        )


class _Counted:
    """The engine store, counting the reads of intents and configurations."""

    def __init__(self, store: EngineStore) -> None:
        self._store = store
        self.reads: dict[str, int] = {"get_intent": 0, "get_config": 0}

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._store, name)
        if name in self.reads:

            async def counted(*args: Any) -> Any:
                self.reads[name] += 1
                return await attribute(*args)

            return counted
        return attribute


@pytest.fixture
async def store(database: db.Database) -> EngineStore:
    store = EngineStore(database)
    await store.migrate()
    await store.insert_config(config())
    return store


def _sender(store: EngineStore) -> tuple[Sender, _Counted, _Broker]:
    counted, broker, clock = _Counted(store), _Broker(), FakeClock(NOW)
    outcomes = Outcomes(counted, clock)
    return Sender(counted, broker, clock, outcomes), counted, broker  # type: ignore[arg-type]


async def test_handed_over_intents_are_sent_without_reading_them_or_their_config_again(
    store: EngineStore,
) -> None:
    sender, counted, broker = _sender(store)
    first, second = intent("i1", "t1"), intent("i2", "t2")
    for each in (first, second):
        assert await store.insert_intent(each)
    sender.hand_over([first, second])
    assert await sender.place("i1") is None
    assert await sender.place("i2") is None
    assert broker.placed == [(first.client_order_id, "u1"), (second.client_order_id, "u1")]
    assert counted.reads == {"get_intent": 0, "get_config": 1}
    for intent_id in ("i1", "i2"):
        stored = await store.get_intent(intent_id)
        assert stored is not None and (stored.state, stored.attempts) == (IntentState.FILLED, 1)
    # An intent not handed over is read, as before.
    third = intent("i3", "t1", sequence=6)
    assert await store.insert_intent(third)
    await sender.place("i3")
    assert counted.reads == {"get_intent": 1, "get_config": 1}
    assert len(broker.placed) == 3


async def test_a_handed_over_intent_is_not_sent_once_its_config_paused_or_it_changed(
    store: EngineStore,
) -> None:
    sender, counted, broker = _sender(store)
    warm, paused, changed = intent("i1"), intent("i2", sequence=6), intent("i3", sequence=7)
    for each in (warm, paused, changed):
        assert await store.insert_intent(each)
    sender.hand_over([warm, paused, changed])
    await sender.place("i1")  # the configuration's route is known from here on
    assert len(broker.placed) == 1
    # Skipped elsewhere after it was handed over: the copy in hand is stale, nothing is sent.
    assert await store.update_intent("i3", IntentState.PENDING, state=IntentState.SKIPPED)
    await sender.place("i3")
    assert len(broker.placed) == 1
    # Paused after it was handed over: not sent, and skipped for the pause.
    assert await store.change_status("c1", CopyStatus.ACTIVE, CopyStatus.PAUSED, "user", NOW)
    await sender.place("i2")
    assert len(broker.placed) == 1
    stored = await store.get_intent("i2")
    assert stored is not None and stored.state is IntentState.SKIPPED
    # Resumed: a new intent handed over is sent from the copy in hand.
    assert await store.change_status("c1", CopyStatus.PAUSED, CopyStatus.ACTIVE, "user", NOW)
    late = intent("i4", sequence=8)
    assert await store.insert_intent(late)
    sender.hand_over([late])
    await sender.place("i4")
    assert len(broker.placed) == 2
    assert counted.reads["get_intent"] == 0
