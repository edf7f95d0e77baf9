"""The store: informers write into it, routes read from it.

It keeps only what the routes need (PodFacts, not whole pods), recomputes the jobs view
of the jobs that changed, and bumps the jobs `waitIndex` only when the serialized view
differs, so unrelated pod churn never wakes long-poll clients.

The operator thread reads pods from here too (no second watch of every pod in Kopf):
pod reads and writes take a lock, and jobs whose view changed are announced to
`on_jobs_changed` listeners, which is when a job's status may need writing. It follows
the Jobs and the Deployments from here as well (`follow`): one watch of each kind per
process, each event decoded once.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections import defaultdict
from collections.abc import Callable, Mapping
from typing import Protocol

from caravan import labels
from caravan.jobs.failures import DeploymentFacts, deployment_facts
from caravan.jobs.shapes import Activity
from caravan.jobs.spec import JobSpec, deployment_name, read_job
from caravan.jobs.summary import PodFacts, pod_facts
from caravan.jobs.view import job_view
from caravan.kube.client import JSON
from caravan.store.activity import ActivityLog
from caravan.store.versions import ObjectVersions
from caravan.store.waiters import VersionWaiters

KIND_JOB = "job"
KIND_POD = "pod"
KIND_DEPLOYMENT = "deployment"
KIND_EVENT = "event"
KIND_CONFIGMAP = "configmap"
KIND_SECRET = "secret"

ConfigMapListener = Callable[[str, dict[str, str] | None], None]
JobsListener = Callable[[set[str]], None]


class Follower(Protocol):
    """Follows one kind of object as the store holds it (see Store.follow)."""

    def listed(self, bodies: Mapping[str, JSON]) -> None:
        """Every object, after a complete (re)list: those not in it are gone."""

    def changed(self, name: str, body: JSON | None) -> None:
        """One object as it is now; None: deleted."""


class Store:
    def __init__(self) -> None:
        self.jobs: dict[str, JobSpec] = {}
        self.job_bodies: dict[str, JSON] = {}
        self.pods: dict[str, PodFacts] = {}
        self._pods_by_job: dict[str, dict[str, dict[str, PodFacts]]] = defaultdict(
            lambda: defaultdict(dict)
        )
        # What each task group's Deployment says of allocations it could not make.
        self.deployments: dict[str, DeploymentFacts] = {}
        self.deployment_bodies: dict[str, JSON] = {}
        self._deployments_by_job: dict[str, dict[str, DeploymentFacts]] = {}
        # Deployment name -> (job, group), from the jobs' specs: ties Events to jobs.
        self._deployment_owners: dict[str, tuple[str, str]] = {}
        self._deployments_named: dict[str, list[str]] = {}  # job -> its keys above
        self.activity_log = ActivityLog(owner_of_deployment=self._job_of_deployment)
        self.configmaps: dict[str, dict[str, str]] = {}
        self.secret_names: set[str] = set()
        self.jobs_waiters = VersionWaiters()
        # The resourceVersion of every object held, and writers waiting to see theirs.
        self.versions = ObjectVersions()
        self._job_views: dict[str, bytes] = {}
        self._jobs_json = b"[]"
        self._dirty_jobs: set[str] = set()
        self._refresh_scheduled = False
        self._configmap_listeners: list[ConfigMapListener] = []
        self._jobs_listeners: list[JobsListener] = []
        self._pods_lock = threading.Lock()
        # The kinds followers may follow, by the bodies held of each. Followers register
        # from another thread (the operator's): registering and telling them of a change
        # are one at a time, so none misses or reorders one.
        self._followed: dict[str, dict[str, JSON]] = {
            KIND_JOB: self.job_bodies,
            KIND_DEPLOYMENT: self.deployment_bodies,
        }
        self._follow_lock = threading.Lock()
        self._followers: dict[str, list[Follower]] = defaultdict(list)
        self._listed: set[str] = set()  # kinds whose first list is complete

    # Reads -----------------------------------------------------------------------------

    @property
    def jobs_json(self) -> bytes:
        """GET /v1/jobs body, already serialized."""
        self._refresh_now()
        return self._jobs_json

    def job_json(self, name: str) -> bytes | None:
        self._refresh_now()
        return self._job_views.get(name)

    def pods_of(self, job: str, group: str | None = None) -> list[PodFacts]:
        """The allocations of a job (or of one of its groups); safe from any thread."""
        with self._pods_lock:
            groups = self._pods_by_job.get(job, {})
            if group is not None:
                found = list(groups.get(group, {}).values())
            else:
                found = [p for g in groups.values() for p in g.values()]
        return sorted(found, key=lambda p: p.name)

    def deployments_of(self, job: str) -> dict[str, DeploymentFacts]:
        """The facts of a job's Deployments, by group."""
        return dict(self._deployments_by_job.get(job, {}))

    def activity(self, job: str) -> Activity | None:
        """The job's activity (its Events and those of its groups and pods); None: no job."""
        spec = self.jobs.get(job)
        if spec is None:
            return None
        groups = {deployment_name(job, g.name): g.name for g in spec.task_groups}
        return self.activity_log.activity(job, groups)

    def activity_waiters(self, job: str) -> VersionWaiters:
        return self.activity_log.waiters(job)

    def on_jobs_changed(self, listener: JobsListener) -> None:
        """Calls listener(names) with the jobs whose view changed (on the store's loop)."""
        self._jobs_listeners.append(listener)

    def off_jobs_changed(self, listener: JobsListener) -> None:
        if listener in self._jobs_listeners:
            self._jobs_listeners.remove(listener)

    def follow(self, kind: str, follower: Follower) -> None:
        """From any thread, for the Jobs or the Deployments: `follower.listed` with every
        object once the first list is complete (at once, on the caller's thread, if it is
        already), again after each relist, and `changed` at each change in between (on
        the store's loop). The bodies are the store's own: read them, never change them."""
        with self._follow_lock:
            self._followers[kind].append(follower)
            if kind in self._listed:
                follower.listed(dict(self._followed[kind]))

    def unfollow(self, kind: str, follower: Follower) -> None:
        with self._follow_lock:
            if follower in self._followers[kind]:
                self._followers[kind].remove(follower)

    async def wait_version(self, kind: str, name: str, version: str, timeout: float) -> bool:
        """Until the store holds `version` of object `name` (or a later one, or saw it
        deleted); False after `timeout` seconds. `kind` as the informers name it."""
        return await self.versions.wait((_kind_key(kind), name), version, timeout)

    async def wait_gone(self, kind: str, name: str, timeout: float) -> bool:
        """Until object `name` is no longer in the store; False after `timeout` seconds."""
        return await self.versions.wait((_kind_key(kind), name), None, timeout)

    def on_configmap(self, listener: ConfigMapListener) -> None:
        """Calls listener(name, data or None) on every change of a watched ConfigMap."""
        self._configmap_listeners.append(listener)

    def off_configmap(self, listener: ConfigMapListener) -> None:
        if listener in self._configmap_listeners:
            self._configmap_listeners.remove(listener)

    def configmaps_data(self, names: frozenset[str]) -> dict[str, dict[str, str] | None]:
        """The data of these ConfigMaps now (None: absent); safe from any thread."""
        return {
            name: dict(self.configmaps[name]) if name in self.configmaps else None for name in names
        }

    def running_pod_revisions(self) -> list[tuple[str, str]]:
        """(name, config revision) of every scheduled pod not being deleted; any thread."""
        with self._pods_lock:
            return [
                (p.name, p.revision) for p in self.pods.values() if p.scheduled and not p.deleting
            ]

    # InformerSink ----------------------------------------------------------------------

    def end_relist(self, kind: str, names: set[str]) -> None:
        """After a (re)list: whatever the list did not hold is gone."""
        if kind in self._followed:
            with self._follow_lock:
                self._end_relist(kind, names)
                self._listed.add(kind)
                for follower in self._followers[kind]:
                    follower.listed(dict(self._followed[kind]))
        else:
            self._end_relist(kind, names)
        key_kind = _kind_key(kind)
        if kind.startswith(KIND_CONFIGMAP):
            gone = set() if names else {kind.partition(":")[2]}
        else:
            gone = self.versions.names(key_kind) - names
        for name in gone:
            self.versions.removed((key_kind, name))

    def _end_relist(self, kind: str, names: set[str]) -> None:
        if kind == KIND_JOB:
            for name in set(self.jobs) - names:
                self._remove_job(name)
        elif kind == KIND_POD:
            for name in set(self.pods) - names:
                with self._pods_lock:
                    self._remove_pod(name)
        elif kind.startswith(KIND_CONFIGMAP):
            # one informer per ConfigMap name (field selector): an empty list = deleted
            if not names:
                self._set_configmap(kind.partition(":")[2], None)
        elif kind == KIND_SECRET:
            self.secret_names &= names
        elif kind == KIND_DEPLOYMENT:
            for name in set(self.deployments) - names:
                self.deployment_bodies.pop(name, None)
                self._set_deployment(name, None)
        elif kind == KIND_EVENT:
            self.activity_log.keep_only(names)

    def replace_all(self, kind: str, objects: list[JSON]) -> None:
        """A whole list at once (what an informer does page by page)."""
        for obj in objects:
            self.apply_event(kind, "ADDED", obj)
        self.end_relist(kind, {_name(o) for o in objects})

    def apply_event(self, kind: str, event_type: str, obj: JSON) -> None:
        name = _name(obj)
        deleted = event_type == "DELETED"
        if kind in self._followed:
            with self._follow_lock:
                self._apply(kind, name, deleted, obj)
                if kind in self._listed:  # during the first list: told at its end
                    for follower in self._followers[kind]:
                        follower.changed(name, None if deleted else obj)
        else:
            self._apply(kind, name, deleted, obj)
        if kind == KIND_EVENT:
            return  # nobody writes Events and waits to read them: no versions kept
        key = (_kind_key(kind), name)
        version = (obj.get("metadata") or {}).get("resourceVersion")
        if deleted:
            self.versions.removed(key)
        elif version:
            self.versions.saw(key, str(version))

    def _apply(self, kind: str, name: str, deleted: bool, obj: JSON) -> None:
        if kind == KIND_JOB:
            if deleted:
                self._remove_job(name)
            else:
                self.jobs[name] = spec = read_job(obj)
                self.job_bodies[name] = obj
                self._own_deployments(name, spec)
                self._mark_dirty(name)
        elif kind == KIND_DEPLOYMENT:
            found = None
            if deleted:
                self.deployment_bodies.pop(name, None)
            else:
                found = deployment_facts(obj, labels.JOB_LABEL, labels.TASK_GROUP_LABEL)
                self.deployment_bodies[name] = obj
            self._set_deployment(name, found)
        elif kind == KIND_EVENT:
            self.activity_log.apply("DELETED" if deleted else "MODIFIED", obj)
        elif kind == KIND_POD:
            facts = None
            if not deleted:
                facts = pod_facts(
                    obj,
                    labels.JOB_LABEL,
                    labels.TASK_GROUP_LABEL,
                    labels.LOGGERS_ANNOTATION,
                    labels.CONFIG_REVISION_ANNOTATION,
                )
            with self._pods_lock:
                self._remove_pod(name)
                if facts is not None:
                    self.pods[name] = facts
                    self._pods_by_job[facts.job][facts.group][name] = facts
            if facts is not None:
                self._mark_dirty(facts.job)
        elif kind.startswith(KIND_CONFIGMAP):
            self._set_configmap(name, None if deleted else dict(obj.get("data") or {}))
        elif kind == KIND_SECRET:
            if deleted:
                self.secret_names.discard(name)
            else:
                self.secret_names.add(name)

    # Internals -------------------------------------------------------------------------

    def _set_configmap(self, name: str, data: dict[str, str] | None) -> None:
        if data is None:
            self.configmaps.pop(name, None)
        else:
            self.configmaps[name] = data
        for listener in self._configmap_listeners:
            listener(name, data)

    def _remove_job(self, name: str) -> None:
        self.jobs.pop(name, None)
        self.job_bodies.pop(name, None)
        self._own_deployments(name, None)
        self.activity_log.forget_job(name)
        self._mark_dirty(name)

    def _own_deployments(self, job: str, spec: JobSpec | None) -> None:
        for name in self._deployments_named.pop(job, ()):
            if self._deployment_owners.get(name, ("",))[0] == job:
                del self._deployment_owners[name]
        for group in spec.task_groups if spec is not None else ():
            name = deployment_name(job, group.name)
            self._deployment_owners[name] = (job, group.name)
            self._deployments_named.setdefault(job, []).append(name)

    def _job_of_deployment(self, name: str) -> str | None:
        owner = self._deployment_owners.get(name)
        return owner[0] if owner is not None else None

    def _set_deployment(self, name: str, facts: DeploymentFacts | None) -> None:
        old = self.deployments.pop(name, None)
        if old is not None:
            groups = self._deployments_by_job.get(old.job, {})
            groups.pop(old.group, None)
            if not groups:
                self._deployments_by_job.pop(old.job, None)
        if facts is not None:
            self.deployments[name] = facts
            self._deployments_by_job.setdefault(facts.job, {})[facts.group] = facts
        if old != facts:
            for job in {f.job for f in (old, facts) if f is not None}:
                self._mark_dirty(job)

    def _remove_pod(self, name: str) -> None:
        """Under the pods lock."""
        old = self.pods.pop(name, None)
        if old is None:
            return
        group = self._pods_by_job[old.job][old.group]
        group.pop(name, None)
        if not group:
            del self._pods_by_job[old.job][old.group]
            if not self._pods_by_job[old.job]:
                del self._pods_by_job[old.job]
        self._mark_dirty(old.job)

    def _mark_dirty(self, job: str) -> None:
        self._dirty_jobs.add(job)
        if not self._refresh_scheduled:
            # Coalesce a burst of watch events into one recomputation.
            self._refresh_scheduled = True
            try:
                asyncio.get_running_loop().call_soon(self._refresh_now)
            except RuntimeError:
                self._refresh_scheduled = False  # no loop (unit tests): refresh on read

    def _refresh_now(self) -> None:
        self._refresh_scheduled = False
        if not self._dirty_jobs:
            return
        changed: set[str] = set()
        for name in self._dirty_jobs:
            spec = self.jobs.get(name)
            old = self._job_views.get(name)
            if spec is None:
                if self._job_views.pop(name, None) is not None:
                    changed.add(name)
                continue
            groups = {g: pods.values() for g, pods in self._pods_by_job.get(name, {}).items()}
            view = job_view(spec, groups, self.deployments_of(name))
            encoded = json.dumps(view, separators=(",", ":")).encode()
            if encoded != old:
                self._job_views[name] = encoded
                changed.add(name)
        self._dirty_jobs.clear()
        if changed:
            self._jobs_json = b"[" + b",".join(v for _, v in sorted(self._job_views.items())) + b"]"
            self.jobs_waiters.bump()
            for listener in list(self._jobs_listeners):
                listener(changed)


def _kind_key(kind: str) -> str:
    """One kind for every ConfigMap informer (`configmap:<name>` watches one name)."""
    return KIND_CONFIGMAP if kind.startswith(KIND_CONFIGMAP) else kind


def _name(obj: JSON) -> str:
    return str((obj.get("metadata") or {}).get("name", ""))
