"""Several replicas: all serve the API, exactly one (the Lease holder) reconciles."""

from __future__ import annotations

import contextlib

import httpx

from caravan.kube.client import DEPLOYMENTS, JOBS, KubeClient, KubeError
from caravan.operator.leader import LEASES
from tests.cluster.conftest import running_caravan
from tests.cluster.kubeutil import eventually, group, job_body


async def holder(kube: KubeClient, namespace: str) -> str:
    try:
        lease = await kube.get(LEASES.item(namespace, "caravan-operator"))
    except KubeError:
        return ""
    return str(lease["spec"].get("holderIdentity") or "")


async def test_one_replica_reconciles_and_another_takes_over(
    kube: KubeClient, kubeconfig: str, namespace: str
) -> None:
    common = {
        "namespace": namespace,
        "kubeconfig": kubeconfig,
        "leader_election": True,
        "lease_seconds": 3.0,
    }
    async with contextlib.AsyncExitStack() as stack:
        first = await stack.enter_async_context(running_caravan(identity="first", **common))
        await eventually(
            lambda: holder(kube, namespace),
            lambda h: h == "first",
            what="the first replica to take the Lease",
        )
        second = await stack.enter_async_context(running_caravan(identity="second", **common))
        assert first.operator is not None and first.operator.is_alive()
        assert second.operator is None  # a follower serves the API but does not reconcile

        await kube.create(JOBS.collection(namespace), job_body("a", [group("g")]))
        await eventually(lambda: kube.get(DEPLOYMENTS.item(namespace, "a-g")), bool)
        async with httpx.AsyncClient(base_url=second.url) as api:
            view = await eventually(lambda: api.get("/v1/jobs/a"), lambda r: r.status_code == 200)
            assert view.json()["name"] == "a"  # every replica answers from its own store

        await first.stop()  # releases the Lease on the way out
        await eventually(
            lambda: holder(kube, namespace),
            lambda h: h == "second",
            timeout=20,
            what="the second replica to take over",
        )
        await kube.create(JOBS.collection(namespace), job_body("b", [group("g")]))
        deployment = await eventually(
            lambda: kube.get(DEPLOYMENTS.item(namespace, "b-g")),
            bool,
            timeout=30,
            what="the new leader to reconcile",
        )
        assert deployment["spec"]["replicas"] == 1
