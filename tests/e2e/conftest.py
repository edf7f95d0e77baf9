"""Fixtures of the e2e tier: the users' path on a node that runs real processes.

Caravan's image (built from the Dockerfile by hack/images.sh on the local cluster) is
installed with `helm install` of charts/caravan, runs as a pod with the chart's
ServiceAccount, RBAC, probes and security context, and is driven over HTTP with a
ServiceAccount token (auth.mode=kubernetes, the chart's default). Jobs run the example
task program (examples/task) for real.

On the local cluster the real node is this machine: Caravan runs there with hostNetwork
on a free loopback port (pods have no network beyond themselves, docs/local-cluster.md). On any
other cluster (`KUBECONFIG`, e.g. kind, with both images loaded) the chart's defaults are
used and the API is reached through `kubectl port-forward`. No test here is ever skipped:
without a node that runs processes, the tier fails.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import re
import socket
import subprocess
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import yaml

from caravan.kube.client import KubeClient
from tests.cluster.conftest import kube, kubeconfig, namespace  # noqa: F401 (fixtures)
from tests.cluster.kubeutil import eventually, service_account_token
from tests.helm import helm

ROOT = pathlib.Path(__file__).resolve().parents[2]
KUBECTL = str(ROOT / ".venv" / "bin" / "kubectl")
CHART = ROOT / "charts" / "caravan"
RELEASE = "caravan"
TASK_IMAGE = "caravan-example-task:0.1.0"
LOCAL_NODE_LABEL = "caravan.dev/real-node"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class RealNode:
    name: str
    local: bool  # the local cluster's node (hack/node.sh), i.e. this machine


@pytest.fixture(scope="session")
def real_node(kubeconfig: str, request: pytest.FixtureRequest) -> RealNode:  # noqa: F811
    """A Ready node that runs processes (not one of kwok's); its images are current."""
    out = subprocess.run(
        [KUBECTL, "--kubeconfig", kubeconfig, "get", "nodes", "-o", "json"],
        check=True,
        capture_output=True,
        text=True,
    )
    for node in yaml.safe_load(out.stdout)["items"]:
        meta = node["metadata"]
        if (meta.get("annotations") or {}).get("kwok.x-k8s.io/node") == "fake":
            continue
        ready = {c["type"]: c["status"] for c in node["status"].get("conditions", [])}
        if ready.get("Ready") != "True":
            continue
        local = (meta.get("labels") or {}).get(LOCAL_NODE_LABEL) == "true"
        if local:
            _import_images(request)
        return RealNode(meta["name"], local)
    why = subprocess.run(
        [str(ROOT / "hack" / "node.sh"), "check"], capture_output=True, text=True, check=False
    ).stdout.strip()
    pytest.fail(
        "no Ready node runs real processes: the e2e tier needs the local cluster's real node"
        f" (hack/node.sh{': ' + why if why else ''}) or a cluster with real nodes"
    )


def _import_images(request: pytest.FixtureRequest) -> None:
    """(Re)builds the images from the current sources when they changed, with progress."""
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    suspended = capture.global_and_fixture_disabled() if capture else contextlib.nullcontext()
    socket_path = subprocess.run(
        [str(ROOT / "hack" / "node.sh"), "socket"], capture_output=True, text=True, check=True
    ).stdout.strip()
    with suspended:
        print(flush=True)
        code = subprocess.run(
            [str(ROOT / "hack" / "images.sh"), "import", socket_path], check=False
        ).returncode
    if code != 0:
        pytest.fail("hack/images.sh import failed (its output is above)")


@dataclass
class Installed:
    """Caravan installed by the chart, and a client that reaches its API with a token."""

    namespace: str
    url: str
    token: str
    api: httpx.AsyncClient
    kubeconfig: str

    def kubectl(self, *args: str, check: bool = True) -> str:
        result = subprocess.run(
            [KUBECTL, "--kubeconfig", self.kubeconfig, "-n", self.namespace, *args],
            capture_output=True,
            text=True,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)}: {result.stderr}")
        return result.stdout


def _apiserver(config_path: str) -> tuple[str, str]:
    with open(config_path) as f:
        config = yaml.safe_load(f)
    context = next(c for c in config["contexts"] if c["name"] == config["current-context"])
    cluster = next(c for c in config["clusters"] if c["name"] == context["context"]["cluster"])
    match = re.match(r"https://([^:/]+):(\d+)", cluster["cluster"]["server"])
    assert match, f"unexpected apiserver address {cluster['cluster']['server']}"
    return match.group(1), match.group(2)


@contextlib.contextmanager
def _port_forward(config_path: str, ns: str) -> Iterator[str]:
    process = subprocess.Popen(
        [
            KUBECTL,
            "--kubeconfig",
            config_path,
            "-n",
            ns,
            "port-forward",
            f"svc/{RELEASE}",
            ":8080",
            "--address",
            "127.0.0.1",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        match = re.search(r"127\.0\.0\.1:(\d+)", line)
        assert match, f"kubectl port-forward said {line!r}"
        yield f"http://127.0.0.1:{match.group(1)}"
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
async def installed(
    real_node: RealNode,
    kubeconfig: str,  # noqa: F811
    kube: KubeClient,  # noqa: F811
    namespace: str,  # noqa: F811
) -> AsyncIterator[Installed]:
    """`helm install caravan charts/caravan` in the test's namespace, Ready on the node."""
    values: dict[str, Any] = {
        "crds": {"install": False},  # the session's CRD (cluster-scoped, shared)
        "image": {"pullPolicy": "IfNotPresent"},
        "nodeSelector": {"kubernetes.io/hostname": real_node.name},
    }
    port = free_port()
    if real_node.local:
        host, api_port = _apiserver(kubeconfig)
        values |= {
            "hostNetwork": True,
            "listen": {"host": "127.0.0.1", "port": port},
            "apiServer": {"host": host, "port": api_port},
        }
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        yaml.safe_dump(values, f)
    helm(
        "install",
        RELEASE,
        str(CHART),
        "--namespace",
        namespace,
        "--kubeconfig",
        kubeconfig,
        "-f",
        f.name,
        "--wait",
        "--timeout",
        "3m",
    )
    os.unlink(f.name)
    # A caller allowed everything in the namespace, as a team's admin would be.
    token = await service_account_token(
        kube, namespace, "e2e-admin", [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]
    )
    with contextlib.ExitStack() as stack:
        url = (
            f"http://127.0.0.1:{port}"
            if real_node.local
            else stack.enter_context(_port_forward(kubeconfig, namespace))
        )
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as api:
            await eventually(lambda: api.get("/readyz"), lambda r: r.status_code == 200)
            yield Installed(namespace, url, token, api, kubeconfig)
    helm("uninstall", RELEASE, "--namespace", namespace, "--kubeconfig", kubeconfig, check=False)


def task_job(
    name: str,
    groups: dict[str, dict[str, str]],
    count: int = 1,
) -> dict[str, Any]:
    """A Job whose groups run the example task program, each with these variables."""
    return {
        "apiVersion": "caravan.dev/v1alpha1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "taskGroups": [
                {
                    "name": group,
                    "countInit": count,
                    "countMax": 5,
                    "template": {
                        "spec": {
                            "terminationGracePeriodSeconds": 2,
                            "containers": [
                                {
                                    "name": "task",
                                    "image": TASK_IMAGE,
                                    "env": [{"name": k, "value": v} for k, v in env.items()],
                                }
                            ],
                        }
                    },
                }
                for group, env in groups.items()
            ]
        },
    }


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:5]}"
