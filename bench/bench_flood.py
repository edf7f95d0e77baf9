"""Caravan's memory under a flood of large unauthenticated bodies:
`python bench/bench_flood.py [--requests 200] [--concurrency 20] [--mb 47]`.

Starts `caravan run --auth-mode kubernetes` (API only) on 127.0.0.1 and sends it, over
raw loopback sockets, `--requests` POST /v1/events/send requests without a token, each
trying to push a body of `--mb` MB: half declare their length (refused with 413 from the
header), half are chunked (refused with 401 before any byte of the body is read). Each
client writes until the server answers or closes, with a 10 s cap. The server's RSS is
sampled every 50 ms; it should stay flat (a body is never buffered before the caller is
known). Loopback only, bounded in count and time. Not a test: nothing here asserts.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import pathlib
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_jobs import rss_mb  # noqa: E402
from bench.common import bench_namespace, running_caravan  # noqa: E402

CHUNK = b" " * 65536


async def one(port: int, size: int, chunked: bool) -> str:
    """One unauthenticated request trying to send `size` bytes; the status it got."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    framing = b"Transfer-Encoding: chunked" if chunked else b"Content-Length: %d" % size
    writer.write(
        b"POST /v1/events/send HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/json\r\n" + framing + b"\r\n\r\n"
    )
    answer = asyncio.ensure_future(reader.read(4096))
    sent = 0
    try:
        async with asyncio.timeout(10):
            while sent < size and not answer.done():
                piece = b"10000\r\n" + CHUNK + b"\r\n" if chunked else CHUNK
                writer.write(piece)
                await writer.drain()
                sent += len(CHUNK)
            data = await answer
        return data.split(b" ", 2)[1].decode() if data else "closed"
    except TimeoutError:
        return "unanswered after 10 s"
    except ConnectionError:
        if answer.done() and not answer.cancelled() and answer.exception() is None:
            data = answer.result()
            return data.split(b" ", 2)[1].decode() if data else "closed"
        return "reset"
    finally:
        answer.cancel()
        writer.close()


async def main(args: argparse.Namespace) -> None:
    async with (
        bench_namespace("bench-flood") as (_, config, ns),
        running_caravan(ns, config, args=("--auth-mode", "kubernetes", "--no-operator")) as (
            proc,
            api,
        ),
    ):
        port = api.base_url.port
        assert port is not None
        await asyncio.sleep(1)  # settle after start-up
        before = rss_mb(proc.pid)
        samples: list[float] = []
        done = asyncio.Event()

        async def sample() -> None:
            while not done.is_set() and proc.poll() is None:
                try:
                    samples.append(rss_mb(proc.pid))
                except FileNotFoundError:
                    break  # the process is gone
                await asyncio.sleep(0.05)

        sampler = asyncio.create_task(sample())
        sem = asyncio.Semaphore(args.concurrency)
        size = args.mb * 1024 * 1024

        async def limited(i: int) -> str:
            async with sem:
                return await one(port, size, chunked=i % 2 == 1)

        started = time.monotonic()
        statuses = await asyncio.gather(*(limited(i) for i in range(args.requests)))
        elapsed = time.monotonic() - started
        done.set()
        await sampler
        await asyncio.sleep(1)
        if proc.poll() is not None:
            print(
                f"caravan exited ({proc.returncode}) during the flood; peak {max(samples):.0f} MB"
            )
            return
        after = rss_mb(proc.pid)
        health = (await api.get("/healthz")).status_code
    print(
        f"{args.requests} unauthenticated POSTs of {args.mb} MB each, {args.concurrency} at a"
        f" time, in {elapsed:.1f} s: answers {dict(collections.Counter(statuses))}"
    )
    print(
        f"caravan RSS: {before:.0f} MB before, peak {max(samples):.0f} MB during,"
        f" {after:.0f} MB after; /healthz {health} afterwards"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--mb", type=int, default=47)
    asyncio.run(main(parser.parse_args()))
