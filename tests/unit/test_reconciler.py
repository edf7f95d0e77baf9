"""The Reconciler on an in-memory API: Deployments applied, orphans deleted, status
written, requests coalesced, failures retried with backoff (a fake sleep)."""

from __future__ import annotations

import asyncio
from typing import Any

from caravan.kube.client import DEPLOYMENTS, JOBS
from caravan.kube.errors import KubeError
from caravan.operator.reconcile import Reconciler
from tests.unit.fakekube import FakeKube

NS = "ns"


def job(groups: dict[str, int], suspend: bool = False) -> dict[str, Any]:
    return {
        "apiVersion": "caravan.dev/v1alpha1",
        "kind": "Job",
        "metadata": {"name": "web", "uid": "u1", "generation": 1, "resourceVersion": "1"},
        "spec": {
            "suspend": suspend,
            "taskGroups": [
                {"name": g, "count": n, "countInit": 1, "countMax": 5, "template": {}}
                for g, n in groups.items()
            ],
        },
    }


def deployment(group: str) -> str:
    return DEPLOYMENTS.item(NS, f"web-{group}")


class Harness:
    def __init__(self, owned: list[tuple[str, str]] | None = None) -> None:
        self.kube = FakeKube()
        self.kube.put_object(JOBS.item(NS, "web"), job({"a": 2}))
        self.sleeps: list[float] = []
        self.results: list[str] = []
        self.idle = asyncio.Event()

        async def sleep(seconds: float) -> None:
            self.sleeps.append(seconds)

        self.reconciler = Reconciler(
            kube=self.kube.client,
            namespace=NS,
            pods=lambda name: [],
            deployments=lambda name: list(owned or []),
            on_result=self.results.append,
            sleep=sleep,
        )

    async def settle(self) -> None:
        while self.reconciler._running:
            await asyncio.gather(*self.reconciler._running.values())

    def replicas(self, group: str) -> int:
        return int(self.kube.objects[deployment(group)]["spec"]["replicas"])


async def test_a_pass_applies_each_group_and_writes_status() -> None:
    h = Harness()
    h.reconciler.request("web", job({"a": 2, "b": 0}))
    await h.settle()
    assert h.replicas("a") == 2 and h.replicas("b") == 0
    status_path = JOBS.item(NS, "web", "status")
    assert ("merge_patch", status_path) in h.kube.calls
    assert h.results == ["ok"]


async def test_a_suspended_job_scales_to_zero_and_a_removed_group_is_deleted() -> None:
    h = Harness(owned=[("web-a", "a"), ("web-old", "old")])
    h.kube.put_object(deployment("old"), {"metadata": {"name": "web-old"}})
    h.reconciler.request("web", job({"a": 3}, suspend=True))
    await h.settle()
    assert h.replicas("a") == 0
    assert deployment("old") not in h.kube.objects


async def test_a_burst_of_requests_makes_at_most_one_more_pass() -> None:
    h = Harness()
    for count in range(1, 6):
        h.reconciler.request("web", job({"a": count}))
    await h.settle()
    assert h.replicas("a") == 5  # the last body wins
    assert len(h.results) <= 2


async def test_a_conflict_goes_again_and_an_outage_backs_off_then_recovers() -> None:
    h = Harness()
    h.kube.fail("apply", KubeError(409, "Conflict"), KubeError(0, "refused"), KubeError(503, ""))
    h.reconciler.request("web")  # no body: read from the API
    await h.settle()
    assert h.replicas("a") == 2
    assert h.results == ["error", "error", "error", "ok"]
    assert h.sleeps == [0.5, 1.0]  # backoff for the outage only, growing


async def test_a_refused_template_is_reported_on_the_status_not_retried() -> None:
    h = Harness()
    h.kube.fail("apply", KubeError(422, "Invalid", {"message": "bad template"}))
    h.reconciler.request("web", job({"a": 1}))
    await h.settle()
    status = h.kube.objects[JOBS.item(NS, "web")]["status"]
    assert "bad template" in str(status)
    assert h.results == ["ok"] and h.sleeps == []


async def test_a_deleted_job_and_a_closed_reconciler_do_nothing() -> None:
    h = Harness()
    del h.kube.objects[JOBS.item(NS, "web")]
    h.reconciler.request("web")
    await h.settle()
    assert not any(verb == "apply" for verb, _ in h.kube.calls)
    await h.reconciler.close()
    h.reconciler.request("web", job({"a": 1}))
    assert not h.reconciler._running


async def test_the_echo_of_a_status_write_makes_no_pass_but_a_new_spec_does() -> None:
    h = Harness()
    h.reconciler.request("web", job({"a": 1}))
    await h.settle()
    passes = len(h.results)
    h.reconciler.request("web", job({"a": 1}), new_spec_only=True)  # same generation
    assert not h.reconciler._running and len(h.results) == passes
    newer = job({"a": 4})
    newer["metadata"]["generation"] = 2
    h.reconciler.request("web", newer, new_spec_only=True)
    await h.settle()
    assert h.replicas("a") == 4


async def test_unchanged_groups_are_not_sent_again_and_only_drift_makes_a_pass() -> None:
    h = Harness()
    h.reconciler.request("web", job({"a": 1, "b": 1}))
    await h.settle()
    applies = sum(verb == "apply" for verb, _ in h.kube.calls)
    assert applies == 2
    newer = job({"a": 3, "b": 1})
    newer["metadata"]["generation"] = 2
    h.kube.put_object(JOBS.item(NS, "web"), newer)
    h.reconciler.request("web", newer, new_spec_only=True)
    await h.settle()
    assert sum(verb == "apply" for verb, _ in h.kube.calls) == applies + 1  # only "a"
    # The Deployment's status moved (same generation as applied): no pass.
    passes = len(h.results)
    h.reconciler.deployment_changed("web", "web-a", 0, deleted=False)
    assert not h.reconciler._running and len(h.results) == passes
    # Someone scaled it by hand (a new generation): applied again.
    h.kube.objects[deployment("a")]["spec"]["replicas"] = 9
    h.reconciler.deployment_changed("web", "web-a", 7, deleted=False)
    await h.settle()
    assert h.replicas("a") == 3


def counted_by_the_api(body: dict[str, Any], generation: int, *groups: str) -> dict[str, Any]:
    """`body` at `generation`, its groups' counts last set by the API (which writes their
    replicas through), as the apiserver's managedFields say it."""
    body["metadata"]["generation"] = generation
    owned: dict[str, Any] = {f'k:{{"name":"{g}"}}': {"f:count": {}} for g in groups}
    body["metadata"]["managedFields"] = [
        {
            "manager": "caravan-api",
            "operation": "Update",
            "fieldsV1": {"f:spec": {"f:taskGroups": owned}},
        }
    ]
    return body


async def test_replicas_the_api_writes_through_are_left_to_it_for_a_grace() -> None:
    h = Harness()
    now = [100.0]
    h.reconciler.clock = lambda: now[0]
    h.reconciler.request("web", job({"a": 1, "b": 1}))
    await h.settle()
    applies = sum(verb == "apply" for verb, _ in h.kube.calls)

    # The API set a's count: the pass leaves its replicas to the API's write-through,
    # writes nothing, and comes again at the end of the grace.
    newer = counted_by_the_api(job({"a": 3, "b": 1}), 2, "a")
    h.kube.put_object(JOBS.item(NS, "web"), newer)
    h.reconciler.request("web", newer, new_spec_only=True)
    await h.settle()
    assert sum(verb == "apply" for verb, _ in h.kube.calls) == applies
    wake = h.reconciler._wakes["web"]
    assert 0 < wake.when() - asyncio.get_running_loop().time() <= 1.0
    # The same Job told again (the store's watch beside Kopf's) makes no pass meanwhile.
    calls = len(h.kube.calls)
    h.reconciler.request("web", newer)
    assert "web" not in h.reconciler._running
    await h.settle()
    assert len(h.kube.calls) == calls

    # The write-through's echo counts as applied: the next pass applies nothing (the
    # Deployment already has the count) and only writes the status.
    h.kube.objects[deployment("a")]["spec"]["replicas"] = 3
    calls = len(h.kube.calls)
    h.reconciler.deployment_changed("web", "web-a", 1, deleted=False, written_through=3)
    await h.settle()
    assert sum(verb == "apply" for verb, _ in h.kube.calls) == applies
    assert ("merge_patch", JOBS.item(NS, "web", "status")) in h.kube.calls[calls:]
    assert "web" not in h.reconciler._wakes and wake.cancelled()

    # Another count, whose write-through never comes: once the grace is over, the
    # operator applies the replicas itself.
    newest = counted_by_the_api(job({"a": 4, "b": 1}), 3, "a")
    h.kube.put_object(JOBS.item(NS, "web"), newest)
    h.reconciler.request("web", newest, new_spec_only=True)
    await h.settle()
    assert h.replicas("a") == 3 and "web" in h.reconciler._wakes
    now[0] += 1.5
    h.reconciler.request("web")
    await h.settle()
    assert h.replicas("a") == 4
    assert sum(verb == "apply" for verb, _ in h.kube.calls) == applies + 1


async def test_a_count_set_by_anyone_else_or_beside_a_template_change_is_applied_at_once() -> None:
    h = Harness()
    h.reconciler.request("web", job({"a": 1}))
    await h.settle()
    # kubectl (another field manager) set the count: no write-through will come.
    by_hand = job({"a": 2})
    by_hand["metadata"]["generation"] = 2
    h.kube.put_object(JOBS.item(NS, "web"), by_hand)
    h.reconciler.request("web", by_hand, new_spec_only=True)
    await h.settle()
    assert h.replicas("a") == 2
    # The API's count beside a new template: the pass has more than replicas to do.
    both = counted_by_the_api(job({"a": 3}), 3, "a")
    both["spec"]["taskGroups"][0]["template"] = {"metadata": {"labels": {"v": "2"}}}
    h.kube.put_object(JOBS.item(NS, "web"), both)
    h.reconciler.request("web", both, new_spec_only=True)
    await h.settle()
    assert h.replicas("a") == 3
    assert "web" not in h.reconciler._wakes
