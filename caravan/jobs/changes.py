"""What a change of a Job did, in the words of the Events Caravan records about it.

Pure: compares the Job before and after a write of the jobs routes (start, stop,
updatecounts). Restarts and refusals are said by their own services.
"""

from __future__ import annotations

from dataclasses import dataclass

from caravan.jobs.spec import JobSpec


@dataclass(frozen=True)
class Change:
    reason: str  # Started, Stopped, Scaled (the Event's reason)
    action: str  # Start, Stop, Scale (the Event's action)
    note: str


def by_whom(username: str | None) -> str:
    """ " by <user>" when the caller is known (authentication on), else ""."""
    return f" by {username}" if username else ""


def job_changes(before: JobSpec, after: JobSpec, username: str | None = None) -> list[Change]:
    """The Events a write that turned `before` into `after` should record."""
    who = by_whom(username)
    if before.suspend and not after.suspend:
        counts = ", ".join(f"{g.name} {after.desired_count(g)}" for g in after.task_groups)
        return [Change("Started", "Start", f"job started{who}: {counts}")]
    if not before.suspend and after.suspend:
        return [Change("Stopped", "Stop", f"job stopped{who}: every task group scaled to 0")]
    changes = []
    for group in after.task_groups:
        old = before.group(group.name)
        if old is None:
            continue
        was, now = before.desired_count(old), after.desired_count(group)
        if was != now:
            changes.append(
                Change(
                    "Scaled", "Scale", f"task group {group.name} scaled from {was} to {now}{who}"
                )
            )
    return changes
