"""What the job detail view shows of each allocation (pod): status, node, age, restarts.

Pure: reads a pod's JSON as the API server returns it. The store keeps only the facts the
jobs view needs (memory), so the detail view reads the pods themselves.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from caravan import labels
from caravan.jobs.summary import pod_facts
from caravan.logs.status import rfc3339_utc, status_word


def allocation_view(pod: Mapping[str, Any]) -> dict[str, Any]:
    facts = pod_facts(pod, labels.JOB_LABEL, labels.TASK_GROUP_LABEL, labels.LOGGERS_ANNOTATION)
    status = pod.get("status") or {}
    spec = pod.get("spec") or {}
    restarts: dict[str, int] = {}
    for container in status.get("containerStatuses") or []:
        restarts[str(container.get("name", ""))] = int(container.get("restartCount") or 0)
    return {
        "allocID": facts.name,
        "taskGroup": facts.group,
        "status": status_word(facts.bucket),
        "phase": facts.phase,
        "node": str(spec.get("nodeName") or ""),
        "createTime": rfc3339_utc(facts.created),
        "restarts": sum(restarts.values()),
        "tasks": [{"name": name, "restarts": restarts.get(name, 0)} for name in facts.containers],
    }


def allocation_views(pods: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Sorted by task group, then name: the order the detail view lists them in."""
    views = [allocation_view(p) for p in pods]
    return sorted(views, key=lambda v: (v["taskGroup"], v["allocID"]))
