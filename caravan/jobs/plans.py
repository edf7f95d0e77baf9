"""Plans: what writing job definitions would do, before anything is written.

Nomad's `job plan`: for each job, the action (create, replace, delete or unchanged), the
unified diff of its definition, and whether running allocations would be replaced.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from caravan.jobs.definitions import definition_of, is_running
from caravan.jobs.spec import read_job
from caravan.jobs.versions import unified_diff

JSON = dict[str, Any]


@dataclass(frozen=True)
class JobPlan:
    action: str  # create | replace | delete | unchanged
    diff: str
    restarts_allocations: bool

    def to_json(self) -> JSON:
        return {
            "action": self.action,
            "diff": self.diff,
            "restartsAllocations": self.restarts_allocations,
        }


def plan_job(
    name: str, before: Mapping[str, Any] | None, after: Mapping[str, Any] | None
) -> JobPlan:
    """The plan of one job: `before` is its Job body now (None: absent), `after` the body
    the write would store (None: deleted)."""
    old = definition_of(before) if before is not None else None
    new = definition_of(after) if after is not None else None
    diff = unified_diff(old, new, f"{name} (current)", f"{name} (new)")
    if before is None:
        action = "create"
    elif after is None:
        action = "delete"
    else:
        action = "replace" if old != new else "unchanged"
    return JobPlan(action, diff, restarts_allocations(before, after))


def restarts_allocations(before: Mapping[str, Any] | None, after: Mapping[str, Any] | None) -> bool:
    """Whether running allocations would be stopped or replaced: the job is started and
    the write deletes it, removes one of its groups or changes a group's pod template."""
    if before is None or not is_running(before):
        return False
    if after is None:
        return True
    old = read_job(dict(before))
    new = read_job(dict(after))
    for group in old.task_groups:
        if group.count == 0:
            continue
        replacement = new.group(group.name)
        if replacement is None or replacement.template != group.template:
            return True
    return False
