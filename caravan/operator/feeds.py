"""The Jobs and the task groups' Deployments reach the operator from the store's watches.

Kopf used to watch both kinds too. A second watch of a kind in the same process decoded
every event twice (each count change, each status write, each rollout step) on the cores
the API and kube-apiserver share, and Kopf's thread held the GIL the API's loop waits for
meanwhile. The store already holds every Job and Deployment; it tells the feeds here of
each change (`caravan.store.Store.follow`), and the feeds ask the Reconciler for passes,
as Kopf's event handlers did:

- `JobFeed`: each Job change asks for a pass of its job. A change in who depends on whom
  (a job appearing, going, or changing its dependencies) also gives a pass to every other
  job whose DependenciesResolved condition it makes stale (a missing job, a cycle).
- `DeploymentFeed`: which Deployments each job has and how their rollouts go
  (`DeploymentIndex`), and what changed them: drift is repaired, the API's write-through
  of a count is taken as applied, a finished or stalled rollout is judged.

The store tells from its own loop (the API's thread); `OnLoop` hands each call over to
the operator's loop, where the feeds and the Reconciler run.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from caravan.jobs.definitions import dependency_problem_of
from caravan.jobs.spec import read_dependencies
from caravan.kube.client import JSON
from caravan.labels import JOB_LABEL, TASK_GROUP_LABEL
from caravan.operator.drift import foreign_spec_manager
from caravan.operator.reconcile import Reconciler
from caravan.operator.rollouts import Rollout, rollout_of
from caravan.operator.status import dependency_condition_of, dependency_condition_stale
from caravan.operator.writethrough import replicas_written_through
from caravan.store.store import Follower


def hand_over(loop: asyncio.AbstractEventLoop, call: Callable[..., None], *args: Any) -> None:
    """Runs `call(*args)` on `loop`, the operator's, from the store's thread. An operator
    that ended without its cleanup (a crash) leaves its loop closed: what it followed is
    dropped then, never raised into the store's watch."""
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(call, *args)


@dataclass(frozen=True)
class OnLoop:
    """A store follower that runs `feed` on `loop` (the operator's), in order."""

    feed: Follower
    loop: asyncio.AbstractEventLoop

    def listed(self, bodies: Mapping[str, JSON]) -> None:
        hand_over(self.loop, self.feed.listed, bodies)

    def changed(self, name: str, body: JSON | None) -> None:
        hand_over(self.loop, self.feed.changed, name, body)


@dataclass
class JobFeed:
    reconciler: Reconciler
    # Every job's dependencies, and its DependenciesResolved condition alone (a status
    # with only that condition), as the latest change of each had them.
    dependencies: dict[str, tuple[str, ...]] = field(default_factory=dict)
    conditions: dict[str, dict[str, Any]] = field(default_factory=dict)

    def listed(self, bodies: Mapping[str, JSON]) -> None:
        """Every Job (the first list, or a relist after the watch was lost): each gets a
        pass unless it was done already, and those not listed are gone."""
        for name in set(self.dependencies) - set(bodies):
            self.changed(name, None)
        # The whole graph first: each job's dependencies are judged with every job known.
        for name, body in bodies.items():
            self._remember(name, body)
        for name, body in bodies.items():
            self._request(name, body)

    def changed(self, name: str, body: JSON | None) -> None:
        before, known = self.dependencies.get(name), name in self.dependencies
        self._remember(name, body)
        if body is not None:
            self._request(name, body)
        now = self.dependencies.get(name)
        if known == (body is not None) and before == now:
            return  # the graph is as it was: nobody else's dependencies moved
        for job, status in self.conditions.items():
            if job != name and dependency_condition_stale(
                status, dependency_problem_of(job, self.dependencies)
            ):
                self.reconciler.request(job)

    def _remember(self, name: str, body: JSON | None) -> None:
        if body is None:
            self.dependencies.pop(name, None)
            self.conditions.pop(name, None)
        else:
            self.dependencies[name] = read_dependencies(body.get("spec") or {})
            self.conditions[name] = dependency_condition_of(body.get("status"))

    def _request(self, name: str, body: JSON) -> None:
        # The body is the Job as it is now: no need to read it again. The echo of our own
        # status write (same generation) needs no pass, unless its condition on
        # dependencies was written from a graph that has moved since.
        problem = dependency_problem_of(name, self.dependencies)
        stale = dependency_condition_stale(body.get("status"), problem)
        self.reconciler.request(name, body, new_spec_only=not stale)


@dataclass
class DeploymentIndex:
    """Each job's Deployments, by name: (group, rollout), for the Reconciler."""

    by_job: dict[str, dict[str, tuple[str, Rollout]]] = field(default_factory=dict)
    owners: dict[str, str] = field(default_factory=dict)  # Deployment -> its job

    def deployments_of(self, job: str) -> list[tuple[str, str]]:
        return [(name, group) for name, (group, _) in self.by_job.get(job, {}).items()]

    def rollouts_of(self, job: str) -> list[Rollout]:
        return [rollout for _, rollout in self.by_job.get(job, {}).values()]

    def put(self, job: str, name: str, group: str, rollout: Rollout) -> None:
        if self.owners.get(name, job) != job:
            self.remove(name)  # its job label changed
        self.owners[name] = job
        self.by_job.setdefault(job, {})[name] = (group, rollout)

    def remove(self, name: str) -> tuple[str, Rollout] | None:
        """Forgets a Deployment; its job and last rollout, if it was known."""
        job = self.owners.pop(name, None)
        if job is None:
            return None
        deployments = self.by_job[job]
        _, rollout = deployments.pop(name)
        if not deployments:
            del self.by_job[job]
        return job, rollout


@dataclass
class DeploymentFeed:
    reconciler: Reconciler
    index: DeploymentIndex

    def listed(self, bodies: Mapping[str, JSON]) -> None:
        """Every Deployment (the first list, or a relist): each one's job is told of it
        (a first pass applies the job's definition again), those not listed are gone."""
        for name in set(self.index.owners) - set(bodies):
            self.changed(name, None)
        for name, body in bodies.items():
            self.changed(name, body)

    def changed(self, name: str, body: JSON | None) -> None:
        if body is None:
            known = self.index.remove(name)
            if known is not None:
                job, rollout = known
                self.reconciler.deployment_changed(job, name, rollout.generation, deleted=True)
            return
        labels = (body.get("metadata") or {}).get("labels") or {}
        owner = labels.get(JOB_LABEL)
        if not owner:
            self.index.remove(name)  # no longer a task group's: not ours to follow
            return
        owner, rollout = str(owner), rollout_of(body)
        self.index.put(owner, name, str(labels.get(TASK_GROUP_LABEL, "")), rollout)
        # A hand-scaled or deleted Deployment makes its job reconcile: drift is repaired.
        # Its status moving (pods starting) or our own apply's echo does not.
        self.reconciler.deployment_changed(
            owner,
            name,
            rollout.generation,
            deleted=False,
            changed_by=foreign_spec_manager(body),
            written_through=replicas_written_through(body),
        )
        self.reconciler.rollout_moved(owner, rollout)
