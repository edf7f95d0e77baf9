"""Job definitions (Genvid SDK 1.30 `jobsdefs`): create, replace and delete jobs over HTTP.

A definition is a Job resource seen through Genvid's shape (caravan.jobs.definitions);
jobs made with kubectl are definitions too. A write that would change or delete a started
job answers 409 unless `force=true` (Genvid's "service running check").
"""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import Field, StrictBool, StrictInt, StrictStr, StringConstraints

from caravan.api.area import Area
from caravan.api.auth import authorize, check_access
from caravan.api.deps import StateDep
from caravan.api.errors import ApiError
from caravan.api.models import StrictModel, responses
from caravan.api.state import AppState
from caravan.jobs import definitions
from caravan.kube.client import DEPLOYMENTS, JOBS, JSON, KubeError
from caravan.kube.rmw import read_modify_write
from caravan.labels import GROUP

NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
JobName = Annotated[str, StringConstraints(pattern=NAME_PATTERN, min_length=1, max_length=63)]
GroupName = Annotated[str, StringConstraints(pattern=NAME_PATTERN, min_length=1, max_length=40)]
INT32_MAX = 2**31 - 1
CATCH_UP_SECONDS = 2.0

CAN_LIST = [Depends(authorize("list", "jobs", group=GROUP))]
CAN_GET = [Depends(authorize("get", "jobs", group=GROUP))]

many = APIRouter(prefix="/v1/jobsdefs", tags=["job definitions"])
one = APIRouter(prefix="/v1/jobsdef", tags=["job definitions"])


class TaskGroupDefinition(StrictModel):
    name: GroupName = Field(description="Task group name, unique in the job (a DNS label)")
    countInit: StrictInt = Field(default=1, ge=0, le=INT32_MAX, description="Count at start")
    countMax: StrictInt = Field(ge=0, le=INT32_MAX, description="Ceiling for updatecounts")
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


Definitions = dict[JobName, JobDefinition]
ForceQuery = Annotated[
    bool, Query(description="Replace or delete started jobs too (skip the running check)")
]
JobIdPath = Annotated[str, Path(pattern=NAME_PATTERN, max_length=63, description="The job id")]


def _bodies(state: AppState) -> dict[str, JSON]:
    return {n: b for n, b in state.store.job_bodies.items() if definitions.defined(b)}


def _all_definitions(state: AppState) -> dict[str, JSON]:
    return {n: definitions.definition_of(b) for n, b in sorted(_bodies(state).items())}


def _refuse_invalid(named: dict[str, JSON], others: dict[str, JSON]) -> None:
    """422 with every problem of `named` (dependency cycles counted with `others`)."""
    found = [p for n, d in named.items() for p in definitions.problems(n, d, n)]
    graph = {n: list(d.get("dependencies") or []) for n, d in {**others, **named}.items()}
    cycle = definitions.cycle_problem(graph)
    if cycle is not None:
        found.append(cycle)
    if found:
        count = len(found)
        raise ApiError(
            422,
            f"the job definitions are invalid ({count} error{'s' if count != 1 else ''}): "
            + "; ".join(f"{p.field}: {p.message}" for p in found),
            [p.to_json() for p in found],
        )


def _refuse_running(names: list[str], what: str) -> None:
    if names:
        listed = ", ".join(repr(n) for n in sorted(names))
        raise ApiError(
            409,
            f"would {what} started job{'s' if len(names) != 1 else ''} {listed}: stop "
            "them first, or send force=true",
        )


async def _refuse_bad_templates(state: AppState, named: dict[str, JSON]) -> None:
    """422 unless Kubernetes accepts every group's pod template (server-side dry runs)."""
    found: list[definitions.Problem] = []
    collection = DEPLOYMENTS.collection(state.config.namespace)
    for name, definition in sorted(named.items()):
        for i, group in enumerate(definition["template"]["taskGroups"]):
            trial = definitions.trial_deployment(name, group)
            try:
                await state.kube.request(
                    "POST",
                    collection,
                    query={"dryRun": "All"},
                    body=trial,
                    content_type="application/json",
                )
            except KubeError as exc:
                if exc.status not in (400, 422):
                    raise
                where = f"{name}.template.taskGroups[{i}].template"
                found.append(definitions.Problem(where, exc.message))
    if found:
        raise ApiError(
            422,
            "Kubernetes refuses the pod template: "
            + "; ".join(f"{p.field}: {p.message}" for p in found),
            [p.to_json() for p in found],
        )


async def _until_seen(state: AppState, name: str, version: str | None) -> None:
    """Lets the watch catch up, so a read right after a write shows it (None: deleted)."""
    # The store has no per-Job signal to wait on; a short poll is cheap and bounded.
    deadline = time.monotonic() + CATCH_UP_SECONDS
    while time.monotonic() < deadline:
        body = state.store.job_bodies.get(name)
        if version is None:
            if body is None or not definitions.defined(body):
                return
        elif body is not None and body.get("metadata", {}).get("resourceVersion") == version:
            return
        await asyncio.sleep(0.01)


async def _put(state: AppState, name: str, definition: JSON, force: bool) -> JSON:
    """Creates or replaces one job from its definition; re-checks on every fresh read."""
    namespace = state.config.namespace

    def mutate(current: JSON) -> JSON:
        if not definitions.defined(current):
            raise ApiError(409, f"job {name!r} is being deleted; try again once it is gone")
        updated = definitions.with_definition(current, definition)
        if (
            not force
            and definitions.is_running(current)
            and definitions.changes_what_runs(current, updated)
        ):
            _refuse_running([name], "replace")
        return updated

    stored = await read_modify_write(
        state.kube,
        JOBS.item(namespace, name),
        mutate,
        create=lambda: definitions.new_job(name),
        collection_path=JOBS.collection(namespace),
        cached=state.store.job_bodies.get(name),
    )
    await _until_seen(state, name, stored.get("metadata", {}).get("resourceVersion"))
    return stored


async def _delete(state: AppState, name: str, force: bool) -> None:
    """Deletes the job as it is now: read afresh (the running check decides on it), then
    deleted with its uid as precondition, so a job recreated meanwhile is left alone.

    Not its resourceVersion: the operator's status writes move it all the time."""
    body = await _fresh(state, name)
    if body is None:
        return
    if not force and definitions.is_running(body):
        _refuse_running([name], "delete")
    options = {
        "apiVersion": "v1",
        "kind": "DeleteOptions",
        "preconditions": {"uid": (body.get("metadata") or {}).get("uid")},
    }
    try:
        await state.kube.request(
            "DELETE",
            JOBS.item(state.config.namespace, name),
            body=options,
            content_type="application/json",
        )
    except KubeError as exc:
        if exc.status == 404:
            return
        if exc.status == 409:
            raise ApiError(409, f"job {name!r} was replaced meanwhile; try again") from exc
        raise
    await _until_seen(state, name, None)


async def _listed(state: AppState) -> dict[str, JSON]:
    """Every job definition as the apiserver has it now: writes decide on this, not on
    the store, which may not have seen a write that just answered."""
    listed = await state.kube.list_items(JOBS.collection(state.config.namespace))
    return {
        str(b["metadata"]["name"]): b for b in listed.get("items") or [] if definitions.defined(b)
    }


async def _fresh(state: AppState, name: str) -> JSON | None:
    try:
        body = await state.kube.get(JOBS.item(state.config.namespace, name))
    except KubeError as exc:
        if exc.status == 404:
            return None
        raise
    return body if definitions.defined(body) else None


@many.get(
    "",
    dependencies=CAN_LIST,
    response_model=dict[str, JobDefinition],
    responses=responses(),
    summary="Every job's definition, by job name",
)
async def get_definitions(state: StateDep) -> dict[str, JSON]:
    return _all_definitions(state)


@many.post(
    "",
    dependencies=CAN_LIST,
    response_model=dict[str, JobDefinition],
    responses=responses(409, 422),
    summary="Create or replace every job named; delete the jobs not named",
)
async def post_definitions(
    body: Definitions, request: Request, state: StateDep, force: ForceQuery = False
) -> dict[str, JSON]:
    named = {n: d.model_dump() for n, d in body.items()}
    current = await _listed(state)
    _refuse_invalid(named, {})
    creates = [n for n in named if n not in current]
    after = {n: definitions.with_definition(current[n], named[n]) for n in named if n in current}
    replaces = [n for n, b in after.items() if definitions.changes_definition(current[n], b)]
    deletes = [n for n in current if n not in named]
    for verb, names in (("create", creates), ("update", replaces), ("delete", deletes)):
        if names:
            await check_access(request, verb, "jobs", group=GROUP)
    if not force:
        started = [
            n
            for n in [*deletes, *replaces]
            if definitions.is_running(current[n])
            and (n in deletes or definitions.changes_what_runs(current[n], after[n]))
        ]
        _refuse_running(started, "replace or delete")
    await _refuse_bad_templates(state, {n: named[n] for n in creates + replaces})
    for name in sorted(creates + replaces):
        await _put(state, name, named[name], force)
    for name in sorted(deletes):
        await _delete(state, name, force)
    return _all_definitions(state)


@many.delete(
    "",
    dependencies=CAN_LIST,
    status_code=204,
    response_class=Response,
    responses={204: {"description": "Deleted"}, **responses(409)},
    summary="Delete every job definition (every job)",
)
async def delete_definitions(
    request: Request, state: StateDep, force: ForceQuery = False
) -> Response:
    current = await _listed(state)
    if current:
        await check_access(request, "delete", "jobs", group=GROUP)
    if not force:
        _refuse_running([n for n, b in current.items() if definitions.is_running(b)], "delete")
    for name in sorted(current):
        await _delete(state, name, force)
    return Response(status_code=204)


@one.get(
    "/{job_id}",
    dependencies=CAN_GET,
    response_model=JobDefinition,
    responses=responses(404),
    summary="One job's definition",
)
async def get_definition(job_id: JobIdPath, state: StateDep) -> JSON:
    body = _bodies(state).get(job_id)
    if body is None:
        raise ApiError(404, f"no job {job_id!r}")
    return definitions.definition_of(body)


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
    state: StateDep,
    force: ForceQuery = False,
) -> JSON:
    # Creating and updating are distinct rights in RBAC; ask for the one it will be.
    verb = "update" if job_id in state.store.job_bodies else "create"
    await check_access(request, verb, "jobs", group=GROUP)
    definition = body.model_dump()
    others = {n: definitions.definition_of(b) for n, b in _bodies(state).items() if n != job_id}
    _refuse_invalid({job_id: definition}, others)
    await _refuse_bad_templates(state, {job_id: definition})
    stored = await _put(state, job_id, definition, force)
    return definitions.definition_of(stored)


@one.delete(
    "/{job_id}",
    status_code=204,
    response_class=Response,
    responses={204: {"description": "Deleted"}, **responses(404, 409)},
    summary="Delete one job",
)
async def delete_definition(
    job_id: JobIdPath, request: Request, state: StateDep, force: ForceQuery = False
) -> Response:
    await check_access(request, "delete", "jobs", group=GROUP)
    existing = await _fresh(state, job_id)
    if existing is None:
        raise ApiError(404, f"no job {job_id!r}")
    await _delete(state, job_id, force)
    return Response(status_code=204)


router = APIRouter()
router.include_router(many)
router.include_router(one)
area = Area("jobsdefs", router)
