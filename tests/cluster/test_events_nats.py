"""Events across replicas on a real nats-server: merged sums, one results log, faults.

Replicas here are EventsService + EventsCluster pairs in this process (no Kubernetes);
test_events_replicas.py runs whole Caravan instances with the Lease."""

from __future__ import annotations

import asyncio
import json
import random
from collections import Counter
from collections.abc import Sequence
from typing import Any

import nats
import pytest

from caravan.events.service import EventsService
from caravan.events_nats import codec
from caravan.events_nats.codec import PeriodKey
from caravan.events_nats.streams import Names
from tests.cluster.eventsharness import (
    Replica,
    at_period_start,
    post,
    prefix,
    start_replica,
    totals,
    until_counted,
)
from tests.cluster.kubeutil import eventually
from tests.natsserver import NatsServer
from tests.samples import Clock, vote_cheer

PERIOD = 400


def events(n: int, seed: int) -> list[dict[str, Any]]:
    rnd = random.Random(seed)
    out: list[dict[str, Any]] = []
    for _ in range(n):
        if rnd.random() < 0.5:
            out.append({"key": ["vote"], "value": f"e{rnd.randint(1, 20)}"})
        else:
            # Floats too: merged sums must equal one replica's sums exactly.
            value = rnd.choice([rnd.randint(0, 50), rnd.random() * 10])
            out.append({"key": ["cheer", f"team-{rnd.randint(1, 30)}"], "value": value})
    return out


def alone(batch: Sequence[dict[str, Any]]) -> list[dict[str, str]]:
    """What one replica without NATS reports for ``batch`` sent within one period."""
    clock = Clock()
    service = EventsService(clock=clock)
    assert not service.replace([vote_cheer(PERIOD)])
    service.results(0)
    assert service.ingest("game", list(batch)).accepted == len(batch)
    clock.now += PERIOD
    service.tick()
    return [m.to_wire() for m in service.results(0).messages]


async def finals_on_stream(url: str, names: Names) -> list[codec.Final]:
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        info = await js.stream_info(names.results_stream)
        out = []
        for seq in range(int(info.state.first_seq), int(info.state.last_seq) + 1):
            msg = await js.get_msg(names.results_stream, seq)
            if msg.subject == names.results:
                out.append(codec.decode_final(msg.data or b""))
        return out
    finally:
        await nc.close()


async def all_counted(replicas: Sequence[Replica], expected: int, start: int = 0) -> None:
    """Until every replica's log holds ``expected`` vote+cheer events in all."""

    async def logs() -> list[list[dict[str, str]]]:
        return [(await r.page(start))[1] for r in replicas]

    await until_counted(logs, expected)


async def test_events_spread_over_replicas_sum_like_one_replica_and_every_log_is_equal(
    nats_server: NatsServer,
) -> None:
    names = prefix()
    replicas = [
        await start_replica(nats_server.url, names, f"r{i}", leading=i == 0) for i in range(3)
    ]
    try:
        await post(replicas, [vote_cheer(PERIOD)])
        for r in replicas:
            await r.page()  # collection on (the same marker point on every replica)
        batch = events(3_000, seed=7)
        await at_period_start(PERIOD)
        for i, r in enumerate(replicas):  # a third each, all within one period
            assert r.service.ingest("game", batch[i::3]).accepted == len(batch[i::3])
        await all_counted(replicas, len(batch))

        pages = [await r.page() for r in replicas]
        assert pages[0] == pages[1] == pages[2]  # same messages, order and counters
        _, messages = pages[0]
        one = alone(batch)
        for reduction in ("vote-count", "cheer-sum"):
            merged, single = totals(messages, reduction), totals(one, reduction)
            assert merged.keys() == single.keys()
            for key, value in merged.items():
                # Integers add exactly; a float sum depends on the order of additions
                # (one replica's own sum is not exact either), so within rounding.
                assert value == {**single[key], "sum": pytest.approx(single[key]["sum"], rel=1e-12)}
        # One message per reduction (one period), averages = merged sum / count.
        assert sorted(json.loads(m["value"])["id"] for m in messages) == [
            "cheer-sum",
            "vote-count",
        ]
        for m in messages:
            for result in json.loads(m["value"])["results"]:
                v = result["value"]
                assert v["average"] == v["sum"] / v["count"]
        # Every replica contributed, and none was counted twice.
        finals = await finals_on_stream(nats_server.url, Names(names))
        assert all(f.replicas == ("r0", "r1", "r2") for f in finals)
        assert len({f.period for f in finals}) == len(finals)
    finally:
        for r in replicas:
            await r.stop()


async def test_a_document_switch_never_mixes_two_programs(nats_server: NatsServer) -> None:
    names = prefix()
    replicas = [
        await start_replica(nats_server.url, names, f"r{i}", leading=i == 0) for i in range(2)
    ]
    try:
        first = await post(replicas, [vote_cheer(60_000)])  # a long period: the switch cuts it
        for r in replicas:
            await r.page()
        for r in replicas:
            r.service.ingest("game", [{"key": ["vote"], "value": "old"}])
        renamed = vote_cheer(PERIOD)
        renamed["event"]["game"]["reductions"][0]["id"] = "vote-count-2"
        second = await post(replicas, [renamed])
        assert second > first
        for r in replicas:
            r.service.ingest("game", [{"key": ["vote"], "value": "new"}])
        await eventually(
            replicas[1].page,
            lambda page: len(page[1]) == 2,
            timeout=20,
            interval=0.1,
            what="the flushed old period and the new one",
        )
        _, messages = await replicas[1].page()
        by_id = {
            json.loads(m["value"])["id"]: totals([m], json.loads(m["value"])["id"])
            for m in messages
        }
        assert by_id == {
            "vote-count": {("old",): {"count": 2, "sum": 2, "min": 1, "max": 1}},
            "vote-count-2": {("new",): {"count": 2, "sum": 2, "min": 1, "max": 1}},
        }
        finals = await finals_on_stream(nats_server.url, Names(names))
        assert [f.epoch for f in finals] == [first, second]
    finally:
        for r in replicas:
            await r.stop()


async def test_crash_nats_restart_and_merger_failover_count_nothing_twice(
    nats_server: NatsServer,
) -> None:
    names = prefix()
    a, b, c = [await start_replica(nats_server.url, names, n, leading=n == "a") for n in "abc"]
    live = [a, b]
    try:
        await post([a, b, c], [vote_cheer(PERIOD)])
        for r in (a, b, c):
            await r.page()
        expected = 0

        # 1. c dies mid-period: its own unpublished events are lost, the rest is merged.
        await at_period_start(PERIOD)
        for r in (a, b, c):
            r.service.ingest("game", events(100, seed=ord(r.name)))
        expected += 200
        await c.crash()
        await all_counted(live, expected)

        # 2. nats-server restarts while a and b hold partials: none is lost.
        await at_period_start(PERIOD)
        for r in live:
            r.service.ingest("game", events(100, seed=10 + ord(r.name)))
        expected += 200
        nats_server.restart()
        await all_counted(live, expected)

        # 3. the merger fails over to b mid-stream (as when a loses the Lease).
        for r in live:
            r.service.ingest("game", events(100, seed=20 + ord(r.name)))
        expected += 200
        a.cluster.set_leading(False)
        b.cluster.set_leading(True)
        for r in live:
            r.service.ingest("game", events(100, seed=30 + ord(r.name)))
        expected += 200
        await all_counted(live, expected)
        await asyncio.sleep(2 * PERIOD / 1000)  # anything that would come twice, would now
        await all_counted(live, expected)

        finals = await finals_on_stream(nats_server.url, Names(names))
        keys: Counter[PeriodKey] = Counter(f.period for f in finals)
        assert all(n == 1 for n in keys.values()), keys
        assert a.cluster.stats.partials_lost == 0 and b.cluster.stats.partials_lost == 0
        assert (await a.page()) == (await b.page())
    finally:
        for r in live:
            await r.stop()
