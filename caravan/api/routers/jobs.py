"""Jobs: list with long polling, one job, start, stop (one or all), updatecounts."""

from __future__ import annotations

import json
import random
import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Response
from pydantic import BaseModel, Field, StrictStr

from caravan.api.area import Area
from caravan.api.auth import authorize
from caravan.api.deps import StateDep, StoreDep, WritesDep
from caravan.api.errors import ApiError
from caravan.api.ids import JobId
from caravan.api.models import JsonInt, StrictModel, responses
from caravan.api.writes import Writes
from caravan.jobs import counts
from caravan.jobs.order import start_order, stop_order
from caravan.jobs.spec import JobSpec, read_job, rescaled
from caravan.jobs.view import job_view
from caravan.kube.client import JOBS
from caravan.kube.errors import NotFound
from caravan.kube.rmw import Mutation
from caravan.labels import GROUP
from caravan.store.store import KIND_JOB

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])
# Genvid 1.30's path for one job's summary.
summary_router = APIRouter(prefix="/v1/job", tags=["jobs"])
CAN_LIST = [Depends(authorize("list", "jobs", group=GROUP))]
CAN_GET = [Depends(authorize("get", "jobs", group=GROUP))]
CAN_PATCH = [Depends(authorize("patch", "jobs", group=GROUP))]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
INDEX_PATTERN = r"^[0-9]{1,18}$"
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


class TaskGroupSummary(BaseModel):
    queued: int
    complete: int
    failed: int
    running: int
    starting: int
    lost: int


class TaskGroupView(BaseModel):
    name: str
    count: int = Field(description="The desired count now (0 when the job is stopped).")
    countInit: int = Field(description="The count the group gets when its job starts.")
    countMax: int = Field(description="The ceiling for updatecounts.")
    summary: TaskGroupSummary


class JobView(BaseModel):
    name: str
    status: str = Field(description="pending, running or dead")
    autostart: bool = Field(description='Started by "start all" (POST /v1/jobs/start).')
    byCluster: bool = Field(
        description="Started once per cluster; always false (one installation, one cluster)."
    )
    taskGroups: list[TaskGroupView]


class UpdateCounts(StrictModel):
    jobID: StrictStr = Field(min_length=1, description="The job id")
    taskGroup: StrictStr = Field(min_length=1, description="The task group id")
    count: JsonInt = Field(description="The count delta; 0 stops the task group.")


def parse_wait(text: str | None, default: float, maximum: float) -> float:
    """Nomad-style durations (`30s`, `5m`, `250ms`, bare seconds), capped at `maximum`."""
    if text is None or text == "":
        return min(default, maximum)
    match = _DURATION.match(text)
    if not match:
        raise ApiError(400, f"invalid wait {text!r}: use a duration such as 30s or 5m")
    seconds = float(match.group(1)) * _UNITS[match.group(2)]
    return min(seconds, maximum)


def parse_index(header: str | None, query: str | None) -> int | None:
    raw = header if header is not None else query
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, f"invalid waitIndex {raw!r}: expected a non-negative integer") from None
    if value < 0:
        raise ApiError(400, f"invalid waitIndex {raw!r}: expected a non-negative integer")
    return value


def _wait_bounds(state: StateDep) -> tuple[float, float]:
    """The long-poll bounds of the current settings (`jobs.longPoll`)."""
    runtime = state.runtime_settings
    return float(runtime.long_poll_default_wait_seconds), float(runtime.long_poll_max_wait_seconds)


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
    state: StateDep,
    store: StoreDep,
    wait_index_header: Annotated[
        str | None,
        Header(alias="waitIndex", pattern=INDEX_PATTERN, description="Block while current"),
    ] = None,
    wait_index_query: Annotated[
        str | None, Query(alias="waitIndex", pattern=INDEX_PATTERN, description="As the header")
    ] = None,
    wait: Annotated[
        str | None,
        Query(
            pattern=_DURATION.pattern,
            description="Longest wait, e.g. 30s or 250ms (default 5m, max 10m)",
        ),
    ] = None,
) -> Response:
    index = parse_index(wait_index_header, wait_index_query)
    default_wait, max_wait = _wait_bounds(state)
    timeout = parse_wait(wait, default_wait, max_wait)
    if index is not None and index == store.jobs_waiters.index:
        # Jitter (wait/16) spreads the wake-ups of many clients that timed out together.
        timeout += random.uniform(0, timeout / 16)
        await store.jobs_waiters.wait_beyond(index, timeout)
    body = store.jobs_json
    return Response(
        body, media_type="application/json", headers={"waitIndex": str(store.jobs_waiters.index)}
    )


@router.get(
    "/{job_id}",
    dependencies=CAN_GET,
    response_model=JobView,
    responses=responses(404),
    summary="One job",
)
async def get_job(job_id: JobId, store: StoreDep) -> Response:
    body = store.job_json(job_id)
    if body is None:
        raise ApiError(404, f"no job {job_id!r}")
    return Response(body, media_type="application/json")


@summary_router.get(
    "/{job_id}/summary",
    dependencies=CAN_GET,
    response_model=JobView,
    responses=responses(404),
    summary="One job (the Genvid 1.30 path of GET /v1/jobs/{job_id})",
)
async def get_job_summary(job_id: JobId, store: StoreDep) -> Response:
    return await get_job(job_id, store)


async def _write(writes: Writes, job_id: str, mutate: Mutation) -> dict[str, Any]:
    store = writes.state.store
    changed: list[JobSpec] = []  # the version the stored write changed (the last attempt)

    def guarded(body: dict[str, Any]) -> dict[str, Any]:
        try:
            updated = mutate(body)
        except counts.CountError as exc:
            raise ApiError(exc.status, exc.message) from exc
        changed[:] = [read_job(body)]
        return updated

    async def write_through(stored: dict[str, Any]) -> None:
        # The new replicas at once, rather than after the operator's watch of the Job
        # and its pass (caravan.kube.scaler).
        if changed:
            meta = stored["metadata"]
            replicas = rescaled(changed[0], read_job(stored))
            await writes.state.scaler.scale(
                replicas, str(meta.get("uid", "")), int(meta.get("generation") or 0)
            )

    try:
        stored = await writes.spec(
            KIND_JOB,
            JOBS.item(writes.namespace, job_id),
            guarded,
            cached=store.job_bodies.get(job_id),
            alongside=write_through,
        )
    except NotFound as exc:
        raise ApiError(404, f"no job {job_id!r}") from exc
    spec = read_job(stored)
    pods = {g.name: store.pods_of(job_id, g.name) for g in spec.task_groups}
    return job_view(spec, pods)


async def _write_all(writes: Writes, order: list[str], mutate: Mutation) -> list[dict[str, Any]]:
    """Applies `mutate` to each job in `order`, one after the other; every job's view."""
    state = writes.state
    written: dict[str, dict[str, Any]] = {}
    for name in order:
        try:
            written[name] = await _write(writes, name, mutate)
        except ApiError as exc:
            if exc.status != 404:  # deleted meanwhile: nothing to start or stop
                raise
    views = {name: json.loads(state.store.job_json(name) or b"null") for name in state.store.jobs}
    views.update(written)
    return [view for _, view in sorted(views.items()) if view is not None]


@router.post(
    "/start",
    dependencies=CAN_LIST + CAN_PATCH,
    response_model=list[JobView],
    responses=responses(),
    summary='"Start all": starts every autostart job, the jobs depended on first',
)
async def start_all(state: StateDep, writes: WritesDep) -> list[dict[str, Any]]:
    autostart = {n: spec.dependencies for n, spec in state.store.jobs.items() if spec.autostart}
    return await _write_all(writes, start_order(autostart), counts.started)


@router.post(
    "/stop",
    dependencies=CAN_LIST + CAN_PATCH,
    response_model=list[JobView],
    responses=responses(),
    summary='"Stop all": stops every job, each before the jobs it depends on',
)
async def stop_all(state: StateDep, writes: WritesDep) -> list[dict[str, Any]]:
    every = {n: spec.dependencies for n, spec in state.store.jobs.items()}
    return await _write_all(writes, stop_order(every), counts.stopped)


@router.post(
    "/start/{job_id}",
    dependencies=CAN_PATCH,
    response_model=JobView,
    responses=responses(404),
    summary="Start a job",
)
async def start_job(job_id: JobId, writes: WritesDep) -> dict[str, Any]:
    return await _write(writes, job_id, counts.started)


@router.post(
    "/stop/{job_id}",
    dependencies=CAN_PATCH,
    response_model=JobView,
    responses=responses(404),
    summary="Stop a job",
)
async def stop_job(job_id: JobId, writes: WritesDep) -> dict[str, Any]:
    return await _write(writes, job_id, counts.stopped)


@router.post(
    "/updatecounts",
    dependencies=CAN_PATCH,
    response_model=JobView,
    responses=responses(404, 409),
    summary="Add a delta to a task group's count, clamped to [0, countMax]; 0 stops the group",
)
async def update_counts(body: UpdateCounts, writes: WritesDep) -> dict[str, Any]:
    return await _write(
        writes, body.jobID, lambda job: counts.with_count_delta(job, body.taskGroup, body.count)
    )


area_router = APIRouter()
area_router.include_router(router)
area_router.include_router(summary_router)
area = Area("jobs", area_router)
