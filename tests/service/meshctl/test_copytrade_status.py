"""``copytrade status``: each service's replicas and who holds which lease, from its database."""

from __future__ import annotations

import pathlib

from engine_svc.store import EngineStore
from meshctl.__main__ import main
from meshctl.status import status
from meshkit.leases import LeaseKeeper


async def test_status_lists_the_replicas_and_the_holder_of_each_lease(
    tmp_path: pathlib.Path,
) -> None:
    store = await EngineStore.open(f"sqlite:///{tmp_path}/engine.db")

    async def wanted() -> set[str]:
        return {"source-a", "source-b"}

    async def nothing(resource: str, token: int) -> None:
        return None

    keeper = LeaseKeeper(
        store.leases,
        service="engine",
        wanted=wanted,
        on_acquired=nothing,
        on_lost=nothing,
        replica_id="engine-7",
        address="127.0.0.1:50052",
    )
    await keeper.round()
    lines: list[str] = []
    try:
        code = await status(tmp_path, None, lines.append)
    finally:
        await keeper.stop(release=False)
        await store.close()
    text = "\n".join(lines)
    assert "engine: 1 live replica(s)" in text
    assert "engine-7  127.0.0.1:50052" in text and "holds 2" in text
    assert "source-a  engine-7  token 1" in text and "source-b  engine-7  token 1" in text
    # sync and broker never ran in this data dir: said, and the exit code says it too.
    assert f"sync: no database at {tmp_path / 'sync.db'}" in text
    assert code == 1


def test_the_command_runs_from_the_command_line(tmp_path: pathlib.Path, capsys) -> None:
    assert main(["status", "--data-dir", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "engine: no database at" in out
