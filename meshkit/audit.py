"""An append-only audit log whose entries are hash chained, over :mod:`meshkit.db`.

Each service keeps its own chain in its own table (``broker_audit_log``, ``engine_audit_log``,
``recon_audit_log``, ``gateway_audit_log``; each created by a migration of that service). An
entry records one change of state: when, who (``user:<id>``, ``service:<name>`` or
``operator:cli``), the request id, whose object it is, the object, the action, and the object
before and after as JSON. ``hash`` is the SHA-256 (hex) of a canonical JSON of every other
field, ``prev_hash`` included, so editing, deleting or inserting an entry breaks the chain
from there on; :func:`verify_chain` names the first entry that does not fit.

An entry is appended inside the transaction of the change it records (nothing half written),
as that transaction's LAST statement. Appends serialise on the chain: PostgreSQL locks the
table in EXCLUSIVE mode (readers go on, a second appender waits for the first to commit);
SQLite has a single writer. The lock is taken last and held only until the commit, so two
transactions never wait for each other in a cycle.

``before`` and ``after`` must never hold secrets: :meth:`AuditLog.append` refuses any key
that names one (API keys and secrets, passphrases, tokens, ciphertexts).
"""

from __future__ import annotations

import enum
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from meshkit import db, errors
from meshkit.codec import from_iso, timestamp_to_proto, to_iso
from meshkit.identity import current_actor
from meshkit.interceptors import request_id_var

GENESIS_HASH = "0" * 64
"""The ``prev_hash`` of the first entry of every chain."""

CHAINS = ("broker", "engine", "recon", "gateway")
"""Every service that keeps a chain; its table is ``<name>_audit_log``."""

OPERATOR_CLI = "operator:cli"
"""The actor of a change made with the ``copytrade`` command line."""

_TABLE = re.compile(r"[a-z][a-z0-9_]*_audit_log\Z")
_SECRET_WORDS = frozenset(
    {"secret", "passphrase", "password", "token", "private", "ciphertext", "nonce", "credentials"},
)
_COLUMNS = (
    "seq, time, actor, request_id, owner_user_id, object_type, object_id, action, before,"
    " after, prev_hash, hash"
)
MAX_SHIFT = 64
"""How far a renumbered entry is looked for when telling a deletion from an edit."""


MAX_PAGE = 500
DEFAULT_PAGE = 50


def page_size_of(before_seq: int, page_size: int) -> int:
    """Check a page request of a ``ListAuditEntries``; return its size (0 means 50).

    Raises
    ------
    errors.InvalidArgument
        Naming ``page_size`` (0 to 500) or ``before_seq`` (0 or more).
    """
    if page_size < 0 or page_size > MAX_PAGE:
        raise errors.invalid("page_size", f"must be between 0 and {MAX_PAGE}, got {page_size}")
    if before_seq < 0:
        raise errors.invalid("before_seq", "must be 0 or more")
    return page_size or DEFAULT_PAGE


def table_of(chain: str) -> str:
    """Return the table of a service's chain: ``engine`` → ``engine_audit_log``."""
    return f"{chain}_audit_log"


@dataclass(frozen=True)
class AuditEvent:
    """A change of state as a use-case describes it (who and when are filled in on append).

    ``before`` is ``None`` for a creation and ``after`` ``None`` for a deletion.
    """

    owner_user_id: str
    object_type: str
    object_id: str
    action: str
    before: Mapping[str, Any] | None = None
    after: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class AuditEntry:
    """One stored entry of a chain; ``before`` and ``after`` are the stored JSON text."""

    seq: int
    time: str
    actor: str
    request_id: str
    owner_user_id: str
    object_type: str
    object_id: str
    action: str
    before: str
    after: str
    prev_hash: str
    hash: str

    def computed_hash(self) -> str:
        """Return the hash the entry's content calls for (equal to ``hash`` when intact)."""
        return entry_hash(self)


def message_fields(entry: AuditEntry) -> dict[str, Any]:
    """Return the fields of the wire ``copytrade.common.v1.AuditEntry`` for ``entry``."""
    return {
        "seq": entry.seq,
        "time": timestamp_to_proto(from_iso(entry.time)),
        "actor": entry.actor,
        "request_id": entry.request_id,
        "owner_user_id": entry.owner_user_id,
        "object_type": entry.object_type,
        "object_id": entry.object_id,
        "action": entry.action,
        "before_json": entry.before,
        "after_json": entry.after,
        "prev_hash": entry.prev_hash,
        "hash": entry.hash,
    }


def entry_hash(entry: AuditEntry) -> str:
    """Return the SHA-256 (hex) of the canonical JSON of every field of ``entry`` but ``hash``."""
    fields = {
        "seq": entry.seq,
        "time": entry.time,
        "actor": entry.actor,
        "request_id": entry.request_id,
        "owner_user_id": entry.owner_user_id,
        "object_type": entry.object_type,
        "object_id": entry.object_id,
        "action": entry.action,
        "before": entry.before,
        "after": entry.after,
        "prev_hash": entry.prev_hash,
    }
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _names_secret(key: str) -> bool:
    # "api_secret", "passphrase", "token", "api_key", "key": refused; "api_key_hint", "key_id",
    # "live_tokens": allowed.
    words = key.lower().split("_")
    return bool(_SECRET_WORDS.intersection(words)) or words[-1] == "key"


def _check_no_secrets(value: Any, path: str) -> None:
    if isinstance(value, Mapping):
        for key, inner in value.items():
            if _names_secret(str(key)):
                raise ValueError(f"audit data must not hold secrets: {path}{key}")
            _check_no_secrets(inner, f"{path}{key}.")
    elif isinstance(value, list | tuple):
        for inner in value:
            _check_no_secrets(inner, path)


def to_json(value: Mapping[str, Any] | None) -> str:
    """Return the canonical JSON text stored for a ``before`` or ``after`` value."""
    _check_no_secrets(value, "")
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def _entry(row: Mapping[str, Any]) -> AuditEntry:
    return AuditEntry(
        seq=int(row["seq"]),
        time=row["time"],
        actor=row["actor"],
        request_id=row["request_id"],
        owner_user_id=row["owner_user_id"],
        object_type=row["object_type"],
        object_id=row["object_id"],
        action=row["action"],
        before=row["before"],
        after=row["after"],
        prev_hash=row["prev_hash"],
        hash=row["hash"],
    )


class AuditLog:
    """One service's chain in one table.

    Parameters
    ----------
    database
        The service's database (its dialect decides how appends serialise).
    table
        ``<service>_audit_log``.
    default_actor
        The actor when the change is made outside any call (``service:<name>``).
    """

    def __init__(self, database: db.Database, table: str, *, default_actor: str = "") -> None:
        if not _TABLE.match(table):
            raise ValueError(f"not an audit table name: {table!r}")
        self.database = database
        self.table = table
        self.default_actor = default_actor

    async def append(
        self,
        tx: db.Executor,
        event: AuditEvent,
        now: datetime,
        *,
        actor: str = "",
    ) -> AuditEntry:
        """Append ``event`` to the chain inside ``tx``; return the entry written.

        Call it as the last statement of the transaction that makes the change. The actor is
        ``actor`` when given, else :func:`meshkit.identity.current_actor`, else the default;
        the request id is the current call's.

        Raises
        ------
        ValueError
            When ``before`` or ``after`` holds a key that names a secret.
        """
        before, after = to_json(event.before), to_json(event.after)
        if self.database.dialect == "postgresql":
            await tx.execute(f"LOCK TABLE {self.table} IN EXCLUSIVE MODE")
        head = await tx.fetchone(
            f"SELECT seq, hash FROM {self.table} ORDER BY seq DESC LIMIT 1",
        )
        entry = AuditEntry(
            seq=int(head["seq"]) + 1 if head else 1,
            time=to_iso(now),
            actor=actor or current_actor() or self.default_actor,
            request_id=request_id_var.get(),
            owner_user_id=event.owner_user_id,
            object_type=event.object_type,
            object_id=event.object_id,
            action=event.action,
            before=before,
            after=after,
            prev_hash=head["hash"] if head else GENESIS_HASH,
            hash="",
        )
        entry = replace(entry, hash=entry_hash(entry))
        await tx.execute(
            f"INSERT INTO {self.table} ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                entry.seq,
                entry.time,
                entry.actor,
                entry.request_id,
                entry.owner_user_id,
                entry.object_type,
                entry.object_id,
                entry.action,
                entry.before,
                entry.after,
                entry.prev_hash,
                entry.hash,
            ),
        )
        return entry

    async def record(self, event: AuditEvent, now: datetime, *, actor: str = "") -> AuditEntry:
        """Append ``event`` in a transaction of its own (for a change that writes nothing else)."""
        async with self.database.transaction() as tx:
            return await self.append(tx, event, now, actor=actor)

    async def entries_of(
        self,
        owner_user_id: str,
        *,
        before_seq: int = 0,
        limit: int = 50,
    ) -> list[AuditEntry]:
        """Return ``owner_user_id``'s entries, newest (highest seq) first.

        Only entries with a seq below ``before_seq`` when it is above 0 (the next page).
        """
        sql = f"SELECT {_COLUMNS} FROM {self.table} WHERE owner_user_id = ?"
        params: list[Any] = [owner_user_id]
        if before_seq > 0:
            sql += " AND seq < ?"
            params.append(before_seq)
        rows = await self.database.fetchall(sql + " ORDER BY seq DESC LIMIT ?", (*params, limit))
        return [_entry(row) for row in rows]

    async def all_entries(self) -> list[AuditEntry]:
        """Return the whole chain, by seq."""
        return await read_chain(self.database, self.table)


async def read_chain(executor: db.Executor, table: str) -> list[AuditEntry]:
    """Return every entry of the chain in ``table``, by seq."""
    if not _TABLE.match(table):
        raise ValueError(f"not an audit table name: {table!r}")
    rows = await executor.fetchall(f"SELECT {_COLUMNS} FROM {table} ORDER BY seq")
    return [_entry(row) for row in rows]


class Tampering(enum.Enum):
    """How a chain was changed after it was written."""

    EDITED = "edited"
    DELETED = "deleted"
    INSERTED = "inserted"


@dataclass(frozen=True)
class ChainProblem:
    """The first entry of a chain that does not fit: what was done to it, and why we think so."""

    kind: Tampering
    seq: int
    detail: str

    def __str__(self) -> str:
        return f"entry {self.seq} {self.kind.value}: {self.detail}"


def _deleted_by_renumbering(entry: AuditEntry) -> int:
    # An entry whose content hashes right under a higher seq was moved down: that many
    # entries before it were deleted and the rest renumbered to hide the gap.
    for shift in range(1, MAX_SHIFT + 1):
        if entry_hash(replace(entry, seq=entry.seq + shift)) == entry.hash:
            return shift
    return 0


def verify_chain(entries: Sequence[AuditEntry]) -> ChainProblem | None:
    """Check a chain (entries by seq); return its first problem, ``None`` when it is intact.

    Pure: it looks only at the entries. An entry whose content does not match its hash was
    edited; a seq gap, or a link to an entry that is not there, means entries were deleted;
    a repeated seq, an entry that skips seqs while linking to its predecessor, or a later
    entry linking past it, means it was inserted. An entry edited and re-hashed shows as its
    successor linking to a hash that is no longer there. (A chain alone cannot expose entries
    forged at its very end with correct hashes: compare the head hash with one noted earlier.)
    """
    position = {entry.hash: index for index, entry in enumerate(entries)}
    for index, entry in enumerate(entries):
        previous = entries[index - 1] if index else None
        expected_seq = previous.seq + 1 if previous else 1
        expected_prev = previous.hash if previous else GENESIS_HASH
        intact = entry_hash(entry) == entry.hash
        if previous is not None and entry.seq <= previous.seq:
            return ChainProblem(Tampering.INSERTED, entry.seq, "its seq repeats an earlier one")
        if entry.prev_hash == expected_prev and intact and entry.seq == expected_seq:
            continue
        following = entries[index + 1] if index + 1 < len(entries) else None
        if following is not None and following.prev_hash == expected_prev:
            return ChainProblem(
                Tampering.INSERTED,
                entry.seq,
                f"entry {following.seq} links past it to "
                + (f"entry {previous.seq}" if previous else "the start of the chain"),
            )
        if entry.prev_hash == expected_prev:
            if not intact:
                return ChainProblem(
                    Tampering.EDITED, entry.seq, "its hash does not match its content"
                )
            return ChainProblem(
                Tampering.INSERTED,
                entry.seq,
                f"it links to entry {expected_seq - 1} but skips to seq {entry.seq}",
            )
        # The link to the previous entry is broken.
        linked = -1 if entry.prev_hash == GENESIS_HASH else position.get(entry.prev_hash)
        if linked is not None and linked < index - 1:
            first = entries[linked + 1]
            return ChainProblem(
                Tampering.INSERTED,
                first.seq,
                f"entry {entry.seq} links past it to "
                + (f"entry {entries[linked].seq}" if linked >= 0 else "the start of the chain"),
            )
        if entry.seq > expected_seq:
            missing = (
                f"seq {expected_seq}"
                if entry.seq == expected_seq + 1
                else f"seqs {expected_seq} to {entry.seq - 1}"
            )
            return ChainProblem(Tampering.DELETED, expected_seq, f"{missing} missing (seq gap)")
        if not intact:
            shift = _deleted_by_renumbering(entry)
            if shift:
                return ChainProblem(
                    Tampering.DELETED,
                    expected_seq,
                    f"{shift} entr{'y' if shift == 1 else 'ies'} before seq {entry.seq + shift}"
                    " deleted and the later ones renumbered (prev_hash mismatch)",
                )
            return ChainProblem(Tampering.EDITED, entry.seq, "its hash does not match its content")
        if previous is None:
            return ChainProblem(
                Tampering.DELETED,
                entry.seq,
                "the first entry links to an entry that is not there (prev_hash mismatch)",
            )
        return ChainProblem(
            Tampering.EDITED,
            previous.seq,
            f"it was re-hashed: entry {entry.seq} links to a different hash for it",
        )
    return None


@dataclass(frozen=True)
class ChainReport:
    """What checking one chain found."""

    chain: str
    count: int
    problem: ChainProblem | None
    head_hash: str

    @property
    def ok(self) -> bool:
        """Return whether the chain is intact."""
        return self.problem is None

    def __str__(self) -> str:
        if self.problem is None:
            return f"{self.chain}: ok ({self.count} entries, head {self.head_hash[:16]})"
        return f"{self.chain}: {self.problem}"


async def verify_table(executor: db.Executor, chain: str) -> ChainReport:
    """Read and check the chain of service ``chain`` (its table ``<chain>_audit_log``)."""
    entries = await read_chain(executor, table_of(chain))
    head = entries[-1].hash if entries else GENESIS_HASH
    return ChainReport(chain, len(entries), verify_chain(entries), head)
