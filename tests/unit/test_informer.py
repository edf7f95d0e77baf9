"""The informer's list+watch loop on a scripted API: 410, broken streams, paging."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any, cast

from caravan.kube.client import KubeClient
from caravan.kube.errors import KubeError
from caravan.kube.informer import Informer
from caravan.store import Store
from caravan.store.store import KIND_JOB

Event = dict[str, Any] | BaseException


def job(name: str, version: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "resourceVersion": version},
        "spec": {"taskGroups": []},
    }


class ScriptedKube:
    """Answers list pages and watch streams from scripts, recording each query."""

    def __init__(self, pages: list[dict[str, Any]], streams: list[list[Event]]) -> None:
        self.pages = pages
        self.streams = streams
        self.list_queries: list[dict[str, Any]] = []
        self.watch_queries: list[dict[str, Any]] = []
        self.watching = asyncio.Event()  # set when a watch waits past its script

    async def list_items(self, path: str, **query: Any) -> dict[str, Any]:
        self.list_queries.append(query)
        return self.pages.pop(0)

    async def watch(
        self, path: str, *, query: dict[str, Any], on_open: Callable[[], None], **_: Any
    ) -> AsyncIterator[dict[str, Any]]:
        self.watch_queries.append(query)
        script = self.streams.pop(0) if self.streams else []
        on_open()
        for item in script:
            if isinstance(item, BaseException):
                raise item
            yield item
        self.watching.set()
        await asyncio.Event().wait()


def page(items: list[dict[str, Any]], version: str, token: str = "") -> dict[str, Any]:
    meta: dict[str, Any] = {"resourceVersion": version}
    if token:
        meta["continue"] = token
    return {"metadata": meta, "items": items}


async def run_until_watching(kube: ScriptedKube, store: Store) -> Informer:
    sleeps: list[float] = []

    async def no_wait(seconds: float) -> None:
        sleeps.append(seconds)

    informer = Informer(
        cast(KubeClient, kube), KIND_JOB, "/jobs", store, page_size=2, sleep=no_wait
    )
    task = asyncio.create_task(informer.run())
    try:
        async with asyncio.timeout(30):  # a hang guard, not a timing assertion
            await kube.watching.wait()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    return informer


async def test_a_410_relists_and_a_deletion_made_meanwhile_is_seen() -> None:
    gone = {"type": "ERROR", "object": {"code": 410, "message": "too old resource version"}}
    kube = ScriptedKube(
        pages=[page([job("a", "5"), job("b", "6")], "10"), page([job("a", "5")], "20")],
        streams=[[{"type": "MODIFIED", "object": job("a", "11")}, gone], []],
    )
    store = Store()
    await run_until_watching(kube, store)
    assert set(store.jobs) == {"a"}
    assert len(kube.list_queries) == 2
    assert [q["resourceVersion"] for q in kube.watch_queries] == ["10", "20"]


async def test_a_broken_stream_resumes_from_the_last_version_without_relisting() -> None:
    kube = ScriptedKube(
        pages=[page([job("a", "5")], "10")],
        streams=[
            [{"type": "MODIFIED", "object": job("a", "11")}, KubeError(0, "connection reset")],
            [{"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "15"}}}],
        ],
    )
    store = Store()
    informer = await run_until_watching(kube, store)
    assert len(kube.list_queries) == 1
    assert [q["resourceVersion"] for q in kube.watch_queries] == ["10", "11"]
    assert informer.resource_version == "15"
    assert informer.last_error is None  # cleared once the watch reopened


async def test_other_failures_relist_after_a_backoff() -> None:
    kube = ScriptedKube(
        pages=[page([job("a", "5")], "10"), page([job("a", "7")], "12")],
        streams=[[KubeError(403, "Forbidden")], []],
    )
    store = Store()
    await run_until_watching(kube, store)
    assert len(kube.list_queries) == 2
    assert store.versions.version((KIND_JOB, "a")) == "7"


async def test_a_list_is_read_page_by_page() -> None:
    kube = ScriptedKube(
        pages=[page([job("a", "1"), job("b", "2")], "", token="t1"), page([job("c", "3")], "9")],
        streams=[[]],
    )
    store = Store()
    store.apply_event(KIND_JOB, "ADDED", job("old", "0"))
    informer = await run_until_watching(kube, store)
    assert set(store.jobs) == {"a", "b", "c"}  # "old" was not in the list: gone
    assert kube.list_queries == [{"limit": 2}, {"limit": 2, "continue": "t1"}]
    assert informer.synced.is_set()
