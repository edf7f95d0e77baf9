"""Count arithmetic of the jobs routes, on plain Job bodies."""

from __future__ import annotations

import copy
from typing import Any

from caravan.errors import ConflictError, NotFoundError, quote


class NoSuchGroup(NotFoundError):
    """The job has no task group of that name."""


class JobStopped(ConflictError):
    """Counts change only while the job runs."""


def clamp(value: int, low: int, high: int) -> int:
    return max(low, min(high, value))


def _group(body: dict[str, Any], name: str) -> dict[str, Any]:
    for group in body.get("spec", {}).get("taskGroups") or []:
        if group.get("name") == name:
            return group  # type: ignore[no-any-return]
    job = quote(body["metadata"]["name"])
    raise NoSuchGroup(f"job {job} has no task group {quote(name)}")


def with_count_delta(body: dict[str, Any], group_name: str, delta: int) -> dict[str, Any]:
    """The body after `updatecounts`: new = clamp(current + delta, 0, countMax); 0 stops it."""
    if body.get("spec", {}).get("suspend"):
        raise JobStopped(f"job {quote(body['metadata']['name'])} is stopped; start it first")
    updated = copy.deepcopy(body)
    group = _group(updated, group_name)
    count_init = group.get("countInit", 1)
    count_max = group.get("countMax", count_init)
    current = group.get("count", count_init)
    group["count"] = 0 if delta == 0 else clamp(current + delta, 0, count_max)
    return updated


def started(body: dict[str, Any]) -> dict[str, Any]:
    """The body after `start`: every group back to countInit, running. Idempotent."""
    updated = copy.deepcopy(body)
    if not updated["spec"].get("suspend"):
        return updated  # starting a running job is a no-op
    updated["spec"]["suspend"] = False
    for group in updated["spec"].get("taskGroups") or []:
        group["count"] = group.get("countInit", 1)
    return updated


def stopped(body: dict[str, Any]) -> dict[str, Any]:
    """The body after `stop`: suspended, so every Deployment scales to 0. Idempotent."""
    updated = copy.deepcopy(body)
    updated["spec"]["suspend"] = True
    return updated
