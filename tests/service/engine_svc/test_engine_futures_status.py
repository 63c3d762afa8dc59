"""GetCopyStatus of a futures follower: its open positions as the broker's GetPortfolio lists them
(side, size in contracts and base, entry and mark price, unrealised P&L, leverage, liquidation
price, margin mode), beside its balances (issue #18)."""

from __future__ import annotations

from decimal import Decimal

from engine_fakes import dec
from engine_harness import Harness

from copytrade.broker.v1 import broker_service_pb2 as broker_pb
from copytrade.engine.v1 import engine_service_pb2 as pb


async def test_status_lists_a_futures_followers_positions_with_side_size_and_entry(
    harness: Harness,
) -> None:
    target = harness.world.broker.add_account()
    target.exchange_name = "binanceusdm"
    target.balances = {"USDT": (Decimal("900"), Decimal("1012.5"))}
    target.positions = [
        broker_pb.Position(
            symbol="BTC/USDT:USDT",
            side="short",
            contracts=dec("0.25"),
            entry_price=dec("50000"),
            mark_price=dec("49950"),
            unrealized_pnl=dec("12.5"),
            liquidation_price=dec("58100.5"),
            leverage=dec("3"),
            margin_mode="isolated",
            contract_size=dec("1"),
        )
    ]
    config_id = (
        await harness.call(
            "StartCopy",
            pb.StartCopyRequest(
                source_backtest_id=harness.world.sync.add_backtest(),
                target_exchange_ids=[target.exchange_id],
            ),
        )
    ).config_id

    status = await harness.call("GetCopyStatus", pb.GetCopyStatusRequest(config_id=config_id))

    assert status.positions_error == ""
    by_asset = {p.asset: p for p in status.positions}
    assert set(by_asset) == {"USDT", "BTC"}
    assert (by_asset["USDT"].symbol, by_asset["USDT"].quantity.value) == ("", "1012.5")
    short = by_asset["BTC"]
    assert (short.exchange_id, short.symbol, short.side) == (
        target.exchange_id,
        "BTC/USDT:USDT",
        "short",
    )
    assert (short.contracts.value, short.quantity.value) == ("0.25", "0.25")
    assert (short.entry_price.value, short.mark_price.value) == ("50000", "49950")
    assert (short.unrealized_pnl.value, short.leverage.value) == ("12.5", "3")
    assert (short.liquidation_price.value, short.margin_mode) == ("58100.5", "isolated")
    assert not short.HasField("value")


async def test_a_contract_size_other_than_one_gives_the_size_in_base(harness: Harness) -> None:
    target = harness.world.broker.add_account()
    target.positions = [
        broker_pb.Position(
            symbol="ETH/USD:ETH", side="long", contracts=dec("3"), contract_size=dec("0.1")
        )
    ]
    config_id = (
        await harness.call(
            "StartCopy",
            pb.StartCopyRequest(
                source_backtest_id=harness.world.sync.add_backtest(),
                target_exchange_ids=[target.exchange_id],
            ),
        )
    ).config_id

    status = await harness.call("GetCopyStatus", pb.GetCopyStatusRequest(config_id=config_id))

    [long] = [p for p in status.positions if p.symbol]
    assert (long.side, long.asset, long.contracts.value, long.quantity.value) == (
        "long",
        "ETH",
        "3",
        "0.3",
    )
    assert not long.HasField("entry_price") and not long.HasField("leverage")
