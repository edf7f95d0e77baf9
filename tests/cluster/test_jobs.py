"""Jobs end to end: the operator and /v1/jobs against a real kube-apiserver."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

from caravan import labels
from caravan.kube.client import DEPLOYMENTS, JOBS, PODS, KubeClient, KubeError
from caravan.kube.scaler import FIELD_MANAGER
from tests.cluster.conftest import running_caravan
from tests.cluster.kubeutil import eventually, group, job_body, pod_template


async def create_job(kube: KubeClient, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
    return await kube.create(JOBS.collection(namespace), body)


async def job_view(api: httpx.AsyncClient, name: str) -> dict[str, Any]:
    response = await api.get(f"/v1/jobs/{name}")
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def summary_of(view: dict[str, Any], group_name: str) -> dict[str, int]:
    for g in view["taskGroups"]:
        if g["name"] == group_name:
            return dict(g["summary"])
    raise AssertionError(f"no group {group_name} in {view}")


async def replicas(kube: KubeClient, namespace: str, name: str) -> int | None:
    try:
        return int((await kube.get(DEPLOYMENTS.item(namespace, name)))["spec"]["replicas"])
    except KubeError as exc:
        if exc.status == 404:
            return None
        raise


async def test_every_summary_bucket_is_reached_by_a_real_pod(
    kube: KubeClient, namespace: str, api: httpx.AsyncClient
) -> None:
    unschedulable = pod_template(node_selector={"caravan.test/no-such-node": "x"})
    await create_job(
        kube,
        namespace,
        job_body(
            "buckets",
            [
                group("running", count_init=1),
                group("queued", count_init=1, template=unschedulable),
                group(
                    "starting",
                    count_init=1,
                    template=pod_template(annotations={"kwok.caravan.dev/outcome": "starting"}),
                ),
                group(
                    "lost",
                    count_init=1,
                    template=pod_template(annotations={"kwok.caravan.dev/outcome": "lost"}),
                ),
                # Pods of a Deployment that end are replaced at once; a finished allocation is
                # a pod of the group that ran to its end, so these two groups get bare pods.
                group("complete", count_init=0),
                group("failed", count_init=0),
            ],
        ),
    )
    for outcome in ("complete", "failed"):
        template = pod_template(annotations={"kwok.caravan.dev/outcome": outcome})
        await kube.create(
            PODS.collection(namespace),
            {
                "metadata": {
                    "name": f"done-{outcome}",
                    "annotations": template["metadata"]["annotations"],
                    "labels": {"caravan.dev/job": "buckets", "caravan.dev/task-group": outcome},
                },
                "spec": {**template["spec"], "restartPolicy": "Never"},
            },
        )

    def every_bucket(view: dict[str, Any]) -> bool:
        return all(
            summary_of(view, name)[name] == 1
            for name in ("running", "queued", "starting", "lost", "complete", "failed")
        )

    view = await eventually(
        lambda: job_view(api, "buckets"),
        every_bucket,
        timeout=60,
        what="each group's pod in its bucket",
    )
    assert view["status"] == "running"
    for name in ("running", "queued", "starting", "lost", "complete", "failed"):
        assert sum(summary_of(view, name).values()) == 1, view
    status = await eventually(
        lambda: kube.get(JOBS.item(namespace, "buckets")),
        lambda j: j.get("status", {}).get("running") == 1,
        what="the Job status subresource",
    )
    assert status["status"]["status"] == "running"
    assert status["status"]["desired"] == 4
    conditions = {c["type"]: c for c in status["status"]["conditions"]}
    assert set(conditions) == {"Available", "Degraded", "Reconciled", "DependenciesResolved"}
    assert conditions["DependenciesResolved"]["status"] == "True"
    assert conditions["Reconciled"]["status"] == "True"
    # Pods no node takes (the queued group) are a problem; the lost pod is its own word.
    assert conditions["Degraded"]["status"] == "True"


async def test_fifty_concurrent_increments_lose_no_update(
    kube: KubeClient, namespace: str, api: httpx.AsyncClient
) -> None:
    await create_job(kube, namespace, job_body("race", [group("g", count_init=0, count_max=100)]))
    await eventually(
        lambda: replicas(kube, namespace, "race-g"), lambda r: r == 0, what="Deployment race-g"
    )

    async def plus_one() -> int:
        r = await api.post(
            "/v1/jobs/updatecounts", json={"jobID": "race", "taskGroup": "g", "count": 1}
        )
        return r.status_code

    codes = await asyncio.gather(*(plus_one() for _ in range(50)))
    assert codes == [200] * 50
    body = await kube.get(JOBS.item(namespace, "race"))
    assert body["spec"]["taskGroups"][0]["count"] == 50
    await eventually(
        lambda: replicas(kube, namespace, "race-g"),
        lambda r: r == 50,
        what="the Deployment to follow",
    )
    view = await eventually(
        lambda: job_view(api, "race"), lambda v: v["taskGroups"][0]["count"] == 50
    )
    assert view["taskGroups"][0]["countMax"] == 100


async def test_clamping_zero_start_and_stop(
    kube: KubeClient, namespace: str, api: httpx.AsyncClient
) -> None:
    await create_job(kube, namespace, job_body("clamp", [group("g", count_init=2, count_max=3)]))
    await eventually(lambda: replicas(kube, namespace, "clamp-g"), lambda r: r == 2)

    async def delta(count: int) -> dict[str, Any]:
        r = await api.post(
            "/v1/jobs/updatecounts", json={"jobID": "clamp", "taskGroup": "g", "count": count}
        )
        assert r.status_code == 200, r.text
        return dict(r.json())

    assert (await delta(10))["taskGroups"][0]["count"] == 3
    assert (await delta(-10))["taskGroups"][0]["count"] == 0
    assert (await delta(2))["taskGroups"][0]["count"] == 2
    assert (await delta(0))["taskGroups"][0]["count"] == 0  # 0 stops the task group
    await eventually(lambda: replicas(kube, namespace, "clamp-g"), lambda r: r == 0)

    stopped = await api.post("/v1/jobs/stop/clamp")
    assert stopped.status_code == 200 and stopped.json()["status"] == "dead"
    assert (await api.post("/v1/jobs/stop/clamp")).status_code == 200  # no-op
    refused = await api.post(
        "/v1/jobs/updatecounts", json={"jobID": "clamp", "taskGroup": "g", "count": 1}
    )
    assert refused.status_code == 409
    assert "stopped" in refused.json()["error"]

    started = await api.post("/v1/jobs/start/clamp")
    assert started.status_code == 200
    assert started.json()["taskGroups"][0]["count"] == 2  # back to countInit
    await eventually(lambda: replicas(kube, namespace, "clamp-g"), lambda r: r == 2)
    view = await eventually(
        lambda: job_view(api, "clamp"), lambda v: v["taskGroups"][0]["summary"]["running"] == 2
    )
    assert view["status"] == "running"
    assert (await api.post("/v1/jobs/start/clamp")).json()["taskGroups"][0]["count"] == 2


async def test_long_poll_wakes_on_change_and_not_on_unrelated_churn(
    kube: KubeClient, namespace: str, api: httpx.AsyncClient
) -> None:
    await create_job(kube, namespace, job_body("poll", [group("g", count_init=1, count_max=5)]))
    await eventually(lambda: api.get("/v1/jobs/poll"), lambda r: r.json()["status"] == "running")
    first = await api.get("/v1/jobs")
    index = int(first.headers["waitIndex"])
    assert index > 0

    poll = asyncio.create_task(
        api.get("/v1/jobs", headers={"waitIndex": str(index)}, params={"wait": "20s"})
    )
    # Unrelated pod churn: a label that moves no pod between buckets.
    pods = await kube.list_items(PODS.collection(namespace), labelSelector="caravan.dev/job=poll")
    pod_name = pods["items"][0]["metadata"]["name"]
    await kube.merge_patch(PODS.item(namespace, pod_name), {"metadata": {"labels": {"x": "y"}}})
    await asyncio.sleep(1.0)
    assert not poll.done(), "an unrelated pod label change woke the long poll"

    changed_at = time.monotonic()
    r = await api.post(
        "/v1/jobs/updatecounts", json={"jobID": "poll", "taskGroup": "g", "count": 1}
    )
    assert r.status_code == 200
    answer = await asyncio.wait_for(poll, timeout=5)
    latency = time.monotonic() - changed_at
    assert latency < 1.0, f"long poll answered {latency:.2f}s after the change"
    assert int(answer.headers["waitIndex"]) > index
    assert answer.json()[0]["taskGroups"][0]["count"] == 2


async def test_long_poll_bounds(api: httpx.AsyncClient) -> None:
    index = int((await api.get("/v1/jobs")).headers["waitIndex"])
    started = time.monotonic()
    ahead = await api.get("/v1/jobs", params={"waitIndex": str(index + 1000)})
    assert time.monotonic() - started < 0.5  # a client index ahead of ours: at once
    assert int(ahead.headers["waitIndex"]) == index
    started = time.monotonic()
    timed_out = await api.get(
        "/v1/jobs", headers={"waitIndex": str(index)}, params={"wait": "300ms"}
    )
    assert 0.25 < time.monotonic() - started < 2.0
    assert timed_out.status_code == 200
    for bad in ({"wait": "soon"}, {"waitIndex": "-1"}, {"waitIndex": "abc"}):
        r = await api.get("/v1/jobs", params=bad)
        assert r.status_code == 400, (bad, r.text)
        assert r.json()["error"]


async def test_drift_is_repaired_and_deletion_cleans_up(
    kube: KubeClient, namespace: str, api: httpx.AsyncClient
) -> None:
    await create_job(kube, namespace, job_body("drift", [group("a", count_init=2), group("b")]))
    await eventually(lambda: replicas(kube, namespace, "drift-a"), lambda r: r == 2)
    await eventually(lambda: replicas(kube, namespace, "drift-b"), lambda r: r == 1)

    await kube.merge_patch(DEPLOYMENTS.item(namespace, "drift-a"), {"spec": {"replicas": 5}})
    await eventually(
        lambda: replicas(kube, namespace, "drift-a"),
        lambda r: r == 2,
        what="hand scaling to be undone",
    )
    await kube.delete(DEPLOYMENTS.item(namespace, "drift-b"))
    await eventually(
        lambda: kube.get(DEPLOYMENTS.item(namespace, "drift-b")),
        lambda d: not d["metadata"].get("deletionTimestamp"),
        what="deleted Deployment to be recreated",
    )

    body = await kube.get(JOBS.item(namespace, "drift"))
    kept = [g for g in body["spec"]["taskGroups"] if g["name"] == "a"]
    await kube.merge_patch(JOBS.item(namespace, "drift"), {"spec": {"taskGroups": kept}})
    await eventually(
        lambda: replicas(kube, namespace, "drift-b"),
        lambda r: r is None,
        what="the removed group's Deployment to go",
    )

    await kube.delete(JOBS.item(namespace, "drift"))
    await eventually(
        lambda: replicas(kube, namespace, "drift-a"),
        lambda r: r is None,
        timeout=60,
        what="garbage collection of the Job's Deployments",
    )
    r = await eventually(lambda: api.get("/v1/jobs/drift"), lambda r: r.status_code == 404)
    assert r.json()["error"]


async def test_bad_input_is_refused_and_changes_nothing(
    kube: KubeClient, namespace: str, api: httpx.AsyncClient
) -> None:
    await create_job(kube, namespace, job_body("steady", [group("g", count_init=1)]))
    await eventually(lambda: api.get("/v1/jobs/steady"), lambda r: r.json()["name"] == "steady")
    before = await kube.get(JOBS.item(namespace, "steady"))

    cases: list[tuple[str, str, Any, int]] = [
        ("GET", "/v1/jobs/nope", None, 404),
        ("POST", "/v1/jobs/start/nope", None, 404),
        ("POST", "/v1/jobs/stop/nope", None, 404),
        ("POST", "/v1/jobs/updatecounts", {"jobID": "nope", "taskGroup": "g", "count": 1}, 404),
        ("POST", "/v1/jobs/updatecounts", {"jobID": "steady", "taskGroup": "x", "count": 1}, 404),
        ("POST", "/v1/jobs/updatecounts", {"jobID": "steady", "taskGroup": "g", "count": "1"}, 400),
        ("POST", "/v1/jobs/updatecounts", {"jobID": "steady", "taskGroup": "g", "count": 1.5}, 400),
        (
            "POST",
            "/v1/jobs/updatecounts",
            {"jobID": "steady", "taskGroup": "g", "count": True},
            400,
        ),
        ("POST", "/v1/jobs/updatecounts", {"jobID": "steady", "taskGroup": "g"}, 400),
        ("POST", "/v1/jobs/updatecounts", {"jobID": 7, "taskGroup": "g", "count": 1}, 400),
        ("POST", "/v1/jobs/updatecounts", [1, 2], 400),
        ("POST", "/v1/jobs/updatecounts", "{not json", 400),
    ]
    for method, path, payload, status in cases:
        if isinstance(payload, str):
            r = await api.request(
                method, path, content=payload, headers={"content-type": "application/json"}
            )
        else:
            r = await api.request(method, path, json=payload)
        assert r.status_code == status, (method, path, payload, r.status_code, r.text)
        error = r.json()
        assert isinstance(error["error"], str) and error["error"], error
        assert "Traceback" not in r.text
    after = await kube.get(JOBS.item(namespace, "steady"))
    # The operator may have written status meanwhile; the spec must be untouched.
    assert after["spec"] == before["spec"]
    assert after["metadata"]["generation"] == before["metadata"]["generation"]


async def test_a_refused_template_is_reported_on_the_job(
    kube: KubeClient, namespace: str, api: httpx.AsyncClient
) -> None:
    # The Job's admission rules take it (they check names, images, ports...); the
    # Deployment's validation does not.
    bad = pod_template()
    bad["spec"]["containers"][0]["imagePullPolicy"] = "Sometimes"
    await create_job(kube, namespace, job_body("broken", [group("g", template=bad)]))

    def reconciled(job: dict[str, Any]) -> dict[str, Any]:
        conditions = {c["type"]: c for c in job.get("status", {}).get("conditions", [])}
        return dict(conditions.get("Reconciled", {}))

    job = await eventually(
        lambda: kube.get(JOBS.item(namespace, "broken")),
        lambda j: reconciled(j).get("status") == "False",
        what="the refusal written on the Job",
    )
    assert reconciled(job)["reason"] == "ApplyFailed"
    assert "Sometimes" in reconciled(job)["message"]
    assert await replicas(kube, namespace, "broken-g") is None

    fixed = job["spec"]["taskGroups"]
    fixed[0]["template"] = pod_template()
    await kube.merge_patch(JOBS.item(namespace, "broken"), {"spec": {"taskGroups": fixed}})
    await eventually(lambda: replicas(kube, namespace, "broken-g"), lambda r: r == 1)
    job = await eventually(
        lambda: kube.get(JOBS.item(namespace, "broken")),
        lambda j: reconciled(j).get("status") == "True",
        what="the condition to clear once the template is fixed",
    )
    assert reconciled(job)["reason"] == "Applied"


async def test_a_count_change_writes_the_replicas_through_before_it_answers(
    kube: KubeClient, namespace: str, kubeconfig: str
) -> None:
    # No operator at all: what moves the Deployment here is the route's write-through.
    await create_job(kube, namespace, job_body("solo", [group("g", count_init=1)]))
    template = pod_template()
    template["metadata"] = {"labels": {"app": "solo"}}
    await kube.create(
        DEPLOYMENTS.collection(namespace),
        {
            "metadata": {"name": "solo-g"},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app": "solo"}},
                "template": template,
            },
        },
    )
    config = {"namespace": namespace, "kubeconfig": kubeconfig, "run_operator": False}
    async with (
        running_caravan(**config) as instance,
        httpx.AsyncClient(base_url=instance.url, timeout=30) as api,
    ):
        up = await api.post(
            "/v1/jobs/updatecounts", json={"jobID": "solo", "taskGroup": "g", "count": 2}
        )
        assert up.status_code == 200, up.text
        deployment = await kube.get(DEPLOYMENTS.item(namespace, "solo-g"))
        assert deployment["spec"]["replicas"] == 3
        managers = {m["manager"] for m in deployment["metadata"]["managedFields"]}
        assert FIELD_MANAGER in managers

        assert (await api.post("/v1/jobs/stop/solo")).status_code == 200
        assert await replicas(kube, namespace, "solo-g") == 0
        assert (await api.post("/v1/jobs/start/solo")).status_code == 200
        assert await replicas(kube, namespace, "solo-g") == 1  # countInit again


def replicas_owners(deployment: dict[str, Any]) -> set[str]:
    """The field managers that own the Deployment's spec.replicas."""
    return {
        str(m["manager"])
        for m in deployment["metadata"].get("managedFields") or []
        if "f:replicas" in ((m.get("fieldsV1") or {}).get("f:spec") or {})
    }


async def test_the_operator_leaves_a_count_to_the_write_through_and_takes_over_without_it(
    kube: KubeClient, namespace: str, api: httpx.AsyncClient
) -> None:
    await create_job(kube, namespace, job_body("wt", [group("g", count_init=1)]))
    await eventually(lambda: replicas(kube, namespace, "wt-g"), lambda n: n == 1)
    up = await api.post("/v1/jobs/updatecounts", json={"jobID": "wt", "taskGroup": "g", "count": 2})
    assert up.status_code == 200, up.text
    generation = (await kube.get(JOBS.item(namespace, "wt")))["metadata"]["generation"]
    await eventually(
        lambda: kube.get(JOBS.item(namespace, "wt")),
        lambda job: (job.get("status") or {}).get("observedGeneration") == generation,
        what="the operator's pass over the new count",
    )
    # That pass applied nothing: only the write-through owns the replicas (an apply of the
    # operator, even of the same value, would own them too). One writer of the replicas.
    deployment = await kube.get(DEPLOYMENTS.item(namespace, "wt-g"))
    assert deployment["spec"]["replicas"] == 3
    assert replicas_owners(deployment) == {FIELD_MANAGER}

    # A count written as the API writes it, but no write-through follows (an API replica
    # that died in between): the operator applies it itself once its grace is over.
    job = await kube.get(JOBS.item(namespace, "wt"))
    spec = job["spec"]
    spec["taskGroups"][0]["count"] = 4
    await kube.json_patch(
        JOBS.item(namespace, "wt"),
        [{"op": "replace", "path": "/spec", "value": spec}],
        FIELD_MANAGER,
    )
    started = time.monotonic()
    await eventually(
        lambda: replicas(kube, namespace, "wt-g"),
        lambda n: n == 4,
        timeout=15,
        what="the operator applying the count after its grace",
    )
    print(f"\noperator applied the count {time.monotonic() - started:.2f} s after the Job write")
    deployment = await kube.get(DEPLOYMENTS.item(namespace, "wt-g"))
    assert labels.FIELD_MANAGER in replicas_owners(deployment)
