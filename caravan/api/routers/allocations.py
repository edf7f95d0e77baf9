"""`GET /v1/jobs/{job_id}/allocations`: a job's pods with status, node, age and restarts.

An extension for the UI's job detail view (the Genvid API has no route for a job's
allocations with these facts). caravan.services.jobs lists the job's pods from the API
server: the store keeps only what the jobs view needs, and this view is read one job at
a time.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from caravan.api.area import Area
from caravan.api.auth import authorize
from caravan.api.deps import JobsDep
from caravan.api.models import responses

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])


class TaskView(BaseModel):
    name: str
    restarts: int


class AllocationView(BaseModel):
    allocID: str
    taskGroup: str
    status: str = Field(description="pending, running, complete, failed or lost")
    phase: str = Field(description="The pod's phase")
    node: str = Field(description="The node it runs on; empty until scheduled")
    createTime: str = Field(description="RFC 3339 UTC")
    restarts: int = Field(description="Container restarts, all tasks together")
    tasks: list[TaskView]


@router.get(
    "/{job_id}/allocations",
    dependencies=[Depends(authorize("list", "pods"))],
    response_model=list[AllocationView],
    responses=responses(404),
    summary="The job's allocations (pods) with status, node, age and restarts",
)
async def list_allocations(job_id: str, jobs: JobsDep) -> list[dict[str, Any]]:
    return await jobs.allocations(job_id)


area = Area("allocations", router)
