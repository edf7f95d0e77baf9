"""Operator from cold: `python bench/bench_reconcile.py [--jobs 1000]`.

Creates N Jobs (one task group each, countInit 0 so the figure is the operator's, not
kwok's) while no Caravan runs, then starts `caravan run` and measures how long until every
Job has its Deployment and a status for its current generation. Prints the figure and
the process's RSS. Not a test: nothing here asserts.
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
from bench.common import bench_namespace, fake_pod_spec, running_caravan  # noqa: E402
from caravan.kube.client import DEPLOYMENTS, JOBS  # noqa: E402


def job(name: str) -> dict[str, Any]:
    template = {"spec": fake_pod_spec()}
    return {
        "apiVersion": "caravan.dev/v1alpha1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "taskGroups": [{"name": "g", "countInit": 0, "countMax": 5, "template": template}]
        },
    }


async def main(args: argparse.Namespace) -> None:
    async with bench_namespace("bench-reconcile") as (kube, config, ns):
        sem = asyncio.Semaphore(20)

        async def create(i: int) -> None:
            async with sem:
                await kube.create(JOBS.collection(ns), job(f"job-{i:04d}"))

        await asyncio.gather(*(create(i) for i in range(args.jobs)))
        print(f"[bench] {args.jobs} Jobs created in {ns} with no operator running")
        started = time.monotonic()
        async with running_caravan(ns, config) as (proc, _api):
            while True:
                jobs = (await kube.list_items(JOBS.collection(ns)))["items"]
                done = sum(
                    1
                    for j in jobs
                    if j.get("status", {}).get("observedGeneration") == j["metadata"]["generation"]
                )
                deployments = len((await kube.list_items(DEPLOYMENTS.collection(ns)))["items"])
                if done == args.jobs and deployments == args.jobs:
                    break
                if time.monotonic() - started > args.timeout:
                    print(f"[bench] gave up: {done} statuses, {deployments} Deployments")
                    break
                await asyncio.sleep(1)
            elapsed = time.monotonic() - started
            print(
                f"[bench] {done} Jobs reconciled from cold (Deployment + status) in"
                f" {elapsed:.1f}s, process start included; RSS {rss_mb(proc.pid):.0f} MB"
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--timeout", type=float, default=600)
    asyncio.run(main(parser.parse_args()))
