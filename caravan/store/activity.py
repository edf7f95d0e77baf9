"""The Kubernetes Events of the namespace that concern jobs, bounded, for the activity view.

One watch of the namespace's Events (events.k8s.io/v1) feeds this log. It keeps, as small
records, only the Events about a Caravan Job, a Deployment, a ReplicaSet or a pod, at
most `max_events` of them (the oldest go first) and none older than `max_age_seconds`
(Kubernetes itself deletes Events after an hour). Each job's activity has its own
`waitIndex`, bumped only when that job's activity changes.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from caravan.jobs.activity import EventRecord, activity_items, event_record
from caravan.jobs.shapes import Activity
from caravan.store.waiters import VersionWaiters

DEFAULT_MAX_EVENTS = 5000
DEFAULT_MAX_AGE_SECONDS = 3600.0

# A Deployment's name → the job that owns it (None: not a job's), from the store's jobs.
DeploymentOwner = Callable[[str], str | None]


@dataclass
class ActivityLog:
    owner_of_deployment: DeploymentOwner
    max_events: int = DEFAULT_MAX_EVENTS
    max_age_seconds: float = DEFAULT_MAX_AGE_SECONDS
    clock: Callable[[], float] = time.time

    def __post_init__(self) -> None:
        # Arrival order: an updated Event (a repeat) moves to the end; the front goes first.
        self._events: OrderedDict[str, EventRecord] = OrderedDict()
        self._by_owner: dict[tuple[str, str], dict[str, EventRecord]] = {}
        self._waiters: dict[str, VersionWaiters] = {}

    def __len__(self) -> int:
        return len(self._events)

    # What the informer feeds ---------------------------------------------------------

    def apply(self, event_type: str, obj: Mapping[str, Any]) -> None:
        name = str((obj.get("metadata") or {}).get("name", ""))
        if event_type == "DELETED":
            self.remove(name)
            return
        record = event_record(obj)
        if record is None or record.when < self.clock() - self.max_age_seconds:
            self.remove(name)
            return
        old = self._events.pop(name, None)
        if old is not None:
            self._by_owner.get(old.owner, {}).pop(name, None)
        self._events[name] = record
        self._by_owner.setdefault(record.owner, {})[name] = record
        self._changed(record.owner)
        if old is not None and old.owner != record.owner:
            self._changed(old.owner)
        self._trim()

    def remove(self, name: str) -> None:
        old = self._events.pop(name, None)
        if old is None:
            return
        owned = self._by_owner.get(old.owner, {})
        owned.pop(name, None)
        if not owned:
            self._by_owner.pop(old.owner, None)
        self._changed(old.owner)

    def keep_only(self, names: set[str]) -> None:
        """After a (re)list: Events the list did not hold are gone."""
        for name in [n for n in self._events if n not in names]:
            self.remove(name)

    # Reads -------------------------------------------------------------------------------

    def activity(self, job: str, deployments: Mapping[str, str]) -> Activity:
        """The job's activity; `deployments` maps its Deployments' names to their group."""
        self._trim()
        records: list[EventRecord] = list(self._by_owner.get(("job", job), {}).values())
        for name in deployments:
            records.extend(self._by_owner.get(("deploy", name), {}).values())
        return {"items": activity_items(records, deployments)}

    def waiters(self, job: str) -> VersionWaiters:
        """The job's activity waitIndex and its long-poll waiters."""
        found = self._waiters.get(job)
        if found is None:
            found = self._waiters[job] = VersionWaiters()
        return found

    def forget_job(self, job: str) -> None:
        """A deleted job's index goes (a job made again under the name starts afresh)."""
        self._waiters.pop(job, None)

    # Internals -------------------------------------------------------------------------

    def _changed(self, owner: tuple[str, str]) -> None:
        kind, name = owner
        job = name if kind == "job" else self.owner_of_deployment(name)
        if job is not None:
            self.waiters(job).bump()

    def _trim(self) -> None:
        oldest = self.clock() - self.max_age_seconds
        while self._events:
            name, record = next(iter(self._events.items()))
            if len(self._events) <= self.max_events and record.when >= oldest:
                break
            self.remove(name)
