"""Logs end to end: definitions in their ConfigMap, meta from the store, log reads."""

from __future__ import annotations

import asyncio
import json
import pathlib
from collections.abc import AsyncIterator
from typing import Any

import httpx

from caravan.kube.client import CONFIGMAPS, JOBS, PODS, KubeClient
from caravan.runner import Caravan
from tests.cluster.conftest import JSON_TYPE
from tests.cluster.kubeutil import (
    cri_log,
    eventually,
    group,
    job_body,
    pod_log,
    pod_template,
    running_allocations,
    serve_pod_log,
    served_allocation,
)

LOGS_CONFIGMAP = "caravan-logs"


def definition(
    log_id: str, job: str = "web", grp: str = "web", task: str = "main"
) -> dict[str, Any]:
    return {
        "id": log_id,
        "group": grp,
        "job": job,
        "task": task,
        "fileName": f"{log_id}.log",
        "logLevel": True,
    }


async def get_json(api: httpx.AsyncClient, path: str) -> Any:
    response = await api.get(path)
    assert response.status_code == 200, response.text
    return response.json()


# Definitions ---------------------------------------------------------------------------


async def test_log_definitions_replace_atomically_and_follow_kubectl_edits(
    kube: KubeClient, namespace: str, api: httpx.AsyncClient
) -> None:
    assert await get_json(api, "/v1/log/logs") == []
    first = [definition("a"), definition("b", task="side")]
    response = await api.post("/v1/log/logs", json=first)
    assert response.status_code == 200, response.text
    assert response.json() == first
    assert await get_json(api, "/v1/log/logs") == first
    stored = await kube.get(CONFIGMAPS.item(namespace, LOGS_CONFIGMAP))
    assert json.loads(stored["data"]["logs.json"]) == first

    bad_bodies: list[tuple[Any, int]] = [
        ([definition("x"), definition("x")], 422),  # duplicate ids
        ([{k: v for k, v in definition("x").items() if k != "task"}], 400),
        ([{**definition("x"), "logLevel": "yes"}], 400),
        ([{**definition("x"), "job": 3}], 400),
        ([{**definition("x"), "surprise": 1}], 400),
        ([{**definition("x"), "id": ""}], 400),
        ({"id": "x"}, 400),
        ("text", 400),
    ]
    for body, status in bad_bodies:
        response = await api.post("/v1/log/logs", json=body)
        assert response.status_code == status, (body, response.text)
        assert response.json()["error"]
    response = await api.post("/v1/log/logs", content=b"[{not json", headers=JSON_TYPE)
    assert response.status_code == 400
    assert await get_json(api, "/v1/log/logs") == first
    unchanged = await kube.get(CONFIGMAPS.item(namespace, LOGS_CONFIGMAP))
    assert unchanged["metadata"]["resourceVersion"] == stored["metadata"]["resourceVersion"]

    # A kubectl edit is picked up; an entry broken by hand is skipped, not fatal.
    edited = [definition("c"), {"id": "broken"}]
    await kube.merge_patch(
        CONFIGMAPS.item(namespace, LOGS_CONFIGMAP), {"data": {"logs.json": json.dumps(edited)}}
    )
    await eventually(
        lambda: get_json(api, "/v1/log/logs"),
        lambda logs: logs == [definition("c")],
        what="the kubectl edit",
    )
    # Replacing with an empty list empties it.
    response = await api.post("/v1/log/logs", json=[])
    assert response.status_code == 200 and response.json() == []
    assert await get_json(api, "/v1/log/logs") == []


async def test_meta_lists_the_allocations_of_the_logs_job_and_group(
    kube: KubeClient, namespace: str, caravan: Caravan, api: httpx.AsyncClient
) -> None:
    pods = await running_allocations(kube, namespace, caravan, "web", 2)
    logs = [definition("web-main"), definition("other", job="nojob")]
    assert (await api.post("/v1/log/logs", json=logs)).status_code == 200
    meta = await get_json(api, "/v1/log/meta/web-main")
    assert sorted(m["allocID"] for m in meta) == sorted(pods)
    for m in meta:
        pod = await kube.get(PODS.item(namespace, m["allocID"]))
        assert m == {
            "allocID": pod["metadata"]["name"],
            "status": "running",
            "jobName": "web",
            "taskName": "main",
            "fileName": "web-main.log",
            "createTime": pod["metadata"]["creationTimestamp"],
            "logLevel": "true",
        }
        assert m["createTime"].endswith("Z")
    assert await get_json(api, "/v1/log/meta/other") == []
    response = await api.get("/v1/log/meta/nope")
    assert response.status_code == 404
    assert "nope" in response.json()["error"]

    # Scaling to 0 ends the allocations: meta follows the store.
    stop = await api.post("/v1/jobs/stop/web")
    assert stop.status_code == 200
    await eventually(
        lambda: get_json(api, "/v1/log/meta/web-main"), lambda m: m == [], what="no allocations"
    )


# Reads ---------------------------------------------------------------------------------


def varied_lines(count: int) -> list[tuple[str, str]]:
    return [
        ("stderr" if i % 7 == 0 else "stdout", f"line {i:05d} " + "x" * (i * 37 % 200))
        for i in range(count)
    ]


async def test_reads_equal_the_pod_log_at_every_origin_and_offset(
    kube: KubeClient,
    namespace: str,
    caravan: Caravan,
    api: httpx.AsyncClient,
    tmp_path: pathlib.Path,
) -> None:
    pod, _, truth = await served_allocation(kube, namespace, caravan, tmp_path, varied_lines(600))
    size = len(truth)
    assert size > 50_000
    for fs in ("stdout", "stderr"):
        for offset in (0, 1, 99, size // 3, size - 1, size, size + 1, 10 * size):
            start = await api.get(
                f"/v1/log/fs/{pod}/main/{fs}", params={"origin": "start", "offset": offset}
            )
            assert start.status_code == 200, start.text
            assert start.content == truth[offset:], ("start", fs, offset)
            assert start.headers["content-type"].startswith("text/plain")
            # This cluster cannot split streams: both names give the combined log.
            assert start.headers["x-caravan-log-stream"] == "combined"
            end = await api.get(
                f"/v1/log/fs/{pod}/main/{fs}", params={"origin": "end", "offset": offset}
            )
            assert end.status_code == 200, end.text
            assert end.content == (truth[-offset:] if offset else b""), ("end", fs, offset)
    default = await api.get(f"/v1/log/fs/{pod}/main/stdout")
    assert default.content == truth


async def test_reads_are_bounded_by_the_max_read_setting(
    kube: KubeClient,
    namespace: str,
    caravan: Caravan,
    api: httpx.AsyncClient,
    tmp_path: pathlib.Path,
) -> None:
    pod, _, truth = await served_allocation(kube, namespace, caravan, tmp_path, varied_lines(300))
    assert caravan.state is not None
    state = caravan.state
    state.runtime_settings = type(state.runtime_settings)(
        **{
            **{f: getattr(state.runtime_settings, f) for f in state.runtime_settings.__slots__},
            "logs_max_read_bytes": 1000,
        }
    )
    start = await api.get(f"/v1/log/fs/{pod}/main/stdout", params={"offset": 10})
    assert start.content == truth[10:1010]
    # origin=end: the read starts `offset` bytes before the end, and stops after the
    # most bytes one read may return; a tail larger than that is streamed, not held.
    end = await api.get(f"/v1/log/fs/{pod}/main/stdout", params={"origin": "end", "offset": 5000})
    assert end.content == truth[-5000:][:1000]
    small = await api.get(f"/v1/log/fs/{pod}/main/stdout", params={"origin": "end", "offset": 700})
    assert small.content == truth[-700:]


async def read_until(chunks: AsyncIterator[bytes], received: bytearray, needle: bytes) -> None:
    while needle not in received:
        received.extend(await anext(chunks))


async def test_follow_delivers_bytes_appended_later(
    kube: KubeClient,
    namespace: str,
    caravan: Caravan,
    api: httpx.AsyncClient,
    tmp_path: pathlib.Path,
) -> None:
    pod, path, truth = await served_allocation(
        kube, namespace, caravan, tmp_path, [("stdout", f"early {i}") for i in range(50)]
    )
    cases: tuple[tuple[dict[str, str], bytes], ...] = (
        ({"origin": "end", "offset": "20"}, truth[-20:]),
        ({"origin": "start", "offset": "5"}, truth[5:]),
    )
    for params, before in cases:
        received = bytearray()
        marker = f"late {params['origin']}"
        async with api.stream(
            "GET", f"/v1/log/fs/{pod}/main/stdout", params={**params, "follow": "true"}
        ) as response:
            assert response.status_code == 200
            chunks = response.aiter_bytes()
            await asyncio.wait_for(read_until(chunks, received, before[-8:]), 20)
            with path.open("a") as f:
                f.write(cri_log([("stdout", marker)]).replace("00:00:00", "00:01:00"))
            await asyncio.wait_for(read_until(chunks, received, marker.encode()), 20)
        assert bytes(received).startswith(before)
        assert bytes(received).endswith(f"{marker}\n".encode())


async def test_bad_reads_get_their_4xx(
    kube: KubeClient,
    namespace: str,
    caravan: Caravan,
    api: httpx.AsyncClient,
    tmp_path: pathlib.Path,
) -> None:
    pod, _, _ = await served_allocation(kube, namespace, caravan, tmp_path, varied_lines(5))
    # A pod that is not a Caravan allocation, with a log the cluster would serve.
    await kube.create(
        PODS.collection(namespace),
        {"metadata": {"name": "outsider"}, "spec": pod_template()["spec"]},
    )
    outsider_log = tmp_path / "outsider.log"
    outsider_log.write_text(cri_log([("stdout", "secret stuff")]))
    await serve_pod_log(kube, namespace, "outsider", str(outsider_log))
    await eventually(
        lambda: pod_log(kube, namespace, "outsider"),
        lambda b: b == b"secret stuff\n",
        what="the outsider's log",
    )
    cases = [
        ("/v1/log/fs/outsider/main/stdout", {}, 404),
        ("/v1/log/fs/nobody/main/stdout", {}, 404),
        (f"/v1/log/fs/{pod}/nosuchtask/stdout", {}, 404),
        (f"/v1/log/fs/{pod}/main/stdlog", {}, 400),
        (f"/v1/log/fs/{pod}/main/stdout", {"offset": "-1"}, 400),
        (f"/v1/log/fs/{pod}/main/stdout", {"offset": "abc"}, 400),
        (f"/v1/log/fs/{pod}/main/stdout", {"offset": "1.5"}, 400),
        (f"/v1/log/fs/{pod}/main/stdout", {"origin": "middle"}, 400),
        (f"/v1/log/fs/{pod}/main/stdout", {"follow": "maybe"}, 400),
    ]
    for path, params, status in cases:
        response = await api.get(path, params=params)
        assert response.status_code == status, (path, params, response.text)
        body = response.json()
        assert body["error"] and "secret stuff" not in response.text


async def test_allocations_without_a_log_yet_answer_without_a_5xx(
    kube: KubeClient, namespace: str, caravan: Caravan, api: httpx.AsyncClient
) -> None:
    # Running, but the node has no log for it: Kubernetes says 400, Caravan 409 (state).
    (running,) = await running_allocations(kube, namespace, caravan, "silent", 1)
    # Not scheduled: Kubernetes answers an empty log, and so does Caravan.
    unschedulable = pod_template(node_selector={"caravan.test/no-such-node": "x"})
    await kube.create(
        JOBS.collection(namespace),
        job_body("stuck", [group("web", count_init=1, template=unschedulable)]),
    )
    assert caravan.state is not None
    store = caravan.state.store
    (pending,) = await eventually(
        lambda: asyncio.sleep(0, store.pods_of("stuck", "web")),
        lambda pods: len(pods) == 1,
        what="the pending allocation",
    )
    for params in ({}, {"origin": "end", "offset": "10"}):
        response = await api.get(f"/v1/log/fs/{running}/main/stdout", params=params)
        assert response.status_code == 409, response.text
        assert "cannot be read now" in response.json()["error"]
        response = await api.get(f"/v1/log/fs/{pending.name}/main/stdout", params=params)
        assert response.status_code == 200, response.text
        assert response.content == b""
