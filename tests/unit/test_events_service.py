"""The service the routes call: replace/restore, ingest/send, results, subscribers,
the ticker task. The clock is injected; nothing sleeps."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from caravan.events import EventsService
from tests.samples import Clock, votes_only

pytestmark = pytest.mark.unit


def doc(reduction: str = "count") -> dict[str, Any]:
    """The votes-only sample, its reduction named `reduction`."""
    return votes_only(reduction)


def votes(*options: str) -> list[dict[str, Any]]:
    return [{"key": ["vote"], "value": o} for o in options]


def make(**kw: Any) -> tuple[EventsService, Clock]:
    clock = Clock()
    svc = EventsService(clock=clock, **kw)
    assert svc.replace([doc()]) == []
    return svc, clock


def test_replace_invalid_changes_nothing() -> None:
    svc, _ = make()
    bad = doc()
    bad["event"]["game"]["maps"][0]["where"]["$gt"] = []
    errors = svc.replace([bad, {"version": 3}])
    paths = {e.path for e in errors}
    assert "mapreduce[0].event.game.maps[0].where.$gt" in paths
    assert "mapreduce[1].version" in paths
    assert svc.documents == [doc()]
    assert svc.errors == ""
    assert svc.validate([bad]) and svc.validate([doc()]) == []


def test_documents_are_copies() -> None:
    svc, _ = make()
    svc.documents[0]["version"] = "9"
    assert svc.documents[0]["version"] == "1.7.0"


def test_restore_keeps_invalid_documents_with_errors_and_runs_nothing() -> None:
    svc, _ = make()
    bad = doc()
    bad["event"]["game"]["reductions"][0]["period"] = -1
    errors = svc.restore([bad])
    assert errors
    assert svc.documents == [bad]
    assert "reductions[0].period" in svc.errors
    assert svc.ingest("game", votes("a")).known_channel is False
    assert svc.replace([doc()]) == [] and svc.errors == ""


def test_ingest_tick_and_results_log() -> None:
    svc, clock = make()
    assert svc.results(0).to_wire() == {"counter": 0, "messages": []}  # starts collection
    res = svc.ingest("game", votes("a", "b", "a"))
    assert res.accepted == 3
    clock.now = 100
    assert len(svc.tick()) == 1
    page = svc.results(0).to_wire()
    assert page["counter"] == 1
    body = json.loads(page["messages"][0]["value"])
    assert body["channel"] == "game" and body["id"] == "count"
    assert {tuple(r["key"]): r["value"]["count"] for r in body["results"]} == {("a",): 2, ("b",): 1}
    stats = svc.stats()
    assert (stats.accepted, stats.messages, stats.results_collecting) == (3, 1, True)


def test_results_are_not_logged_without_a_reader() -> None:
    svc, clock = make(results_idle_timeout_ms=1_000)
    svc.ingest("game", votes("a"))
    clock.now = 100
    svc.tick()
    assert svc.results(0).counter == 0
    clock.now = 5_000  # idle: dropped
    svc.ingest("game", votes("a"))
    clock.now = 5_100
    svc.tick()
    assert svc.results(0).counter == 0


def test_replace_flushes_the_old_windows_then_starts_fresh() -> None:
    svc, clock = make()
    svc.results(0)
    svc.ingest("game", votes("a"))
    clock.now = 40
    assert svc.replace([doc("new")]) == []
    page = svc.results(0)
    assert page.counter == 1  # the old partial period, emitted at replacement
    assert page.messages[0].id == "count"
    assert (page.messages[0].period_start_ms, page.messages[0].period_end_ms) == (0, 40)
    svc.ingest("game", votes("b"))
    clock.now = 100
    (msg,) = svc.tick()
    assert msg.id == "new" and json.loads(msg.value)["results"][0]["key"] == ["b"]
    assert svc.stats().replacements == 2


async def test_send_chunks_large_batches_and_merges_results() -> None:
    svc, _ = make(chunk_size=3)
    events: list[Any] = [*votes("a", "b"), 7, *votes("c", "d", "e"), {"key": ["x"]}]
    res = await svc.send("game", events)
    assert (res.accepted, res.unmatched, res.rejected) == (5, 0, 2)
    assert [r.index for r in res.rejections] == [2, 6]
    small = await svc.send("game", votes("a"))
    assert small.accepted == 1


async def test_subscribers_receive_every_message() -> None:
    svc, clock = make()
    with svc.subscribe() as sub:
        svc.ingest("game", votes("a"))
        clock.now = 100
        svc.tick()
        delivery = await sub.get()
        assert delivery.dropped == 0
        assert delivery.message.id == "count"
        assert sub.get_nowait() is None
    assert sub.closed
    assert svc.stats().subscribers == 0


async def test_slow_subscriber_drops_oldest_and_is_told() -> None:
    svc, clock = make()
    sub = svc.subscribe(maxsize=2)
    for i in range(5):
        svc.ingest("game", votes(f"v{i}"))
        clock.now += 100
        svc.tick()
    first = await sub.get()
    assert first.dropped == 3
    assert json.loads(first.message.value)["results"][0]["key"] == ["v3"]
    second = await sub.get()
    assert second.dropped == 0
    assert sub.total_dropped == 3
    sub.close()
    with pytest.raises(StopAsyncIteration):
        await sub.get()


async def test_subscription_iterates_until_closed() -> None:
    svc, clock = make()
    sub = svc.subscribe()
    received: list[str] = []

    async def consume() -> None:
        async for d in sub:
            received.append(d.message.id)

    task = asyncio.create_task(consume())
    await asyncio.sleep(0)  # the consumer now waits for a message
    svc.ingest("game", votes("a"))
    clock.now = 100
    svc.tick()
    await asyncio.sleep(0)
    sub.close()
    await asyncio.wait_for(task, 1)
    assert received == ["count"]


async def test_ticker_task_emits_due_periods_and_stop_flushes() -> None:
    svc, clock = make()
    sub = svc.subscribe()
    svc.ingest("game", votes("a"))
    clock.now = 150  # the first period is due
    task = svc.start()
    assert svc.start() is task  # idempotent
    delivery = await asyncio.wait_for(sub.get(), 1)
    assert delivery.message.period_end_ms == 100
    svc.ingest("game", votes("b"))  # in the open period [100, 200)
    await svc.stop()
    assert task.done()
    flushed = sub.get_nowait()
    assert flushed is not None and flushed.message.period_end_ms == 150
    assert sub.closed


def test_key_bound_is_configurable() -> None:
    svc, clock = make(max_keys_per_period=2)
    res = svc.ingest("game", votes("a", "b", "c"))
    assert res.dropped_keys == 1
    assert svc.stats().dropped_keys == 1
    clock.now = 100
    (msg,) = svc.tick()
    assert "1 event(s) with new keys were dropped" in msg.error
