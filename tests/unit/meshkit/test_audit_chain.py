"""The audit chain's pure check: an intact chain passes; each kind of tampering is named."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from meshkit.audit import (
    GENESIS_HASH,
    AuditEntry,
    Tampering,
    entry_hash,
    to_json,
    verify_chain,
)


def _entry(seq: int, prev_hash: str, action: str = "pause") -> AuditEntry:
    entry = AuditEntry(
        seq=seq,
        time=f"2026-01-01T00:00:{seq:02d}.000000Z",
        actor="user:alice",
        request_id=f"r{seq}",
        owner_user_id="alice",
        object_type="copy_config",
        object_id="c1",
        action=action,
        before=json.dumps({"status": "active"}),
        after=json.dumps({"status": "paused"}),
        prev_hash=prev_hash,
        hash="",
    )
    return replace(entry, hash=entry_hash(entry))


def _chain(length: int) -> list[AuditEntry]:
    entries: list[AuditEntry] = []
    for seq in range(1, length + 1):
        entries.append(_entry(seq, entries[-1].hash if entries else GENESIS_HASH))
    return entries


def _renumbered(entries: list[AuditEntry], shift: int) -> list[AuditEntry]:
    # What someone hiding a gap or making room does: change seq, keep the stored hash.
    return [replace(e, seq=e.seq + shift) for e in entries]


def test_intact_chain_passes() -> None:
    assert verify_chain(_chain(6)) is None
    assert verify_chain([]) is None


def test_each_hash_covers_the_previous_one() -> None:
    chain = _chain(3)
    assert chain[0].prev_hash == GENESIS_HASH
    assert [e.prev_hash for e in chain[1:]] == [e.hash for e in chain[:-1]]
    assert chain[1].hash != entry_hash(replace(chain[1], prev_hash=GENESIS_HASH))


@pytest.mark.parametrize("field", ["after", "actor", "owner_user_id", "time", "action"])
def test_edited_entry_is_named(field: str) -> None:
    chain = _chain(5)
    chain[2] = replace(chain[2], **{field: "forged"})
    problem = verify_chain(chain)
    assert problem is not None
    assert (problem.kind, problem.seq) == (Tampering.EDITED, 3)


def test_edited_and_rehashed_entry_is_named() -> None:
    chain = _chain(5)
    forged = replace(chain[2], after='{"status":"active"}')
    chain[2] = replace(forged, hash=entry_hash(forged))
    problem = verify_chain(chain)
    assert problem is not None
    assert (problem.kind, problem.seq) == (Tampering.EDITED, 3)


@pytest.mark.parametrize("gone", [0, 2, 4])
def test_deleted_entry_is_named(gone: int) -> None:
    chain = _chain(6)
    del chain[gone]
    problem = verify_chain(chain)
    assert problem is not None
    assert (problem.kind, problem.seq) == (Tampering.DELETED, gone + 1)


def test_deleted_entry_with_the_rest_renumbered_is_named() -> None:
    chain = _chain(6)
    chain = chain[:2] + _renumbered(chain[3:], -1)
    problem = verify_chain(chain)
    assert problem is not None
    assert (problem.kind, problem.seq) == (Tampering.DELETED, 3)


def test_inserted_entry_with_the_rest_renumbered_is_named() -> None:
    chain = _chain(5)
    forged = _entry(3, chain[1].hash, action="resume")
    chain = [*chain[:2], forged, *_renumbered(chain[2:], 1)]
    problem = verify_chain(chain)
    assert problem is not None
    assert (problem.kind, problem.seq) == (Tampering.INSERTED, 3)


def test_inserted_entry_with_a_bad_hash_is_named() -> None:
    chain = _chain(5)
    forged = replace(_entry(3, "f" * 64, action="resume"), hash="e" * 64)
    chain = [*chain[:2], forged, *_renumbered(chain[2:], 1)]
    problem = verify_chain(chain)
    assert problem is not None
    assert (problem.kind, problem.seq) == (Tampering.INSERTED, 3)


def test_inserted_entry_that_skips_seqs_is_named() -> None:
    chain = _chain(4)
    chain.append(_entry(9, chain[-1].hash))
    problem = verify_chain(chain)
    assert problem is not None
    assert (problem.kind, problem.seq) == (Tampering.INSERTED, 9)


def test_repeated_seq_is_named_inserted() -> None:
    chain = _chain(4)
    chain.insert(2, _entry(2, chain[0].hash, action="resume"))
    problem = verify_chain(chain)
    assert problem is not None
    assert (problem.kind, problem.seq) == (Tampering.INSERTED, 2)


@pytest.mark.parametrize(
    "value",
    [
        {"api_secret": "x"},
        {"api_key": "x"},
        {"credentials": {"passphrase": "x"}},
        {"token": "x"},
        {"items": [{"ciphertext": "x"}]},
    ],
)
def test_secrets_are_refused(value: dict) -> None:
    with pytest.raises(ValueError, match="secrets"):
        to_json(value)


def test_harmless_keys_are_kept() -> None:
    assert json.loads(to_json({"api_key_hint": "...abcd", "key_id": "12ab"})) == {
        "api_key_hint": "...abcd",
        "key_id": "12ab",
    }
