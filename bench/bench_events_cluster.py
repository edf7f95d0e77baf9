"""Events end to end across replicas: ``python bench/bench_events_cluster.py
[--seconds S] [--replicas 1,2,3] [--senders-per-replica K]``.

For each replica count, one run, side by side: a fresh namespace, a nats-server with
JetStream (127.0.0.1), that many ``caravan run`` processes (leader election on; the Lease
holder merges), the vote/cheer document (period 1 s, 10,000 distinct keys), and sender
processes POSTing batches of 1,000 events to ``/v1/events/send`` round-robin over the
replicas for S seconds. Also one replica without NATS (the embedded default) as the
baseline. Prints accepted events/s, the scaling ratio, the merge lag (period end -> final
on the results stream) p50/p99 from /metrics, each replica's CPU seconds per million
events, and checks that the merged counts equal what was accepted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import json
import multiprocessing
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_events import make_events
from bench.common import ROOT, bench_namespace, free_port, wait_ready
from tests.natsserver import NatsServer
from tests.samples import vote_cheer

BATCH = 1_000
# The vote/cheer document with a 1 s period: the merger's work is per distinct key and
# period (10,000 keys here), so 250 ms periods would make it the bottleneck on 2 cores.
PERIOD_MS = 1_000
DOCUMENT = vote_cheer(period=PERIOD_MS)
GRACE_MS = 10_000
CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def sender(port: int, bodies: list[bytes], seconds: float, out: Any) -> None:
    """One sender process: POSTs prepared batches on one keep-alive connection."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    accepted = sent = 0
    deadline = time.monotonic() + seconds
    i = 0
    while time.monotonic() < deadline:
        conn.request(
            "POST", "/v1/events/send", bodies[i % len(bodies)], {"content-type": "application/json"}
        )
        response = conn.getresponse()
        body = json.loads(response.read())
        if response.status != 200:
            raise SystemExit(f"send answered {response.status}: {body}")
        accepted += body["accepted"]
        sent += BATCH
        i += 1
    out.put((accepted, sent))


@contextlib.contextmanager
def caravans(
    n: int, namespace: str, config: str, nats_url: str | None
) -> Iterator[list[tuple[subprocess.Popen[bytes], int]]]:
    procs: list[tuple[subprocess.Popen[bytes], int]] = []
    try:
        for i in range(n):
            port = free_port()
            env = {**os.environ, "POD_NAME": f"bench-{i}", "CARAVAN_NAMESPACE": namespace}
            if nats_url:
                env["CARAVAN_NATS_URL"] = nats_url
                # A shared, loaded machine delays a replica's partials by seconds; the
                # bench checks counts, so it waits for them (the default is 2 s).
                env["CARAVAN_NATS_MERGE_GRACE_MS"] = str(GRACE_MS)
            args = [str(ROOT / ".venv" / "bin" / "caravan"), "run", "--port", str(port)]
            args += ["--kubeconfig", config, "--log-level", "WARNING", "--leader-elect"]
            procs.append((subprocess.Popen(args, env=env), port))
        yield procs
    finally:
        for proc, _ in procs:
            proc.terminate()
        for proc, _ in procs:
            proc.wait(timeout=30)


async def metric(api: httpx.AsyncClient, name: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for line in (await api.get("/metrics")).text.splitlines():
        if line.startswith(name + "{"):
            label = line.split('"')[1]
            out[label] = float(line.rsplit(" ", 1)[1])
    return out


async def counted(api: httpx.AsyncClient, counter: int) -> tuple[int, int]:
    """(events counted in the results log after `counter`, the new counter)."""
    page = (await api.get(f"/v1/events/results/{counter}")).json()
    total = 0
    for m in page["messages"]:
        for r in json.loads(m["value"])["results"]:
            total += r["value"]["count"]
    return total, page["counter"]


@contextlib.asynccontextmanager
async def nats_server(enabled: bool) -> AsyncIterator[NatsServer | None]:
    if not enabled:
        yield None
        return
    server = NatsServer()
    server.start()
    try:
        yield server
    finally:
        server.remove()


async def run(n: int, use_nats: bool, seconds: float, senders: int) -> dict[str, Any]:
    async with (
        bench_namespace("bench-events") as (_, config, ns),
        nats_server(use_nats) as server,
    ):
        url = server.url if server else None
        with caravans(n, ns, config, url) as procs:
            apis = [
                httpx.AsyncClient(base_url=f"http://127.0.0.1:{p}", timeout=30) for _, p in procs
            ]
            try:
                for api in apis:
                    await wait_ready(api, timeout=60)
                posted = await apis[0].post("/v1/events", json={"mapreduce": [DOCUMENT]})
                assert posted.status_code == 200, posted.text
                await asyncio.sleep(1.0)  # every replica switched; a Lease holder exists
                counters = [0] * n
                for i, api in enumerate(apis):
                    _, counters[i] = await counted(api, 0)  # collection on
                total = 0

                async def poll() -> None:
                    # Reads replica 0's results log each second, as a poller would (the
                    # shared log is dropped after 5 s without a read on any replica).
                    nonlocal total
                    while True:
                        c, counters[0] = await counted(apis[0], counters[0])
                        total += c
                        await asyncio.sleep(1.0)

                poller = asyncio.create_task(poll())
                bodies = [
                    json.dumps({"channel": "game", "events": make_events(BATCH, seed=s)}).encode()
                    for s in range(20)
                ]
                cpu0 = [cpu_seconds(p.pid) for p, _ in procs]
                out: Any = multiprocessing.Queue()
                workers = [
                    multiprocessing.Process(
                        target=sender, args=(procs[k % n][1], bodies, seconds, out)
                    )
                    for k in range(senders * n)
                ]
                started = time.monotonic()
                for w in workers:
                    w.start()
                results = [await asyncio.to_thread(out.get) for _ in workers]
                elapsed = time.monotonic() - started
                for w in workers:
                    w.join()
                cpu = [cpu_seconds(p.pid) - c0 for (p, _), c0 in zip(procs, cpu0, strict=True)]
                accepted = sum(a for a, _ in results)
                # Every event accepted anywhere is counted once in the merged results.
                for _ in range(100):  # at most 30 s for the last periods to be merged
                    if total >= accepted:
                        break
                    await asyncio.sleep(0.3)
                poller.cancel()
                lag = await metric(apis[0], "caravan_events_merge_lag_ms") if use_nats else {}
                late = 0.0
                for api in apis:
                    late += (await metric(api, "caravan_events_cluster")).get("late_partials", 0)
                return {
                    "replicas": n,
                    "nats": use_nats,
                    "accepted": accepted,
                    "seconds": elapsed,
                    "rate": accepted / elapsed,
                    "counted": total,
                    "lag": lag,
                    "late": late,
                    "cpu_per_million": [c / accepted * 1e6 for c in cpu],
                }
            finally:
                for api in apis:
                    await api.aclose()


def report(r: dict[str, Any], base: float) -> None:
    label = f"{r['replicas']} replica(s), {'NATS' if r['nats'] else 'embedded (no NATS)'}"
    lag = r["lag"]
    lag_text = f"; merge lag p50 {lag['p50']:.0f} ms, p99 {lag['p99']:.0f} ms" if lag else ""
    cpu = ", ".join(f"{c:.2f}" for c in r["cpu_per_million"])
    ok = "ok" if r["counted"] == r["accepted"] else f"MISMATCH (counted {r['counted']:,})"
    if r["late"]:
        ok += f", {r['late']:.0f} late partial(s)"
    print(
        f"{label:<32} {r['rate']:>10,.0f} events/s  (x{r['rate'] / base:.2f}; "
        f"{r['accepted']:,} in {r['seconds']:.1f} s; counts {ok}){lag_text}; "
        f"CPU s per million events per replica: {cpu}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--replicas", default="1,2,3")
    ap.add_argument("--senders-per-replica", type=int, default=1)
    args = ap.parse_args()
    counts = [int(x) for x in args.replicas.split(",")]
    print(f"{os.cpu_count()} cores; {args.seconds:.0f} s per run; batches of {BATCH:,} events")
    base = asyncio.run(run(1, False, args.seconds, args.senders_per_replica))
    report(base, base["rate"])
    for n in counts:
        r = asyncio.run(run(n, True, args.seconds, args.senders_per_replica))
        report(r, base["rate"])


if __name__ == "__main__":
    main()
