"""The read endpoints' copied orders: the cached, cheaper conversion gives the reference's bytes.

``reference_copied_order`` is the conversion as it was before the read path was made cheaper
(``Timestamp.FromDatetime``, the enum maps, ``set_decimal``); ``intent_to_proto`` and
``add_copied_orders`` (encoded once per parsed intent) must give the same message for random
intents (every optional field set and unset, fills with and without slippage, times before and
after 1970, microseconds), and a row read twice must give the same intent as parsing it anew.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

from copytrade.engine.v1 import engine_service_pb2 as pb
from engine_svc import codec
from engine_svc.domain import performance
from engine_svc.domain.model import Intent, IntentState, OrderType, Side, TimeInForce
from engine_svc.store.rows import _INTENT_FIELDS, _intent, _intent_params, _parse_intent
from meshkit.codec import set_decimal, timestamp_to_proto

DECIMALS = ["0", "1", "0.0001", "1.500", "123456789.123456789", "1E+3", "0.10", "50000.5"]


def reference_copied_order(intent: Intent) -> pb.CopiedOrder:
    message = pb.CopiedOrder(
        intent_id=intent.intent_id,
        config_id=intent.config_id,
        source_id=intent.source_id,
        sequence=intent.sequence,
        signal_id=intent.signal_id,
        target_exchange_id=intent.target_exchange_id,
        client_order_id=intent.client_order_id,
        symbol=intent.symbol,
        side=codec.side_to_proto(intent.side),
        type=codec.type_to_proto(intent.type),
        state=codec.intent_state_to_proto(intent.state),
        reason=intent.reason,
        venue_order_id=intent.venue_order_id,
        latency_ms=intent.latency_ms,
        attempts=intent.attempts,
        reduce_only=intent.reduce_only,
        leg=intent.leg,
        time_in_force=codec.time_in_force_to_proto(intent.time_in_force),
        leverage=intent.leverage or 0,
    )
    set_decimal(message.quantity, intent.quantity)
    for name in ("price", "stop_price", "average_price", "leader_price"):
        value = getattr(intent, name)
        if value is not None:
            set_decimal(getattr(message, name), value)
    set_decimal(message.filled_quantity, intent.filled_quantity)
    set_decimal(message.leader_quantity, intent.leader_quantity)
    slippage = performance.slippage(intent)
    if slippage is not None:
        set_decimal(message.slippage, slippage)
    for field, value in (("create_time", intent.created_at), ("update_time", intent.updated_at)):
        stamp = timestamp_to_proto(value)
        if stamp is not None:
            getattr(message, field).CopyFrom(stamp)
    return message


def _decimal(rng: random.Random, optional: bool) -> Decimal | None:
    if optional and rng.random() < 0.3:
        return None
    return Decimal(rng.choice(DECIMALS))


def _time(rng: random.Random) -> datetime:
    tz = rng.choice([UTC, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-8))])
    seconds = rng.choice([0, 1, -86_400 * 400 - 1, 1_764_800_000, 4_102_444_800])
    micros = rng.choice([0, 1, 999_999, 123_456])
    return (
        datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=seconds, microseconds=micros)
    ).astimezone(tz)


def _random_intent(rng: random.Random, n: int) -> Intent:
    return Intent(
        intent_id=f"i-{n}",
        config_id=rng.choice(["c1", "c2"]),
        source_id=rng.choice(["s1", "é ü \u2603"]),
        sequence=rng.choice([0, 1, 2**40]),
        signal_id=f"sig-{n}",
        target_exchange_id=rng.choice(["t1", "t2"]),
        leg=rng.choice([0, 1]),
        client_order_id=f"coid-{n}",
        symbol=rng.choice(["BTC/USDT", "ETH/USDT:USDT"]),
        side=rng.choice(list(Side)),
        type=rng.choice(list(OrderType)),
        quantity=_decimal(rng, False) or Decimal(0),
        price=_decimal(rng, True),
        state=rng.choice(list(IntentState)),
        reason=rng.choice(["", "below_min_notional"]),
        leader_quantity=_decimal(rng, False) or Decimal(0),
        leader_price=_decimal(rng, True),
        leader_event_time=_time(rng),
        created_at=_time(rng),
        updated_at=_time(rng),
        venue_order_id=rng.choice(["", "v-1"]),
        filled_quantity=_decimal(rng, False) or Decimal(0),
        average_price=_decimal(rng, True),
        latency_ms=rng.choice([0.0, 1.5, 1234.25]),
        not_found_count=rng.choice([0, 2]),
        attempts=rng.choice([0, 1, 3]),
        last_sent_at=rng.choice([None, _time(rng)]),
        time_in_force=rng.choice([None, *TimeInForce]),
        cancel_wanted=rng.choice([False, True]),
        stop_price=_decimal(rng, True),
        reduce_only=rng.choice([False, True]),
        leverage=rng.choice([None, 1, 10]),
        sent_token=rng.choice([0, 7]),
    )


def test_copied_orders_are_the_reference_conversion_for_random_intents() -> None:
    rng = random.Random(14)
    intents = [_random_intent(rng, n) for n in range(600)]
    for intent in intents:
        expected = reference_copied_order(intent)
        assert codec.build_copied_order(intent) == expected
        assert codec.intent_to_proto(intent) == expected
        assert codec.intent_to_proto(intent) == expected  # the second time from the cache
        assert codec.copied_order_bytes(intent) == expected.SerializeToString()
    for source_id in ("", "leader-1"):
        response = pb.ListCopiedOrdersResponse()
        codec.add_copied_orders(response.orders, intents, source_id)
        expected_orders = [reference_copied_order(i) for i in intents]
        if source_id:
            for order in expected_orders:
                order.source_id = source_id
        assert list(response.orders) == expected_orders


def test_an_equal_intent_of_another_row_version_is_encoded_for_itself() -> None:
    rng = random.Random(7)
    first = _random_intent(rng, 1)
    codec.copied_order_bytes(first)
    changed = Intent(**{**first.__dict__, "state": IntentState.CANCELED, "reason": "stopped"})
    assert codec.intent_to_proto(changed) == reference_copied_order(changed)
    assert codec.intent_to_proto(first) == reference_copied_order(first)


def test_a_row_read_again_is_the_intent_parsed_anew() -> None:
    rng = random.Random(3)
    for n in range(300):
        written = _random_intent(rng, n)
        row = dict(zip(_INTENT_FIELDS, _intent_params(written), strict=True))
        parsed = _parse_intent(tuple(row[name] for name in _INTENT_FIELDS))
        assert _intent(row) == parsed
        again = _intent(dict(row))
        assert again == parsed
        assert again is _intent(row)  # one shared, frozen intent per row version
        moved = {**row, "state": IntentState.FILLED.value, "filled_quantity": "0.5"}
        assert _intent(moved) == _parse_intent(tuple(moved[name] for name in _INTENT_FIELDS))
