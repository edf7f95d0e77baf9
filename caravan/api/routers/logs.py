"""Logs: the log definitions list, allocation meta, and log reads of allocations."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import aiohttp
from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, Field, StrictBool, StrictStr

from caravan.api.area import Area
from caravan.api.auth import authorize
from caravan.api.deps import StateDep, StoreDep
from caravan.api.errors import ApiError
from caravan.api.models import StrictModel, responses
from caravan.api.state import AppState
from caravan.jobs.summary import PodFacts
from caravan.kube.client import PODS, KubeError
from caravan.kube.configmaps import write_configmap_key
from caravan.logs import definitions, reads
from caravan.logs.definitions import LogDefinition
from caravan.logs.status import rfc3339_utc, status_word
from caravan.store import Store

log = logging.getLogger(__name__)

router = APIRouter(prefix="/v1/log", tags=["logs"])
CAN_READ_LIST = [Depends(authorize("get", "configmaps"))]
CAN_WRITE_LIST = [Depends(authorize("update", "configmaps"))]
CAN_LIST_PODS = [Depends(authorize("list", "pods"))]
CAN_READ_LOG = [Depends(authorize("get", "pods", subresource="log"))]

LOGS_KEY = "logs.json"
CHUNK_BYTES = 64 * 1024
# A non-followed read whose upstream stays silent this long is cut (seconds).
READ_IDLE_SECONDS = 60.0
# How long a write waits for the watch to bring it into the store, so that a GET right
# after a POST sees it (seconds). The write is stored either way.
STORE_CATCH_UP_SECONDS = 10.0
STREAM_HEADER = "X-Caravan-Log-Stream"
# Bytes of each stream read to learn whether a node's kubelet splits them.
NODE_PROBE_BYTES = 4096


class LogDefinitionModel(StrictModel):
    id: StrictStr = Field(min_length=1, description="The log ID (unique in the list)")
    group: StrictStr = Field(min_length=1, description="The task group")
    job: StrictStr = Field(min_length=1, description="The job")
    task: StrictStr = Field(min_length=1, description="The task (container name)")
    fileName: StrictStr = Field(description="The file name shown to users")
    logLevel: StrictBool = Field(
        description="Whether the process supports dynamic log levels (see /v1/log/defaults)"
    )


class LogMeta(BaseModel):
    allocID: str = Field(description="The allocation (pod) name")
    status: Literal["pending", "running", "complete", "failed", "lost"]
    jobName: str
    taskName: str
    fileName: str
    createTime: str = Field(description="When the allocation was created, RFC 3339 UTC")
    logLevel: Literal["true", "false"] = Field(
        description="The definition's logLevel as a string, as the seed types it"
    )


@dataclass
class LogsService:
    """Per-process state of the logs area."""

    # Whether kube-apiserver accepts `stream` (PodLogOptions, the PodLogsQuerySplitStreams
    # gate); learnt from the first read that asks for it.
    split_streams: bool | None = None
    # Whether each node's kubelet really splits. One without the gate (or kwok's fake
    # kubelet) ignores `stream` and answers the combined log for both: learnt per node
    # from the first of its pods that has output.
    node_splits: dict[str, bool] = field(default_factory=dict)


def _service(state: AppState) -> LogsService:
    service: LogsService = state.services.setdefault("logs", LogsService())
    return service


async def store_caught_up(check: Callable[[], bool], timeout: float) -> bool:
    """Waits until the watch-fed store satisfies `check` (a write became visible)."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


def stored_definitions(state: AppState) -> list[LogDefinition]:
    name = state.config.configmaps.logs
    text = state.store.configmaps.get(name, {}).get(LOGS_KEY)
    entries, problems = definitions.parse_stored(text)
    if problems:
        log.warning(
            "ConfigMap %s: %s",
            name,
            "; ".join(f"{p.field} {p.message}" for p in problems[:5]),
        )
    return entries


@router.get(
    "/logs",
    dependencies=CAN_READ_LIST,
    response_model=list[LogDefinitionModel],
    responses=responses(),
    summary="The log definitions",
)
async def get_logs(state: StateDep) -> list[dict[str, Any]]:
    return [e.to_json() for e in stored_definitions(state)]


@router.post(
    "/logs",
    dependencies=CAN_WRITE_LIST,
    response_model=list[LogDefinitionModel],
    responses=responses(422),
    summary="Replace the whole list of log definitions (ids unique)",
)
async def set_logs(body: list[LogDefinitionModel], state: StateDep) -> list[dict[str, Any]]:
    entries, problems = definitions.check_list([item.model_dump() for item in body])
    if problems:
        raise ApiError(
            422,
            "invalid log definitions: " + "; ".join(f"{p.field} {p.message}" for p in problems),
            [p.to_json() for p in problems],
        )
    name = state.config.configmaps.logs
    text = definitions.dump(entries)
    await write_configmap_key(state.kube, state.config.namespace, name, LOGS_KEY, text)
    await store_caught_up(
        lambda: state.store.configmaps.get(name, {}).get(LOGS_KEY) == text, STORE_CATCH_UP_SECONDS
    )
    return [e.to_json() for e in entries]


@router.get(
    "/meta/{name}",
    dependencies=CAN_LIST_PODS,
    response_model=list[LogMeta],
    responses=responses(404),
    summary="One entry per allocation of the log's job and task group",
)
async def get_meta(name: str, state: StateDep, store: StoreDep) -> list[dict[str, Any]]:
    entry = definitions.find(stored_definitions(state), name)
    if entry is None:
        raise ApiError(404, f"no log {name!r}")
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
        for pod in store.pods_of(entry.job, entry.group)
    ]


def caravan_allocation(store: Store, alloc: str, task: str) -> PodFacts:
    """The allocation's facts; 404 unless it is a pod of a Caravan job with that task.

    The store only holds pods labelled with a Caravan job, so any other pod of the
    namespace is unknown here, whatever the cluster holds.
    """
    pod = store.pods.get(alloc)
    if pod is None:
        raise ApiError(404, f"no allocation {alloc!r}")
    if task not in pod.containers:
        raise ApiError(
            404,
            f"allocation {alloc!r} has no task {task!r}",
            [{"field": "task", "message": f"one of {', '.join(pod.containers)}"}],
        )
    return pod


class _Upstream:
    """Opens pod log reads of one task, split by stream when the cluster can."""

    def __init__(self, state: AppState, pod: PodFacts, task: str, fs: reads.Fs) -> None:
        self.state = state
        self.path = PODS.item(state.config.namespace, pod.name, "log")
        self.alloc = pod.name
        self.node = pod.node
        self.task = task
        self.fs = fs
        self.service = _service(state)

    @property
    def split(self) -> bool:
        return bool(self.service.split_streams) and self.service.node_splits.get(self.node, True)

    async def detect(self) -> None:
        """Learns whether this read can be split: once per process whether kube-apiserver
        accepts `stream` (a 1-byte read), then once per node whether its kubelet honours
        it (the head of both streams: the same non-empty bytes mean it does not)."""
        if self.service.split_streams is None:
            try:
                await self._head("Stdout", 1)
            except KubeError as exc:
                if not _stream_refused(exc):
                    raise self._error(exc) from exc
                log.info("this cluster cannot split pod log streams: serving combined logs")
                self.service.split_streams = False
            else:
                self.service.split_streams = True
        if not self.service.split_streams or not self.node or self.node in self.service.node_splits:
            return
        try:
            stdout, stderr = await asyncio.gather(
                self._head("Stdout", NODE_PROBE_BYTES), self._head("Stderr", NODE_PROBE_BYTES)
            )
        except KubeError as exc:
            raise self._error(exc) from exc
        if stdout or stderr:  # nothing written yet: nothing to learn (and nothing to mix)
            splits = stdout != stderr
            self.service.node_splits[self.node] = splits
            if not splits:
                log.info("node %s does not split pod log streams: combined logs", self.node)

    async def _head(self, stream: str, size: int) -> bytes:
        query = {"container": self.task, "stream": stream, "limitBytes": size}
        response = await self.state.kube.stream(self.path, query=query, timeout=30)
        try:
            return await response.read()
        finally:
            response.release()

    async def open(
        self, timeout: float, *, start: reads.TailStart | None = None, **query: Any
    ) -> aiohttp.ClientResponse:
        """One upstream read of the task's stream, from `start` when given."""
        params: dict[str, Any] = {"container": self.task, **query}
        if self.split:
            params["stream"] = "Stdout" if self.fs == "stdout" else "Stderr"
            if start is not None and start.since is not None:
                params["sinceTime"] = start.since
        elif start is not None and start.lines is not None:
            params["tailLines"] = start.lines
        return await self._get(params, timeout)

    async def combined_tail(self, lines: int) -> tuple[bytes, int]:
        """The first line and the line count of the combined log's last `lines` lines,
        timestamped: where a split stream's tail starts (`stream` refuses `tailLines`)."""
        params = {"container": self.task, "tailLines": lines, "timestamps": "true"}
        window = reads.TailWindow(0)
        first = b""
        async for chunk in _chunks(await self._get(params, READ_IDLE_SECONDS), follow=False):
            if len(first) < 256 and b"\n" not in first:
                first += chunk[:256]
            window.feed(chunk)
        return first, window.lines

    async def _get(self, params: dict[str, Any], timeout: float) -> aiohttp.ClientResponse:
        try:
            return await self.state.kube.stream(self.path, query=params, timeout=timeout)
        except KubeError as exc:
            raise self._error(exc) from exc

    def _error(self, exc: KubeError) -> Exception:
        if exc.status == 404:
            return ApiError(404, f"no allocation {self.alloc!r}")
        if exc.status == 400:
            # e.g. "container main is waiting to start": the task has no log yet.
            return ApiError(
                409, f"the log of {self.alloc}/{self.task} cannot be read now: {exc.message}"
            )
        return exc


def _stream_refused(exc: KubeError) -> bool:
    """kube-apiserver without PodLogsQuerySplitStreams: 422 `stream: Forbidden`."""
    if exc.status not in (400, 422) or not isinstance(exc.body, dict):
        return False
    causes = (exc.body.get("details") or {}).get("causes") or []
    return any(isinstance(c, dict) and c.get("field") == "stream" for c in causes)


async def _chunks(response: aiohttp.ClientResponse, follow: bool) -> AsyncIterator[bytes]:
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


async def _count_tail(
    upstream: _Upstream, offset: int, keep: int
) -> tuple[reads.TailWindow, reads.TailStart]:
    """Reads growing tails until one holds `offset` bytes or is the whole log.

    Returns the last window (holding its last `keep` bytes) and where it started.
    """
    lines = reads.first_tail_lines(offset)
    while True:
        if upstream.split:
            first, got_lines = await upstream.combined_tail(lines)
            whole = got_lines < lines
            start = reads.TailStart(since=None if whole else reads.since_time(first))
        else:
            start = reads.TailStart(lines=lines)
        window = reads.TailWindow(keep)
        async for chunk in _chunks(await upstream.open(READ_IDLE_SECONDS, start=start), False):
            window.feed(chunk)
        if upstream.split:
            # The suffix holds the stream's share of the combined tail: grow until enough.
            done = window.seen >= offset or start.since is None
            following = None if done else lines * 2
        else:
            following = reads.next_tail_lines(lines, window.lines, window.seen, offset)
        if following is None:
            return window, start
        lines = following


@router.get(
    "/fs/{alloc}/{task}/{fs}",
    dependencies=CAN_READ_LOG,
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"text/plain": {"schema": {"type": "string", "format": "binary"}}},
            "description": "The log bytes",
            "headers": {
                STREAM_HEADER: {
                    "description": "`combined` when stdout and stderr could not be split",
                    "schema": {"type": "string", "enum": ["combined", "stdout", "stderr"]},
                }
            },
        },
        **responses(404, 409),
    },
    summary="Read a task's log from a byte offset (origin start or end); follow streams",
)
async def read_log(
    alloc: str,
    task: str,
    fs: reads.Fs,
    state: StateDep,
    store: StoreDep,
    origin: Annotated[
        Literal["start", "end"],
        Query(description="`start` skips `offset` bytes; `end` returns the last `offset` bytes"),
    ] = "start",
    offset: Annotated[int, Query(ge=0, le=2**53, description="Bytes from the origin")] = 0,
    follow: Annotated[bool, Query(description="Keep streaming new bytes (chunked)")] = False,
) -> Response:
    pod = caravan_allocation(store, alloc, task)
    settings = state.runtime_settings
    max_bytes = settings.logs_max_read_bytes
    idle = settings.logs_follow_idle_timeout_seconds if follow else READ_IDLE_SECONDS
    upstream = _Upstream(state, pod, task, fs)
    await upstream.detect()
    follow_query: dict[str, Any] = {"follow": "true"} if follow else {}

    if origin == "start":
        part, limit = reads.start_slice(offset, max_bytes, follow)
        response = await upstream.open(idle, limitBytes=limit, **follow_query)
    else:
        if offset == 0 and not follow:
            return Response(b"", media_type="text/plain", headers=_headers(upstream))
        counted = 0  # follow from the end with offset 0: only what comes next
        start = reads.TailStart(lines=0)
        if offset or upstream.split:
            # Small tails are kept from the counting pass; larger ones (and followed
            # ones) are streamed by one more pass instead of being held in memory.
            keep = offset if offset <= max_bytes and not follow else 0
            window, start = await _count_tail(upstream, offset, keep)
            if keep:
                body = window.tail()[:max_bytes]
                return Response(body, media_type="text/plain", headers=_headers(upstream))
            counted = window.seen
        part = reads.end_slice(counted, offset, max_bytes, follow)
        response = await upstream.open(idle, start=start, **follow_query)
    return StreamingResponse(
        reads.sliced(_chunks(response, follow=follow), part),
        media_type="text/plain",
        headers=_headers(upstream),
    )


def _headers(upstream: _Upstream) -> dict[str, str]:
    return {STREAM_HEADER: upstream.fs if upstream.split else "combined"}


area = Area("logs", router)
