"""Versions of job definitions (ControllerRevisions), revert and plans, on a real apiserver."""

from __future__ import annotations

import asyncio
import json
import subprocess
from typing import Any

import httpx

from caravan.kube.client import CONTROLLER_REVISIONS, JOBS, KubeClient
from tests.cluster.conftest import KUBECTL
from tests.cluster.kubeutil import eventually, group, job_body, pod_template


def image_of(job: dict[str, Any]) -> str:
    return str(job["spec"]["taskGroups"][0]["template"]["spec"]["containers"][0]["image"])


def definition(image: str = "caravan.test/fake:1", count_max: int = 5) -> dict[str, Any]:
    template = pod_template()
    template["spec"]["containers"][0]["image"] = image
    return {"template": {"taskGroups": [group("g", count_max=count_max, template=template)]}}


async def settled(kube: KubeClient, namespace: str, name: str) -> dict[str, Any]:
    """The Job once the operator has handled its current spec (versions included)."""
    return await eventually(
        lambda: kube.get(JOBS.item(namespace, name)),
        lambda j: (
            (j.get("status") or {}).get("observedGeneration") == j["metadata"]["generation"]
            and "version" in (j.get("status") or {})
        ),
        what=f"job {name} handled by the operator",
    )


async def versions(api: httpx.AsyncClient, name: str) -> list[dict[str, Any]]:
    answer = await api.get(f"/v1/jobs/{name}/versions")
    assert answer.status_code == 200, answer.text
    return list(answer.json())


async def kubectl(kubeconfig: str, namespace: str, *args: str, stdin: str | None = None) -> str:
    command = [KUBECTL, "--kubeconfig", kubeconfig, "-n", namespace, *args]
    done = await asyncio.to_thread(
        subprocess.run, command, input=stdin, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return str(done.stdout)


async def test_versions_by_every_path_and_not_for_counts(
    kube: KubeClient, kubeconfig: str, namespace: str, api: httpx.AsyncClient
) -> None:
    body = job_body("web", [group("g", count_max=5)], suspend=True)
    await kubectl(kubeconfig, namespace, "create", "-f", "-", stdin=json.dumps(body))
    job = await settled(kube, namespace, "web")
    assert job["status"]["version"] == 1
    first = await versions(api, "web")
    assert [(v["version"], v["change"]) for v in first] == [(1, "created")]
    assert first[0]["time"].endswith("Z")

    # kubectl: a new image is a version.
    patch = [
        {
            "op": "replace",
            "path": "/spec/taskGroups/0/template/spec/containers/0/image",
            "value": "caravan.test/fake:2",
        }
    ]
    await kubectl(
        kubeconfig, namespace, "patch", "cjob", "web", "--type", "json", "-p", json.dumps(patch)
    )
    await eventually(lambda: versions(api, "web"), lambda vs: len(vs) == 2, what="version 2")
    # The API: a new countMax is a version.
    written = await api.post("/v1/jobsdef/web", json=definition("caravan.test/fake:2", count_max=7))
    assert written.status_code == 200, written.text
    listed = await eventually(lambda: versions(api, "web"), lambda vs: len(vs) == 3, what="v3")
    assert [v["version"] for v in listed] == [3, 2, 1]  # newest first
    assert "g.template (spec.containers[0].image)" in listed[1]["change"]
    assert listed[0]["change"] == "g.countMax 5 -> 7"

    # Start, updatecounts and stop change counts and suspend only: no version.
    assert (await api.post("/v1/jobs/start/web")).status_code == 200
    counts = {"jobID": "web", "taskGroup": "g", "count": 2}
    assert (await api.post("/v1/jobs/updatecounts", json=counts)).status_code == 200
    job = await settled(kube, namespace, "web")
    assert job["spec"]["taskGroups"][0]["count"] == 3 and job["status"]["version"] == 3
    assert [v["version"] for v in await versions(api, "web")] == [3, 2, 1]

    three = await api.get("/v1/jobs/web/versions/3")
    assert three.status_code == 200
    assert three.json()["version"] == 3
    assert three.json()["definition"]["template"]["taskGroups"][0]["countMax"] == 7
    assert (await api.get("/v1/jobs/web/versions/99")).status_code == 404
    assert (await api.get("/v1/jobs/nope/versions")).status_code == 404

    # Revert to version 1: its template and countMax, the running count kept (3 <= 5).
    reverted = await api.post("/v1/jobs/web/revert", json={"version": 1})
    assert reverted.status_code == 200, reverted.text
    assert reverted.json()["name"] == "web"
    assert reverted.json()["taskGroups"][0]["count"] == 3
    assert reverted.json()["taskGroups"][0]["countMax"] == 5
    job = await kube.get(JOBS.item(namespace, "web"))
    assert image_of(job) == "caravan.test/fake:1"
    assert job["spec"]["suspend"] is False and job["spec"]["taskGroups"][0]["count"] == 3
    # The revert answered once the operator recorded it: the next read shows version 4.
    listed = await versions(api, "web")
    assert [v["version"] for v in listed] == [4, 3, 2, 1]
    assert listed[0]["change"].startswith("back to version 1: ")
    assert (await settled(kube, namespace, "web"))["status"]["version"] == 4
    missing = await api.post("/v1/jobs/web/revert", json={"version": 42})
    assert missing.status_code == 404 and missing.json()["error"]
    bad = await api.post("/v1/jobs/web/revert", json={"version": "one"})
    assert bad.status_code == 400

    # The history limit holds, the current version kept.
    await kube.merge_patch(JOBS.item(namespace, "web"), {"spec": {"revisionHistoryLimit": 2}})
    trimmed = await eventually(
        lambda: versions(api, "web"), lambda vs: len(vs) == 2, what="history trimmed to 2"
    )
    assert [v["version"] for v in trimmed] == [4, 3]
    stored = await kube.list_items(
        CONTROLLER_REVISIONS.collection(namespace), labelSelector="caravan.dev/job=web"
    )
    assert sorted(r["revision"] for r in stored["items"]) == [3, 4]
    owner = stored["items"][0]["metadata"]["ownerReferences"][0]
    assert owner["kind"] == "Job" and owner["controller"] is True
    assert owner["uid"] == job["metadata"]["uid"]


async def test_load_makes_a_version(
    kube: KubeClient, kubeconfig: str, namespace: str, api: httpx.AsyncClient
) -> None:
    assert (await api.post("/v1/jobsdefs", json={"db": definition()})).status_code == 200
    await settled(kube, namespace, "db")
    loaded = await api.post("/v1/jobsdefs", json={"db": definition("caravan.test/fake:3")})
    assert loaded.status_code == 200, loaded.text
    listed = await eventually(lambda: versions(api, "db"), lambda vs: len(vs) == 2, what="v2")
    assert listed[0]["change"] == "g.template (spec.containers[0].image)"


async def test_a_dry_run_writes_nothing_and_its_diff_names_the_changed_fields(
    kube: KubeClient, namespace: str, api: httpx.AsyncClient
) -> None:
    assert (await api.post("/v1/jobsdef/web", json=definition())).status_code == 200
    assert (await api.post("/v1/jobs/start/web")).status_code == 200
    before = await settled(kube, namespace, "web")
    planned = await api.post(
        "/v1/jobsdef/web", json=definition("caravan.test/fake:2"), params={"dryRun": "true"}
    )
    assert planned.status_code == 200, planned.text
    plan = planned.json()["jobs"]["web"]
    assert plan["action"] == "replace" and plan["restartsAllocations"] is True
    assert "-        - image: caravan.test/fake:1\n" in plan["diff"]
    assert "+        - image: caravan.test/fake:2\n" in plan["diff"]
    ceiling = await api.post(
        "/v1/jobsdef/web", json=definition(count_max=9), params={"dryRun": "true"}
    )
    assert ceiling.json()["jobs"]["web"]["restartsAllocations"] is False
    assert "-    countMax: 5\n+    countMax: 9\n" in ceiling.json()["jobs"]["web"]["diff"]
    fresh = await api.post("/v1/jobsdef/fresh", json=definition(), params={"dryRun": "true"})
    assert fresh.json()["jobs"]["fresh"]["action"] == "create"
    whole = await api.post("/v1/jobsdefs", json={"other": definition()}, params={"dryRun": "true"})
    assert whole.status_code == 200, whole.text
    assert {n: p["action"] for n, p in whole.json()["jobs"].items()} == {
        "other": "create",
        "web": "delete",
    }
    assert whole.json()["jobs"]["web"]["restartsAllocations"] is True
    same = await api.post("/v1/jobsdefs", json={"web": definition()}, params={"dryRun": "true"})
    assert same.json()["jobs"] == {
        "web": {"action": "unchanged", "diff": "", "restartsAllocations": False}
    }
    # Nothing was written: the Job as it was, no other job, no new version.
    after = await kube.get(JOBS.item(namespace, "web"))
    assert after["spec"] == before["spec"]
    assert after["metadata"]["generation"] == before["metadata"]["generation"]
    names = [
        j["metadata"]["name"] for j in (await kube.list_items(JOBS.collection(namespace)))["items"]
    ]
    assert names == ["web"]
    assert [v["version"] for v in await versions(api, "web")] == [1]


async def test_the_operator_keeps_versions_of_kubectl_changes_only_for_definitions(
    kube: KubeClient, kubeconfig: str, namespace: str, caravan: object
) -> None:
    body = job_body("ops", [group("g", count_max=5)], suspend=True)
    await kubectl(kubeconfig, namespace, "create", "-f", "-", stdin=json.dumps(body))
    assert (await settled(kube, namespace, "ops"))["status"]["version"] == 1

    async def revisions() -> list[dict[str, Any]]:
        listed = await kube.list_items(
            CONTROLLER_REVISIONS.collection(namespace), labelSelector="caravan.dev/job=ops"
        )
        return sorted(listed["items"], key=lambda r: int(r["revision"]))

    [first] = await revisions()
    assert first["data"]["template"]["taskGroups"][0]["countMax"] == 5
    assert first["metadata"]["annotations"]["caravan.dev/change"] == "created"
    # Counts and suspend: no version (the operator handled them: observedGeneration).
    for patch in (
        {"spec": {"suspend": False}},
        {"spec": {"taskGroups": [{**body["spec"]["taskGroups"][0], "count": 3}]}},
        {"spec": {"suspend": True}},
    ):
        await kubectl(
            kubeconfig,
            namespace,
            "patch",
            "cjob",
            "ops",
            "--type",
            "merge",
            "-p",
            json.dumps(patch),
        )
        assert (await settled(kube, namespace, "ops"))["status"]["version"] == 1
    assert len(await revisions()) == 1
    # autostart, dependencies, countMax: each a version.
    await kubectl(
        kubeconfig,
        namespace,
        "patch",
        "cjob",
        "ops",
        "--type",
        "merge",
        "-p",
        '{"spec": {"autostart": false}}',
    )
    job = await eventually(
        lambda: settled(kube, namespace, "ops"), lambda j: j["status"]["version"] == 2, what="v2"
    )
    assert [r["revision"] for r in await revisions()] == [1, 2]
    await kubectl(
        kubeconfig,
        namespace,
        "patch",
        "cjob",
        "ops",
        "--type",
        "merge",
        "-p",
        '{"spec": {"revisionHistoryLimit": 1}}',
    )
    await eventually(revisions, lambda rs: [r["revision"] for r in rs] == [2], what="trimmed")
    wide = await kubectl(kubeconfig, namespace, "get", "cjob", "ops", "-o", "wide")
    header, row = wide.splitlines()
    assert row[header.index("VERSION") :].split()[0] == "2"
    assert job["metadata"]["uid"] == (await revisions())[0]["metadata"]["ownerReferences"][0]["uid"]
