"""Fixtures of the cluster tier: the cluster, a namespace per test, Caravan instances."""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import re
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import yaml

from caravan.config import Config
from caravan.kube.client import JOBS, NAMESPACES, KubeClient, KubeError
from caravan.runner import Caravan
from tests.cluster import kubeutil
from tests.natsserver import NatsServer

ROOT = pathlib.Path(__file__).resolve().parents[2]
CRD_DIR = ROOT / "charts" / "caravan" / "files" / "crds"
POLICY_FILE = ROOT / "charts" / "caravan" / "files" / "policies" / "task-pods.yaml"
# The pod policy of the session, as the chart renders it for one installation: its binding
# holds in every test namespace (labelled so), with these parameters.
POLICY_LABEL = "caravan.dev/test-pod-policy"
TASK_ACCOUNT = "caravan-task"
ALLOWED_ACCOUNT = "tasks-allowed"
OWN_ACCOUNT = "caravan"
# Raw bodies must say they are JSON (anything else is 415).
JSON_TYPE = {"Content-Type": "application/json"}
KUBECTL = str(ROOT / ".venv" / "bin" / "kubectl")


def _cluster_script(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(ROOT / "hack" / "cluster.sh"), *args], text=True, capture_output=True, check=False
    )


def _show_progress(request: pytest.FixtureRequest, command: str) -> None:
    """Runs hack/cluster.sh COMMAND with its progress shown live, past pytest's capture."""
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    suspended = capture.global_and_fixture_disabled() if capture else contextlib.nullcontext()
    with suspended:
        print(flush=True)
        code = subprocess.run([str(ROOT / "hack" / "cluster.sh"), command], check=False).returncode
    if code != 0 and command == "up":
        raise RuntimeError("hack/cluster.sh up failed (its output is above)")


def pod_policy_objects() -> list[dict[str, Any]]:
    """The policy of files/policies/ with the session's parameters, and its binding to every
    namespace labelled POLICY_LABEL (as the chart's templates/podpolicy.yaml does for its
    release's namespace)."""
    policy = yaml.safe_load(POLICY_FILE.read_text())
    params = {
        "allowedServiceAccounts": f"['{ALLOWED_ACCOUNT}']",
        "taskServiceAccount": f"'{TASK_ACCOUNT}'",
        "ownServiceAccount": f"'{OWN_ACCOUNT}'",
        "baseline": "true",
    }
    for variable in policy["spec"]["variables"]:
        if variable["name"] in params:
            variable["expression"] = params.pop(variable["name"])
    assert not params, f"the policy lacks the parameters {sorted(params)}"
    name = policy["metadata"]["name"] = "caravan-tests-task-pods"
    binding = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": name},
        "spec": {
            "policyName": name,
            "validationActions": ["Deny"],
            "matchResources": {"namespaceSelector": {"matchLabels": {POLICY_LABEL: "true"}}},
        },
    }
    return [policy, binding]


@pytest.fixture(scope="session")
def kubeconfig(request: pytest.FixtureRequest) -> Iterator[str]:
    """Path of the kubeconfig the cluster tests use; starts the local cluster if needed."""
    given = request.config.getoption("--kubeconfig") or os.environ.get("KUBECONFIG")
    started_here = False
    if given:
        path = given
    else:
        path = _cluster_script("kubeconfig").stdout.strip()
        if _cluster_script("status").returncode != 0:
            _show_progress(request, "up")
            started_here = True
    subprocess.run(
        [
            KUBECTL,
            "--kubeconfig",
            path,
            "apply",
            "--server-side",
            "--force-conflicts",
            "-f",
            str(CRD_DIR),
        ],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [KUBECTL, "--kubeconfig", path, "apply", "--server-side", "--force-conflicts", "-f", "-"],
        input=json.dumps({"apiVersion": "v1", "kind": "List", "items": pod_policy_objects()}),
        check=True,
        capture_output=True,
        text=True,
    )
    subprocess.run(
        [
            KUBECTL,
            "--kubeconfig",
            path,
            "wait",
            "--for=condition=Established",
            "crd/jobs.caravan.dev",
            "--timeout=60s",
        ],
        check=True,
        capture_output=True,
    )
    os.environ["KUBECONFIG"] = path  # Kopf reads it from the environment
    yield path
    if started_here:
        _show_progress(request, "down")


@pytest.fixture(scope="session")
async def kube(kubeconfig: str) -> AsyncIterator[KubeClient]:
    client = await KubeClient.connect(kubeconfig)
    yield client
    await client.close()


@pytest.fixture
async def namespace(kube: KubeClient, request: pytest.FixtureRequest) -> AsyncIterator[str]:
    """A fresh namespace per test, deleted afterwards (without waiting for it to go)."""
    slug = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:40].strip("-")
    name = f"t-{slug}-{uuid.uuid4().hex[:5]}"
    await kube.create(
        NAMESPACES.collection(None),
        {"metadata": {"name": name, "labels": {POLICY_LABEL: "true"}}},
    )
    await kubeutil.wait_for_default_service_account(kube, name)
    yield name
    with contextlib.suppress(KubeError):
        await kube.delete(NAMESPACES.item(None, name))


@contextlib.asynccontextmanager
async def running_caravan(**config: Any) -> AsyncIterator[Caravan]:
    """A Caravan instance (API + operator) on a free loopback port, stopped afterwards."""
    instance = Caravan(Config(port=0, **config))
    await instance.start()
    try:
        await instance.wait_ready(timeout=60)
        yield instance
    finally:
        await instance.stop()


@pytest.fixture
async def caravan(kubeconfig: str, namespace: str) -> AsyncIterator[Caravan]:
    """Caravan serving the test's namespace, with authentication off (loopback)."""
    async with running_caravan(namespace=namespace, kubeconfig=kubeconfig) as instance:
        yield instance


@pytest.fixture
async def secured(kubeconfig: str, namespace: str, kube: KubeClient) -> AsyncIterator[Caravan]:
    """Caravan with authentication on (`kubernetes` mode), serving one job `web`."""
    body = kubeutil.job_body("web", [kubeutil.group("g", count_max=5)])
    await kube.create(JOBS.collection(namespace), body)
    async with running_caravan(
        namespace=namespace, kubeconfig=kubeconfig, auth_mode="kubernetes"
    ) as instance:
        yield instance


@pytest.fixture
async def api(caravan: Caravan) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=caravan.url, timeout=30) as client:
        yield client


@pytest.fixture(scope="session")
def nats_server() -> Iterator[NatsServer]:
    """One nats-server with JetStream for the session (127.0.0.1, a free port, its store
    under .local/); tests keep apart by stream prefix (one per namespace)."""
    server = NatsServer()
    server.start()
    yield server
    server.remove()
