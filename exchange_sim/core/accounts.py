"""Accounts: credentials, permissions and per-asset balances split into free and locked."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from exchange_sim.core.decimals import ZERO
from exchange_sim.core.errors import InsufficientBalance, UnknownAccount


@dataclass
class Balance:
    """One asset of one account. ``free`` can be spent; ``locked`` backs resting orders."""

    free: Decimal = ZERO
    locked: Decimal = ZERO

    @property
    def total(self) -> Decimal:
        """Free plus locked."""
        return self.free + self.locked


@dataclass
class Account:
    """A venue account, reached through one API key."""

    api_key: str
    api_secret: str = field(repr=False)
    created_ms: int
    can_trade: bool = True
    can_withdraw: bool = False
    can_deposit: bool = True
    balances: dict[str, Balance] = field(default_factory=dict)
    updated_ms: int = 0

    def balance(self, asset: str) -> Balance:
        """The balance of ``asset`` (created empty on first use)."""
        return self.balances.setdefault(asset, Balance())

    def lock(self, asset: str, amount: Decimal) -> None:
        """Move ``amount`` from free to locked, or raise ``InsufficientBalance``."""
        bal = self.balance(asset)
        if amount < ZERO or bal.free < amount:
            raise InsufficientBalance(f"{asset}: need {amount}, free {bal.free}")
        bal.free -= amount
        bal.locked += amount

    def unlock(self, asset: str, amount: Decimal) -> None:
        """Move ``amount`` from locked back to free."""
        bal = self.balance(asset)
        if amount < ZERO or bal.locked < amount:
            raise AssertionError(f"unlock {amount} {asset} exceeds locked {bal.locked}")
        bal.locked -= amount
        bal.free += amount

    def spend_locked(self, asset: str, amount: Decimal) -> None:
        """Remove ``amount`` of locked funds from the account (a fill paid for it)."""
        bal = self.balance(asset)
        if amount < ZERO or bal.locked < amount:
            raise AssertionError(f"spend {amount} {asset} exceeds locked {bal.locked}")
        bal.locked -= amount

    def credit(self, asset: str, amount: Decimal) -> None:
        """Add ``amount`` to the free balance."""
        if amount < ZERO:
            raise AssertionError(f"negative credit {amount} {asset}")
        self.balance(asset).free += amount


class AccountBook:
    """All accounts of one venue, by API key."""

    def __init__(self) -> None:
        self._by_key: dict[str, Account] = {}

    def add(
        self,
        api_key: str,
        api_secret: str,
        *,
        now_ms: int,
        balances: Mapping[str, Decimal] | None = None,
        can_trade: bool = True,
        can_withdraw: bool = False,
    ) -> Account:
        """Create an account; the key must be new."""
        if api_key in self._by_key:
            raise ValueError("api_key: already in use")
        account = Account(
            api_key=api_key,
            api_secret=api_secret,
            created_ms=now_ms,
            can_trade=can_trade,
            can_withdraw=can_withdraw,
            updated_ms=now_ms,
        )
        for asset, amount in (balances or {}).items():
            if amount < ZERO:
                raise ValueError(f"balances.{asset}: must not be negative")
            account.balance(asset).free = amount
        self._by_key[api_key] = account
        return account

    def find(self, api_key: str) -> Account | None:
        """The account with this key, or None."""
        return self._by_key.get(api_key)

    def get(self, api_key: str) -> Account:
        """The account with this key, or raise ``UnknownAccount``."""
        account = self._by_key.get(api_key)
        if account is None:
            raise UnknownAccount(api_key)
        return account

    def __iter__(self) -> Iterator[Account]:
        return iter(list(self._by_key.values()))
