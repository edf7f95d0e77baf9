"""The logs service: the log definitions, allocation meta, and reads of a task's log.

Definitions live in the logs ConfigMap (`logs.json`); reads go to the pod log API
through the transport of caravan.logs.transport, bound here to the Kubernetes client.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp

from caravan.errors import ConflictError, InvalidError, NotFoundError, no_such, quote
from caravan.jobs.summary import PodFacts
from caravan.kube.client import PODS
from caravan.kube.errors import Invalid, KubeError, NotFound
from caravan.logs import definitions, reads
from caravan.logs.definitions import LogDefinition
from caravan.logs.status import rfc3339_utc, status_word
from caravan.logs.transport import (
    READ_IDLE_SECONDS,
    Opener,
    StreamRefused,
    StreamSupport,
    TaskLog,
    chunks,
)
from caravan.services.state import ServerState
from caravan.services.writes import Writes

log = logging.getLogger(__name__)

LOGS_KEY = "logs.json"


@dataclass(frozen=True)
class LogRead:
    """What a read answers: its bytes (all of them, or a stream) and which stream."""

    stream: str
    body: bytes | AsyncIterator[bytes]


class Logs:
    def __init__(self, state: ServerState) -> None:
        self.state = state
        self.support = StreamSupport()

    # Definitions -------------------------------------------------------------------------

    def definitions(self) -> list[LogDefinition]:
        name = self.state.config.configmaps.logs
        text = self.state.store.configmaps.get(name, {}).get(LOGS_KEY)
        entries, problems = definitions.parse_stored(text)
        if problems:
            log.warning(
                "ConfigMap %s: %s",
                name,
                "; ".join(f"{p.field} {p.message}" for p in problems[:5]),
            )
        return entries

    async def set_definitions(
        self, writes: Writes, items: list[dict[str, Any]]
    ) -> list[LogDefinition]:
        """Replaces the whole list (ids unique); every problem refuses it."""
        entries, problems = definitions.check_list(items)
        if problems:
            raise InvalidError(
                "invalid log definitions: " + "; ".join(f"{p.field} {p.message}" for p in problems),
                [p.to_json() for p in problems],
            )
        await writes.configmap_key(
            self.state.config.configmaps.logs, LOGS_KEY, definitions.dump(entries)
        )
        return entries

    def meta(self, name: str) -> list[dict[str, Any]]:
        """One entry per allocation of the log's job and task group."""
        entry = definitions.find(self.definitions(), name)
        if entry is None:
            raise no_such("log", name)
        return [
            {
                "allocID": pod.name,
                "status": status_word(pod.bucket),
                "jobName": entry.job,
                "taskName": entry.task,
                "fileName": entry.fileName,
                "createTime": rfc3339_utc(pod.created),
                "logLevel": "true" if entry.logLevel else "false",
            }
            for pod in self.state.store.pods_of(entry.job, entry.group)
        ]

    # Reads -------------------------------------------------------------------------------

    def allocation(self, alloc: str, task: str) -> PodFacts:
        """The allocation's facts; not found unless it is a pod of a Caravan job with that
        task. The store only holds pods labelled with a Caravan job, so any other pod of
        the namespace is unknown here, whatever the cluster holds."""
        pod = self.state.store.pods.get(alloc)
        if pod is None:
            raise no_such("allocation", alloc)
        if task not in pod.containers:
            raise NotFoundError(
                f"allocation {quote(alloc)} has no task {quote(task)}",
                [{"field": "task", "message": f"one of {', '.join(pod.containers)}"}],
            )
        return pod

    async def read(
        self, alloc: str, task: str, fs: reads.Fs, origin: reads.Origin, offset: int, follow: bool
    ) -> LogRead:
        """`origin=start`: from byte `offset`; `origin=end`: the last `offset` bytes; with
        `follow`, what comes next too (as a stream)."""
        pod = self.allocation(alloc, task)
        settings = self.state.runtime_settings
        max_bytes = settings.logs_max_read_bytes
        idle = settings.logs_follow_idle_timeout_seconds if follow else READ_IDLE_SECONDS
        source = TaskLog(self.support, self._opener(pod.name, task), pod.node, task, fs)
        await source.detect()
        follow_query: dict[str, Any] = {"follow": "true"} if follow else {}

        if origin == "start":
            part, limit = reads.start_slice(offset, max_bytes, follow)
            response = await source.open(idle, limitBytes=limit, **follow_query)
        else:
            if offset == 0 and not follow:
                return LogRead(source.stream_name, b"")
            counted = 0  # follow from the end with offset 0: only what comes next
            start = reads.TailStart(lines=0)
            if offset or source.split:
                # Small tails are kept from the counting pass; larger ones (and followed
                # ones) are streamed by one more pass instead of being held in memory.
                keep = offset if offset <= max_bytes and not follow else 0
                window, start = await source.count_tail(offset, keep)
                if keep:
                    return LogRead(source.stream_name, window.tail()[:max_bytes])
                counted = window.seen
            part = reads.end_slice(counted, offset, max_bytes, follow)
            response = await source.open(idle, start=start, **follow_query)
        return LogRead(source.stream_name, reads.sliced(chunks(response, follow=follow), part))

    def _opener(self, alloc: str, task: str) -> Opener:
        path = PODS.item(self.state.namespace, alloc, "log")
        kube = self.state.kube

        async def open_log(query: dict[str, Any], timeout: float) -> aiohttp.ClientResponse:
            try:
                return await kube.stream(path, query=query, timeout=timeout)
            except KubeError as exc:
                raise _log_error(exc, alloc, task) from exc

        return open_log


def _log_error(exc: KubeError, alloc: str, task: str) -> Exception:
    if _stream_refused(exc):
        return StreamRefused(exc.message)
    if isinstance(exc, NotFound):
        return no_such("allocation", alloc)
    if isinstance(exc, Invalid) and exc.status == 400:
        # e.g. "container main is waiting to start": the task has no log yet.
        return ConflictError(f"the log of {alloc}/{task} cannot be read now: {exc.message}")
    return exc


def _stream_refused(exc: KubeError) -> bool:
    """kube-apiserver without PodLogsQuerySplitStreams: 422 `stream: Forbidden`."""
    return isinstance(exc, Invalid) and any(c.get("field") == "stream" for c in exc.causes)
