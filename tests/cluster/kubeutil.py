"""Helpers for cluster tests: object builders and polling waits (no sleeps-as-asserts)."""

from __future__ import annotations

import asyncio
import pathlib
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from caravan.kube.client import JOBS, PODS, KubeClient, KubeError
from caravan.runner import Caravan

T = TypeVar("T")


async def eventually(
    probe: Callable[[], Awaitable[T]],
    check: Callable[[T], bool],
    timeout: float = 30.0,
    interval: float = 0.2,
    what: str = "condition",
) -> T:
    """Polls `probe` until `check` holds on its result; fails with the last value seen.

    A check that cannot read the value yet (a key or an item missing, e.g. the 404 body
    of a job the API's store has not seen yet) does not hold: polled again."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            value = await probe()
            last = value
            if check(value):
                return value
        except KubeError as exc:
            last = exc
        except LookupError:
            pass  # the check could not read the value yet: it does not hold
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")
        await asyncio.sleep(interval)


async def wait_for_default_service_account(kube: KubeClient, namespace: str) -> None:
    await eventually(
        lambda: kube.get(f"/api/v1/namespaces/{namespace}/serviceaccounts/default"),
        lambda sa: bool(sa),
        timeout=30,
        what=f"ServiceAccount default in {namespace}",
    )


# Where fake pods go. The local cluster's kwok nodes carry this label and a NoSchedule
# taint of the same key, so pods without them land on the real node (hack/cluster.sh).
FAKE_NODE_SELECTOR = {"type": "kwok"}
FAKE_NODE_TOLERATIONS = [
    {"key": "kwok.x-k8s.io/node", "operator": "Exists", "effect": "NoSchedule"}
]


def pod_template(
    containers: list[str] | None = None,
    annotations: dict[str, str] | None = None,
    node_selector: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A pod template for kwok's fake nodes; annotations pick a kwok stage (see hack/kwok).

    Nothing runs: kwok only moves the pod through its states. Tests of real processes use
    the real node's images instead (tests/e2e).
    """
    spec: dict[str, Any] = {
        "containers": [{"name": c, "image": "caravan.test/fake:1"} for c in containers or ["main"]],
        "nodeSelector": node_selector or dict(FAKE_NODE_SELECTOR),
        "tolerations": list(FAKE_NODE_TOLERATIONS),
    }
    return {"metadata": {"annotations": annotations or {}}, "spec": spec}


def job_body(
    name: str,
    groups: list[dict[str, Any]],
    suspend: bool = False,
) -> dict[str, Any]:
    return {
        "apiVersion": "caravan.dev/v1alpha1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {"suspend": suspend, "taskGroups": groups},
    }


def group(
    name: str,
    count: int | None = None,
    count_init: int = 1,
    count_max: int = 5,
    template: dict[str, Any] | None = None,
) -> dict[str, Any]:
    g: dict[str, Any] = {
        "name": name,
        "countInit": count_init,
        "countMax": count_max,
        "template": template or pod_template(),
    }
    if count is not None:
        g["count"] = count
    return g


def cri_log(lines: list[tuple[str, str]]) -> str:
    """CRI log file content: one `<time> <stream> F <text>` line per (stream, text)."""
    return "".join(
        f"2026-01-01T00:00:{i % 60:02d}.000000000Z {stream} F {text}\n"
        for i, (stream, text) in enumerate(lines)
    )


async def serve_pod_log(
    kube: KubeClient, namespace: str, pod: str, path: str, containers: list[str] | None = None
) -> None:
    """Tells kwok to serve `path` (a CRI log file) as the log of `pod`'s containers."""
    body = {
        "apiVersion": "kwok.x-k8s.io/v1alpha1",
        "kind": "Logs",
        "metadata": {"name": pod, "namespace": namespace},
        "spec": {"logs": [{"containers": containers or [], "logsFile": path, "follow": True}]},
    }
    await kube.create(f"/apis/kwok.x-k8s.io/v1alpha1/namespaces/{namespace}/logs", body)


async def service_account_token(
    kube: KubeClient, namespace: str, name: str, rules: list[dict[str, Any]] | None = None
) -> str:
    """Creates ServiceAccount `name` (bound to a Role of `rules` when given); its token."""
    await kube.create(
        f"/api/v1/namespaces/{namespace}/serviceaccounts", {"metadata": {"name": name}}
    )
    if rules is not None:
        rbac = f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}"
        await kube.create(f"{rbac}/roles", {"metadata": {"name": name}, "rules": rules})
        await kube.create(
            f"{rbac}/rolebindings",
            {
                "metadata": {"name": name},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
                "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}],
            },
        )
    return await request_token(kube, namespace, name)


async def request_token(kube: KubeClient, namespace: str, service_account: str) -> str:
    """A one-hour token of an existing ServiceAccount (a TokenRequest)."""
    request = await kube.create(
        f"/api/v1/namespaces/{namespace}/serviceaccounts/{service_account}/token",
        {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {"expirationSeconds": 3600},
        },
    )
    return str(request["status"]["token"])


def token_kubeconfig(admin_kubeconfig: str, token: str, path: str) -> str:
    """A kubeconfig for the same cluster as `admin_kubeconfig`, authenticated by `token`."""
    import yaml

    with open(admin_kubeconfig) as f:
        admin = yaml.safe_load(f)
    context = next(c for c in admin["contexts"] if c["name"] == admin["current-context"])
    cluster = next(c for c in admin["clusters"] if c["name"] == context["context"]["cluster"])
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [cluster],
        "users": [{"name": "token-user", "user": {"token": token}}],
        "contexts": [
            {"name": "token", "context": {"cluster": cluster["name"], "user": "token-user"}}
        ],
        "current-context": "token",
    }
    with open(path, "w") as f:
        yaml.safe_dump(config, f)
    return path


async def running_allocations(
    kube: KubeClient,
    namespace: str,
    caravan: Caravan,
    job: str,
    count: int,
    containers: list[str] | None = None,
) -> list[str]:
    """Creates a job of one group `web` and waits for `count` running pods in the store."""
    template = pod_template(containers=containers or ["main"])
    await kube.create(
        JOBS.collection(namespace),
        job_body(job, [group("web", count_init=count, template=template)]),
    )
    assert caravan.state is not None
    store = caravan.state.store

    async def running() -> list[str]:
        return [p.name for p in store.pods_of(job, "web") if p.bucket == "running"]

    return await eventually(running, lambda pods: len(pods) == count, what=f"{count} running pods")


async def pod_log(kube: KubeClient, namespace: str, pod: str, container: str = "main") -> bytes:
    response = await kube.stream(PODS.item(namespace, pod, "log"), query={"container": container})
    try:
        return await response.read()
    finally:
        response.release()


async def served_allocation(
    kube: KubeClient,
    namespace: str,
    caravan: Caravan,
    tmp_path: pathlib.Path,
    lines: list[tuple[str, str]],
) -> tuple[str, pathlib.Path, bytes]:
    """A running allocation whose log is `lines`; returns (pod, CRI file, log bytes)."""
    (pod,) = await running_allocations(kube, namespace, caravan, "talk", 1)
    path = tmp_path / "talk.log"
    path.write_text(cri_log(lines))
    await serve_pod_log(kube, namespace, pod, str(path))
    expected = "".join(f"{text}\n" for _, text in lines).encode()
    truth = await eventually(
        lambda: pod_log(kube, namespace, pod), lambda b: b == expected, what="the pod log"
    )
    return pod, path, truth
