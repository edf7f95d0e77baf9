"""Why allocations are not running, what happened to a job, and restarts (kwok's nodes).

The real apiserver, scheduler and controllers decide: a pod Kubernetes refuses to create
(a priorityClassName that does not exist), one no node can take (500 CPUs), Caravan's
own Events and their aggregation, restarts of a job, a group and one allocation, and the
repair of drift. What real processes do (exit codes, OOMKilled, images) is in
test_failures_realnode.py.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import Callable
from datetime import datetime
from typing import Any

import httpx

from caravan.kube.client import DEPLOYMENTS, EVENTS, JOBS, PODS, KubeClient
from caravan.kube.recorder import EventRecorder, job_regarding
from caravan.runner import Caravan
from tests.cluster.conftest import KUBECTL, ROOT, running_caravan
from tests.cluster.kubeutil import (
    eventually,
    group,
    job_body,
    pod_template,
    service_account_token,
)

CARAVAN = str(ROOT / ".venv" / "bin" / "caravan")


async def run_cli(caravan: Caravan, *args: str, token: str | None = None) -> tuple[int, str, str]:
    """The CLI in a subprocess (never blocking the loop Caravan serves on)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARAVAN_")}
    env.update(
        CARAVAN_URL=caravan.url, COLUMNS="250", **({"CARAVAN_TOKEN": token} if token else {})
    )
    process = await asyncio.create_subprocess_exec(
        CARAVAN, *args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    )
    out, err = await asyncio.wait_for(process.communicate(), 120)
    return int(process.returncode or 0), out.decode(), err.decode()


async def cli(caravan: Caravan, *args: str, token: str | None = None) -> str:
    """The CLI's stdout; it must succeed."""
    code, out, err = await run_cli(caravan, *args, token=token)
    assert code == 0, (args, out, err)
    return out


def kubectl(kubeconfig: str, namespace: str, *args: str) -> str:
    result = subprocess.run(
        [KUBECTL, "--kubeconfig", kubeconfig, "-n", namespace, *args],
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout


def assert_oldest_first(items: list[dict[str, Any]]) -> None:
    """Oldest first to the second: the kubelet stamps whole seconds, so within one second
    a microsecond stamp may come before or after a whole-second one."""
    times = [
        datetime.fromisoformat(i["time"].replace("Z", "+00:00")).replace(microsecond=0)
        for i in items
    ]
    assert times == sorted(times), items


def problems(view: dict[str, Any]) -> dict[str, list[str]]:
    return {g["name"]: [p["reason"] for p in g["problems"]] for g in view["taskGroups"]}


async def test_pods_kubernetes_refuses_or_cannot_place_say_why_until_fixed(
    kube: KubeClient, namespace: str, kubeconfig: str, caravan: Caravan, api: httpx.AsyncClient
) -> None:
    refused = pod_template()
    refused["spec"]["priorityClassName"] = "no-such-priority"
    huge = pod_template()
    # kwok's nodes offer 1,000 CPUs each.
    huge["spec"]["containers"][0]["resources"] = {"requests": {"cpu": "5000"}}
    body = job_body(
        "broken",
        [group("refused", template=refused), group("huge", template=huge), group("ok")],
    )
    await kube.create(JOBS.collection(namespace), body)

    view = (
        await eventually(
            lambda: api.get("/v1/jobs/broken"),
            lambda r: (
                problems(r.json())
                == {
                    "refused": ["FailedCreate"],
                    "huge": ["Unschedulable"],
                    "ok": [],
                }
                and r.json()["taskGroups"][2]["summary"]["running"] == 1
            ),
            timeout=60,
            what="each group's problem",
        )
    ).json()
    by_name = {g["name"]: g for g in view["taskGroups"]}
    # No pod at all: the allocation Kubernetes refused to create counts as queued.
    assert by_name["refused"]["summary"]["queued"] == 1
    [failed_create] = by_name["refused"]["problems"]
    assert failed_create["allocations"] == 1
    assert "no-such-priority" in failed_create["message"]
    assert by_name["huge"]["summary"]["queued"] == 1
    assert "Insufficient cpu" in by_name["huge"]["problems"][0]["message"]
    assert view["status"] == "running"  # ok runs; dead means stopped only

    allocs = (await api.get("/v1/jobs/broken/allocations")).json()
    [unplaced] = [a for a in allocs if a["taskGroup"] == "huge"]
    assert unplaced["reason"] == "Unschedulable"
    assert "Insufficient cpu" in unplaced["message"]

    # The Job says it too, for kubectl and `kubectl wait`.
    job = await eventually(
        lambda: kube.get(JOBS.item(namespace, "broken")),
        lambda j: any(
            c["type"] == "Degraded" and c["status"] == "True"
            for c in (j.get("status") or {}).get("conditions", [])
        ),
        what="the Degraded condition",
    )
    conditions = {c["type"]: c for c in job["status"]["conditions"]}
    assert conditions["Degraded"]["reason"] in ("FailedCreate", "Unschedulable")
    assert "refused: FailedCreate" in conditions["Degraded"]["message"]
    assert "huge: Unschedulable" in conditions["Degraded"]["message"]
    assert conditions["Available"]["status"] == "False"
    assert conditions["Degraded"]["observedGeneration"] == job["metadata"]["generation"]
    # What the CRD's Problem column shows (tests/unit/test_failures.py: the column).
    assert job["status"]["problem"].endswith("(+1 more)")

    status = await cli(caravan, "status", "broken")
    assert "FailedCreate (1)" in status and "Unschedulable (1)" in status
    # A wait for it to run says why it does not, and where to read more.
    code, out, err = await run_cli(caravan, "start", "broken", "--wait", "--timeout", "2")
    assert code == 1, (out, err)
    assert "(refused: FailedCreate; huge: Unschedulable)" in out + err
    assert "timed out after 2s waiting for broken to be running" in err
    assert "why: `caravan activity broken`" in err
    alloc = await cli(caravan, "alloc", "broken")
    assert "Unschedulable" in alloc

    # Fixing the templates clears the problems.
    fixed = (await kube.get(JOBS.item(namespace, "broken")))["spec"]["taskGroups"]
    del fixed[0]["template"]["spec"]["priorityClassName"]
    fixed[1]["template"]["spec"]["containers"][0]["resources"] = {}
    await kube.merge_patch(JOBS.item(namespace, "broken"), {"spec": {"taskGroups": fixed}})
    await eventually(
        lambda: api.get("/v1/jobs/broken"),
        lambda r: (
            problems(r.json()) == {"refused": [], "huge": [], "ok": []}
            and all(g["summary"]["running"] == 1 for g in r.json()["taskGroups"])
        ),
        timeout=60,
        what="the problems cleared by the fix",
    )
    await eventually(
        lambda: kube.get(JOBS.item(namespace, "broken")),
        lambda j: (
            {c["type"]: c["status"] for c in j["status"]["conditions"]}.items()
            >= {"Available": "True", "Degraded": "False", "Reconciled": "True"}.items()
        ),
        what="Available, not Degraded",
    )


async def test_activity_names_the_caller_follows_and_shows_in_kubectl_describe(
    kube: KubeClient, namespace: str, kubeconfig: str
) -> None:
    await kube.create(
        JOBS.collection(namespace), job_body("web", [group("g", count_max=5)], suspend=True)
    )
    admin = await service_account_token(
        kube, namespace, "admin", [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]
    )
    who = f"system:serviceaccount:{namespace}:admin"
    async with running_caravan(
        namespace=namespace, kubeconfig=kubeconfig, auth_mode="kubernetes"
    ) as caravan:
        headers = {"Authorization": f"Bearer {admin}"}
        async with httpx.AsyncClient(base_url=caravan.url, headers=headers, timeout=60) as api:
            assert (await api.post("/v1/jobs/start/web")).status_code == 200
            scale = {"jobID": "web", "taskGroup": "g", "count": 2}
            assert (await api.post("/v1/jobs/updatecounts", json=scale)).status_code == 200
            first = await eventually(
                lambda: api.get("/v1/jobs/web/activity"),
                lambda r: {"Started", "Scaled"} <= {i["reason"] for i in r.json()["items"]},
                what="Started and Scaled in the activity",
            )
            # A long poll at the current index wakes on the next Event of the job (the
            # index moves: it was not the end of its wait that answered).
            index = first.headers["waitIndex"]
            assert (await api.post("/v1/jobs/restart/web")).status_code == 200
            while True:
                woken = await api.get(
                    "/v1/jobs/web/activity", headers={"waitIndex": index}, params={"wait": "50s"}
                )
                assert int(woken.headers["waitIndex"]) > int(index)
                if "Restarted" in [i["reason"] for i in woken.json()["items"]]:
                    break
                index = woken.headers["waitIndex"]
            assert (await api.post("/v1/jobs/stop/web")).status_code == 200
            mine = await eventually(
                lambda: api.get("/v1/jobs/web/activity"),
                lambda r: "Stopped" in [i["reason"] for i in r.json()["items"]],
                what="Stopped in the activity",
            )
    items = [i for i in mine.json()["items"] if i["object"] == "job"]
    assert [i["reason"] for i in items] == ["Started", "Scaled", "Restarted", "Stopped"]
    assert all(who in i["message"] for i in items), items
    assert "task group g scaled from 1 to 3" in items[1]["message"]
    assert_oldest_first(items)
    # The pods' own Events (kwok's scheduler and kubelet) are there too, as allocations'.
    objects = {i["object"].split("/")[0] for i in mine.json()["items"]}
    assert {"job", "group", "alloc"} <= objects, mine.json()
    described = kubectl(kubeconfig, namespace, "describe", "cjob", "web")
    assert "Scaled" in described and "caravan.dev/api" in described
    assert f"task group g scaled from 1 to 3 by {who}" in described


async def test_repeats_of_an_event_become_one_series(kube: KubeClient, namespace: str) -> None:
    job = await kube.create(JOBS.collection(namespace), job_body("s", [group("g")]))
    recorder = EventRecorder(kube, namespace, "test", "caravan.dev/api")
    for _ in range(3):
        recorder.record(job_regarding(job), "Normal", "Scaled", "same words", "Scale")
    recorder.record(job_regarding(job), "Normal", "Scaled", "other words", "Scale")
    await recorder.flush()
    await recorder.close()
    events = (await kube.list_items(EVENTS.collection(namespace)))["items"]
    ours = sorted(
        (e["note"], (e.get("series") or {}).get("count", 1))
        for e in events
        if e.get("reportingController") == "caravan.dev/api"
    )
    assert ours == [("other words", 1), ("same words", 3)]


async def test_restarts_replace_what_they_name_and_drift_is_repaired(
    kube: KubeClient, namespace: str, kubeconfig: str, caravan: Caravan, api: httpx.AsyncClient
) -> None:
    await kube.create(JOBS.collection(namespace), job_body("r", [group("g", count=2), group("h")]))

    async def pods(grp: str) -> dict[str, str]:
        listed = await kube.list_items(
            PODS.collection(namespace), labelSelector=f"caravan.dev/task-group={grp}"
        )
        return {
            p["metadata"]["name"]: p["metadata"]["uid"]
            for p in listed["items"]
            if not p["metadata"].get("deletionTimestamp")
        }

    running = await eventually(
        lambda: api.get("/v1/jobs/r"),
        lambda r: [g["summary"]["running"] for g in r.json()["taskGroups"]] == [2, 1],
        timeout=60,
        what="r running",
    )
    assert running.status_code == 200
    before_g, before_h = await pods("g"), await pods("h")

    # One allocation: only that one is replaced.
    victim = sorted(before_g)[0]
    answer = await api.post(f"/v1/allocations/{victim}/restart")
    assert answer.status_code == 200, answer.text
    assert answer.json()["name"] == "r"
    after = await eventually(
        lambda: pods("g"),
        lambda now: victim not in now and len(now) == 2,
        what="the allocation replaced",
    )
    kept = sorted(before_g)[1]
    assert after[kept] == before_g[kept]
    assert await pods("h") == before_h

    # A group: each of its allocations replaced; the other group untouched.
    answer = await api.post("/v1/jobs/restart/r", json={"taskGroup": "g"})
    assert answer.status_code == 200, answer.text
    await eventually(
        lambda: pods("g"),
        lambda now: len(now) == 2 and not set(now) & set(after),
        timeout=60,
        what="group g replaced",
    )
    assert await pods("h") == before_h
    deployment = await kube.get(DEPLOYMENTS.item(namespace, "r-g"))
    template = deployment["spec"]["template"]["metadata"]
    assert "caravan.dev/restarted-at" in template["annotations"]

    # The CLI: a group restarted with progress until its allocation is replaced, then
    # the job's activity.
    before_h = await pods("h")
    waited = await cli(caravan, "restart", "r", "h", "--wait", "--timeout", "60")
    assert "r: restarting group h" in waited
    assert "r: 1/1 replaced, 1/1 running" in waited
    assert not set(await pods("h")) & set(before_h)
    said = await cli(caravan, "activity", "r")
    assert said.count("Restarted") == 3, said  # the allocation, group g, group h

    # Drift: a hand scale is taken back, and said so.
    kubectl(kubeconfig, namespace, "scale", "deployment", "r-h", "--replicas=3")
    await eventually(
        lambda: api.get("/v1/jobs/r/activity"),
        lambda r: any(
            i["reason"] == "DriftRepaired" and "r-h was changed by kubectl" in i["message"]
            for i in r.json()["items"]
        ),
        what="DriftRepaired",
    )
    repaired = await kube.get(DEPLOYMENTS.item(namespace, "r-h"))
    assert repaired["spec"]["replicas"] == 1
    # The restart survived the repair of another group's drift.
    again = await kube.get(DEPLOYMENTS.item(namespace, "r-g"))
    assert again["spec"]["template"] == deployment["spec"]["template"]

    # Refusals: an unknown group or job, a pod that is not an allocation, a stopped job.
    assert (await api.post("/v1/jobs/restart/r", json={"taskGroup": "x"})).status_code == 404
    assert (await api.post("/v1/jobs/restart/nope")).status_code == 404
    bare = {"metadata": {"name": "bare"}, "spec": pod_template()["spec"]}
    await kube.create(PODS.collection(namespace), bare)
    assert (await api.post("/v1/allocations/bare/restart")).status_code == 404
    assert (await api.post("/v1/allocations/nope/restart")).status_code == 404
    await api.post("/v1/jobs/stop/r")
    stopped = await api.post("/v1/jobs/restart/r")
    assert stopped.status_code == 409
    assert "stopped" in stopped.json()["error"]

    # A new definition Kubernetes refuses leaves the job as it was, and says so on it;
    # its plan (dryRun) is refused alike but tells nothing on the job.
    bad = group("g")
    bad["template"]["spec"]["restartPolicy"] = "Never"
    for plan in ("true", "false"):
        refused = await api.post(
            "/v1/jobsdef/r",
            params={"force": "true", "dryRun": plan},
            json={"template": {"taskGroups": [bad]}},
        )
        assert refused.status_code == 422, refused.text

    def refused_with(words: str) -> Callable[[httpx.Response], list[dict[str, Any]]]:
        def items(r: httpx.Response) -> list[dict[str, Any]]:
            return [
                i
                for i in r.json()["items"]
                if i["reason"] == "Refused" and i["type"] == "Warning" and words in i["message"]
            ]

        return items

    await eventually(
        lambda: api.get("/v1/jobs/r/activity"),
        lambda r: bool(refused_with("restartPolicy")(r)),
        what="the Refused Event",
    )
    # A pod template the Job's own rules let through but Kubernetes refuses (checked as a
    # Deployment) is told on the job too.
    odd = group("g")
    odd["template"]["spec"]["containers"][0]["imagePullPolicy"] = "Sometimes"
    refused = await api.post(
        "/v1/jobsdef/r", params={"force": "true"}, json={"template": {"taskGroups": [odd]}}
    )
    assert refused.status_code == 422, refused.text
    assert "Kubernetes refuses the pod template" in refused.json()["error"], refused.text
    activity = await eventually(
        lambda: api.get("/v1/jobs/r/activity"),
        lambda r: bool(refused_with("r.template.taskGroups[0].template")(r)),
        what="the Refused Event of the pod template",
    )
    # Events are sent in order: had the plan told one, it would show by now.
    assert [i["count"] for i in refused_with("restartPolicy")(activity)] == [1]
