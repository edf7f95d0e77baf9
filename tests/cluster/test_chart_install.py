"""The Helm chart on the test cluster: it installs, and its RBAC is enough and no wider.

Caravan runs as a host process with the chart's ServiceAccount token, which proves the
Role the chart grants is what Caravan needs (tests/e2e runs the chart's image as a pod on
the real node).
"""

from __future__ import annotations

import pathlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from caravan.kube.client import (
    CONFIGMAPS,
    DEPLOYMENTS,
    JOBS,
    NAMESPACES,
    SECRETS,
    KubeClient,
    KubeError,
)
from tests.cluster.conftest import running_caravan
from tests.cluster.kubeutil import (
    eventually,
    group,
    job_body,
    request_token,
    token_kubeconfig,
)
from tests.helm import helm, versions

ROOT = pathlib.Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "caravan"
RELEASE = "caravan"


@pytest.fixture
async def release(kubeconfig: str, namespace: str) -> AsyncIterator[str]:
    """The chart installed in the test namespace (the CRD is the session's, so not again)."""
    helm(
        "install",
        RELEASE,
        str(CHART),
        "--namespace",
        namespace,
        "--kubeconfig",
        kubeconfig,
        "--set",
        "crds.install=false",
        "--set",
        "auth.mode=kubernetes",
        # The chart's own pod goes to a fake node: here Caravan runs as a host process
        # (tests/e2e runs the image as a real pod).
        "--set-json",
        'nodeSelector={"type": "kwok"}',
        "--set-json",
        'tolerations=[{"key": "kwok.x-k8s.io/node", "operator": "Exists", "effect": "NoSchedule"}]',
        "--wait=false",
    )
    yield RELEASE
    helm("uninstall", RELEASE, "--namespace", namespace, "--kubeconfig", kubeconfig, check=False)


async def test_helm_install_creates_what_it_should(
    release: str, kube: KubeClient, namespace: str
) -> None:
    assert versions()["k8s_version"].startswith("v1.")
    rbac = f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}"
    await kube.get(f"/api/v1/namespaces/{namespace}/serviceaccounts/{RELEASE}")
    role = await kube.get(f"{rbac}/roles/{RELEASE}")
    await kube.get(f"{rbac}/rolebindings/{RELEASE}")
    deployment = await kube.get(DEPLOYMENTS.item(namespace, RELEASE))
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == RELEASE
    await kube.get(f"/api/v1/namespaces/{namespace}/services/{RELEASE}")
    for suffix in ("logs", "loggers", "events", "settings"):
        await kube.get(CONFIGMAPS.item(namespace, f"caravan-{suffix}"))
    delegator = await kube.get(
        f"/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/{RELEASE}-{namespace}-auth-delegator"
    )
    assert delegator["roleRef"]["name"] == "system:auth-delegator"
    secret_rules = [r for r in role["rules"] if "secrets" in r.get("resources", [])]
    assert secret_rules, "the Role must grant Secrets in its own namespace"


async def test_chart_rbac_is_sufficient_for_caravan(
    release: str, kube: KubeClient, kubeconfig: str, namespace: str, tmp_path: pathlib.Path
) -> None:
    token = await request_token(kube, namespace, RELEASE)
    as_chart = token_kubeconfig(kubeconfig, token, str(tmp_path / "chart-sa.kubeconfig"))
    await kube.create(JOBS.collection(namespace), job_body("web", [group("g", count_init=1)]))
    async with (
        running_caravan(namespace=namespace, kubeconfig=as_chart) as caravan,
        httpx.AsyncClient(base_url=caravan.url, timeout=30) as api,
    ):
        view = await eventually(
            lambda: api.get("/v1/jobs/web"),
            lambda r: r.status_code == 200 and r.json()["status"] == "running",
            timeout=60,
            what="the job running under the chart's RBAC",
        )
        assert view.json()["taskGroups"][0]["summary"]["running"] == 1
        r = await api.post(
            "/v1/jobs/updatecounts", json={"jobID": "web", "taskGroup": "g", "count": 2}
        )
        assert r.status_code == 200, r.text
        await eventually(
            lambda: kube.get(DEPLOYMENTS.item(namespace, "web-g")),
            lambda d: d["spec"]["replicas"] == 3,
            what="the Deployment scaled by the operator as the chart's ServiceAccount",
        )
        status = await eventually(
            lambda: kube.get(JOBS.item(namespace, "web")),
            lambda j: j.get("status", {}).get("desired") == 3,
            what="job status written as the chart's ServiceAccount",
        )
        assert status["status"]["status"] == "running"
        # Restarts (a Job patch, a pod delete) and the Events they record and read back.
        assert (await api.post("/v1/jobs/restart/web")).status_code == 200
        [alloc, *_] = (await api.get("/v1/jobs/web/allocations")).json()
        r = await api.post(f"/v1/allocations/{alloc['allocID']}/restart")
        assert r.status_code == 200, r.text
        await eventually(
            lambda: api.get("/v1/jobs/web/activity"),
            lambda r: (
                {"Scaled", "Restarted"}
                <= {i["reason"] for i in r.json()["items"] if i["object"] == "job"}
            ),
            what="Caravan's Events recorded and read under the chart's RBAC",
        )
        for method, path, body in EXTRA_SCENARIOS:
            r = await api.request(method, path, json=body)
            assert r.status_code < 400, (method, path, r.status_code, r.text)


# Scenarios of the other areas, run under the chart's RBAC; each must succeed.
EXTRA_SCENARIOS: list[tuple[str, str, Any]] = []


async def test_chart_rbac_is_no_wider(
    release: str, kube: KubeClient, kubeconfig: str, namespace: str
) -> None:
    other = f"t-other-{uuid.uuid4().hex[:5]}"
    await kube.create(NAMESPACES.collection(None), {"metadata": {"name": other}})
    await kube.create(
        SECRETS.collection(other), {"metadata": {"name": "not-yours"}, "stringData": {"k": "v"}}
    )
    token = await request_token(kube, namespace, RELEASE)
    as_chart = await KubeClient.connect_with_token(token, kubeconfig)
    try:
        for path in (
            SECRETS.item(other, "not-yours"),
            SECRETS.collection(other),
            SECRETS.collection(None),
            "/api/v1/namespaces",
            # Not even CRDs: the operator follows what the store watches in the namespace.
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
        ):
            with pytest.raises(KubeError) as denied:
                await as_chart.get(path)
            assert denied.value.status == 403, path
        # ... while its own namespace is fine.
        await as_chart.list_items(SECRETS.collection(namespace))
    finally:
        await as_chart.close()
        await kube.delete(NAMESPACES.item(None, other))
