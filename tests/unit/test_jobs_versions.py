"""Pure logic of job versions (ControllerRevision objects) and plans (dry-run diffs)."""

from __future__ import annotations

import copy
from typing import Any

from caravan.jobs import plans, versions
from caravan.jobs.definitions import definition_of

UID = "0123456789abcdef"


def job(
    image: str = "app:1",
    count: int | None = None,
    count_max: int = 5,
    suspend: bool = False,
    **spec: Any,
) -> dict[str, Any]:
    group: dict[str, Any] = {
        "name": "web",
        "countInit": 1,
        "countMax": count_max,
        "template": {"spec": {"containers": [{"name": "main", "image": image}]}},
    }
    if count is not None:
        group["count"] = count
    return {
        "metadata": {"name": "front", "uid": UID, "generation": 1},
        "spec": {"suspend": suspend, "taskGroups": [group], **spec},
    }


def stored(body: dict[str, Any], number: int, change: str = "") -> dict[str, Any]:
    """A ControllerRevision as the apiserver answers it."""
    revision = versions.controller_revision(body, number, change)
    revision["metadata"]["creationTimestamp"] = f"2026-12-05T03:0{number}:00Z"
    return revision


def test_controller_revision_is_owned_by_the_job_and_holds_its_definition() -> None:
    revision = versions.controller_revision(job(), 3, "created")
    meta = revision["metadata"]
    assert revision["kind"] == "ControllerRevision" and revision["revision"] == 3
    assert revision["data"] == definition_of(job())
    owner = meta["ownerReferences"][0]
    assert owner["uid"] == UID and owner["controller"] is True and owner["kind"] == "Job"
    assert meta["labels"]["caravan.dev/job"] == "front"
    assert meta["name"] == "front-01234567-3"
    read = versions.read_revision(stored(job(), 3, "created"))
    assert read.summary() == {"version": 3, "time": "2026-12-05T03:03:00Z", "change": "created"}
    assert read.detail()["definition"] == definition_of(job())


def test_history_is_newest_first_and_only_this_jobs() -> None:
    other = job()
    other["metadata"]["uid"] = "ffffffffffff"
    found = versions.history([stored(job(), 1), stored(job(), 2), stored(other, 7)], UID)
    assert [v.number for v in found] == [2, 1]


def test_first_record_is_version_one() -> None:
    plan = versions.plan_record(job(), [])
    assert plan.create is not None and plan.current == 1 and plan.delete == ()
    assert plan.create["metadata"]["annotations"][versions.CHANGE_ANNOTATION] == "created"


def test_counts_and_suspend_make_no_version() -> None:
    history = versions.history([stored(job(), 1)], UID)
    for body in (job(count=4), job(suspend=True), job(count=0, suspend=True)):
        plan = versions.plan_record(body, history)
        assert plan.create is None and plan.current == 1


def test_definition_changes_make_a_version_with_a_one_line_change() -> None:
    history = versions.history([stored(job(), 1)], UID)
    plan = versions.plan_record(job(image="app:2", count_max=9, autostart=False), history)
    assert plan.create is not None and plan.current == 2
    change = plan.create["metadata"]["annotations"][versions.CHANGE_ANNOTATION]
    assert "web.countMax 5 -> 9" in change
    assert "web.template (spec.containers[0].image)" in change
    assert "autostart true -> false" in change
    assert "\n" not in change


def test_going_back_is_a_new_version_that_says_so() -> None:
    history = versions.history([stored(job(image="app:2"), 2), stored(job(), 1)], UID)
    plan = versions.plan_record(job(), history)
    assert plan.create is not None and plan.current == 3
    assert plan.create["metadata"]["annotations"][versions.CHANGE_ANNOTATION].startswith(
        "back to version 1: "
    )


def test_history_limit_trims_the_oldest_and_keeps_the_current() -> None:
    history = versions.history([stored(job(image=f"app:{n}"), n) for n in (1, 2, 3)], UID)
    plan = versions.plan_record(job(image="app:4", revisionHistoryLimit=2), history)
    assert plan.current == 4
    assert plan.delete == ("front-01234567-2", "front-01234567-1")
    same = versions.plan_record(job(image="app:3", revisionHistoryLimit=1), history)
    assert same.create is None and same.delete == ("front-01234567-2", "front-01234567-1")
    assert versions.history_limit(job()) == 10


def test_describe_change_groups_added_removed() -> None:
    before = definition_of(job())
    after = copy.deepcopy(before)
    after["template"]["taskGroups"][0]["name"] = "api"
    after["dependencies"] = ["db"]
    text = versions.describe_change(before, after)
    assert "group api added" in text and "group web removed" in text
    assert "dependencies [] -> [db]" in text


def test_unified_diff_names_the_changed_fields() -> None:
    diff = versions.unified_diff(
        definition_of(job()), definition_of(job(image="app:2")), "front@1", "front@2"
    )
    assert diff.startswith("--- front@1\n+++ front@2\n")
    assert "-        - image: app:1\n" in diff and "+        - image: app:2\n" in diff
    assert versions.unified_diff(definition_of(job()), definition_of(job()), "a", "b") == ""


def test_plans() -> None:
    create = plans.plan_job("front", None, job())
    assert create.action == "create" and not create.restarts_allocations
    assert "+autostart: true" in create.diff
    same = plans.plan_job("front", job(count=3), job(count=2))
    assert same.to_json() == {"action": "unchanged", "diff": "", "restartsAllocations": False}
    image = plans.plan_job("front", job(), job(image="app:2"))
    assert image.action == "replace" and image.restarts_allocations
    assert "image: app:2" in image.diff
    stopped = plans.plan_job("front", job(suspend=True), job(image="app:2", suspend=True))
    assert stopped.action == "replace" and not stopped.restarts_allocations
    ceiling = plans.plan_job("front", job(), job(count_max=9))
    assert ceiling.action == "replace" and not ceiling.restarts_allocations
    gone = plans.plan_job("front", job(), None)
    assert gone.action == "delete" and gone.restarts_allocations
    assert "-autostart: true" in gone.diff


def test_rollout_policy_defaults_are_safe_and_reach_the_deployment() -> None:
    from caravan.jobs.spec import read_job
    from caravan.operator.deployments import desired_deployment

    body = job()
    spec = read_job(body)
    deployment = desired_deployment(body, spec, spec.task_groups[0])["spec"]
    assert deployment["minReadySeconds"] == 10
    assert deployment["progressDeadlineSeconds"] == 300
    assert deployment["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}
    assert spec.task_groups[0].rollout.auto_revert is False
    body["spec"]["taskGroups"][0]["rollout"] = {"minHealthySeconds": 3, "autoRevert": True}
    spec = read_job(body)
    deployment = desired_deployment(body, spec, spec.task_groups[0])["spec"]
    assert deployment["minReadySeconds"] == 3 and spec.task_groups[0].rollout.auto_revert
    # The policy is part of the definition (a change of it is a version) only when set.
    assert "rollout" not in definition_of(job())["template"]["taskGroups"][0]
    assert definition_of(body)["template"]["taskGroups"][0]["rollout"]["autoRevert"] is True
