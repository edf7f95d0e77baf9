"""The jobs service: the list and its long poll, one job, start, stop and counts.

Every count change is a compare-and-swap of the Job's spec (caravan.kube.rmw), decided
by the pure arithmetic of caravan.jobs.counts; a refusal comes back as the decision's
result and is raised here, once the write loop is over. The new Deployment replicas are
written at once beside it (caravan.kube.scaler), rather than after the operator's pass.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable

from caravan import labels
from caravan.errors import DomainError, NotFoundError, no_such
from caravan.jobs import counts
from caravan.jobs.allocations import allocation_views
from caravan.jobs.changes import job_changes
from caravan.jobs.order import start_order, stop_order
from caravan.jobs.shapes import AllocationView, JobView
from caravan.jobs.spec import JobSpec, read_job, rescaled
from caravan.jobs.view import job_view
from caravan.kube.client import JOBS, JSON, PODS
from caravan.kube.errors import NotFound
from caravan.kube.recorder import EventRecorder, job_regarding
from caravan.kube.rmw import Decision, Outcome
from caravan.kube.scaler import FIELD_MANAGER as WRITE_THROUGH_MANAGER
from caravan.kube.scaler import DeploymentScaler
from caravan.services.state import ServerState
from caravan.services.writes import Writes
from caravan.store.store import KIND_JOB

# A change of a Job's body (counts.started, counts.stopped, a count delta); it may raise
# a DomainError to refuse.
Change = Callable[[JSON], JSON]
# What a decision on one read tells: the version read, or why the change is refused.
Read = JobSpec | DomainError


class Jobs:
    def __init__(self, state: ServerState, recorder: EventRecorder | None = None) -> None:
        self.state = state
        self.store = state.store
        self.scaler = DeploymentScaler(state.kube, state.namespace)
        # Started, Stopped and Scaled Events on the Jobs changed (None: none recorded).
        self.recorder = recorder

    # Reads -------------------------------------------------------------------------------

    def wait_bounds(self) -> tuple[float, float]:
        """The long-poll bounds of the current settings (`jobs.longPoll`): default, max."""
        runtime = self.state.runtime_settings
        return float(runtime.long_poll_default_wait_seconds), float(
            runtime.long_poll_max_wait_seconds
        )

    async def listing(self, index: int | None, timeout: float) -> tuple[bytes, int]:
        """Every job's view (serialized) and the index to wait beyond next; blocks up to
        `timeout` while `index` is the current one."""
        waiters = self.store.jobs_waiters
        if index is not None and index == waiters.index:
            # Jitter (wait/16) spreads the wake-ups of many clients that timed out together.
            timeout += random.uniform(0, timeout / 16)
            await waiters.wait_beyond(index, timeout)
        return self.store.jobs_json, waiters.index

    def view(self, job_id: str) -> bytes:
        body = self.store.job_json(job_id)
        if body is None:
            raise no_such("job", job_id)
        return body

    def current(self, job_id: str) -> JobView:
        """The job's view as the store holds it now (the answer of a write)."""
        spec = self.store.jobs.get(job_id)
        if spec is None:
            raise no_such("job", job_id)
        return self.view_of(spec)

    def view_of(self, spec: JobSpec) -> JobView:
        pods = {g.name: self.store.pods_of(spec.name, g.name) for g in spec.task_groups}
        return job_view(spec, pods, self.store.deployments_of(spec.name))

    async def allocations(self, job_id: str) -> list[AllocationView]:
        """The job's allocations (pods) as the apiserver lists them now."""
        if job_id not in self.store.jobs:
            raise no_such("job", job_id)
        listed = await self.state.kube.list_items(
            PODS.collection(self.state.namespace), labelSelector=f"{labels.JOB_LABEL}={job_id}"
        )
        return allocation_views(listed.get("items") or [])

    # Writes ------------------------------------------------------------------------------

    # `username`: the caller, named in the Events recorded (None: authentication off).

    async def start(self, writes: Writes, job_id: str, username: str | None = None) -> JobView:
        return await self._change(writes, job_id, counts.started, username)

    async def stop(self, writes: Writes, job_id: str, username: str | None = None) -> JobView:
        return await self._change(writes, job_id, counts.stopped, username)

    async def update_counts(
        self, writes: Writes, job_id: str, group: str, delta: int, username: str | None = None
    ) -> JobView:
        return await self._change(
            writes, job_id, lambda job: counts.with_count_delta(job, group, delta), username
        )

    async def start_all(self, writes: Writes, username: str | None = None) -> list[JobView]:
        """Starts every autostart job, the jobs depended on first."""
        jobs = self.store.jobs
        autostart = {n: spec.dependencies for n, spec in jobs.items() if spec.autostart}
        return await self._change_all(writes, start_order(autostart), counts.started, username)

    async def stop_all(self, writes: Writes, username: str | None = None) -> list[JobView]:
        """Stops every job, each before the jobs it depends on."""
        every = {n: spec.dependencies for n, spec in self.store.jobs.items()}
        return await self._change_all(writes, stop_order(every), counts.stopped, username)

    async def _change(
        self, writes: Writes, job_id: str, change: Change, username: str | None = None
    ) -> JobView:
        try:
            outcome = await writes.spec(
                KIND_JOB,
                JOBS.item(self.state.namespace, job_id),
                _decision(change),
                cached=self.store.job_bodies.get(job_id),
                alongside=self._write_through,
                # The operator reads it there: these counts' replicas are being written
                # through, so it leaves them to us (caravan.operator.writethrough).
                field_manager=WRITE_THROUGH_MANAGER,
            )
        except NotFound as exc:
            raise no_such("job", job_id) from exc
        if isinstance(outcome.result, DomainError):
            raise outcome.result
        spec = read_job(outcome.stored)
        if self.recorder is not None and isinstance(outcome.result, JobSpec):
            for said in job_changes(outcome.result, spec, username):
                self.recorder.record(
                    job_regarding(outcome.stored), "Normal", said.reason, said.note, said.action
                )
        return self.view_of(spec)

    async def _write_through(self, outcome: Outcome[Read]) -> None:
        """The new replicas at once, rather than after the operator's watch of the Job
        and its pass; never raises (the operator converges anyway)."""
        if isinstance(outcome.result, JobSpec):
            meta = outcome.stored["metadata"]
            replicas = rescaled(outcome.result, read_job(outcome.stored))
            await self.scaler.scale(
                replicas, str(meta.get("uid", "")), int(meta.get("generation") or 0)
            )

    async def _change_all(
        self, writes: Writes, order: list[str], change: Change, username: str | None = None
    ) -> list[JobView]:
        """Applies `change` to each job in `order`, one after the other; every job's view."""
        written: dict[str, JobView] = {}
        for name in order:
            try:
                written[name] = await self._change(writes, name, change, username)
            except NotFoundError:
                continue  # deleted meanwhile: nothing to start or stop
        store = self.store
        views: dict[str, JobView | None] = {
            name: json.loads(store.job_json(name) or b"null") for name in store.jobs
        }
        views.update(written)
        return [view for _, view in sorted(views.items()) if view is not None]


def _decision(change: Change) -> Callable[[JSON], Decision[Read]]:
    """A pure decision for the write loop: the changed body and the version read, or
    nothing to write and the refusal (raised by the service once the loop is over)."""

    def decide(body: JSON) -> Decision[Read]:
        try:
            return Decision(change(body), read_job(body))
        except DomainError as refused:
            return Decision(None, refused)

    return decide
