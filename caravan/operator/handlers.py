"""Kopf handlers: thin, they only tell the Reconciler which job to look at.

Kopf watches the Deployments (drift, rollouts); the Jobs, pods and ConfigMaps come from
the store, which the API half's watches fill (one watch of each kind per process)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import kopf

from caravan import metrics
from caravan.kube.client import JSON, KubeClient, load_configuration
from caravan.kube.recorder import EventRecorder, job_regarding
from caravan.labels import (
    JOB_LABEL,
    TASK_GROUP_LABEL,
)
from caravan.operator.drift import foreign_spec_manager
from caravan.operator.jobfeed import JobFeed, OnLoop
from caravan.operator.reconcile import Reconciler
from caravan.operator.refresh import VolumeRefresher
from caravan.operator.revisions import RevisionKeeper
from caravan.operator.rollouts import Rollout, RolloutKeeper, rollout_of
from caravan.operator.writethrough import replicas_written_through
from caravan.store.store import ConfigMapListener, JobsListener, Store

OWNED = {JOB_LABEL: kopf.PRESENT}


@dataclass
class OperatorShared:
    """Operator-wide state. Kopf hands each resource's handlers a shallow copy of the memo,
    so what handlers set must live inside one shared object, not on the memo itself
    (else every job, every pod would get a Reconciler of its own)."""

    kube: KubeClient | None = None
    reconciler: Reconciler | None = None
    jobs_listener: JobsListener | None = None
    jobs_follower: OnLoop | None = None
    refresher: VolumeRefresher | None = None
    configmap_listener: ConfigMapListener | None = None
    # The operator's Events on the Jobs (DriftRepaired).
    recorder: EventRecorder | None = None

    def request(self, bodies: dict[str, JSON | None]) -> None:
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
    async def start(memo: kopf.Memo, settings: kopf.OperatorSettings, **indexes: Any) -> None:
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
        store: Store = memo.store
        # Kopf hands its indexes to start-up handlers empty, and fills them as it lists
        # the Deployments; until then a pass sees no Deployment and no rollout, which only
        # defers what those decide: each Deployment's first event asks for a pass anyway.
        graph: dict[str, tuple[str, ...]] = {}  # every job's dependencies (the feed's)
        shared.reconciler = reconciler = build_reconciler(memo, shared, indexes, graph)
        # Jobs come from the store's watch (caravan.operator.jobfeed); pods are watched
        # once, by the store too: when a job's allocations change its view, the store
        # says so (from its own loop) and the job's status is rewritten.
        loop = asyncio.get_running_loop()
        shared.jobs_follower = OnLoop(JobFeed(reconciler.request, dependencies=graph), loop)
        store.follow_jobs(shared.jobs_follower)

        def jobs_changed(names: set[str]) -> None:
            # On the store's loop: hand over the bodies it holds, so that no pass needs
            # to read the Job again.
            bodies = {name: store.job_bodies.get(name) for name in names}
            loop.call_soon_threadsafe(shared.request, bodies)

        shared.jobs_listener = jobs_changed
        store.on_jobs_changed(jobs_changed)
        # The loggers and settings files in task pods follow their ConfigMaps at once.
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
        if shared.reconciler is not None:
            shared.reconciler.closed = True  # handlers still running start no new pass
        if shared.jobs_follower is not None:
            memo.store.unfollow_jobs(shared.jobs_follower)
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

    @kopf.index("apps", "v1", "deployments", id="rollouts_by_job", labels=OWNED, registry=registry)
    async def rollouts_by_job(body: kopf.Body, labels: kopf.Labels, **_: Any) -> dict[str, Rollout]:
        return {labels[JOB_LABEL]: rollout_of(body)}

    @kopf.on.event("apps", "v1", "deployments", labels=OWNED, registry=registry)
    async def deployment_event(
        name: str,
        type: str,
        body: kopf.Body,
        labels: kopf.Labels,
        memo: kopf.Memo,
        **_: Any,
    ) -> None:
        # A hand-scaled or deleted Deployment makes its job reconcile: drift is repaired.
        # Its status moving (pods starting) or our own apply's echo does not.
        reconciler: Reconciler = memo.shared.reconciler
        generation = int(body.get("metadata", {}).get("generation") or 0)
        deleted = type == "DELETED"
        reconciler.deployment_changed(
            labels[JOB_LABEL],
            name,
            generation,
            deleted=deleted,
            changed_by=None if deleted else foreign_spec_manager(body),
            written_through=None if deleted else replicas_written_through(body),
        )
        if type != "DELETED":
            reconciler.rollout_moved(labels[JOB_LABEL], rollout_of(body))

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


def build_reconciler(
    memo: kopf.Memo,
    shared: OperatorShared,
    indexes: Any,
    dependencies: Mapping[str, tuple[str, ...]],
) -> Reconciler:
    """The one Reconciler, wired to Kopf's Deployment indexes (live: Kopf fills them) and
    to every job's `dependencies` (kept by the JobFeed)."""
    assert shared.kube is not None, "built at start-up, once connected"
    deployments: kopf.Index[str, tuple[str, str]] = indexes["deployments_by_job"]
    rollouts: kopf.Index[str, Rollout] = indexes["rollouts_by_job"]
    store: Store = memo.store
    recorder = shared.recorder
    return Reconciler(
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
        dependencies=lambda: dependencies,
        rollouts=lambda job: list(rollouts.get(job, ())),
        rollout_keeper=RolloutKeeper(shared.kube, memo.config.namespace, recorder),
    )


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
