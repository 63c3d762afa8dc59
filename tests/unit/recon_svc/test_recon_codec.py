"""Conversions between the protos and the reconciliation domain."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from google.type import decimal_pb2

from copytrade.common.v1 import types_pb2
from copytrade.engine.v1 import engine_service_pb2 as engine_pb
from copytrade.recon.v1 import recon_service_pb2 as pb
from copytrade.sync.v1 import sync_service_pb2 as sync_pb
from meshkit import errors
from meshkit.codec import timestamp_to_proto
from recon_svc import codec
from recon_svc.domain.model import Counts, IntentState, Item, Outcome, Report, Side, VenueStatus

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_config_takes_the_source_from_whichever_source_field_is_set() -> None:
    reply = engine_pb.GetCopyStatusResponse(
        config=engine_pb.CopyConfig(
            config_id="c",
            source_exchange_id="leader",
            target_exchange_ids=["a", "b"],
            create_time=timestamp_to_proto(T0),
        )
    )
    config = codec.config_from_proto(reply)
    assert config.source_id == "leader"
    assert config.target_exchange_ids == ("a", "b")
    assert config.create_time == T0


def test_config_without_source_is_an_upstream_error_not_the_callers() -> None:
    reply = engine_pb.GetCopyStatusResponse(config=engine_pb.CopyConfig(config_id="c"))
    with pytest.raises(errors.ServiceError) as caught:
        codec.config_from_proto(reply)
    assert not isinstance(caught.value, errors.InvalidArgument)
    assert caught.value.reason == "MALFORMED_UPSTREAM_REPLY"


def test_intent_reads_state_side_and_decimal_filled_quantity() -> None:
    message = engine_pb.CopiedOrder(
        intent_id="i",
        source_id="s",
        sequence=4,
        target_exchange_id="a",
        client_order_id="x",
        symbol="ETH/USD",
        side=types_pb2.ORDER_SIDE_SELL,
        state=engine_pb.INTENT_STATE_EXPIRED,
        filled_quantity=decimal_pb2.Decimal(value="0.123456789012345678"),
    )
    intent = codec.intent_from_proto(message)
    assert intent.state is IntentState.EXPIRED
    assert intent.side is Side.SELL
    assert intent.filled_quantity == Decimal("0.123456789012345678")


def test_intent_with_empty_filled_quantity_has_filled_nothing() -> None:
    intent = codec.intent_from_proto(engine_pb.CopiedOrder(state=engine_pb.INTENT_STATE_SKIPPED))
    assert intent.filled_quantity == Decimal(0)


def test_malformed_upstream_decimal_is_an_upstream_error() -> None:
    message = types_pb2.Order(filled_quantity=decimal_pb2.Decimal(value="lots"))
    with pytest.raises(errors.ServiceError) as caught:
        codec.order_from_proto(message, "a")
    assert not isinstance(caught.value, errors.InvalidArgument)
    assert caught.value.reason == "MALFORMED_UPSTREAM_REPLY"


def test_venue_order_status_is_read() -> None:
    message = types_pb2.Order(client_order_id="x", status=types_pb2.ORDER_STATUS_PARTIALLY_FILLED)
    assert codec.order_from_proto(message, "a").status is VenueStatus.PARTIALLY_FILLED
    assert codec.order_from_proto(message, "a").exchange_id == "a"


def test_report_goes_on_the_wire_with_or_without_items() -> None:
    item = Item(
        sequence=3,
        signal_id="t",
        target_exchange_id="a",
        client_order_id="x",
        outcome=Outcome.DUPLICATE,
        detail="two",
        intent_state="filled",
        venue_filled_quantity=Decimal("1.50"),
    )
    empty = Item(
        sequence=4,
        signal_id="u",
        target_exchange_id="a",
        client_order_id="",
        outcome=Outcome.MISSING,
        detail="none",
        intent_state="",
        venue_filled_quantity=None,
    )
    report = Report(
        reconciliation_id="r",
        config_id="c",
        user_id="u",
        start_time=T0,
        end_time=T0,
        created_at=T0,
        counts=Counts.of([item, empty]),
        items=(item, empty),
    )
    message = codec.report_to_proto(report)
    assert message.duplicate_count == 1 and message.missing_count == 1 and message.total_count == 2
    assert message.items[0].outcome == pb.ITEM_OUTCOME_DUPLICATE
    assert message.items[0].venue_filled_quantity.value == "1.5"
    assert not message.items[1].HasField("venue_filled_quantity")
    assert message.start_time.ToDatetime(tzinfo=UTC) == T0
    assert len(codec.report_to_proto(report, with_items=False).items) == 0


def test_a_mirrored_fill_names_the_signal_whose_copies_mirror_its_order() -> None:
    message = sync_pb.Signal(
        source_id="src-1", sequence=7, signal_id="t-7", order_mirrored=True, opened_sequence=3
    )
    signal = codec.signal_from_proto(message)
    assert signal.is_fill
    assert (signal.order_mirrored, signal.opened_sequence) == (True, 3)
