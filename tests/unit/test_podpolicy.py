"""The pod policy's pure check (the operator's half; the apiserver's is the chart's policy)."""

from __future__ import annotations

from typing import Any

import pytest

from caravan.jobs.podpolicy import PodPolicy, task_account_decorator, violations
from caravan.jobs.spec import read_job

POLICY = PodPolicy(
    task_service_account="caravan-task",
    allowed_service_accounts=frozenset({"tasks-allowed", "caravan"}),
    own_service_account="caravan",
)
G = "spec.taskGroups[g].template.spec"


def job(pod: dict[str, Any]) -> dict[str, Any]:
    spec = {"containers": [{"name": "main", "image": "x"}], **pod}
    return {
        "metadata": {"name": "j"},
        "spec": {"taskGroups": [{"name": "g", "countMax": 1, "template": {"spec": spec}}]},
    }


def container(**context: Any) -> dict[str, Any]:
    return {"containers": [{"name": "main", "image": "x", "securityContext": context}]}


@pytest.mark.parametrize(
    ("pod", "path"),
    [
        ({"serviceAccountName": "caravan"}, f"{G}.serviceAccountName"),
        ({"serviceAccountName": "other"}, f"{G}.serviceAccountName"),
        ({"serviceAccount": "other"}, f"{G}.serviceAccount"),
        ({"automountServiceAccountToken": True}, f"{G}.automountServiceAccountToken"),
        (
            {"volumes": [{"name": "t", "projected": {"sources": [{"serviceAccountToken": {}}]}}]},
            f"{G}.volumes.projected.sources",
        ),
        ({"hostNetwork": True}, f"{G}.hostNetwork"),
        ({"hostPID": True}, f"{G}.hostPID"),
        ({"hostIPC": True}, f"{G}.hostIPC"),
        ({"volumes": [{"name": "root", "hostPath": {"path": "/"}}]}, f"{G}.volumes[root].hostPath"),
        (container(privileged=True), f"{G}.containers[main].securityContext.privileged"),
        (
            container(capabilities={"add": ["NET_BIND_SERVICE", "SYS_ADMIN"]}),
            f"{G}.containers[main].securityContext.capabilities.add",
        ),
        (container(procMount="Unmasked"), f"{G}.containers[main].securityContext.procMount"),
        (
            container(seccompProfile={"type": "Unconfined"}),
            f"{G}.containers[main].securityContext.seccompProfile.type",
        ),
        (
            {"securityContext": {"appArmorProfile": {"type": "Unconfined"}}},
            f"{G}.securityContext.appArmorProfile.type",
        ),
        (
            {"securityContext": {"sysctls": [{"name": "kernel.msgmax", "value": "1"}]}},
            f"{G}.securityContext.sysctls",
        ),
        (
            {"securityContext": {"seLinuxOptions": {"user": "root"}}},
            f"{G}.securityContext.seLinuxOptions.user",
        ),
        (
            {
                "containers": [
                    {"name": "main", "image": "x", "ports": [{"containerPort": 80, "hostPort": 80}]}
                ]
            },
            f"{G}.containers[main].ports.hostPort",
        ),
        (
            {
                "initContainers": [
                    {"name": "i", "image": "x", "securityContext": {"privileged": True}}
                ]
            },
            f"{G}.initContainers[i].securityContext.privileged",
        ),
    ],
)
def test_each_refusal_names_its_field(pod: dict[str, Any], path: str) -> None:
    found = violations(job(pod), POLICY)
    assert [v.path for v in found] == [path], found
    assert str(found[0]).startswith(path + ": ")


def test_caravans_own_account_is_refused_even_when_listed() -> None:
    (found,) = violations(job({"serviceAccountName": "caravan"}), POLICY)
    assert "Caravan's own ServiceAccount" in found.message


def test_what_baseline_allows_passes() -> None:
    allowed: list[dict[str, Any]] = [
        {},
        {"serviceAccountName": "tasks-allowed", "automountServiceAccountToken": True},
        {"serviceAccountName": "caravan-task"},
        {"automountServiceAccountToken": False, "hostNetwork": False},
        container(
            capabilities={"add": ["NET_BIND_SERVICE"], "drop": ["ALL"]},
            seccompProfile={"type": "RuntimeDefault"},
            privileged=False,
            procMount="Default",
        ),
        {"securityContext": {"sysctls": [{"name": "net.ipv4.tcp_syncookies", "value": "1"}]}},
        {"volumes": [{"name": "scratch", "emptyDir": {}}]},
    ]
    for pod in allowed:
        assert violations(job(pod), POLICY) == [], pod


def test_privileged_level_keeps_the_account_rules_only() -> None:
    loose = PodPolicy(own_service_account="caravan", level="privileged")
    assert violations(job({"hostNetwork": True, **container(privileged=True)}), loose) == []
    assert [v.path for v in violations(job({"serviceAccountName": "caravan"}), loose)] == [
        f"{G}.serviceAccountName"
    ]


def test_the_operator_gives_unnamed_templates_the_task_account_and_no_token() -> None:
    body = job({})
    spec = read_job(body)
    template = body["spec"]["taskGroups"][0]["template"]
    task_account_decorator(POLICY)(template, spec, spec.task_groups[0])
    assert template["spec"]["serviceAccountName"] == "caravan-task"
    assert template["spec"]["automountServiceAccountToken"] is False
    named = job({"serviceAccountName": "tasks-allowed"})["spec"]["taskGroups"][0]["template"]
    task_account_decorator(POLICY)(named, spec, spec.task_groups[0])
    assert named["spec"] == {
        "containers": [{"name": "main", "image": "x"}],
        "serviceAccountName": "tasks-allowed",
    }
    without = job({})["spec"]["taskGroups"][0]["template"]
    task_account_decorator(PodPolicy())(without, spec, spec.task_groups[0])
    assert "serviceAccountName" not in without["spec"]
    assert without["spec"]["automountServiceAccountToken"] is False
