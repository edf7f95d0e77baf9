"""Restarting a job, a task group or one allocation.

A job or group restart writes the Job (caravan.jobs.restart): the operator rolls the new
pod template out, one allocation after the other. An allocation restart deletes that one
pod; its Deployment makes a new one. Each records a `Restarted` Event on the Job.
"""

from __future__ import annotations

from datetime import UTC, datetime

from caravan import labels
from caravan.errors import no_such
from caravan.jobs.restart import allocation_restart_note, restart_note, restart_patch
from caravan.jobs.shapes import JobView
from caravan.jobs.spec import read_job
from caravan.kube.client import JOBS, JSON, PODS
from caravan.kube.errors import NotFound
from caravan.kube.recorder import EventRecorder, job_regarding
from caravan.kube.rmw import delete_with_precondition
from caravan.services.jobs import Jobs
from caravan.services.state import ServerState
from caravan.services.writes import Writes
from caravan.store.store import KIND_JOB, KIND_POD


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Restarts:
    def __init__(self, state: ServerState, jobs: Jobs, recorder: EventRecorder | None) -> None:
        self.state = state
        self.store = state.store
        self.jobs = jobs
        self.recorder = recorder

    async def restart_job(
        self, writes: Writes, job: str, group: str | None, username: str | None = None
    ) -> JobView:
        """Replaces every allocation of `job` (or of its `group`), rolling. NotFoundError
        for an unknown job or group, ConflictError for a stopped job."""
        now = _now()
        try:
            stored = await writes.patch(
                KIND_JOB,
                JOBS.item(self.state.namespace, job),
                lambda current: restart_patch(current, group, now),
            )
        except NotFound as exc:
            raise no_such("job", job) from exc
        self._record(stored, restart_note(group, username))
        return self.jobs.view_of(read_job(stored))

    async def restart_allocation(
        self, writes: Writes, alloc: str, username: str | None = None
    ) -> JobView:
        """Deletes the pod of allocation `alloc`; its Deployment replaces it.
        NotFoundError for a pod that is not an allocation of one of Caravan's jobs."""
        facts = self.store.pods.get(alloc)
        spec = self.store.jobs.get(facts.job) if facts is not None else None
        if facts is None or spec is None or spec.group(facts.group) is None:
            raise no_such("allocation", alloc)

        def check(pod: JSON) -> None:
            pod_labels = (pod.get("metadata") or {}).get("labels") or {}
            if (
                pod_labels.get(labels.JOB_LABEL) != facts.job
                or pod_labels.get(labels.TASK_GROUP_LABEL) != facts.group
            ):
                raise no_such("allocation", alloc)

        try:
            answer = await delete_with_precondition(
                self.state.kube, PODS.item(self.state.namespace, alloc), check
            )
        except NotFound as exc:
            raise no_such("allocation", alloc) from exc
        # The pod being deleted (or gone) in this replica's store before answering.
        await writes.visible(KIND_POD, answer)
        body = self.store.job_bodies.get(facts.job)
        if body is not None:
            self._record(body, allocation_restart_note(alloc, username))
        return self.jobs.view_of(spec)

    def _record(self, job_body: JSON, note: str) -> None:
        if self.recorder is not None:
            regarding = job_regarding(job_body)
            self.recorder.record(regarding, "Normal", "Restarted", note, "Restart")
