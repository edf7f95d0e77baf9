"""The rules across jobs that admission cannot check, as the operator reports them."""

from __future__ import annotations

from typing import Any

from caravan.kube.client import JOBS, KubeClient
from tests.cluster.kubeutil import eventually, group, job_body


async def test_a_cycle_made_with_kubectl_is_reported_on_the_jobs(
    kube: KubeClient, namespace: str, caravan: object
) -> None:
    message = "spec.dependencies make a dependency cycle: a -> b -> a"
    await kube.create(JOBS.collection(namespace), job_body("a", [group("g")], suspend=True))
    b = job_body("b", [group("g")], suspend=True)
    b["spec"]["dependencies"] = ["a"]
    await kube.create(JOBS.collection(namespace), b)
    # kubectl can close the cycle: the operator says so on the Job, with a Warning Event.
    await kube.merge_patch(JOBS.item(namespace, "a"), {"spec": {"dependencies": ["b"]}})

    def condition(job: dict[str, Any]) -> dict[str, Any]:
        found = [
            c
            for c in (job.get("status") or {}).get("conditions") or []
            if c["type"] == "DependenciesResolved"
        ]
        return found[0] if found else {}

    a = await eventually(
        lambda: kube.get(JOBS.item(namespace, "a")),
        lambda j: condition(j).get("status") == "False",
        what="job a's DependenciesResolved condition",
    )
    assert condition(a)["reason"] == "DependencyCycle"
    assert condition(a)["message"] == message
    b = await eventually(
        lambda: kube.get(JOBS.item(namespace, "b")),
        lambda j: condition(j).get("status") == "False",
        what="job b's DependenciesResolved condition",
    )
    assert condition(b)["message"] == "spec.dependencies make a dependency cycle: b -> a -> b"
    events = await eventually(
        lambda: kube.list_items(
            f"/api/v1/namespaces/{namespace}/events",
            fieldSelector="involvedObject.name=a,reason=DependencyCycle",
        ),
        lambda listed: bool(listed["items"]),
        what="the Warning Event",
    )
    assert events["items"][0]["type"] == "Warning"
    assert events["items"][0]["message"] == message
    # Broken again: the condition clears on both.
    await kube.merge_patch(JOBS.item(namespace, "a"), {"spec": {"dependencies": []}})
    for name in ("a", "b"):
        await eventually(
            lambda name=name: kube.get(JOBS.item(namespace, name)),  # type: ignore[misc]
            lambda j: condition(j).get("status") == "True",
            what=f"job {name}'s condition cleared",
        )


async def test_a_missing_dependency_is_reported_until_the_job_appears(
    kube: KubeClient, namespace: str, caravan: object
) -> None:
    c = job_body("c", [group("g")], suspend=True)
    c["spec"]["dependencies"] = ["later"]
    await kube.create(JOBS.collection(namespace), c)

    def condition(job: dict[str, Any]) -> dict[str, Any]:
        found = [
            x
            for x in (job.get("status") or {}).get("conditions") or []
            if x["type"] == "DependenciesResolved"
        ]
        return found[0] if found else {}

    reported = await eventually(
        lambda: kube.get(JOBS.item(namespace, "c")),
        lambda j: condition(j).get("status") == "False",
        what="job c's missing dependency reported",
    )
    assert condition(reported)["reason"] == "MissingDependency"
    assert condition(reported)["message"] == (
        "spec.dependencies names job 'later', which does not exist"
    )
    await kube.create(JOBS.collection(namespace), job_body("later", [group("g")], suspend=True))
    await eventually(
        lambda: kube.get(JOBS.item(namespace, "c")),
        lambda j: condition(j).get("status") == "True",
        what="job c's condition cleared once the job appeared",
    )
