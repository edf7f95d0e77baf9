"""Replicas of the events service joined through a real nats-server, without Kubernetes:
each is an EventsService with its EventsCluster, in this process, as `caravan run` wires
them (tests/cluster/test_events_replicas.py runs whole Caravan instances)."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from caravan.config import NatsConfig
from caravan.events.service import EventsService, wall_ms
from caravan.events_nats.cluster import EventsCluster
from caravan.events_nats.streams import Names
from tests.cluster.kubeutil import eventually

GRACE_MS = 2_500
LIVENESS_MS = 1_500
IDLE_MS = 5_000


@dataclass
class Replica:
    name: str
    service: EventsService
    cluster: EventsCluster

    async def stop(self) -> None:
        await self.service.stop()
        await self.cluster.stop()

    async def crash(self) -> None:
        """As a killed process: what this replica has not published yet is lost."""
        await self.cluster.crash()
        await self.service.stop()

    async def page(self, counter: int = 0) -> tuple[int, list[dict[str, str]]]:
        page = await self.cluster.read_results(counter, IDLE_MS)
        return page.counter, [m.to_wire() for m in page.messages]


def prefix() -> str:
    return f"t_{uuid.uuid4().hex[:10]}"


async def start_replica(url: str, names: str, name: str, *, leading: bool = False) -> Replica:
    cluster = EventsCluster(
        NatsConfig(url=url, merge_grace_ms=GRACE_MS), Names(names), name, liveness_ms=LIVENESS_MS
    )
    service = EventsService(clock=wall_ms, partials=cluster)
    cluster.attach(service)
    cluster.set_leading(leading)
    cluster.start()
    service.start()
    assert await cluster.wait_ready(10), f"{name} did not reach NATS"
    return Replica(name, service, cluster)


async def post(replicas: Sequence[Replica], documents: list[Any]) -> int:
    """What POST /v1/events does with a cluster: publish once, every replica switches."""
    seq = await replicas[0].cluster.publish_documents(documents)
    for r in replicas:
        assert await r.cluster.wait_applied(seq, 5), f"{r.name} did not switch"
    return seq


async def at_period_start(period_ms: int, margin_ms: int = 30) -> None:
    """Sleeps until just after a period boundary, so a quick burst lands in one period."""
    now = time.time() * 1000
    await asyncio.sleep((period_ms - now % period_ms + margin_ms) / 1000)


def totals(messages: Sequence[dict[str, str]], reduction: str) -> dict[tuple[Any, ...], Any]:
    """Per key, over every period: count and sum added, min and max over all."""
    out: dict[tuple[Any, ...], dict[str, Any]] = {}
    for m in messages:
        value = json.loads(m["value"])
        if value["id"] != reduction:
            continue
        for r in value["results"]:
            v = r["value"]
            t = out.setdefault(tuple(r["key"]), {"count": 0, "sum": None, "min": None, "max": None})
            t["count"] += v["count"]
            if v["sum"] is not None:
                t["sum"] = v["sum"] + (t["sum"] or 0)
                t["min"] = v["min"] if t["min"] is None else min(t["min"], v["min"])
                t["max"] = v["max"] if t["max"] is None else max(t["max"], v["max"])
    return out


def events_counted(messages: Sequence[dict[str, str]]) -> int:
    """How many vote and cheer events a results log counted, over every period."""
    return sum(
        t["count"] for red in ("vote-count", "cheer-sum") for t in totals(messages, red).values()
    )


async def until_counted(
    read_logs: Callable[[], Awaitable[Sequence[Sequence[dict[str, str]]]]], expected: int
) -> None:
    """Until every results log that ``read_logs`` returns counted ``expected`` events."""

    async def counts() -> list[int]:
        return [events_counted(messages) for messages in await read_logs()]

    await eventually(
        counts,
        lambda got: all(c == expected for c in got),
        timeout=20,
        interval=0.1,
        what=f"{expected} events counted on every replica",
    )


def periods(messages: Sequence[dict[str, str]]) -> list[tuple[str, str]]:
    return [(json.loads(m["value"])["id"], m["value"]) for m in messages]
