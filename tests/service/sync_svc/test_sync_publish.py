"""Strategy sources through the real servicer: create, publish, ownership, reading the log."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from sync_helpers import as_user, published

from copytrade.common.v1 import types_pb2
from copytrade.sync.v1 import sync_service_pb2 as pb
from copytrade.sync.v1 import sync_service_pb2_grpc as pb_grpc
from tests.fakes.clock import FakeClock

ALICE, BOB = as_user("alice"), as_user("bob")


def _violations(error: grpc.aio.AioRpcError) -> dict[str, str]:
    status = rpc_status.from_call(error)
    assert status is not None
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            return {v.field: v.description for v in bad.field_violations}
    return {}


async def _backtest(
    stub: pb_grpc.SyncServiceStub,
    metadata: tuple[tuple[str, str], ...] = ALICE,
    **fields: Any,
) -> str:
    request = pb.CreateBacktestRequest(name=str(fields.pop("name", "momentum")), **fields)
    reply = await stub.CreateBacktest(request, metadata=metadata)
    return reply.backtest_id


async def test_create_backtest_returns_a_uuid_source_owned_by_the_caller(
    stub: pb_grpc.SyncServiceStub,
) -> None:
    request = pb.CreateBacktestRequest(name="  momentum  ", public=True)
    request.equity.value = "25000.50"
    reply = await stub.CreateBacktest(request, metadata=ALICE)
    assert str(uuid.UUID(reply.backtest_id)) == reply.backtest_id
    source = reply.source
    assert source.source_id == reply.backtest_id and source.user_id == "alice"
    assert source.name == "momentum" and source.public
    assert source.kind == pb.SOURCE_KIND_BACKTEST and source.mode == pb.SYNC_MODE_PUBLISHED
    assert source.equity.value == "25000.5" and source.last_sequence == 0


async def test_create_backtest_without_a_user_is_unauthenticated(
    stub: pb_grpc.SyncServiceStub,
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.CreateBacktest(pb.CreateBacktestRequest(name="x"))
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED


@pytest.mark.parametrize(
    ("name", "equity", "field"),
    [
        ("", "", "name"),
        ("x" * 201, "", "name"),
        ("ok", "0", "equity"),
        ("ok", "-5", "equity"),
        ("ok", "lots", "equity"),
    ],
)
async def test_create_backtest_with_bad_fields_names_them(
    stub: pb_grpc.SyncServiceStub,
    name: str,
    equity: str,
    field: str,
) -> None:
    request = pb.CreateBacktestRequest(name=name)
    request.equity.value = equity
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.CreateBacktest(request, metadata=ALICE)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(_violations(caught.value)) == {field}


async def test_create_backtest_with_the_same_request_id_returns_the_same_source(
    stub: pb_grpc.SyncServiceStub,
) -> None:
    first = await _backtest(stub, request_id="req-1")
    again = await _backtest(stub, request_id="req-1")
    other_user = await _backtest(stub, metadata=BOB, request_id="req-1")
    fresh = await _backtest(stub, request_id="req-2")
    assert first == again
    assert len({first, other_user, fresh}) == 3


async def test_publish_logs_signals_in_order_with_the_strategy_equity(
    stub: pb_grpc.SyncServiceStub,
) -> None:
    request = pb.CreateBacktestRequest(name="alpha")
    request.equity.value = "5000"
    backtest_id = (await stub.CreateBacktest(request, metadata=ALICE)).backtest_id
    reply = await stub.PublishSignals(
        pb.PublishSignalsRequest(
            backtest_id=backtest_id,
            signals=[
                published("a", quantity="0.5"),
                published(
                    "b",
                    side="SELL",
                    symbol="eth/usdt",
                    order_type="limit",
                    price="3000",
                    time_in_force="ioc",
                    portfolio_fraction="0.25",
                    quantity="2",
                ),
            ],
        ),
        metadata=ALICE,
    )
    assert list(reply.sequences) == [1, 2] and reply.accepted == 2 and reply.duplicates == 0
    signals = (await stub.ListSignals(pb.ListSignalsRequest(source_id=backtest_id))).signals
    first, second = signals
    assert (first.sequence, first.signal_id, first.symbol) == (1, "a", "BTC/USDT")
    assert first.side == types_pb2.ORDER_SIDE_BUY
    assert first.order_type == types_pb2.ORDER_TYPE_MARKET
    assert first.quantity.value == "0.5" and first.leader_equity.value == "5000"
    assert first.exchange_name == "" and first.leader_position.value == ""
    assert (second.symbol, second.side) == ("ETH/USDT", types_pb2.ORDER_SIDE_SELL)
    assert second.order_type == types_pb2.ORDER_TYPE_LIMIT and second.price.value == "3000"
    assert second.time_in_force == types_pb2.TIME_IN_FORCE_IOC
    assert second.portfolio_fraction.value == "0.25"
    assert second.log_time.ToDatetime() >= first.log_time.ToDatetime()


async def test_publishing_the_same_signals_three_times_logs_them_once(
    stub: pb_grpc.SyncServiceStub,
) -> None:
    backtest_id = await _backtest(stub)
    request = pb.PublishSignalsRequest(
        backtest_id=backtest_id, signals=[published("one"), published("two", side="sell")]
    )
    replies = [await stub.PublishSignals(request, metadata=ALICE) for _ in range(3)]
    assert [list(r.sequences) for r in replies] == [[1, 2]] * 3
    assert [(r.accepted, r.duplicates) for r in replies] == [(2, 0), (0, 2), (0, 2)]
    signals = (await stub.ListSignals(pb.ListSignalsRequest(source_id=backtest_id))).signals
    assert [s.signal_id for s in signals] == ["one", "two"]


async def test_a_signal_id_repeated_within_one_publish_gets_its_first_sequence(
    stub: pb_grpc.SyncServiceStub,
) -> None:
    backtest_id = await _backtest(stub)
    reply = await stub.PublishSignals(
        pb.PublishSignalsRequest(
            backtest_id=backtest_id, signals=[published("x"), published("y"), published("x")]
        ),
        metadata=ALICE,
    )
    assert list(reply.sequences) == [1, 2, 1]
    assert (reply.accepted, reply.duplicates) == (2, 1)


async def test_publish_with_bad_signals_names_each_field_and_writes_nothing(
    stub: pb_grpc.SyncServiceStub,
) -> None:
    backtest_id = await _backtest(stub)
    bad = pb.PublishSignalsRequest(
        backtest_id=backtest_id,
        signals=[
            published("fine"),
            published("", quantity="1"),
            published("q", quantity="0"),
            published("s", symbol="BTCUSDT", side="hold"),
            published("l", order_type="limit"),
            published("t", order_type="stop", time_in_force="day", portfolio_fraction="1.5"),
            published("p", quantity="abc", price="-1"),
        ],
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.PublishSignals(bad, metadata=ALICE)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(_violations(caught.value)) == {
        "signals[1].signal_id",
        "signals[2].quantity",
        "signals[3].symbol",
        "signals[3].side",
        "signals[4].price",
        "signals[5].order_type",
        "signals[5].time_in_force",
        "signals[5].portfolio_fraction",
        "signals[6].quantity",
        "signals[6].price",
    }
    signals = (await stub.ListSignals(pb.ListSignalsRequest(source_id=backtest_id))).signals
    assert list(signals) == []


async def test_publish_without_signals_is_invalid(stub: pb_grpc.SyncServiceStub) -> None:
    backtest_id = await _backtest(stub)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.PublishSignals(pb.PublishSignalsRequest(backtest_id=backtest_id), metadata=ALICE)
    assert set(_violations(caught.value)) == {"signals"}


async def test_publish_to_another_users_backtest_is_not_found_and_writes_nothing(
    stub: pb_grpc.SyncServiceStub,
) -> None:
    backtest_id = await _backtest(stub, public=True)
    request = pb.PublishSignalsRequest(backtest_id=backtest_id, signals=[published("evil")])
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.PublishSignals(request, metadata=BOB)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as unknown:
        await stub.PublishSignals(
            pb.PublishSignalsRequest(backtest_id=str(uuid.uuid4()), signals=[published("x")]),
            metadata=ALICE,
        )
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND
    source = (await stub.GetSource(pb.GetSourceRequest(source_id=backtest_id))).source
    assert source.last_sequence == 0


async def test_publish_to_a_malformed_backtest_id_names_the_field(
    stub: pb_grpc.SyncServiceStub,
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.PublishSignals(
            pb.PublishSignalsRequest(backtest_id="not-a-uuid", signals=[published("x")]),
            metadata=ALICE,
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(_violations(caught.value)) == {"backtest_id"}


async def test_get_source_hides_private_backtests_from_other_users(
    stub: pb_grpc.SyncServiceStub,
) -> None:
    private = await _backtest(stub)
    public = await _backtest(stub, public=True)
    mine = await stub.GetSource(pb.GetSourceRequest(source_id=private), metadata=ALICE)
    assert mine.source.name == "momentum"
    assert (await stub.GetSource(pb.GetSourceRequest(source_id=private))).source.user_id == "alice"
    seen_by_bob = (await stub.GetSource(pb.GetSourceRequest(source_id=public), metadata=BOB)).source
    # Bob may copy the public strategy, but learns nothing of whose it is.
    assert seen_by_bob.public and seen_by_bob.user_id == ""
    assert (
        await stub.GetSource(pb.GetSourceRequest(source_id=public), metadata=ALICE)
    ).source.user_id == "alice"
    for request in (
        pb.GetSourceRequest(source_id=private),
        pb.GetSourceRequest(source_id=str(uuid.uuid4())),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.GetSource(request, metadata=BOB)
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.ListSignals(pb.ListSignalsRequest(source_id=private), metadata=BOB)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


async def test_list_signals_pages_and_filters_by_event_time(
    stub: pb_grpc.SyncServiceStub,
    clock: FakeClock,
) -> None:
    backtest_id = await _backtest(stub)
    base = datetime(2026, 5, 1, tzinfo=UTC)
    for minute in range(4):
        clock.set(base + timedelta(minutes=minute))
        await stub.PublishSignals(
            pb.PublishSignalsRequest(backtest_id=backtest_id, signals=[published(f"s{minute}")]),
            metadata=ALICE,
        )
    clock.set(None)
    page = await stub.ListSignals(pb.ListSignalsRequest(source_id=backtest_id, page_size=2))
    assert [s.sequence for s in page.signals] == [1, 2]
    rest = await stub.ListSignals(pb.ListSignalsRequest(source_id=backtest_id, after_sequence=2))
    assert [s.sequence for s in rest.signals] == [3, 4]
    window = pb.ListSignalsRequest(source_id=backtest_id)
    window.start_time.FromDatetime(base + timedelta(minutes=1))
    window.end_time.FromDatetime(base + timedelta(minutes=3))
    assert [s.sequence for s in (await stub.ListSignals(window)).signals] == [2, 3]
    window.end_time.FromDatetime(base)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.ListSignals(window)
    assert set(_violations(caught.value)) == {"end_time"}
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.ListSignals(pb.ListSignalsRequest(source_id=backtest_id, after_sequence=-1))
    assert set(_violations(caught.value)) == {"after_sequence"}
