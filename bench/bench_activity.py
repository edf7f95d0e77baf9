"""What the jobs' activity costs: `python bench/bench_activity.py [--pods 3000 --rate 100]`.

Caravan watches its namespace's Events into memory for the activity view. This creates N
allocation pods of one job (a scheduler name no scheduler serves: they cost the cluster
nothing), starts `caravan run`, then makes a churn of Events for `--seconds`: new Events
about the job's pods (half of them repeats that patch a series, as the kubelet's BackOff
does) and as many about objects of no job. It prints Caravan's CPU time and RSS idle and
under the churn, how many Events the store kept, the latency of `GET
/v1/jobs/{id}/activity`, and how long a long poll on it takes to wake after a new Event
about the job is created. Not a test: nothing here asserts.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import pathlib
import random
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
from caravan.kube.client import EVENTS, JOBS, KubeClient  # noqa: E402
from caravan.kube.recorder import micro_time  # noqa: E402


def cpu_seconds(pid: int) -> float:
    fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pod_name(i: int) -> str:
    return f"act-g-5d8f7b9c4-{i:05d}"


def event_body(ns: str, name: str, kind: str, target: str, reason: str) -> dict[str, Any]:
    return {
        "apiVersion": "events.k8s.io/v1",
        "kind": "Event",
        "metadata": {"name": name, "namespace": ns},
        "eventTime": micro_time(time.time()),
        "reportingController": "bench/kubelet",
        "reportingInstance": "bench",
        "action": "Bench",
        "reason": reason,
        "regarding": {"apiVersion": "v1", "kind": kind, "name": target, "namespace": ns},
        "note": f"Back-off restarting failed container main in pod {target}",
        "type": "Warning",
    }


async def churn(kube: KubeClient, ns: str, args: argparse.Namespace) -> int:
    """Events at `rate` per second for `seconds`; returns how many writes were made."""
    made: list[str] = []
    writes = 0
    interval = 1.0 / args.rate
    deadline = time.monotonic() + args.seconds
    sem = asyncio.Semaphore(20)
    tasks = []

    async def one(i: int) -> None:
        async with sem:
            if i % 4 == 3 and made:  # a repeat: the series of an earlier Event grows
                name = random.choice(made)
                patch = {"series": {"count": 2 + i, "lastObservedTime": micro_time(time.time())}}
                await kube.merge_patch(EVENTS.item(ns, name), patch)
            elif i % 2:  # about an object of no job
                await kube.create(
                    EVENTS.collection(ns),
                    event_body(ns, f"other.{i:x}", "ConfigMap", f"other-{i}", "Updated"),
                )
            else:
                target = pod_name(random.randrange(args.pods))
                name = f"{target}.{i:x}"
                await kube.create(
                    EVENTS.collection(ns), event_body(ns, name, "Pod", target, "BackOff")
                )
                made.append(name)

    i = 0
    while time.monotonic() < deadline:
        tasks.append(asyncio.create_task(one(i)))
        writes += 1
        i += 1
        await asyncio.sleep(interval)
    await asyncio.gather(*tasks)
    return writes


async def main(args: argparse.Namespace) -> None:
    async with bench_namespace("bench-activity") as (kube, config, ns):
        await kube.create(
            JOBS.collection(ns),
            {
                "apiVersion": "caravan.dev/v1alpha1",
                "kind": "Job",
                "metadata": {"name": "act"},
                "spec": {
                    "taskGroups": [
                        {
                            "name": "g",
                            "countInit": 0,
                            "countMax": 1,
                            "template": {"spec": fake_pod_spec()},
                        }
                    ]
                },
            },
        )
        labels = {"caravan.dev/job": "act", "caravan.dev/task-group": "g"}
        names = [pod_name(i) for i in range(args.pods)]
        await create_unplaced_pods(kube, ns, names, labels)
        print(f"[bench] {args.pods} allocation pods created")
        async with running_caravan(ns, config, timeout=60) as (proc, api):
            await asyncio.sleep(5)
            cpu0, t0 = cpu_seconds(proc.pid), time.monotonic()
            await asyncio.sleep(10)
            idle_cpu = (cpu_seconds(proc.pid) - cpu0) / (time.monotonic() - t0)
            idle_rss = rss_mb(proc.pid)
            cpu0, t0 = cpu_seconds(proc.pid), time.monotonic()
            writes = await churn(kube, ns, args)
            await asyncio.sleep(2)
            churn_cpu = (cpu_seconds(proc.pid) - cpu0) / (time.monotonic() - t0)
            gets = []
            for _ in range(100):
                t = time.perf_counter()
                response = await api.get("/v1/jobs/act/activity")
                gets.append(time.perf_counter() - t)
            kept = len(response.json()["items"])
            wakes = []
            for n in range(20):
                index = response.headers["waitIndex"]
                poll = asyncio.create_task(
                    api.get("/v1/jobs/act/activity", headers={"waitIndex": index}, timeout=60)
                )
                await asyncio.sleep(0.2)
                target = pod_name(n)
                t = time.perf_counter()
                await kube.create(
                    EVENTS.collection(ns),
                    event_body(ns, f"{target}.wake{n}", "Pod", target, "BackOff"),
                )
                response = await poll
                wakes.append(time.perf_counter() - t)
            print(
                f"[bench] {args.pods} pods, {writes} Event writes in {args.seconds:g}s"
                f" ({writes / args.seconds:.0f}/s asked {args.rate:g}/s: half new Events about"
                " the job's pods, a quarter repeats of those, a quarter about other objects)\n"
                f"[bench] caravan CPU idle {idle_cpu * 100:.1f}% of a core,"
                f" under the churn {churn_cpu * 100:.1f}%;"
                f" RSS idle {idle_rss:.0f} MB, after the churn {rss_mb(proc.pid):.0f} MB;"
                f" {kept} Events in the job's activity\n"
                f"[bench] GET activity p50 {pct(gets, 50) * 1000:.1f} ms,"
                f" p99 {pct(gets, 99) * 1000:.1f} ms;"
                f" long poll woken by a new Event: p50 {pct(wakes, 50) * 1000:.0f} ms,"
                f" max {max(wakes) * 1000:.0f} ms (the Event's create included)"
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pods", type=int, default=3000)
    parser.add_argument("--rate", type=float, default=100.0, help="Event writes per second")
    parser.add_argument("--seconds", type=float, default=30.0)
    asyncio.run(main(parser.parse_args()))
