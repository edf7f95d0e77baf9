"""Loggers end to end: defaults in their ConfigMap, overrides on the pod, the mounted file."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx

from caravan.kube.client import CONFIGMAPS, DEPLOYMENTS, JOBS, PODS, KubeClient
from caravan.runner import Caravan
from tests.cluster.conftest import JSON_TYPE
from tests.cluster.kubeutil import eventually, group, job_body, pod_template

LOGGERS_CONFIGMAP = "caravan-loggers"
ANNOTATION = "caravan.dev/loggers"


async def get_json(api: httpx.AsyncClient, path: str) -> Any:
    response = await api.get(path)
    assert response.status_code == 200, response.text
    return response.json()


async def one_allocation(kube: KubeClient, namespace: str, caravan: Caravan, job: str) -> str:
    template = pod_template(containers=["main", "side"])
    await kube.create(
        JOBS.collection(namespace), job_body(job, [group("web", count_init=1, template=template)])
    )
    assert caravan.state is not None
    store = caravan.state.store
    pods = await eventually(
        lambda: asyncio.sleep(0, [p.name for p in store.pods_of(job, "web")]),
        lambda names: len(names) == 1,
        what="the allocation in the store",
    )
    return str(pods[0])


async def annotation(kube: KubeClient, namespace: str, pod: str) -> Any:
    body = await kube.get(PODS.item(namespace, pod))
    return json.loads(body["metadata"]["annotations"][ANNOTATION])


async def test_defaults_are_stored_in_the_configmap_and_bad_levels_change_nothing(
    kube: KubeClient, namespace: str, api: httpx.AsyncClient
) -> None:
    assert await get_json(api, "/v1/log/defaults") == {}
    response = await api.post("/v1/log/defaults/web", json={"leaf": "info", "root": "warning"})
    assert response.status_code == 200, response.text
    assert response.json() == {"leaf": "info", "root": "warning"}
    assert (await api.post("/v1/log/defaults/db", json={"q": "error"})).status_code == 200
    expected = {"web": {"leaf": "info", "root": "warning"}, "db": {"q": "error"}}
    assert await get_json(api, "/v1/log/defaults") == expected
    stored = await kube.get(CONFIGMAPS.item(namespace, LOGGERS_CONFIGMAP))
    assert json.loads(stored["data"]["loggers.json"]) == expected

    # Replacing one loggerID leaves the others alone.
    assert (await api.post("/v1/log/defaults/web", json={"leaf": "debug"})).status_code == 200
    expected["web"] = {"leaf": "debug"}
    assert await get_json(api, "/v1/log/defaults") == expected
    stored = await kube.get(CONFIGMAPS.item(namespace, LOGGERS_CONFIGMAP))

    for body in ({"leaf": "loud"}, {"leaf": "INFO"}, {"leaf": 1}, ["leaf"], "info", {"": "info"}):
        response = await api.post("/v1/log/defaults/web", json=body)
        assert response.status_code == 400, (body, response.text)
        assert response.json()["error"]
    response = await api.post("/v1/log/defaults/web", content=b"{oops", headers=JSON_TYPE)
    assert response.status_code == 400
    assert await get_json(api, "/v1/log/defaults") == expected
    after = await kube.get(CONFIGMAPS.item(namespace, LOGGERS_CONFIGMAP))
    assert after["metadata"]["resourceVersion"] == stored["metadata"]["resourceVersion"]

    # A document broken by hand is never overwritten by a partial update.
    await kube.merge_patch(
        CONFIGMAPS.item(namespace, LOGGERS_CONFIGMAP), {"data": {"loggers.json": "{broken"}}
    )
    await eventually(lambda: get_json(api, "/v1/log/defaults"), lambda d: d == {})
    response = await api.post("/v1/log/defaults/web", json={"leaf": "info"})
    assert response.status_code == 409, response.text
    broken = await kube.get(CONFIGMAPS.item(namespace, LOGGERS_CONFIGMAP))
    assert broken["data"]["loggers.json"] == "{broken"


async def test_overrides_live_on_the_pod_and_delete_returns_to_the_defaults(
    kube: KubeClient, namespace: str, caravan: Caravan, api: httpx.AsyncClient
) -> None:
    pod = await one_allocation(kube, namespace, caravan, "web")
    assert await get_json(api, f"/v1/log/allocs/{pod}") == {}
    assert await annotation(kube, namespace, pod) == {}  # from the pod template

    response = await api.post(f"/v1/log/allocs/{pod}/web", json={"leaf": "debug"})
    assert response.status_code == 200, response.text
    assert response.json() == {"web": {"leaf": "debug"}}
    assert (await api.post(f"/v1/log/allocs/{pod}/db", json={"q": "panic"})).status_code == 200
    expected = {"web": {"leaf": "debug"}, "db": {"q": "panic"}}
    assert await get_json(api, f"/v1/log/allocs/{pod}") == expected
    assert await annotation(kube, namespace, pod) == expected
    # Defaults are untouched by an override.
    assert await get_json(api, "/v1/log/defaults") == {}

    before = await kube.get(PODS.item(namespace, pod))
    for body in ({"leaf": "chatty"}, {"leaf": None}, [1], "debug"):
        response = await api.post(f"/v1/log/allocs/{pod}/web", json=body)
        assert response.status_code == 400, (body, response.text)
    after = await kube.get(PODS.item(namespace, pod))
    assert after["metadata"]["annotations"] == before["metadata"]["annotations"]

    response = await api.delete(f"/v1/log/allocs/{pod}/web")
    assert response.status_code == 200, response.text
    assert response.json() == {"db": {"q": "panic"}}
    assert await get_json(api, f"/v1/log/allocs/{pod}") == {"db": {"q": "panic"}}
    assert await annotation(kube, namespace, pod) == {"db": {"q": "panic"}}
    # Deleting what is not there is a no-op.
    assert (await api.delete(f"/v1/log/allocs/{pod}/web")).status_code == 200

    for method, path in (
        ("GET", "/v1/log/allocs/nobody"),
        ("POST", "/v1/log/allocs/nobody/web"),
        ("DELETE", "/v1/log/allocs/nobody/web"),
    ):
        response = await api.request(method, path, json={"leaf": "info"})
        assert response.status_code == 404, (method, path, response.text)


async def test_a_pod_that_is_not_an_allocation_is_unknown(
    kube: KubeClient, namespace: str, api: httpx.AsyncClient
) -> None:
    await kube.create(
        PODS.collection(namespace),
        {"metadata": {"name": "outsider"}, "spec": pod_template()["spec"]},
    )
    response = await api.post("/v1/log/allocs/outsider/web", json={"leaf": "info"})
    assert response.status_code == 404
    pod = await kube.get(PODS.item(namespace, "outsider"))
    assert ANNOTATION not in (pod["metadata"].get("annotations") or {})


async def test_concurrent_overrides_lose_nothing(
    kube: KubeClient, namespace: str, caravan: Caravan, api: httpx.AsyncClient
) -> None:
    pod = await one_allocation(kube, namespace, caravan, "busy")
    # Another writer (kubectl) changes an unrelated annotation in the middle.
    writes = [api.post(f"/v1/log/allocs/{pod}/id{i}", json={"l": "warning"}) for i in range(20)]
    other = kube.merge_patch(
        PODS.item(namespace, pod), {"metadata": {"annotations": {"example.com/x": "y"}}}
    )
    answers, _ = await asyncio.gather(asyncio.gather(*writes), other)
    assert all(r.status_code == 200 for r in answers)
    expected = {f"id{i}": {"l": "warning"} for i in range(20)}
    assert await get_json(api, f"/v1/log/allocs/{pod}") == expected
    assert await annotation(kube, namespace, pod) == expected


async def test_the_deployment_template_mounts_the_levels_into_every_task(
    kube: KubeClient, namespace: str, caravan: Caravan, api: httpx.AsyncClient
) -> None:
    pod = await one_allocation(kube, namespace, caravan, "mounted")
    deployment = await kube.get(DEPLOYMENTS.item(namespace, "mounted-web"))
    template = deployment["spec"]["template"]
    volumes = {v["name"]: v for v in template["spec"]["volumes"]}
    sources = volumes["caravan-loggers"]["projected"]["sources"]
    assert sources[0]["configMap"]["name"] == LOGGERS_CONFIGMAP
    assert sources[0]["configMap"]["optional"] is True
    assert sources[1]["downwardAPI"]["items"][0]["fieldRef"]["fieldPath"] == (
        "metadata.annotations['caravan.dev/loggers']"
    )
    for container in template["spec"]["containers"]:
        mounts = [m for m in container["volumeMounts"] if m["name"] == "caravan-loggers"]
        assert mounts == [
            {"name": "caravan-loggers", "mountPath": "/etc/caravan/loggers", "readOnly": True}
        ]
    assert template["metadata"]["annotations"][ANNOTATION] == "{}"
    # The pod carries it too, and an override changes only the pod, not the template,
    # so the Deployment does not roll its pods over a log level.
    running = await kube.get(PODS.item(namespace, pod))
    assert {v["name"] for v in running["spec"]["volumes"]} >= {"caravan-loggers"}
    assert (await api.post(f"/v1/log/allocs/{pod}/web", json={"a": "error"})).status_code == 200
    again = await kube.get(DEPLOYMENTS.item(namespace, "mounted-web"))
    assert again["metadata"]["generation"] == deployment["metadata"]["generation"]
    assert again["spec"]["template"]["metadata"]["annotations"][ANNOTATION] == "{}"
