"""The pod-log transport (caravan.logs.transport) over a scripted opener: what it learns
of split streams, and which query each read sends."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, cast

import aiohttp

from caravan.logs import reads
from caravan.logs.transport import StreamRefused, StreamSupport, TaskLog


class Body:
    """Just what the transport uses of an aiohttp response."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.released = False
        self.content = self

    async def read(self) -> bytes:
        return self.data

    async def iter_chunked(self, size: int) -> AsyncIterator[bytes]:
        for start in range(0, len(self.data), size):
            yield self.data[start : start + size]

    def release(self) -> None:
        self.released = True


class Opener:
    """Answers each read from `logs` ("Stdout", "Stderr" or "combined"), or refuses
    `stream` when the cluster cannot split."""

    def __init__(self, logs: dict[str, bytes], *, refuses_stream: bool = False) -> None:
        self.logs = logs
        self.refuses_stream = refuses_stream
        self.queries: list[dict[str, Any]] = []

    async def __call__(self, query: dict[str, Any], timeout: float) -> aiohttp.ClientResponse:
        self.queries.append(query)
        stream = query.get("stream")
        if stream is not None and self.refuses_stream:
            raise StreamRefused("stream: Forbidden")
        data = self.logs[stream or "combined"]
        if "limitBytes" in query:
            data = data[: query["limitBytes"]]
        return cast(aiohttp.ClientResponse, Body(data))


async def test_a_cluster_that_refuses_stream_is_learnt_once_and_read_combined() -> None:
    support = StreamSupport()
    opener = Opener({"combined": b"out\nerr\n"}, refuses_stream=True)
    log = TaskLog(support, opener, "node-a", "main", "stderr")
    await log.detect()
    assert support.split_streams is False and log.stream_name == "combined"
    await log.open(5, limitBytes=100)
    assert opener.queries[-1] == {"container": "main", "limitBytes": 100}
    await TaskLog(support, opener, "node-b", "main", "stdout").detect()
    assert len(opener.queries) == 2  # nothing asked again


async def test_a_node_whose_kubelet_mixes_the_streams_is_read_combined() -> None:
    support = StreamSupport()
    mixed = b"out\nerr\n"
    opener = Opener({"Stdout": mixed, "Stderr": mixed, "combined": mixed})
    log = TaskLog(support, opener, "node-a", "main", "stdout")
    await log.detect()
    assert support.split_streams is True
    assert support.node_splits == {"node-a": False}
    assert log.stream_name == "combined"


async def test_a_splitting_node_reads_one_stream_from_a_tail_start() -> None:
    support = StreamSupport()
    opener = Opener({"Stdout": b"out\n", "Stderr": b"err\n", "combined": b"out\nerr\n"})
    log = TaskLog(support, opener, "node-a", "main", "stderr")
    await log.detect()
    assert support.node_splits == {"node-a": True} and log.stream_name == "stderr"
    start = reads.TailStart(since="2026-12-05T00:00:00Z")
    await log.open(5, start=start)
    assert opener.queries[-1] == {
        "container": "main",
        "stream": "Stderr",
        "sinceTime": "2026-12-05T00:00:00Z",
    }


async def test_a_node_with_nothing_written_yet_is_asked_again_later() -> None:
    support = StreamSupport()
    opener = Opener({"Stdout": b"", "Stderr": b"", "combined": b""})
    await TaskLog(support, opener, "node-a", "main", "stdout").detect()
    assert support.node_splits == {}
