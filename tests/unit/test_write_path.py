"""The routes' write path in-process, wired as `caravan run` wires it, over an in-memory
API: read your writes, the bounded wait, 503 + Retry-After, and truthful 405s."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY

from caravan.api.app import running_app
from caravan.api.state import AppState
from caravan.api.writes import VISIBILITY_HEADER
from caravan.config import Config
from caravan.kube.client import JOBS
from caravan.kube.errors import KubeError
from caravan.store import Store
from tests.unit.fakekube import FakeKube

NS = "unit"


def web_job() -> dict[str, Any]:
    group = {"name": "g", "count": 1, "countInit": 1, "countMax": 5, "template": {}}
    return {"metadata": {"name": "web"}, "spec": {"taskGroups": [group]}}


@pytest.fixture
def kube() -> FakeKube:
    return FakeKube()


@pytest.fixture
async def api(kube: FakeKube) -> AsyncIterator[httpx.AsyncClient]:
    store = Store()
    kube.watcher = store
    kube.put_object(JOBS.item(NS, "web"), web_job())
    config = Config(namespace=NS, read_your_writes_seconds=0.05)
    async with running_app(AppState(config=config, kube=kube.client, store=store)) as app:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            yield client


def count_of(jobs: Any) -> int:
    return int(jobs[0]["taskGroups"][0]["count"])


async def test_a_write_is_read_back_at_once(api: httpx.AsyncClient) -> None:
    for delta in (1, 1, -1, 2):
        response = await api.post(
            "/v1/jobs/updatecounts", json={"jobID": "web", "taskGroup": "g", "count": delta}
        )
        assert response.status_code == 200
        assert VISIBILITY_HEADER not in response.headers
        assert count_of((await api.get("/v1/jobs")).json()) == count_of([response.json()])


def timeouts(kind: str) -> float:
    value = REGISTRY.get_sample_value("caravan_write_visible_timeouts_total", {"kind": kind})
    return value or 0.0


async def test_a_write_the_store_does_not_show_in_time_still_answers_and_says_so(
    api: httpx.AsyncClient, kube: FakeKube
) -> None:
    kube.deliver = False  # the watch is behind
    before = timeouts("job")
    response = await api.post("/v1/jobs/stop/web")
    assert response.status_code == 200
    assert response.headers[VISIBILITY_HEADER] == "timeout"
    assert timeouts("job") == before + 1
    secret = await api.post("/v1/secrets/secret/s1", json={"k": "v"})
    assert secret.status_code == 204 and secret.headers[VISIBILITY_HEADER] == "timeout"


@pytest.mark.parametrize("status", [0, 429, 500, 502, 503, 504])
async def test_the_cluster_away_or_not_ready_is_503_with_retry_after(
    api: httpx.AsyncClient, kube: FakeKube, status: int
) -> None:
    kube.fail("json_patch", KubeError(status, "down"))
    response = await api.post("/v1/jobs/stop/web")
    assert response.status_code == 503
    assert int(response.headers["Retry-After"]) >= 1
    assert response.json()["error"].startswith("the cluster is unreachable or not ready")
    kube.fail("get", KubeError(status, "down"))
    secret = await api.delete("/v1/secrets/secret/s1")
    assert secret.status_code == 503 and "Retry-After" in secret.headers


async def test_a_conflict_that_never_ends_is_409(api: httpx.AsyncClient, kube: FakeKube) -> None:
    kube.fail("json_patch", *(KubeError(409, "Conflict") for _ in range(40)))
    response = await api.post(
        "/v1/jobs/updatecounts", json={"jobID": "web", "taskGroup": "g", "count": 1}
    )
    assert response.status_code == 409


async def test_405_lists_every_method_of_the_path(api: httpx.AsyncClient) -> None:
    response = await api.put("/v1/log/allocs/pod-1/main")
    assert response.status_code == 405
    assert response.headers["Allow"] == "DELETE, POST"
    response = await api.delete("/v1/settings")
    assert response.headers["Allow"] == "GET, POST"


@pytest.mark.parametrize(
    "path", ["/v1/jobs/Not_A_Name", "/v1/secrets/secret/UPPER", "/v1/log/allocs/a..b"]
)
async def test_ids_that_cannot_name_an_object_are_400(api: httpx.AsyncClient, path: str) -> None:
    assert (await api.get(path)).status_code == 400


def test_config_bounds_the_wait() -> None:
    assert dataclasses.replace(Config(), read_your_writes_seconds=1).read_your_writes_seconds == 1
