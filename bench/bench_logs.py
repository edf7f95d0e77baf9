"""Log reads benchmark against the local control plane (or $KUBECONFIG).

    python bench/bench_logs.py [--big-mb 50] [--small-mb 1] [--repeat 15]

Runs `caravan run` as its own process on a fresh namespace with two one-pod jobs whose
logs (kwok serves them from CRI files) are ~50 MB and ~1 MB, then measures in the same run:
- `origin=end&offset=65536` on both: the time must not grow with the log's size;
- a full read through Caravan (MB/s) beside `kubectl logs` of the same pod and one direct
  read from kube-apiserver.
Figures go to stdout. Not a test: nothing here asserts (but wrong byte counts are shown).
"""

from __future__ import annotations

import argparse
import asyncio
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

import httpx

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from bench.common import ROOT, bench_namespace, pct, running_caravan
from caravan.kube.client import JOBS, PODS, KubeClient
from tests.cluster.kubeutil import group, job_body, pod_template, serve_pod_log

KUBECTL = str(ROOT / ".venv" / "bin" / "kubectl")
TAIL = 65536


def write_cri_log(path: pathlib.Path, megabytes: float) -> int:
    """A CRI log whose served text is about `megabytes` MB; returns the text's size."""
    target = int(megabytes * 1_000_000)
    size = 0
    i = 0
    with path.open("w") as f:
        while size < target:
            text = f"line {i:08d} " + "abcdefghij" * (5 + i % 15)
            f.write(f"2026-01-01T00:00:00.000000000Z stdout F {text}\n")
            size += len(text) + 1
            i += 1
    return size


def ms(values: list[float]) -> str:
    median, p90 = statistics.median(values), pct(values, 90)
    return f"median {median * 1000:7.2f} ms, p90 {p90 * 1000:7.2f} ms"


async def allocation(api: httpx.AsyncClient, kube: KubeClient, ns: str, job: str) -> str:
    await kube.create(JOBS.collection(ns), job_body(job, [group("web", template=pod_template())]))
    for _ in range(300):
        pods = await kube.list_items(PODS.collection(ns), labelSelector=f"caravan.dev/job={job}")
        ready = [
            p["metadata"]["name"]
            for p in pods["items"]
            if any(
                c.get("type") == "Ready" and c.get("status") == "True"
                for c in p.get("status", {}).get("conditions", [])
            )
        ]
        if ready:
            return str(ready[0])
        await asyncio.sleep(0.2)
    raise RuntimeError(f"no running pod for {job}")


async def direct_read(kube: KubeClient, ns: str, pod: str, query: dict[str, Any]) -> int:
    response = await kube.stream(PODS.item(ns, pod, "log"), query=query)
    total = 0
    try:
        async for chunk in response.content.iter_chunked(1 << 16):
            total += len(chunk)
    finally:
        response.release()
    return total


async def caravan_read(api: httpx.AsyncClient, pod: str, params: dict[str, Any]) -> int:
    total = 0
    async with api.stream("GET", f"/v1/log/fs/{pod}/main/stdout", params=params) as response:
        if response.status_code != 200:
            raise RuntimeError(f"{response.status_code}: {(await response.aread())[:200]!r}")
        async for chunk in response.aiter_raw():
            total += len(chunk)
    return total


async def main(args: argparse.Namespace) -> None:
    async with (
        bench_namespace("bench-logs") as (kube, config, ns),
        running_caravan(ns, config, timeout=300) as (_, api),
    ):
        with tempfile.TemporaryDirectory(prefix="bench-logs-") as workdir:
            # Let one read return the whole big log (the default cap is 16 MiB).
            settings = await api.post("/v1/settings", json={"logs": {"maxReadBytes": 1 << 30}})
            print(f"[bench] raise logs.maxReadBytes: HTTP {settings.status_code}")
            sizes: dict[str, int] = {}
            pods: dict[str, str] = {}
            for name, mb in (("big", args.big_mb), ("small", args.small_mb)):
                path = pathlib.Path(workdir) / f"{name}.log"
                sizes[name] = write_cri_log(path, mb)
                pods[name] = await allocation(api, kube, ns, name)
                await serve_pod_log(kube, ns, pods[name], str(path))
                for _ in range(300):
                    if await direct_read(kube, ns, pods[name], {"limitBytes": 10}) == 10:
                        break
                    await asyncio.sleep(0.2)
                print(f"[bench] {name}: pod {pods[name]}, log {sizes[name] / 1e6:.2f} MB")
            # Warm up (split-stream detection, connections).
            for name in pods:
                await caravan_read(api, pods[name], {"origin": "end", "offset": TAIL})

            print(f"\norigin=end&offset={TAIL} ({args.repeat} reads each, interleaved)")
            times: dict[str, list[float]] = {n: [] for n in pods}
            for _ in range(args.repeat):
                for name, pod in pods.items():
                    t0 = time.perf_counter()
                    got = await caravan_read(api, pod, {"origin": "end", "offset": TAIL})
                    times[name].append(time.perf_counter() - t0)
                    if got != TAIL:
                        print(f"  !! {name}: got {got} bytes, expected {TAIL}")
            for name in pods:
                print(f"  {name:5s} ({sizes[name] / 1e6:6.2f} MB log): {ms(times[name])}")
            ratio = statistics.median(times["big"]) / statistics.median(times["small"])
            size_ratio = sizes["big"] / sizes["small"]
            print(f"  big/small median ratio: {ratio:.2f} (log size ratio {size_ratio:.0f})")

            print(f"\nfull read of the big log ({sizes['big'] / 1e6:.2f} MB), best of {args.full}")
            rows: dict[str, list[float]] = {"caravan": [], "apiserver": [], "kubectl": []}
            for _ in range(args.full):
                t0 = time.perf_counter()
                got = await caravan_read(api, pods["big"], {})
                rows["caravan"].append(time.perf_counter() - t0)
                if got != sizes["big"]:
                    print(f"  !! caravan: got {got} bytes, expected {sizes['big']}")
                t0 = time.perf_counter()
                got = await direct_read(kube, ns, pods["big"], {"container": "main"})
                rows["apiserver"].append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                done = subprocess.run(  # noqa: ASYNC221 - measured on purpose, nothing else runs
                    [KUBECTL, "--kubeconfig", config, "-n", ns, "logs", pods["big"], "-c", "main"],
                    stdout=subprocess.PIPE,
                    check=True,
                )
                rows["kubectl"].append(time.perf_counter() - t0)
                if len(done.stdout) != sizes["big"]:
                    print(f"  !! kubectl: got {len(done.stdout)} bytes")
            for name, values in rows.items():
                best = min(values)
                label = {
                    "caravan": "GET /v1/log/fs (Caravan)",
                    "apiserver": "pods/log direct (aiohttp)",
                    "kubectl": "kubectl logs (process)",
                }[name]
                print(f"  {label:28s} {best:6.3f} s  {sizes['big'] / 1e6 / best:7.1f} MB/s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--big-mb", type=float, default=50)
    parser.add_argument("--small-mb", type=float, default=1)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--full", type=int, default=3)
    asyncio.run(main(parser.parse_args()))
