"""The local control plane is real: scheduling, readiness, pod logs and RBAC work."""

from __future__ import annotations

import pathlib
from typing import Any

from caravan.kube.client import DEPLOYMENTS, PODS, KubeClient, KubeError
from tests.cluster.kubeutil import cri_log, eventually, pod_template, serve_pod_log


def _deployment(name: str, replicas: int) -> dict[str, Any]:
    labels = {"app": name}
    template = pod_template()
    template["metadata"]["labels"] = labels
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {"replicas": replicas, "selector": {"matchLabels": labels}, "template": template},
    }


def _ready(pod: dict[str, Any]) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in pod.get("status", {}).get("conditions", [])
    )


async def test_deployment_pods_become_ready(kube: KubeClient, namespace: str) -> None:
    await kube.create(DEPLOYMENTS.collection(namespace), _deployment("web", 2))
    pods = await eventually(
        lambda: kube.list_items(PODS.collection(namespace), labelSelector="app=web"),
        lambda r: len(r["items"]) == 2 and all(_ready(p) for p in r["items"]),
        what="2 ready pods",
    )
    assert {p["status"]["phase"] for p in pods["items"]} == {"Running"}
    assert all(p["spec"]["nodeName"] for p in pods["items"])
    deployment = await eventually(
        lambda: kube.get(DEPLOYMENTS.item(namespace, "web")),
        lambda d: d.get("status", {}).get("readyReplicas") == 2,
        what="readyReplicas 2",
    )
    assert deployment["status"]["readyReplicas"] == 2


async def test_pod_log_is_served_by_kwok(
    kube: KubeClient, namespace: str, tmp_path: pathlib.Path
) -> None:
    log_file = tmp_path / "web.log"
    log_file.write_text(cri_log([("stdout", "hello from kwok"), ("stderr", "an error line")]))
    await kube.create(
        PODS.collection(namespace),
        {"metadata": {"name": "talker"}, "spec": pod_template()["spec"]},
    )
    await serve_pod_log(kube, namespace, "talker", str(log_file))
    await eventually(lambda: kube.get(PODS.item(namespace, "talker")), _ready, what="pod ready")

    async def read_log() -> str:
        response = await kube.stream(PODS.item(namespace, "talker", "log"), query={})
        try:
            return (await response.read()).decode()
        finally:
            response.release()

    text = await eventually(read_log, lambda t: "hello from kwok" in t, what="log content")
    assert text == "hello from kwok\nan error line\n"


async def test_impossible_node_selector_stays_unscheduled(kube: KubeClient, namespace: str) -> None:
    spec = pod_template(node_selector={"caravan.test/no-such-node": "true"})["spec"]
    await kube.create(PODS.collection(namespace), {"metadata": {"name": "stuck"}, "spec": spec})
    pod = await eventually(
        lambda: kube.get(PODS.item(namespace, "stuck")),
        lambda p: any(
            c.get("type") == "PodScheduled" and c.get("reason") == "Unschedulable"
            for c in p.get("status", {}).get("conditions", [])
        ),
        what="the scheduler to give up on the pod",
    )
    assert pod["status"]["phase"] == "Pending"
    assert not pod["spec"].get("nodeName")


async def test_rbac_denies_a_service_account_without_binding(
    kube: KubeClient, kubeconfig: str, namespace: str
) -> None:
    await kube.create(
        f"/api/v1/namespaces/{namespace}/serviceaccounts", {"metadata": {"name": "nobody"}}
    )
    token_request = await kube.create(
        f"/api/v1/namespaces/{namespace}/serviceaccounts/nobody/token",
        {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {"expirationSeconds": 600},
        },
    )
    token = token_request["status"]["token"]
    as_nobody = await KubeClient.connect_with_token(token, kubeconfig)
    try:
        try:
            await as_nobody.list_items(PODS.collection(namespace))
        except KubeError as exc:
            assert exc.status == 403
            assert "system:serviceaccount:" + namespace + ":nobody" in exc.message
        else:
            raise AssertionError("an unbound ServiceAccount could list pods")
    finally:
        await as_nobody.close()
