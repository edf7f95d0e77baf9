"""Which summary bucket an allocation (pod) is in, and the per-group tallies."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

Bucket = Literal["queued", "starting", "running", "complete", "failed", "lost"]
BUCKETS: tuple[Bucket, ...] = ("queued", "complete", "failed", "running", "starting", "lost")

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


def summarize(pods: Iterable[PodFacts]) -> dict[str, int]:
    """Counts per bucket, every bucket present, in the order API.md shows them."""
    counts: dict[str, int] = dict.fromkeys(BUCKETS, 0)
    for pod in pods:
        counts[pod.bucket] += 1
    return counts
