"""The /v1/events routes without a cluster: the app over a stub state and a fake kube
that keeps ConfigMaps in a dict. The engine runs for real (the area starts it)."""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import json
import pathlib
from collections.abc import AsyncIterator
from typing import Any, cast

import httpx
import pytest
from fastapi import FastAPI

from caravan.api import results_feed
from caravan.api.app import running_app
from caravan.api.routers import events as events_routes
from caravan.api.state import AppState
from caravan.config import Config
from caravan.events import EventsService
from caravan.events.storage import EVENTS_KEY, StoredDocuments, parse_stored
from caravan.kube.client import CONFIGMAPS, JSON, KubeClient, KubeError
from caravan.store import Store
from tests.samples import votes_only

NS = "unit"
CM = "caravan-events"
JSON_TYPE = {"Content-Type": "application/json"}


class FakeKube:
    """Just what write_configmap_key uses: get, create, replace."""

    def __init__(self, watchers: Store) -> None:
        self.objects: dict[str, JSON] = {}
        self.writes = 0
        self.fail_writes = False
        self.watchers = watchers  # receives every write, as a watch would

    async def get(self, path: str) -> JSON:
        if path not in self.objects:
            raise KubeError(404, "NotFound")
        return copy.deepcopy(self.objects[path])

    async def create(self, path: str, body: JSON) -> JSON:
        return self._write(f"{path}/{body['metadata']['name']}", body)

    async def replace(self, path: str, body: JSON) -> JSON:
        return self._write(path, body)

    def _write(self, path: str, body: JSON) -> JSON:
        if self.fail_writes:
            raise KubeError(0, "connection refused")
        self.writes += 1
        body = copy.deepcopy(body)
        body["metadata"]["resourceVersion"] = str(self.writes)
        self.objects[path] = body
        name = body["metadata"]["name"]
        self.watchers.apply_event(f"configmap:{name}", "MODIFIED", copy.deepcopy(body))
        return copy.deepcopy(body)

    def stored(self) -> list[Any]:
        data = self.objects[CONFIGMAPS.item(NS, CM)]["data"]
        return parse_stored(data)


@pytest.fixture
async def app() -> AsyncIterator[FastAPI]:
    """The app as `caravan run` serves it (every area started by its lifespan)."""
    store = Store()
    app_state = AppState(
        config=Config(namespace=NS), kube=cast(KubeClient, FakeKube(store)), store=store
    )
    async with running_app(app_state) as running:
        yield running


@pytest.fixture
def state(app: FastAPI) -> AppState:
    app_state: AppState = app.state.caravan
    return app_state


@pytest.fixture
async def api(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        yield client


def kube_of(state: AppState) -> FakeKube:
    return cast(FakeKube, state.kube)


def service_of(state: AppState) -> EventsService:
    assert state.events is not None
    return state.events


async def test_get_without_documents(api: httpx.AsyncClient) -> None:
    response = await api.get("/v1/events")
    assert response.status_code == 200
    assert response.json() == {"errors": "", "mapreduce": []}


async def test_post_stores_then_runs(api: httpx.AsyncClient, state: AppState) -> None:
    response = await api.post("/v1/events", json={"mapreduce": [votes_only()]})
    assert response.status_code == 200, response.text
    assert response.json() == {"errors": "", "mapreduce": [votes_only()]}
    assert kube_of(state).stored() == [votes_only()]
    assert (await api.get("/v1/events")).json()["mapreduce"] == [votes_only()]
    sent = await api.post(
        "/v1/events/send",
        json={"channel": "game", "events": [{"key": ["vote"], "value": "e4"}]},
    )
    assert sent.json()["accepted"] == 1


async def test_invalid_documents_are_422_with_every_error_and_nothing_changes(
    api: httpx.AsyncClient, state: AppState
) -> None:
    assert (await api.post("/v1/events", json={"mapreduce": [votes_only()]})).status_code == 200
    writes = kube_of(state).writes
    bad = votes_only()
    bad["event"]["game"]["maps"][0]["where"]["$gtee"] = 1
    bad["event"]["game"]["reductions"][0]["period"] = 0
    response = await api.post("/v1/events", json={"mapreduce": [bad, "not a document"]})
    assert response.status_code == 422
    body = response.json()
    assert "nothing was stored" in body["error"]
    paths = [d["path"] for d in body["details"]]
    assert len(paths) >= 3
    assert any("$gtee" in p for p in paths)
    assert any(p.endswith("period") for p in paths)
    assert any(p == "mapreduce[1]" for p in paths)
    assert all(set(d) == {"path", "message"} for d in body["details"])
    assert kube_of(state).writes == writes
    assert (await api.get("/v1/events")).json() == {"errors": "", "mapreduce": [votes_only()]}


@pytest.mark.parametrize(
    "body",
    [
        [],
        {"mapreduce": {"version": "1.7.0"}},
        {"documents": []},
        {"mapreduce": [], "extra": 1},
        "text",
    ],
)
async def test_post_of_the_wrong_shape_is_400(
    api: httpx.AsyncClient, state: AppState, body: Any
) -> None:
    response = await api.post("/v1/events", json=body)
    assert response.status_code == 400, response.text
    assert response.json()["error"]
    assert CONFIGMAPS.item(NS, CM) not in kube_of(state).objects


async def test_post_that_cannot_be_stored_runs_nothing(
    api: httpx.AsyncClient, state: AppState
) -> None:
    kube_of(state).fail_writes = True
    response = await api.post("/v1/events", json={"mapreduce": [votes_only()]})
    assert response.status_code == 503
    assert service_of(state).documents == []


async def test_send_reports_accepted_unmatched_and_rejected(
    api: httpx.AsyncClient, state: AppState
) -> None:
    await api.post("/v1/events", json={"mapreduce": [votes_only()]})
    batch = [
        {"key": ["vote"], "value": "e4"},
        {"key": ["cheer"], "value": 1},
        {"key": ["vote"]},
        "nope",
        {"key": [True], "value": 1},
    ]
    response = await api.post("/v1/events/send", json={"channel": "game", "events": batch})
    assert response.status_code == 200
    body = response.json()
    assert body["channel"] == "game" and body["knownChannel"] is True
    assert (body["accepted"], body["unmatched"], body["rejected"]) == (1, 1, 3)
    assert [r["index"] for r in body["rejections"]] == [2, 3, 4]
    assert all(r["reason"] for r in body["rejections"])
    assert body["droppedKeys"] == 0

    other = await api.post("/v1/events/send", json={"channel": "lobby", "events": batch[:1]})
    assert other.json()["knownChannel"] is False
    assert other.json()["unmatched"] == 1


@pytest.mark.parametrize(
    "body",
    [
        {"channel": "game"},
        {"channel": "", "events": []},
        {"channel": 3, "events": []},
        {"channel": "game", "events": {"key": ["vote"]}},
        [{"key": ["vote"], "value": 1}],
    ],
)
async def test_send_of_the_wrong_shape_is_400(
    api: httpx.AsyncClient, state: AppState, body: Any
) -> None:
    response = await api.post("/v1/events/send", json=body)
    assert response.status_code == 400, response.text
    assert service_of(state).stats().accepted == 0


async def test_send_bounds_the_batch(api: httpx.AsyncClient) -> None:
    events = [{"key": ["vote"], "value": "a"}] * (events_routes.MAX_BATCH_EVENTS + 1)
    response = await api.post("/v1/events/send", json={"channel": "game", "events": events})
    assert response.status_code == 400


async def test_results_log_positions(api: httpx.AsyncClient, state: AppState) -> None:
    service = service_of(state)
    await api.post("/v1/events", json={"mapreduce": [votes_only(period=60_000)]})
    first = await api.get("/v1/events/results/0")
    assert first.json() == {"counter": 0, "messages": []}  # collection starts now
    await api.post(
        "/v1/events/send",
        json={"channel": "game", "events": [{"key": ["vote"], "value": "e4"}] * 2},
    )
    service.tick(10**15)  # close the window now (far future)
    page = (await api.get("/v1/events/results/0")).json()
    assert page["counter"] == 1
    [message] = page["messages"]
    assert message["error"] == ""
    value = json.loads(message["value"])
    assert value["channel"] == "game" and value["id"] == "vote-count"
    assert value["results"] == [
        {"key": ["e4"], "value": {"count": 2, "sum": 2, "min": 1, "max": 1, "average": 1.0}}
    ]
    assert (await api.get("/v1/events/results/1")).json() == {"counter": 1, "messages": []}
    assert (await api.get("/v1/events/results/7")).json() == {"counter": 1, "messages": []}


@pytest.mark.parametrize("counter", ["-1", "abc", "1.5"])
async def test_bad_counter_is_400(api: httpx.AsyncClient, counter: str) -> None:
    response = await api.get(f"/v1/events/results/{counter}")
    assert response.status_code == 400


async def test_results_idle_timeout_comes_from_the_settings(
    api: httpx.AsyncClient, state: AppState
) -> None:
    state.runtime_settings = dataclasses.replace(
        state.runtime_settings, events_results_idle_timeout_seconds=0.25
    )
    await api.get("/v1/events/results/0")
    assert service_of(state).results_log.idle_timeout_ms == 250


async def test_sse_frames(state: AppState) -> None:
    service = service_of(state)
    service.replace([votes_only(period=60_000)])
    stream = results_feed.sse(service)
    assert await anext(stream) == b": subscribed\n\n"
    service.ingest("game", [{"key": ["vote"], "value": "e4"}])
    service.tick(10**15)
    frame = (await asyncio.wait_for(anext(stream), 5)).decode()
    assert frame.startswith("data: ") and frame.endswith("\n\n")
    message = json.loads(frame[len("data: ") :])
    assert set(message) == {"error", "value"}
    assert json.loads(message["value"])["id"] == "vote-count"
    await stream.aclose()
    assert service.stats().subscribers == 0


async def test_sse_reports_what_a_slow_client_missed(state: AppState) -> None:
    service = service_of(state)
    service.hub.default_maxsize = 2
    service.replace([votes_only(period=1)])
    stream = results_feed.sse(service)
    await anext(stream)
    for t in range(10**15, 10**15 + 5):  # five periods, five messages, queue of two
        service.ingest("game", [{"key": ["vote"], "value": "x"}])
        service.tick(t + 1)
    frame = (await asyncio.wait_for(anext(stream), 5)).decode()
    assert frame.startswith('event: dropped\ndata: {"dropped": 3}\n\ndata: ')
    await stream.aclose()


async def test_sse_keepalive_and_end_on_stop(
    state: AppState, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(results_feed, "KEEPALIVE_SECONDS", 0.01)
    service = service_of(state)
    stream = results_feed.sse(service)
    await anext(stream)
    assert await asyncio.wait_for(anext(stream), 5) == b": keepalive\n\n"
    await service.stop()
    with pytest.raises(StopAsyncIteration):
        while True:
            frame = await asyncio.wait_for(anext(stream), 5)
            assert frame == b": keepalive\n\n"


def test_stored_documents_apply_kubectl_edits() -> None:
    service = EventsService()
    stored = StoredDocuments(service, CM)

    def data(documents: Any) -> dict[str, str]:
        return {EVENTS_KEY: json.dumps({"mapreduce": documents})}

    stored.on_change("other", data(["junk"]))  # another ConfigMap: ignored
    assert service.documents == [] and service.errors == ""

    stored.on_change(CM, data([votes_only()]))
    assert service.documents == [votes_only()] and service.errors == ""
    program = service.program

    bad = votes_only()
    bad["event"]["game"]["reductions"][0]["period"] = "soon"
    stored.on_change(CM, data([bad]))
    assert service.program is program  # the last valid definitions keep running
    assert "period" in service.errors and "keep running" in service.errors

    stored.on_change(CM, {EVENTS_KEY: "{not json"})
    assert service.program is program and "not valid JSON" in service.errors

    stored.on_change(CM, data([votes_only()]))  # reverted: the same program, errors cleared
    assert service.program is program and service.errors == ""

    stored.on_change(CM, data([votes_only(period=50)]))
    assert service.program is not program and service.errors == ""

    stored.on_change(CM, None)  # deleted: nothing stored, nothing runs
    assert service.documents == []


def test_invalid_documents_at_start_are_shown_and_run_nothing() -> None:
    service = EventsService()
    stored = StoredDocuments(service, CM)
    bad = votes_only()
    bad["event"]["game"]["maps"][0]["key"] = []
    stored.apply({EVENTS_KEY: json.dumps({"mapreduce": [bad]})})
    assert service.documents == [bad]
    assert "mapreduce[0]" in service.errors
    assert service.program.channels == {}


@pytest.mark.parametrize("data", [None, {}, {EVENTS_KEY: ""}, {EVENTS_KEY: "  \n"}])
def test_empty_storage_means_no_documents(data: dict[str, str] | None) -> None:
    assert parse_stored(data) == []


async def test_configmap_arriving_after_start(state: AppState) -> None:
    state.store.apply_event(
        "configmap:" + CM,
        "ADDED",
        {"metadata": {"name": CM}, "data": {EVENTS_KEY: json.dumps({"mapreduce": [votes_only()]})}},
    )
    assert service_of(state).documents == [votes_only()]


async def test_openapi_describes_the_routes(api: httpx.AsyncClient) -> None:
    paths = (await api.get("/openapi.json")).json()["paths"]
    assert set(paths["/v1/events"]) == {"get", "post"}
    assert "422" in paths["/v1/events"]["post"]["responses"]
    assert "400" in paths["/v1/events/send"]["post"]["responses"]
    assert "text/event-stream" in paths["/v1/events/stream"]["get"]["responses"]["200"]["content"]
    assert "/v1/events/results/{counter}" in paths


async def test_stop_right_after_a_wake_up_does_not_hang() -> None:
    # Python 3.11's wait_for swallowed the cancellation that met a completed wake-up.
    service = EventsService()
    service.start()
    await asyncio.sleep(0)  # the ticker now waits for its wake-up
    service.replace([votes_only()])  # sets the wake-up
    stopping = asyncio.ensure_future(service.stop())
    done, _ = await asyncio.wait({stopping}, timeout=2)  # asyncio.wait does not cancel it
    if not done:
        stopping.cancel()  # a second cancellation reaches the ticker: clean up, then fail
        await asyncio.gather(stopping, return_exceptions=True)
    assert done, "stop() hung"


async def test_the_example_document_is_valid(api: httpx.AsyncClient) -> None:
    example = pathlib.Path(__file__).parents[2] / "examples" / "events" / "vote-cheer.json"
    response = await api.post("/v1/events", content=example.read_bytes(), headers=JSON_TYPE)
    assert response.status_code == 200, response.text
    assert response.json()["errors"] == ""
    sent = await api.post(
        "/v1/events/send",
        json={
            "channel": "game",
            "events": [{"key": ["vote"], "value": "e4"}, {"key": ["cheer", "red"], "value": 5}],
        },
    )
    assert sent.json()["accepted"] == 2


def nested_where(depth: int) -> dict[str, Any]:
    """The votes document with its map's where clause nested `depth` levels deep."""
    document = votes_only()
    clause = document["event"]["game"]["maps"][0]["where"]
    for _ in range(depth - 1):
        clause = {"$and": [clause]}
    document["event"]["game"]["maps"][0]["where"] = clause
    return document


@pytest.mark.parametrize("depth", [33, 200, 400])
async def test_a_where_nested_too_deep_is_refused_naming_where_and_nothing_is_stored(
    api: httpx.AsyncClient, state: AppState, depth: int
) -> None:
    response = await api.post("/v1/events", json={"mapreduce": [nested_where(depth)]})
    assert response.status_code == 422, response.text
    paths = [d["path"] for d in response.json()["details"]]
    deepest = "mapreduce[0].event.game.maps[0].where" + ".$and[0]" * 32
    assert deepest in paths
    assert "32 levels" in response.text
    assert CONFIGMAPS.item(NS, CM) not in kube_of(state).objects  # nothing stored
    assert (await api.get("/v1/events")).json() == {"errors": "", "mapreduce": []}


async def test_a_where_at_the_depth_limit_is_accepted(api: httpx.AsyncClient) -> None:
    response = await api.post("/v1/events", json={"mapreduce": [nested_where(32)]})
    assert response.status_code == 200, response.text
    assert (await api.get("/v1/events")).json()["mapreduce"] == [nested_where(32)]


async def test_a_too_deep_document_stored_by_kubectl_is_reported_not_served_as_500(
    api: httpx.AsyncClient, state: AppState
) -> None:
    stored = json.dumps({"mapreduce": [nested_where(300)]})
    state.store.apply_event(
        "configmap:" + CM, "ADDED", {"metadata": {"name": CM}, "data": {EVENTS_KEY: stored}}
    )
    response = await api.get("/v1/events")
    assert response.status_code == 200, response.text
    assert "levels deep" in response.json()["errors"]
    assert response.json()["mapreduce"] == []
