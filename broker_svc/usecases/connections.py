"""The connection pool: one open venue connection per account, opened on first use."""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
from typing import Any, cast

from broker_svc.crypto import DecryptionError, account_associated_data
from broker_svc.domain.model import Credentials, ExchangeAccount
from broker_svc.domain.records import AccountRow
from broker_svc.ports import ExchangePort
from broker_svc.usecases.core import BrokerCore, _Connection
from meshkit import errors
from meshkit.audit import AuditEvent

log = logging.getLogger("broker_svc.usecases")


_UNAUTHENTICATED = frozenset({"load_markets", "fetch_last_price", "fetch_candles", "close"})
"""Port methods whose success proves nothing of the keys: public venue endpoints (markets,
prices, candles), which answer without them, and closing the connection."""


class _KeysWatched:
    """An account's exchange port that tells the pool when the venue refuses the account's keys
    (``BROKER_CREDENTIALS_REJECTED``) and when it accepts them again (an authenticated call
    that succeeds; a public one says nothing of the keys); otherwise the port."""

    def __init__(self, port: ExchangePort, account: ExchangeAccount, pool: ConnectionPool) -> None:
        self._port = port
        self._account = account
        self._pool = pool

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._port, name)
        if not inspect.iscoroutinefunction(attribute):
            return attribute

        async def call(*args: Any, **kwargs: Any) -> Any:
            try:
                result = await attribute(*args, **kwargs)
            except errors.FailedPrecondition as e:
                if e.reason == "BROKER_CREDENTIALS_REJECTED":
                    await self._pool.keys_refused(self._account, name)
                raise
            if name not in _UNAUTHENTICATED:
                self._pool.keys_accepted(self._account.exchange_id)
            return result

        return call


class ConnectionPool(BrokerCore):
    """Opens an account's venue connection once, with its credentials unsealed."""

    async def _connection(self, exchange_id: str, user_id: str) -> _Connection:
        connection = self._connections.get(exchange_id)
        if connection is not None:
            if user_id and connection.account.user_id != user_id:
                await self._account_row(exchange_id, user_id)  # raises NotFound
            return connection
        lock = self._connecting.setdefault(exchange_id, asyncio.Lock())
        async with lock:
            row = await self._account_row(exchange_id, user_id)
            connection = self._connections.get(exchange_id)
            if connection is None:
                credentials = self._open(row)
                port = self.venues.connect(row.account.exchange_name, credentials)
                watched = cast(ExchangePort, _KeysWatched(port, row.account, self))
                connection = _Connection(row.account, watched)
                self._connections[exchange_id] = connection
            return connection

    async def keys_refused(self, account: ExchangeAccount, method: str) -> None:
        """Audit, once until a call is accepted again, that the venue refused an account's keys.

        The entry (``credentials_rejected`` on the ``exchange_account``) is what the gateway
        turns into a ``venue.credentials_rejected`` webhook event (docs/webhooks.md).
        """
        if account.exchange_id in self._keys_refused:
            return
        self._keys_refused.add(account.exchange_id)
        event = AuditEvent(
            account.user_id,
            "exchange_account",
            account.exchange_id,
            "credentials_rejected",
            None,
            {"exchange_name": account.exchange_name, "method": method},
        )
        try:
            await self.store.record_audit(event, self.clock.now())
        except Exception as e:  # the caller's own error matters more than this record
            log.error("credentials rejection of %s not audited: %s", account.exchange_id, e)

    def keys_accepted(self, exchange_id: str) -> None:
        """Note that the venue accepted an account's keys again."""
        self._keys_refused.discard(exchange_id)

    def _open(self, row: AccountRow) -> Credentials:
        associated = account_associated_data(row.account.exchange_id, row.account.user_id)
        try:
            plaintext = self.cipher.decrypt(row.ciphertext, row.nonce, row.key_id, associated)
        except DecryptionError:
            log.error(
                "credentials of exchange account %s cannot be opened", row.account.exchange_id
            )
            raise errors.FailedPrecondition(
                "the stored credentials of this account cannot be read; register it again",
                reason="CREDENTIALS_UNREADABLE",
            ) from None
        data = json.loads(plaintext)
        return Credentials(data["api_key"], data["api_secret"], data.get("passphrase", ""))
