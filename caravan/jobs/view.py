"""The jobs view of API.md, computed from a Job spec and its pods."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from caravan.jobs.spec import JobSpec
from caravan.jobs.summary import PodFacts, summarize


def job_status(spec: JobSpec, summaries: Iterable[Mapping[str, int]]) -> str:
    if spec.suspend:
        return "dead"
    return "running" if any(s.get("running", 0) > 0 for s in summaries) else "pending"


def job_view(spec: JobSpec, pods_by_group: Mapping[str, Iterable[PodFacts]]) -> dict[str, Any]:
    summaries = [summarize(pods_by_group.get(g.name, ())) for g in spec.task_groups]
    groups = [
        {
            "name": group.name,
            "count": spec.desired_count(group),
            "countInit": group.count_init,
            "countMax": group.count_max,
            "summary": summary,
        }
        for group, summary in zip(spec.task_groups, summaries, strict=True)
    ]
    return {
        "name": spec.name,
        "status": job_status(spec, summaries),
        "autostart": spec.autostart,
        # Genvid starts a byCluster job once per cluster; one installation serves one cluster.
        "byCluster": False,
        "taskGroups": groups,
    }
