"""The store signals versions: a writer waits for its own version, or for a deletion."""

from __future__ import annotations

import asyncio
from typing import Any

from caravan.store import Store
from caravan.store.store import KIND_CONFIGMAP, KIND_JOB
from caravan.store.versions import reached

CM = f"{KIND_CONFIGMAP}:caravan-logs"


def obj(name: str, version: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "resourceVersion": version}, "data": {}}


def test_later_versions_count_as_reached() -> None:
    assert reached("12", "12") and reached("13", "12") and not reached("9", "12")
    assert reached("abc", "abc") and not reached("abd", "abc")


async def test_a_waiter_resolves_when_its_version_or_a_later_one_arrives() -> None:
    store = Store()
    exact = asyncio.create_task(store.wait_version(CM, "caravan-logs", "5", timeout=60))
    later = asyncio.create_task(store.wait_version(CM, "caravan-logs", "6", timeout=60))
    await asyncio.sleep(0)
    store.apply_event(CM, "ADDED", obj("caravan-logs", "5"))
    assert await exact
    assert not later.done()
    store.apply_event(CM, "MODIFIED", obj("caravan-logs", "8"))
    assert await later
    assert store.versions.waiting == 0
    # Already there: answered at once.
    assert await store.wait_version(CM, "caravan-logs", "7", timeout=60)


async def test_a_deletion_answers_every_waiter_of_the_object() -> None:
    store = Store()
    store.apply_event(KIND_JOB, "ADDED", obj("web", "3"))
    gone = asyncio.create_task(store.wait_gone(KIND_JOB, "web", timeout=60))
    version = asyncio.create_task(store.wait_version(KIND_JOB, "web", "4", timeout=60))
    await asyncio.sleep(0)
    assert not gone.done()
    store.apply_event(KIND_JOB, "DELETED", obj("web", "4"))
    assert await gone and await version


async def test_a_relist_that_misses_an_object_counts_as_its_deletion() -> None:
    store = Store()
    store.replace_all(KIND_JOB, [obj("a", "1"), obj("b", "2")])
    gone = asyncio.create_task(store.wait_gone(KIND_JOB, "b", timeout=60))
    await asyncio.sleep(0)
    store.replace_all(KIND_JOB, [obj("a", "1")])  # b was deleted while the watch was away
    assert await gone
    assert store.versions.version((KIND_JOB, "a")) == "1"


async def test_a_wait_that_is_never_answered_says_so() -> None:
    store = Store()
    assert not await store.wait_version(KIND_JOB, "web", "9", timeout=0.01)
    assert store.versions.waiting == 0
