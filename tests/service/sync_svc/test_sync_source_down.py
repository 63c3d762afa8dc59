"""A source that cannot be read (no fill stream, polls failing) says since when, once per outage.

``Source.down_since`` is what the engine turns into a ``leader_stream_down`` audit entry for the
configurations copying the source (tests/service/engine_svc/test_engine_leader_stream.py).
"""

from __future__ import annotations

import pytest
from sync_helpers import as_user

from copytrade.sync.v1 import sync_service_pb2 as pb
from copytrade.sync.v1 import sync_service_pb2_grpc as pb_grpc
from meshkit.testing import eventually
from sync_svc.server import SyncService
from tests.fakes.broker import FakeBrokerPort

ALICE = as_user("alice")
SQLITE_ONLY = pytest.mark.parametrize("database", ["sqlite"], indirect=True)


async def _source(stub: pb_grpc.SyncServiceStub, exchange_id: str) -> pb.Source:
    return (await stub.GetSource(pb.GetSourceRequest(source_id=exchange_id))).source


@SQLITE_ONLY
async def test_down_since_is_set_once_when_stream_and_polls_fail_and_cleared_on_recovery(
    stub: pb_grpc.SyncServiceStub,
    service: SyncService,
    broker: FakeBrokerPort,
) -> None:
    exchange_id = broker.add_account("alice")
    settings = pb.SyncSettings(sync_interval=3600, enable_polling=False, max_retries=1)
    await stub.WatchExchangeSource(
        pb.WatchExchangeSourceRequest(exchange_id=exchange_id, sync_settings=settings),
        metadata=ALICE,
    )

    async def streaming() -> bool:
        reader = service.exchange_sync.source(exchange_id)
        stored = await service.store.get_source(exchange_id)
        return bool(reader and reader.connected and stored and stored.last_sync_at)

    await eventually(streaming, timeout=5)
    assert not (await _source(stub, exchange_id)).HasField("down_since")

    # The stream drops but polling reads the venue: not down.
    broker.venue_disconnect(exchange_id)
    calls = len(broker.list_calls)

    async def polled() -> bool:
        reader = service.exchange_sync.source(exchange_id)
        return len(broker.list_calls) > calls and reader is not None and reader.backfill_idle

    await eventually(polled, timeout=5)
    source = await _source(stub, exchange_id)
    assert source.mode == pb.SYNC_MODE_POLLING and not source.HasField("down_since")

    # Polls fail too: down since the first failed poll, and it stays that instant.
    broker.fail_list_fills = 1_000_000
    service.exchange_sync.wake(exchange_id)

    async def down() -> pb.Source | None:
        found = await _source(stub, exchange_id)
        return found if found.HasField("down_since") else None

    since = (await eventually(down, timeout=5)).down_since.ToDatetime()
    for _ in range(2):
        calls = len(broker.list_calls)
        service.exchange_sync.wake(exchange_id)
        await eventually(polled, timeout=5)
        assert (await _source(stub, exchange_id)).down_since.ToDatetime() == since

    # The stream alone coming back ends the outage.
    broker.venue_reconnect(exchange_id)

    async def up() -> bool:
        return not (await _source(stub, exchange_id)).HasField("down_since")

    await eventually(up, timeout=5)

    # Down again (stream and polls), then a poll that works ends it.
    broker.venue_disconnect(exchange_id)
    again = await eventually(down, timeout=5)
    assert again.down_since.ToDatetime() > since
    broker.fail_list_fills = 0
    service.exchange_sync.wake(exchange_id)
    await eventually(up, timeout=5)
