"""Futures positions, rule by rule: a follower's open position at a derivatives venue (side, size,
entry) against what its copies should have produced: entries signed by side, reduce-only
closes, a short, a flip, an extra hand trade, a hedge-mode long and short (issue #18)."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from copytrade.broker.v1 import broker_service_pb2 as broker_pb
from recon_svc import codec
from recon_svc.domain.model import (
    Intent,
    IntentState,
    Item,
    LeaderSignal,
    Outcome,
    Side,
    VenueFill,
    VenueOrder,
    VenuePosition,
    VenueReport,
    VenueStatus,
)
from recon_svc.domain.reconcile import (
    is_derivative,
    leader_positions_after,
    position_side,
    positions,
    reconcile,
)

NAMESPACE = uuid.UUID("5b1c3a52-8a4e-5d7f-9c0b-6e2f41d3a7c9")
ACCOUNT = "futures-a"
PERP = "BTC/USDT:USDT"
T0 = datetime(2026, 1, 1, tzinfo=UTC)
END = T0 + timedelta(hours=1)
D = Decimal


def mesh_id(name: str) -> str:
    return str(uuid.uuid5(NAMESPACE, name))


def copy(n: int, side: Side, filled: str, state: IntentState = IntentState.FILLED) -> Intent:
    return Intent(
        intent_id=f"intent-{n}",
        source_id="src-1",
        sequence=n,
        signal_id=f"trade-{n}",
        target_exchange_id=ACCOUNT,
        client_order_id=mesh_id(f"copy-{n}"),
        symbol=PERP,
        side=side,
        state=state,
        reason="",
        filled_quantity=D(filled),
        create_time=T0,
        quantity=D(filled),
    )


def order_of(intent: Intent, filled: str | None = None) -> VenueOrder:
    return VenueOrder(
        exchange_id=ACCOUNT,
        client_order_id=intent.client_order_id,
        venue_order_id=f"v-{intent.sequence}",
        symbol=PERP,
        side=intent.side,
        status=VenueStatus.FILLED,
        filled_quantity=D(filled) if filled is not None else intent.filled_quantity,
        create_time=T0 + timedelta(minutes=intent.sequence),
    )


def venue(*orders: VenueOrder, held: tuple[VenuePosition, ...] = ()) -> VenueReport:
    return VenueReport(ACCOUNT, orders=orders, balances={"USDT": D("1000")}, positions=held)


def check(intents: list[Intent], report: VenueReport) -> Item:
    known = {i.client_order_id for i in intents}
    [item] = positions({ACCOUNT: {PERP}}, intents, {ACCOUNT: report}, known, T0, END)
    return item


def test_an_open_then_a_reduce_only_partial_close_leave_the_long_the_venue_holds() -> None:
    entry, exit_ = copy(1, Side.BUY, "0.3"), copy(2, Side.SELL, "0.1")
    held = (VenuePosition(PERP, "long", D("0.2"), entry_price=D("50000")),)

    item = check([entry, exit_], venue(order_of(entry), order_of(exit_), held=held))

    assert item.outcome is Outcome.MATCHED
    assert (item.venue_position, item.expected_position, item.drift) == (D("0.2"), D("0.2"), 0)
    assert "position at the venue long 0.2 entry 50000, expected long 0.2" in item.detail


def test_a_short_is_negative_and_matched_by_copies_that_sold() -> None:
    entry = copy(1, Side.SELL, "0.25")
    held = (VenuePosition(PERP, "short", D("0.25"), entry_price=D("50000")),)

    item = check([entry], venue(order_of(entry), held=held))

    assert item.outcome is Outcome.MATCHED
    assert (item.venue_position, item.expected_position) == (D("-0.25"), D("-0.25"))
    wire = codec.item_to_proto(item)
    assert (wire.venue_side, wire.expected_side) == ("short", "short")
    assert wire.venue_position.value == "-0.25"


def test_a_close_that_the_venue_did_not_fill_leaves_a_drift_with_both_sides() -> None:
    # The copies opened a long and closed it; the venue filled only part of the close.
    entry, close = copy(1, Side.BUY, "0.4"), copy(2, Side.SELL, "0.4")
    held = (VenuePosition(PERP, "long", D("0.1"), entry_price=D("50000")),)

    item = check([entry, close], venue(order_of(entry), order_of(close, "0.3"), held=held))

    assert item.outcome is Outcome.MISMATCHED
    assert (item.drift, item.venue_position, item.expected_position) == (D("0.1"), D("0.1"), 0)
    wire = codec.item_to_proto(item)
    assert (wire.venue_side, wire.expected_side) == ("long", "flat")
    assert "expected flat" in item.detail


def test_a_hand_trade_that_flipped_the_position_is_a_drift_against_the_copies() -> None:
    entry = copy(1, Side.BUY, "0.2")
    by_hand = VenueOrder(
        exchange_id=ACCOUNT,
        client_order_id="web_flip",
        venue_order_id="v-hand",
        symbol=PERP,
        side=Side.SELL,
        status=VenueStatus.FILLED,
        filled_quantity=D("0.5"),
        create_time=T0 + timedelta(minutes=5),
    )
    held = (VenuePosition(PERP, "short", D("0.3")),)

    item = check([entry], venue(order_of(entry), by_hand, held=held))

    assert item.outcome is Outcome.MISMATCHED
    assert (item.drift, item.venue_position, item.expected_position) == (
        D("-0.5"),
        D("-0.3"),
        D("0.2"),
    )
    assert "(1 placed outside the mesh)" in item.detail


def test_a_hedge_mode_long_and_short_net_out() -> None:
    entry = copy(1, Side.BUY, "0.1")
    held = (VenuePosition(PERP, "long", D("0.3")), VenuePosition(PERP, "short", D("0.2")))

    item = check([entry], venue(order_of(entry), held=held))

    assert item.outcome is Outcome.MATCHED and item.venue_position == D("0.1")
    assert "long 0.3, short 0.2" in item.detail


def test_a_liquidation_the_engine_copied_as_a_close_leaves_the_follower_flat() -> None:
    entry, liquidated = copy(1, Side.BUY, "0.2"), copy(2, Side.SELL, "0.2")
    # The venue's trades of the close (listed as a fill too) count once: by the order.
    report = venue(order_of(entry), order_of(liquidated))
    report = VenueReport(
        ACCOUNT,
        orders=report.orders,
        balances=report.balances,
        fills=(VenueFill("v-2", liquidated.client_order_id, PERP, Side.SELL, D("0.2"), T0),),
    )

    item = check([entry, liquidated], report)

    assert item.outcome is Outcome.MATCHED
    assert (item.venue_position, item.expected_position) == (0, 0)
    assert codec.item_to_proto(item).venue_side == "flat"


def test_an_unresolved_copy_is_an_error_not_a_position() -> None:
    entry = copy(1, Side.BUY, "0", state=IntentState.UNKNOWN)

    item = check([entry], venue(held=(VenuePosition(PERP, "long", D("0.2")),)))

    assert item.outcome is Outcome.ERROR and item.venue_position is None


def test_a_spot_symbol_keeps_its_balance_rule_and_no_side() -> None:
    assert not is_derivative("BTC/USDT") and is_derivative(PERP)
    assert [position_side(D(v)) for v in ("1", "-1", "0")] == ["long", "short", "flat"]


def test_the_broker_s_positions_are_sized_in_base_with_their_contract_size() -> None:
    reply = broker_pb.GetPortfolioResponse(
        positions=[
            broker_pb.Position(
                symbol="ETH/USD:ETH",
                side="short",
                contracts={"value": "3"},
                contract_size={"value": "0.1"},
                entry_price={"value": "2000"},
            ),
            broker_pb.Position(symbol=PERP, side="long", contracts={"value": "0.5"}),
        ]
    )

    found = codec.positions_from_proto(reply)

    assert found == (
        VenuePosition("ETH/USD:ETH", "short", D("0.3"), entry_price=D("2000")),
        VenuePosition(PERP, "long", D("0.5")),
    )


def test_the_leader_s_position_after_the_last_fill_copied_and_the_follower_s_share() -> None:
    signals = [
        LeaderSignal("src-1", 1, "trade-1", PERP, Side.SELL, D("3"), T0, leader_position=D(0)),
        LeaderSignal("src-1", 2, "trade-2", PERP, Side.BUY, D("1"), T0, leader_position=D(-3)),
        LeaderSignal("src-1", 3, "trade-3", "BTC/USDT", Side.BUY, D("1"), T0, leader_position=D(5)),
        LeaderSignal("src-1", 4, "trade-4", PERP, Side.BUY, D("1"), T0),  # position not known
    ]
    after = leader_positions_after(signals)
    assert after == {1: D(-3), 2: D(-2)}  # spot and unknown positions left out

    entry, exit_ = copy(1, Side.SELL, "0.3"), copy(2, Side.BUY, "0.1")
    held = (VenuePosition(PERP, "short", D("0.2")),)
    known = {entry.client_order_id, exit_.client_order_id}
    [item] = positions(
        {ACCOUNT: {PERP}},
        [entry, exit_],
        {ACCOUNT: venue(order_of(entry), order_of(exit_), held=held)},
        known,
        T0,
        END,
        leader_after=after,
    )

    assert item.outcome is Outcome.MATCHED
    assert item.detail.endswith(
        "; the leader holds short 2 after the last fill copied (the expected position is 0.1 of it)"
    )


def test_a_copied_reverse_is_two_legs_each_judged_not_a_duplicate() -> None:
    signal = LeaderSignal("src-1", 1, "trade-1", PERP, Side.SELL, D("2"), T0, leader_position=D(1))
    close = copy(1, Side.SELL, "0.1")
    entry = replace(copy(1, Side.SELL, "0.1"), intent_id="intent-1b", client_order_id=mesh_id("b"))
    entry = replace(entry, leg=1)
    report = venue(order_of(close), order_of(entry))

    items = reconcile([signal], [ACCOUNT], [close, entry], {ACCOUNT: report})

    assert [(i.outcome, i.client_order_id) for i in items] == [
        (Outcome.MATCHED, close.client_order_id),
        (Outcome.MATCHED, entry.client_order_id),
    ]
    assert items[1].detail.startswith("leg 1: ")
    again = replace(entry, intent_id="intent-1c", client_order_id=mesh_id("c"))
    items = reconcile([signal], [ACCOUNT], [close, entry, again], {ACCOUNT: report})
    assert [i.outcome for i in items] == [Outcome.MATCHED, Outcome.DUPLICATE]
