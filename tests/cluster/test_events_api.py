"""Events end to end: documents stored in the caravan-events ConfigMap, the engine running
on the real clock, the polled results log, ingestion, and the SSE / WebSocket streams."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from websockets.asyncio.client import connect

from caravan.config import Config
from caravan.events.storage import EVENTS_KEY
from caravan.kube.client import CONFIGMAPS, KubeClient
from caravan.runner import Caravan
from tests.cluster.conftest import JSON_TYPE
from tests.cluster.kubeutil import eventually
from tests.samples import votes_only

CM = "caravan-events"


def votes(*options: str) -> dict[str, Any]:
    return {"channel": "game", "events": [{"key": ["vote"], "value": o} for o in options]}


class ResultsReader:
    """Polls /v1/events/results/{counter} like a Genvid client, keeping every message."""

    def __init__(self, api: httpx.AsyncClient) -> None:
        self.api = api
        self.counter = 0
        self.values: list[dict[str, Any]] = []
        self.errors: list[str] = []

    async def poll(self) -> list[dict[str, Any]]:
        response = await self.api.get(f"/v1/events/results/{self.counter}")
        assert response.status_code == 200, response.text
        page = response.json()
        assert set(page) == {"counter", "messages"}
        assert page["counter"] >= self.counter
        for message in page["messages"]:
            assert set(message) == {"error", "value"}
            self.errors.append(message["error"])
            self.values.append(json.loads(message["value"]))
        self.counter = page["counter"]
        return self.values

    def counts(self, reduction: str) -> Counter[str]:
        """Total count per option over every period seen, for one reduction."""
        total: Counter[str] = Counter()
        for value in self.values:
            if value["id"] == reduction:
                for result in value["results"]:
                    total[result["key"][0]] += result["value"]["count"]
        return total


async def stored_text(kube: KubeClient, namespace: str) -> str | None:
    configmap = await kube.get(CONFIGMAPS.item(namespace, CM))
    text: str | None = (configmap.get("data") or {}).get(EVENTS_KEY)
    return text


async def post_documents(api: httpx.AsyncClient, documents: list[Any]) -> dict[str, Any]:
    response = await api.post("/v1/events", json={"mapreduce": documents})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_votes_are_counted_per_period_and_read_from_the_results_log(
    kube: KubeClient, namespace: str, api: httpx.AsyncClient
) -> None:
    assert (await api.get("/v1/events")).json() == {"errors": "", "mapreduce": []}
    assert await post_documents(api, [votes_only()]) == {"errors": "", "mapreduce": [votes_only()]}
    text = await stored_text(kube, namespace)
    assert text is not None and json.loads(text) == {"mapreduce": [votes_only()]}

    reader = ResultsReader(api)
    await reader.poll()  # collection starts at the first read
    sent = await api.post("/v1/events/send", json=votes("e4", "e4", "e5"))
    assert sent.status_code == 200, sent.text
    assert sent.json()["accepted"] == 3

    await eventually(
        reader.poll,
        lambda _: reader.counts("vote-count") == Counter({"e4": 2, "e5": 1}),
        timeout=10,
        interval=0.05,
        what="the vote counts in the results log",
    )
    assert all(e == "" for e in reader.errors)
    [value] = reader.values
    assert value["channel"] == "game"
    assert value["results"][0]["value"] == {
        "count": 2,
        "sum": 2,
        "min": 1,
        "max": 1,
        "average": 1.0,
    }
    # Reading at the end returns nothing new, and a counter beyond it the current end.
    end = reader.counter
    assert (await api.get(f"/v1/events/results/{end}")).json() == {"counter": end, "messages": []}
    ahead = (await api.get(f"/v1/events/results/{end + 50}")).json()
    assert ahead == {"counter": end, "messages": []}


async def test_invalid_documents_are_rejected_with_every_error_and_nothing_stored(
    kube: KubeClient, namespace: str, api: httpx.AsyncClient
) -> None:
    await post_documents(api, [votes_only()])
    before = await stored_text(kube, namespace)
    bad = votes_only()
    bad["event"]["game"]["maps"][0]["where"]["$gtee"] = 0
    bad["event"]["game"]["reductions"][0]["value"] = ["$median"]
    response = await api.post("/v1/events", json={"mapreduce": [votes_only("other"), bad]})
    assert response.status_code == 422
    details = response.json()["details"]
    assert len(details) >= 2
    assert all(d["path"].startswith("mapreduce[1]") for d in details)
    assert await stored_text(kube, namespace) == before
    assert (await api.get("/v1/events")).json() == {"errors": "", "mapreduce": [votes_only()]}

    malformed = await api.post("/v1/events", content=b'{"mapreduce": [', headers=JSON_TYPE)
    assert malformed.status_code == 400
    assert await stored_text(kube, namespace) == before


async def test_a_broken_kubectl_edit_is_reported_and_the_old_program_keeps_running(
    kube: KubeClient, namespace: str, api: httpx.AsyncClient
) -> None:
    await post_documents(api, [votes_only()])
    bad = votes_only("broken")
    bad["event"]["game"]["reductions"][0]["period"] = -5
    await kube.merge_patch(
        CONFIGMAPS.item(namespace, CM), {"data": {EVENTS_KEY: json.dumps({"mapreduce": [bad]})}}
    )
    view = await eventually(
        lambda: api.get("/v1/events"),
        lambda r: r.json()["errors"] != "",
        what="the edit's errors in GET /v1/events",
    )
    assert "period" in view.json()["errors"]
    assert view.json()["mapreduce"] == [votes_only()]  # what runs

    reader = ResultsReader(api)
    await reader.poll()
    await api.post("/v1/events/send", json=votes("a", "b"))
    await eventually(
        reader.poll,
        lambda _: reader.counts("vote-count") == Counter({"a": 1, "b": 1}),
        timeout=10,
        interval=0.05,
        what="results from the last valid program",
    )

    # Fixing the ConfigMap makes the new definitions live and clears the errors.
    await kube.merge_patch(
        CONFIGMAPS.item(namespace, CM),
        {"data": {EVENTS_KEY: json.dumps({"mapreduce": [votes_only("fixed")]})}},
    )
    await eventually(
        lambda: api.get("/v1/events"),
        lambda r: r.json() == {"errors": "", "mapreduce": [votes_only("fixed")]},
        what="the fixed documents in force",
    )
    await api.post("/v1/events/send", json=votes("c"))
    await eventually(
        reader.poll,
        lambda _: reader.counts("fixed") == Counter({"c": 1}),
        timeout=10,
        interval=0.05,
        what="results from the fixed program",
    )


async def test_send_reports_unmatched_and_rejected_events(api: httpx.AsyncClient) -> None:
    await post_documents(api, [votes_only()])
    batch = {
        "channel": "game",
        "events": [{"key": ["vote"], "value": "x"}, {"key": ["jump"], "value": 1}, {"value": 1}],
    }
    body = (await api.post("/v1/events/send", json=batch)).json()
    assert (body["accepted"], body["unmatched"], body["rejected"]) == (1, 1, 1)
    assert body["rejections"][0]["index"] == 2 and "key" in body["rejections"][0]["reason"]
    assert (await api.post("/v1/events/send", json={"events": []})).status_code == 400


def subscribers(caravan: Caravan) -> Callable[[], Awaitable[int]]:
    assert caravan.state is not None
    service = caravan.state.events
    assert service is not None

    async def probe() -> int:
        return service.stats().subscribers

    return probe


async def test_sse_stream_pushes_each_periods_results(
    caravan: Caravan, api: httpx.AsyncClient
) -> None:
    await post_documents(api, [votes_only()])
    async with api.stream("GET", "/v1/events/stream") as stream:
        assert stream.status_code == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        lines = stream.aiter_lines()
        assert await anext(lines) == ": subscribed"  # from here on nothing is missed
        await api.post("/v1/events/send", json=votes("e4", "e4"))
        async for line in lines:
            if line.startswith("data: "):
                message = json.loads(line[len("data: ") :])
                break
    # The client left: its subscription goes with it.
    await eventually(subscribers(caravan), lambda n: n == 0, what="the SSE subscription to end")
    assert message["error"] == ""
    value = json.loads(message["value"])
    assert value["id"] == "vote-count"
    assert value["results"][0]["key"] == ["e4"]
    assert value["results"][0]["value"]["count"] == 2


async def test_websocket_pushes_each_periods_results(
    caravan: Caravan, api: httpx.AsyncClient
) -> None:
    await post_documents(api, [votes_only()])
    url = caravan.url.replace("http://", "ws://") + "/v1/events/ws"
    async with connect(url) as websocket:
        await eventually(subscribers(caravan), lambda n: n == 1, what="the WS subscription")
        await api.post("/v1/events/send", json=votes("e5"))
        frame = json.loads(await websocket.recv())
    await eventually(subscribers(caravan), lambda n: n == 0, what="the WS subscription to end")
    assert set(frame) == {"error", "value", "dropped"}
    assert frame["dropped"] == 0
    assert json.loads(frame["value"])["results"][0]["key"] == ["e5"]


async def test_documents_stored_before_start_are_restored(
    kubeconfig: str, kube: KubeClient, namespace: str
) -> None:
    await kube.create(
        CONFIGMAPS.collection(namespace),
        {
            "metadata": {"name": CM},
            "data": {EVENTS_KEY: json.dumps({"mapreduce": [votes_only("restored")]})},
        },
    )
    instance = Caravan(Config(namespace=namespace, port=0, kubeconfig=kubeconfig))
    await instance.start()
    try:
        await instance.wait_ready(timeout=60)
        async with httpx.AsyncClient(base_url=instance.url, timeout=30) as api:
            view = (await api.get("/v1/events")).json()
            assert view == {"errors": "", "mapreduce": [votes_only("restored")]}
            reader = ResultsReader(api)
            await reader.poll()
            await api.post("/v1/events/send", json=votes("z"))
            await eventually(
                reader.poll,
                lambda _: reader.counts("restored") == Counter({"z": 1}),
                timeout=10,
                interval=0.05,
                what="results from the restored program",
            )
    finally:
        await instance.stop()
