"""Admission: the Job CRD's rules refuse invalid Jobs for kubectl and the API alike, with
the same message naming the field; the rules across jobs are the API's and the operator's."""

from __future__ import annotations

import asyncio
import copy
import json
import subprocess
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from caravan.kube.client import JOBS, KubeClient
from tests.cluster.conftest import KUBECTL
from tests.cluster.kubeutil import eventually, group, job_body

Edit = Callable[[dict[str, Any]], None]


def _template(job: dict[str, Any]) -> dict[str, Any]:
    return dict(job["spec"]["taskGroups"][0]["template"])


def _set(path: str, value: Any) -> Edit:
    """An edit of the job's first group: `path` is dotted, from the group."""

    def edit(job: dict[str, Any]) -> None:
        where: Any = job["spec"]["taskGroups"][0]
        *parents, last = path.split(".")
        for key in parents:
            where = where[int(key)] if isinstance(where, list) else where.setdefault(key, {})
        if isinstance(where, list):
            where[int(last)] = value
        else:
            where[last] = value

    return edit


def _second_group(job: dict[str, Any]) -> None:
    job["spec"]["taskGroups"].append(copy.deepcopy(job["spec"]["taskGroups"][0]))


def _self_dependency(job: dict[str, Any]) -> None:
    job["spec"]["dependencies"] = [job["metadata"]["name"]]


def _second_container(job: dict[str, Any]) -> None:
    containers = job["spec"]["taskGroups"][0]["template"]["spec"]["containers"]
    containers.append(dict(containers[0]))


# (what, edit of a valid Job, the words the refusal must carry, whether a definition can say it)
RULES: list[tuple[str, Edit, str, bool]] = [
    ("countInit", _set("countInit", 9), "countInit must not exceed countMax", True),
    ("count", _set("count", 9), "count must not exceed countMax", False),
    ("unique groups", _second_group, "spec.taskGroups[1]: Duplicate value", True),
    ("self dependency", _self_dependency, "spec.dependencies must not name the job itself", True),
    (
        "no containers",
        _set("template.spec.containers", []),
        "template.spec.containers must list at least one container",
        True,
    ),
    (
        "no pod spec",
        _set("template", {"metadata": {}}),
        "template.spec.containers must list at least one container",
        True,
    ),
    (
        "container image",
        _set("template.spec.containers.0", {"name": "main"}),
        "spec.taskGroups[0].template.spec.containers[0].image: Required value",
        True,
    ),
    (
        "container name",
        _set("template.spec.containers.0.name", "Main_1"),
        "spec.taskGroups[0].template.spec.containers[0].name: Invalid value",
        True,
    ),
    (
        "unique containers",
        _second_container,
        "template.spec.containers must have unique names",
        True,
    ),
    (
        "restartPolicy",
        _set("template.spec.restartPolicy", "Never"),
        "template.spec.restartPolicy must be Always",
        True,
    ),
    (
        "activeDeadlineSeconds",
        _set("template.spec.activeDeadlineSeconds", 30),
        "template.spec.activeDeadlineSeconds is not allowed",
        True,
    ),
    (
        "label value",
        _set("template.metadata.labels", {"tier": "x" * 64}),
        "spec.taskGroups[0].template.metadata.labels.tier: Too long",
        True,
    ),
    (
        "port",
        _set("template.spec.containers.0.ports", [{"containerPort": 70000}]),
        "spec.taskGroups[0].template.spec.containers[0].ports[0].containerPort: Invalid value",
        True,
    ),
    (
        "progress deadline",
        _set("rollout", {"minHealthySeconds": 30, "progressDeadlineSeconds": 30}),
        "rollout.progressDeadlineSeconds must be greater than rollout.minHealthySeconds",
        True,
    ),
    (
        "surge",
        _set("rollout", {"maxSurge": 0, "maxUnavailable": 0}),
        "rollout.maxSurge and rollout.maxUnavailable must not both be 0",
        True,
    ),
]


def _valid(name: str = "adm") -> dict[str, Any]:
    return job_body(name, [group("g", count_init=1, count_max=3)], suspend=True)


async def _kubectl_create(kubeconfig: str, namespace: str, body: dict[str, Any]) -> str:
    """kubectl's refusal of `body` (it must be refused)."""
    command = [KUBECTL, "--kubeconfig", kubeconfig, "-n", namespace, "create", "-f", "-"]
    done = await asyncio.to_thread(
        subprocess.run, command, input=json.dumps(body), capture_output=True, text=True
    )
    assert done.returncode != 0, f"kubectl accepted {body}: {done.stdout}"
    return str(done.stderr)


def _definition(job: dict[str, Any]) -> dict[str, Any]:
    """The job's definition (the jobsdefs shape) as a client would post it."""
    spec = job["spec"]
    groups = [{k: v for k, v in g.items() if k != "count"} for g in spec["taskGroups"]]
    return {
        "dependencies": spec.get("dependencies", []),
        "template": {"taskGroups": groups},
    }


@pytest.mark.parametrize(("what", "edit", "words", "by_api"), RULES, ids=[r[0] for r in RULES])
async def test_each_rule_refuses_through_kubectl_and_the_api(
    kube: KubeClient,
    kubeconfig: str,
    namespace: str,
    api: httpx.AsyncClient,
    what: str,
    edit: Edit,
    words: str,
    by_api: bool,
) -> None:
    body = _valid()
    edit(body)
    refused = await _kubectl_create(kubeconfig, namespace, body)
    assert words in refused, refused
    if by_api:
        answer = await api.post("/v1/jobsdef/adm", json=_definition(body))
        assert answer.status_code == 422, answer.text
        assert words in answer.json()["error"], answer.text
        assert answer.json()["details"], answer.text
        # A dry run is refused as the write would be.
        planned = await api.post(
            "/v1/jobsdef/adm", json=_definition(body), params={"dryRun": "true"}
        )
        assert planned.status_code == 422 and words in planned.json()["error"], planned.text
    listed = await kube.list_items(JOBS.collection(namespace))
    assert listed["items"] == []


async def test_job_names_that_make_valid_deployments_and_labels(
    kubeconfig: str, namespace: str, api: httpx.AsyncClient
) -> None:
    long = _valid("j" * 64)
    assert "metadata.name must be at most 63 characters" in await _kubectl_create(
        kubeconfig, namespace, long
    )
    dotted = _valid("a.b")
    assert "metadata.name must be a DNS label" in await _kubectl_create(
        kubeconfig, namespace, dotted
    )
    long_group = _valid()
    long_group["spec"]["taskGroups"][0]["name"] = "g" * 41
    refused = await _kubectl_create(kubeconfig, namespace, long_group)
    assert "spec.taskGroups[0].name: Too long" in refused, refused
    # The Deployment <job>-<group> must be a DNS label: pods and hostnames derive from it.
    too_long = _valid("j" * 23)
    too_long["spec"]["taskGroups"][0]["name"] = "g" * 40
    words = "each group's Deployment, named <job>-<group>, must be a DNS"
    assert words in await _kubectl_create(kubeconfig, namespace, too_long)
    answer = await api.post("/v1/jobsdef/" + "j" * 23, json=_definition(too_long))
    assert answer.status_code == 422 and words in answer.json()["error"], answer.text
    # The longest names allowed make a Deployment Kubernetes takes, with its labels.
    longest = _valid("j" * 22)
    longest["spec"]["taskGroups"][0]["name"] = "g" * 40
    answer = await api.post("/v1/jobsdef/" + "j" * 22, json=_definition(longest))
    assert answer.status_code == 200, answer.text
    assert (await api.post("/v1/jobs/start/" + "j" * 22)).status_code == 200
    await eventually(
        lambda: api.get("/v1/jobs/" + "j" * 22),
        lambda r: r.json()["taskGroups"][0]["summary"]["running"] == 1,
        what="the allocation of the longest names running",
    )


async def test_a_cross_job_cycle_is_refused_by_the_api(
    kube: KubeClient, namespace: str, api: httpx.AsyncClient
) -> None:
    one = _definition(_valid())
    assert (await api.post("/v1/jobsdef/a", json=one)).status_code == 200
    assert (await api.post("/v1/jobsdef/b", json={**one, "dependencies": ["a"]})).status_code == 200
    cycle = await api.post("/v1/jobsdef/a", json={**one, "dependencies": ["b"]})
    assert cycle.status_code == 422, cycle.text
    message = "spec.dependencies make a dependency cycle: a -> b -> a"
    assert message in cycle.json()["error"]
    assert cycle.json()["details"] == [{"field": "a.dependencies", "message": message}]
    missing = await api.post("/v1/jobsdef/c", json={**one, "dependencies": ["nowhere"]})
    assert missing.status_code == 422
    assert "spec.dependencies names job 'nowhere', which does not exist" in missing.text
    whole = await api.post(
        "/v1/jobsdefs",
        json={"a": {**one, "dependencies": ["b"]}, "b": {**one, "dependencies": ["a"]}},
    )
    assert whole.status_code == 422 and message in whole.json()["error"]
    assert (await kube.get(JOBS.item(namespace, "a")))["spec"]["dependencies"] == []
    # A cycle made with kubectl, which the API cannot refuse, is reported on the Jobs by
    # the operator: tests/cluster/test_dependencies.py.
