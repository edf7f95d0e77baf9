"""Restarting a job or one of its task groups: the change of the Job that asks for it.

Pure. A restart is a new time in the Job's restart annotation (labels.RESTARTED_AT_ANNOTATION)
for the groups restarted; the operator copies each group's time into its pod template, so
the Deployment replaces the allocations one by one, as `kubectl rollout restart` does. The
operator stays the one writer of the Deployments, and a repair of drift keeps the restart.
"""

from __future__ import annotations

import json
from typing import Any

from caravan.errors import quote
from caravan.jobs.counts import JobStopped, NoSuchGroup
from caravan.jobs.spec import read_job, read_restarts
from caravan.labels import RESTARTED_AT_ANNOTATION


def restart_patch(body: dict[str, Any], group: str | None, now: str) -> dict[str, Any]:
    """The merge patch of the Job that restarts `group` (None: every group) at `now`.

    Raises NoSuchGroup for an unknown group, JobStopped when the job is stopped (nothing
    runs, nothing to restart: start it).
    """
    spec = read_job(body)
    if group is not None and spec.group(group) is None:
        raise NoSuchGroup(f"job {quote(spec.name)} has no task group {quote(group)}")
    if spec.suspend:
        raise JobStopped(f"job {quote(spec.name)} is stopped: start it instead of restarting it")
    annotations = (body.get("metadata") or {}).get("annotations") or {}
    times = dict(read_restarts(annotations.get(RESTARTED_AT_ANNOTATION)))
    wanted = {g.name for g in spec.task_groups}
    times = {g: t for g, t in times.items() if g in wanted}  # removed groups go
    for name in [group] if group is not None else sorted(wanted):
        times[name] = now
    text = json.dumps(times, sort_keys=True, separators=(",", ":"))
    return {"metadata": {"annotations": {RESTARTED_AT_ANNOTATION: text}}}


def restart_note(group: str | None, username: str | None) -> str:
    who = f" by {username}" if username else ""
    if group is None:
        return f"every allocation of the job is being replaced, one by one{who}"
    return f"every allocation of task group {group} is being replaced, one by one{who}"


def allocation_restart_note(alloc: str, username: str | None) -> str:
    who = f" by {username}" if username else ""
    return f"allocation {alloc} deleted{who}; its task group replaces it"
