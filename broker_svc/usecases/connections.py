"""The connection pool: one open venue connection per account, opened on first use."""

from __future__ import annotations

import asyncio
import json
import logging

from broker_svc.crypto import DecryptionError, account_associated_data
from broker_svc.domain.model import Credentials
from broker_svc.domain.records import AccountRow
from broker_svc.usecases.core import BrokerCore, _Connection
from meshkit import errors

log = logging.getLogger("broker_svc.usecases")


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
                connection = _Connection(row.account, port)
                self._connections[exchange_id] = connection
            return connection

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
