"""``copytrade keys rotate`` and ``copytrade user list/revoke`` through meshctl.__main__.main.

The broker's database is the ``database_url`` fixture (SQLite, and PostgreSQL when configured),
passed as ``--database-url``; the key files live in a temporary data dir.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import pathlib
import subprocess
import sys
from decimal import Decimal

import pytest

from broker_svc.adapters.paper_exchange import PaperVenue, PaperVenues
from broker_svc.crypto import Cipher, key_id
from broker_svc.keys import verify_key
from broker_svc.store import BrokerStore
from broker_svc.usecases import Broker
from gateway.store import GatewayStore, TokenStatus
from gateway.users import open_store
from meshctl import keys as key_files
from meshctl.__main__ import main
from meshctl.launcher import Mesh, encryption_key
from tests.fakes.clock import FakeClock

ROOT = pathlib.Path(__file__).resolve().parents[3]
USER = "0b9f3f6e-1111-4c1e-9b0a-000000000001"


class Interrupted(Exception):
    """Stands for a crash (power cut, kill -9) in the middle of a rotation."""


def _venue() -> PaperVenue:
    venue = PaperVenue("binance", clock=FakeClock())
    venue.set_price("BTC/USDT", Decimal(50000))
    return venue


def _key(text: str) -> bytes:
    return base64.b64decode(text)


def _seed(data_dir: pathlib.Path, url: str, venue: PaperVenue, count: int) -> list[str]:
    """Register ``count`` accounts the way a running broker of this data dir would."""

    async def seed() -> list[str]:
        store = await BrokerStore.open(url)
        broker = Broker(store, PaperVenues(venue), Cipher(_key(encryption_key(data_dir))))
        try:
            await verify_key(store, broker.cipher)
            return [
                (
                    await broker.register(USER, "binance", venue.add_account({"USDT": "500"}))
                ).exchange_id
                for _ in range(count)
            ]
        finally:
            await broker.close()
            await store.close()

    return asyncio.run(seed())


def _state(url: str, venue: PaperVenue, keys: list[str]) -> tuple[list[str], list[Decimal]]:
    """Return the key id of each account, and its equity read with only ``keys`` configured."""

    async def read() -> tuple[list[str], list[Decimal]]:
        store = await BrokerStore.open(url)
        cipher = Cipher(_key(keys[0]), old_keys=tuple(_key(k) for k in keys[1:]))
        broker = Broker(store, PaperVenues(venue), cipher)
        try:
            await verify_key(store, cipher)
            rows = await store.sealed_accounts()
            equity = [
                (await broker.portfolio(row.account.exchange_id, USER, "USDT")).equity
                for row in rows
            ]
            return [row.key_id for row in rows], equity
        finally:
            await broker.close()
            await store.close()

    return asyncio.run(read())


def _rotate(data_dir: pathlib.Path, url: str, *extra: str) -> int:
    return main(["keys", "rotate", "--data-dir", str(data_dir), "--database-url", url, *extra])


def _no_key_in(text: str, *keys: str) -> None:
    for key in keys:
        assert key not in text and _key(key).hex() not in text


def test_rotate_makes_a_new_key_keeps_the_old_one_and_re_encrypts_every_credential(
    tmp_path: pathlib.Path,
    database_url: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    venue = _venue()
    old = encryption_key(tmp_path)
    _seed(tmp_path, database_url, venue, 5)

    assert _rotate(tmp_path, database_url) == 0
    out = capsys.readouterr().out
    new = encryption_key(tmp_path)
    assert new != old
    assert key_files.previous_keys(tmp_path) == [old]
    previous_file = tmp_path / "secrets" / key_files.PREVIOUS_KEYS_FILE
    assert previous_file.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "secrets" / key_files.KEY_FILE).stat().st_mode & 0o777 == 0o600
    assert "re-encrypted 5/5" in out and f"5/5 credentials sealed by key {key_id(_key(new))}" in out
    _no_key_in(out, old, new)

    # Only the new key is needed now: every account opens and trades with it alone.
    sealed_by, equity = _state(database_url, venue, [new])
    assert sealed_by == [key_id(_key(new))] * 5 and equity == [Decimal(500)] * 5
    # The launcher hands both to the broker.
    assert encryption_key(tmp_path, previous=True) == old


@pytest.mark.parametrize("writes_before_the_crash", [0, 1])
def test_a_crash_during_the_file_writes_loses_nothing_and_the_next_run_rotates(
    tmp_path: pathlib.Path,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    writes_before_the_crash: int,
) -> None:
    venue = _venue()
    old = encryption_key(tmp_path)
    _seed(tmp_path, database_url, venue, 3)
    real_write = key_files._write_secret
    written = 0

    def crash_after_some_writes(path: pathlib.Path, text: str) -> None:
        nonlocal written
        if written == writes_before_the_crash:
            raise Interrupted
        written += 1
        real_write(path, text)

    monkeypatch.setattr(key_files, "_write_secret", crash_after_some_writes)
    with pytest.raises(Interrupted):
        _rotate(tmp_path, database_url)
    # Whatever was written, the keys in the files still open every account.
    in_files = [encryption_key(tmp_path), *key_files.previous_keys(tmp_path)]
    assert old in in_files
    assert _state(database_url, venue, in_files)[1] == [Decimal(500)] * 3

    monkeypatch.setattr(key_files, "_write_secret", real_write)
    assert _rotate(tmp_path, database_url) == 0
    new = encryption_key(tmp_path)
    assert new != old and key_files.previous_keys(tmp_path) == [old]
    assert _state(database_url, venue, [new])[0] == [key_id(_key(new))] * 3
    _no_key_in(capsys.readouterr().out, old, new)


def test_a_crash_among_the_rows_resumes_with_the_same_key_and_finish_waits_for_it(
    tmp_path: pathlib.Path,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    venue = _venue()
    old = encryption_key(tmp_path)
    _seed(tmp_path, database_url, venue, 5)
    real_replace = BrokerStore.replace_credentials
    calls = 0

    async def crash_on_the_third_row(self: BrokerStore, *args: object, **kwargs: object) -> bool:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise Interrupted
        return await real_replace(self, *args, **kwargs)

    monkeypatch.setattr(BrokerStore, "replace_credentials", crash_on_the_third_row)
    with pytest.raises(Interrupted):
        _rotate(tmp_path, database_url)
    monkeypatch.setattr(BrokerStore, "replace_credentials", real_replace)
    new = encryption_key(tmp_path)
    assert new != old and key_files.previous_keys(tmp_path) == [old]
    sealed_by, equity = _state(database_url, venue, [new, old])  # every row still opens
    assert sorted(sealed_by) == sorted([key_id(_key(new))] * 2 + [key_id(_key(old))] * 3)
    assert equity == [Decimal(500)] * 5

    capsys.readouterr()
    assert _rotate(tmp_path, database_url, "--finish") == 1  # the old key is still needed
    assert "3 of 5 credentials" in capsys.readouterr().out
    assert key_files.previous_keys(tmp_path) == [old]

    assert _rotate(tmp_path, database_url) == 0
    out = capsys.readouterr().out
    assert "resuming" in out and "5/5 credentials sealed" in out and "(3 re-encrypted now)" in out
    assert encryption_key(tmp_path) == new  # no second new key: the same rotation finished

    assert _rotate(tmp_path, database_url, "--finish") == 0
    assert not (tmp_path / "secrets" / key_files.PREVIOUS_KEYS_FILE).exists()
    assert encryption_key(tmp_path, previous=True) == ""
    assert _state(database_url, venue, [new]) == ([key_id(_key(new))] * 5, [Decimal(500)] * 5)
    _no_key_in(capsys.readouterr().out, old, new)


def test_rotate_with_a_key_file_that_opens_nothing_changes_nothing(
    tmp_path: pathlib.Path,
    database_url: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    venue = _venue()
    old = encryption_key(tmp_path)
    _seed(tmp_path, database_url, venue, 2)
    wrong = base64.b64encode(os.urandom(32)).decode()
    (tmp_path / "secrets" / key_files.KEY_FILE).write_text(wrong + "\n")

    assert _rotate(tmp_path, database_url) == 1
    out = capsys.readouterr().out
    assert "do not open" in out and "nothing was changed" in out
    assert encryption_key(tmp_path) == wrong and key_files.previous_keys(tmp_path) == []
    assert _state(database_url, venue, [old])[0] == [key_id(_key(old))] * 2
    _no_key_in(out, old, wrong)


def test_rotate_without_a_key_file_says_so(
    tmp_path: pathlib.Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["keys", "rotate", "--data-dir", str(tmp_path)]) == 1
    assert "there is no key" in capsys.readouterr().out


def test_the_launcher_passes_the_previous_keys_to_the_broker_after_a_rotation(
    tmp_path: pathlib.Path,
) -> None:
    old = encryption_key(tmp_path)
    _seed(tmp_path, f"sqlite:///{tmp_path.resolve()}/broker.db", _venue(), 1)
    assert main(["keys", "rotate", "--data-dir", str(tmp_path)]) == 0  # the data dir's own db
    mesh = Mesh(tmp_path)
    mesh.ensure_credentials()
    broker = next(component for component in mesh._plan() if component.name == "broker")
    assert broker.env["ENCRYPTION_KEY"] == encryption_key(tmp_path) != old
    assert broker.env["ENCRYPTION_KEYS_PREVIOUS"] == old


def test_python_m_broker_svc_with_a_wrong_key_exits_non_zero_with_one_line(
    tmp_path: pathlib.Path,
) -> None:
    encryption_key(tmp_path)
    mesh = Mesh(tmp_path)
    mesh.ensure_credentials()
    broker = next(component for component in mesh._plan() if component.name == "broker")
    _seed(tmp_path, broker.env["DATABASE_URL"], _venue(), 1)
    env = {key: value for key, value in os.environ.items() if not key.startswith("COPYTRADE")}
    env.update(broker.env)
    env.update(
        {
            "ENCRYPTION_KEY": base64.b64encode(os.urandom(32)).decode(),
            "GRPC_PORT": "0",
            "METRICS_PORT": "0",
            "PYTHONPATH": os.pathsep.join([str(ROOT / "gen"), str(ROOT)]),
        }
    )
    finished = subprocess.run(
        [sys.executable, "-m", "broker_svc"],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert finished.returncode == 2
    lines = finished.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in finished.stderr
    line = json.loads(lines[0])  # one JSON log line, as every line a component writes
    assert line["level"] == "error"
    assert line["message"].startswith("broker_svc: ENCRYPTION_KEY does not open")
    assert env["ENCRYPTION_KEY"] not in finished.stderr + finished.stdout


def test_user_list_shows_token_state_and_never_a_token_and_revoke_cuts_the_user_off(
    tmp_path: pathlib.Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    data = ["--data-dir", str(tmp_path)]
    assert main(["user", "add", "alice", "--expires-in", "30d", *data]) == 0
    alice_token = capsys.readouterr().out.strip().splitlines()[-1].split()[-1]
    assert main(["user", "add", "bob", "--plan", "free", *data]) == 0
    bob_token = capsys.readouterr().out.strip().splitlines()[-1].split()[-1]

    assert main(["user", "list", *data]) == 0
    listing = capsys.readouterr().out
    alice_line = next(line for line in listing.splitlines() if line.startswith("alice"))
    bob_line = next(line for line in listing.splitlines() if line.startswith("bob"))
    assert " pro " in alice_line and "active (1 live, until " in alice_line
    assert " free " in bob_line and "no expiry" in bob_line
    assert alice_token not in listing and bob_token not in listing

    assert main(["user", "revoke", "alice", *data]) == 0
    assert "1 token(s) revoked" in capsys.readouterr().out
    assert main(["user", "revoke", "nobody", *data]) == 1
    assert "no user" in capsys.readouterr().out
    assert main(["user", "add", "carol", "--expires-in", "soon", *data]) == 2

    async def statuses() -> tuple[TokenStatus, TokenStatus]:
        database = await open_store(f"sqlite:///{tmp_path.resolve()}/gateway.db")  # noqa: ASYNC240 - a test's tmp_path
        try:
            store = GatewayStore(database)
            return (await store.token_status(alice_token))[0], (
                await store.token_status(bob_token)
            )[0]
        finally:
            await database.close()

    assert asyncio.run(statuses()) == (TokenStatus.REVOKED, TokenStatus.LIVE)
    assert main(["user", "list", *data]) == 0
    listing = capsys.readouterr().out
    assert next(line for line in listing.splitlines() if line.startswith("alice")).endswith(
        "revoked"
    )
    assert "carol" not in listing
