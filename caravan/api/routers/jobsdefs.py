"""Job definitions (Genvid SDK 1.30 `jobsdefs`): create, replace and delete jobs over HTTP.

The HTTP face of caravan.services.jobsdefs. A write that would change or delete a started
job answers 409 unless `force=true` (Genvid's "service running check").
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import BaseModel, Field, StrictBool, StrictStr, StringConstraints

from caravan.api.area import Area
from caravan.api.auth import authenticate, authorize, check_access
from caravan.api.deps import DefinitionsDep, WritesDep
from caravan.api.models import JsonInt, StrictModel, bounded_json_int, responses
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


def _bounded(low: int, high: int) -> Any:
    """An optional integer within [low, high] (null stays allowed)."""
    return bounded_json_int(low, high) | None


class RolloutPolicy(StrictModel):
    minHealthySeconds: _bounded(0, 3600) = Field(  # type: ignore[valid-type]
        default=None, description="Seconds a new allocation must stay ready (10)"
    )
    progressDeadlineSeconds: _bounded(1, 86400) = Field(  # type: ignore[valid-type]
        default=None, description="Seconds without progress: stalled (300)"
    )
    maxSurge: _bounded(0, 1000) = Field(  # type: ignore[valid-type]
        default=None, description="Allocations started above count (1)"
    )
    maxUnavailable: _bounded(0, 1000) = Field(  # type: ignore[valid-type]
        default=None, description="Allocations missing during a rollout (0)"
    )
    autoRevert: StrictBool | None = Field(
        default=None, description="Back to the last healthy version when stalled (false)"
    )


class TaskGroupDefinition(StrictModel):
    name: GroupName = Field(description="Task group name, unique in the job (a DNS label)")
    countInit: JsonInt = Field(default=1, ge=0, le=INT32_MAX, description="Count at start")
    countMax: JsonInt = Field(ge=0, le=INT32_MAX, description="Ceiling for updatecounts")
    template: dict[str, Any] = Field(description="The allocations' PodTemplateSpec")
    rollout: RolloutPolicy | None = Field(
        default=None, description="How a new version replaces the allocations (an extension)"
    )


class JobPlan(BaseModel):
    action: str = Field(description="create, replace, delete or unchanged")
    diff: str = Field(description="The unified diff of the definition")
    restartsAllocations: bool = Field(description="Running allocations would be replaced")


class Plan(BaseModel):
    jobs: dict[str, JobPlan] = Field(description="What the write would do, by job")


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
DryRunQuery = Annotated[
    bool,
    Query(
        alias="dryRun",
        description="Write nothing: answer each job's action and diff (the checks are real)",
    ),
]
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
    response_model_exclude_none=True,
    responses=responses(),
    summary="Every job's definition, by job name",
)
async def get_definitions(defs: DefinitionsDep) -> dict[str, JSON]:
    return defs.all()


@many.post(
    "",
    dependencies=CAN_LIST,
    response_model=Plan | dict[str, JobDefinition],
    response_model_exclude_none=True,
    responses=responses(409, 422),
    summary="Create or replace every job named; delete the jobs not named (dryRun: the plan)",
)
async def post_definitions(
    body: Definitions,
    request: Request,
    defs: DefinitionsDep,
    writes: WritesDep,
    force: ForceQuery = False,
    dry_run: DryRunQuery = False,
) -> JSON:
    named = {n: d.model_dump(exclude_none=True) for n, d in body.items()}
    if dry_run:
        return await defs.plan_all(named, _may(request))
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
    response_model_exclude_none=True,
    responses=responses(404),
    summary="One job's definition",
)
async def get_definition(job_id: JobIdPath, defs: DefinitionsDep) -> JSON:
    return defs.one(job_id)


@one.post(
    "/{job_id}",
    response_model=Plan | JobDefinition,
    response_model_exclude_none=True,
    responses=responses(409, 422),
    summary="Create or replace one job from its definition (dryRun: the plan)",
)
async def post_definition(
    job_id: JobIdPath,
    body: JobDefinition,
    request: Request,
    defs: DefinitionsDep,
    writes: WritesDep,
    force: ForceQuery = False,
    dry_run: DryRunQuery = False,
) -> JSON:
    await authenticate(request)  # before anything is read on the caller's behalf
    definition = body.model_dump(exclude_none=True)
    if dry_run:
        return await defs.plan_one(job_id, definition, _may(request))
    return await defs.put_one(writes, job_id, definition, force, _may(request))


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
