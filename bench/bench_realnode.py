"""Real-node benchmark: live files in a running pod, and real container logs.

    python bench/bench_realnode.py [--changes 30] [--big-mb 50] [--repeat 5]

Needs the local cluster's real node (`make cluster` starts it) or a cluster whose nodes
run processes, with the example task image (examples/task). Runs `caravan run` as its own
process on a fresh namespace, starts the example task program on the real node, and
measures in the same run:

- the same for a plain ConfigMap volume of the user's own, which Caravan does not nudge:
  what a stock kubelet gives (its sync period, a minute by default);
- a level change (`POST /v1/log/defaults/...`, the loggers ConfigMap) → the new file read
  by the process; an allocation override (`POST /v1/log/allocs/...`, the pod's
  annotation) → the same; a settings change (`POST /v1/settings`) → the settings file.
  Each from the write's 2xx to the process announcing the new content (it polls its
  files every 20 ms; its log is followed straight from kube-apiserver);
- a full read of a ≥ 50 MB real container log through Caravan, beside `kubectl logs` and a
  direct pods/log read of the same container: MB/s and the ratio;
- `origin=end&offset=65536` of that log and of a 1 MB one: the cost must not grow with
  the log's size.
Figures go to stdout. Not a test: nothing here asserts.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import pathlib
import statistics
import subprocess
import sys
import time
from typing import Any

import httpx

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from bench.common import ROOT, bench_namespace, pct, running_caravan
from caravan.kube.client import CONFIGMAPS, JOBS, PODS, KubeClient

KUBECTL = str(ROOT / ".venv" / "bin" / "kubectl")
IMAGE = "caravan-example-task:0.1.0"
TAIL = 65536


def task_job(name: str, env: dict[str, str], configmap: str | None = None) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": "task",
        "image": IMAGE,
        "env": [{"name": k, "value": v} for k, v in env.items()],
    }
    spec: dict[str, Any] = {"terminationGracePeriodSeconds": 1, "containers": [container]}
    if configmap:  # the user's own ConfigMap, mounted the plain way
        spec["volumes"] = [{"name": "plain", "configMap": {"name": configmap}}]
        container["volumeMounts"] = [{"name": "plain", "mountPath": "/plain"}]
    template = {"spec": spec}
    group = {"name": "g", "countInit": 1, "countMax": 1, "template": template}
    return {
        "apiVersion": "caravan.dev/v1alpha1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {"taskGroups": [group]},
    }


async def running_pod(
    kube: KubeClient, ns: str, job: str, env: dict[str, str], configmap: str | None = None
) -> str:
    await kube.create(JOBS.collection(ns), task_job(job, env, configmap))
    for _ in range(600):
        pods = await kube.list_items(PODS.collection(ns), labelSelector=f"caravan.dev/job={job}")
        for pod in pods["items"]:
            statuses = pod["status"].get("containerStatuses") or []
            if statuses and statuses[0].get("ready"):
                return str(pod["metadata"]["name"])
        await asyncio.sleep(0.2)
    raise SystemExit(f"job {job}: no running pod after 120 s (is there a real node?)")


class Lines:
    """A pod's stdout followed from kube-apiserver; each line with its arrival time."""

    def __init__(self, kube: KubeClient, ns: str, pod: str) -> None:
        self.kube, self.ns, self.pod = kube, ns, pod
        self.lines: list[tuple[float, str]] = []
        self.grew = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    async def run(self) -> None:
        query = {"container": "task", "follow": "true", "sinceSeconds": 1}
        response = await self.kube.stream(PODS.item(self.ns, self.pod, "log"), query=query)
        try:
            while line := await response.content.readline():
                self.lines.append((time.monotonic(), line.decode().rstrip("\n")))
                self.grew.set()
        finally:
            response.release()

    async def arrival(self, predicate: Any, after: int, timeout: float = 120) -> tuple[float, int]:
        """When the first line past index `after` satisfying `predicate` arrived."""
        deadline = time.monotonic() + timeout
        while True:
            for i in range(after, len(self.lines)):
                if predicate(self.lines[i][1]):
                    return self.lines[i][0], i + 1
            self.grew.clear()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise SystemExit("a change never reached the process")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.grew.wait(), remaining)


def ms(values: list[float]) -> str:
    return (
        f"p50 {pct(values, 50) * 1000:6.0f} ms, p99 {pct(values, 99) * 1000:6.0f} ms,"
        f" max {max(values) * 1000:6.0f} ms (n={len(values)})"
    )


async def live_files(api: httpx.AsyncClient, kube: KubeClient, ns: str, changes: int) -> None:
    env = {"CARAVAN_LOGGER_ID": "bench", "TASK_LOGGERS": "", "TASK_POLL_SECONDS": "0.02"}
    pod = await running_pod(kube, ns, "live", env)
    lines = Lines(kube, ns, pod)
    lines.task = asyncio.create_task(lines.run())
    await asyncio.sleep(1)
    seen = len(lines.lines)
    defaults: list[float] = []
    overrides: list[float] = []
    settings: list[float] = []
    for i in range(changes):
        level = ("debug", "warning")[i % 2]
        response = await api.post("/v1/log/defaults/bench", json={"app": level})
        assert response.status_code == 200, response.text
        done = time.monotonic()
        at, seen = await lines.arrival(
            lambda t, lv=level: t.startswith("levels ") and f'"app": "{lv}"' in t, seen
        )
        defaults.append(at - done)
        response = await api.post(f"/v1/log/allocs/{pod}/bench", json={"net": level})
        assert response.status_code == 200, response.text
        done = time.monotonic()
        at, seen = await lines.arrival(
            lambda t, lv=level: t.startswith("levels ") and f'"net": "{lv}"' in t, seen
        )
        overrides.append(at - done)
        response = await api.post("/v1/settings", json={"app": {"bench": i}})
        assert response.status_code == 200, response.text
        done = time.monotonic()
        at, seen = await lines.arrival(
            lambda t, n=i: t.startswith("settings ") and f'"bench": {n}' in t, seen
        )
        settings.append(at - done)
    lines.task.cancel()
    print(f"level default (loggers ConfigMap) -> file in pod: {ms(defaults)}")
    print(f"level override (pod annotation)   -> file in pod: {ms(overrides)}")
    print(f"settings (settings ConfigMap)     -> file in pod: {ms(settings)}")


async def plain_configmap(kube: KubeClient, ns: str, samples: int) -> None:
    """The alternative without Caravan: a user's ConfigMap volume on a stock kubelet."""
    if not samples:
        return
    path = CONFIGMAPS.collection(ns)
    await kube.create(path, {"metadata": {"name": "plain"}, "data": {"settings.json": "{}"}})
    env = {
        "TASK_LOGGERS": "",
        "TASK_POLL_SECONDS": "0.02",
        "CARAVAN_SETTINGS_FILE": "/plain/settings.json",
    }
    pod = await running_pod(kube, ns, "plain", env, configmap="plain")
    lines = Lines(kube, ns, pod)
    lines.task = asyncio.create_task(lines.run())
    await asyncio.sleep(1)
    seen = len(lines.lines)
    waits: list[float] = []
    for i in range(samples):
        patch = {"data": {"settings.json": json.dumps({"plain": i})}}
        await kube.merge_patch(CONFIGMAPS.item(ns, "plain"), patch)
        done = time.monotonic()
        at, seen = await lines.arrival(lambda t, n=i: f'"plain": {n}' in t, seen, timeout=300)
        waits.append(at - done)
    lines.task.cancel()
    print(f"plain ConfigMap volume, no Caravan  -> file in pod: {ms(waits)}")


async def timed_read(read: Any, repeat: int) -> tuple[float, int]:
    times, size = [], 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        size = await read()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), size


async def logs(
    api: httpx.AsyncClient, kube: KubeClient, ns: str, config: str, big_mb: int, repeat: int
) -> None:
    # One read may return the whole 50 MB log.
    response = await api.post("/v1/settings", json={"logs": {"maxReadBytes": 256 * 1024 * 1024}})
    assert response.status_code == 200, response.text
    pods = {}
    for name, size in (("big", big_mb * 1_000_000), ("small", 1_000_000)):
        env = {"TASK_LOGGERS": "", "TASK_BURST_BYTES": str(size)}
        pods[name] = await running_pod(kube, ns, name, env)
    for name, pod in pods.items():  # the burst is written before the "started" line
        for _ in range(600):
            tail = await api.get(
                f"/v1/log/fs/{pod}/task/stdout", params={"origin": "end", "offset": 4096}
            )
            if "settings " in tail.text:
                break
            await asyncio.sleep(0.5)
        print(f"{name}: pod {pod} written")

    big = pods["big"]

    async def through_caravan() -> int:
        size = 0
        async with api.stream("GET", f"/v1/log/fs/{big}/task/stdout", timeout=300) as r:
            async for chunk in r.aiter_raw():
                size += len(chunk)
        return size

    async def direct() -> int:
        size = 0
        query = {"container": "task", "stream": "Stdout"}
        response = await kube.stream(PODS.item(ns, big, "log"), query=query, timeout=300)
        try:
            async for chunk in response.content.iter_chunked(1 << 16):
                size += len(chunk)
        finally:
            response.release()
        return size

    async def kubectl_logs() -> int:
        proc = await asyncio.create_subprocess_exec(
            KUBECTL,
            "--kubeconfig",
            config,
            "-n",
            ns,
            "logs",
            big,
            "-c",
            "task",
            stdout=subprocess.PIPE,
        )
        out, _ = await proc.communicate()
        return len(out)

    results = {}
    for label, read in (
        ("caravan", through_caravan),
        ("direct pods/log", direct),
        ("kubectl logs", kubectl_logs),
    ):
        seconds, size = await timed_read(read, repeat)
        results[label] = size / seconds / 1e6
        print(
            f"full read, {label:16s}: {size / 1e6:6.1f} MB in {seconds * 1000:7.0f} ms"
            f" = {results[label]:6.1f} MB/s"
        )
    print(f"caravan / kubectl logs: {results['caravan'] / results['kubectl logs']:.2f}")

    for name, pod in pods.items():

        async def read_tail(p: str = pod) -> int:
            r = await api.get(
                f"/v1/log/fs/{p}/task/stdout", params={"origin": "end", "offset": TAIL}
            )
            return len(r.content)

        seconds, size = await timed_read(read_tail, repeat * 3)
        print(
            f"origin=end&offset={TAIL} of the {name} log:"
            f" median {seconds * 1000:6.1f} ms ({size} bytes)"
        )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--changes", type=int, default=30)
    parser.add_argument("--big-mb", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument(
        "--plain", type=int, default=3, help="samples of a plain ConfigMap volume (~1 min each)"
    )
    args = parser.parse_args()
    async with (
        bench_namespace("bench-node") as (kube, config, ns),
        running_caravan(ns, config, timeout=300) as (_proc, api),
    ):
        await live_files(api, kube, ns, args.changes)
        await plain_configmap(kube, ns, args.plain)
        await logs(api, kube, ns, config, args.big_mb, args.repeat)


if __name__ == "__main__":
    asyncio.run(main())
