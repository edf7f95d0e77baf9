"""Where a log definition points: a job, one of its task groups, one of that group's
tasks. Checked against job definitions (the API's, or a project's) before a log
definition is written, so that no log names a group or task that does not exist."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


def groups_of(definition: Mapping[str, Any]) -> list[dict[str, Any]]:
    groups = ((definition or {}).get("template") or {}).get("taskGroups") or []
    return [g for g in groups if isinstance(g, dict)]


def tasks_of(group: Mapping[str, Any]) -> list[str]:
    containers = ((group.get("template") or {}).get("spec") or {}).get("containers") or []
    return [str(c.get("name")) for c in containers if isinstance(c, dict)]


def log_group(attrs: Mapping[str, Any], jobs: Mapping[str, Any]) -> str | None:
    """The task group of a log block: its `group`, else the job's only group, else the
    group with a task (container) named like the log's task; None when none fits."""
    if isinstance(attrs.get("group"), str):
        return str(attrs["group"])
    groups = groups_of(jobs.get(str(attrs.get("job", ""))) or {})
    if len(groups) == 1:
        return str(groups[0].get("name"))
    fitting = [g for g in groups if attrs.get("task") in tasks_of(g)]
    return str(fitting[0].get("name")) if len(fitting) == 1 else None


def listed(names: Iterable[str]) -> str:
    found = sorted(names)
    return ", ".join(found) if found else "none"


def log_target_problem(entry: Mapping[str, Any], jobs: Mapping[str, Any]) -> str | None:
    """Why a log definition points at nothing: no such job, task group or task."""
    job, group, task = entry.get("job"), entry.get("group"), entry.get("task")
    if not isinstance(job, str) or not isinstance(task, str):
        return None  # a missing field: the definitions check says "is required"
    definition = jobs.get(job)
    if definition is None:
        return (
            f"no job {job!r} in the project or in Caravan (jobs: {listed(jobs)}); define it "
            "first (caravan jobsdefs load, or a job definitions file given to load)"
        )
    groups = {str(g.get("name")): g for g in groups_of(definition)}
    if group is None:
        return (
            f"job {job!r} has several task groups and none has a task {task!r}: say which "
            f"with `group` (groups: {listed(groups)})"
        )
    if group not in groups:
        return f"job {job!r} has no task group {group!r} (groups: {listed(groups)})"
    tasks = tasks_of(groups[group])
    if task not in tasks:
        return f"task group {job}/{group} has no task {task!r} (tasks: {listed(tasks)})"
    return None
