"""What the cluster benchmarks share: percentiles, the kubeconfig, a throwaway namespace,
and `caravan run` as its own process, waited for on /readyz."""

from __future__ import annotations

import asyncio
import contextlib
import os
import pathlib
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx

from caravan.kube.client import NAMESPACES, PODS, KubeClient

ROOT = pathlib.Path(__file__).resolve().parent.parent


def fake_pod_spec() -> dict[str, Any]:
    """A pod spec for kwok's fake nodes (labelled type=kwok, tainted kwok.x-k8s.io/node):
    thousands of them cost no process. Pods without this land on the real node."""
    return {
        "containers": [{"name": "main", "image": "bench/fake:1"}],
        "nodeSelector": {"type": "kwok"},
        "tolerations": [
            {"key": "kwok.x-k8s.io/node", "operator": "Exists", "effect": "NoSchedule"}
        ],
    }


async def create_unplaced_pods(
    kube: KubeClient,
    namespace: str,
    names: list[str],
    labels: dict[str, str],
    concurrency: int = 50,
) -> None:
    """Allocation pods (`labels` name their job and group) that no scheduler places: they
    stay in the store as pending pods and cost the cluster no node work."""
    sem = asyncio.Semaphore(concurrency)

    async def create(name: str) -> None:
        body = {
            "metadata": {"name": name, "labels": labels},
            "spec": {
                "schedulerName": "no-such-scheduler",
                "containers": [{"name": "main", "image": "bench/fake:1"}],
            },
        }
        async with sem:
            await kube.create(PODS.collection(namespace), body)

    await asyncio.gather(*(create(name) for name in names))


def pct(values: list[float], p: float) -> float:
    """The `p`th percentile of `values` (nearest rank, no interpolation)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def kubeconfig() -> str:
    """$KUBECONFIG, else the local cluster's (hack/cluster.sh kubeconfig)."""
    if os.environ.get("KUBECONFIG"):
        return os.environ["KUBECONFIG"]
    out = subprocess.run(
        [str(ROOT / "hack" / "cluster.sh"), "kubeconfig"],
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout.strip()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


CRD_DIR = ROOT / "charts" / "caravan" / "files" / "crds"


def install_crds(config: str) -> None:
    """Applies Caravan's CRD (a fresh `make cluster` has none) and waits until it serves."""
    kubectl = [str(ROOT / ".venv" / "bin" / "kubectl"), "--kubeconfig", config]
    apply = ["apply", "--server-side", "--force-conflicts", "-f", str(CRD_DIR)]
    wait = ["wait", "--for=condition=Established", "crd/jobs.caravan.dev", "--timeout=60s"]
    subprocess.run([*kubectl, *apply], check=True, capture_output=True)
    subprocess.run([*kubectl, *wait], check=True, capture_output=True)


@contextlib.asynccontextmanager
async def bench_namespace(prefix: str) -> AsyncIterator[tuple[KubeClient, str, str]]:
    """A client of the cluster, its kubeconfig path and a new namespace `prefix-xxxxxx`
    (the CRD installed first); on exit the namespace is deleted and the client closed."""
    config = kubeconfig()
    install_crds(config)
    kube = await KubeClient.connect(config)
    try:
        ns = f"{prefix}-{uuid.uuid4().hex[:6]}"
        await kube.create(NAMESPACES.collection(None), {"metadata": {"name": ns}})
        try:
            yield kube, config, ns
        finally:
            await kube.delete(NAMESPACES.item(None, ns))
    finally:
        await kube.close()


async def wait_ready(api: httpx.AsyncClient, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if (await api.get("/readyz")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.2)
    raise SystemExit(f"caravan not ready after {timeout}s")


@contextlib.asynccontextmanager
async def running_caravan(
    namespace: str, config: str, *, args: tuple[str, ...] = (), **client_options: Any
) -> AsyncIterator[tuple[subprocess.Popen[bytes], httpx.AsyncClient]]:
    """`caravan run` on `namespace` (with extra `args`) as its own process, and a client of
    its API (built with `client_options`) once /readyz answers; stopped on exit."""
    port = free_port()
    proc = subprocess.Popen(  # noqa: ASYNC220 - started once, before any measurement
        [
            str(ROOT / ".venv" / "bin" / "caravan"),
            "run",
            "--namespace",
            namespace,
            "--port",
            str(port),
            "--kubeconfig",
            config,
            "--log-level",
            "WARNING",
            *args,
        ],
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", **client_options) as api:
            await wait_ready(api)
            yield proc, api
    finally:
        proc.terminate()
        proc.wait(timeout=30)
