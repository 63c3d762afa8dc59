"""Keys of the broker: the key-check value and re-sealing credentials under the current key.

A rotation is a change of the :class:`~broker_svc.crypto.Cipher`: a new current key, the
old ones kept as keys that still open. :func:`rotate_credentials` then moves every stored
credential to the current key one row at a time. Each row's update is a compare-and-set on
the key id it was read with, so it is idempotent: a run interrupted at any point leaves every
row sealed by either the old or the new key (both configured, so every row stays readable
while the broker serves), and the next run carries on. Once no account is left under an old
key, the key-check value is re-sealed under the current key and the old keys may be dropped.

The key-check value is a known plaintext sealed under the broker's key. :func:`verify_key`
is what the broker's start-up calls: it refuses keys that cannot open it, so a wrong
``ENCRYPTION_KEY`` stops the broker at once instead of every account failing later.

The broker's start-up and ``copytrade keys rotate`` share these functions; neither prints or
logs a key, only key ids (the first 8 hex digits of a key's SHA-256).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from broker_svc.crypto import (
    KEY_CHECK_ASSOCIATED_DATA,
    KEY_CHECK_PLAINTEXT,
    Cipher,
    DecryptionError,
    account_associated_data,
)
from broker_svc.domain.records import AccountRow, KeyCheck
from broker_svc.ports import BrokerStorePort
from meshkit.audit import AuditEvent
from meshkit.codec import utcnow

log = logging.getLogger("broker_svc.keys")

Progress = Callable[[int, int], None]
"""Called with (accounts done, accounts in all) as a rotation goes."""


class KeyCheckFailed(Exception):
    """None of the configured keys opens this broker's stored credentials."""


@dataclass(frozen=True)
class RotationReport:
    """Where a store stands against a cipher: which keys seal its credentials now.

    Attributes
    ----------
    accounts
        Live accounts (deleted ones hold no credentials).
    on_current_key
        Accounts sealed by the cipher's current key.
    on_previous_keys
        Accounts sealed by one of the cipher's older keys: what a rotation still has to move.
    unreadable
        Accounts sealed by a key the cipher does not have, or whose ciphertext fails to open.
    resealed
        Accounts this call moved to the current key.
    key_check_current
        Whether the key-check value is sealed by the current key.
    """

    accounts: int
    on_current_key: int
    on_previous_keys: int
    unreadable: int
    resealed: int
    key_check_current: bool

    @property
    def complete(self) -> bool:
        """Return whether nothing needs an older key any more (they may be dropped)."""
        return self.on_previous_keys == 0 and self.key_check_current


def _opens(cipher: Cipher, row: AccountRow) -> bool:
    associated = account_associated_data(row.account.exchange_id, row.account.user_id)
    try:
        cipher.decrypt(row.ciphertext, row.nonce, row.key_id, associated)
    except DecryptionError:
        return False
    return True


def _check_opens(cipher: Cipher, check: KeyCheck) -> bool:
    try:
        plaintext = cipher.decrypt(
            check.ciphertext,
            check.nonce,
            check.key_id,
            KEY_CHECK_ASSOCIATED_DATA,
        )
    except DecryptionError:
        return False
    return plaintext == KEY_CHECK_PLAINTEXT


def _configured(cipher: Cipher) -> str:
    return ", ".join(cipher.key_ids)


async def verify_key(store: BrokerStorePort, cipher: Cipher, now: datetime | None = None) -> None:
    """Check that ``cipher`` opens the store's key-check value; write it on a first start.

    On a store with no key-check value yet (an empty store, or one from before the check
    existed) the value is sealed under the current key, unless accounts are stored and the
    cipher opens none of them.

    Raises
    ------
    KeyCheckFailed
        When no configured key opens the key-check value (or any stored account); the
        message names key ids, never keys.
    """
    check = await store.key_check()
    if check is None:
        rows = await store.sealed_accounts()
        if rows and not any(_opens(cipher, row) for row in rows):
            sealed_by = ", ".join(sorted({row.key_id for row in rows}))
            raise KeyCheckFailed(
                f"none of the {len(rows)} stored accounts opens with the configured keys"
                f" (key ids {_configured(cipher)}); they were sealed by key id {sealed_by}"
            )
        ciphertext, nonce, key_id = cipher.encrypt(KEY_CHECK_PLAINTEXT, KEY_CHECK_ASSOCIATED_DATA)
        if await store.insert_key_check(ciphertext, nonce, key_id, now or utcnow()):
            log.info("key-check value written under key id %s", key_id)
            return
        check = await store.key_check()  # another broker wrote it first: check that one
        assert check is not None
    if not _check_opens(cipher, check):
        raise KeyCheckFailed(
            f"the configured keys (key ids {_configured(cipher)}) do not open the key-check"
            f" value, which key id {check.key_id} sealed"
        )


async def rotation_report(
    store: BrokerStorePort, cipher: Cipher, resealed: int = 0
) -> RotationReport:
    """Return which keys seal the store's credentials and key-check value now."""
    by_key = await store.sealed_key_ids()
    previous = set(cipher.key_ids) - {cipher.key_id}
    check = await store.key_check()
    return RotationReport(
        accounts=sum(by_key.values()),
        on_current_key=by_key.get(cipher.key_id, 0),
        on_previous_keys=sum(count for key_id, count in by_key.items() if key_id in previous),
        unreadable=sum(count for key_id, count in by_key.items() if key_id not in cipher.key_ids),
        resealed=resealed,
        key_check_current=check is not None and check.key_id == cipher.key_id,
    )


async def reseal_credentials(
    store: BrokerStorePort,
    cipher: Cipher,
    progress: Progress | None = None,
) -> int:
    """Re-seal, row by row, every live account not sealed by the current key; return how many.

    Each update applies only if the row is still sealed by the key it was read with, so this
    runs safely beside a serving broker, another run, or a deletion. A row no configured key
    opens is left as it is (logged by exchange id).
    """
    rows = await store.sealed_accounts()
    resealed = 0
    for done, row in enumerate(rows, start=1):
        if row.key_id != cipher.key_id:
            associated = account_associated_data(row.account.exchange_id, row.account.user_id)
            try:
                ciphertext, nonce, key_id = cipher.rewrap(
                    row.ciphertext,
                    row.nonce,
                    row.key_id,
                    associated,
                )
            except DecryptionError:
                log.error(
                    "credentials of exchange account %s open with no configured key (key id %s)",
                    row.account.exchange_id,
                    row.key_id,
                )
            else:
                if await store.replace_credentials(
                    row.account.exchange_id,
                    row.key_id,
                    ciphertext,
                    nonce,
                    key_id,
                    audit=AuditEvent(
                        row.account.user_id,
                        "exchange_account",
                        row.account.exchange_id,
                        "key_rotation",
                        {"key_id": row.key_id},
                        {"key_id": key_id},
                    ),
                ):
                    resealed += 1
        if progress is not None:
            progress(done, len(rows))
    return resealed


async def reseal_key_check(
    store: BrokerStorePort, cipher: Cipher, now: datetime | None = None
) -> bool:
    """Seal the key-check value under the current key once no account needs an older key.

    Returns whether the value is sealed by the current key after the call.
    """
    report = await rotation_report(store, cipher)
    if report.key_check_current:
        return True
    if report.on_previous_keys:
        return False
    check = await store.key_check()
    if check is None or not _check_opens(cipher, check):
        return False
    ciphertext, nonce, key_id = cipher.encrypt(KEY_CHECK_PLAINTEXT, KEY_CHECK_ASSOCIATED_DATA)
    await store.replace_key_check(check.key_id, ciphertext, nonce, key_id, now or utcnow())
    check = await store.key_check()
    return check is not None and check.key_id == cipher.key_id


async def rotate_credentials(
    store: BrokerStorePort,
    cipher: Cipher,
    progress: Progress | None = None,
) -> RotationReport:
    """Move every credential and then the key-check value to the current key.

    Idempotent and resumable: a second call after an interruption finishes the job, and a
    call with nothing to move changes nothing (and reads no ciphertext: every start calls it).
    """
    before = await rotation_report(store, cipher)
    if before.complete:
        return before
    resealed = await reseal_credentials(store, cipher, progress)
    await reseal_key_check(store, cipher)
    return await rotation_report(store, cipher, resealed)
