"""The pod-log transport: reads of one task's log, split by stream when the cluster can.

The pod log API may split stdout from stderr (`stream`, behind Kubernetes'
PodLogsQuerySplitStreams gate), and a node's kubelet may or may not honour it. Whether
they do is learnt once (per process, then per node) and kept in `StreamSupport`; every
read then asks the cluster with or without `stream`, and computes byte offsets with
caravan.logs.reads.

What talks to Kubernetes is handed in as an `Opener`: this module does no I/O of its own
beyond calling it, so it stays free of any client.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from caravan.logs import reads

log = logging.getLogger(__name__)

CHUNK_BYTES = 64 * 1024
# A non-followed read whose upstream stays silent this long is cut (seconds).
READ_IDLE_SECONDS = 60.0
# Bytes of each stream read to learn whether a node's kubelet splits them.
NODE_PROBE_BYTES = 4096

# Opens one read of the pod's log with these query parameters, cut after `timeout`
# seconds of silence. Raises StreamRefused when the cluster refuses `stream`.
Opener = Callable[[dict[str, Any], float], Awaitable[aiohttp.ClientResponse]]


class StreamRefused(Exception):
    """The cluster does not know the `stream` parameter (no PodLogsQuerySplitStreams)."""


@dataclass
class StreamSupport:
    """What this process learnt of the cluster's log streams."""

    # Whether kube-apiserver accepts `stream`; learnt from the first read that asks.
    split_streams: bool | None = None
    # Whether each node's kubelet really splits. One without the gate (or kwok's fake
    # kubelet) ignores `stream` and answers the combined log for both: learnt per node
    # from the first of its pods that has output.
    node_splits: dict[str, bool] = field(default_factory=dict)


class TaskLog:
    """Opens log reads of one task of one pod."""

    def __init__(
        self, support: StreamSupport, opener: Opener, node: str, task: str, fs: reads.Fs
    ) -> None:
        self.support = support
        self.opener = opener
        self.node = node
        self.task = task
        self.fs = fs

    @property
    def split(self) -> bool:
        return bool(self.support.split_streams) and self.support.node_splits.get(self.node, True)

    @property
    def stream_name(self) -> str:
        """What the answer holds: this stream, or `combined` when it cannot be split."""
        return self.fs if self.split else "combined"

    async def detect(self) -> None:
        """Learns whether this read can be split: once per process whether kube-apiserver
        accepts `stream` (a 1-byte read), then once per node whether its kubelet honours
        it (the head of both streams: the same non-empty bytes mean it does not)."""
        support = self.support
        if support.split_streams is None:
            try:
                await self._head("Stdout", 1)
            except StreamRefused:
                log.info("this cluster cannot split pod log streams: serving combined logs")
                support.split_streams = False
            else:
                support.split_streams = True
        if not support.split_streams or not self.node or self.node in support.node_splits:
            return
        stdout, stderr = await asyncio.gather(
            self._head("Stdout", NODE_PROBE_BYTES), self._head("Stderr", NODE_PROBE_BYTES)
        )
        if stdout or stderr:  # nothing written yet: nothing to learn (and nothing to mix)
            splits = stdout != stderr
            support.node_splits[self.node] = splits
            if not splits:
                log.info("node %s does not split pod log streams: combined logs", self.node)

    async def _head(self, stream: str, size: int) -> bytes:
        query = {"container": self.task, "stream": stream, "limitBytes": size}
        response = await self.opener(query, 30)
        try:
            return await response.read()
        finally:
            response.release()

    async def open(
        self, timeout: float, *, start: reads.TailStart | None = None, **query: Any
    ) -> aiohttp.ClientResponse:
        """One read of the task's stream, from `start` when given."""
        params: dict[str, Any] = {"container": self.task, **query}
        if self.split:
            params["stream"] = "Stdout" if self.fs == "stdout" else "Stderr"
            if start is not None and start.since is not None:
                params["sinceTime"] = start.since
        elif start is not None and start.lines is not None:
            params["tailLines"] = start.lines
        return await self.opener(params, timeout)

    async def combined_tail(self, lines: int) -> tuple[bytes, int]:
        """The first line and the line count of the combined log's last `lines` lines,
        timestamped: where a split stream's tail starts (`stream` refuses `tailLines`)."""
        params = {"container": self.task, "tailLines": lines, "timestamps": "true"}
        window = reads.TailWindow(0)
        first = b""
        async for chunk in chunks(await self.opener(params, READ_IDLE_SECONDS), follow=False):
            if len(first) < 256 and b"\n" not in first:
                first += chunk[:256]
            window.feed(chunk)
        return first, window.lines

    async def count_tail(self, offset: int, keep: int) -> tuple[reads.TailWindow, reads.TailStart]:
        """Reads growing tails until one holds `offset` bytes or is the whole log.

        Returns the last window (holding its last `keep` bytes) and where it started.
        """
        lines = reads.first_tail_lines(offset)
        while True:
            if self.split:
                first, got_lines = await self.combined_tail(lines)
                whole = got_lines < lines
                start = reads.TailStart(since=None if whole else reads.since_time(first))
            else:
                start = reads.TailStart(lines=lines)
            window = reads.TailWindow(keep)
            async for chunk in chunks(await self.open(READ_IDLE_SECONDS, start=start), False):
                window.feed(chunk)
            if self.split:
                # The suffix holds the stream's share of the combined tail: grow until enough.
                done = window.seen >= offset or start.since is None
                following = None if done else lines * 2
            else:
                following = reads.next_tail_lines(lines, window.lines, window.seen, offset)
            if following is None:
                return window, start
            lines = following


async def chunks(response: aiohttp.ClientResponse, follow: bool) -> AsyncIterator[bytes]:
    """The body's chunks; the response is released when the consumer stops."""
    try:
        async for chunk in response.content.iter_chunked(CHUNK_BYTES):
            yield chunk
    except (aiohttp.ClientPayloadError, TimeoutError):
        # A followed stream that stayed idle past the settings' timeout just ends.
        if not follow:
            raise
    finally:
        response.release()
