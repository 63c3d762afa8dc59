"""The local mesh's credential keys and ``copytrade keys rotate``.

Two files under ``<data dir>/secrets`` (directory mode 0700, files 0600):

- ``encryption.key``: the current key, base64 of 32 random bytes (the broker's ``ENCRYPTION_KEY``);
- ``encryption.keys.previous``: keys it replaced that may still open stored credentials, one
  base64 key a line (the broker's ``ENCRYPTION_KEYS_PREVIOUS``, joined by commas);
- ``webhook-secret.key``: the key that seals the users' webhook signing secrets, base64 of 32
  random bytes (the gateway's ``GATEWAY_WEBHOOK_SECRET_KEY``; not rotated here).

``rotate`` makes a new key and re-encrypts every credential in the broker's database now.
Its order makes an interrupt at any point harmless, and a second run finishes the job:

1. The keys in the files must open the broker's key-check value, or nothing is changed.
2. If no rotation is unfinished (every credential and the key check already sealed by the
   current key), a new key is made. The previous-keys file gains the current key first, then
   the key file is replaced by the new key; each write goes to a temporary file, is flushed to
   disk and renamed over the old one. Until the second rename the old key is still current
   (and now also listed as previous, which is harmless); after it, the old key is listed.
3. Every credential still sealed by a previous key is re-sealed under the current one, each
   row on its own (a compare-and-set on the key id), then the key-check value. A row is
   always sealed by a key one of the two files holds.

A run that finds an unfinished rotation (step 3 interrupted) makes no new key: it resumes
step 3. ``finish`` drops the previous keys once no credential needs them. Nothing here prints
a key; key ids (the first 8 hex digits of a key's SHA-256) are shown instead.
"""

from __future__ import annotations

import base64
import binascii
import os
import pathlib
import secrets
from collections.abc import Callable

from broker_svc.crypto import KEY_BYTES, Cipher, key_id
from broker_svc.keys import (
    KeyCheckFailed,
    rotate_credentials,
    rotation_report,
    verify_key,
)
from broker_svc.store import BrokerStore
from meshkit.audit import OPERATOR_CLI

KEY_FILE = "encryption.key"
PREVIOUS_KEYS_FILE = "encryption.keys.previous"
WEBHOOK_KEY_FILE = "webhook-secret.key"

Output = Callable[[str], None]


class KeyFileError(Exception):
    """A key file is missing or does not hold base64 keys of 32 bytes."""


def secrets_dir(data_dir: pathlib.Path) -> pathlib.Path:
    """Return the directory of the mesh's secrets."""
    return data_dir / "secrets"


def _ensure_secrets_dir(data_dir: pathlib.Path) -> pathlib.Path:
    directory = secrets_dir(data_dir)
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    return directory


def _decode(text: str, path: pathlib.Path) -> bytes:
    try:
        key = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise KeyFileError(f"{path} holds something that is not a base64 key") from None
    if len(key) != KEY_BYTES:
        raise KeyFileError(f"{path} holds a key of {len(key)} bytes, not {KEY_BYTES}")
    return key


def _write_secret(path: pathlib.Path, text: str) -> None:
    # Write beside, flush to disk, rename over, then flush the directory: the file holds
    # either its old or its new content after a crash, never a part.
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def new_key() -> str:
    """Return a fresh key: base64 of 32 random bytes."""
    return base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode()


def current_key(data_dir: pathlib.Path, *, create: bool = True) -> str:
    """Return the current key (base64), creating it (mode 0600) on first use when ``create``.

    Raises
    ------
    KeyFileError
        When there is no key and ``create`` is false, or the file holds no valid key.
    """
    path = secrets_dir(data_dir) / KEY_FILE
    if not path.exists():
        if not create:
            raise KeyFileError(
                f"there is no key at {path}: the mesh has not run with this data dir"
            )
        _ensure_secrets_dir(data_dir)
        key = new_key()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(key + "\n")
        return key
    key = path.read_text().strip()
    _decode(key, path)
    return key


def webhook_secret_key(data_dir: pathlib.Path) -> str:
    """Return the gateway's webhook secret key (base64), creating it (mode 0600) on first use."""
    path = secrets_dir(data_dir) / WEBHOOK_KEY_FILE
    if not path.exists():
        _ensure_secrets_dir(data_dir)
        _write_secret(path, new_key() + "\n")
    key = path.read_text().strip()
    _decode(key, path)
    return key


def previous_keys(data_dir: pathlib.Path) -> list[str]:
    """Return the keys (base64) the current key replaced and that may still open credentials."""
    path = secrets_dir(data_dir) / PREVIOUS_KEYS_FILE
    if not path.exists():
        return []
    keys = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    for key in keys:
        _decode(key, path)
    return keys


def _write_previous_keys(data_dir: pathlib.Path, keys: list[str]) -> None:
    _write_secret(
        _ensure_secrets_dir(data_dir) / PREVIOUS_KEYS_FILE,
        "".join(f"{k}\n" for k in keys),
    )


def _cipher(current: str, previous: list[str]) -> Cipher:
    return Cipher(
        base64.b64decode(current),
        old_keys=tuple(base64.b64decode(key) for key in previous if key != current),
    )


def _ids(keys: list[str]) -> str:
    return ", ".join(key_id(base64.b64decode(key)) for key in keys) or "none"


async def rotate(data_dir: pathlib.Path, database_url: str, out: Output = print) -> int:
    """Rotate the mesh's key, or finish an interrupted rotation; return an exit status.

    Returns 0 when every credential is sealed by the current key at the end, 1 otherwise
    (keys that open nothing here, or credentials no key opens), with the reason printed.
    """
    try:
        current, previous = current_key(data_dir, create=False), previous_keys(data_dir)
    except KeyFileError as e:
        out(f"keys rotate: {e}")
        return 1
    store = await BrokerStore.open(database_url, audit_actor=OPERATOR_CLI)
    try:
        cipher = _cipher(current, previous)
        try:
            await verify_key(store, cipher)
        except KeyCheckFailed as e:
            out(
                f"keys rotate: the keys in {secrets_dir(data_dir)} do not open the broker's"
                f" database ({e}); nothing was changed"
            )
            return 1
        before = await rotation_report(store, cipher)
        if before.complete:
            replacement = new_key()
            previous = [key for key in previous if key != current] + [current]
            _write_previous_keys(data_dir, previous)
            _write_secret(secrets_dir(data_dir) / KEY_FILE, replacement + "\n")
            current = replacement
            cipher = _cipher(current, previous)
            out(f"new key {cipher.key_id}; previous keys kept: {_ids(previous)}")
        else:
            out(
                f"resuming the unfinished rotation to key {cipher.key_id}:"
                f" {before.on_previous_keys} of {before.accounts} credentials still on"
                " a previous key"
            )
        step = max(1, before.accounts // 20)

        def progress(done: int, total: int) -> None:
            if done == total or done % step == 0:
                out(f"re-encrypted {done}/{total}")

        report = await rotate_credentials(store, cipher, progress)
    finally:
        await store.close()
    out(
        f"{report.on_current_key}/{report.accounts} credentials sealed by key {cipher.key_id}"
        f" ({report.resealed} re-encrypted now)"
    )
    if report.unreadable:
        out(
            f"keys rotate: {report.unreadable} credentials open with none of the keys; their"
            " accounts must be registered again"
        )
    if not report.complete:
        out("keys rotate: not finished; run it again to carry on")
        return 1
    out(
        "restart the mesh (copytrade up) so the broker uses the new key; once nothing runs"
        " with the old key, drop it: copytrade keys rotate --finish"
    )
    return 0 if not report.unreadable else 1


async def finish(data_dir: pathlib.Path, database_url: str, out: Output = print) -> int:
    """Drop the previous keys once no credential needs them; return an exit status."""
    try:
        current, previous = current_key(data_dir, create=False), previous_keys(data_dir)
    except KeyFileError as e:
        out(f"keys rotate --finish: {e}")
        return 1
    if not previous:
        out("keys rotate --finish: there are no previous keys to drop")
        return 0
    store = await BrokerStore.open(database_url, audit_actor=OPERATOR_CLI)
    try:
        cipher = _cipher(current, previous)
        try:
            await verify_key(store, cipher)
        except KeyCheckFailed as e:
            out(
                f"keys rotate --finish: the keys in {secrets_dir(data_dir)} do not open the"
                f" broker's database ({e}); nothing was changed"
            )
            return 1
        report = await rotation_report(store, cipher)
    finally:
        await store.close()
    if not report.complete:
        out(
            f"keys rotate --finish: {report.on_previous_keys} of {report.accounts} credentials"
            " (or the key check) still need a previous key; run copytrade keys rotate first"
        )
        return 1
    (secrets_dir(data_dir) / PREVIOUS_KEYS_FILE).unlink()
    out(
        f"dropped the previous keys ({_ids(previous)}); every credential is sealed by key"
        f" {cipher.key_id}"
    )
    return 0
