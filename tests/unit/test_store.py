"""The store's jobs view and waitIndex, fed with watch events by hand."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from caravan.store import Store
from caravan.store.store import KIND_JOB, KIND_POD


def job(name: str, count: int = 1) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "spec": {
            "taskGroups": [
                {"name": "g", "count": count, "countInit": 1, "countMax": 5, "template": {}}
            ]
        },
    }


def pod(
    name: str, job: str, ready: bool, extra_labels: dict[str, str] | None = None
) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "labels": {
                "caravan.dev/job": job,
                "caravan.dev/task-group": "g",
                **(extra_labels or {}),
            },
        },
        "spec": {"nodeName": "n1", "containers": [{"name": "main"}]},
        "status": {
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }


def test_view_is_sorted_and_index_grows_only_on_view_changes() -> None:
    store = Store()
    store.replace_all(KIND_JOB, [job("b"), job("a")])
    assert [j["name"] for j in json.loads(store.jobs_json)] == ["a", "b"]
    index = store.jobs_waiters.index
    assert index >= 1

    store.apply_event(KIND_POD, "ADDED", pod("p1", "a", ready=False))
    assert json.loads(store.jobs_json)[0]["taskGroups"][0]["summary"]["starting"] == 1
    after_pod = store.jobs_waiters.index
    assert after_pod > index

    # A label change that does not move the pod between buckets changes nothing.
    store.apply_event(KIND_POD, "MODIFIED", pod("p1", "a", ready=False, extra_labels={"x": "y"}))
    assert store.jobs_json and store.jobs_waiters.index == after_pod

    store.apply_event(KIND_POD, "MODIFIED", pod("p1", "a", ready=True))
    view = json.loads(store.jobs_json)
    assert view[0]["status"] == "running"
    assert store.jobs_waiters.index == after_pod + 1

    store.apply_event(KIND_JOB, "DELETED", job("a"))
    assert [j["name"] for j in json.loads(store.jobs_json)] == ["b"]


def test_relist_drops_objects_that_disappeared() -> None:
    store = Store()
    store.replace_all(KIND_JOB, [job("a"), job("b")])
    store.replace_all(KIND_POD, [pod("p1", "a", ready=True)])
    store.replace_all(KIND_JOB, [job("b")])
    store.replace_all(KIND_POD, [])
    assert [j["name"] for j in json.loads(store.jobs_json)] == ["b"]
    assert store.pods_of("a") == []


async def test_waiters_wake_on_change_and_answer_at_once_when_ahead() -> None:
    store = Store()
    store.replace_all(KIND_JOB, [job("a")])
    current = store.jobs_waiters.index
    waiter = asyncio.create_task(store.jobs_waiters.wait_beyond(current, timeout=5))
    await asyncio.sleep(0)
    store.apply_event(KIND_JOB, "MODIFIED", job("a", count=3))
    store.jobs_json  # noqa: B018 - reading refreshes the view, as a route would
    assert await asyncio.wait_for(waiter, 1) == current + 1
    # An index from the future (e.g. before a restart) is answered at once.
    ahead = await asyncio.wait_for(store.jobs_waiters.wait_beyond(current + 100, timeout=5), 1)
    assert ahead == store.jobs_waiters.index
