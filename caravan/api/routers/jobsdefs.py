"""Job definitions (Genvid SDK 1.30 `jobsdefs`): create, replace and delete jobs over HTTP.

The HTTP face of caravan.services.jobsdefs. A write that would change or delete a started
job answers 409 unless `force=true` (Genvid's "service running check").
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import Field, StrictBool, StrictStr, StringConstraints

from caravan.api.area import Area
from caravan.api.auth import authenticate, authorize, check_access
from caravan.api.deps import DefinitionsDep, WritesDep
from caravan.api.models import JsonInt, StrictModel, responses
from caravan.labels import GROUP
from caravan.services.jobsdefs import May

NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
JobName = Annotated[str, StringConstraints(pattern=NAME_PATTERN, min_length=1, max_length=63)]
GroupName = Annotated[str, StringConstraints(pattern=NAME_PATTERN, min_length=1, max_length=40)]
INT32_MAX = 2**31 - 1

CAN_LIST = [Depends(authorize("list", "jobs", group=GROUP))]
CAN_GET = [Depends(authorize("get", "jobs", group=GROUP))]

many = APIRouter(prefix="/v1/jobsdefs", tags=["job definitions"])
one = APIRouter(prefix="/v1/jobsdef", tags=["job definitions"])


class TaskGroupDefinition(StrictModel):
    name: GroupName = Field(description="Task group name, unique in the job (a DNS label)")
    countInit: JsonInt = Field(default=1, ge=0, le=INT32_MAX, description="Count at start")
    countMax: JsonInt = Field(ge=0, le=INT32_MAX, description="Ceiling for updatecounts")
    template: dict[str, Any] = Field(description="The allocations' PodTemplateSpec")


class JobTemplate(StrictModel):
    taskGroups: list[TaskGroupDefinition] = Field(min_length=1, max_length=64)


class JobDefinition(StrictModel):
    autostart: StrictBool = Field(default=True, description='Started by "start all"')
    byCluster: StrictBool = Field(default=False, description="Must be false (one cluster)")
    clusterCategories: list[StrictStr] = Field(
        default_factory=list, description="Must be empty (one cluster)"
    )
    dependencies: list[JobName] = Field(
        default_factory=list, max_length=64, description="Jobs started before this one"
    )
    template: JobTemplate


JSON = dict[str, Any]
Definitions = dict[JobName, JobDefinition]
ForceQuery = Annotated[
    bool, Query(description="Replace or delete started jobs too (skip the running check)")
]
JobIdPath = Annotated[str, Path(pattern=NAME_PATTERN, max_length=63, description="The job id")]


def _may(request: Request) -> May:
    """The caller's right to each verb a write turns out to need."""

    async def may(verb: str) -> object:
        return await check_access(request, verb, "jobs", group=GROUP)

    return may


@many.get(
    "",
    dependencies=CAN_LIST,
    response_model=dict[str, JobDefinition],
    responses=responses(),
    summary="Every job's definition, by job name",
)
async def get_definitions(defs: DefinitionsDep) -> dict[str, JSON]:
    return defs.all()


@many.post(
    "",
    dependencies=CAN_LIST,
    response_model=dict[str, JobDefinition],
    responses=responses(409, 422),
    summary="Create or replace every job named; delete the jobs not named",
)
async def post_definitions(
    body: Definitions,
    request: Request,
    defs: DefinitionsDep,
    writes: WritesDep,
    force: ForceQuery = False,
) -> dict[str, JSON]:
    named = {n: d.model_dump() for n, d in body.items()}
    return await defs.put_all(writes, named, force, _may(request))


@many.delete(
    "",
    dependencies=CAN_LIST,
    status_code=204,
    response_class=Response,
    responses={204: {"description": "Deleted"}, **responses(409)},
    summary="Delete every job definition (every job)",
)
async def delete_definitions(
    request: Request, defs: DefinitionsDep, writes: WritesDep, force: ForceQuery = False
) -> Response:
    await defs.delete_all(writes, force, _may(request))
    return Response(status_code=204)


@one.get(
    "/{job_id}",
    dependencies=CAN_GET,
    response_model=JobDefinition,
    responses=responses(404),
    summary="One job's definition",
)
async def get_definition(job_id: JobIdPath, defs: DefinitionsDep) -> JSON:
    return defs.one(job_id)


@one.post(
    "/{job_id}",
    response_model=JobDefinition,
    responses=responses(409, 422),
    summary="Create or replace one job from its definition",
)
async def post_definition(
    job_id: JobIdPath,
    body: JobDefinition,
    request: Request,
    defs: DefinitionsDep,
    writes: WritesDep,
    force: ForceQuery = False,
) -> JSON:
    await authenticate(request)  # before anything is read on the caller's behalf
    return await defs.put_one(writes, job_id, body.model_dump(), force, _may(request))


@one.delete(
    "/{job_id}",
    status_code=204,
    response_class=Response,
    responses={204: {"description": "Deleted"}, **responses(404, 409)},
    summary="Delete one job",
)
async def delete_definition(
    job_id: JobIdPath,
    request: Request,
    defs: DefinitionsDep,
    writes: WritesDep,
    force: ForceQuery = False,
) -> Response:
    await check_access(request, "delete", "jobs", group=GROUP)
    await defs.delete_one(writes, job_id, force)
    return Response(status_code=204)


router = APIRouter()
router.include_router(many)
router.include_router(one)
area = Area("jobsdefs", router)
