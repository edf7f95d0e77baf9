"""Read your writes, per area: `python bench/bench_consistency.py [--pairs 1000]`.

Runs `caravan run` on a fresh namespace and, for every area that writes, alternates a
write and an immediate read of what it changed, counting reads that do not show the
write (stale). The API's read-your-writes rule (docs/api.md) says there are none;
`--no-read-your-writes` shows what happens without the wait. Not a test: nothing here asserts.
"""

from __future__ import annotations

import argparse
import asyncio
import pathlib
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import bench_namespace, fake_pod_spec, pct, running_caravan  # noqa: E402
from caravan.kube.client import JOBS, KubeClient  # noqa: E402

Pair = Callable[[httpx.AsyncClient, int], Awaitable[bool]]  # (api, i) -> read was fresh


def web_job() -> dict[str, Any]:
    group = {"name": "g", "countInit": 1, "countMax": 3, "template": {"spec": fake_pod_spec()}}
    return {
        "apiVersion": "caravan.dev/v1alpha1",
        "kind": "Job",
        "metadata": {"name": "web"},
        "spec": {"taskGroups": [group]},
    }


async def jobs_counts(api: httpx.AsyncClient, i: int) -> bool:
    body = {"jobID": "web", "taskGroup": "g", "count": 1 if i % 2 == 0 else -1}
    written = (await api.post("/v1/jobs/updatecounts", json=body)).json()
    read = (await api.get("/v1/jobs")).json()
    return bool(read[0]["taskGroups"][0]["count"] == written["taskGroups"][0]["count"])


async def jobs_start_stop(api: httpx.AsyncClient, i: int) -> bool:
    action = "stop" if i % 2 == 0 else "start"
    await api.post(f"/v1/jobs/{action}/web")
    status = (await api.get("/v1/jobs/web")).json()["status"]
    return bool((status == "dead") == (action == "stop"))


async def log_definitions(api: httpx.AsyncClient, i: int) -> bool:
    entry = {"id": "l", "group": "g", "job": "web", "task": "main", "fileName": f"f{i}"}
    await api.post("/v1/log/logs", json=[{**entry, "logLevel": True}])
    return bool((await api.get("/v1/log/logs")).json()[0]["fileName"] == f"f{i}")


LEVELS = ("debug", "info", "warning", "error")


async def logger_defaults(api: httpx.AsyncClient, i: int) -> bool:
    level = LEVELS[i % len(LEVELS)]
    await api.post("/v1/log/defaults/l", json={"root": level})
    return bool((await api.get("/v1/log/defaults")).json()["l"]["root"] == level)


def logger_overrides() -> Pair:
    allocs: list[str] = []

    async def pair(api: httpx.AsyncClient, i: int) -> bool:
        if not allocs:  # a running allocation, found once the start/stop pairs are done
            allocs.append(await first_alloc(api))
        alloc = allocs[0]
        level = LEVELS[i % len(LEVELS)]
        await api.post(f"/v1/log/allocs/{alloc}/l", json={"root": level})
        return bool((await api.get(f"/v1/log/allocs/{alloc}")).json()["l"]["root"] == level)

    return pair


async def secrets(api: httpx.AsyncClient, i: int) -> bool:
    if i % 2 == 0:
        await api.post("/v1/secrets/secret/s", json={"k": str(i)})
    else:
        await api.delete("/v1/secrets/secret/s")
    listed = "s" in (await api.get("/v1/secrets/list")).json()["keys"]
    return listed == (i % 2 == 0)


async def settings(api: httpx.AsyncClient, i: int) -> bool:
    name = f"bench-{i}"
    await api.post("/v1/settings", json={"info": {"name": name}})
    return bool((await api.get("/v1/settings")).json()["info"]["name"] == name)


def events_document(period: int) -> dict[str, Any]:
    where = {"key": ["vote", "<v>"]}
    return {
        "version": "1.7.0",
        "event": {
            "game": {
                "maps": [
                    {"id": "m", "source": "userinput", "where": where, "key": ["<v>"], "value": 1}
                ],
                "reductions": [
                    {"id": "r", "where": {"key": ["<v>"]}, "key": ["<v>"]}
                    | {"value": ["$count"], "period": period}
                ],
            }
        },
    }


async def events(api: httpx.AsyncClient, i: int) -> bool:
    document = events_document(1000 + i % 2)
    await api.post("/v1/events", json={"mapreduce": [document]})
    return bool((await api.get("/v1/events")).json()["mapreduce"] == [document])


async def first_alloc(api: httpx.AsyncClient) -> str:
    while True:
        meta = (await api.get("/v1/log/meta/l")).json()
        running = [m for m in meta if m["status"] == "running"] if isinstance(meta, list) else []
        if running:
            return str(running[0]["allocID"])
        await asyncio.sleep(0.2)


async def main(args: argparse.Namespace) -> None:
    caravan_args = ("--read-your-writes-seconds", "0") if args.no_read_your_writes else ()
    async with bench_namespace("bench-consistency") as (kube, config, ns):
        await kube.create(JOBS.collection(ns), web_job())
        async with running_caravan(ns, config, args=caravan_args, timeout=30) as (_, api):
            await log_definitions(api, 0)
            areas: dict[str, Pair] = {
                "jobs updatecounts": jobs_counts,
                "jobs start/stop": jobs_start_stop,
                "log definitions": log_definitions,
                "logger defaults": logger_defaults,
                "logger overrides": logger_overrides(),
                "secrets": secrets,
                "settings": settings,
                "events": events,
            }
            print(f"[bench] {args.pairs} write/read pairs per area, namespace {ns}")
            for name, pair in areas.items():
                stale = 0
                durations: list[float] = []
                for i in range(args.pairs):
                    started = time.perf_counter()
                    stale += not await pair(api, i)
                    durations.append(time.perf_counter() - started)
                print(
                    f"[bench] {name}: {stale} stale reads in {args.pairs} pairs"
                    f" (pair p50 {pct(durations, 50) * 1000:.1f} ms,"
                    f" p99 {pct(durations, 99) * 1000:.1f} ms)"
                )
        await cleanup(kube, ns)


async def cleanup(kube: KubeClient, ns: str) -> None:
    await kube.delete(JOBS.item(ns, "web"))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=1000)
    parser.add_argument("--no-read-your-writes", action="store_true")
    asyncio.run(main(parser.parse_args()))
