"""Kopf handlers: thin, they only tell the Reconciler which job to look at."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import kopf

from caravan import metrics
from caravan.jobs.definitions import dependency_problem_of
from caravan.jobs.spec import read_dependencies
from caravan.kube.client import JSON, KubeClient, load_configuration
from caravan.kube.recorder import EventRecorder, job_regarding
from caravan.labels import (
    GROUP,
    JOB_LABEL,
    JOB_PLURAL,
    TASK_GROUP_LABEL,
    VERSION,
)
from caravan.operator.drift import foreign_spec_manager
from caravan.operator.reconcile import Reconciler
from caravan.operator.refresh import VolumeRefresher
from caravan.operator.revisions import RevisionKeeper
from caravan.operator.rollouts import Rollout, RolloutKeeper, rollout_of
from caravan.operator.status import dependency_condition_of, dependency_condition_stale
from caravan.operator.writethrough import replicas_written_through
from caravan.store.store import ConfigMapListener, JobsListener, Store

JOB_RESOURCE = (GROUP, VERSION, JOB_PLURAL)
OWNED = {JOB_LABEL: kopf.PRESENT}


@dataclass
class OperatorShared:
    """Operator-wide state. Kopf hands each resource's handlers a shallow copy of the memo,
    so what handlers set must live inside one shared object, not on the memo itself
    (else every job, every pod would get a Reconciler of its own)."""

    kube: KubeClient | None = None
    reconciler: Reconciler | None = None
    closing: bool = False
    jobs_listener: JobsListener | None = None
    refresher: VolumeRefresher | None = None
    configmap_listener: ConfigMapListener | None = None
    # The operator's Events on the Jobs (DriftRepaired).
    recorder: EventRecorder | None = None
    # Each job's dependencies as its last event had them: the rules across jobs are
    # checked again only when these change (a job appears, goes or changes them), not
    # at each of the many status writes.
    dependencies_seen: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def request(self, bodies: dict[str, JSON | None]) -> None:
        # Before the first job event there is no reconciler yet; Kopf's initial listing
        # of the jobs reconciles every one of them anyway.
        if self.reconciler is not None:
            for job, body in bodies.items():
                self.reconciler.request(job, body)


def build_registry() -> kopf.OperatorRegistry:
    registry = kopf.OperatorRegistry()

    @kopf.on.login(registry=registry)
    async def login(memo: kopf.Memo, **_: Any) -> kopf.ConnectionInfo:
        # The same credentials as the API half (flags, kubeconfig, in-cluster token),
        # rather than Kopf's own discovery which needs the sync `kubernetes` package.
        configuration = await load_configuration(memo.config.kubeconfig, memo.config.context)
        return connection_info(configuration)

    @kopf.on.startup(registry=registry)
    async def start(memo: kopf.Memo, settings: kopf.OperatorSettings, **_: Any) -> None:
        settings.posting.level = 30  # WARNING: no Kubernetes Event per routine reconcile
        settings.watching.server_timeout = 300
        settings.watching.inactivity_timeout = 600
        # Kopf would list namespaces cluster-wide; Caravan serves one namespace and its
        # Role grants nothing cluster-wide, so scanning only costs 403s and retries.
        settings.scanning.disabled = True
        settings.persistence.diffbase_storage = NoDiffBase()
        shared: OperatorShared = memo.shared
        shared.kube = await KubeClient.connect(memo.config.kubeconfig, memo.config.context)
        # The operator's Events on the Jobs (DriftRepaired, Refused, AutoReverted, ...).
        shared.recorder = EventRecorder(shared.kube, memo.config.namespace, memo.config.identity)
        # Pods are watched once, by the store: when a job's allocations change its view,
        # the store says so here (from its own loop) and the job's status is rewritten.
        loop = asyncio.get_running_loop()

        def jobs_changed(names: set[str]) -> None:
            # On the store's loop: hand over the bodies it holds, so that no pass needs
            # to read the Job again (the store sees a write as soon as Kopf's watch does).
            bodies = {name: memo.store.job_bodies.get(name) for name in names}
            loop.call_soon_threadsafe(shared.request, bodies)

        shared.jobs_listener = jobs_changed
        memo.store.on_jobs_changed(jobs_changed)
        # The loggers and settings files in task pods follow their ConfigMaps at once.
        store: Store = memo.store
        watched = frozenset({memo.config.configmaps.loggers, memo.config.configmaps.settings})
        refresher = VolumeRefresher(
            kube=shared.kube,
            namespace=memo.config.namespace,
            watched=watched,
            configmaps=lambda: store.configmaps_data(watched),
            pods=store.running_pod_revisions,
        )

        def configmap_changed(name: str, _data: dict[str, str] | None) -> None:
            loop.call_soon_threadsafe(refresher.changed, name)

        shared.refresher = refresher
        shared.configmap_listener = configmap_changed
        store.on_configmap(configmap_changed)

    @kopf.on.cleanup(registry=registry)
    async def cleanup(memo: kopf.Memo, **_: Any) -> None:
        shared: OperatorShared = memo.shared
        shared.closing = True  # handlers still running must not start new passes
        if shared.jobs_listener is not None:
            memo.store.off_jobs_changed(shared.jobs_listener)
        if shared.configmap_listener is not None:
            memo.store.off_configmap(shared.configmap_listener)
        if shared.refresher is not None:
            await shared.refresher.close()
        if shared.reconciler is not None:
            await shared.reconciler.close()
        if shared.recorder is not None:
            await shared.recorder.close()
        if shared.kube is not None:
            await shared.kube.close()

    # The index functions are coroutines: Kopf runs a plain function in a thread pool, a
    # thread hop (and a wait for the GIL) per event for microseconds of work.
    @kopf.index(
        "apps", "v1", "deployments", id="deployments_by_job", labels=OWNED, registry=registry
    )
    async def deployments_by_job(
        name: str, labels: kopf.Labels, **_: Any
    ) -> dict[str, tuple[str, str]]:
        return {labels[JOB_LABEL]: (name, labels.get(TASK_GROUP_LABEL, ""))}

    # Every job's dependencies and status, as Kopf's own watch has them when a handler runs
    # (the store may lag): the rules across jobs are checked on these.
    @kopf.index(*JOB_RESOURCE, id="dependencies_by_job", registry=registry)
    async def dependencies_by_job(
        name: str, spec: kopf.Spec, **_: Any
    ) -> dict[str, tuple[str, ...]]:
        return {name: read_dependencies(spec)}

    @kopf.index(*JOB_RESOURCE, id="dependency_status_by_job", registry=registry)
    async def dependency_status_by_job(
        name: str, status: kopf.Status, **_: Any
    ) -> dict[str, dict[str, Any]]:
        return {name: dependency_condition_of(status)}

    @kopf.index("apps", "v1", "deployments", id="rollouts_by_job", labels=OWNED, registry=registry)
    async def rollouts_by_job(body: kopf.Body, labels: kopf.Labels, **_: Any) -> dict[str, Rollout]:
        return {labels[JOB_LABEL]: rollout_of(body)}

    def reconciler(memo: kopf.Memo, indexes: dict[str, Any]) -> Reconciler:
        # Built on first use: Kopf hands indexes only to handlers (as keyword arguments).
        # During cleanup a closed one is handed out, which ignores requests.
        shared: OperatorShared = memo.shared
        if shared.reconciler is None:
            assert shared.kube is not None, "handlers run after start-up"
            deployments: kopf.Index[str, tuple[str, str]] = indexes["deployments_by_job"]
            dependencies: kopf.Index[str, tuple[str, ...]] = indexes["dependencies_by_job"]
            rollouts: kopf.Index[str, Rollout] = indexes["rollouts_by_job"]
            store: Store = memo.store
            recorder = shared.recorder
            shared.reconciler = Reconciler(
                kube=shared.kube,
                namespace=memo.config.namespace,
                pods=store.pods_of,
                deployments=lambda job: list(deployments.get(job, ())),
                decorators=memo.decorators,
                policy=memo.policy,
                recorder=recorder,
                failures=store.deployments_of,
                on_drift=lambda body, name, how: _drift_repaired(shared, body, name, how),
                on_result=lambda result: metrics.RECONCILES.labels(result).inc(),
                revisions=RevisionKeeper(shared.kube, memo.config.namespace),
                dependencies=lambda: DependencyGraph(dependencies),
                rollouts=lambda job: list(rollouts.get(job, ())),
                rollout_keeper=RolloutKeeper(shared.kube, memo.config.namespace, recorder),
            )
        if shared.closing:
            shared.reconciler.closed = True
        return shared.reconciler

    @kopf.on.event(*JOB_RESOURCE, registry=registry)
    async def job_event(
        name: str, type: str, body: kopf.Body, memo: kopf.Memo, **indexes: Any
    ) -> None:
        shared: OperatorShared = memo.shared
        graph = DependencyGraph(indexes["dependencies_by_job"])
        if type != "DELETED":
            # The event carries the Job as it is now: no need to read it again. The echo
            # of our own status write (same generation) needs no pass, unless its
            # condition on dependencies was written from a graph that has moved since.
            problem = dependency_problem_of(name, graph)
            stale = dependency_condition_stale(body.get("status"), problem)
            reconciler(memo, indexes).request(name, body, new_spec_only=not stale)
        # A job appearing, going or changing its dependencies can settle or break the
        # dependencies of others (a missing job, a cycle): those get a pass too.
        seen = shared.dependencies_seen
        now = None if type == "DELETED" else graph.get(name)
        before, known = seen.get(name), name in seen
        if now is None:
            seen.pop(name, None)
        else:
            seen[name] = now
        if known == (now is not None) and before == now:
            return  # the graph is as it was: nobody else's dependencies moved
        statuses: kopf.Index[str, dict[str, Any]] = indexes["dependency_status_by_job"]
        for job, found in statuses.items():
            status = next(iter(found), {})
            if job != name and dependency_condition_stale(
                status, dependency_problem_of(job, graph)
            ):
                reconciler(memo, indexes).request(job)

    @kopf.on.event("apps", "v1", "deployments", labels=OWNED, registry=registry)
    async def deployment_event(
        name: str,
        type: str,
        body: kopf.Body,
        labels: kopf.Labels,
        memo: kopf.Memo,
        **indexes: Any,
    ) -> None:
        # A hand-scaled or deleted Deployment makes its job reconcile: drift is repaired.
        # Its status moving (pods starting) or our own apply's echo does not.
        generation = int(body.get("metadata", {}).get("generation") or 0)
        deleted = type == "DELETED"
        reconciler(memo, indexes).deployment_changed(
            labels[JOB_LABEL],
            name,
            generation,
            deleted=deleted,
            changed_by=None if deleted else foreign_spec_manager(body),
            written_through=None if deleted else replicas_written_through(body),
        )
        if type != "DELETED":
            reconciler(memo, indexes).rollout_moved(labels[JOB_LABEL], rollout_of(body))

    return registry


class NoDiffBase(kopf.DiffBaseStorage):
    """Kopf keeps a copy of each object's last handled state, to tell create/update/delete
    handlers what changed. Caravan has none (only event and index handlers), so that copy,
    a deep copy and a diff at every event of every Job and Deployment, is not made."""

    def build(
        self, *, body: kopf.Body, extra_fields: Iterable[Any] | None = None
    ) -> kopf.BodyEssence:
        return kopf.BodyEssence()

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        return None

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence) -> None:
        return None


class DependencyGraph(Mapping[str, tuple[str, ...]]):
    """Kopf's index of every job's dependencies, read as a mapping of job to dependencies
    without copying it (a check looks at a few jobs, not all of them)."""

    def __init__(self, index: Any) -> None:
        self.index = index

    def __getitem__(self, job: str) -> tuple[str, ...]:
        return tuple(next(iter(self.index[job]), ()))

    def __contains__(self, job: object) -> bool:
        return job in self.index

    def __iter__(self) -> Iterator[str]:
        return iter(self.index)

    def __len__(self) -> int:
        return len(self.index)


def _drift_repaired(shared: OperatorShared, body: JSON, name: str, how: str) -> None:
    if shared.recorder is not None:
        shared.recorder.record(
            job_regarding(body),
            "Normal",
            "DriftRepaired",
            f"Deployment {name} {how}; Caravan applied the job's definition to it again",
            "Repair",
        )


def connection_info(configuration: Any) -> kopf.ConnectionInfo:
    """Kopf's view of a kubernetes-asyncio Configuration."""
    scheme = token = None
    bearer = (configuration.api_key or {}).get("BearerToken")
    if bearer:
        scheme, _, token = str(bearer).partition(" ")
        if not token:
            scheme, token = "Bearer", scheme
    return kopf.ConnectionInfo(
        server=configuration.host,
        ca_path=configuration.ssl_ca_cert,
        insecure=not configuration.verify_ssl,
        certificate_path=configuration.cert_file,
        private_key_path=configuration.key_file,
        scheme=scheme,
        token=token,
    )
