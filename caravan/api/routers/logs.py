"""Logs: the log definitions list, allocation meta, and log reads of allocations.

The HTTP face of caravan.services.logs."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, Field, StrictBool, StrictStr

from caravan.api import streams
from caravan.api.area import Area
from caravan.api.auth import authorize
from caravan.api.deps import LogsDep, WritesDep, configmap_access
from caravan.api.ids import AllocId, LogId, TaskName
from caravan.api.models import StrictModel, responses
from caravan.logs import reads

router = APIRouter(prefix="/v1/log", tags=["logs"])
CAN_READ_LIST = [Depends(configmap_access("get", lambda names: names.logs))]
CAN_WRITE_LIST = [Depends(configmap_access("update", lambda names: names.logs))]
CAN_LIST_PODS = [Depends(authorize("list", "pods"))]
CAN_READ_LOG = [Depends(authorize("get", "pods", subresource="log"))]

STREAM_HEADER = "X-Caravan-Log-Stream"


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


@router.get(
    "/logs",
    dependencies=CAN_READ_LIST,
    response_model=list[LogDefinitionModel],
    responses=responses(),
    summary="The log definitions",
)
async def get_logs(logs: LogsDep) -> list[dict[str, Any]]:
    return [e.to_json() for e in logs.definitions()]


@router.post(
    "/logs",
    dependencies=CAN_WRITE_LIST,
    response_model=list[LogDefinitionModel],
    responses=responses(422),
    summary="Replace the whole list of log definitions (ids unique)",
)
async def set_logs(
    body: list[LogDefinitionModel], logs: LogsDep, writes: WritesDep
) -> list[dict[str, Any]]:
    entries = await logs.set_definitions(writes, [item.model_dump() for item in body])
    return [e.to_json() for e in entries]


@router.get(
    "/meta/{name}",
    dependencies=CAN_LIST_PODS,
    response_model=list[LogMeta],
    responses=responses(404),
    summary="One entry per allocation of the log's job and task group",
)
async def get_meta(name: LogId, logs: LogsDep) -> list[dict[str, Any]]:
    return logs.meta(name)


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
        **responses(404, 409, 429),
    },
    summary="Read a task's log from a byte offset (origin start or end); follow streams",
)
async def read_log(
    request: Request,
    alloc: AllocId,
    task: TaskName,
    fs: reads.Fs,
    logs: LogsDep,
    origin: Annotated[
        reads.Origin,
        Query(description="`start` skips `offset` bytes; `end` returns the last `offset` bytes"),
    ] = "start",
    offset: Annotated[int, Query(ge=0, le=2**53, description="Bytes from the origin")] = 0,
    follow: Annotated[bool, Query(description="Keep streaming new bytes (chunked)")] = False,
) -> Response:
    answer = await logs.read(alloc, task, fs, origin, offset, follow)
    headers = {STREAM_HEADER: answer.stream}
    if isinstance(answer.body, bytes):
        return Response(answer.body, media_type="text/plain", headers=headers)
    body = answer.body
    if follow:
        # Ends when the caller may no longer read logs (api/streams.py).
        body = streams.stream(request, body, "get", "pods", subresource="log")
    return StreamingResponse(body, media_type="text/plain", headers=headers)


area = Area("logs", router)
