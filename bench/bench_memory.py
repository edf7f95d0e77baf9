"""Caravan's memory with many allocations: `python bench/bench_memory.py [--pods 10000]`.

Creates N pods labelled as allocations of one Caravan job (with a scheduler name no
scheduler serves, so they stay Pending and cost the cluster nothing), starts `caravan
run`, waits for its caches to sync and prints its RSS, and the GET /v1/jobs latency with
that many allocations in the view. `--failing F`: that share of the pods gets a status
with a failure Kubernetes would give (a crash loop with its last termination, or not
schedulable), so the store holds their failure facts too. Not a test: nothing here asserts.
"""

from __future__ import annotations

import argparse
import asyncio
import pathlib
import sys
import time
from typing import Any

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_jobs import rss_mb  # noqa: E402
from bench.common import (  # noqa: E402
    bench_namespace,
    create_unplaced_pods,
    fake_pod_spec,
    pct,
    running_caravan,
)
from caravan.kube.client import JOBS, PODS  # noqa: E402


async def main(args: argparse.Namespace) -> None:
    async with bench_namespace("bench-memory") as (kube, config, ns):
        template = {"spec": fake_pod_spec()}
        await kube.create(
            JOBS.collection(ns),
            {
                "apiVersion": "caravan.dev/v1alpha1",
                "kind": "Job",
                "metadata": {"name": "mem"},
                # count 0: the operator keeps the Deployment at 0 and leaves these pods alone
                "spec": {
                    "taskGroups": [
                        {"name": "g", "countInit": 0, "countMax": 1, "template": template}
                    ]
                },
            },
        )
        t0 = time.monotonic()
        labels = {"caravan.dev/job": "mem", "caravan.dev/task-group": "g", "bench": "memory"}
        names = [f"alloc-{i:05d}" for i in range(args.pods)]
        await create_unplaced_pods(kube, ns, names, labels)
        print(f"[bench] {args.pods} allocation pods created in {time.monotonic() - t0:.0f}s")
        failing = int(args.pods * args.failing)
        sem = asyncio.Semaphore(50)

        async def fail(i: int) -> None:
            async with sem:
                await kube.merge_patch(
                    PODS.item(ns, f"alloc-{i:05d}", "status"), {"status": failed_status(i)}
                )

        await asyncio.gather(*(fail(i) for i in range(failing)))
        print(f"[bench] {failing} of them given a failure status")
        async with running_caravan(ns, config, timeout=60) as (proc, api):
            while True:
                view = (await api.get("/v1/jobs/mem")).json()
                if view["taskGroups"][0]["summary"]["queued"] >= args.pods:
                    break
                await asyncio.sleep(1)
            await asyncio.sleep(5)
            gets = []
            for _ in range(200):
                t = time.perf_counter()
                await api.get("/v1/jobs")
                gets.append(time.perf_counter() - t)
            problems = sum(len(g["problems"]) for g in view["taskGroups"])
            print(
                f"[bench] caravan RSS with {args.pods} pods in its store"
                f" ({failing} failing, {problems} problem kinds in the view):"
                f" {rss_mb(proc.pid):.0f} MB;"
                f" GET /v1/jobs p50 {pct(gets, 50) * 1000:.2f} ms,"
                f" p99 {pct(gets, 99) * 1000:.2f} ms"
            )
        await kube.delete(PODS.collection(ns), labelSelector="bench=memory")


def failed_status(i: int) -> dict[str, Any]:
    """Half crash loops (exit code, last termination), half unschedulable."""
    if i % 2:
        return {
            "conditions": [
                {
                    "type": "PodScheduled",
                    "status": "False",
                    "reason": "Unschedulable",
                    "message": "0/4 nodes are available: 1 Insufficient cpu, 3 node(s) had"
                    " untolerated taint {kwok.x-k8s.io/node: fake}.",
                }
            ]
        }
    return {
        "containerStatuses": [
            {
                "name": "main",
                "image": "bench/fake:1",
                "imageID": "",
                "ready": False,
                "restartCount": 7 + i % 5,
                "started": False,
                "state": {
                    "waiting": {
                        "reason": "CrashLoopBackOff",
                        "message": f"back-off 5m0s restarting failed container=main pod=alloc-{i}",
                    }
                },
                "lastState": {
                    "terminated": {
                        "reason": "Error",
                        "exitCode": 3,
                        "startedAt": "2026-01-01T00:00:00Z",
                        "finishedAt": "2026-01-01T00:00:01Z",
                    }
                },
            }
        ]
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pods", type=int, default=10_000)
    parser.add_argument("--failing", type=float, default=0.2, help="share of failing pods")
    asyncio.run(main(parser.parse_args()))
