"""Recording a venue cancel: one nobody asked for is canceled_at_venue, unless a stop just did."""

from __future__ import annotations

import dataclasses
from decimal import Decimal as D
from typing import Any

import pytest

from engine_svc.copy.outcomes import Outcomes
from engine_svc.domain.model import Intent, IntentState, OrderStatus, VenueOrder
from tests.fakes.clock import FakeClock
from tests.unit.engine_svc.test_engine_intents import NOW, _intent


class _Store:
    """The one stored intent, and the changes written to it."""

    def __init__(self, stored: Intent) -> None:
        self.stored = stored
        self.changes: list[dict[str, Any]] = []

    async def get_intent(self, intent_id: str) -> Intent | None:
        return self.stored if intent_id == self.stored.intent_id else None

    async def update_intent(self, intent_id: str, expected: IntentState, **changes: Any) -> bool:
        if expected is not self.stored.state:
            return False
        self.changes.append(changes)
        return True


CANCELED = VenueOrder("coid", "v-1", OrderStatus.CANCELED, D("0"), None)


@pytest.mark.parametrize(
    ("wanted_since", "reason"), [(False, "canceled_at_venue"), (True, "")], ids=["hand", "stop"]
)
async def test_a_cancel_is_canceled_at_venue_unless_the_stored_intent_asked_for_it(
    wanted_since: bool, reason: str
) -> None:
    read = _intent(state=IntentState.ACCEPTED)  # read before a stop asked for the cancel
    store = _Store(dataclasses.replace(read, cancel_wanted=wanted_since))
    outcomes = Outcomes(store, FakeClock(NOW))  # type: ignore[arg-type]  # a two-method fake store

    assert await outcomes.apply(read, CANCELED, "binance", NOW)

    [changes] = store.changes
    assert (changes["state"], changes["reason"]) == (IntentState.CANCELED, reason)
