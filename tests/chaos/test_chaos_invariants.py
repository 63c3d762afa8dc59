"""The chaos checker sees every violation it claims to check (on made-up records, no mesh)."""

from __future__ import annotations

from typing import Any

from chaos_invariants import check

A, B = "acct-a", "acct-b"


def _fill(trade_id: int) -> dict[str, Any]:
    return {"trade_id": trade_id, "side": "buy", "quantity": "0.1", "symbol": "BTC/USDT"}


def _intent(
    trade_id: int, target: str, state: str = "FILLED", filled: str = "0.01", reason: str = ""
) -> dict[str, Any]:
    intent = {
        "intent_id": f"i-{trade_id}-{target}",
        "signal_id": str(trade_id),
        "target_exchange_id": target,
        "client_order_id": f"c-{trade_id}-{target}",
        "state": f"INTENT_STATE_{state}",
        "filled_quantity": filled,
    }
    if reason:
        intent["reason"] = reason
    return intent


def _order(trade_id: int, target: str, filled: str = "0.01", order_id: int = 1) -> dict[str, Any]:
    return {
        "order_id": order_id,
        "client_order_id": f"c-{trade_id}-{target}",
        "filled_quantity": filled,
        "status": "filled",
    }


def _clean() -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, list[dict[str, Any]]]]:
    fills = [_fill(1), _fill(2)]
    intents = [_intent(t, a) for t in (1, 2) for a in (A, B)]
    orders = {a: [_order(t, a, order_id=t) for t in (1, 2)] for a in (A, B)}
    return fills, intents, orders


def test_clean_run_has_no_violation() -> None:
    found = check(*_clean())
    assert found.violations == []
    assert (found.intents, found.expected) == (4, 4)
    assert found.outcomes == {"filled": 4}


def test_two_venue_orders_with_one_client_id_are_a_duplicate() -> None:
    fills, intents, orders = _clean()
    orders[A].append(_order(1, A, order_id=9))
    found = check(fills, intents, orders)
    assert found.duplicates == 1
    assert any("duplicate venue orders: 2 with client id c-1-acct-a" in v for v in found.violations)


def test_two_intents_for_one_fill_and_follower_are_a_duplicate() -> None:
    fills, intents, orders = _clean()
    intents.append({**_intent(2, B), "intent_id": "again", "client_order_id": "c-other"})
    orders[B].append({**_order(2, B, order_id=7), "client_order_id": "c-other"})
    found = check(fills, intents, orders)
    assert found.duplicates == 1
    assert found.phantom == 0


def test_a_copied_reverse_s_two_legs_are_not_a_duplicate_but_two_of_one_leg_are() -> None:
    fills, intents, orders = _clean()
    entry = {**_intent(2, A), "intent_id": "i-2-a-leg1", "client_order_id": "c-2-a-1", "leg": 1}
    orders[A].append({**_order(2, A, order_id=9), "client_order_id": "c-2-a-1"})
    assert check(fills, [*intents, entry], orders).violations == []
    again = {**entry, "intent_id": "i-2-a-leg1-again"}
    found = check(fills, [*intents, entry, again], orders)
    assert found.duplicates == 1
    assert "duplicate intents: 2 for leader fill 2 on follower acct-a (leg 1)" in found.violations


def test_leader_fill_without_an_intent_for_a_follower_is_missing() -> None:
    fills, intents, orders = _clean()
    intents = [i for i in intents if not (i["signal_id"] == "2" and i["target_exchange_id"] == B)]
    orders[B] = [o for o in orders[B] if o["client_order_id"] != "c-2-acct-b"]
    found = check(fills, intents, orders)
    assert found.missing == 1
    assert found.violations == [
        "missing: no intent for leader fill 2 (buy 0.1 BTC/USDT) on follower acct-b"
    ]


def test_intent_not_terminal_after_quiet_is_unresolved() -> None:
    fills, intents, orders = _clean()
    intents[0]["state"] = "INTENT_STATE_UNKNOWN"
    found = check(fills, intents, orders)
    assert found.unresolved == 1 and found.qty == 0


def test_filled_quantity_differing_from_the_venue_is_a_qty_violation() -> None:
    fills, intents, orders = _clean()
    orders[B][1]["filled_quantity"] = "0.02"
    found = check(fills, intents, orders)
    assert found.qty == 1
    assert "recorded filled 0.01, the venue filled 0.02" in found.violations[0]


def test_equal_decimals_written_differently_match() -> None:
    fills, intents, orders = _clean()
    orders[B][1]["filled_quantity"] = "0.0100"
    assert check(fills, intents, orders).violations == []


def test_rejected_intent_whose_order_the_venue_holds_is_a_qty_violation() -> None:
    fills, intents, orders = _clean()
    intents[1].update(
        state="INTENT_STATE_REJECTED", filled_quantity="0", reason="insufficient_funds"
    )
    found = check(fills, intents, orders)
    assert found.qty == 1
    assert "but the venue holds 1 order(s)" in found.violations[0]


def test_filled_intent_the_venue_never_saw_is_a_qty_violation() -> None:
    fills, intents, orders = _clean()
    orders[A] = orders[A][1:]
    found = check(fills, intents, orders)
    assert found.qty == 1
    assert "the venue has no order with client id c-1-acct-a" in found.violations[0]


def test_venue_order_without_an_intent_is_a_phantom() -> None:
    fills, intents, orders = _clean()
    orders[B].append({"order_id": 77, "client_order_id": "x-unknown", "filled_quantity": "1"})
    found = check(fills, intents, orders)
    assert found.phantom == 1 and found.duplicates == 0


def test_definitive_reject_must_end_rejected_once_with_its_reason() -> None:
    fills, intents, orders = _clean()
    intents[0].update(
        state="INTENT_STATE_REJECTED",
        filled_quantity="0",
        reason="insufficient_funds: Account has insufficient balance",
    )
    orders[A] = orders[A][1:]
    assert (
        check(fills, intents, orders, expect_rejected="insufficient", rejects_sent=1).violations
        == []
    )
    assert check(fills, intents, orders, expect_rejected="notional", rejects_sent=1).rejects == 1
    retried = check(fills, intents, orders, expect_rejected="insufficient", rejects_sent=2)
    assert retried.rejects == 1
    assert "2 copies met a definitive reject, but 1 intents are REJECTED" in retried.violations[0]


def test_the_summary_says_which_fault_left_copies_skipped_and_why() -> None:
    from collections import Counter

    from chaos_config import shape
    from chaos_harness import RunResult
    from chaos_plan import CATALOGUE, plan_run
    from chaos_summary import Collector

    quiet, slow = CATALOGUE[0], CATALOGUE[1]
    collector = Collector()
    collector.add(
        [
            RunResult(
                backend="sqlite", plan=plan_run(1, quiet, shape()), outcomes=Counter({"filled": 6})
            ),
            RunResult(
                backend="sqlite",
                plan=plan_run(2, slow, shape()),
                outcomes=Counter({"filled": 3, "skipped (stale)": 2}),
            ),
            RunResult(
                backend="sqlite",
                plan=plan_run(3, slow, shape()),
                outcomes=Counter({"skipped (stale)": 1, "canceled": 1}),
            ),
        ]
    )
    lines = collector.table()
    start = lines.index("copies not made, by fault (skips and rejects, each with its reason):")
    assert [line.split() for line in lines[start + 1 :]] == [
        ["sqlite", *slow.name.split(), "skipped", "(stale)", "3"]
    ]
    assert "sqlite: 3 runs" in "\n".join(lines)


def _leg(
    sequence: int, side: str, state: str = "FILLED", filled: str = "0.01", reason: str = ""
) -> dict[str, Any]:
    intent = _intent(sequence, A, state, filled, reason)
    intent.update(
        config_id="cfg", symbol="BTC/USDT", side=f"ORDER_SIDE_{side}", sequence=str(sequence)
    )
    return intent


def test_an_exit_skipped_with_no_position_right_after_a_filled_buy_is_a_violation() -> None:
    intents = [
        _leg(1, "BUY"),
        _leg(2, "SELL", "SKIPPED", "0", "no_position_to_reduce"),
    ]
    orders = {A: [_order(1, A)]}
    found = check([_fill(1), _fill(2)], intents, orders, check_exits=True)
    assert found.exits == 1
    assert any("no_position_to_reduce right after a filled buy" in v for v in found.violations)
    assert check([_fill(1), _fill(2)], intents, orders).exits == 0  # only when asked


def test_an_exit_with_no_position_after_a_sell_or_a_skipped_buy_is_not_counted() -> None:
    after_sell = [
        _leg(1, "BUY"),
        _leg(2, "SELL"),
        _leg(3, "BUY", "SKIPPED", "0", "stale"),
        _leg(4, "SELL", "SKIPPED", "0", "no_position_to_reduce"),
    ]
    orders = {A: [_order(1, A), _order(2, A, order_id=2)]}
    found = check([_fill(n) for n in (1, 2, 3, 4)], after_sell, orders, check_exits=True)
    assert found.exits == 0 and found.violations == []
