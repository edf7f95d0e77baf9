"""Pure job logic: buckets, the view, count arithmetic."""

from __future__ import annotations

from typing import Any

import pytest

from caravan.jobs import counts
from caravan.jobs.spec import read_job, rescaled
from caravan.jobs.summary import PodFacts, pod_bucket, summarize
from caravan.jobs.view import job_view


def facts(**overrides: Any) -> PodFacts:
    base: dict[str, Any] = dict(
        name="p",
        job="web",
        group="g",
        phase="Pending",
        scheduled=False,
        ready=False,
        reason="",
        deleting=False,
        created="",
        containers=("main",),
        loggers="",
    )
    base.update(overrides)
    return PodFacts(**base)


@pytest.mark.parametrize(
    ("pod", "bucket"),
    [
        (facts(), "queued"),
        (facts(scheduled=True), "starting"),
        (facts(scheduled=True, phase="Running"), "starting"),
        (facts(scheduled=True, phase="Running", ready=True), "running"),
        (facts(scheduled=True, phase="Succeeded"), "complete"),
        (facts(scheduled=True, phase="Failed"), "failed"),
        (facts(scheduled=True, phase="Failed", reason="Evicted"), "lost"),
        (facts(scheduled=True, phase="Unknown"), "lost"),
        (facts(scheduled=True, phase="Running", reason="NodeLost"), "lost"),
    ],
)
def test_pod_bucket(pod: PodFacts, bucket: str) -> None:
    assert pod_bucket(pod) == bucket


def test_summary_has_every_bucket_in_api_order() -> None:
    summary = summarize([facts(), facts(scheduled=True, phase="Running", ready=True)])
    assert list(summary) == ["queued", "complete", "failed", "running", "starting", "lost"]
    assert summary == {
        "queued": 1,
        "complete": 0,
        "failed": 0,
        "running": 1,
        "starting": 0,
        "lost": 0,
    }


def body(suspend: bool = False, **group: Any) -> dict[str, Any]:
    g = {"name": "g", "countInit": 2, "countMax": 5, "template": {}}
    g.update(group)
    return {"metadata": {"name": "web"}, "spec": {"suspend": suspend, "taskGroups": [g]}}


def test_view_status_and_counts() -> None:
    running = facts(scheduled=True, phase="Running", ready=True)
    view = job_view(read_job(body(count=3)), {"g": [running]})
    assert view == {
        "name": "web",
        "status": "running",
        "autostart": True,
        "byCluster": False,
        "taskGroups": [
            {
                "name": "g",
                "count": 3,
                "countInit": 2,
                "countMax": 5,
                "summary": summarize([running], 3),
                "problems": [],
            }
        ],
    }
    # Two of the three wanted allocations have no pod yet: queued.
    assert view["taskGroups"][0]["summary"]["queued"] == 2
    assert job_view(read_job(body()), {})["status"] == "pending"
    assert job_view(read_job(body()), {})["taskGroups"][0]["count"] == 2  # absent: countInit
    stopped = job_view(read_job(body(suspend=True, count=3)), {"g": [running]})
    assert stopped["status"] == "dead"
    assert stopped["taskGroups"][0]["count"] == 0


@pytest.mark.parametrize(
    ("start", "delta", "expected"),
    [(2, 1, 3), (2, -1, 1), (2, -10, 0), (2, 10, 5), (4, 0, 0), (0, 1, 1)],
)
def test_count_delta_is_clamped(start: int, delta: int, expected: int) -> None:
    updated = counts.with_count_delta(body(count=start), "g", delta)
    assert updated["spec"]["taskGroups"][0]["count"] == expected


def test_count_delta_refuses_stopped_job_and_unknown_group() -> None:
    with pytest.raises(counts.JobStopped) as stopped:
        counts.with_count_delta(body(suspend=True), "g", 1)
    assert "is stopped" in stopped.value.message
    with pytest.raises(counts.NoSuchGroup) as unknown:
        counts.with_count_delta(body(), "nope", 1)
    assert '"nope"' in unknown.value.message


def test_start_resets_to_count_init_and_stop_suspends() -> None:
    stopped = counts.stopped(body(count=4))
    assert stopped["spec"]["suspend"] is True
    started = counts.started(stopped)
    assert started["spec"]["suspend"] is False
    assert started["spec"]["taskGroups"][0]["count"] == 2
    # starting a running job changes nothing
    assert counts.started(body(count=4)) == body(count=4)


def test_rescaled_names_the_deployments_whose_replicas_a_write_changes() -> None:
    groups: list[dict[str, Any]] = [
        {"name": "a", "count": 2, "countMax": 5},
        {"name": "b", "count": 1, "countMax": 5},
    ]
    two: dict[str, Any] = {"metadata": {"name": "web"}, "spec": {"taskGroups": groups}}
    assert rescaled(read_job(two), read_job(counts.with_count_delta(two, "a", 2))) == {"web-a": 4}
    assert rescaled(read_job(two), read_job(counts.stopped(two))) == {"web-a": 0, "web-b": 0}
    assert rescaled(read_job(two), read_job(two)) == {}
    # A group added by the write has no Deployment yet: the operator makes it.
    three = {**two, "spec": {"taskGroups": [*groups, {"name": "c"}]}}
    assert rescaled(read_job(two), read_job(three)) == {}
