"""How a leader fill's signal is named in its source's log.

A fill's signal takes the venue's trade id as its signal id. Venue trade ids are unique per
symbol only, so when another symbol's fill already holds that id in the log, the fill's signal
is named by its symbol and trade id instead.
"""

from __future__ import annotations

from dataclasses import replace

from sync_svc.domain.model import LeaderFill, SignalDraft


def symbol_signal_id(fill: LeaderFill) -> str:
    """Return the signal id naming ``fill`` by its symbol and trade id (``SYMBOL:TRADE``)."""
    return f"{fill.symbol}:{fill.trade_id}"


def named_by_symbol(draft: SignalDraft, fill: LeaderFill) -> SignalDraft:
    """Return ``draft`` renamed for when another symbol's fill holds its trade id in the log."""
    return replace(draft, signal_id=symbol_signal_id(fill))
