"""Jobs: list with long polling, one job, start, stop (one or all), updatecounts.

The HTTP face of caravan.services.jobs."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Response
from pydantic import BaseModel, Field, StrictStr

from caravan.api.area import Area
from caravan.api.auth import authorize
from caravan.api.deps import (
    ActivityDep,
    CallerNameDep,
    JobsDep,
    RestartsDep,
    VersionsDep,
    WritesDep,
)
from caravan.api.ids import JobId
from caravan.api.longpoll import LongPollDep
from caravan.api.models import JsonInt, StrictModel, responses
from caravan.jobs.shapes import Activity, JobView
from caravan.labels import GROUP

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])
# Genvid 1.30's path for one job's summary.
summary_router = APIRouter(prefix="/v1/job", tags=["jobs"])
CAN_LIST = [Depends(authorize("list", "jobs", group=GROUP))]
CAN_GET = [Depends(authorize("get", "jobs", group=GROUP))]
CAN_PATCH = [Depends(authorize("patch", "jobs", group=GROUP))]
# Versions are ControllerRevisions (group apps); a revert updates the Job's definition.
CAN_GET_VERSIONS = [Depends(authorize("get", "controllerrevisions", group="apps"))]
CAN_UPDATE = [Depends(authorize("update", "jobs", group=GROUP))]


class UpdateCounts(StrictModel):
    jobID: StrictStr = Field(min_length=1, description="The job id")
    taskGroup: StrictStr = Field(min_length=1, description="The task group id")
    count: JsonInt = Field(description="The count delta; 0 stops the task group.")


class VersionSummary(BaseModel):
    version: int = Field(description="The version number (the ControllerRevision's revision)")
    time: str = Field(description="When it became a version (RFC 3339)")
    change: str = Field(description="What it changed, in one line")


class VersionDetail(BaseModel):
    version: int = Field(description="The version number")
    time: str = Field(description="When it became a version (RFC 3339)")
    definition: dict[str, Any] = Field(description="The job's definition (the jobsdefs shape)")


class Revert(StrictModel):
    version: JsonInt = Field(ge=1, description="The version whose definition becomes current")


VersionNumber = Annotated[int, Path(ge=1, le=2**63 - 1, description="The version number")]


@router.get(
    "",
    dependencies=CAN_LIST,
    response_model=list[JobView],
    summary="The jobs, sorted by name; blocks while `waitIndex` is current",
    responses={
        200: {"headers": {"waitIndex": {"schema": {"type": "integer"}}}},
        **responses(),
    },
)
async def list_jobs(
    jobs: JobsDep,
    poll: LongPollDep,
) -> Response:
    index, timeout = poll.index, poll.timeout(*jobs.wait_bounds())
    body, now = await jobs.listing(index, timeout)
    return Response(body, media_type="application/json", headers={"waitIndex": str(now)})


@router.get(
    "/{job_id}",
    dependencies=CAN_GET,
    response_model=JobView,
    responses=responses(404),
    summary="One job",
)
async def get_job(job_id: JobId, jobs: JobsDep) -> Response:
    return Response(jobs.view(job_id), media_type="application/json")


@summary_router.get(
    "/{job_id}/summary",
    dependencies=CAN_GET,
    response_model=JobView,
    responses=responses(404),
    summary="One job (the Genvid 1.30 path of GET /v1/jobs/{job_id})",
)
async def get_job_summary(job_id: JobId, jobs: JobsDep) -> Response:
    return await get_job(job_id, jobs)


@router.post(
    "/start",
    dependencies=CAN_LIST + CAN_PATCH,
    response_model=list[JobView],
    responses=responses(),
    summary='"Start all": starts every autostart job, the jobs depended on first',
)
async def start_all(jobs: JobsDep, writes: WritesDep, who: CallerNameDep) -> list[JobView]:
    return await jobs.start_all(writes, who)


@router.post(
    "/stop",
    dependencies=CAN_LIST + CAN_PATCH,
    response_model=list[JobView],
    responses=responses(),
    summary='"Stop all": stops every job, each before the jobs it depends on',
)
async def stop_all(jobs: JobsDep, writes: WritesDep, who: CallerNameDep) -> list[JobView]:
    return await jobs.stop_all(writes, who)


@router.post(
    "/start/{job_id}",
    dependencies=CAN_PATCH,
    response_model=JobView,
    responses=responses(404),
    summary="Start a job",
)
async def start_job(job_id: JobId, jobs: JobsDep, writes: WritesDep, who: CallerNameDep) -> JobView:
    return await jobs.start(writes, job_id, who)


@router.post(
    "/stop/{job_id}",
    dependencies=CAN_PATCH,
    response_model=JobView,
    responses=responses(404),
    summary="Stop a job",
)
async def stop_job(job_id: JobId, jobs: JobsDep, writes: WritesDep, who: CallerNameDep) -> JobView:
    return await jobs.stop(writes, job_id, who)


@router.post(
    "/updatecounts",
    dependencies=CAN_PATCH,
    response_model=JobView,
    responses=responses(404, 409),
    summary="Add a delta to a task group's count, clamped to [0, countMax]; 0 stops the group",
)
async def update_counts(
    body: UpdateCounts, jobs: JobsDep, writes: WritesDep, who: CallerNameDep
) -> JobView:
    return await jobs.update_counts(writes, body.jobID, body.taskGroup, body.count, who)


class RestartTarget(StrictModel):
    taskGroup: StrictStr | None = Field(
        default=None, min_length=1, description="Only this task group (default: every one)"
    )


@router.post(
    "/restart/{job_id}",
    dependencies=CAN_PATCH,
    response_model=JobView,
    responses=responses(404, 409),
    summary="Replace every allocation of a job (or of one task group), one by one",
)
async def restart_job(
    job_id: JobId,
    restarts: RestartsDep,
    writes: WritesDep,
    who: CallerNameDep,
    body: Annotated[RestartTarget | None, Body()] = None,
) -> JobView:
    group = body.taskGroup if body is not None else None
    return await restarts.restart_job(writes, job_id, group, who)


@router.get(
    "/{job_id}/activity",
    dependencies=CAN_GET,
    response_model=Activity,
    summary="The job's recent Kubernetes Events, oldest first; blocks while `waitIndex` is current",
    responses={
        200: {"headers": {"waitIndex": {"schema": {"type": "integer"}}}},
        **responses(404),
    },
)
async def job_activity(
    job_id: JobId,
    jobs: JobsDep,
    activity: ActivityDep,
    poll: LongPollDep,
) -> Response:
    index, timeout = poll.index, poll.timeout(*jobs.wait_bounds())
    items, now = await activity.read(job_id, index, timeout)
    body = json.dumps(items, separators=(",", ":"))
    return Response(body, media_type="application/json", headers={"waitIndex": str(now)})


@router.get(
    "/{job_id}/versions",
    dependencies=CAN_GET_VERSIONS,
    response_model=list[VersionSummary],
    responses=responses(404),
    summary="The versions of a job's definition, newest (current) first",
)
async def list_versions(job_id: JobId, versions: VersionsDep) -> list[dict[str, Any]]:
    return await versions.listing(job_id)


@router.get(
    "/{job_id}/versions/{version}",
    dependencies=CAN_GET_VERSIONS,
    response_model=VersionDetail,
    responses=responses(404),
    summary="One version of a job's definition",
)
async def get_version(
    job_id: JobId, version: VersionNumber, versions: VersionsDep
) -> dict[str, Any]:
    return await versions.one(job_id, version)


@router.post(
    "/{job_id}/revert",
    dependencies=CAN_UPDATE,
    response_model=JobView,
    responses=responses(404, 422),
    summary="Make a version's definition current again (a new version; counts are kept)",
)
async def revert(
    job_id: JobId, body: Revert, versions: VersionsDep, jobs: JobsDep, writes: WritesDep
) -> Response:
    await versions.revert(writes, job_id, body.version)
    return Response(jobs.view(job_id), media_type="application/json")


area_router = APIRouter()
area_router.include_router(router)
area_router.include_router(summary_router)
area = Area("jobs", area_router)
