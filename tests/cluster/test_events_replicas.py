"""Whole Caravan replicas (API + Lease + events cluster) on a real kube-apiserver and a
real nats-server: documents posted to one reach all, events sent to any are merged once,
every replica's results log is the same, and faults count nothing twice."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Sequence
from typing import Any

import httpx

from caravan.config import NatsConfig
from caravan.runner import Caravan
from tests.cluster.conftest import running_caravan
from tests.cluster.eventsharness import at_period_start, totals, until_counted
from tests.cluster.kubeutil import eventually
from tests.cluster.test_leader_election import holder
from tests.natsserver import NatsServer
from tests.samples import vote_cheer

PERIOD = 400


@contextlib.asynccontextmanager
async def replicas(
    n: int, namespace: str, kubeconfig: str, nats_url: str
) -> AsyncIterator[tuple[contextlib.AsyncExitStack, list[Caravan]]]:
    async with contextlib.AsyncExitStack() as stack:
        out = []
        for i in range(n):
            out.append(
                await stack.enter_async_context(
                    running_caravan(
                        identity=f"r{i}",
                        namespace=namespace,
                        kubeconfig=kubeconfig,
                        leader_election=True,
                        lease_seconds=2.0,
                        nats=NatsConfig(url=nats_url, merge_grace_ms=1_500),
                    )
                )
            )
        yield stack, out


def votes(*options: str) -> dict[str, Any]:
    return {"channel": "game", "events": [{"key": ["vote"], "value": o} for o in options]}


def cheers(*pairs: tuple[str, int]) -> dict[str, Any]:
    return {"channel": "game", "events": [{"key": ["cheer", t], "value": n} for t, n in pairs]}


async def page(url: str, counter: int = 0) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        response = await client.get(f"/v1/events/results/{counter}")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


async def send(url: str, body: dict[str, Any]) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        response = await client.post("/v1/events/send", json=body)
        assert response.status_code == 200, response.text
        assert response.json()["accepted"] == len(body["events"])


async def post_documents(url: str, documents: list[Any]) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        response = await client.post("/v1/events", json={"mapreduce": documents})
        assert response.status_code == 200, response.text


async def counted(instances: Sequence[Caravan], expected: int) -> None:
    async def logs() -> list[list[dict[str, str]]]:
        return [(await page(c.url))["messages"] for c in instances]

    await until_counted(logs, expected)


async def test_two_replicas_merge_what_each_received_and_serve_one_log(
    namespace: str, kubeconfig: str, nats_server: NatsServer
) -> None:
    async with replicas(2, namespace, kubeconfig, nats_server.url) as (_, (a, b)):
        await post_documents(a.url, [vote_cheer(PERIOD)])
        # Posted to a, running on b too (it answers GET from its own view).
        async with httpx.AsyncClient(base_url=b.url) as client:
            assert (await client.get("/v1/events")).json()["mapreduce"] == [vote_cheer(PERIOD)]
        for c in (a, b):
            assert (await page(c.url))["counter"] == 0  # collection starts
        await at_period_start(PERIOD)
        await send(a.url, votes("e4", "e4", "e5"))
        await send(b.url, votes("e4", "e6"))
        await send(a.url, cheers(("red", 3), ("blue", 10)))
        await send(b.url, cheers(("red", 7)))
        await counted((a, b), 8)

        first, second = await page(a.url), await page(b.url)
        assert first == second  # same messages, same order, same counter
        assert totals(first["messages"], "vote-count") == {
            ("e4",): {"count": 3, "sum": 3, "min": 1, "max": 1},
            ("e5",): {"count": 1, "sum": 1, "min": 1, "max": 1},
            ("e6",): {"count": 1, "sum": 1, "min": 1, "max": 1},
        }
        assert totals(first["messages"], "cheer-sum") == {
            ("red",): {"count": 2, "sum": 10, "min": 3, "max": 7},
            ("blue",): {"count": 1, "sum": 10, "min": 10, "max": 10},
        }
        red = next(
            r["value"]
            for m in first["messages"]
            for r in json.loads(m["value"])["results"]
            if r["key"] == ["red"]
        )
        assert red["average"] == 5.0
        # A counter from one replica means the same on the other.
        assert (await page(b.url, first["counter"]))["messages"] == []

        async with httpx.AsyncClient(base_url=a.url) as client:
            metrics = (await client.get("/metrics")).text
        assert 'caravan_events_cluster{what="partials_published"}' in metrics
        assert "caravan_events_merge_lag_ms" in metrics


async def test_three_replicas_survive_a_crash_a_nats_restart_and_a_merger_failover(
    namespace: str, kubeconfig: str, nats_server: NatsServer, kube: Any
) -> None:
    async with replicas(3, namespace, kubeconfig, nats_server.url) as (stack, instances):
        leader = await eventually(lambda: holder(kube, namespace), bool, what="a Lease holder")
        by_name = {c.config.identity: c for c in instances}
        others = [c for c in instances if c.config.identity != leader]
        await post_documents(by_name[leader].url, [vote_cheer(PERIOD)])
        for c in instances:
            await page(c.url)
        expected = 0

        # A replica that is not the merger dies mid-period, holding its own events.
        victim, survivor = others
        await at_period_start(PERIOD)
        for c in instances:
            await send(c.url, votes("a", "b"))
        expected += 4  # the victim's 2 are lost with it
        assert victim.state is not None
        await victim.state.events_cluster.crash()  # type: ignore[union-attr]
        await victim.stop()
        live = [by_name[leader], survivor]
        await counted(live, expected)

        # nats-server restarts while partials are open.
        for c in live:
            await send(c.url, votes("c"))
        expected += 2
        nats_server.restart()
        await counted(live, expected)

        # The merger stops (its Lease released): the survivor takes over the merge.
        for c in live:
            await send(c.url, votes("d"))
        expected += 2
        await by_name[leader].stop()
        await eventually(
            lambda: holder(kube, namespace),
            lambda h: h == survivor.config.identity,
            what="the survivor to take the Lease",
        )
        await send(survivor.url, votes("e"))
        expected += 1
        await counted([survivor], expected)
        await asyncio.sleep(1.0)  # anything that would be merged twice would be by now
        await counted([survivor], expected)
        del stack  # the remaining replicas stop with the stack


async def test_one_replica_without_nats_runs_the_engine_alone(caravan: Caravan) -> None:
    """The embedded default: no cluster, no NATS; test_events_api.py runs it end to end."""
    assert caravan.config.nats is None and caravan.state is not None
    assert caravan.state.events_cluster is None
    await post_documents(caravan.url, [vote_cheer(PERIOD)])
    await page(caravan.url)
    await send(caravan.url, votes("x", "x"))
    await counted([caravan], 2)
