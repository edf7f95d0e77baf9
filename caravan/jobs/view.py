"""The jobs view (`GET /v1/jobs` and one job), computed from a Job spec, its pods and its
Deployments."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from caravan.jobs.failures import DeploymentFacts
from caravan.jobs.shapes import JobStatus, JobView, Summary, TaskGroupView
from caravan.jobs.spec import JobSpec
from caravan.jobs.summary import PodFacts, group_state


def job_status(spec: JobSpec, summaries: Iterable[Summary]) -> JobStatus:
    """dead = stopped. A started job whose allocations all fail is not dead: Kubernetes
    keeps retrying them and the job runs once the cause is gone; its groups' problems
    and the Job's Degraded condition say what is wrong (docs/failures.md)."""
    if spec.suspend:
        return "dead"
    return "running" if any(s["running"] > 0 for s in summaries) else "pending"


def job_view(
    spec: JobSpec,
    pods_by_group: Mapping[str, Iterable[PodFacts]],
    deployments: Mapping[str, DeploymentFacts] | None = None,
) -> JobView:
    """`deployments`: the facts of the group's Deployment, by group name."""
    groups: list[TaskGroupView] = []
    for group in spec.task_groups:
        desired = spec.desired_count(group)
        summary, problems = group_state(
            pods_by_group.get(group.name, ()), desired, (deployments or {}).get(group.name)
        )
        groups.append(
            {
                "name": group.name,
                "count": desired,
                "countInit": group.count_init,
                "countMax": group.count_max,
                "summary": summary,
                "problems": problems,
            }
        )
    return {
        "name": spec.name,
        "status": job_status(spec, [g["summary"] for g in groups]),
        "autostart": spec.autostart,
        # Genvid starts a byCluster job once per cluster; one installation serves one cluster.
        "byCluster": False,
        "taskGroups": groups,
    }
