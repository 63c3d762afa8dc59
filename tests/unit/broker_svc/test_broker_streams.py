"""The watch fan-out (one venue stream, many watchers) and what ports read from stream frames."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from broker_svc.adapters.binance import BinanceExchange
from broker_svc.adapters.coinbase import CoinbaseExchange
from broker_svc.adapters.kraken import KrakenExchange
from broker_svc.domain.model import Fill, Side, StreamEvent, StreamState
from broker_svc.streams import WatchHub

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _fill(trade_id: str, symbol: str = "BTC/USDT") -> Fill:
    return Fill(trade_id, "1", symbol, Side.BUY, Decimal("1"), Decimal("2"), NOW)


class Source:
    """A venue stream the test feeds by hand; counts how often it was opened."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[Any] = asyncio.Queue()
        self.opened = 0
        self.closed = 0

    async def stream(self) -> AsyncIterator[Any]:
        self.opened += 1
        try:
            yield StreamEvent(StreamState.CONNECTED, "subscribed", NOW)
            while True:
                yield await self.queue.get()
        finally:
            self.closed += 1


async def _take(iterator: AsyncIterator[Any], count: int) -> list[Any]:
    return [await asyncio.wait_for(anext(iterator), timeout=2) for _ in range(count)]


async def test_watchers_share_one_stream_and_a_late_one_is_told_it_is_connected() -> None:
    hub, source = WatchHub(), Source()
    first = hub.subscribe("key", source.stream)
    events = aiter(first)
    assert (await _take(events, 1))[0].state is StreamState.CONNECTED
    second = hub.subscribe("key", source.stream)
    late = aiter(second)
    assert (await _take(late, 1))[0].state is StreamState.CONNECTED
    source.queue.put_nowait(_fill("t1"))
    assert [f.trade_id for f in await _take(events, 1)] == ["t1"]
    assert [f.trade_id for f in await _take(late, 1)] == ["t1"]
    assert source.opened == 1
    first.close()
    second.close()
    await asyncio.sleep(0.01)
    assert source.closed == 1 and hub.open_streams == 0


async def test_a_watcher_that_falls_behind_loses_its_backlog_for_a_gap_event() -> None:
    hub, source = WatchHub(queue_size=3), Source()
    slow = hub.subscribe("key", source.stream)
    await asyncio.sleep(0.01)  # CONNECTED is queued
    for index in range(5):
        source.queue.put_nowait(_fill(f"t{index}"))
    await asyncio.sleep(0.01)
    # CONNECTED, t0, t1 filled the queue; t2 replaced them by a gap, t4 replaced [gap, t2, t3].
    received = await _take(aiter(slow), 2)
    assert isinstance(received[0], StreamEvent)
    assert received[0].state is StreamState.GAP_SUSPECTED
    assert received[1].trade_id == "t4"
    slow.close()


async def test_a_watch_of_some_symbols_skips_the_others_but_keeps_every_event() -> None:
    hub, source = WatchHub(), Source()
    watch = hub.subscribe("key", source.stream, ["ETH/USDT"])
    source.queue.put_nowait(_fill("btc"))
    source.queue.put_nowait(_fill("eth", "ETH/USDT"))
    got = await _take(aiter(watch), 2)
    assert got[0].state is StreamState.CONNECTED and got[1].trade_id == "eth"
    watch.close()


async def test_a_failing_stream_ends_every_watch_with_its_error() -> None:
    async def broken() -> AsyncIterator[Any]:
        yield StreamEvent(StreamState.CONNECTED, "subscribed", NOW)
        raise RuntimeError("venue said no")

    hub = WatchHub()
    watch = hub.subscribe("key", broken)
    iterator = aiter(watch)
    await _take(iterator, 1)
    try:
        await asyncio.wait_for(anext(iterator), timeout=2)
    except RuntimeError as e:
        assert str(e) == "venue said no"
    else:
        raise AssertionError("the failure was swallowed")


class _Client:
    """Just enough of a ccxt client for the stream hooks."""

    def __init__(self, needed: tuple[str, ...]) -> None:
        self.has = {name: True for name in needed}

    async def close(self) -> None:
        return None


def _port(cls: type) -> Any:
    return cls(None, client=_Client(cls.capabilities.required_ccxt_has))


async def test_a_jump_in_coinbases_sequence_numbers_is_a_suspected_gap() -> None:
    port = _port(CoinbaseExchange)
    from broker_svc.adapters.ccxt.streams import _Pump

    pump = _Pump("watch_orders")
    pump.task = asyncio.create_task(asyncio.sleep(60))
    queue: asyncio.Queue[Any] = asyncio.Queue()
    pump.listeners.add(queue)
    port._pumps["watch_orders"] = pump
    port._on_stream_message({"channel": "subscriptions", "sequence_num": 0})
    assert port._stream_ready.is_set()
    port._on_stream_message({"channel": "user", "sequence_num": 1, "events": []})
    assert queue.empty()
    port._on_stream_message({"channel": "user", "sequence_num": 4, "events": []})
    kind, event = queue.get_nowait()
    assert kind == "event" and event.state is StreamState.GAP_SUSPECTED
    assert "1 to 4" in event.detail
    port._on_stream_down()
    assert not port._stream_ready.is_set()
    await port.close()


async def test_each_venue_recognises_its_subscription_confirmation() -> None:
    binance, kraken = _port(BinanceExchange), _port(KrakenExchange)
    assert binance._is_stream_ack({"id": "1", "status": 200, "result": {"subscriptionId": 0}})
    assert not binance._is_stream_ack({"id": "2", "status": 200, "result": {}})
    assert kraken._is_stream_ack(
        {"method": "subscribe", "success": True, "result": {"channel": "executions"}}
    )
    assert not kraken._is_stream_ack(
        {"method": "subscribe", "success": False, "error": "EAPI:Invalid token"}
    )
    assert kraken._stream_sequence({"channel": "executions", "sequence": 7}) == 7
    await binance.close()
    await kraken.close()
