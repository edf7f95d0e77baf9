"""The operator follows the Jobs and the Deployments from the store: which passes and
which drift each change tells the Reconciler of, and that a follower registering from
another thread misses and reorders nothing."""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import Mapping
from typing import Any, cast

import pytest

from caravan.jobs.definitions import missing_dependency_message
from caravan.operator.feeds import DeploymentFeed, DeploymentIndex, JobFeed, OnLoop
from caravan.operator.reconcile import Reconciler
from caravan.operator.status import DEPENDENCIES_CONDITION
from caravan.store import Store
from caravan.store.store import KIND_DEPLOYMENT, KIND_JOB

pytestmark = pytest.mark.unit


def job(name: str, *needs: str, resolved: str | None = None, generation: int = 1) -> Any:
    body: dict[str, Any] = {
        "metadata": {"name": name, "generation": generation},
        "spec": {"taskGroups": [{"name": "g", "count": 1, "template": {}}]},
    }
    if needs:
        body["spec"]["dependencies"] = list(needs)
    if resolved is not None:
        condition = {"type": DEPENDENCIES_CONDITION, "status": "True"}
        if resolved:
            condition = {"type": DEPENDENCIES_CONDITION, "status": "False", "message": resolved}
        body["status"] = {"conditions": [condition]}
    return body


def arguments(method: Any, *args: Any, **kwargs: Any) -> tuple[Any, ...]:
    """A call's arguments, bound as the Reconciler's own `method` takes them (a call it
    would refuse fails here too), defaults filled in, `self` left out."""
    bound = inspect.signature(method).bind(None, *args, **kwargs)
    bound.apply_defaults()
    return tuple(bound.arguments.values())[1:]


class Requests:
    """Reconciler.request, recorded: (job, with a body, new_spec_only)."""

    def __init__(self) -> None:
        self.made: list[tuple[str, bool, bool]] = []

    def request(self, *args: Any, **kwargs: Any) -> None:
        job, body, new_spec_only = arguments(Reconciler.request, *args, **kwargs)
        self.made.append((job, body is not None, new_spec_only))


def reconciler(fake: object) -> Reconciler:
    """A fake standing in for the Reconciler (only what the feed under test calls)."""
    return cast(Reconciler, fake)


def test_the_listing_asks_a_pass_for_every_job_judged_with_the_whole_graph() -> None:
    requests = Requests()
    feed = JobFeed(reconciler(requests))
    # "web" is listed before the "db" it needs: still judged with "db" known, so its
    # resolved condition is not stale and the pass may be skipped if already done.
    feed.listed({"web": job("web", "db", resolved=""), "db": job("db", resolved="")})
    assert requests.made == [("web", True, True), ("db", True, True)]
    assert feed.dependencies == {"web": ("db",), "db": ()}


def test_a_job_going_gives_a_pass_to_those_that_needed_it_and_only_them() -> None:
    requests = Requests()
    feed = JobFeed(reconciler(requests))
    feed.listed(
        {
            "web": job("web", "db", resolved=""),
            "db": job("db", resolved=""),
            "other": job("other", resolved=""),
        }
    )
    requests.made.clear()
    feed.changed("db", None)
    assert requests.made == [("web", False, False)]  # read afresh: its condition is stale
    assert "db" not in feed.dependencies and "db" not in feed.conditions


def test_a_status_echo_asks_only_its_own_pass_and_a_stale_condition_a_full_one() -> None:
    requests = Requests()
    feed = JobFeed(reconciler(requests))
    feed.listed({"web": job("web", "db", resolved="")})
    requests.made.clear()
    # Its condition says resolved, but "db" is missing: stale, so a full pass.
    feed.changed("web", job("web", "db", resolved=""))
    assert requests.made == [("web", True, False)]
    requests.made.clear()
    missing = missing_dependency_message("db")
    feed.changed("web", job("web", "db", resolved=missing))
    assert requests.made == [("web", True, True)]


def test_a_new_dependency_wakes_the_job_whose_condition_it_settles() -> None:
    requests = Requests()
    feed = JobFeed(reconciler(requests))
    missing = missing_dependency_message("db")
    feed.listed({"web": job("web", "db", resolved=missing)})
    requests.made.clear()
    feed.changed("db", job("db"))
    assert requests.made == [("db", True, True), ("web", False, False)]


def test_a_relist_forgets_the_jobs_it_no_longer_holds() -> None:
    requests = Requests()
    feed = JobFeed(reconciler(requests))
    feed.listed({"web": job("web", "db", resolved=""), "db": job("db", resolved="")})
    requests.made.clear()
    feed.listed({"web": job("web", "db", resolved="")})
    assert ("web", False, False) in requests.made  # "db" went: web's condition is stale
    assert set(feed.dependencies) == {"web"}


class Recorded:
    def __init__(self) -> None:
        self.seen: list[tuple[str, Any]] = []

    def listed(self, bodies: Mapping[str, Any]) -> None:
        self.seen.append(("listed", sorted(bodies)))

    def changed(self, name: str, body: Any) -> None:
        self.seen.append(("changed", (name, None if body is None else body["metadata"]["name"])))


def test_the_store_tells_followers_after_the_list_then_each_change() -> None:
    store = Store()
    early = Recorded()
    store.follow(KIND_JOB, early)
    store.apply_event(KIND_JOB, "ADDED", job("a"))  # during the first list: told at its end
    store.end_relist(KIND_JOB, {"a"})
    store.apply_event(KIND_JOB, "MODIFIED", job("a", generation=2))
    late = Recorded()
    store.follow(KIND_JOB, late)  # the list is done: told at once
    store.apply_event(KIND_JOB, "DELETED", job("a"))
    store.unfollow(KIND_JOB, early)
    store.apply_event(KIND_JOB, "ADDED", job("b"))
    assert early.seen == [("listed", ["a"]), ("changed", ("a", "a")), ("changed", ("a", None))]
    assert late.seen == [("listed", ["a"]), ("changed", ("a", None)), ("changed", ("b", "b"))]


def test_a_follower_registering_from_another_thread_misses_nothing() -> None:
    store = Store()
    store.end_relist(KIND_JOB, set())
    follower = Recorded()
    started = threading.Event()

    def write() -> None:
        started.set()
        for i in range(2000):
            store.apply_event(KIND_JOB, "ADDED", job(f"j{i}"))

    writer = threading.Thread(target=write)
    writer.start()
    started.wait()
    store.follow(KIND_JOB, follower)
    writer.join()
    # Whatever the listing held, every later job is told after it, once.
    listed = follower.seen[0]
    assert listed[0] == "listed"
    told = [name for kind, (name, _) in follower.seen[1:] if kind == "changed"]
    assert sorted(set(listed[1]) | set(told)) == sorted(f"j{i}" for i in range(2000))
    assert not set(listed[1]) & set(told)


def deployment(
    name: str,
    job_name: str | None = "web",
    *managers: tuple[str, list[str]],
    generation: int = 1,
    replicas: int = 2,
    observed: int | None = None,
) -> Any:
    labels = {} if job_name is None else {"caravan.dev/job": job_name}
    labels["caravan.dev/task-group"] = name.rpartition("-")[2]
    return {
        "metadata": {
            "name": name,
            "generation": generation,
            "labels": labels,
            "managedFields": [
                {"manager": m, "operation": "Update", "fieldsV1": {"f:spec": {f: {} for f in fs}}}
                for m, fs in managers
            ],
        },
        "spec": {"replicas": replicas},
        "status": {
            "observedGeneration": generation if observed is None else observed,
            "replicas": replicas,
            "updatedReplicas": replicas,
            "availableReplicas": replicas,
        },
    }


class Told:
    """The Reconciler's side of DeploymentFeed, recorded."""

    def __init__(self) -> None:
        self.changes: list[tuple[Any, ...]] = []
        self.rollouts: list[tuple[str, str, str]] = []

    def deployment_changed(self, *args: Any, **kwargs: Any) -> None:
        self.changes.append(arguments(Reconciler.deployment_changed, *args, **kwargs))

    def rollout_moved(self, *args: Any, **kwargs: Any) -> None:
        job, rollout = arguments(Reconciler.rollout_moved, *args, **kwargs)
        self.rollouts.append((job, rollout.deployment, rollout.state))


def test_deployments_are_indexed_by_job_and_what_changed_them_is_told() -> None:
    told, index = Told(), DeploymentIndex()
    feed = DeploymentFeed(reconciler(told), index)
    ours = ("caravan", ["f:replicas", "f:template"])
    feed.listed({"web-front": deployment("web-front", "web", ours)})
    assert index.deployments_of("web") == [("web-front", "front")]
    assert [r.state for r in index.rollouts_of("web")] == ["complete"]
    # A hand-made scale: its manager is told, as drift.
    by_hand = ("kubectl", ["f:replicas"])
    feed.changed("web-front", deployment("web-front", "web", ours, by_hand, generation=2))
    # The API's write-through: its replicas are told, not drift.
    api = ("caravan-api", ["f:replicas"])
    feed.changed("web-front", deployment("web-front", "web", ours, api, generation=3, observed=2))
    assert told.changes == [
        ("web", "web-front", 1, False, None, None),
        ("web", "web-front", 2, False, "kubectl", None),
        ("web", "web-front", 3, False, None, 2),
    ]
    assert told.rollouts[-1] == ("web", "web-front", "progressing")
    # Deleted: told with its last generation, and forgotten.
    feed.changed("web-front", None)
    assert told.changes[-1] == ("web", "web-front", 3, True, None, None)
    assert index.deployments_of("web") == [] and index.rollouts_of("web") == []
    assert index.by_job == {} and index.owners == {}


def test_a_relist_tells_the_deployments_gone_and_a_label_change_moves_one() -> None:
    told, index = Told(), DeploymentIndex()
    feed = DeploymentFeed(reconciler(told), index)
    feed.listed({"web-a": deployment("web-a"), "web-b": deployment("web-b")})
    feed.changed("web-b", deployment("web-b", "api"))  # relabelled to another job
    assert index.deployments_of("web") == [("web-a", "a")]
    assert index.deployments_of("api") == [("web-b", "b")]
    feed.changed("web-b", deployment("web-b", None))  # no job label: not followed
    assert index.deployments_of("api") == [] and "web-b" not in index.owners
    told.changes.clear()
    feed.listed({})
    assert told.changes == [("web", "web-a", 1, True, None, None)]
    assert index.owners == {}


def test_the_store_tells_deployment_followers_with_the_bodies_it_holds() -> None:
    store = Store()
    follower = Recorded()
    store.follow(KIND_DEPLOYMENT, follower)
    store.apply_event(KIND_DEPLOYMENT, "ADDED", deployment("web-a"))
    store.end_relist(KIND_DEPLOYMENT, {"web-a"})
    store.apply_event(KIND_DEPLOYMENT, "ADDED", deployment("web-b"))
    store.end_relist(KIND_DEPLOYMENT, {"web-b"})  # a relist without web-a: gone
    assert follower.seen == [
        ("listed", ["web-a"]),
        ("changed", ("web-b", "web-b")),
        ("listed", ["web-b"]),
    ]
    assert set(store.deployment_bodies) == {"web-b"}


def test_a_follower_whose_loop_closed_never_breaks_the_store() -> None:
    loop = asyncio.new_event_loop()
    requests = Requests()
    follower = OnLoop(JobFeed(reconciler(requests)), loop)
    loop.close()  # the operator ended without unfollowing
    store = Store()
    store.end_relist(KIND_JOB, set())
    store.follow(KIND_JOB, follower)
    store.apply_event(KIND_JOB, "ADDED", job("a"))
    assert store.job_bodies["a"]["metadata"]["name"] == "a"
    assert requests.made == []
