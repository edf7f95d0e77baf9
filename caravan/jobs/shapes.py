"""The shapes of the jobs views, once: a job, its task groups, allocations and activity.

The view builders return these, the routes describe them in the OpenAPI document (pydantic
reads TypedDicts), and the client reads them. The order of the summary buckets is defined
here and nowhere else (`BUCKETS`).
"""

from __future__ import annotations

from typing import Annotated, Final, Literal, get_args

from pydantic import Field

# pydantic reads TypedDicts from typing_extensions on Python < 3.12.
from typing_extensions import TypedDict

# A summary bucket of an allocation, in the order every summary lists them.
Bucket = Literal["queued", "complete", "failed", "running", "starting", "lost"]
BUCKETS: Final[tuple[Bucket, ...]] = get_args(Bucket)

# What an allocation's status says (the seed's words): not yet running is "pending".
AllocStatus = Literal["pending", "running", "complete", "failed", "lost"]
JobStatus = Literal["pending", "running", "dead"]
TaskState = Literal["waiting", "running", "terminated"]


class Summary(TypedDict):
    """Allocations per bucket; the keys are `BUCKETS`, in that order."""

    queued: Annotated[
        int, Field(description="Not placed yet: no node, or Kubernetes could not create it")
    ]
    complete: Annotated[int, Field(description="Ended successfully")]
    failed: Annotated[int, Field(description="Ended in failure")]
    running: Annotated[int, Field(description="Running and ready")]
    starting: Annotated[int, Field(description="Placed on a node, not ready yet")]
    lost: Annotated[int, Field(description="Node lost, phase Unknown, or evicted")]


class Problem(TypedDict):
    reason: Annotated[
        str,
        Field(
            description="Kubernetes' own word: CrashLoopBackOff, ErrImagePull, OOMKilled, "
            "Unschedulable, FailedCreate, ..."
        ),
    ]
    message: Annotated[str, Field(description="The same for a person (exit code, cause)")]
    allocations: Annotated[int, Field(description="How many allocations it affects")]


class TaskGroupView(TypedDict):
    name: str
    count: Annotated[int, Field(description="The desired count now (0 when the job is stopped)")]
    countInit: Annotated[int, Field(description="The count the group gets when its job starts")]
    countMax: Annotated[int, Field(description="The ceiling for updatecounts")]
    summary: Summary
    problems: Annotated[
        list[Problem], Field(description="What keeps allocations from running; empty when none")
    ]


class JobView(TypedDict):
    name: str
    status: Annotated[
        JobStatus,
        Field(description="pending (started, nothing running yet), running, or dead (stopped)"),
    ]
    autostart: Annotated[bool, Field(description='Started by "start all" (POST /v1/jobs/start)')]
    byCluster: Annotated[
        bool, Field(description="Started once per cluster; always false (one installation)")
    ]
    taskGroups: list[TaskGroupView]


class Termination(TypedDict):
    reason: Annotated[str, Field(description="Error, OOMKilled, Completed, ...")]
    exitCode: int | None
    finishedAt: Annotated[str, Field(description="RFC 3339 UTC; empty when unknown")]


class TaskView(TypedDict):
    name: str
    state: Annotated[TaskState, Field(description="waiting, running or terminated")]
    reason: Annotated[str, Field(description="Why it waits or ended; empty when running")]
    message: Annotated[str, Field(description="The reason for a person; empty when none")]
    exitCode: Annotated[
        int | None,
        Field(description="The code it ended with (also while waiting to restart after it)"),
    ]
    restarts: int
    lastTermination: Annotated[
        Termination | None, Field(description="How the previous run ended; null when none")
    ]


class AllocationView(TypedDict):
    allocID: str
    taskGroup: str
    status: Annotated[AllocStatus, Field(description="pending, running, complete, failed, lost")]
    phase: Annotated[str, Field(description="The pod's phase")]
    node: Annotated[str, Field(description="The node it runs on; empty until placed")]
    createTime: Annotated[str, Field(description="RFC 3339 UTC")]
    restarts: Annotated[int, Field(description="Task restarts, all tasks together")]
    reason: Annotated[
        str,
        Field(
            description="What keeps it from running (Unschedulable while not placed, or its "
            "first failing task's reason); empty when nothing"
        ),
    ]
    message: Annotated[str, Field(description="The reason for a person; empty when none")]
    tasks: list[TaskView]


class ActivityItem(TypedDict):
    time: Annotated[str, Field(description="When it last happened, RFC 3339 UTC")]
    type: Annotated[Literal["Normal", "Warning"], Field(description="Normal or Warning")]
    reason: Annotated[str, Field(description="Started, Scaled, BackOff, Failed, ...")]
    message: str
    object: Annotated[str, Field(description='"job", "group/<group>" or "alloc/<allocID>"')]
    count: Annotated[int, Field(description="How many times it happened (repeats aggregated)")]


class Activity(TypedDict):
    items: Annotated[list[ActivityItem], Field(description="Oldest first")]
