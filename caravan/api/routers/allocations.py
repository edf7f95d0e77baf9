"""`GET /v1/jobs/{job_id}/allocations`: a job's pods with status, node, age, restarts and
why they do not run; `POST /v1/allocations/{alloc_id}/restart` replaces one.

An extension for the UI's job detail view (the Genvid API has no route for a job's
allocations with these facts). caravan.services.jobs lists the job's pods from the API
server: the store keeps only what the jobs view needs, and this view is read one job at
a time.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends

from caravan.api.area import Area
from caravan.api.auth import authorize
from caravan.api.deps import CallerNameDep, JobsDep, RestartsDep, WritesDep
from caravan.api.ids import AllocId
from caravan.api.models import responses
from caravan.jobs.shapes import AllocationView, JobView

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])


@router.get(
    "/{job_id}/allocations",
    dependencies=[Depends(authorize("list", "pods"))],
    response_model=list[AllocationView],
    responses=responses(404),
    summary="The job's allocations (pods) with status, node, age and restarts",
)
async def list_allocations(job_id: str, jobs: JobsDep) -> list[AllocationView]:
    return await jobs.allocations(job_id)


restart_router = APIRouter(prefix="/v1/allocations", tags=["jobs"])


@restart_router.post(
    "/{alloc_id}/restart",
    dependencies=[Depends(authorize("delete", "pods"))],
    response_model=JobView,
    responses=responses(404),
    summary="Replace one allocation: its pod is deleted and its task group makes a new one",
)
async def restart_allocation(
    alloc_id: AllocId, restarts: RestartsDep, writes: WritesDep, who: CallerNameDep
) -> JobView:
    return await restarts.restart_allocation(writes, alloc_id, who)


area_router = APIRouter()
area_router.include_router(router)
area_router.include_router(restart_router)
area = Area("allocations", area_router)
