"""Who may call each broker RPC: the identity in the caller's mesh certificate (default deny).

The broker holds every follower's exchange keys, so this is the tightest table of the
mesh: only the engine sends, looks up or cancels orders, and only the gateway (acting for
a user it authenticated) registers, lists or deletes accounts.
"""

from __future__ import annotations

from meshkit.access import table

SERVICE = "copytrade.broker.v1.BrokerService"

RULES = table(
    SERVICE,
    {
        # Accounts and credentials: a user through the gateway.
        "RegisterExchange": {"gateway"},
        "ListExchanges": {"gateway"},
        "DeleteExchange": {"gateway"},
        "TestBroker": {"gateway"},
        "ListSupportedExchanges": {"gateway"},
        # An account's venue and owner: the services that copy from and to it.
        "GetExchange": {"engine", "sync"},
        # Orders: the engine alone (the copy path, stops, kill switch, the resolver).
        "PlaceOrder": {"engine"},
        # The engine's lease fences: a replica that took a leader source over raises its token.
        "Fence": {"engine"},
        # Leverage and margin mode of a follower's derivatives market, before copying there.
        "SetLeverage": {"engine"},
        "GetOrder": {"engine"},
        "CancelOrder": {"engine"},
        # Reads.
        # The leader's orders too: sync mirrors its resting orders (copy_mode "orders").
        "ListOrders": {"recon", "sync"},
        # recon: a follower's trades, for orders placed before the window it reads.
        "ListFills": {"recon", "sync"},
        # recon: a follower's balances, against what the copies should have left there.
        "GetPortfolio": {"engine", "recon", "sync"},
        # Many follower accounts' portfolios at once: the engine's reads for a leader's trade.
        "GetPortfolios": {"engine"},
        "GetMarket": {"engine"},
        "ListCandles": {"engine"},
        "WatchFills": {"sync"},
        # Follower order updates are the engine's to follow (it owns the copies).
        "WatchOrders": {"engine"},
        "ListAuditEntries": {"gateway"},
    },
)
