"""The store: informers write into it, routes read from it.

It keeps only what the routes need (PodFacts, not whole pods), recomputes the jobs view
of the jobs that changed, and bumps the jobs `waitIndex` only when the serialized view
differs, so unrelated pod churn never wakes long-poll clients.

The operator thread reads pods from here too (no second watch of every pod in Kopf):
pod reads and writes take a lock, and jobs whose view changed are announced to
`on_jobs_changed` listeners, which is when a job's status may need writing.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections import defaultdict
from collections.abc import Callable

from caravan import labels
from caravan.jobs.spec import JobSpec, read_job
from caravan.jobs.summary import PodFacts, pod_facts
from caravan.jobs.view import job_view
from caravan.kube.client import JSON
from caravan.store.waiters import VersionWaiters

KIND_JOB = "job"
KIND_POD = "pod"
KIND_CONFIGMAP = "configmap"
KIND_SECRET = "secret"

ConfigMapListener = Callable[[str, dict[str, str] | None], None]
JobsListener = Callable[[set[str]], None]


class Store:
    def __init__(self) -> None:
        self.jobs: dict[str, JobSpec] = {}
        self.job_bodies: dict[str, JSON] = {}
        self.pods: dict[str, PodFacts] = {}
        self._pods_by_job: dict[str, dict[str, dict[str, PodFacts]]] = defaultdict(
            lambda: defaultdict(dict)
        )
        self.configmaps: dict[str, dict[str, str]] = {}
        self.secret_names: set[str] = set()
        self.jobs_waiters = VersionWaiters()
        self._job_views: dict[str, bytes] = {}
        self._jobs_json = b"[]"
        self._dirty_jobs: set[str] = set()
        self._refresh_scheduled = False
        self._configmap_listeners: list[ConfigMapListener] = []
        self._jobs_listeners: list[JobsListener] = []
        self._pods_lock = threading.Lock()

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

    def on_jobs_changed(self, listener: JobsListener) -> None:
        """Calls listener(names) with the jobs whose view changed (on the store's loop)."""
        self._jobs_listeners.append(listener)

    def off_jobs_changed(self, listener: JobsListener) -> None:
        if listener in self._jobs_listeners:
            self._jobs_listeners.remove(listener)

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

    def replace_all(self, kind: str, objects: list[JSON]) -> None:
        """A whole list at once (what an informer does page by page)."""
        for obj in objects:
            self.apply_event(kind, "ADDED", obj)
        self.end_relist(kind, {_name(o) for o in objects})

    def apply_event(self, kind: str, event_type: str, obj: JSON) -> None:
        name = _name(obj)
        deleted = event_type == "DELETED"
        if kind == KIND_JOB:
            if deleted:
                self._remove_job(name)
            else:
                self.jobs[name] = read_job(obj)
                self.job_bodies[name] = obj
                self._mark_dirty(name)
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
        self._mark_dirty(name)

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
            encoded = json.dumps(job_view(spec, groups), separators=(",", ":")).encode()
            if encoded != old:
                self._job_views[name] = encoded
                changed.add(name)
        self._dirty_jobs.clear()
        if changed:
            self._jobs_json = b"[" + b",".join(v for _, v in sorted(self._job_views.items())) + b"]"
            self.jobs_waiters.bump()
            for listener in list(self._jobs_listeners):
                listener(changed)


def _name(obj: JSON) -> str:
    return str((obj.get("metadata") or {}).get("name", ""))
