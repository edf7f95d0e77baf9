"""The Jobs reach the operator from the store's watch, not from a watch of Kopf's own.

A second watch of Jobs in the same process decoded every Job event twice (each count
change, each status write) on the cores the API and kube-apiserver share. The store
already holds every Job: it tells `JobFeed` of each change, and the feed asks the
Reconciler for passes, as Kopf's event handler did.

Besides the job that changed, a change in who depends on whom (a job appearing, going,
or changing its dependencies) gives a pass to every other job whose DependenciesResolved
condition it makes stale (a missing job, a cycle).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from caravan.jobs.definitions import dependency_problem_of
from caravan.jobs.spec import read_dependencies
from caravan.kube.client import JSON
from caravan.operator.status import dependency_condition_of, dependency_condition_stale


class PassRequester(Protocol):
    def __call__(
        self, job: str, body: Mapping[str, Any] | None = None, *, new_spec_only: bool = False
    ) -> None: ...


@dataclass
class JobFeed:
    """Runs on the operator's loop (OnLoop hands it what the store tells)."""

    request: PassRequester  # Reconciler.request
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
                self.request(job)

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
        self.request(name, body, new_spec_only=not stale)


@dataclass(frozen=True)
class OnLoop:
    """The store's side: it tells from its own loop (thread), the feed runs on `loop`."""

    feed: JobFeed
    loop: asyncio.AbstractEventLoop

    def jobs_listed(self, bodies: Mapping[str, JSON]) -> None:
        self.loop.call_soon_threadsafe(self.feed.listed, bodies)

    def job_changed(self, name: str, body: JSON | None) -> None:
        self.loop.call_soon_threadsafe(self.feed.changed, name, body)
