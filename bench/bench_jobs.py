"""Jobs benchmark against the local control plane (or $KUBECONFIG).

    python bench/bench_jobs.py [--jobs 200] [--groups 3] [--pods 5] [--waiters 1000]

Runs `caravan run` as its own process on a fresh namespace, creates jobs x groups x pods
allocations (kwok runs them), then measures, in the same run:
- GET /v1/jobs latency (p50/p99), beside one LIST of the same pods from kube-apiserver;
- updatecounts -> Deployment spec.replicas changed (watch), p50/p99, beside the floor of
  the two writes it must make (a bare PATCH of a copy of the served Job in a namespace
  nobody serves, then a scale PATCH of a copy of the served Deployment, in sequence from
  this quiet client) and the scale PATCH alone, interleaved, each `--settle` seconds
  after the one before, once every Deployment has rolled out;
- N concurrent long-poll waiters: time from a change to each answer (p50/p99/max);
- the Caravan process's RSS and its full garbage collections (from its /metrics);
- with `--without-operator`, updatecounts and the floor again with no operator running.
Figures go to stdout; docs/performance.md quotes them. Not a test: nothing here asserts.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import pathlib
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import aiohttp
import httpx

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from bench.common import bench_namespace, fake_pod_spec, pct, running_caravan
from caravan.kube.client import DEPLOYMENTS, JOBS, JSON, NAMESPACES, PODS, KubeClient


def ms(values: list[float]) -> str:
    return f"p50 {pct(values, 50) * 1000:.2f} ms, p99 {pct(values, 99) * 1000:.2f} ms"


def slowest(values: list[float], n: int = 3) -> str:
    """The tail a p99 of few samples is made of."""
    return ", ".join(f"{v * 1000:.1f}" for v in sorted(values)[-n:][::-1]) + " ms"


def job(name: str, groups: int, pods: int) -> dict[str, Any]:
    template = {"spec": fake_pod_spec()}
    return {
        "apiVersion": "caravan.dev/v1alpha1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "taskGroups": [
                {"name": f"g{i}", "countInit": pods, "countMax": pods * 4, "template": template}
                for i in range(groups)
            ]
        },
    }


def shaped_like(served: JSON, name: str, labels: dict[str, str]) -> JSON:
    """A copy of a served object (its spec, and status for a Job) under another name, its
    labels and selector swapped for `labels` so that nothing of Caravan's claims it: the
    floor writes objects of the very size and shape Caravan writes."""
    spec = json.loads(json.dumps(served["spec"]))
    if "selector" in spec:
        spec["selector"] = {"matchLabels": labels}
        spec["template"]["metadata"]["labels"] = labels
    body = {
        "apiVersion": served["apiVersion"],
        "kind": served["kind"],
        "metadata": {"name": name, "labels": labels},
        "spec": spec,
    }
    if "status" in served and served["kind"] == "Job":
        body["status"] = served["status"]
    return body


async def scale_side_by_side(
    kube: KubeClient, api: httpx.AsyncClient, ns: str, args: argparse.Namespace, tag: str = ""
) -> dict[str, list[float]]:
    """updatecounts, a direct scale and the floor, interleaved; `tag` names this run's own
    Deployment and namespace (a second run must not wait for the first one's deletion)."""
    direct_name = f"bench-direct{tag}"
    deploy_path = DEPLOYMENTS.collection(ns)
    # The floor writes copies of job-0000 and of its group g0's Deployment as Caravan
    # keeps them (the Job with its status, the Deployment as the operator applies it).
    served_job = await kube.get(JOBS.item(ns, "job-0000"))
    served_deployment = await kube.get(DEPLOYMENTS.item(ns, "job-0000-g0"))
    direct = shaped_like(served_deployment, direct_name, {"bench": f"direct{tag}"})
    direct["spec"]["replicas"] = args.pods
    await kube.create(deploy_path, direct)
    # The floor's first write: a Job no Caravan serves (its own namespace), so the write
    # costs only what the apiserver makes it cost.
    quiet_ns = f"{ns}-quiet{tag}"
    await kube.create(NAMESPACES.collection(None), {"metadata": {"name": quiet_ns}})
    floor_job = shaped_like(served_job, "floor", {"bench": "floor"})
    await kube.create(JOBS.collection(quiet_ns), floor_job)
    await kube.merge_patch(JOBS.item(quiet_ns, "floor", "status"), {"status": floor_job["status"]})
    floor_job["spec"]["taskGroups"][0]["count"] = args.pods
    rv = (await kube.list_items(deploy_path, limit=1))["metadata"]["resourceVersion"]
    job_rv = (await kube.list_items(JOBS.collection(ns), limit=1))["metadata"]["resourceVersion"]
    seen: asyncio.Queue[tuple[float, str, int]] = asyncio.Queue()
    jobs_seen: asyncio.Queue[tuple[float, int]] = asyncio.Queue()

    async def watch_deployments() -> None:
        query = {"resourceVersion": rv}
        async for event in kube.watch(deploy_path, query=query, timeout_seconds=600):
            obj = event["object"]
            if event["type"] in ("ADDED", "MODIFIED"):
                name, replicas = obj["metadata"]["name"], obj["spec"]["replicas"]
                await seen.put((time.perf_counter(), name, replicas))

    async def watch_job() -> None:
        query = {"resourceVersion": job_rv, "fieldSelector": "metadata.name=job-0000"}
        async for event in kube.watch(JOBS.collection(ns), query=query, timeout_seconds=600):
            groups = event["object"]["spec"]["taskGroups"]
            count = next(g.get("count", -1) for g in groups if g["name"] == "g0")
            await jobs_seen.put((time.perf_counter(), count))

    async def until(queue: asyncio.Queue[Any], match: Any) -> float:
        while True:
            item = await asyncio.wait_for(queue.get(), 10)
            if match(item):
                return float(item[0])

    watchers = [asyncio.create_task(watch_deployments()), asyncio.create_task(watch_job())]
    await asyncio.sleep(0.5)
    timing: dict[str, list[float]] = {
        "caravan": [],
        "post": [],
        "job": [],
        "direct": [],
        "floor": [],
    }
    replicas = direct_replicas = args.pods
    scale_path = DEPLOYMENTS.item(ns, direct_name, "scale")
    # The POST goes through aiohttp, the library the floor's writes go through (the kube
    # client's transport): the ratio compares the servers, not two client libraries
    # (httpx takes about 1 ms more per request here).
    post_client = aiohttp.ClientSession(base_url=str(api.base_url))
    for i in range(args.updates):
        delta = 1 if i % 2 == 0 else -1
        replicas += delta
        await asyncio.sleep(args.settle)
        t = time.perf_counter()
        async with post_client.post(
            "/v1/jobs/updatecounts",
            json={"jobID": "job-0000", "taskGroup": "g0", "count": delta},
        ) as r:
            assert r.status == 200, await r.text()
            await r.read()
        timing["post"].append(time.perf_counter() - t)
        job_at = await until(jobs_seen, lambda item, n=replicas: item[1] == n)
        timing["job"].append(job_at - t)
        at = await until(seen, lambda item, n=replicas: item[1:] == ("job-0000-g0", n))
        timing["caravan"].append(at - t)

        direct_replicas += delta
        await asyncio.sleep(args.settle)
        t = time.perf_counter()
        await kube.merge_patch(scale_path, {"spec": {"replicas": direct_replicas}})
        at = await until(seen, lambda item, n=direct_replicas: item[1:] == (direct_name, n))
        timing["direct"].append(at - t)

        direct_replicas += delta
        floor_job["spec"]["taskGroups"][0]["count"] = direct_replicas
        await asyncio.sleep(args.settle)
        t = time.perf_counter()
        await kube.merge_patch(
            JOBS.item(quiet_ns, "floor"), {"spec": {"taskGroups": floor_job["spec"]["taskGroups"]}}
        )
        await kube.merge_patch(scale_path, {"spec": {"replicas": direct_replicas}})
        at = await until(seen, lambda item, n=direct_replicas: item[1:] == (direct_name, n))
        timing["floor"].append(at - t)
    await post_client.close()
    for watcher in watchers:
        watcher.cancel()
    await kube.delete(DEPLOYMENTS.item(ns, direct_name))
    await kube.delete(NAMESPACES.item(None, quiet_ns))
    return timing


@contextlib.contextmanager
def profiled(pid: int, output: str | None) -> Iterator[None]:
    """With `output`: py-spy samples the Caravan process meanwhile (every thread, on CPU
    and waiting for the GIL), written as collapsed stacks (one `stack count` per line)."""
    if output is None:
        yield
        return
    spy = shutil.which("py-spy")
    if spy is None:
        raise SystemExit("--profile needs py-spy on PATH (pip install py-spy)")
    recorder = subprocess.Popen(
        [
            spy,
            "record",
            "--pid",
            str(pid),
            "--format",
            "raw",
            "--output",
            output,
            "--rate",
            "250",
            "--threads",
            "--gil",
            "--nonblocking",
        ]
    )
    try:
        yield
    finally:
        recorder.send_signal(signal.SIGINT)
        recorder.wait(timeout=60)


def garbage_collections(metrics: str, generation: int = 2) -> dict[str, float]:
    """Caravan's collections of one generation (2: full) from its /metrics: count, time,
    longest."""
    names = {
        "caravan_gc_pauses_total": "count",
        "caravan_gc_pause_seconds_total": "seconds",
        "caravan_gc_pause_max_seconds": "max",
    }
    figures = dict.fromkeys(names.values(), 0.0)
    for line in metrics.splitlines():
        name, _, rest = line.partition(f'{{generation="{generation}"}} ')
        if name in names and rest:
            figures[names[name]] = float(rest)
    return figures


def collections_between(before: str, after: str) -> str:
    """Caravan's collections per generation between two reads of its /metrics."""
    parts = []
    for generation in (0, 1, 2):
        start, end = (garbage_collections(m, generation) for m in (before, after))
        count, seconds = end["count"] - start["count"], end["seconds"] - start["seconds"]
        parts.append(f"generation {generation}: {count:.0f}, {seconds * 1000:.1f} ms in all")
    return "; ".join(parts)


def rss_mb(pid: int) -> float:
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def wait_running(api: httpx.AsyncClient, total: int, timeout: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        view = (await api.get("/v1/jobs")).json()
        running = sum(g["summary"]["running"] for j in view for g in j["taskGroups"])
        if running >= total:
            return time.monotonic() - started
        await asyncio.sleep(1)
    raise SystemExit(f"only {running}/{total} allocations running after {timeout}s")


async def wait_rolled_out(kube: KubeClient, ns: str, timeout: float) -> float:
    """Until every Deployment has all its replicas available: pods run some seconds before
    their Deployments say so, and each such change makes the operator write a status."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        items = (await kube.list_items(DEPLOYMENTS.collection(ns))).get("items") or []
        pending = [
            d
            for d in items
            if (d.get("status") or {}).get("availableReplicas", 0) != d["spec"]["replicas"]
        ]
        if not pending:
            return time.monotonic() - started
        await asyncio.sleep(1)
    raise SystemExit(f"{len(pending)} Deployments not rolled out after {timeout}s")


async def main(args: argparse.Namespace) -> None:
    limits = httpx.Limits(max_connections=args.waiters + 50, max_keepalive_connections=50)
    caravan_args = ("--read-your-writes-seconds", "0") if args.no_read_your_writes else ()
    async with (
        bench_namespace("bench-jobs") as (kube, config, ns),
        running_caravan(ns, config, args=caravan_args, timeout=120, limits=limits) as (proc, api),
    ):
        total = args.jobs * args.groups * args.pods
        print(
            f"[bench] creating {args.jobs} jobs x {args.groups} groups x {args.pods} pods"
            f" = {total} allocations in {ns}"
        )
        t0 = time.monotonic()
        sem = asyncio.Semaphore(20)

        async def create(i: int) -> None:
            async with sem:
                await kube.create(JOBS.collection(ns), job(f"job-{i:04d}", args.groups, args.pods))

        await asyncio.gather(*(create(i) for i in range(args.jobs)))
        ready_after = await wait_running(api, total, timeout=900)
        print(
            f"[bench] all {total} allocations running {ready_after:.1f}s after creation"
            f" started ({time.monotonic() - t0:.1f}s total)"
        )
        rolled_out = await wait_rolled_out(kube, ns, timeout=300)
        print(f"[bench] every Deployment rolled out {rolled_out:.1f}s later")

        # GET /v1/jobs beside one LIST of the same pods, interleaved in the same run.
        gets: list[float] = []
        lists: list[float] = []
        size = 0
        for i in range(args.requests):
            t = time.perf_counter()
            r = await api.get("/v1/jobs")
            gets.append(time.perf_counter() - t)
            size = len(r.content)
            if i % (args.requests // 20) == 0:
                t = time.perf_counter()
                await kube.list_items(PODS.collection(ns), labelSelector="caravan.dev/job")
                lists.append(time.perf_counter() - t)
        print(f"[bench] GET /v1/jobs ({size / 1024:.0f} KiB): {ms(gets)} over {len(gets)} requests")
        print(
            f"[bench] LIST {total} pods from kube-apiserver: {ms(lists)} over {len(lists)} requests"
        )
        print(f"[bench] ratio LIST p50 / GET p50: {pct(lists, 50) / pct(gets, 50):.0f}x")

        # updatecounts -> Deployment spec.replicas, beside a direct PATCH of another
        # Deployment's scale subresource (what `kubectl scale` does), interleaved, both
        # timed to the moment a watch sees the new replicas. The Job's own watch event
        # splits Caravan's figure: POST -> Job stored and seen, then Job -> Deployment.
        before = (await api.get("/metrics")).text
        with profiled(proc.pid, args.profile):
            timing = await scale_side_by_side(kube, api, ns, args)
        after = (await api.get("/metrics")).text
        print(
            f"[bench] updatecounts -> Deployment spec.replicas: {ms(timing['caravan'])}"
            f" over {len(timing['caravan'])} updates (the POST alone: {ms(timing['post'])};"
            f" POST -> Job seen by a watch: {ms(timing['job'])})"
        )
        print(f"[bench] direct PATCH of deployments/scale -> spec.replicas: {ms(timing['direct'])}")
        print(f"[bench] floor: PATCH of a Job, then of deployments/scale: {ms(timing['floor'])}")
        print(
            f"[bench] slowest three: updatecounts {slowest(timing['caravan'])};"
            f" floor {slowest(timing['floor'])}"
        )
        for p in (50, 99):
            ratio = pct(timing["caravan"], p) / pct(timing["floor"], p)
            print(f"[bench] ratio updatecounts / floor at p{p}: {ratio:.2f}x")
        print(f"[bench] caravan collections meanwhile: {collections_between(before, after)}")
        latencies = timing["caravan"]

        # Concurrent long-poll waiters woken by one change. First let the earlier scaling
        # settle (pods still starting or going would wake the waiters before our change).
        index = int((await api.get("/v1/jobs")).headers["waitIndex"])
        while True:
            quiet = await api.get(
                "/v1/jobs", headers={"waitIndex": str(index)}, params={"wait": "3s"}
            )
            if int(quiet.headers["waitIndex"]) == index:
                break
            index = int(quiet.headers["waitIndex"])
        answered: list[float] = []

        host, port = str(api.base_url.host), int(api.base_url.port or 80)

        async def waiter() -> None:
            # A bare socket client: httpx parsing 1,000 x 88 KiB bodies on these same 2 cores
            # would measure the client more than the server.
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(
                f"GET /v1/jobs?wait=60s HTTP/1.1\r\nHost: {host}\r\nwaitIndex: {index}\r\n"
                "Connection: close\r\n\r\n".encode()
            )
            await writer.drain()
            first = await reader.read(1)  # the answer starts: the server woke this waiter
            answered.append(time.perf_counter())
            while first and await reader.read(65536):
                pass
            writer.close()

        tasks = [asyncio.create_task(waiter()) for _ in range(args.waiters)]
        await asyncio.sleep(3)  # let every request reach the server and block
        early = len(answered)
        changed = time.perf_counter()
        await api.post(
            "/v1/jobs/updatecounts", json={"jobID": "job-0001", "taskGroup": "g0", "count": 1}
        )
        await asyncio.gather(*tasks)
        delays = [a - changed for a in answered[early:]]
        print(
            f"[bench] {args.waiters} long-poll waiters answered after a change: {ms(delays)},"
            f" max {max(delays) * 1000:.0f} ms (client and server share 2 cores;"
            f" {early} answered before the change)"
        )
        print(f"[bench] caravan RSS with {total} pods watched: {rss_mb(proc.pid):.0f} MB")
        metrics = (await api.get("/metrics")).text
        gc_figures = garbage_collections(metrics)
        print(
            f"[bench] caravan full garbage collections since start: {gc_figures['count']:.0f},"
            f" {gc_figures['seconds'] * 1000:.0f} ms in all,"
            f" the longest {gc_figures['max'] * 1000:.0f} ms"
        )
        young = [garbage_collections(metrics, g) for g in (0, 1)]
        print(
            "[bench] caravan young collections since start (generations 0 and 1): "
            + "; ".join(f"{y['count']:.0f}, the longest {y['max'] * 1000:.1f} ms" for y in young)
        )
        print(
            json.dumps(
                {
                    "allocations": total,
                    "get_p50_ms": pct(gets, 50) * 1000,
                    "get_p99_ms": pct(gets, 99) * 1000,
                    "list_p50_ms": pct(lists, 50) * 1000,
                    "update_p50_ms": pct(latencies, 50) * 1000,
                    "update_p99_ms": pct(latencies, 99) * 1000,
                    "direct_p50_ms": pct(timing["direct"], 50) * 1000,
                    "direct_p99_ms": pct(timing["direct"], 99) * 1000,
                    "floor_p50_ms": pct(timing["floor"], 50) * 1000,
                    "floor_p99_ms": pct(timing["floor"], 99) * 1000,
                    "post_p99_ms": pct(timing["post"], 99) * 1000,
                    "waiters_p99_ms": pct(delays, 99) * 1000,
                    "rss_mb": rss_mb(proc.pid),
                }
            )
        )
        if args.without_operator:
            await without_operator(kube, config, ns, proc, args)


async def without_operator(
    kube: KubeClient, config: str, ns: str, proc: subprocess.Popen[bytes], args: argparse.Namespace
) -> None:
    """updatecounts again with no operator running anywhere: an API-only Caravan of the
    same namespace, the full one stopped. Its write-through is then the only writer of the
    Deployments, so the difference to the first run is what the operator's own reaction
    to each count change (its apply and status write) costs the apiserver meanwhile."""
    async with running_caravan(ns, config, args=("--no-operator",), timeout=120) as (_, api):
        await wait_running(api, args.jobs * args.groups * args.pods, timeout=120)
        proc.terminate()
        proc.wait(timeout=30)
        timing = await scale_side_by_side(kube, api, ns, args, tag="-2")
    print(f"[bench] without an operator: updatecounts -> replicas {ms(timing['caravan'])}")
    print(f"[bench] without an operator: floor {ms(timing['floor'])}")
    for p in (50, 99):
        ratio = pct(timing["caravan"], p) / pct(timing["floor"], p)
        print(f"[bench] without an operator: ratio updatecounts / floor at p{p}: {ratio:.2f}x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--groups", type=int, default=3)
    parser.add_argument("--pods", type=int, default=5)
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--updates", type=int, default=40)
    parser.add_argument("--waiters", type=int, default=1000)
    parser.add_argument(
        "--settle",
        type=float,
        default=0.5,
        help="seconds before each timed scale, so that the previous one's pods have come"
        " and gone and each of the three is timed on a settled cluster (0: back to back)",
    )
    parser.add_argument(
        "--no-read-your-writes",
        action="store_true",
        help="writes answer without waiting for the store (the figure before that rule)",
    )
    parser.add_argument(
        "--without-operator",
        action="store_true",
        help="then updatecounts once more on an API-only Caravan, with no operator running",
    )
    parser.add_argument(
        "--profile",
        metavar="FILE",
        help="py-spy samples Caravan during the updatecounts phase into FILE (collapsed stacks)",
    )
    asyncio.run(main(parser.parse_args()))
