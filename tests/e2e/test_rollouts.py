"""Rollouts on the node that runs real processes: a crashing version never replaces a
working allocation; autoRevert brings the job back; a revert brings the old image back.

Caravan runs in-process (the operator is what matters here); the allocations are real
processes of the example task image on the real node.
"""

from __future__ import annotations

from typing import Any

import httpx

from caravan.kube.client import DEPLOYMENTS, JOBS, PODS, KubeClient
from tests.cluster.conftest import api, caravan  # noqa: F401 (fixtures)
from tests.cluster.kubeutil import eventually
from tests.e2e.conftest import TASK_IMAGE, RealNode, task_job

# Exits 1 a second after it starts: Kubernetes sees it ready (no probe) before it dies.
CRASH = ["python", "-c", "import time; time.sleep(1); raise SystemExit(1)"]
# Another image the real node has (Caravan's own, which has Python): version 2 runs it.
OTHER_IMAGE = "caravan:0.1.0"
SLEEPER = [
    "python",
    "-c",
    "import time; print('the other image runs', flush=True); time.sleep(3600)",
]


def rollout_job(name: str, auto_revert: bool) -> dict[str, Any]:
    job = task_job(name, {"g": {"TASK_TICK_SECONDS": "1"}})
    group = job["spec"]["taskGroups"][0]
    # The default minimum healthy time (10 s): a crash one second after the start is seen
    # well within it, even on a loaded node (a kubelet that reports the exit late would
    # let the new allocation count as healthy).
    group["rollout"] = {
        "minHealthySeconds": 10,
        "progressDeadlineSeconds": 20,
        "autoRevert": auto_revert,
    }
    return job


async def ready_pods(kube: KubeClient, namespace: str, job: str) -> list[dict[str, Any]]:
    pods = await kube.list_items(PODS.collection(namespace), labelSelector=f"caravan.dev/job={job}")
    return [
        p
        for p in pods["items"]
        if not p["metadata"].get("deletionTimestamp")
        and any(
            c["type"] == "Ready" and c["status"] == "True"
            for c in (p.get("status") or {}).get("conditions") or []
        )
    ]


async def job_status(kube: KubeClient, namespace: str, name: str) -> dict[str, Any]:
    return dict((await kube.get(JOBS.item(namespace, name))).get("status") or {})


def set_command(job: dict[str, Any], command: list[str], image: str = TASK_IMAGE) -> None:
    container = job["spec"]["taskGroups"][0]["template"]["spec"]["containers"][0]
    container["command"] = command
    container["image"] = image


async def start_healthy(kube: KubeClient, namespace: str, job: dict[str, Any]) -> str:
    """Creates the job and waits until version 1 became healthy; its one pod's uid."""
    name = job["metadata"]["name"]
    created = await kube.create(JOBS.collection(namespace), job)
    assert created["spec"]["taskGroups"][0]["rollout"] == job["spec"]["taskGroups"][0]["rollout"]
    await eventually(
        lambda: job_status(kube, namespace, name),
        lambda s: s.get("healthyVersion") == 1,
        timeout=120,
        what=f"version 1 of {name} healthy",
    )
    [pod] = await ready_pods(kube, namespace, name)
    return str(pod["metadata"]["uid"])


async def test_a_crashing_version_leaves_the_old_allocation_serving(
    real_node: RealNode,
    kube: KubeClient,
    namespace: str,
    api: httpx.AsyncClient,  # noqa: F811
) -> None:
    job = rollout_job("steady", auto_revert=False)
    serving = await start_healthy(kube, namespace, job)
    body = await kube.get(JOBS.item(namespace, "steady"))
    set_command(body, CRASH)
    await kube.replace(JOBS.item(namespace, "steady"), body)

    def stalled(deployment: dict[str, Any]) -> bool:
        conditions = (deployment.get("status") or {}).get("conditions") or []
        return any(c.get("reason") == "ProgressDeadlineExceeded" for c in conditions)

    await eventually(
        lambda: kube.get(DEPLOYMENTS.item(namespace, "steady-g")),
        stalled,
        timeout=120,
        what="the rollout stalled",
    )
    # The working allocation was never replaced: the same pod, still ready.
    pods = await kube.list_items(PODS.collection(namespace), labelSelector="caravan.dev/job=steady")
    ready = await ready_pods(kube, namespace, "steady")
    assert [p["metadata"]["uid"] for p in ready] == [serving], [
        (p["metadata"]["name"], p["metadata"]["uid"], (p.get("status") or {}).get("conditions"))
        for p in pods["items"]
    ]
    status = await job_status(kube, namespace, "steady")
    assert status["version"] == 2 and status["healthyVersion"] == 1
    # The group says what is wrong: its new allocation's crash (the stall itself is the
    # group's problem when no allocation has one to say).
    view = await eventually(
        lambda: api.get("/v1/jobs/steady"),
        lambda r: bool(r.json()["taskGroups"][0]["problems"]),
        what="the failing rollout reported on the group",
    )
    reasons = {p["reason"] for p in view.json()["taskGroups"][0]["problems"]}
    assert reasons & {"CrashLoopBackOff", "Error", "ProgressDeadlineExceeded"}, reasons
    assert view.json()["taskGroups"][0]["summary"]["running"] >= 1


async def test_auto_revert_returns_to_the_last_healthy_version(
    real_node: RealNode,
    kube: KubeClient,
    namespace: str,
    api: httpx.AsyncClient,  # noqa: F811
) -> None:
    job = rollout_job("backs", auto_revert=True)
    serving = await start_healthy(kube, namespace, job)
    body = await kube.get(JOBS.item(namespace, "backs"))
    set_command(body, CRASH)
    await kube.replace(JOBS.item(namespace, "backs"), body)
    status = await eventually(
        lambda: job_status(kube, namespace, "backs"),
        lambda s: s.get("version") == 3 and s.get("healthyVersion") == 3,
        timeout=180,
        what="the job back on its healthy definition, as version 3",
    )
    assert status["version"] == 3
    reverted = await kube.get(JOBS.item(namespace, "backs"))
    container = reverted["spec"]["taskGroups"][0]["template"]["spec"]["containers"][0]
    assert "command" not in container
    listed = (await api.get("/v1/jobs/backs/versions")).json()
    assert listed[0]["change"].startswith("back to version 1")
    [still] = await ready_pods(kube, namespace, "backs")
    assert still["metadata"]["uid"] == serving  # the working allocation served throughout
    events = await kube.list_items(
        f"/api/v1/namespaces/{namespace}/events",
        fieldSelector="involvedObject.name=backs,reason=AutoReverted",
    )
    assert events["items"] and events["items"][0]["type"] == "Warning"


async def test_after_a_revert_of_an_image_change_the_processes_run_the_old_image(
    real_node: RealNode,
    kube: KubeClient,
    namespace: str,
    api: httpx.AsyncClient,  # noqa: F811
) -> None:
    job = rollout_job("images", auto_revert=False)
    await start_healthy(kube, namespace, job)
    body = await kube.get(JOBS.item(namespace, "images"))
    set_command(body, SLEEPER, image=OTHER_IMAGE)
    await kube.replace(JOBS.item(namespace, "images"), body)

    async def images() -> set[str]:
        pods = await ready_pods(kube, namespace, "images")
        return {
            s["image"] for p in pods for s in (p.get("status") or {}).get("containerStatuses") or []
        }

    await eventually(
        images,
        lambda found: found == {f"docker.io/library/{OTHER_IMAGE}"},
        timeout=120,
        what="v2 runs",
    )
    reverted = await api.post("/v1/jobs/images/revert", json={"version": 1})
    assert reverted.status_code == 200, reverted.text
    await eventually(
        images,
        lambda found: found == {f"docker.io/library/{TASK_IMAGE}"},
        timeout=120,
        what="v1 runs",
    )
    # The process itself is the task program again: its log is the task's, not the sleeper's.
    [pod] = await ready_pods(kube, namespace, "images")
    response = await kube.stream(PODS.item(namespace, pod["metadata"]["name"], "log"))
    try:
        log = await response.text()
    finally:
        response.release()
    assert "the other image runs" not in log
