"""Failure facts, problems, conditions, activity records and restarts: the pure parts."""

from __future__ import annotations

import dataclasses
import json
import pathlib
from datetime import UTC, datetime
from typing import Any, get_type_hints

import pytest
import yaml
from rich.console import Console

from caravan import labels
from caravan.client.failures import age, allocations_table
from caravan.jobs import counts
from caravan.jobs.activity import activity_items, event_record, owner_key
from caravan.jobs.allocations import allocation_view
from caravan.jobs.changes import job_changes
from caravan.jobs.failures import deployment_facts, pod_problem
from caravan.jobs.restart import restart_patch
from caravan.jobs.shapes import BUCKETS, Summary
from caravan.jobs.spec import read_job
from caravan.jobs.summary import pod_facts
from caravan.jobs.view import job_view
from caravan.operator.deployments import desired_deployment
from caravan.operator.drift import foreign_spec_manager
from caravan.operator.status import job_status_body
from caravan.store import Store
from caravan.store.activity import ActivityLog
from caravan.store.store import KIND_DEPLOYMENT, KIND_EVENT, KIND_JOB

CRD = pathlib.Path(__file__).parents[2] / "charts/caravan/files/crds/jobs.caravan.dev.yaml"
JOB = labels.JOB_LABEL
GROUP = labels.TASK_GROUP_LABEL


def pod(
    name: str = "web-g-abc12-xyz34",
    group: str = "g",
    containers: list[dict[str, Any]] | None = None,
    conditions: list[dict[str, Any]] | None = None,
    phase: str = "Running",
    node: str = "n1",
    limits: dict[str, str] | None = None,
    **status: Any,
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "containers": [{"name": "main", "resources": {"limits": limits or {}}}],
    }
    if node:
        spec["nodeName"] = node
    return {
        "metadata": {
            "name": name,
            "labels": {JOB: "web", GROUP: group},
            "creationTimestamp": "2026-01-01T00:00:00Z",
        },
        "spec": spec,
        "status": {
            "phase": phase,
            "conditions": conditions or [{"type": "PodScheduled", "status": "True"}],
            "containerStatuses": containers or [],
            **status,
        },
    }


def crash_looping(code: int = 3, reason: str = "Error", restarts: int = 4) -> dict[str, Any]:
    return {
        "name": "main",
        "restartCount": restarts,
        "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 40s"}},
        "lastState": {
            "terminated": {
                "reason": reason,
                "exitCode": code,
                "finishedAt": "2026-01-01T00:01:00Z",
                "message": "starting\nboom: no config\n",
            }
        },
    }


def test_summary_keys_are_the_buckets_in_their_one_order() -> None:
    assert tuple(get_type_hints(Summary)) == BUCKETS
    assert BUCKETS == ("queued", "complete", "failed", "running", "starting", "lost")


def test_a_crash_loop_says_the_exit_code_and_the_last_line() -> None:
    reason, message = pod_problem(pod(containers=[crash_looping()]))
    assert reason == "CrashLoopBackOff"
    assert "task main exited with code 3: boom: no config" in message


def test_a_task_that_ended_again_after_restarts_is_a_crash_loop() -> None:
    ended = {
        "name": "main",
        "restartCount": 2,
        "state": {"terminated": {"reason": "Error", "exitCode": 3}},
    }
    assert pod_problem(pod(containers=[ended]))[0] == "CrashLoopBackOff"
    first = {**ended, "restartCount": 0}
    assert pod_problem(pod(containers=[first])) == ("Error", "task main exited with code 3")


def test_oom_killed_is_named_with_the_limit() -> None:
    looping = crash_looping(code=137, reason="OOMKilled")
    reason, message = pod_problem(pod(containers=[looping], limits={"memory": "64Mi"}))
    assert reason == "OOMKilled"
    assert "memory limit of 64Mi" in message


def test_image_pull_and_unschedulable_and_failed_pods() -> None:
    pulling = {
        "name": "main",
        "state": {"waiting": {"reason": "ErrImagePull", "message": 'pull "nope:1": not found'}},
    }
    assert pod_problem(pod(containers=[pulling])) == (
        "ErrImagePull",
        'task main: pull "nope:1": not found',
    )
    unschedulable = pod(
        node="",
        phase="Pending",
        conditions=[
            {
                "type": "PodScheduled",
                "status": "False",
                "reason": "Unschedulable",
                "message": "0/3 nodes are available: 1 Insufficient cpu.",
            }
        ],
    )
    assert pod_problem(unschedulable) == (
        "Unschedulable",
        "0/3 nodes are available: 1 Insufficient cpu.",
    )
    evicted = pod(phase="Failed", reason="Evicted", message="low on memory")
    assert pod_problem(evicted) == ("Evicted", "low on memory")


def test_healthy_starting_and_deleting_pods_have_no_problem() -> None:
    running = {"name": "main", "state": {"running": {}}, "restartCount": 0}
    creating = {"name": "main", "state": {"waiting": {"reason": "ContainerCreating"}}}
    assert pod_problem(pod(containers=[running])) == ("", "")
    assert pod_problem(pod(containers=[creating])) == ("", "")
    going = pod(containers=[crash_looping()])
    going["metadata"]["deletionTimestamp"] = "2026-01-01T00:02:00Z"
    assert pod_problem(going) == ("", "")


def test_allocation_view_has_task_state_exit_codes_and_last_termination() -> None:
    view = allocation_view(pod(containers=[crash_looping()]))
    assert view["reason"] == "CrashLoopBackOff"
    assert view["restarts"] == 4
    task = view["tasks"][0]
    assert task["state"] == "waiting"
    assert task["reason"] == "CrashLoopBackOff"
    assert task["exitCode"] == 3
    assert task["lastTermination"] == {
        "reason": "Error",
        "exitCode": 3,
        "finishedAt": "2026-01-01T00:01:00Z",
    }
    running = allocation_view(pod(containers=[{"name": "main", "state": {"running": {}}}]))
    assert running["tasks"][0]["state"] == "running"
    assert running["tasks"][0]["exitCode"] is None
    assert running["reason"] == ""


def deployment(conditions: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "metadata": {"name": "web-g", "labels": {JOB: "web", GROUP: "g"}},
        "status": {"conditions": conditions},
    }


def job(count: int = 2, suspend: bool = False, **meta: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "web", "uid": "u1", **meta},
        "spec": {
            "suspend": suspend,
            "taskGroups": [
                {"name": "g", "count": count, "countInit": 1, "countMax": 5, "template": {}},
                {"name": "h", "count": 1, "countInit": 1, "countMax": 5, "template": {}},
            ],
        },
    }


def facts_of(*pods: dict[str, Any]) -> list[Any]:
    return [pod_facts(p, JOB, GROUP, labels.LOGGERS_ANNOTATION) for p in pods]


def test_pods_kubernetes_refused_to_create_count_queued_with_failed_create() -> None:
    refused = deployment_facts(
        deployment(
            [
                {
                    "type": "ReplicaFailure",
                    "status": "True",
                    "reason": "FailedCreate",
                    "message": 'pods "web-g-x" is forbidden: no PriorityClass with name nope',
                }
            ]
        ),
        JOB,
        GROUP,
    )
    view = job_view(read_job(job(count=2)), {}, {"g": refused})
    group = view["taskGroups"][0]
    assert group["summary"]["queued"] == 2
    assert group["problems"] == [
        {
            "reason": "FailedCreate",
            "message": 'pods "web-g-x" is forbidden: no PriorityClass with name nope',
            "allocations": 2,
        }
    ]
    assert view["status"] == "pending"


def test_problems_group_by_reason_and_a_healthy_group_has_none() -> None:
    ok = pod(name="web-h-abc12-aaaaa", group="h", containers=[{"name": "main", "state": {}}])
    ok["status"]["conditions"].append({"type": "Ready", "status": "True"})
    crashing = [pod(name=f"web-g-abc12-{i}aaaa", containers=[crash_looping()]) for i in range(2)]
    pods = facts_of(ok, *crashing)
    view = job_view(read_job(job(count=2)), {"g": pods[1:], "h": pods[:1]})
    g, h = view["taskGroups"]
    assert [(p["reason"], p["allocations"]) for p in g["problems"]] == [("CrashLoopBackOff", 2)]
    assert h["problems"] == []
    # dead means stopped: a started job whose allocations all fail is not dead...
    assert view["status"] == "running"  # (h runs)
    only_crashing = job_view(read_job(job(count=2)), {"g": pods[1:]})
    assert only_crashing["status"] == "pending"
    # ... and a stopped one is, with nothing left to report.
    stopped = job_view(read_job(job(count=2, suspend=True)), {})
    assert stopped["status"] == "dead"
    assert all(grp["problems"] == [] for grp in stopped["taskGroups"])


def test_job_status_has_available_and_degraded_conditions_and_a_problem_line() -> None:
    crashing = facts_of(pod(containers=[crash_looping()]))
    status = job_status_body(read_job(job(count=1)), {"g": crashing}, 7, now="T")
    conditions = {c["type"]: c for c in status["conditions"]}
    assert conditions["Available"]["status"] == "False"
    assert conditions["Degraded"]["status"] == "True"
    assert conditions["Degraded"]["reason"] == "CrashLoopBackOff"
    assert "g: CrashLoopBackOff: task main exited with code 3" in conditions["Degraded"]["message"]
    assert conditions["Degraded"]["observedGeneration"] == 7
    assert status["problem"] == "CrashLoopBackOff in g"
    healthy = job_status_body(read_job(job(count=0)), {}, 8, now="T")
    healthy_conditions = {c["type"]: c for c in healthy["conditions"]}
    assert healthy_conditions["Degraded"]["status"] == "False"
    assert healthy["problem"] == ""


def event(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "metadata": {"name": "e1", "creationTimestamp": "2026-01-01T00:00:00Z"},
        "regarding": {"kind": "Pod", "name": "web-g-abc12-xyz34"},
        "reason": "BackOff",
        "note": "Back-off restarting failed container",
        "type": "Warning",
        "deprecatedLastTimestamp": "2026-01-01T00:00:05Z",
        "deprecatedCount": 3,
    }
    base.update(fields)
    return base


def test_event_records_tie_events_to_jobs_by_the_names_kubernetes_gives() -> None:
    assert owner_key("Job", "caravan.dev/v1alpha1", "web") == ("job", "web")
    assert owner_key("Job", "batch/v1", "web") is None
    assert owner_key("Deployment", "apps/v1", "web-g") == ("deploy", "web-g")
    assert owner_key("ReplicaSet", "apps/v1", "web-g-7d9f8") == ("deploy", "web-g")
    assert owner_key("Pod", "v1", "web-g-7d9f8-x2x4z") == ("deploy", "web-g")
    record = event_record(event())
    assert record is not None
    assert (record.time, record.count, record.reason) == ("2026-01-01T00:00:05Z", 3, "BackOff")
    series = event_record(event(series={"count": 5, "lastObservedTime": "2026-01-01T00:00:09.5Z"}))
    assert series is not None and (series.count, series.time) == (5, "2026-01-01T00:00:09.500000Z")


def test_activity_orders_one_second_by_storage_whatever_the_precision() -> None:
    # The scheduler writes microseconds, the kubelet whole seconds: the pod's Started
    # (stamped 00:00:05, stored later) must not come before its Scheduled (00:00:05.044).
    scheduled = event_record(
        event(
            metadata={"name": "s", "resourceVersion": "100"},
            reason="Scheduled",
            type="Normal",
            deprecatedLastTimestamp=None,
            deprecatedCount=None,
            eventTime="2026-01-01T00:00:05.044000Z",
        )
    )
    started = event_record(
        event(metadata={"name": "t", "resourceVersion": "104"}, reason="Started", type="Normal")
    )
    earlier = event_record(event(metadata={"name": "b", "resourceVersion": "200"}))
    assert scheduled is not None and started is not None and earlier is not None
    earlier = dataclasses.replace(earlier, when=earlier.when - 1)
    items = activity_items([started, scheduled, earlier], {"web-g": "g"})
    assert [i["reason"] for i in items] == ["BackOff", "Scheduled", "Started"]


def test_activity_log_is_bounded_and_wakes_only_the_job_concerned() -> None:
    clock = [1767225600.0 + 10]  # 2026-01-01T00:00:10Z
    owners = {"web-g": "web", "api-g": "api"}
    log = ActivityLog(owner_of_deployment=owners.get, max_events=3, clock=lambda: clock[0])
    web, api = log.waiters("web"), log.waiters("api")
    log.apply("ADDED", event())
    assert (web.index, api.index) == (2, 1)
    job_event = event(
        metadata={"name": "e2"},
        regarding={"kind": "Job", "apiVersion": "caravan.dev/v1alpha1", "name": "web"},
        reason="Scaled",
        type="Normal",
        note="task group g scaled from 1 to 2",
        deprecatedLastTimestamp=None,
        eventTime="2026-01-01T00:00:01.000000Z",
    )
    log.apply("ADDED", job_event)
    items = log.activity("web", {"web-g": "g"})["items"]
    # Oldest first: the Scaled Event happened before the pod's last BackOff.
    assert [(i["reason"], i["object"], i["count"]) for i in items] == [
        ("Scaled", "job", 3),
        ("BackOff", "alloc/web-g-abc12-xyz34", 3),
    ]
    for n in range(3, 6):
        log.apply("ADDED", event(metadata={"name": f"e{n}"}))
    assert len(log) == 3  # the oldest arrivals went
    clock[0] += 7200  # two hours later: everything is past the age bound
    assert log.activity("web", {"web-g": "g"}) == {"items": []}
    log.apply("DELETED", event(metadata={"name": "e5"}))


def test_restart_patch_refuses_stopped_jobs_and_unknown_groups() -> None:
    patch = restart_patch(job(), None, "T1")
    written = json.loads(patch["metadata"]["annotations"][labels.RESTARTED_AT_ANNOTATION])
    assert written == {"g": "T1", "h": "T1"}
    body = job(annotations={labels.RESTARTED_AT_ANNOTATION: json.dumps(written)})
    again = restart_patch(body, "h", "T2")
    assert json.loads(again["metadata"]["annotations"][labels.RESTARTED_AT_ANNOTATION]) == {
        "g": "T1",
        "h": "T2",
    }
    with pytest.raises(counts.JobStopped):
        restart_patch(job(suspend=True), None, "T")
    with pytest.raises(counts.NoSuchGroup):
        restart_patch(job(), "nope", "T")


def test_the_restart_time_reaches_only_its_groups_pod_template() -> None:
    body = job(annotations={labels.RESTARTED_AT_ANNOTATION: json.dumps({"g": "T1"})})
    spec = read_job(body)
    g, h = (desired_deployment(body, spec, grp) for grp in spec.task_groups)
    assert g["spec"]["template"]["metadata"]["annotations"] == {
        labels.RESTARTED_AT_ANNOTATION: "T1"
    }
    assert "annotations" not in h["spec"]["template"]["metadata"]


def test_job_changes_name_the_caller() -> None:
    before = read_job(job(count=1))
    scaled = read_job(counts.with_count_delta(job(count=1), "g", 2))
    [change] = job_changes(before, scaled, "alice")
    assert (change.reason, change.note) == ("Scaled", "task group g scaled from 1 to 3 by alice")
    [stop] = job_changes(before, read_job(counts.stopped(job())), None)
    assert stop.reason == "Stopped" and " by " not in stop.note
    [start] = job_changes(read_job(job(suspend=True)), before, "bob")
    assert start.reason == "Started" and start.note.endswith("by bob: g 1, h 1")


def test_a_foreign_field_manager_of_the_spec_is_drift() -> None:
    def managed(*entries: dict[str, Any]) -> dict[str, Any]:
        return {"metadata": {"managedFields": list(entries)}}

    ours = {"manager": "caravan", "operation": "Apply", "fieldsV1": {"f:spec": {}}}
    write_through = {"manager": "caravan-api", "operation": "Update", "fieldsV1": {"f:spec": {}}}
    controller = {
        "manager": "kube-controller-manager",
        "operation": "Update",
        "fieldsV1": {"f:metadata": {}},
    }
    status = {"manager": "x", "subresource": "status", "fieldsV1": {"f:spec": {}}}
    assert foreign_spec_manager(managed(ours, write_through, controller, status)) is None
    scale = {"manager": "kubectl", "subresource": "scale", "fieldsV1": {"f:spec": {}}}
    assert foreign_spec_manager(managed(ours, scale)) == "kubectl"


def test_the_store_feeds_deployment_facts_to_the_view_and_events_to_the_activity() -> None:
    store = Store()
    store.apply_event(KIND_JOB, "ADDED", job(count=1))
    refused = deployment(
        [{"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate", "message": "no"}]
    )
    store.apply_event(KIND_DEPLOYMENT, "ADDED", refused)
    view = json.loads(store.job_json("web") or b"")
    assert view["taskGroups"][0]["problems"] == [
        {"reason": "FailedCreate", "message": "no", "allocations": 1}
    ]
    store.apply_event(KIND_DEPLOYMENT, "DELETED", refused)
    assert json.loads(store.job_json("web") or b"")["taskGroups"][0]["problems"] == []

    index = store.activity_waiters("web").index
    recent = event(deprecatedLastTimestamp=None, eventTime=None)
    recent["metadata"]["creationTimestamp"] = "2999-01-01T00:00:00Z"
    recent["regarding"]["name"] = "web-g-abc12-xyz34"
    store.apply_event(KIND_EVENT, "ADDED", recent)
    assert store.activity_waiters("web").index == index + 1
    activity = store.activity("web")
    assert activity is not None
    assert [i["object"] for i in activity["items"]] == ["alloc/web-g-abc12-xyz34"]
    assert store.activity("nope") is None


def test_kubectl_get_cjob_shows_the_problem_column() -> None:
    crd = yaml.safe_load(CRD.read_text())
    columns = {c["name"]: c for c in crd["spec"]["versions"][0]["additionalPrinterColumns"]}
    assert columns["Problem"]["jsonPath"] == ".status.problem"
    assert "priority" not in columns["Problem"]  # shown by default


def test_the_alloc_command_shows_reason_exit_code_and_age() -> None:
    now = datetime(2026, 1, 1, 0, 5, tzinfo=UTC)
    assert [age(t, now) for t in ("2026-01-01T00:04:15Z", "2026-01-01T00:00:00Z", "")] == [
        "45s",
        "5m",
        "",
    ]
    console = Console(width=300, record=True)
    console.print(allocations_table([allocation_view(pod(containers=[crash_looping()]))]))
    text = console.export_text()
    assert "CrashLoopBackOff: task main exited with code 3" in text
    assert " 3 " in text and " 4 " in text  # the exit code, the restarts
    # A long pull error is cut in its cell: every other column stays on the line.
    pulling = pod(containers=[crash_looping()])
    pulling["status"]["containerStatuses"][0]["state"] = {
        "waiting": {"reason": "ErrImagePull", "message": "failed to pull and unpack " * 20}
    }
    console = Console(width=200, record=True)
    console.print(allocations_table([allocation_view(pulling)]))
    header, row = console.export_text().splitlines()[:2]
    assert header.split() == [
        "ALLOC",
        "GROUP",
        "STATUS",
        "REASON",
        "EXIT",
        "CODE",
        "RESTARTS",
        "NODE",
        "AGE",
    ]
    assert "ErrImagePull: " in row and "…" in row
