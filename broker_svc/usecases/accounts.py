"""Accounts: registering, listing and deleting them, testing credentials, re-sealing keys."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid

from broker_svc import keys
from broker_svc.crypto import account_associated_data
from broker_svc.domain.credentials import credential_violations, judge_credentials
from broker_svc.domain.model import (
    ConnectionReport,
    Credentials,
    ExchangeAccount,
    KeyPermissions,
    Market,
    VenueProfile,
)
from broker_svc.domain.records import AccountRow
from broker_svc.usecases.core import BrokerCore
from meshkit import audit, errors
from meshkit.audit import AuditEntry, AuditEvent

log = logging.getLogger("broker_svc.usecases")

AUDIT_OBJECT = "exchange_account"


def _account_view(account: ExchangeAccount) -> dict[str, str]:
    # What the audit trail keeps of an account: never its credentials.
    return {
        "exchange_id": account.exchange_id,
        "exchange_name": account.exchange_name,
        "label": account.label,
        "api_key_hint": account.api_key_hint,
    }


class AccountUseCases(BrokerCore):
    """Accounts and their credentials."""

    async def register(
        self,
        user_id: str,
        venue: str,
        credentials: Credentials,
        *,
        label: str = "",
        request_id: str = "",
    ) -> ExchangeAccount:
        """Test ``credentials`` at ``venue`` and store them sealed for ``user_id``.

        A repeat with the same ``request_id`` returns the account the first call stored.
        Malformed credentials are INVALID_ARGUMENT naming the field; keys that do not
        authenticate, cannot trade or can withdraw are refused.
        """
        self.check_credentials(venue, credentials)
        if request_id:
            existing = await self.store.account_by_request(user_id, request_id)
            if existing is not None:
                return existing.account
        report = await self.test_credentials(venue, credentials)
        if not report.reachable:
            raise errors.Unavailable(report.reason, retry_after=5.0, reason="VENUE_UNAVAILABLE")
        if not report.ok:
            raise errors.FailedPrecondition(report.reason, reason=_refusal_reason(report))
        exchange_id = str(uuid.uuid4())
        plaintext = json.dumps(
            {
                "api_key": credentials.api_key,
                "api_secret": credentials.api_secret,
                "passphrase": credentials.passphrase,
            }
        ).encode()
        ciphertext, nonce, key_id = self.cipher.encrypt(
            plaintext,
            account_associated_data(exchange_id, user_id),
        )
        account = ExchangeAccount(
            exchange_id=exchange_id,
            user_id=user_id,
            exchange_name=venue,
            label=label,
            api_key_hint=credentials.api_key_hint,
            created_at=self.clock.now(),
        )
        stored = await self.store.insert_account(
            AccountRow(account, ciphertext, nonce, key_id),
            request_id,
            audit=AuditEvent(
                user_id,
                AUDIT_OBJECT,
                exchange_id,
                "register",
                None,
                _account_view(account),
            ),
        )
        return stored.account

    async def list_accounts(self, user_id: str) -> list[ExchangeAccount]:
        """Return the live accounts of ``user_id``, oldest first."""
        return await self.store.list_accounts(user_id)

    async def get_account(self, exchange_id: str, user_id: str = "") -> ExchangeAccount:
        """Return a live account; with a ``user_id``, only that user's."""
        return (await self._account_row(exchange_id, user_id)).account

    async def delete_account(self, exchange_id: str, user_id: str) -> None:
        """Delete one of ``user_id``'s accounts and erase its credentials; a repeat succeeds."""
        row = await self.store.get_account(exchange_id)
        if row is None or row.account.user_id != user_id:
            raise errors.NotFound(
                f"exchange account {exchange_id} not found",
                reason="EXCHANGE_NOT_FOUND",
                metadata={"exchange_id": exchange_id},
            )
        await self.store.delete_account(
            exchange_id,
            self.clock.now(),
            audit=AuditEvent(
                user_id,
                AUDIT_OBJECT,
                exchange_id,
                "delete",
                _account_view(row.account),
                None,
            ),
        )
        connection = self._connections.pop(exchange_id, None)
        if connection is not None:
            await connection.port.close()

    async def audit_entries(
        self,
        user_id: str,
        before_seq: int,
        page_size: int,
    ) -> list[AuditEntry]:
        """Return the caller's entries of the broker's audit trail, newest first.

        Only entries below ``before_seq`` when it is above 0; ``page_size`` 0 means 50.
        """
        size = audit.page_size_of(before_seq, page_size)
        return await self.store.list_audit_entries(user_id, before_seq, size)

    async def rewrap_credentials(self) -> int:
        """Re-seal every account not sealed by the current key; return how many changed."""
        return await keys.reseal_credentials(self.store, self.cipher)

    async def rotate_keys(self) -> keys.RotationReport:
        """Move every credential, then the key-check value, to the current key (resumable)."""
        report = await keys.rotate_credentials(self.store, self.cipher)
        log.info(
            "key rotation: %d of %d accounts re-sealed now; %d on key id %s, %d on older keys,"
            " %d unreadable; key check current: %s",
            report.resealed,
            report.accounts,
            report.on_current_key,
            self.cipher.key_id,
            report.on_previous_keys,
            report.unreadable,
            report.key_check_current,
        )
        return report

    def start_key_rotation(self) -> None:
        """Run :meth:`rotate_keys` in the background while the broker serves."""
        if self._key_rotation is None or self._key_rotation.done():
            self._key_rotation = asyncio.create_task(self._rotate_keys_in_background())

    async def _rotate_keys_in_background(self) -> None:
        try:
            await self.rotate_keys()
        except Exception:
            log.exception("key rotation stopped; the next start resumes it")

    def check_credentials(self, venue: str, credentials: Credentials) -> None:
        """Refuse a venue or credentials no venue call could carry, naming each bad field.

        Raises
        ------
        meshkit.errors.InvalidArgument
            ``exchange_name``, ``api_key``, ``api_secret`` or ``passphrase``; nothing is
            sent to the venue and nothing is stored.
        """
        self.profile(venue)
        violations = credential_violations(venue, credentials)
        if violations:
            raise errors.InvalidArgument(
                [errors.FieldViolation(name, why) for name, why in violations],
                reason="INVALID_CREDENTIALS",
            )

    async def test_credentials(self, venue: str, credentials: Credentials) -> ConnectionReport:
        """Try ``credentials``: reachable, authenticated, allowed to trade and not to withdraw."""
        self.check_credentials(venue, credentials)
        port = self.venues.connect(venue, credentials)
        reachable = authenticated = False
        permissions: KeyPermissions | None = None
        latency_ms = 0
        venue_message = ""
        try:
            try:
                await port.load_markets()
                reachable = True
                started = time.perf_counter()
                await port.fetch_balances()
                latency_ms = int((time.perf_counter() - started) * 1000)
                authenticated = True
                try:
                    permissions = await port.fetch_key_permissions()
                except (errors.FailedPrecondition, errors.Unimplemented, errors.NotFound):
                    permissions = None
            except errors.FailedPrecondition as e:
                if e.reason != "BROKER_CREDENTIALS_REJECTED":
                    raise
                venue_message = e.message
            except (errors.Unavailable, errors.ResourceExhausted, errors.OutcomeUnknown):
                pass
        finally:
            await port.close()
        return judge_credentials(
            reachable=reachable,
            authenticated=authenticated,
            permissions=permissions,
            latency_ms=latency_ms,
            venue_message=venue_message,
        )

    async def supported_venues(self) -> list[tuple[VenueProfile, list[Market]]]:
        """Return every venue with its markets when the venue can be reached now."""
        described = []
        for profile in self.venues.profiles():
            try:
                markets = await self.venues.public_markets(profile.name)
            except errors.ServiceError:
                markets = {}
            described.append((profile, [markets[s] for s in sorted(markets) if markets[s].active]))
        return described


def _refusal_reason(report: ConnectionReport) -> str:
    if not report.authenticated:
        return "BROKER_CREDENTIALS_REJECTED"
    if report.can_withdraw:
        return "API_KEY_CAN_WITHDRAW"
    if not report.can_trade:
        return "API_KEY_CANNOT_TRADE"
    return "API_KEY_PERMISSIONS_UNKNOWN"
