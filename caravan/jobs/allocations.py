"""What the job detail view shows of each allocation (pod): status, node, age, restarts,
and per task its state, reason and exit codes.

Pure: reads a pod's JSON as the API server returns it. The store keeps only the facts the
jobs view needs (memory), so the detail view reads the pods themselves.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from caravan import labels
from caravan.jobs.failures import pod_problem, task_views
from caravan.jobs.shapes import AllocationView
from caravan.jobs.summary import pod_facts, status_word
from caravan.jobs.times import rfc3339_utc


def allocation_view(pod: Mapping[str, Any]) -> AllocationView:
    facts = pod_facts(pod, labels.JOB_LABEL, labels.TASK_GROUP_LABEL, labels.LOGGERS_ANNOTATION)
    spec = pod.get("spec") or {}
    tasks = task_views(pod)
    reason, message = pod_problem(pod)
    return {
        "allocID": facts.name,
        "taskGroup": facts.group,
        "status": status_word(facts.bucket),
        "phase": facts.phase,
        "node": str(spec.get("nodeName") or ""),
        "createTime": rfc3339_utc(facts.created),
        "restarts": sum(t["restarts"] for t in tasks),
        "reason": reason,
        "message": message,
        "tasks": tasks,
    }


def allocation_views(pods: list[Mapping[str, Any]]) -> list[AllocationView]:
    """Sorted by task group, then name: the order the detail view lists them in."""
    views = [allocation_view(p) for p in pods]
    return sorted(views, key=lambda v: (v["taskGroup"], v["allocID"]))
