"""Which summary bucket an allocation (pod) is in, and the per-group tallies."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from caravan.jobs.failures import DeploymentFacts, group_problems, interned_problem
from caravan.jobs.shapes import BUCKETS, AllocStatus, Bucket, Problem, Summary

# The seed's status words for the buckets: an allocation not yet running (not placed, or
# placed but not ready) is "pending".
STATUS_OF_BUCKET: Final[dict[Bucket, AllocStatus]] = {
    "queued": "pending",
    "starting": "pending",
    "running": "running",
    "complete": "complete",
    "failed": "failed",
    "lost": "lost",
}

# Reasons Kubernetes gives when a pod was taken away from a node rather than ending by itself.
_LOST_REASONS = frozenset({"Evicted", "NodeLost", "NodeAffinity", "Terminated", "Shutdown"})


@dataclass(frozen=True, slots=True)
class PodFacts:
    """The few facts of a pod the API and the operator need; small on purpose (memory)."""

    name: str
    job: str
    group: str
    phase: str
    scheduled: bool
    ready: bool
    reason: str
    deleting: bool
    created: str
    containers: tuple[str, ...]
    loggers: str  # raw JSON of the loggers annotation, "" when absent
    node: str = ""  # spec.nodeName, "" until scheduled
    revision: str = ""  # the config-revision annotation (operator/refresh.py), "" when absent
    # What keeps it from running, in Kubernetes' word and for a person (jobs.failures);
    # "" when nothing. Shared strings: the pods of a group usually fail alike.
    problem: str = ""
    problem_message: str = ""

    @property
    def bucket(self) -> Bucket:
        return pod_bucket(self)


def pod_facts(
    pod: Mapping[str, Any],
    job_label: str,
    group_label: str,
    loggers_key: str,
    revision_key: str = "",
) -> PodFacts:
    meta = pod.get("metadata") or {}
    labels = meta.get("labels") or {}
    status = pod.get("status") or {}
    conditions = {c.get("type"): c.get("status") for c in status.get("conditions") or []}
    spec = pod.get("spec") or {}
    problem, problem_message = interned_problem(pod)
    return PodFacts(
        name=str(meta.get("name", "")),
        job=str(labels.get(job_label, "")),
        group=str(labels.get(group_label, "")),
        phase=str(status.get("phase") or "Pending"),
        scheduled=bool(spec.get("nodeName")) or conditions.get("PodScheduled") == "True",
        ready=conditions.get("Ready") == "True",
        reason=str(status.get("reason") or ""),
        deleting=bool(meta.get("deletionTimestamp")),
        created=str(meta.get("creationTimestamp") or ""),
        containers=tuple(str(c.get("name", "")) for c in spec.get("containers") or []),
        loggers=str((meta.get("annotations") or {}).get(loggers_key, "")),
        node=sys.intern(str(spec.get("nodeName") or "")),
        # Interned: every pod carries one of very few revisions (memory at 10,000 pods).
        revision=sys.intern(str((meta.get("annotations") or {}).get(revision_key, ""))),
        problem=problem,
        problem_message=problem_message,
    )


def pod_bucket(pod: PodFacts) -> Bucket:
    if pod.phase == "Succeeded":
        return "complete"
    if pod.phase == "Unknown" or pod.reason in _LOST_REASONS:
        return "lost"
    if pod.phase == "Failed":
        return "failed"
    if not pod.scheduled:
        return "queued"
    if pod.phase == "Running" and pod.ready:
        return "running"
    return "starting"


def status_word(bucket: Bucket) -> AllocStatus:
    return STATUS_OF_BUCKET[bucket]


def summarize(pods: Iterable[PodFacts], desired: int = 0) -> Summary:
    """Counts per bucket, every bucket present, in the order of `BUCKETS`.

    Allocations wanted (`desired`) that have no pod at all (Kubernetes could not create
    them yet, or refused to) count as queued, as Nomad counts unplaced allocations.
    """
    counts: dict[str, int] = dict.fromkeys(BUCKETS, 0)
    active = 0
    for pod in pods:
        counts[pod.bucket] += 1
        active += _active(pod)
    counts["queued"] += max(0, desired - active)
    return counts  # type: ignore[return-value]  # every key of Summary, as ints


def _active(pod: PodFacts) -> bool:
    """Whether the pod stands for one of the wanted allocations, as a ReplicaSet counts
    its pods: not being deleted and not ended (an ended one gets replaced)."""
    return not pod.deleting and pod.phase not in ("Succeeded", "Failed")


def group_state(
    pods: Iterable[PodFacts], desired: int, deployment: DeploymentFacts | None = None
) -> tuple[Summary, list[Problem]]:
    """A task group's summary and problems, from its pods and its Deployment."""
    pods = list(pods)
    summary = summarize(pods, desired)
    active = sum(1 for p in pods if _active(p))
    problems = group_problems(
        ((p.problem, p.problem_message) for p in pods if not p.deleting),
        missing=max(0, desired - active),
        deployment=deployment,
        not_running=max(0, desired - summary["running"]),
    )
    return summary, problems
