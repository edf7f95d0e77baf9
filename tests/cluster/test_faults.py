"""Faults that must lose nothing: the apiserver going away under writers, watches
expiring (410) after an etcd compaction, a watch cut without an error, Caravan killed in
a write burst, and the leader replica killed while writes go to the other.

Each test leaves the local control plane whole for the next one.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pathlib
import re
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx

from caravan.jobs.spec import read_job
from caravan.kube.client import DEPLOYMENTS, JOBS, KubeClient, KubeError
from caravan.operator.leader import LEASES
from caravan.runner import Caravan
from caravan.store.store import KIND_JOB
from tests.cluster.conftest import running_caravan
from tests.cluster.controlplane import Component
from tests.cluster.kubeutil import eventually, group, job_body
from tests.cluster.proxy import proxied_kubeconfig

ROOT = pathlib.Path(__file__).resolve().parents[2]
WRITERS = 4
GRACE_SECONDS = 2.0
CARAVAN_RUN = (sys.executable, "-m", "caravan", "run", "--port", "0")


async def api_ready(kube: KubeClient) -> None:
    async def ready() -> bool:
        await kube.get("/api/v1/namespaces/default")
        return True

    await eventually(ready, bool, timeout=120, interval=0.25, what="kube-apiserver ready")


@contextlib.asynccontextmanager
async def apiserver_down(kubeconfig: str, kube: KubeClient) -> AsyncIterator[None]:
    """kube-apiserver stopped for the block, then started again and waited for.

    SIGTERM stops its listener at once; requests in flight get a short grace (they take
    milliseconds), then SIGKILL ends it, as a kubelet does with a short grace period:
    left alone it waits a minute for long requests.
    """
    apiserver = Component.find(kubeconfig, "kube-apiserver")
    apiserver.stop()
    try:
        async with asyncio.timeout(GRACE_SECONDS):
            await apiserver.wait_exited()
    except TimeoutError:
        apiserver.stop(signal.SIGKILL)
        await apiserver.wait_exited()
    try:
        yield
    finally:
        apiserver.start()
        await api_ready(kube)


def count_of(view: Any) -> int:
    return int(view["taskGroups"][0]["count"])


async def test_apiserver_restart_under_writers_loses_nothing_and_answers_only_503(
    kube: KubeClient, kubeconfig: str, namespace: str, caravan: Caravan, api: httpx.AsyncClient
) -> None:
    await kube.create(JOBS.collection(namespace), job_body("web", [group("g", count_max=50)]))
    await eventually(lambda: api.get("/v1/jobs/web"), lambda r: r.status_code == 200)
    answered: list[int] = []  # the deltas that were answered 200
    refused: list[httpx.Response] = []
    reads: list[int] = []
    stop = asyncio.Event()

    async def writer() -> None:
        net = 0  # +1 then -1, so the count stays small whatever the outcome
        while not stop.is_set():
            delta = -1 if net else 1
            body = {"jobID": "web", "taskGroup": "g", "count": delta}
            response = await api.post("/v1/jobs/updatecounts", json=body)
            if response.status_code == 200:
                answered.append(delta)
                net += delta
            else:
                refused.append(response)
                await asyncio.sleep(0.05)

    async def reader() -> None:
        while not stop.is_set():
            reads.append((await api.get("/v1/jobs")).status_code)
            await asyncio.sleep(0.02)

    tasks = [asyncio.create_task(writer()) for _ in range(WRITERS)]
    tasks.append(asyncio.create_task(reader()))
    await eventually(lambda: asyncio.sleep(0, len(answered)), lambda n: n >= 20)
    async with apiserver_down(kubeconfig, kube):
        outage_refused = len(refused)
        await eventually(lambda: asyncio.sleep(0, len(refused)), lambda n: n > outage_refused + 4)
        index = (await api.get("/v1/jobs")).headers["waitIndex"]
        long_poll = asyncio.create_task(
            api.get("/v1/jobs", headers={"waitIndex": index}, params={"wait": "120s"}, timeout=150)
        )
    before = len(answered)
    await eventually(lambda: asyncio.sleep(0, len(answered)), lambda n: n >= before + 20)
    stop.set()
    await asyncio.gather(*tasks)

    assert refused, "the outage was not seen"
    assert {r.status_code for r in refused} == {503}, [r.text for r in refused[:3]]
    assert all(int(r.headers["Retry-After"]) >= 1 for r in refused)
    assert set(reads) == {200}  # served from the store throughout
    job = await kube.get(JOBS.item(namespace, "web"))
    assert job["spec"]["taskGroups"][0]["count"] == 1 + sum(answered)  # none lost or doubled
    view = (await api.get("/v1/jobs/web")).json()
    assert count_of(view) == 1 + sum(answered)
    # The long poll opened during the outage wakes on a change the watch brings after it.
    answer = await long_poll
    assert answer.status_code == 200 and answer.headers["waitIndex"] != index


async def etcd_compact(kubeconfig: str) -> None:
    """Compacts etcd at its current revision, through its JSON gateway."""
    etcd = Component.find(kubeconfig, "etcd")
    urls = next(a for a in etcd.argv if a.startswith("--advertise-client-urls"))
    url = urls.split("=", 1)[1].split(",")[0]
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        status = (await client.post("/v3/kv/range", json={"key": "Lw=="})).json()
        revision = int(status["header"]["revision"])
        compacted = await client.post(
            "/v3/kv/compaction", json={"revision": revision, "physical": True}
        )
        assert compacted.status_code == 200, compacted.text


async def test_watches_expired_by_compaction_relist_and_miss_no_deletion(
    kube: KubeClient, kubeconfig: str, namespace: str, tmp_path: pathlib.Path
) -> None:
    for name in ("keep", "gone"):
        await kube.create(JOBS.collection(namespace), job_body(name, [group("g", count_init=0)]))
    async with (
        proxied_kubeconfig(kubeconfig, tmp_path) as (proxy, via_proxy),
        running_caravan(namespace=namespace, kubeconfig=via_proxy) as caravan,
    ):
        assert caravan.state is not None
        store = caravan.state.store
        informer = next(i for i in caravan.state.informers if i.kind == KIND_JOB)
        await eventually(lambda: asyncio.sleep(0, set(store.jobs)), lambda s: s >= {"keep", "gone"})
        lists = informer.lists
        proxy.cut()  # Caravan cannot see what happens next
        await kube.delete(JOBS.item(namespace, "gone"))
        await _gone(kube, JOBS.item(namespace, "gone"))
        await kube.create(JOBS.collection(namespace), job_body("new", [group("g", count_init=0)]))
        await etcd_compact(kubeconfig)
        # A restarted apiserver's watch cache starts at etcd's compacted revision: every
        # watch resumed from an older version is answered 410 Gone.
        async with apiserver_down(kubeconfig, kube):
            pass
        proxy.heal()
        assert await store.wait_gone(KIND_JOB, "gone", timeout=120)
        await eventually(lambda: asyncio.sleep(0, set(store.jobs)), lambda s: s == {"keep", "new"})
        assert informer.lists > lists  # it relisted


async def _gone(kube: KubeClient, path: str) -> None:
    async def absent() -> bool:
        try:
            await kube.get(path)
        except KubeError as exc:
            return exc.status == 404
        return False

    await eventually(absent, bool, what=f"{path} deleted")


async def test_a_watch_cut_without_an_error_is_detected_and_resumed(
    kube: KubeClient, kubeconfig: str, namespace: str, tmp_path: pathlib.Path
) -> None:
    async with (
        proxied_kubeconfig(kubeconfig, tmp_path) as (proxy, via_proxy),
        running_caravan(
            namespace=namespace, kubeconfig=via_proxy, watch_idle_seconds=3.0, run_operator=False
        ) as caravan,
    ):
        assert caravan.state is not None
        store = caravan.state.store
        informer = next(i for i in caravan.state.informers if i.kind == KIND_JOB)
        connections = proxy.connections
        assert proxy.freeze() > 0  # every open stream goes silent, none is closed
        await kube.create(JOBS.collection(namespace), job_body("late", [group("g")]))
        await eventually(
            lambda: asyncio.sleep(0, "late" in store.jobs), bool, timeout=60, what="the Job seen"
        )
        assert proxy.connections > connections  # through a new connection
        assert informer.lists == 1  # resumed where it was, no relist needed


def caravan_process(namespace: str, kubeconfig: str, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*CARAVAN_RUN, "--namespace", namespace, "--kubeconfig", kubeconfig, *extra],
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


async def url_of(process: subprocess.Popen[str]) -> str:
    assert process.stderr is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = await asyncio.to_thread(process.stderr.readline)
        match = re.search(r"serving namespace \S+ on (http://127\.0\.0\.1:\d+)", line)
        if match:
            # Keep draining its log so the process never blocks on a full pipe.
            asyncio.get_running_loop().run_in_executor(None, process.stderr.read)
            return match.group(1)
    raise AssertionError("caravan run never said where it listens")


@contextlib.contextmanager
def killed_at_exit(*processes: subprocess.Popen[str]) -> Any:
    try:
        yield
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()


async def converged(kube: KubeClient, namespace: str, job: str) -> bool:
    """Deployments equal the Job's spec, and its status tells the same counts."""
    body = await kube.get(JOBS.item(namespace, job))
    spec = read_job(body)
    deployments = await kube.list_items(
        DEPLOYMENTS.collection(namespace), labelSelector=f"caravan.dev/job={job}"
    )
    replicas = {
        d["metadata"]["labels"]["caravan.dev/task-group"]: d["spec"]["replicas"]
        for d in deployments["items"]
    }
    wanted = {g.name: spec.desired_count(g) for g in spec.task_groups}
    status = {g["name"]: g["count"] for g in (body.get("status") or {}).get("taskGroups", [])}
    return replicas == wanted and status == wanted


async def test_caravan_killed_in_a_write_burst_converges_after_restart(
    kube: KubeClient, kubeconfig: str, namespace: str
) -> None:
    await kube.create(
        JOBS.collection(namespace),
        job_body("web", [group("a", count_init=0, count_max=40), group("old", count_init=0)]),
    )
    await kube.create(JOBS.collection(namespace), job_body("doomed", [group("g", count_init=0)]))
    first = caravan_process(namespace, kubeconfig)
    with killed_at_exit(first):
        url = await url_of(first)
        async with httpx.AsyncClient(base_url=url, timeout=30) as api:
            await eventually(lambda: converged(kube, namespace, "web"), bool, what="first pass")
            body = {"jobID": "web", "taskGroup": "a", "count": 1}
            burst = [asyncio.create_task(api.post("/v1/jobs/updatecounts", json=body))]
            burst += [
                asyncio.create_task(api.post("/v1/jobs/updatecounts", json=body)) for _ in range(29)
            ]
            await asyncio.sleep(0.15)
            first.send_signal(signal.SIGKILL)
            await asyncio.gather(*burst, return_exceptions=True)
    # While no Caravan runs: a group removed, a Job deleted.
    await kube.merge_patch(
        JOBS.item(namespace, "web"),
        {"spec": {"taskGroups": [group("a", count_init=0, count_max=40)]}},
    )
    await kube.delete(JOBS.item(namespace, "doomed"))
    second = caravan_process(namespace, kubeconfig)
    with killed_at_exit(second):
        await url_of(second)
        await eventually(lambda: converged(kube, namespace, "web"), bool, timeout=60)
        await _gone(kube, JOBS.item(namespace, "doomed"))
        await _gone(kube, DEPLOYMENTS.item(namespace, "web-old"))  # no orphan left
        second.send_signal(signal.SIGTERM)
        await asyncio.to_thread(second.wait, 30)


async def test_the_leader_killed_while_writes_go_to_the_other(
    kube: KubeClient, kubeconfig: str, namespace: str
) -> None:
    await kube.create(
        JOBS.collection(namespace), job_body("web", [group("g", count_init=0, count_max=50)])
    )
    lease = ("--leader-elect", "--lease-seconds", "3")
    leader = caravan_process(namespace, kubeconfig, *lease)
    with killed_at_exit(leader):
        await url_of(leader)
        holder = await eventually(
            lambda: kube.get(LEASES.item(namespace, "caravan-operator")),
            lambda lease: bool(lease["spec"].get("holderIdentity")),
        )
        first_holder = holder["spec"]["holderIdentity"]
        other = caravan_process(namespace, kubeconfig, *lease)
        with killed_at_exit(other):
            url = await url_of(other)
            async with httpx.AsyncClient(base_url=url, timeout=30) as api:
                body = {"jobID": "web", "taskGroup": "g", "count": 1}
                answered = 0
                for i in range(12):
                    if i == 4:
                        leader.send_signal(signal.SIGKILL)
                        killed_at = time.monotonic()
                    response = await api.post("/v1/jobs/updatecounts", json=body)
                    answered += response.status_code == 200
                    assert response.status_code == 200, response.text
                taken = await eventually(
                    lambda: kube.get(LEASES.item(namespace, "caravan-operator")),
                    lambda lease: lease["spec"].get("holderIdentity") != first_holder,
                    timeout=60,
                    interval=0.1,
                    what="the other replica taking the Lease",
                )
                took = time.monotonic() - killed_at
                print(f"takeover {took:.1f}s after the kill (lease 3 s)")
                assert taken["spec"]["leaseTransitions"] >= 1
                await eventually(lambda: converged(kube, namespace, "web"), bool, timeout=60)
                job = await kube.get(JOBS.item(namespace, "web"))
                assert job["spec"]["taskGroups"][0]["count"] == answered  # none lost
