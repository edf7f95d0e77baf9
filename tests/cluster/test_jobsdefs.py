"""Genvid 1.30's jobs surface: autostart/byCluster, Start All / Stop All in dependency
order, /v1/job/{id}/summary, and the job definitions routes, on a real kube-apiserver."""

from __future__ import annotations

import asyncio
import subprocess
from typing import Any

import httpx

from caravan.kube.client import JOBS, KubeClient
from tests.cluster.conftest import KUBECTL
from tests.cluster.kubeutil import eventually, group, job_body


def definition(count_init: int = 1, count_max: int = 3, **top: Any) -> dict[str, Any]:
    return {
        "template": {"taskGroups": [group("g", count_init=count_init, count_max=count_max)]},
        **top,
    }


def with_template(template: dict[str, Any]) -> dict[str, Any]:
    body = definition()
    body["template"]["taskGroups"][0]["template"] = template
    return body


def with_spec(body: dict[str, Any], **spec: Any) -> dict[str, Any]:
    body["spec"].update(spec)
    return body


async def view(api: httpx.AsyncClient, name: str) -> dict[str, Any]:
    r = await api.get(f"/v1/jobs/{name}")
    assert r.status_code == 200, r.text
    return dict(r.json())


async def test_autostart_in_views_crd_and_kubectl(
    kube: KubeClient, kubeconfig: str, namespace: str, api: httpx.AsyncClient
) -> None:
    await kube.create(JOBS.collection(namespace), job_body("plain", [group("g")]))
    await kube.create(
        JOBS.collection(namespace), with_spec(job_body("manual", [group("g")]), autostart=False)
    )
    stored = await kube.get(JOBS.item(namespace, "plain"))
    assert stored["spec"]["autostart"] is True  # the CRD's default
    assert stored["spec"]["dependencies"] == []
    plain = await eventually(lambda: view(api, "plain"), lambda v: True)
    assert plain["autostart"] is True and plain["byCluster"] is False
    manual = await eventually(lambda: view(api, "manual"), lambda v: True)
    assert manual["autostart"] is False
    summary = await api.get("/v1/job/manual/summary")
    assert summary.status_code == 200 and summary.json()["name"] == "manual"
    assert summary.json()["autostart"] is False
    missing = await api.get("/v1/job/nope/summary")
    assert missing.status_code == 404 and missing.json()["error"]
    every = (await api.get("/v1/jobs")).json()
    assert all({"autostart", "byCluster"} <= set(j) for j in every)

    async def kubectl(*args: str) -> str:
        """kubectl's output; retried while the apiserver publishes a new CRD's OpenAPI."""
        command = [KUBECTL, "--kubeconfig", kubeconfig, "-n", namespace, *args]
        done = await eventually(
            lambda: asyncio.to_thread(subprocess.run, command, capture_output=True, text=True),
            lambda p: p.returncode == 0,
            what=f"kubectl {' '.join(args)}",
        )
        return str(done.stdout)

    explained = await kubectl("explain", "cjob.spec.autostart")
    assert "start all" in explained.lower()
    assert "dependencies" in await kubectl("explain", "cjob.spec")
    wide = await kubectl("get", "cjob", "-o", "wide")
    header, *rows = wide.splitlines()
    at = header.index("AUTOSTART")  # columns are aligned under their headers
    autostart = {row.split()[0]: row[at:].split()[0] for row in rows}
    assert autostart == {"manual": "false", "plain": "true"}, wide


async def test_start_all_and_stop_all_follow_dependencies(
    kube: KubeClient, namespace: str, api: httpx.AsyncClient
) -> None:
    # front needs back, back needs db; tool is started by name only.
    for name, deps, autostart in (
        ("front", ["back"], True),
        ("back", ["db"], True),
        ("db", [], True),
        ("tool", [], False),
    ):
        body = with_spec(
            job_body(name, [group("g")], suspend=True), dependencies=deps, autostart=autostart
        )
        await kube.create(JOBS.collection(namespace), body)
    listed = await kube.list_items(JOBS.collection(namespace))
    await eventually(lambda: api.get("/v1/jobs"), lambda r: len(r.json()) == 4)

    # Each job's suspend flips, in the order the apiserver stored them (watch order).
    flips: list[tuple[str, bool]] = []
    last = {j["metadata"]["name"]: True for j in listed["items"]}

    async def record() -> None:
        async for event in kube.watch(
            JOBS.collection(namespace),
            query={"resourceVersion": listed["metadata"]["resourceVersion"]},
            timeout_seconds=30,
        ):
            job = event["object"]
            name, suspend = job["metadata"]["name"], bool(job["spec"].get("suspend"))
            if last.get(name) != suspend:
                last[name] = suspend
                flips.append((name, suspend))

    watcher = asyncio.create_task(record())
    await asyncio.sleep(0.3)
    started = await api.post("/v1/jobs/start")
    assert started.status_code == 200, started.text
    by_name = {j["name"]: j for j in started.json()}
    assert [j["name"] for j in started.json()] == ["back", "db", "front", "tool"]
    assert {n: j["status"] != "dead" for n, j in by_name.items()} == {
        "back": True,
        "db": True,
        "front": True,
        "tool": False,
    }
    stopped = await api.post("/v1/jobs/stop")
    assert stopped.status_code == 200
    assert {j["status"] for j in stopped.json()} == {"dead"}
    await eventually(lambda: asyncio.sleep(0, flips), lambda f: len(f) >= 6, timeout=10)
    watcher.cancel()
    assert flips == [
        ("db", False),
        ("back", False),
        ("front", False),
        ("front", True),
        ("back", True),
        ("db", True),
    ]


async def test_definitions_both_ways_and_the_running_check(
    kube: KubeClient, namespace: str, api: httpx.AsyncClient
) -> None:
    await kube.create(JOBS.collection(namespace), job_body("kubectl-made", [group("g")]))
    created = await api.post("/v1/jobsdef/api-made", json=definition(dependencies=["kubectl-made"]))
    assert created.status_code == 200, created.text
    assert created.json()["dependencies"] == ["kubectl-made"]
    body = await kube.get(JOBS.item(namespace, "api-made"))
    assert body["spec"]["suspend"] is True  # a new definition waits to be started
    assert body["spec"]["dependencies"] == ["kubectl-made"]
    assert "api-made" in (await api.get("/v1/jobsdefs")).json()  # read-your-writes
    listed = await eventually(lambda: api.get("/v1/jobsdefs"), lambda r: "kubectl-made" in r.json())
    defs = listed.json()
    assert set(defs) == {"kubectl-made", "api-made"}
    assert defs["kubectl-made"]["template"]["taskGroups"][0]["countMax"] == 5
    assert (await api.get("/v1/jobsdef/api-made")).json() == created.json()
    assert (await view(api, "api-made"))["status"] == "dead"

    # PreserveCounts: a started group keeps its count, clamped to a lower countMax.
    await api.post("/v1/jobs/start/api-made")
    await api.post(
        "/v1/jobs/updatecounts", json={"jobID": "api-made", "taskGroup": "g", "count": 2}
    )
    before = await kube.get(JOBS.item(namespace, "api-made"))
    refused = await api.post("/v1/jobsdef/api-made", json=definition(count_max=2))
    assert refused.status_code == 409 and "force" in refused.json()["error"]
    after = await kube.get(JOBS.item(namespace, "api-made"))
    assert after["spec"] == before["spec"]
    # Only autostart changes: nothing that runs does, no force needed.
    flags = definition(autostart=False, dependencies=["kubectl-made"])
    assert (await api.post("/v1/jobsdef/api-made", json=flags)).status_code == 200
    assert (await kube.get(JOBS.item(namespace, "api-made")))["spec"]["autostart"] is False
    forced = await api.post(
        "/v1/jobsdef/api-made", params={"force": "true"}, json=definition(count_max=2)
    )
    assert forced.status_code == 200, forced.text
    groups = (await kube.get(JOBS.item(namespace, "api-made")))["spec"]["taskGroups"]
    assert groups[0]["count"] == 2 and groups[0]["countMax"] == 2  # 3, clamped

    # The whole map: deletes what it does not name, refusing started jobs without force.
    whole = {"kubectl-made": defs["kubectl-made"], "fresh": definition()}
    refused = await api.post("/v1/jobsdefs", json=whole)
    assert refused.status_code == 409 and "api-made" in refused.json()["error"]
    assert "fresh" not in (await api.get("/v1/jobsdefs")).json()
    await api.post("/v1/jobs/stop/api-made")
    replaced = await api.post("/v1/jobsdefs", json=whole)
    assert replaced.status_code == 200, replaced.text
    assert set(replaced.json()) == {"kubectl-made", "fresh"}
    assert set((await api.get("/v1/jobsdefs")).json()) == {"kubectl-made", "fresh"}

    assert (await api.delete("/v1/jobsdef/kubectl-made")).status_code == 409  # it runs
    assert (await api.delete("/v1/jobsdef/fresh")).status_code == 204
    assert (await api.delete("/v1/jobsdef/fresh")).status_code == 404
    assert (await api.delete("/v1/jobsdefs", params={"force": "true"})).status_code == 204
    assert (await api.get("/v1/jobsdefs")).json() == {}


async def test_bad_definitions_are_refused_and_change_nothing(
    kube: KubeClient, namespace: str, api: httpx.AsyncClient
) -> None:
    assert (await api.post("/v1/jobsdef/a", json=definition())).status_code == 200
    assert (await api.post("/v1/jobsdef/b", json=definition(dependencies=["a"]))).status_code == 200
    before = await kube.list_items(JOBS.collection(namespace))
    cases: list[tuple[str, Any, int]] = [
        ("/v1/jobsdef/a", definition(count_init=4, count_max=3), 422),
        ("/v1/jobsdef/a", definition(dependencies=["b"]), 422),  # a cycle
        ("/v1/jobsdef/a", definition(dependencies=["a"]), 422),
        ("/v1/jobsdef/a", definition(byCluster=True), 422),
        ("/v1/jobsdef/Bad_Name", definition(), 400),
        ("/v1/jobsdef/a", with_template({"spec": {"containers": [{"name": "x"}]}}), 422),
        ("/v1/jobsdef/new", with_template({"spec": {"containers": 3}}), 422),
        ("/v1/jobsdef/a", {"template": {"taskGroups": []}}, 400),
        ("/v1/jobsdef/a", {"template": {"taskGroups": [{"name": "g"}]}}, 400),
        ("/v1/jobsdef/a", {**definition(), "autostart": "yes"}, 400),
        ("/v1/jobsdef/a", {**definition(), "extra": 1}, 400),
        ("/v1/jobsdef/a", [1], 400),
        ("/v1/jobsdefs", {"a": definition(), "b": definition(count_init=9)}, 422),
        (
            "/v1/jobsdefs",
            {"a": definition(dependencies=["b"]), "b": definition(dependencies=["a"])},
            422,
        ),
        ("/v1/jobsdefs", {"Bad_Name": definition()}, 400),
        ("/v1/jobsdefs", {"a": 3}, 400),
    ]
    for path, payload, status in cases:
        r = await api.post(path, json=payload)
        assert r.status_code == status, (path, payload, r.status_code, r.text)
        assert r.json()["error"] and "Traceback" not in r.text
    after = await kube.list_items(JOBS.collection(namespace))
    assert [(j["metadata"]["name"], j["spec"]) for j in after["items"]] == [
        (j["metadata"]["name"], j["spec"]) for j in before["items"]
    ]
