"""Pure logic of job definitions and dependency ordering."""

from __future__ import annotations

from typing import Any

from caravan.jobs import definitions
from caravan.jobs.order import find_cycle, start_order, stop_order
from caravan.jobs.spec import read_job
from caravan.jobs.view import job_view


def job(suspend: bool = False, **spec: Any) -> dict[str, Any]:
    groups = spec.pop(
        "groups", [{"name": "g", "countInit": 1, "countMax": 5, "template": {"spec": {}}}]
    )
    return {
        "metadata": {"name": "web", "resourceVersion": "7"},
        "spec": {"suspend": suspend, "taskGroups": groups, **spec},
    }


def definition(count_init: int = 1, count_max: int = 5, **top: Any) -> dict[str, Any]:
    return {
        "autostart": True,
        "byCluster": False,
        "clusterCategories": [],
        "dependencies": [],
        "template": {
            "taskGroups": [
                {"name": "g", "countInit": count_init, "countMax": count_max, "template": {}}
            ]
        },
        **top,
    }


def test_start_order_puts_dependencies_first_and_is_stable() -> None:
    graph = {"web": ["db", "cache"], "db": [], "cache": ["db"], "admin": ["web"], "solo": []}
    assert start_order(graph) == ["db", "solo", "cache", "web", "admin"]
    assert stop_order(graph) == ["admin", "web", "cache", "solo", "db"]


def test_start_order_ignores_outside_names_and_breaks_cycles() -> None:
    assert start_order({"a": ["nowhere"], "b": ["a"]}) == ["a", "b"]
    order = start_order({"a": ["b"], "b": ["a"], "c": []})
    assert order == ["c", "a", "b"]


def test_find_cycle() -> None:
    assert find_cycle({"a": ["b"], "b": ["c"], "c": []}) is None
    assert find_cycle({"a": ["b"], "b": ["c"], "c": ["a"]}) == ["a", "b", "c", "a"]
    assert find_cycle({"x": ["x"]}) == ["x", "x"]


def test_view_has_autostart_and_by_cluster() -> None:
    view = job_view(read_job(job(autostart=False, dependencies=["db"])), {})
    assert view["autostart"] is False and view["byCluster"] is False
    assert read_job(job()).autostart is True  # absent: the CRD's default
    assert read_job(job(dependencies=["db"])).dependencies == ("db",)


def test_definition_of_a_kubectl_job() -> None:
    d = definitions.definition_of(job(autostart=False, dependencies=["db"]))
    assert d == {
        "autostart": False,
        "byCluster": False,
        "clusterCategories": [],
        "dependencies": ["db"],
        "template": {
            "taskGroups": [{"name": "g", "countInit": 1, "countMax": 5, "template": {"spec": {}}}]
        },
    }


def test_new_jobs_are_created_stopped() -> None:
    body = definitions.with_definition(definitions.new_job("web"), definition())
    assert body["spec"]["suspend"] is True
    assert body["kind"] == "Job" and "count" not in body["spec"]["taskGroups"][0]


def test_replacing_a_running_job_preserves_counts_clamped() -> None:
    running = job(groups=[{"name": "g", "countInit": 1, "count": 4, "countMax": 5, "template": {}}])
    kept = definitions.with_definition(running, definition(count_max=10))
    assert kept["spec"]["taskGroups"][0]["count"] == 4
    clamped = definitions.with_definition(running, definition(count_max=2))
    assert clamped["spec"]["taskGroups"][0]["count"] == 2
    assert kept["metadata"]["resourceVersion"] == "7"  # the rest of the object is kept
    stopped = definitions.with_definition(job(suspend=True), definition())
    assert "count" not in stopped["spec"]["taskGroups"][0]


def test_what_needs_force() -> None:
    running = job()
    same = definitions.with_definition(running, definitions.definition_of(running))
    assert not definitions.changes_definition(running, same)
    flags = definitions.with_definition(
        running, {**definitions.definition_of(running), "autostart": False}
    )
    assert definitions.changes_definition(running, flags)
    assert not definitions.changes_what_runs(running, flags)  # no force needed
    bigger = definitions.with_definition(running, definition(count_max=9))
    assert definitions.changes_what_runs(running, bigger)
    assert definitions.is_running(running) and not definitions.is_running(job(suspend=True))


def test_problems_a_schema_cannot_say() -> None:
    assert definitions.problems("web", definition()) == []
    bad = definition(byCluster=True, clusterCategories=["x"])
    fields = [p.field for p in definitions.problems("web", bad, "web")]
    assert fields == ["web.byCluster", "web.clusterCategories"]
    assert not definitions.defined({"metadata": {"deletionTimestamp": "now"}})


def test_rules_across_jobs() -> None:
    graph = {"a": ["b"], "b": ["a"], "c": ["nowhere"], "d": ["c"]}
    found = definitions.dependency_problems(graph, ["c", "d"])
    assert [(p.field, p.message) for p in found] == [
        ("c.dependencies", "spec.dependencies names job 'nowhere', which does not exist"),
        ("a.dependencies", "spec.dependencies make a dependency cycle: a -> b -> a"),
    ]
    assert definitions.dependency_problems({"a": [], "b": ["a"]}, ["a", "b"]) == []
    problem = definitions.dependency_problem_of
    assert problem("b", graph) == "spec.dependencies make a dependency cycle: b -> a -> b"
    assert problem("c", graph) == "spec.dependencies names job 'nowhere', which does not exist"
    assert problem("d", graph) is None  # its dependency is there; what c lacks is c's problem
    assert problem("x", {"x": ["y"], "y": ["z"], "z": ["y"]}) is None  # not on the cycle
    assert problem("x", {"x": ["x"]}) == "spec.dependencies make a dependency cycle: x -> x"


def test_trial_deployment_carries_the_template_and_our_labels() -> None:
    trial = definitions.trial_deployment(
        "web", {"name": "g", "template": {"metadata": {"labels": {"a": "b"}}, "spec": {}}}
    )
    own = {"caravan.dev/job": "web", "caravan.dev/task-group": "g"}
    assert trial["metadata"] == {"generateName": "web-g-", "labels": own}
    assert trial["spec"]["selector"]["matchLabels"] == own
    assert trial["spec"]["template"]["metadata"]["labels"] == {"a": "b", **own}
    assert "ownerReferences" not in trial["metadata"]
    bare = definitions.trial_deployment("web", {"name": "g", "template": {"metadata": None}})
    assert bare["spec"]["template"]["metadata"]["labels"] == own
