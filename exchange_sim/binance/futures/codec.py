"""Binance USDⓈ-M JSON shapes: orders, algo orders, trades, positions, account, stream events."""

from __future__ import annotations

from decimal import Decimal

from exchange_sim.binance.futures.engine import (
    AccountEvent,
    AccountView,
    AlgoOrder,
    FOrder,
    FTrade,
    MarginType,
    OrderEvent,
    PositionView,
)
from exchange_sim.core.decimals import ZERO, fmt8, fmt_plain
from exchange_sim.core.orders import Side

STP = "EXPIRE_MAKER"


def _d(value: Decimal | None) -> str:
    return fmt_plain(value) if value is not None else "0"


def order_json(order: FOrder, *, with_time: bool = True) -> dict[str, object]:
    """A regular order as ``/fapi/v1/order`` (RESULT), ``openOrders`` and ``allOrders`` show it."""
    body: dict[str, object] = {
        "orderId": order.order_id,
        "symbol": order.symbol,
        "status": order.status.value,
        "clientOrderId": order.client_order_id,
        "price": _d(order.price),
        "avgPrice": fmt8(order.avg_price),
        "origQty": _d(order.quantity),
        "executedQty": _d(order.executed_qty),
        "cumQty": _d(order.executed_qty),
        "cumQuote": fmt8(order.cum_quote),
        "timeInForce": order.time_in_force.value if order.time_in_force else "GTC",
        "type": order.type.value,
        "reduceOnly": order.reduce_only,
        "closePosition": order.close_position,
        "side": order.side.value,
        "positionSide": order.position_side.value,
        "stopPrice": _d(order.stop_price),
        "workingType": order.working_type,
        "priceProtect": False,
        "origType": (order.orig_type or order.type).value,
        "priceMatch": "NONE",
        "selfTradePreventionMode": STP,
        "goodTillDate": 0,
        "updateTime": order.updated_ms,
    }
    if with_time:
        body["time"] = order.created_ms
    return body


def algo_json(algo: AlgoOrder) -> dict[str, object]:
    """An algo (conditional) order as ``/fapi/v1/algoOrder`` and its lists show it."""
    req = algo.request
    return {
        "algoId": algo.algo_id,
        "clientAlgoId": algo.client_algo_id,
        "algoType": "CONDITIONAL",
        "orderType": req.type.value,
        "symbol": req.symbol,
        "side": req.side.value,
        "positionSide": req.position_side.value,
        "timeInForce": req.time_in_force.value if req.time_in_force else "GTC",
        "quantity": _d(req.quantity),
        "algoStatus": algo.status.value,
        "actualOrderId": str(algo.actual_order_id) if algo.actual_order_id else "",
        "triggerPrice": _d(req.trigger_price),
        "price": _d(req.price),
        "icebergQuantity": None,
        "selfTradePreventionMode": STP,
        "workingType": req.working_type,
        "priceMatch": "NONE",
        "closePosition": req.close_position,
        "priceProtect": False,
        "reduceOnly": req.reduce_only,
        "activatePrice": "",
        "callbackRate": "",
        "createTime": algo.created_ms,
        "updateTime": algo.updated_ms,
        "triggerTime": algo.trigger_ms,
        "goodTillDate": 0,
    }


def trade_json(trade: FTrade) -> dict[str, object]:
    """One entry of ``/fapi/v1/userTrades``."""
    return {
        "buyer": trade.side is Side.BUY,
        "commission": fmt8(trade.fee),
        "commissionAsset": "USDT",
        "id": trade.trade_id,
        "maker": trade.is_maker,
        "orderId": trade.order_id,
        "price": fmt_plain(trade.price),
        "qty": fmt_plain(trade.qty),
        "quoteQty": fmt8(trade.quote_qty),
        "realizedPnl": fmt8(trade.realized),
        "side": trade.side.value,
        "positionSide": trade.position_side.value,
        "symbol": trade.symbol,
        "time": trade.time_ms,
    }


def position_v3_json(view: PositionView) -> dict[str, object]:
    """One entry of ``/fapi/v3/positionRisk`` (no leverage or margin type, as Binance's v3)."""
    return {
        "symbol": view.symbol,
        "positionSide": view.side.value,
        "positionAmt": fmt_plain(view.amount),
        "entryPrice": fmt8(view.entry),
        "breakEvenPrice": fmt8(view.entry),
        "markPrice": fmt8(view.mark),
        "unRealizedProfit": fmt8(view.unrealized),
        "liquidationPrice": fmt8(view.liquidation_price),
        "isolatedMargin": fmt8(view.isolated_wallet + view.unrealized)
        if view.margin_type is MarginType.ISOLATED
        else "0",
        "notional": fmt8(view.notional),
        "marginAsset": "USDT",
        "isolatedWallet": fmt8(view.isolated_wallet),
        "initialMargin": fmt8(view.initial_margin + view.open_order_margin),
        "maintMargin": fmt8(view.maint_margin),
        "positionInitialMargin": fmt8(view.initial_margin),
        "openOrderInitialMargin": fmt8(view.open_order_margin),
        "adl": 0,
        "bidNotional": "0",
        "askNotional": "0",
        "updateTime": view.updated_ms,
    }


def position_v2_json(view: PositionView) -> dict[str, object]:
    """One entry of ``/fapi/v2/positionRisk`` (with leverage and margin type)."""
    return {
        "symbol": view.symbol,
        "positionAmt": fmt_plain(view.amount),
        "entryPrice": fmt8(view.entry),
        "breakEvenPrice": fmt8(view.entry),
        "markPrice": fmt8(view.mark),
        "unRealizedProfit": fmt8(view.unrealized),
        "liquidationPrice": fmt8(view.liquidation_price),
        "leverage": str(view.leverage),
        "maxNotionalValue": "100000000",
        "marginType": view.margin_type.value.lower().replace("crossed", "cross"),
        "isolatedMargin": fmt8(view.isolated_wallet + view.unrealized)
        if view.margin_type is MarginType.ISOLATED
        else "0.00000000",
        "isAutoAddMargin": "false",
        "positionSide": view.side.value,
        "notional": fmt8(view.notional),
        "isolatedWallet": fmt8(view.isolated_wallet),
        "updateTime": view.updated_ms,
    }


def asset_json(account: AccountView) -> dict[str, object]:
    """The USDT entry of ``assets`` in ``/fapi/v2|v3/account``."""
    return {
        "asset": "USDT",
        "walletBalance": fmt8(account.wallet_balance),
        "unrealizedProfit": fmt8(account.unrealized),
        "marginBalance": fmt8(account.margin_balance),
        "maintMargin": fmt8(account.maint_margin),
        "initialMargin": fmt8(account.initial_margin),
        "positionInitialMargin": fmt8(account.position_initial_margin),
        "openOrderInitialMargin": fmt8(account.open_order_initial_margin),
        "crossWalletBalance": fmt8(account.cross_wallet_balance),
        "crossUnPnl": fmt8(account.cross_unrealized),
        "availableBalance": fmt8(account.available),
        "maxWithdrawAmount": fmt8(max(account.available, ZERO)),
        "marginAvailable": True,
        # ccxt skips an asset whose updateTime is 0: a wallet never touched reports 1
        "updateTime": account.updated_ms or 1,
    }


def account_json(account: AccountView, positions: list[PositionView]) -> dict[str, object]:
    """``/fapi/v2/account`` and ``/fapi/v3/account``."""
    return {
        "totalInitialMargin": fmt8(account.initial_margin),
        "totalMaintMargin": fmt8(account.maint_margin),
        "totalWalletBalance": fmt8(account.wallet_balance),
        "totalUnrealizedProfit": fmt8(account.unrealized),
        "totalMarginBalance": fmt8(account.margin_balance),
        "totalPositionInitialMargin": fmt8(account.position_initial_margin),
        "totalOpenOrderInitialMargin": fmt8(account.open_order_initial_margin),
        "totalCrossWalletBalance": fmt8(account.cross_wallet_balance),
        "totalCrossUnPnl": fmt8(account.cross_unrealized),
        "availableBalance": fmt8(account.available),
        "maxWithdrawAmount": fmt8(max(account.available, ZERO)),
        "assets": [asset_json(account)],
        "positions": [
            {
                "symbol": v.symbol,
                "positionSide": v.side.value,
                "positionAmt": fmt_plain(v.amount),
                "unrealizedProfit": fmt8(v.unrealized),
                "isolatedMargin": fmt8(v.isolated_wallet),
                "notional": fmt8(v.notional),
                "isolatedWallet": fmt8(v.isolated_wallet),
                "initialMargin": fmt8(v.initial_margin),
                "maintMargin": fmt8(v.maint_margin),
                "updateTime": v.updated_ms,
            }
            for v in positions
            if v.amount != ZERO
        ],
    }


def balance_json(account: AccountView, api_key_alias: str) -> dict[str, object]:
    """The USDT entry of ``/fapi/v2/balance`` and ``/fapi/v3/balance``."""
    return {
        "accountAlias": api_key_alias,
        "asset": "USDT",
        "balance": fmt8(account.wallet_balance),
        "crossWalletBalance": fmt8(account.cross_wallet_balance),
        "crossUnPnl": fmt8(account.cross_unrealized),
        "availableBalance": fmt8(account.available),
        "maxWithdrawAmount": fmt8(max(account.available, ZERO)),
        "marginAvailable": True,
        "updateTime": account.updated_ms,
    }


def order_trade_update(event: OrderEvent) -> dict[str, object]:
    """The ``ORDER_TRADE_UPDATE`` user-data event."""
    order, trade = event.order, event.trade
    return {
        "e": "ORDER_TRADE_UPDATE",
        "E": event.time_ms,
        "T": event.time_ms,
        "o": {
            "s": order.symbol,
            "c": order.client_order_id,
            "S": order.side.value,
            "o": order.type.value,
            "f": order.time_in_force.value if order.time_in_force else "GTC",
            "q": _d(order.quantity),
            "p": _d(order.price),
            "ap": fmt8(order.avg_price),
            "sp": _d(order.stop_price),
            "x": event.execution,
            "X": order.status.value,
            "i": order.order_id,
            "l": _d(trade.qty if trade else ZERO),
            "z": _d(order.executed_qty),
            "L": _d(trade.price if trade else ZERO),
            "N": "USDT",
            "n": fmt8(trade.fee if trade else ZERO),
            "T": event.time_ms,
            "t": trade.trade_id if trade else 0,
            "b": "0",
            "a": "0",
            "m": trade.is_maker if trade else False,
            "R": order.reduce_only,
            "wt": order.working_type,
            "ot": (order.orig_type or order.type).value,
            "ps": order.position_side.value,
            "cp": order.close_position,
            "rp": fmt8(trade.realized if trade else ZERO),
            "pP": False,
            "si": 0,
            "ss": 0,
            "V": STP,
            "pm": "NONE",
            "gtd": 0,
        },
    }


def algo_update(algo: AlgoOrder, time_ms: int) -> dict[str, object]:
    """The ``ALGO_UPDATE`` user-data event."""
    req = algo.request
    return {
        "e": "ALGO_UPDATE",
        "T": time_ms,
        "E": time_ms,
        "o": {
            "caid": algo.client_algo_id,
            "aid": algo.algo_id,
            "at": "CONDITIONAL",
            "o": req.type.value,
            "s": req.symbol,
            "S": req.side.value,
            "ps": req.position_side.value,
            "f": req.time_in_force.value if req.time_in_force else "GTC",
            "q": _d(req.quantity),
            "X": algo.status.value,
            "ai": str(algo.actual_order_id) if algo.actual_order_id else "",
            "ap": "0",
            "aq": "0",
            "act": "0",
            "tp": _d(req.trigger_price),
            "p": _d(req.price),
            "V": STP,
            "wt": req.working_type,
            "pm": "NONE",
            "cp": req.close_position,
            "pP": False,
            "R": req.reduce_only,
            "tt": algo.trigger_ms,
            "gtd": 0,
        },
    }


def account_update(event: AccountEvent) -> dict[str, object]:
    """The ``ACCOUNT_UPDATE`` user-data event."""
    return {
        "e": "ACCOUNT_UPDATE",
        "E": event.time_ms,
        "T": event.time_ms,
        "a": {
            "m": event.reason,
            "B": [
                {
                    "a": "USDT",
                    "wb": fmt8(event.wallet_balance),
                    "cw": fmt8(event.cross_wallet_balance),
                    "bc": fmt8(event.balance_change),
                }
            ],
            "P": [
                {
                    "s": v.symbol,
                    "pa": fmt_plain(v.amount),
                    "ep": fmt8(v.entry),
                    "bep": fmt8(v.entry),
                    "cr": "0",
                    "up": fmt8(v.unrealized),
                    "mt": "isolated" if v.margin_type is MarginType.ISOLATED else "cross",
                    "iw": fmt8(v.isolated_wallet),
                    "ps": v.side.value,
                }
                for v in event.positions
            ],
        },
    }
