"""Unknown outcomes (a timeout, a broker killed mid-order) settled in seconds, never copied late.

The fake broker's record of calls (``place_calls``, ``placed``, ``get_order_calls``) is what
reached the venue; the engine's store is what the user sees.
"""

from __future__ import annotations

from decimal import Decimal

from engine_harness import Harness
from test_engine_copy_path import _intents, _start

from copytrade.common.v1 import types_pb2
from engine_svc.domain.model import Intent, IntentState
from meshkit import errors
from meshkit.testing import eventually


async def test_an_order_the_venue_has_is_known_in_seconds_after_a_timeout(
    harness: Harness,
) -> None:
    # The resolver's rounds are a minute apart: only the lookup made right after the
    # timeout can find the order in time.
    harness.resolver_interval_ms = 60_000
    await harness.restart()
    target = harness.world.broker.add_account()
    config_id, source = await _start(harness, target)
    # The venue is not reachable for the first lookups: they are asked again, not given up.
    harness.world.broker.get_order_error = errors.Unavailable("venue unreachable")
    harness.world.broker.place_script = ["unknown_placed"]
    harness.world.sync.publish(source)

    async def unknown() -> Intent | None:
        intents = await _intents(harness, config_id)
        return intents[0] if intents and intents[0].state is IntentState.UNKNOWN else None

    intent = await eventually(unknown, timeout=5)
    await eventually(lambda: len(harness.world.broker.get_order_calls) >= 2, timeout=5)
    harness.world.broker.get_order_error = None

    async def filled() -> Intent | None:
        intents = await _intents(harness, config_id)
        return intents[0] if intents and intents[0].state is IntentState.FILLED else None

    resolved = await eventually(filled, timeout=8)
    assert resolved.filled_quantity == intent.quantity
    assert harness.world.broker.placed[intent.client_order_id] == 1
    assert len(harness.world.broker.place_calls) == 1


async def test_a_resend_after_max_signal_age_is_skipped_stale_and_never_sent(
    harness: Harness,
) -> None:
    target = harness.world.broker.add_account()
    config_id, source = await _start(harness, target)
    harness.world.broker.place_script = ["unknown_lost"]
    harness.world.sync.publish(source)

    async def proved_absent() -> Intent | None:
        intents = await _intents(harness, config_id)
        ok = intents and intents[0].state is IntentState.UNKNOWN and intents[0].not_found_count >= 3
        return intents[0] if ok else None

    intent = await eventually(proved_absent, timeout=10)
    # Past the resend lag (10 s here) and past the default max_signal_age (60 s).
    harness.clock.advance(61)

    async def skipped() -> Intent | None:
        intents = await _intents(harness, config_id)
        return intents[0] if intents and intents[0].state is IntentState.SKIPPED else None

    ended = await eventually(skipped, timeout=10)
    assert ended.reason == "stale_on_resend"
    assert [c.client_order_id for c in harness.world.broker.place_calls] == [intent.client_order_id]
    assert harness.world.broker.placed[intent.client_order_id] == 0


async def test_an_exit_after_an_unknown_entry_waits_for_it_and_sells_the_real_position(
    harness: Harness,
) -> None:
    # The entry's first send never reached the venue (its outcome unknown); the leader's
    # exit comes at once. It must not be sized from the empty position: it waits until the
    # entry is proved absent and re-sent, then sells what the entry bought.
    target = harness.world.broker.add_account(equity=Decimal("10000"))
    config_id, source = await _start(harness, target)

    async def fill_builds_position(request) -> None:
        filled = not harness.world.broker.place_script  # the next mode is "fill"
        if filled and request.side == types_pb2.ORDER_SIDE_BUY:
            quantity = Decimal(request.quantity.value)
            target.balances["BTC"] = (quantity, quantity)

    harness.world.broker.on_place = fill_builds_position
    harness.world.broker.place_script = ["unknown_lost"]
    harness.world.sync.publish(source, quantity="0.1", leader_position="0")
    harness.world.sync.publish(
        source, side=types_pb2.ORDER_SIDE_SELL, quantity="0.1", leader_position="0.1"
    )

    async def entry_proved_absent() -> Intent | None:
        intents = await _intents(harness, config_id)
        ok = len(intents) >= 1 and intents[0].not_found_count >= 3
        return intents[0] if ok else None

    entry = await eventually(entry_proved_absent, timeout=10)
    assert entry.state is IntentState.UNKNOWN
    assert [i.sequence for i in await _intents(harness, config_id)] == [1]  # the exit waits
    harness.clock.advance(11)  # past the resend lag (10 s), well within max_signal_age

    async def both_filled() -> list[Intent] | None:
        intents = await _intents(harness, config_id)
        done = [i for i in intents if i.state in (IntentState.FILLED, IntentState.SKIPPED)]
        return intents if len(done) == 2 else None

    intents = {i.sequence: i for i in await eventually(both_filled, timeout=10)}
    assert intents[1].state is IntentState.FILLED and intents[1].attempts == 2
    assert intents[2].state is IntentState.FILLED, intents[2].reason
    assert intents[2].quantity == intents[1].quantity == Decimal("0.01")
    sides = [(c.client_order_id, c.side) for c in harness.world.broker.place_calls]
    assert sides == [
        (intents[1].client_order_id, types_pb2.ORDER_SIDE_BUY),
        (intents[1].client_order_id, types_pb2.ORDER_SIDE_BUY),
        (intents[2].client_order_id, types_pb2.ORDER_SIDE_SELL),
    ]
