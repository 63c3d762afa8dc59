"""What the broker keeps of accounts and orders: the records its store reads and writes.

Plain data shared by the use cases, their store port and the store; no I/O here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from broker_svc.domain.model import ExchangeAccount, OrderRequest, OrderStatus


@dataclass(frozen=True)
class AccountRow:
    """An account and its sealed credentials (empty once the account is deleted)."""

    account: ExchangeAccount
    ciphertext: bytes = field(repr=False)
    nonce: bytes = field(repr=False)
    key_id: str


@dataclass(frozen=True)
class KeyCheck:
    """The key-check value: a known plaintext sealed by the key ``key_id``."""

    ciphertext: bytes = field(repr=False)
    nonce: bytes = field(repr=False)
    key_id: str
    updated_at: datetime


@dataclass(frozen=True)
class OrderRecord:
    """A follower order as the broker last saw it: what was asked and what the venue said."""

    exchange_id: str
    request: OrderRequest
    venue_order_id: str
    status: OrderStatus
    filled_quantity: Decimal
    average_price: Decimal | None
    sent_at: datetime
    created_at: datetime
    updated_at: datetime

    @property
    def unresolved(self) -> bool:
        """Return whether the broker sent the order without learning what the venue did."""
        return self.status is OrderStatus.UNKNOWN and not self.venue_order_id


@dataclass(frozen=True)
class Fence:
    """A caller's lease on the work an order belongs to: a key and its fencing token.

    The token grows at every takeover of the lease; the broker refuses an order whose token
    is below the highest one it has seen for the key. ``key`` empty: an order sent under no
    lease (never refused for its fence).
    """

    key: str
    token: int

    @property
    def present(self) -> bool:
        """Return whether the order is sent under a lease."""
        return bool(self.key)


NO_FENCE = Fence("", 0)
"""The fence of an order sent under no lease."""


@dataclass(frozen=True)
class Prepared:
    """What recording an order before its venue call found (``BrokerStore.prepare_order``).

    ``fenced``: the key's higher token when the fence is stale (nothing recorded then);
    ``reserved``: the client order id was free and is now this request's; ``existing``: the
    broker's record of the order already under this id (neither fenced nor reserved).
    """

    fenced: int | None = None
    reserved: bool = False
    existing: OrderRecord | None = None
