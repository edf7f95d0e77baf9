"""`helm upgrade` from the release before to this one, under running jobs, loses nothing.

The release before is the chart and image of a fixed earlier commit (PREVIOUS), built from
a git worktree of it by `hack/images.sh import-caravan`; this release is the chart and
image of the current sources. Both are tagged by the digest of their sources
(caravan:src-<digest>), never caravan:0.1.0, which the other e2e tests rebuild at will.

Two replicas (the Lease elects the one that reconciles), jobs running the example task on
the real node, and one install then one upgrade. On the local cluster the replicas share
one loopback port in the node's network namespace (SO_REUSEPORT, as the chart sets with
hostNetwork): the kernel spreads new connections over the processes listening at that
moment, which is what a Service does over the ready pods.

The figures (polls, longest gap between two successful answers, pods' uids) are printed:
run with `-s` to see them.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pathlib
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import yaml

from caravan.kube.client import CONFIGMAPS, DEPLOYMENTS, JOBS, PODS, SECRETS, KubeClient
from caravan.kube.errors import Conflict, NotFound
from caravan.operator.leader import LEASES
from tests.cluster.kubeutil import eventually, service_account_token
from tests.e2e.conftest import (
    KUBECTL,
    RELEASE,
    ROOT,
    RealNode,
    _apiserver,
    free_port,
    task_job,
    unique,
)
from tests.helm import helm
from tests.samples import votes_only

# The release before: the first commit whose chart lets two replicas share the real node
# (no host port with hostNetwork, SO_REUSEPORT). Move it forward at each release.
PREVIOUS = "4103e98106a59f13905c05af0deffac775d62113"
CRD_NAME = "jobs.caravan.dev"
CRD_PATH = f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{CRD_NAME}"
CRD_FILE = pathlib.Path("charts/caravan/files/crds/jobs.caravan.dev.yaml")
CARAVAN_PODS = "app.kubernetes.io/name=caravan"
# How long the poller goes on once the upgrade is over (the last old pod gone).
AFTER_SECONDS = 5.0

Obj = dict[str, Any]


def _run(*args: str, cwd: pathlib.Path = ROOT) -> str:
    result = subprocess.run(args, cwd=cwd, capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"{' '.join(args)}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


@contextlib.contextmanager
def previous_worktree() -> Iterator[pathlib.Path]:
    """A detached git worktree of PREVIOUS, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="caravan-previous-") as parent:
        path = pathlib.Path(parent) / "src"
        _run("git", "worktree", "add", "--detach", str(path), PREVIOUS)
        try:
            yield path
        finally:
            _run("git", "worktree", "remove", "--force", str(path))


def import_caravan(sources: pathlib.Path) -> str:
    """Builds (or finds) Caravan's image of these sources on the node; its tag."""
    socket_path = _run(str(ROOT / "hack" / "node.sh"), "socket").strip()
    out = _run(str(ROOT / "hack" / "images.sh"), "import-caravan", str(sources), socket_path)
    ref = out.strip().splitlines()[-1]
    assert ref.startswith("caravan:src-"), out
    return ref.split(":", 1)[1]


def values(node: RealNode, kubeconfig: str, tag: str, port: int) -> str:
    """A values file for one release: two replicas on the real node, the CRD included."""
    host, api_port = _apiserver(kubeconfig)
    document = {
        "replicaCount": 2,
        "crds": {"install": True},
        "image": {"tag": tag, "pullPolicy": "IfNotPresent"},
        "nodeSelector": {"kubernetes.io/hostname": node.name},
        "hostNetwork": True,
        "listen": {"host": "127.0.0.1", "port": port},
        "apiServer": {"host": host, "port": api_port},
    }
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        yaml.safe_dump(document, f)
    return f.name


async def helm_in_thread(*args: str) -> None:
    # helm blocks for minutes: off the loop, so the poller keeps its pace meanwhile.
    await asyncio.to_thread(helm, *args)


@dataclass
class Poller:
    """GET /v1/jobs once a second on a fresh connection (a client's new request reaches
    whichever replica the kernel picks), recording every answer."""

    url: str
    token: str
    jobs: set[str]
    answers: int = 0
    ok: list[float] = field(default_factory=list)  # when each 200 arrived
    unavailable: int = 0  # 503 with Retry-After
    errors: list[str] = field(default_factory=list)

    async def run(self) -> None:
        headers = {"Authorization": f"Bearer {self.token}"}
        while True:
            started = time.monotonic()
            try:
                async with httpx.AsyncClient(base_url=self.url, headers=headers) as client:
                    response = await client.get("/v1/jobs", timeout=10)
                self.answers += 1
                if response.status_code == 200:
                    names = {j["name"] for j in response.json()}
                    if self.jobs <= names:
                        self.ok.append(time.monotonic())
                    else:
                        self.errors.append(f"200 without jobs {sorted(self.jobs - names)}")
                elif response.status_code == 503 and response.headers.get("retry-after"):
                    self.unavailable += 1
                else:
                    self.errors.append(f"{response.status_code} {response.text[:200]}")
            except httpx.HTTPError as exc:
                self.answers += 1
                self.errors.append(f"{time.monotonic():.1f} {type(exc).__name__}: {exc}")
            await asyncio.sleep(max(0.0, 1.0 - (time.monotonic() - started)))

    @property
    def longest_gap(self) -> float:
        return max((b - a for a, b in zip(self.ok, self.ok[1:], strict=False)), default=0.0)


@contextlib.asynccontextmanager
async def polling(poller: Poller) -> AsyncIterator[Poller]:
    task = asyncio.create_task(poller.run())
    try:
        yield poller
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def changes(old: Any, new: Any, path: tuple[Any, ...] = ()) -> list[tuple[tuple[Any, ...], Any]]:
    """Where `new` differs from `old`: (path, new value) of each changed key (lists whole)."""
    if isinstance(old, dict) and isinstance(new, dict):
        found: list[tuple[tuple[Any, ...], Any]] = []
        for key in new.keys() | old.keys():
            found += changes(old.get(key), new.get(key), (*path, key))
        return found
    return [] if old == new else [(path, new)]


def at(document: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        document = document.get(key) if isinstance(document, dict) else None
    return document


class Cluster:
    """The reads the test compares before and after, straight from the apiserver."""

    def __init__(self, kube: KubeClient, namespace: str) -> None:
        self.kube = kube
        self.ns = namespace

    async def caravan_pods(self) -> list[Obj]:
        pods = await self.kube.list_items(PODS.collection(self.ns), labelSelector=CARAVAN_PODS)
        return list(pods["items"])

    async def task_pods(self) -> dict[str, tuple[str, int]]:
        """name -> (uid, restarts) of every task pod of Caravan's jobs."""
        pods = await self.kube.list_items(PODS.collection(self.ns), labelSelector="caravan.dev/job")
        return {
            p["metadata"]["name"]: (
                p["metadata"]["uid"],
                sum(c.get("restartCount", 0) for c in p["status"].get("containerStatuses", [])),
            )
            for p in pods["items"]
        }

    async def stored(self) -> dict[str, Any]:
        """Jobs (spec), their Deployments (uid and template), state ConfigMaps and managed
        Secrets (data)."""
        jobs = await self.kube.list_items(JOBS.collection(self.ns))
        deployments = await self.kube.list_items(
            DEPLOYMENTS.collection(self.ns), labelSelector="caravan.dev/job"
        )
        maps = await self.kube.list_items(CONFIGMAPS.collection(self.ns))
        secrets = await self.kube.list_items(
            SECRETS.collection(self.ns), labelSelector="app.kubernetes.io/managed-by=caravan"
        )
        return {
            "jobs": {
                j["metadata"]["name"]: (j["metadata"]["uid"], j["spec"]) for j in jobs["items"]
            },
            "deployments": {
                d["metadata"]["name"]: (d["metadata"]["uid"], d["spec"]["template"])
                for d in deployments["items"]
            },
            "configmaps": {
                m["metadata"]["name"]: m.get("data") or {}
                for m in maps["items"]
                if m["metadata"]["name"].startswith("caravan-")
                and not m["metadata"]["name"].endswith("-schema")
            },
            "secrets": {s["metadata"]["name"]: s.get("data") for s in secrets["items"]},
        }


API_READS = (
    "/v1/settings",
    "/v1/log/logs",
    "/v1/log/defaults",
    "/v1/events",
    "/v1/secrets/list",
    "/v1/secrets/secret/game",
)


async def api_view(api: httpx.AsyncClient, pod: str) -> dict[str, Any]:
    """What the API answers for the state the test wrote (any replica may answer)."""
    view: dict[str, Any] = {}
    for path in (*API_READS, f"/v1/log/allocs/{pod}"):
        response = await api.get(path)
        assert response.status_code == 200, f"{path}: {response.status_code} {response.text}"
        view[path] = response.json()
    return view


async def write_state(api: httpx.AsyncClient, job: str, pod: str) -> None:
    """Settings, a log definition, its loggers' defaults, one allocation's override, an
    events document and a managed Secret, through the API."""
    definition = {
        "id": "front",
        "group": "g",
        "job": job,
        "task": "task",
        "fileName": "stdout",
        "logLevel": True,
    }
    writes: list[tuple[str, Any]] = [
        ("/v1/settings", {"app": {"greeting": "before the upgrade"}}),
        ("/v1/log/logs", [definition]),
        ("/v1/log/defaults/front", {"app": "debug"}),
        (f"/v1/log/allocs/{pod}/front", {"app": "error"}),
        ("/v1/events", {"mapreduce": [votes_only()]}),
        ("/v1/secrets/secret/game", {"GENVID_KEY": "s3cret"}),
    ]
    for path, body in writes:
        response = await api.post(path, json=body)
        assert response.status_code in (200, 204), f"{path}: {response.text}"


def kubectl(kubeconfig: str, *args: str, stdin: str | None = None) -> str:
    result = subprocess.run(
        [KUBECTL, "--kubeconfig", kubeconfig, *args],
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, f"kubectl {' '.join(args)}: {result.stderr}"
    return result.stdout


@dataclass
class Crd:
    before: Obj  # the cluster's CRD before the test (another test session's)
    installed: Obj = field(default_factory=dict)  # once the release before's is in place
    upgraded: Obj = field(default_factory=dict)  # as the upgrade left it


@contextlib.asynccontextmanager
async def previous_crd(
    kube: KubeClient, kubeconfig: str, worktree: pathlib.Path, ns: str
) -> AsyncIterator[Crd]:
    """The release before's CRD in the cluster, adopted by this test's release. The CRD is
    the cluster's, shared with the other test sessions: it is put back as it was unless
    someone changed it since the upgrade."""
    crd = Crd(before=await kube.get(CRD_PATH))
    kubectl(
        kubeconfig, "apply", "--server-side", "--force-conflicts", "-f", str(worktree / CRD_FILE)
    )
    # Helm adopts an existing object that names the release in these.
    kubectl(
        kubeconfig, "label", "--overwrite", f"crd/{CRD_NAME}", "app.kubernetes.io/managed-by=Helm"
    )
    kubectl(
        kubeconfig,
        "annotate",
        "--overwrite",
        f"crd/{CRD_NAME}",
        f"meta.helm.sh/release-name={RELEASE}",
        f"meta.helm.sh/release-namespace={ns}",
    )
    crd.installed = await kube.get(CRD_PATH)
    try:
        yield crd
    finally:
        now = await kube.get(CRD_PATH)
        version = now["metadata"]["resourceVersion"]
        if version in (
            crd.installed["metadata"]["resourceVersion"],
            crd.upgraded.get("metadata", {}).get("resourceVersion"),
        ):
            # Labels, annotations (Helm's ownership included) and spec as they were; a
            # compare-and-swap on the version just read, so a concurrent change wins.
            for key in ("labels", "annotations"):
                now["metadata"][key] = crd.before["metadata"].get(key) or {}
            now["spec"] = crd.before["spec"]
            with contextlib.suppress(Conflict):
                await kube.replace(CRD_PATH, now)


async def test_helm_upgrade_under_running_jobs_loses_nothing(
    real_node: RealNode,
    kubeconfig: str,
    kube: KubeClient,
    namespace: str,
) -> None:
    if not real_node.local:
        pytest.fail(
            "the upgrade test reaches both replicas on one loopback port: it needs the local"
            " cluster's real node (docs/local-cluster.md)"
        )
    cluster = Cluster(kube, namespace)
    port = free_port()
    new_tag = import_caravan(ROOT)
    with previous_worktree() as worktree:
        old_tag = import_caravan(worktree)
        assert old_tag != new_tag, "the release before and this one have the same sources"
        crd_files = [yaml.safe_load((tree / CRD_FILE).read_text()) for tree in (worktree, ROOT)]
        old_values = values(real_node, kubeconfig, old_tag, port)
        new_values = values(real_node, kubeconfig, new_tag, port)
        async with previous_crd(kube, kubeconfig, worktree, namespace) as crd:
            await helm_in_thread(
                "install", RELEASE, str(worktree / "charts" / "caravan"),
                "--namespace", namespace, "--kubeconfig", kubeconfig, "-f", old_values,
                "--wait", "--timeout", "3m",
            )  # fmt: skip
            try:
                await upgrade_and_check(
                    cluster, kubeconfig, namespace, port, new_values, new_tag, crd, crd_files
                )
            finally:
                await delete_jobs(kube, namespace)
                helm(
                    "uninstall", RELEASE, "--namespace", namespace, "--kubeconfig", kubeconfig,
                    check=False,
                )  # fmt: skip
                for path in (old_values, new_values):
                    os.unlink(path)


async def delete_jobs(kube: KubeClient, namespace: str) -> None:
    """Jobs go before the release, as docs/install.md says (their Deployments with them)."""
    jobs = await kube.list_items(JOBS.collection(namespace))
    for job in jobs["items"]:
        with contextlib.suppress(NotFound):
            await kube.delete(JOBS.item(namespace, job["metadata"]["name"]))

    async def remaining() -> int:
        return len((await kube.list_items(JOBS.collection(namespace)))["items"])

    await eventually(remaining, lambda n: n == 0, timeout=60, what="the jobs deleted")


async def upgrade_and_check(
    cluster: Cluster,
    kubeconfig: str,
    namespace: str,
    port: int,
    new_values: str,
    new_tag: str,
    crd: Crd,
    crd_files: list[Obj],
) -> None:
    kube = cluster.kube
    url = f"http://127.0.0.1:{port}"
    token = await service_account_token(
        kube, namespace, "e2e-admin", [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]
    )
    async with httpx.AsyncClient(
        base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30
    ) as api:
        await eventually(lambda: api.get("/readyz"), lambda r: r.status_code == 200)
        old_pods = {p["metadata"]["uid"] for p in await cluster.caravan_pods()}
        assert len(old_pods) == 2

        # Jobs running on the real node: two allocations of one, one of another.
        jobs = {unique("up"): 2, unique("up"): 1}
        for job, count in jobs.items():
            await kube.create(JOBS.collection(namespace), task_job(job, {"g": {}}, count=count))

        async def allocations() -> dict[str, int]:
            answer = (await api.get("/v1/jobs")).json()
            return {j["name"]: j["taskGroups"][0]["summary"]["running"] for j in answer}

        await eventually(allocations, lambda a: a == jobs, timeout=120, what="the jobs running")
        first_job = next(iter(jobs))
        pods_before = await cluster.task_pods()
        assert len(pods_before) == 3
        a_pod = sorted(p for p in pods_before if p.startswith(first_job))[0]
        await write_state(api, first_job, a_pod)
        stored_before = await cluster.stored()
        view_before = await api_view(api, a_pod)

        poller = Poller(url, token, set(jobs))
        async with polling(poller):
            await asyncio.sleep(3)  # a few answers from the release before alone
            await helm_in_thread(
                "upgrade", RELEASE, str(ROOT / "charts" / "caravan"),
                "--namespace", namespace, "--kubeconfig", kubeconfig, "-f", new_values,
                "--wait", "--timeout", "5m",
            )  # fmt: skip

            async def upgraded() -> list[Obj]:
                return await cluster.caravan_pods()

            def only_new(pods: list[Obj]) -> bool:
                return len(pods) == 2 and all(
                    p["spec"]["containers"][0]["image"].endswith(new_tag)
                    and p["metadata"]["uid"] not in old_pods
                    and not p["metadata"].get("deletionTimestamp")
                    and p["status"].get("phase") == "Running"
                    for p in pods
                )

            new_pods = await eventually(upgraded, only_new, timeout=120, what="the old pods gone")
            await asyncio.sleep(AFTER_SECONDS)

        pods_after = await cluster.task_pods()
        new_uids = sorted(p["metadata"]["uid"] for p in new_pods)
        print(
            f"\nupgrade: {poller.answers} polls, {len(poller.ok)} answered 200,"
            f" {poller.unavailable} answered 503 with Retry-After;"
            f" longest gap between 200s {poller.longest_gap:.2f} s"
            f"\ntask pods before: {sorted(pods_before.items())}"
            f"\ntask pods after:  {sorted(pods_after.items())}"
            f"\ncaravan pods: {sorted(old_pods)} -> {new_uids}",
            flush=True,
        )
        assert poller.errors == []
        assert len(poller.ok) >= 2
        # No task pod restarted, none replaced.
        assert pods_after == pods_before
        assert all(restarts == 0 for _, restarts in pods_after.values())
        # Everything stored, and what the API answers of it, unchanged. A Job may gain
        # fields a newer CRD defaults (read with the new schema); none it had changes.
        stored_after = await cluster.stored()
        jobs_before, jobs_after = stored_before.pop("jobs"), stored_after.pop("jobs")
        assert stored_after == stored_before
        assert jobs_after.keys() == jobs_before.keys()
        for name, (uid, spec) in jobs_before.items():
            assert jobs_after[name][0] == uid
            altered = [p for p, _ in changes(spec, jobs_after[name][1]) if at(spec, p) is not None]
            assert altered == [], f"job {name}: {altered}"
        assert await api_view(api, a_pod) == view_before

        # The CRD was upgraded in place: the same object, now with this release's schema.
        # (Compared where the two releases' CRDs differ: other test sessions apply theirs.)
        crd.upgraded = await kube.get(CRD_PATH)
        assert crd.upgraded["metadata"]["uid"] == crd.installed["metadata"]["uid"]
        changed = changes(crd_files[0]["spec"], crd_files[1]["spec"])
        print(f"CRD: {len(changed)} changes between the releases", flush=True)
        for path, value in changed:
            assert at(crd.upgraded["spec"], path) == value, path
        assert crd.upgraded["status"]["storedVersions"] == ["v1alpha1"]
        manifest = await asyncio.to_thread(
            helm, "get", "manifest", RELEASE, "--namespace", namespace, "--kubeconfig", kubeconfig
        )
        assert f"name: {CRD_NAME}" in manifest.stdout

        # One of the new replicas leads, and reconciles: a count change gets a process.
        # Within one Lease term: the release before can die still holding the Lease (its
        # release lost a race with a renewal in flight, fixed since), and then a new
        # replica takes over once the Lease expires (15 s unrenewed).
        names = {p["metadata"]["name"] for p in new_pods}

        async def holder() -> str:
            lease = await kube.get(LEASES.item(namespace, "caravan-operator"))
            return str(lease["spec"].get("holderIdentity") or "")

        await eventually(holder, lambda h: h in names, timeout=30, what="a new replica leading")
        second_job = list(jobs)[1]
        response = await api.post(
            "/v1/jobs/updatecounts", json={"jobID": second_job, "taskGroup": "g", "count": 1}
        )
        assert response.status_code == 200, response.text
        await eventually(
            allocations,
            lambda a: a[second_job] == 2,
            timeout=90,
            what="the new leader running the count change",
        )
