"""Five ways a task group fails, with real processes on the real node, and restarts of
real processes.

One job serves every assertion (CPU is scarce): a process that exits 3 after a second,
an image that does not exist, a process killed for memory (64 Mi limit, 300 MB
allocated), a request for 500 CPUs, pods Kubernetes refuses to create (a priorityClassName
that does not exist), and a healthy group of two. Each failing group shows Kubernetes'
reason in its problems, its allocations, the Job's condition and the CLI; then the
healthy group is restarted (every process replaced, one by one, the group running all
along) and one allocation is restarted alone.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from typing import Any

import httpx
import pytest
import yaml

from caravan.kube.client import JOBS, PODS, KubeClient
from caravan.runner import Caravan
from tests.cluster.conftest import KUBECTL
from tests.cluster.kubeutil import eventually, job_body
from tests.cluster.test_failures import assert_oldest_first, cli, kubectl, problems

TASK_IMAGE = "caravan-example-task:0.1.0"


@pytest.fixture(scope="module")
def real_node(kubeconfig: str) -> str:
    """A Ready node that runs processes and holds the example task's image."""
    out = subprocess.run(
        [KUBECTL, "--kubeconfig", kubeconfig, "get", "nodes", "-o", "yaml"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    for node in yaml.safe_load(out)["items"]:
        if (node["metadata"].get("annotations") or {}).get("kwok.x-k8s.io/node") == "fake":
            continue
        images = {n for i in node["status"].get("images") or [] for n in i.get("names") or []}
        if any(n.endswith(TASK_IMAGE) for n in images):
            return str(node["metadata"]["name"])
    pytest.fail(
        f"no real node holds {TASK_IMAGE}: start the local cluster's real node and import"
        " the images (hack/images.sh import, as the e2e tier does)"
    )


def task_group(name: str, count: int = 1, **container: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "terminationGracePeriodSeconds": 1,
        "containers": [
            {"name": "main", "image": TASK_IMAGE, "imagePullPolicy": "IfNotPresent", **container}
        ],
    }
    if "priorityClassName" in container:
        spec["priorityClassName"] = spec["containers"][0].pop("priorityClassName")
    return {"name": name, "countInit": count, "countMax": 3, "template": {"spec": spec}}


PYTHON = ["python3", "-c"]


async def test_five_broken_groups_say_why_and_restarts_replace_real_processes(
    real_node: str,
    kube: KubeClient,
    namespace: str,
    kubeconfig: str,
    caravan: Caravan,
    api: httpx.AsyncClient,
) -> None:
    groups = [
        task_group(
            "crashy",
            command=[
                *PYTHON,
                "import sys, time; time.sleep(1); print('no config', file=sys.stderr); sys.exit(3)",
            ],
            terminationMessagePolicy="FallbackToLogsOnError",
        ),
        task_group("noimage", image="caravan.test/does-not-exist:1"),
        task_group(
            "oom",
            command=[*PYTHON, "import time; b = b'x' * (300 * 1024 * 1024); time.sleep(60)"],
            resources={"limits": {"memory": "64Mi"}},
        ),
        task_group("huge", resources={"requests": {"cpu": "500"}}),
        task_group("refused", priorityClassName="no-such-priority"),
        task_group("healthy", count=2, env=[{"name": "TASK_TICK_SECONDS", "value": "5"}]),
    ]
    await kube.create(JOBS.collection(namespace), job_body("broken", groups))

    def settled(view: dict[str, Any]) -> bool:
        found = problems(view)
        return (
            found["crashy"] == ["CrashLoopBackOff"]
            and found["noimage"] in (["ErrImagePull"], ["ImagePullBackOff"])
            and found["oom"] == ["OOMKilled"]
            and found["huge"] == ["Unschedulable"]
            and found["refused"] == ["FailedCreate"]
            and found["healthy"] == []
            and view["taskGroups"][5]["summary"]["running"] == 2
        )

    view = (
        await eventually(
            lambda: api.get("/v1/jobs/broken"),
            lambda r: settled(r.json()),
            timeout=180,
            interval=1,
            what="the five problems",
        )
    ).json()
    by_name = {g["name"]: g for g in view["taskGroups"]}
    assert "exited with code 3: no config" in by_name["crashy"]["problems"][0]["message"]
    assert "memory limit of 64Mi" in by_name["oom"]["problems"][0]["message"]
    assert "does-not-exist" in by_name["noimage"]["problems"][0]["message"]
    assert "Insufficient cpu" in by_name["huge"]["problems"][0]["message"]
    assert "no-such-priority" in by_name["refused"]["problems"][0]["message"]
    assert by_name["refused"]["summary"]["queued"] == 1  # no pod at all

    allocs = {a["taskGroup"]: a for a in (await api.get("/v1/jobs/broken/allocations")).json()}
    assert "refused" not in allocs
    crashy = allocs["crashy"]["tasks"][0]
    assert crashy["lastTermination"]["exitCode"] == 3
    assert crashy["restarts"] >= 1
    oom = allocs["oom"]["tasks"][0]
    assert oom["lastTermination"]["reason"] == "OOMKilled"
    assert allocs["huge"]["reason"] == "Unschedulable"
    assert allocs["noimage"]["tasks"][0]["reason"] in ("ErrImagePull", "ImagePullBackOff")
    assert allocs["healthy"]["node"] == real_node

    def degraded_names_all(job: dict[str, Any]) -> bool:
        status = job.get("status") or {}
        message = next(
            (
                c.get("message") or ""
                for c in status.get("conditions", [])
                if c["type"] == "Degraded"
            ),
            "",
        )
        groups = ("crashy", "noimage", "oom", "huge", "refused")
        return (
            all(f"{g}: " in message for g in groups)
            and "OOMKilled" in message
            and "CrashLoopBackOff" in message
            and "(+4 more)" in status.get("problem", "")
        )

    job = await eventually(
        lambda: kube.get(JOBS.item(namespace, "broken")),
        degraded_names_all,
        timeout=90,
        what="the Degraded condition naming every failing group",
    )
    degraded = next(c for c in job["status"]["conditions"] if c["type"] == "Degraded")
    assert degraded["status"] == "True"

    # A crash-looping process runs for a moment between its restarts (nothing to say
    # then): the CLI is asked until it shows every group's reason at once.
    def every_reason(text: str) -> bool:
        reasons = ("CrashLoopBackOff", "OOMKilled", "Unschedulable", "FailedCreate")
        pulls = ("ErrImagePull", "ImagePullBackOff")
        return all(r in text for r in reasons) and any(p in text for p in pulls)

    await eventually(lambda: cli(caravan, "status", "broken"), every_reason, timeout=90, interval=1)
    alloc = await eventually(
        lambda: cli(caravan, "alloc", "broken"),
        lambda text: "OOMKilled" in text and " 3 " in text,
        timeout=90,
        interval=1,
    )
    assert "Unschedulable" in alloc

    # The pods' own Events are in the job's activity, in order.
    activity = await eventually(
        lambda: api.get("/v1/jobs/broken/activity"),
        lambda r: {"BackOff", "Failed"} <= {i["reason"] for i in r.json()["items"]},
        what="the pods' BackOff and Failed Events",
    )
    items = activity.json()["items"]
    assert_oldest_first(items)
    assert any(i["object"].startswith("alloc/broken-crashy-") for i in items)

    # Restart the healthy group: every process replaced, one by one, never all gone.
    async def healthy_pods() -> dict[str, tuple[str, str]]:
        listed = await kube.list_items(
            PODS.collection(namespace), labelSelector="caravan.dev/task-group=healthy"
        )
        found = {}
        for p in listed["items"]:
            statuses = p["status"].get("containerStatuses") or [{}]
            found[p["metadata"]["name"]] = (
                str(statuses[0].get("containerID", "")),
                "deleting" if p["metadata"].get("deletionTimestamp") else p["status"]["phase"],
            )
        return found

    before = await healthy_pods()
    lowest = 2
    restart = await api.post("/v1/jobs/restart/broken", json={"taskGroup": "healthy"})
    assert restart.status_code == 200, restart.text
    deadline = time.monotonic() + 180
    while True:
        assert time.monotonic() < deadline, f"healthy not replaced: {await healthy_pods()}"
        summary = (await api.get("/v1/jobs/broken")).json()["taskGroups"][5]["summary"]
        lowest = min(lowest, summary["running"])
        now = await healthy_pods()
        fresh = [n for n, (cid, phase) in now.items() if n not in before and phase == "Running"]
        if len(fresh) == 2 and not set(now) & set(before) and summary["running"] == 2:
            break
        await asyncio.sleep(0.5)
    assert lowest >= 1  # the group kept running while its allocations were replaced
    assert not {cid for cid, _ in now.values()} & {cid for cid, _ in before.values()}

    # One allocation alone.
    victim, other = sorted(now)
    answer = await api.post(f"/v1/allocations/{victim}/restart")
    assert answer.status_code == 200
    after = await eventually(
        healthy_pods,
        lambda found: (
            victim not in found
            and len(found) == 2
            and all(phase == "Running" for _, phase in found.values())
        ),
        timeout=60,
        what="the allocation replaced",
    )
    assert after[other] == now[other]

    # Fixing the crashing template (a process that runs) clears its problem.
    spec_groups = (await kube.get(JOBS.item(namespace, "broken")))["spec"]["taskGroups"]
    spec_groups[0]["template"]["spec"]["containers"][0].pop("command")
    await kube.merge_patch(JOBS.item(namespace, "broken"), {"spec": {"taskGroups": spec_groups}})
    await eventually(
        lambda: api.get("/v1/jobs/broken"),
        lambda r: (
            problems(r.json())["crashy"] == []
            and r.json()["taskGroups"][0]["summary"]["running"] == 1
        ),
        timeout=120,
        interval=1,
        what="the crash loop cleared by the fix",
    )
    restarted = [
        i
        for i in (await api.get("/v1/jobs/broken/activity")).json()["items"]
        if i["reason"] == "Restarted"
    ]
    assert len(restarted) == 2
    described = kubectl(kubeconfig, namespace, "describe", "cjob", "broken")
    assert "Restarted" in described
