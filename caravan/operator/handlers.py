"""Kopf runs the operator: its credentials, its start-up and its cleanup, in its thread.

What the operator follows (Jobs, Deployments, pods, ConfigMaps) comes from the store,
which the API half's watches fill: one watch of each kind per process, each event decoded
once (caravan.operator.feeds says why). The handlers here only wire that to the
Reconciler."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import kopf

from caravan import metrics
from caravan.kube.client import JSON, KubeClient, load_configuration
from caravan.kube.recorder import EventRecorder, job_regarding
from caravan.operator.feeds import DeploymentFeed, DeploymentIndex, JobFeed, OnLoop, hand_over
from caravan.operator.reconcile import Reconciler
from caravan.operator.refresh import VolumeRefresher
from caravan.operator.revisions import RevisionKeeper
from caravan.operator.rollouts import RolloutKeeper
from caravan.store.store import (
    KIND_DEPLOYMENT,
    KIND_JOB,
    ConfigMapListener,
    JobsListener,
    Store,
)


@dataclass
class OperatorShared:
    """What start-up sets up and cleanup takes down (one object in Kopf's memo)."""

    kube: KubeClient | None = None
    reconciler: Reconciler | None = None
    jobs_listener: JobsListener | None = None
    followers: dict[str, OnLoop] = field(default_factory=dict)  # by the kind followed
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
    async def start(memo: kopf.Memo, settings: kopf.OperatorSettings, **_: Any) -> None:
        settings.posting.level = 30  # WARNING: no Kubernetes Event per routine reconcile
        # Kopf would list namespaces cluster-wide; Caravan serves one namespace and its
        # Role grants nothing cluster-wide, so scanning only costs 403s and retries.
        settings.scanning.disabled = True
        shared: OperatorShared = memo.shared
        shared.kube = await KubeClient.connect(memo.config.kubeconfig, memo.config.context)
        # The operator's Events on the Jobs (DriftRepaired, Refused, AutoReverted, ...).
        shared.recorder = EventRecorder(shared.kube, memo.config.namespace, memo.config.identity)
        store: Store = memo.store
        loop = asyncio.get_running_loop()
        # Jobs and Deployments come from the store's watches (caravan.operator.feeds).
        # Until the Deployments are listed, a pass sees none and no rollout: that only
        # defers what those decide, as each Deployment's first change asks for a pass.
        deployments = DeploymentIndex()
        graph: dict[str, tuple[str, ...]] = {}  # every job's dependencies, kept by JobFeed
        shared.reconciler = reconciler = build_reconciler(memo, shared, deployments, graph)
        shared.followers = {
            KIND_JOB: OnLoop(JobFeed(reconciler, dependencies=graph), loop),
            KIND_DEPLOYMENT: OnLoop(DeploymentFeed(reconciler, deployments), loop),
        }
        for kind, follower in shared.followers.items():
            store.follow(kind, follower)

        # Pods are watched once, by the store too: when a job's allocations change its
        # view, the store says so (from its own loop) and the job's status is rewritten.
        def jobs_changed(names: set[str]) -> None:
            # On the store's loop: hand over the bodies it holds, so that no pass needs
            # to read the Job again.
            bodies = {name: store.job_bodies.get(name) for name in names}
            hand_over(loop, shared.request, bodies)

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
            hand_over(loop, refresher.changed, name)

        shared.refresher = refresher
        shared.configmap_listener = configmap_changed
        store.on_configmap(configmap_changed)

    @kopf.on.cleanup(registry=registry)
    async def cleanup(memo: kopf.Memo, **_: Any) -> None:
        shared: OperatorShared = memo.shared
        store: Store = memo.store
        if shared.reconciler is not None:
            shared.reconciler.closed = True  # what is still queued starts no new pass
        for kind, follower in shared.followers.items():
            store.unfollow(kind, follower)
        if shared.jobs_listener is not None:
            store.off_jobs_changed(shared.jobs_listener)
        if shared.configmap_listener is not None:
            store.off_configmap(shared.configmap_listener)
        if shared.refresher is not None:
            await shared.refresher.close()
        if shared.reconciler is not None:
            await shared.reconciler.close()
        if shared.recorder is not None:
            await shared.recorder.close()
        if shared.kube is not None:
            await shared.kube.close()

    return registry


def build_reconciler(
    memo: kopf.Memo,
    shared: OperatorShared,
    deployments: DeploymentIndex,
    dependencies: Mapping[str, tuple[str, ...]],
) -> Reconciler:
    """The one Reconciler, wired to what the feeds keep: each job's Deployments and
    rollouts, and every job's dependencies."""
    assert shared.kube is not None, "built at start-up, once connected"
    store: Store = memo.store
    recorder = shared.recorder
    return Reconciler(
        kube=shared.kube,
        namespace=memo.config.namespace,
        pods=store.pods_of,
        deployments=deployments.deployments_of,
        decorators=memo.decorators,
        policy=memo.policy,
        recorder=recorder,
        failures=store.deployments_of,
        on_drift=lambda body, name, how: _drift_repaired(shared, body, name, how),
        on_result=lambda result: metrics.RECONCILES.labels(result).inc(),
        revisions=RevisionKeeper(shared.kube, memo.config.namespace),
        dependencies=lambda: dependencies,
        rollouts=deployments.rollouts_of,
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
