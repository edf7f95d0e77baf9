"""Task pods never carry Caravan's powers: the pod policy, at admission and in the operator.

The session installs the policy of charts/caravan/files/policies/ with the parameters the
chart would give it (tests/cluster/conftest.py): the task account `caravan-task`, one
allowed account `tasks-allowed`, Caravan's own `caravan`. A user who may only write Jobs
is refused through kubectl and through the API for every forbidden template; the operator
refuses a Job stored before the policy held; on the real node, a task process finds no
ServiceAccount token unless its job names an allowed account.
"""

from __future__ import annotations

import copy
import json
import subprocess
import tempfile
from collections.abc import Callable
from typing import Any

import httpx

from caravan.kube.client import DEPLOYMENTS, JOBS, NAMESPACES, PODS, KubeClient
from caravan.kube.errors import Invalid, NotFound
from caravan.kube.recorder import EVENTS, OPERATOR
from tests.cluster.conftest import (
    ALLOWED_ACCOUNT,
    KUBECTL,
    OWN_ACCOUNT,
    POLICY_LABEL,
    TASK_ACCOUNT,
    running_caravan,
)
from tests.cluster.kubeutil import (
    eventually,
    group,
    job_body,
    pod_template,
    service_account_token,
    token_kubeconfig,
)

# What the user of these tests may do: write Jobs, nothing else (no pods, no Secrets).
JOB_WRITER = [
    {
        "apiGroups": ["caravan.dev"],
        "resources": ["jobs"],
        "verbs": ["get", "list", "create", "update", "patch"],
    }
]
POLICY = {
    "task_service_account": TASK_ACCOUNT,
    "allowed_service_accounts": (ALLOWED_ACCOUNT,),
    "own_service_account": OWN_ACCOUNT,
}


def _pod(change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    template = pod_template()
    change(template["spec"])
    return template


def _container(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(spec: dict[str, Any]) -> None:
        spec["containers"][0].setdefault("securityContext", {})[key] = value

    return change


# (job name, what the template asks for, the field the refusal must name)
REFUSED: list[tuple[str, Callable[[dict[str, Any]], None], str]] = [
    (
        "own-account",
        lambda s: s.update(serviceAccountName=OWN_ACCOUNT),
        "spec.taskGroups[g].template.spec.serviceAccountName",
    ),
    (
        "unlisted-account",
        lambda s: s.update(serviceAccountName="other"),
        "spec.taskGroups[g].template.spec.serviceAccountName",
    ),
    (
        "privileged",
        _container("privileged", True),
        "spec.taskGroups[g].template.spec.containers[main].securityContext.privileged",
    ),
    (
        "host-path",
        lambda s: s.update(volumes=[{"name": "root", "hostPath": {"path": "/"}}]),
        "spec.taskGroups[g].template.spec.volumes[root].hostPath",
    ),
    (
        "host-network",
        lambda s: s.update(hostNetwork=True),
        "spec.taskGroups[g].template.spec.hostNetwork",
    ),
    ("host-pid", lambda s: s.update(hostPID=True), "spec.taskGroups[g].template.spec.hostPID"),
    ("host-ipc", lambda s: s.update(hostIPC=True), "spec.taskGroups[g].template.spec.hostIPC"),
    (
        "capabilities",
        _container("capabilities", {"add": ["SYS_ADMIN"]}),
        "spec.taskGroups[g].template.spec.containers[main].securityContext.capabilities.add",
    ),
    (
        "token-without-account",
        lambda s: s.update(automountServiceAccountToken=True),
        "spec.taskGroups[g].template.spec.automountServiceAccountToken",
    ),
]


async def _policy_in_force(kube: KubeClient, namespace: str) -> None:
    """The apiserver takes a new binding (or namespace label) in within a moment."""
    body = job_body("probe", [group("g", template=_pod(lambda s: s.update(hostPID=True)))])

    async def attempt() -> bool:
        try:
            await kube.request(
                "POST",
                JOBS.collection(namespace),
                query={"dryRun": "All"},
                body=body,
                content_type="application/json",
            )
        except Invalid:
            return True
        return False

    await eventually(attempt, lambda refused: refused, what="the pod policy in force")


async def _accounts(kube: KubeClient, namespace: str) -> None:
    for name in (OWN_ACCOUNT, ALLOWED_ACCOUNT, "other"):
        await kube.create(
            f"/api/v1/namespaces/{namespace}/serviceaccounts", {"metadata": {"name": name}}
        )
    await kube.create(
        f"/api/v1/namespaces/{namespace}/serviceaccounts",
        {"metadata": {"name": TASK_ACCOUNT}, "automountServiceAccountToken": False},
    )


def _kubectl_apply(kubeconfig: str, namespace: str, body: dict[str, Any]) -> Any:
    return subprocess.run(
        [KUBECTL, "--kubeconfig", kubeconfig, "-n", namespace, "create", "-f", "-"],
        input=json.dumps(body),
        capture_output=True,
        text=True,
        check=False,
    )


async def test_a_job_writer_cannot_give_task_pods_powers(
    kube: KubeClient, namespace: str, kubeconfig: str
) -> None:
    await _accounts(kube, namespace)
    token = await service_account_token(kube, namespace, "writer", JOB_WRITER)
    await _policy_in_force(kube, namespace)
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as f:
        writer_config = token_kubeconfig(kubeconfig, token, f.name)
        async with (
            running_caravan(
                namespace=namespace, kubeconfig=kubeconfig, auth_mode="kubernetes", **POLICY
            ) as caravan,
            httpx.AsyncClient(
                base_url=caravan.url, headers={"Authorization": f"Bearer {token}"}, timeout=30
            ) as api,
        ):
            for name, change, field in REFUSED:
                body = job_body(name, [group("g", template=_pod(change))])
                cli = _kubectl_apply(writer_config, namespace, body)
                assert cli.returncode != 0, (name, cli.stdout)
                assert field in cli.stderr, (name, cli.stderr)
                answer = await api.post(
                    f"/v1/jobsdef/{name}",
                    json={"template": {"taskGroups": copy.deepcopy(body["spec"]["taskGroups"])}},
                )
                assert answer.status_code == 422, (name, answer.text)
                assert field in answer.json()["error"], (name, answer.text)
                try:
                    await kube.get(JOBS.item(namespace, name))
                    raise AssertionError(f"job {name} was stored")
                except NotFound:
                    pass
            # An account the installation allows is accepted, by both paths.
            allowed = _pod(lambda s: s.update(serviceAccountName=ALLOWED_ACCOUNT))
            cli = _kubectl_apply(
                writer_config, namespace, job_body("allowed-cli", [group("g", template=allowed)])
            )
            assert cli.returncode == 0, cli.stderr
            answer = await api.post(
                "/v1/jobsdef/allowed-api",
                json={"template": {"taskGroups": [group("g", template=allowed)]}},
            )
            assert answer.status_code < 300, answer.text
            stored = await kube.get(JOBS.item(namespace, "allowed-api"))
            spec = stored["spec"]["taskGroups"][0]["template"]["spec"]
            assert spec["serviceAccountName"] == ALLOWED_ACCOUNT


async def test_the_operator_refuses_a_job_stored_before_the_policy(
    kube: KubeClient, namespace: str, kubeconfig: str
) -> None:
    # The namespace leaves the policy's binding, as before the policy was installed.
    await kube.merge_patch(
        NAMESPACES.item(None, namespace), {"metadata": {"labels": {POLICY_LABEL: None}}}
    )
    bad = _pod(lambda s: s.update(serviceAccountName=OWN_ACCOUNT, hostNetwork=True))
    body = job_body("old", [group("g", template=bad)])

    async def create() -> bool:
        try:
            await kube.create(JOBS.collection(namespace), body)
        except Invalid:
            return False  # the apiserver has not seen the label go yet
        return True

    await eventually(create, lambda created: created, what="the job stored without policy")
    await kube.create(JOBS.collection(namespace), job_body("fine", [group("g")]))
    async with running_caravan(namespace=namespace, kubeconfig=kubeconfig, **POLICY):
        job = await eventually(
            lambda: kube.get(JOBS.item(namespace, "old")),
            lambda j: any(
                c["type"] == "Reconciled" and c["reason"] == "Refused"
                for c in (j.get("status") or {}).get("conditions") or []
            ),
            what="the Refused condition",
        )
        reconciled = next(c for c in job["status"]["conditions"] if c["type"] == "Reconciled")
        assert reconciled["status"] == "False"
        assert "spec.taskGroups[g].template.spec.serviceAccountName" in reconciled["message"]
        assert "spec.taskGroups[g].template.spec.hostNetwork" in reconciled["message"]
        events = await eventually(
            lambda: kube.list_items(EVENTS.collection(namespace)),
            lambda found: any(e.get("reason") == "Refused" for e in found["items"]),
            what="the Refused event",
        )
        event = next(e for e in events["items"] if e.get("reason") == "Refused")
        assert event["type"] == "Warning"
        assert event["reportingController"] == OPERATOR
        assert event["regarding"]["name"] == "old"
        assert event["regarding"]["uid"] == job["metadata"]["uid"]
        assert "serviceAccountName" in event["note"]
        # The compliant job gets its Deployment; the refused one none.
        await eventually(
            lambda: kube.get(DEPLOYMENTS.item(namespace, "fine-g")),
            lambda d: bool(d),
            what="the compliant job's Deployment",
        )
        deployments = await kube.list_items(DEPLOYMENTS.collection(namespace))
        assert [d["metadata"]["name"] for d in deployments["items"]] == ["fine-g"]


# The real node (named 127.0.0.1; kwok's fake nodes are tainted, and a pod without their
# toleration goes to the real node) runs this busybox image's shell for real.
REAL_NODE_IMAGE = "localhost/caravan-pause:1"
TOKEN_PATH = "/var/run/secrets/kubernetes.io/serviceaccount/token"


def _real_template(account: str | None) -> dict[str, Any]:
    probe = f"if [ -e {TOKEN_PATH} ]; then echo token-present; else echo token-absent; fi"
    spec: dict[str, Any] = {
        "containers": [
            {
                "name": "main",
                "image": REAL_NODE_IMAGE,
                "imagePullPolicy": "Never",
                "command": ["sh", "-c", f"{probe}; exec sleep 3600"],
            }
        ],
        "terminationGracePeriodSeconds": 0,
    }
    if account:
        spec["serviceAccountName"] = account
    return {"metadata": {}, "spec": spec}


async def _log(kube: KubeClient, namespace: str, pod: str) -> str:
    response = await kube.stream(PODS.item(namespace, pod, "log"))
    try:
        return await response.text()
    finally:
        response.release()


async def test_a_task_process_finds_no_token_unless_its_job_names_an_allowed_account(
    kube: KubeClient, namespace: str, kubeconfig: str
) -> None:
    await _accounts(kube, namespace)
    await _policy_in_force(kube, namespace)
    for name, account in (("plain", None), ("named", ALLOWED_ACCOUNT)):
        await kube.create(
            JOBS.collection(namespace),
            job_body(name, [group("g", template=_real_template(account))]),
        )
    async with running_caravan(namespace=namespace, kubeconfig=kubeconfig, **POLICY):
        said: dict[str, str] = {}
        for name in ("plain", "named"):
            pods = await eventually(
                lambda name=name: kube.list_items(  # type: ignore[misc]
                    PODS.collection(namespace), labelSelector=f"caravan.dev/job={name}"
                ),
                lambda found: any(
                    (p.get("status") or {}).get("phase") == "Running" for p in found["items"]
                ),
                timeout=90,
                what=f"a running pod of {name}",
            )
            pod = next(p for p in pods["items"] if p["status"]["phase"] == "Running")
            assert pod["spec"]["nodeName"] == "127.0.0.1"
            log = await eventually(
                lambda pod=pod: _log(kube, namespace, pod["metadata"]["name"]),  # type: ignore[misc]
                lambda text: "token-" in text,
                what=f"the token probe of {name}",
            )
            said[name] = log.strip()
            if name == "plain":
                assert pod["spec"]["serviceAccountName"] == TASK_ACCOUNT
                assert pod["spec"]["automountServiceAccountToken"] is False
        assert said == {"plain": "token-absent", "named": "token-present"}
