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
